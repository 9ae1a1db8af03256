//! The query core under each sampling mode: scan + filter + aggregate over the
//! sales_calls `calls` source, full and sampled at several fractions, and the planning
//! overhead of a pipe on a warm session.
//!
//! `cargo bench --bench sampling` (set SLUICE_BENCH_SCALE for a bigger dataset; the
//! default 5.0 is 500,000 calls).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sluice_engine::fixtures::{GenOptions, generate_sales_calls, write_example_project};
use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride};

const SQL: &str = "SELECT rep_id, count(*) AS calls, sum(amount) AS revenue FROM calls \
                   WHERE outcome IN ('won', 'lost') GROUP BY rep_id";

fn bench_sampling(c: &mut Criterion) {
    let scale: f64 = std::env::var("SLUICE_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let dir = tempfile::tempdir().expect("tempdir");
    write_example_project(dir.path()).expect("project");
    let options = GenOptions {
        scale,
        ..GenOptions::default()
    };
    generate_sales_calls(&dir.path().join("data/production"), &options).expect("data");
    let project = Arc::new(Project::load(dir.path()).expect("load"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let mut group = c.benchmark_group("scan_filter_aggregate");
    group.sample_size(20);
    let modes: Vec<(String, SampleOverride)> =
        std::iter::once(("full".to_string(), SampleOverride::default()))
            .chain(
                [
                    ("system", 0.01),
                    ("system", 0.1),
                    ("key", 0.1),
                    ("bernoulli", 0.1),
                ]
                .into_iter()
                .map(|(m, f)| {
                    (
                        format!("{m}_{f}"),
                        SampleOverride {
                            method: Some(m.into()),
                            fraction: Some(f),
                            key: (m == "key").then(|| "account_id".to_string()),
                            ..Default::default()
                        },
                    )
                }),
            )
            .collect();
    for (name, sample) in modes {
        let session = EnvSession::open(project.clone(), "production", &sample).expect("session");
        group.bench_with_input(BenchmarkId::from_parameter(name), &session, |b, session| {
            b.to_async(&rt).iter(|| async {
                session
                    .query(SQL, &RunOptions::default())
                    .await
                    .expect("query")
            });
        });
    }
    group.finish();

    // The working copy's definition (nothing is deployed in this bench's store):
    // parameters bound, nodes composed and planned, then run, on a warm session.
    let session = EnvSession::open(project.clone(), "production", &SampleOverride::default())
        .expect("session");
    let pipe = project.pipe("top_reps").expect("pipe").clone();
    c.bench_function("plan_and_run_pipe_top_reps", |b| {
        b.to_async(&rt).iter(|| async {
            session
                .run_pipe_def(
                    &pipe,
                    &[("limit".into(), "5".into())],
                    &RunOptions::default(),
                )
                .await
                .expect("run")
        });
    });
}

criterion_group!(benches, bench_sampling);
criterion_main!(benches);
