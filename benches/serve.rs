//! A bounded load benchmark of `sluice serve`: production's endpoints of the sales_calls
//! example and a trivial pipe (`SELECT 1`), the server in this process on 127.0.0.1,
//! the clients real HTTP clients (ureq, keep-alive), a fixed number of requests each.
//! Beside each endpoint's HTTP figures, the same pipe run in-process on a warm session
//! that keeps its plans, as `sluice bench --prepared` runs it (`bench_pipe`): the
//! server's own cost is the difference.
//!
//! `cargo bench --bench serve` — SLUICE_BENCH_SCALES (demo data scales, default
//! "0.1,1" = 10,000 and 100,000 calls), SLUICE_BENCH_CLIENTS (default "1,4"),
//! SLUICE_BENCH_REQUESTS (per pipe and client count, default 400).
//! Prints one markdown row per scale, pipe and client count: p50/p95/p99 ms and
//! requests per second, and the in-process median.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::Project;
use sluice_engine::bench::{BenchOptions, bench_pipe};
use sluice_engine::deploy::{PromoteOptions, deploy, promote};
use sluice_engine::fixtures::{GenOptions, generate_sales_calls, write_example_project};
use sluice_engine::session::EnvSession;
use sluice_serve::{LogFormat, ServeOptions, Server};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn list_or<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

const TRIVIAL: &str = r#"
description = "SELECT 1: the server's own cost"
endpoint = true
[[node]]
name = "one"
sql = "SELECT 1 AS one"
"#;

/// Writes the example project at `scale`, deploys and promotes every pipe.
fn project(dir: &std::path::Path, scale: f64, runtime: &tokio::runtime::Runtime) -> Arc<Project> {
    write_example_project(dir).expect("example project");
    std::fs::write(dir.join("pipes/one.toml"), TRIVIAL).unwrap();
    let toml_path = dir.join("sluice.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        format!("{toml}\n[environments.production.serve]\nanonymous = true\nmax_concurrent = 16\n"),
    )
    .unwrap();
    for env in ["staging", "production"] {
        generate_sales_calls(
            &dir.join("data").join(env),
            &GenOptions {
                scale,
                ..GenOptions::default()
            },
        )
        .expect("generate");
    }
    // The pipe tests' fixtures, which the promotion's gates run.
    sluice_engine::fixtures::generate_example_test_data(dir).expect("test data");
    let project = Arc::new(Project::load(dir).expect("project"));
    runtime.block_on(async {
        deploy(&project, "staging", &[], "bench")
            .await
            .expect("deploy");
        let report = promote(
            project.clone(),
            "staging",
            "production",
            &[],
            &PromoteOptions {
                actor: "bench".into(),
                ..PromoteOptions::default()
            },
        )
        .await
        .expect("promote");
        assert!(
            !report.blocked(),
            "the promotion was blocked: {:?}",
            report.failed_gates()
        );
    });
    project
}

/// `requests` GETs of `path` from `clients` threads: each latency, and the wall time.
fn load(
    agent: &ureq::Agent,
    url: &str,
    requests: usize,
    clients: usize,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let per_client = requests.div_ceil(clients);
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let agent = agent.clone();
                scope.spawn(move || {
                    (0..per_client)
                        .map(|_| {
                            let t = Instant::now();
                            let mut resp = agent.get(url).call().expect("request");
                            assert_eq!(resp.status().as_u16(), 200);
                            resp.body_mut().read_to_vec().expect("body");
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = started.elapsed();
    latencies.sort();
    (latencies, wall)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means skip.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"serve".contains(a.as_str()))
    {
        return;
    }
    let scales: Vec<f64> = list_or("SLUICE_BENCH_SCALES", "0.1,1");
    let client_counts: Vec<usize> = list_or("SLUICE_BENCH_CLIENTS", "1,4");
    let requests: usize = env_or("SLUICE_BENCH_REQUESTS", 400);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    println!(
        "sluice serve: {requests} requests per row, keep-alive, production (full data), 127.0.0.1"
    );
    println!(
        "| calls | pipe | clients | p50 ms | p95 ms | p99 ms | req/s | in-process median ms |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for scale in scales {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = project(dir.path(), scale, &runtime);
        let (addr, stop) = runtime.block_on(async {
            let server = Server::bind(
                project.clone(),
                "production",
                ServeOptions {
                    bind: "127.0.0.1:0".parse().unwrap(),
                    log_format: LogFormat::Off,
                    ..ServeOptions::default()
                },
            )
            .await
            .expect("bind");
            let addr = server.local_addr();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server.run(async {
                let _ = rx.await;
            }));
            (addr, tx)
        });
        // `sluice bench --prepared`'s measurement of the same pipes: one warm session
        // that keeps its plans, as the server does.
        let session = EnvSession::open(project.clone(), "production", &Default::default())
            .expect("session")
            .prepare_plans();
        for pipe in ["one", "top_reps", "account_health"] {
            let def = runtime
                .block_on(session.resolve_pipe(pipe, true))
                .expect("pipe");
            let in_process = runtime
                .block_on(bench_pipe(
                    &session,
                    &def,
                    &[],
                    &BenchOptions {
                        runs: 50,
                        warmup: 5,
                        estimate: false,
                    },
                    &|_| {},
                ))
                .expect("bench")
                .median();
            let url = format!("http://{addr}/v0/pipes/{pipe}.json");
            // Warm up: footers cached, the plan's paths taken.
            let _ = load(&agent, &url, 20, 1);
            for &clients in &client_counts {
                let (lat, wall) = load(&agent, &url, requests, clients);
                println!(
                    "| {} | {pipe} | {clients} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} |",
                    (scale * 100_000.0).round() as u64,
                    percentile(&lat, 0.5),
                    percentile(&lat, 0.95),
                    percentile(&lat, 0.99),
                    lat.len() as f64 / wall.as_secs_f64(),
                    in_process.as_secs_f64() * 1000.0,
                );
            }
        }
        let _ = stop.send(());
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
}
