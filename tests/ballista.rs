//! Scale-out on Apache DataFusion Ballista (`--features ballista`): environments whose
//! `engine` is a Ballista cluster — here Ballista's in-process standalone scheduler and
//! executors, reached through `df://localhost:PORT` like any remote cluster — return the
//! same rows as the embedded engine for the sales_calls pipes and the 22 TPC-H queries;
//! sampling that cannot run on the executors is refused; an unreachable scheduler and a
//! lost executor fail within a bounded time, naming the environment and URL.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sluice_engine::fixtures::tpch::{generate_tpch, write_tpch_project};
use sluice_engine::session::ballista::LocalCluster;
use sluice_engine::{EnvSession, Project, RunEngine, RunOptions, SampleOverride, SluiceError};

use crate::common::{TestProject, block_on};
use crate::tpch::{SF, first_difference, params_at_sf, read_answer, rows_of};

/// The cluster the tests share: a scheduler and two executors of two task slots each.
fn cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| LocalCluster::start(2, 2).expect("local Ballista cluster"))
}

/// A copy of a store folder: every environment has a store of its own (two naming one
/// folder are refused), so a cluster environment reads a copy of the data it is
/// compared on.
fn copy_store(project: &std::path::Path, from: &str, to: &str) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    copy(&project.join(from), &project.join(to));
}

/// An environment over `data` that runs on the Ballista scheduler at `url`.
fn cluster_env(name: &str, data: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[environments.{name}]\ndata = \"{data}\"\nengine = {{ kind = \"ballista\", url = \"{url}\"{extra} }}\n"
    )
}

/// The sales_calls example with `cluster`: production's store, on the shared cluster.
fn example_on_cluster() -> TestProject {
    let p = TestProject::example(0.05);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    copy_store(p.path(), "data/production", "data/cluster");
    copy_store(p.path(), "data/staging", "data/cluster_sampled");
    copy_store(p.path(), "data/production", "data/down");
    p.write(
        "sluice.toml",
        &format!(
            "{toml}{}{}{}",
            cluster_env("cluster", "data/cluster", &cluster().url(), ""),
            // Staging's 10% system sample, on the cluster.
            cluster_env(
                "cluster_sampled",
                "data/cluster_sampled",
                &cluster().url(),
                ""
            ) + "sample = { method = \"system\", fraction = 0.1, seed = 7 }\n",
            cluster_env("down", "data/down", "df://127.0.0.1:1", ""),
        ),
    );
    p
}

