//! The query core on TPC-H: scan + filter + aggregate (q01, q06), joins (q03, q05), the
//! planning and parameter binding of a pipe on a warm session, and Sluice against raw
//! DataFusion running the same SQL on the same files with the same settings.
//!
//! `cargo bench --bench tpch` (SLUICE_BENCH_SF sets the scale factor, default 0.1;
//! SLUICE_BENCH_QUERIES the end-to-end queries, comma-separated, default q01,q06,q03,q05).
//! The data is generated once into a temporary project's production store.

use std::collections::HashMap;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use datafusion::common::ParamValues;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::collect;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use sluice_engine::fixtures::tpch::{TABLES, generate_tpch, write_tpch_project};
use sluice_engine::{EnvSession, Pipe, Project, RunOptions, SampleOverride};

const QUERIES: &str = "q01,q06,q03,q05";

/// Raw DataFusion on the same files: one context for the whole bench (tables
/// registered once), the environment's session configuration, memory limit and Sluice's
/// optimizer rules, so the difference is what Sluice adds around DataFusion (binding,
/// listing, the run's snapshot, registration, reports), not a different plan. One
/// exception: the join order (`optimizer::join_order`) reads Sluice's sources'
/// statistics, which DataFusion's listing tables do not give, so raw DataFusion keeps
/// q05's written order and Sluice does not; q01, q06 and q03 plan alike.
fn raw_context(session: &EnvSession) -> SessionContext {
    let env = session.environment();
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = env.settings.memory_limit {
        runtime = runtime.with_memory_limit(limit as usize, 1.0);
    }
    SessionContext::new_with_state(sluice_engine::optimizer::settings::session_state(
        sluice_engine::optimizer::settings::session_config(&env.settings),
        runtime.build_arc().expect("runtime"),
    ))
}

fn param_values(session: &EnvSession, pipe: &Pipe) -> ParamValues {
    let values = session.resolve_params(pipe, &[]).expect("defaults");
    ParamValues::Map(
        values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_scalar().into()))
            .collect::<HashMap<_, _>>(),
    )
}

fn bench_tpch(c: &mut Criterion) {
    let sf: f64 = std::env::var("SLUICE_BENCH_SF")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1);
    let dir = tempfile::tempdir().expect("tempdir");
    write_tpch_project(dir.path()).expect("project");
    let project = Arc::new(Project::load(dir.path()).expect("load"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let session = EnvSession::open(project.clone(), "production", &SampleOverride::default())
        .expect("session");
    rt.block_on(generate_tpch(session.store(), sf))
        .expect("generate");
    let store_dir = dir.path().join("data/production");

    let raw = raw_context(&session);
    rt.block_on(async {
        for t in TABLES {
            raw.register_parquet(
                *t,
                format!("{}/{t}/", store_dir.display()),
                ParquetReadOptions::default(),
            )
            .await
            .expect("register");
        }
    });

    // Each query end to end: Sluice's run of the pipe (bind, plan, list sources from
    // the footer cache, run, collect) against DataFusion planning and running its SQL.
    let queries = std::env::var("SLUICE_BENCH_QUERIES").unwrap_or_else(|_| QUERIES.into());
    let mut group = c.benchmark_group("tpch");
    group.sample_size(10);
    for name in queries.split(',').map(str::trim).filter(|q| !q.is_empty()) {
        let pipe = project.pipe(name).expect("pipe").clone();
        assert_eq!(pipe.nodes.len(), 1, "one-node pipes compare directly");
        let sql = pipe.output().sql.clone();
        let values = param_values(&session, &pipe);
        group.bench_with_input(BenchmarkId::new("sluice", name), &pipe, |b, pipe| {
            b.to_async(&rt).iter(|| async {
                session
                    .run_pipe_def(pipe, &[], &RunOptions::default())
                    .await
                    .expect("run")
            });
        });
        group.bench_with_input(BenchmarkId::new("datafusion", name), &sql, |b, sql| {
            b.to_async(&rt).iter(|| async {
                let df = raw
                    .sql(sql)
                    .await
                    .and_then(|df| df.with_param_values(values.clone()))
                    .expect("plan");
                let plan = df.create_physical_plan().await.expect("physical plan");
                collect(plan, raw.task_ctx()).await.expect("run")
            });
        });
    }
    group.finish();

    // Planning only, on a warm session: Sluice binds the parameters, registers the
    // sources and plans every node (logical and physical); DataFusion plans the SQL.
    let mut group = c.benchmark_group("tpch_planning");
    for name in ["q05", "q15"] {
        let pipe = project.pipe(name).expect("pipe").clone();
        group.bench_with_input(BenchmarkId::new("sluice", name), &pipe, |b, pipe| {
            b.to_async(&rt)
                .iter(|| async { session.plan_check(pipe).await.expect("plans") });
        });
    }
    let q05 = project.pipe("q05").expect("pipe").clone();
    let values = param_values(&session, &q05);
    group.bench_function(BenchmarkId::new("datafusion", "q05"), |b| {
        b.to_async(&rt).iter(|| async {
            raw.sql(&q05.output().sql)
                .await
                .and_then(|df| df.with_param_values(values.clone()))
                .expect("plan")
                .create_physical_plan()
                .await
                .expect("physical plan")
        });
    });
    // Parameter binding alone: text to typed values, checked against the declarations.
    let q16 = project.pipe("q16").expect("pipe").clone();
    let given: Vec<(String, String)> = (1..=8)
        .map(|i| (format!("size{i}"), (i * 5).to_string()))
        .chain([("brand".to_string(), "Brand#11".to_string())])
        .collect();
    group.bench_function("bind_params_q16", |b| {
        b.iter(|| session.resolve_params(&q16, &given).expect("params"));
    });
    group.finish();
}

criterion_group!(benches, bench_tpch);
criterion_main!(benches);