/// Each pipe with the given parameters: embedded production and the cluster return
/// the same columns and rows.
#[test]
fn sales_calls_pipes_match_the_embedded_engine() {
    let p = example_on_cluster();
    let project = p.project();
    let embedded = p.session("production", SampleOverride::default());
    let remote = p.session("cluster", SampleOverride::default());
    assert!(matches!(remote.engine(), RunEngine::Ballista(_)));
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("top_reps", &[("limit", "1000")]),
        ("top_reps", &[("limit", "1000"), ("since", "2024-06-01")]),
        ("account_health", &[]),
        ("account_health", &[("region", "emea"), ("min_calls", "2")]),
        ("daily_outcomes", &[]),
        (
            "daily_outcomes",
            &[("channel", "video"), ("from", "2024-03-01")],
        ),
    ];
    block_on(async {
        for (pipe, params) in cases {
            let def = project.pipe(pipe).unwrap();
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let a = embedded
                .run_pipe_def(def, &params, &RunOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{pipe} embedded: {e}"));
            let b = remote
                .run_pipe_def(def, &params, &RunOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{pipe} on Ballista: {e}"));
            let names = |o: &sluice_engine::RunOutput| -> Vec<String> {
                o.schema.fields().iter().map(|f| f.name().clone()).collect()
            };
            assert_eq!(names(&a), names(&b), "{pipe} {params:?}: columns");
            let (ra, rb) = (rows_of(&a.batches), rows_of(&b.batches));
            assert!(!ra.is_empty(), "{pipe} {params:?}: no rows to compare");
            if let Some(diff) = first_difference(&ra, &rb, false) {
                panic!("{pipe} {params:?}: Ballista differs from embedded: {diff}");
            }
        }
        // A query, and a run with a limit.
        let sql =
            "SELECT outcome, count(*) AS n, sum(amount) AS amount FROM calls GROUP BY outcome";
        let a = embedded.query(sql, &RunOptions::default()).await.unwrap();
        let b = remote.query(sql, &RunOptions::default()).await.unwrap();
        assert_eq!(
            first_difference(&rows_of(&a.batches), &rows_of(&b.batches), false),
            None
        );
        let limited = remote
            .run_pipe_def(
                project.pipe("account_health").unwrap(),
                &[],
                &RunOptions {
                    limit: Some(3),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(limited.report.rows_out, 3);
    });
}

/// The binary runs, queries and materializes on the cluster.
#[test]
fn the_binary_runs_on_the_cluster() {
    let p = example_on_cluster();
    let (embedded, _) = p.expect_exit(
        &[
            "run",
            "top_reps",
            "--env",
            "production",
            "--param",
            "limit=1000",
            "--format",
            "csv",
            "--quiet",
        ],
        0,
    );
    let (remote, _) = p.expect_exit(
        &[
            "run",
            "top_reps",
            "--env",
            "cluster",
            "--param",
            "limit=1000",
            "--format",
            "csv",
            "--quiet",
        ],
        0,
    );
    let sorted = |s: &str| {
        let mut l: Vec<&str> = s.lines().collect();
        l.sort();
        l.join("\n")
    };
    assert_eq!(sorted(&embedded), sorted(&remote));
    assert!(remote.lines().count() > 2, "{remote}");

    let (out, _) = p.expect_exit(
        &[
            "query",
            "SELECT count(*) AS n FROM calls",
            "--env",
            "cluster",
            "--format",
            "csv",
            "--quiet",
        ],
        0,
    );
    assert_eq!(out.trim(), "n\n5000", "{out}");

    // materialize: the query runs on the cluster, the output is written to the cluster
    // environment's store (a copy of production's), where the next query reads it.
    p.write(
        "pipes/outcomes.toml",
        "materialize = { to = \"outcomes_mat\" }\n[[node]]\nname = \"o\"\nsql = \"SELECT outcome, count(*) AS calls FROM calls GROUP BY outcome\"\n",
    );
    p.expect_exit(&["materialize", "outcomes", "--env", "cluster"], 0);
    let (mat, _) = p.expect_exit(
        &[
            "query",
            "SELECT sum(calls) AS n FROM outcomes_mat",
            "--env",
            "cluster",
            "--format",
            "csv",
            "--quiet",
        ],
        0,
    );
    assert_eq!(mat.trim(), "n\n5000", "{mat}");

    let (envs, _) = p.expect_exit(&["envs"], 0);
    assert!(
        envs.contains(&format!("engine=ballista {}", cluster().url())),
        "{envs}"
    );
}

/// A sample the executors cannot take is refused, naming the method and the source —
/// never run locally instead; `--full` runs.
#[test]
fn sampling_that_needs_sluice_scans_is_refused() {
    let p = example_on_cluster();
    let (_, stderr) = p.expect_exit(&["run", "top_reps", "--env", "cluster_sampled"], 2);
    assert!(stderr.contains("environment `cluster_sampled`"), "{stderr}");
    assert!(stderr.contains("`system` sampling"), "{stderr}");
    assert!(
        stderr.contains("cannot run on a Ballista cluster"),
        "{stderr}"
    );
    assert!(stderr.contains("source `calls`"), "{stderr}");
    for args in [
        vec!["--sample", "0.2", "--sample-method", "bernoulli"],
        vec!["--sample", "0.2", "--sample-method", "key"],
        vec!["--sample", "100", "--sample-method", "rows"],
    ] {
        let mut all = vec!["run", "top_reps", "--env", "cluster"];
        all.extend(&args);
        let (_, stderr) = p.expect_exit(&all, 2);
        let method = args[3];
        assert!(stderr.contains(&format!("`{method}` sampling")), "{stderr}");
    }
    p.expect_exit(
        &[
            "run",
            "top_reps",
            "--env",
            "cluster_sampled",
            "--full",
            "--quiet",
        ],
        0,
    );
}

/// An unreachable scheduler fails the run within the connect timeout (5 s by default),
/// naming the environment and the URL: exit 1.
#[test]
fn an_unreachable_scheduler_fails_fast() {
    let p = example_on_cluster();
    crate::common::sluice_bin(); // built before the clock starts
    let started = Instant::now();
    let (_, stderr) = p.expect_exit(&["run", "top_reps", "--env", "down"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("environment `down`"), "{stderr}");
    assert!(stderr.contains("df://127.0.0.1:1"), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Ballista scheduler"),
        "{stderr}"
    );

    // A scheduler address that never answers (a non-routable address): the connect
    // timeout bounds it.
    let project = Arc::new(Project::load(p.path()).unwrap());
    let mut env = project.environment("down").unwrap().clone();
    let RunEngine::Ballista(b) = &mut env.engine else {
        unreachable!()
    };
    b.host = "10.255.255.1".into();
    b.url = "df://10.255.255.1:50050".into();
    b.port = 50050;
    b.connect_timeout = Duration::from_millis(800);
    let session = EnvSession::open_with(project, env, &SampleOverride::default()).unwrap();
    let started = Instant::now();
    let err = block_on(session.query("SELECT 1", &RunOptions::default())).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, SluiceError::Engine { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(text.contains("df://10.255.255.1:50050"), "{text}");
}

/// An executor that dies (its runtime ends, as if its process was killed): the next run
/// fails within the engine's job timeout, naming the environment and the URL.
#[test]
fn a_lost_executor_fails_within_the_job_timeout() {
    let mut lonely = LocalCluster::start(1, 2).expect("cluster");
    let p = TestProject::example(0.02);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    copy_store(p.path(), "data/production", "data/fragile");
    p.write(
        "sluice.toml",
        &format!(
            "{toml}{}",
            cluster_env(
                "fragile",
                "data/fragile",
                &lonely.url(),
                ", timeout = \"3s\""
            )
        ),
    );
    let session = p.session("fragile", SampleOverride::default());
    let sql = "SELECT outcome, count(*) FROM calls GROUP BY outcome";
    block_on(session.query(sql, &RunOptions::default())).expect("runs while the executor lives");

    lonely.kill_executor(0);
    let started = Instant::now();
    let err = block_on(session.query(sql, &RunOptions::default())).unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let text = err.to_string();
    assert!(text.contains("environment `fragile`"), "{text}");
    assert!(text.contains(&lonely.url()), "{text}");
    assert!(text.contains("did not finish within 3.0 s"), "{text}");
    assert_eq!(err.exit_code(), 1);
}

/// The 22 TPC-H queries at SF 0.1: the cluster returns the embedded engine's rows (and so
/// DuckDB's reference answers).
#[test]
fn tpch_matches_the_embedded_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tpch_project(dir.path()).expect("tpch project");
    // The data first, then a copy of it for the cluster's own store.
    {
        let project = Arc::new(Project::load(dir.path()).expect("project loads"));
        let production =
            EnvSession::open(project, "production", &SampleOverride::default()).expect("session");
        block_on(generate_tpch(production.store(), SF)).expect("generate");
    }
    let toml = std::fs::read_to_string(dir.path().join("sluice.toml")).unwrap();
    copy_store(dir.path(), "data/production", "data/cluster");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "{toml}{}",
            cluster_env("cluster", "data/cluster", &cluster().url(), "")
        ),
    )
    .unwrap();
    let project = Arc::new(Project::load(dir.path()).expect("project loads"));
    let embedded = EnvSession::open(project.clone(), "production", &SampleOverride::default())
        .expect("session");
    let remote =
        EnvSession::open(project.clone(), "cluster", &SampleOverride::default()).expect("session");
    let failures: Vec<String> = block_on(async {
        let mut failures = Vec::new();
        for (name, pipe) in &project.pipes {
            let params = params_at_sf(name);
            let a = embedded
                .run_pipe_def(pipe, &params, &RunOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{name} embedded: {e}"));
            let b = match remote
                .run_pipe_def(pipe, &params, &RunOptions::default())
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let ordered = pipe.output().sql.to_ascii_uppercase().contains("ORDER BY");
            let (ra, rb) = (rows_of(&a.batches), rows_of(&b.batches));
            if let Some(diff) = first_difference(&ra, &rb, false) {
                failures.push(format!("{name}: Ballista differs from embedded: {diff}"));
                continue;
            }
            let (_, expected) = read_answer(name);
            if let Some(diff) = first_difference(&expected, &rb, ordered) {
                failures.push(format!(
                    "{name}: Ballista differs from the reference: {diff}"
                ));
            }
        }
        failures
    });
    assert!(
        failures.is_empty(),
        "{} of 22 queries differ on Ballista:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
