//! A bounded load benchmark of `sluice serve`: a fixed number of requests from a few
//! concurrent clients against production's endpoints of the sales_calls example, the
//! server in this process on 127.0.0.1, the clients real HTTP clients (ureq).
//!
//! `cargo bench --bench serve` — SLUICE_BENCH_SCALE (demo data scale, default 1.0 =
//! 100,000 calls), SLUICE_BENCH_REQUESTS (default 600), SLUICE_BENCH_CLIENTS (default 4).
//! Prints latency percentiles and requests per second, per pipe and overall.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::Project;
use sluice_engine::deploy::{PromoteOptions, deploy, promote};
use sluice_engine::fixtures::{GenOptions, generate_sales_calls, write_example_project};
use sluice_serve::{ServeOptions, Server};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means skip.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"serve".contains(a.as_str()))
    {
        return;
    }
    let scale: f64 = env_or("SLUICE_BENCH_SCALE", 1.0);
    let requests: usize = env_or("SLUICE_BENCH_REQUESTS", 600);
    let clients: usize = env_or("SLUICE_BENCH_CLIENTS", 4);

    let dir = tempfile::tempdir().expect("tempdir");
    write_example_project(dir.path()).expect("example project");
    let toml_path = dir.path().join("sluice.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        format!("{toml}\n[environments.production.serve]\nanonymous = true\nmax_concurrent = 16\n"),
    )
    .unwrap();
    for env in ["staging", "production"] {
        generate_sales_calls(
            &dir.path().join("data").join(env),
            &GenOptions {
                scale,
                ..GenOptions::default()
            },
        )
        .expect("generate");
    }
    // The pipe tests' fixtures, which the promotion's gates run.
    sluice_engine::fixtures::generate_example_test_data(dir.path()).expect("test data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let project = Arc::new(Project::load(dir.path()).expect("project"));
    let (addr, stop) = runtime.block_on(async {
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
        let server = Server::bind(
            project.clone(),
            "production",
            ServeOptions {
                bind: "127.0.0.1:0".parse().unwrap(),
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

    let paths: Vec<(&str, String)> = (0..requests)
        .map(|i| match i % 3 {
            0 => (
                "top_reps",
                format!("/v0/pipes/top_reps.json?limit={}", 1 + i % 50),
            ),
            1 => (
                "top_reps",
                format!("/v0/pipes/top_reps.json?since=2024-0{}-01", 1 + i % 9),
            ),
            _ => (
                "account_health",
                format!(
                    "/v0/pipes/account_health.json?region={}&min_calls={}",
                    ["emea", "amer", "apac"][i % 3],
                    i % 20
                ),
            ),
        })
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    // Warm up: footers cached, each path shape once.
    for (_, path) in paths.iter().take(6) {
        agent
            .get(format!("http://{addr}{path}"))
            .call()
            .expect("warm-up request");
    }

    let started = Instant::now();
    let per_client = paths.len().div_ceil(clients);
    let results: Vec<(&str, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(per_client)
            .map(|chunk| {
                let agent = agent.clone();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(pipe, path)| {
                            let t = Instant::now();
                            let mut resp = agent
                                .get(format!("http://{addr}{path}"))
                                .call()
                                .expect("request");
                            resp.body_mut().read_to_vec().expect("body");
                            (*pipe, t.elapsed())
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
    let _ = stop.send(());

    println!(
        "sluice serve: {} requests from {clients} clients, sales_calls scale {scale} (production, full data), {:.2} s",
        results.len(),
        wall.as_secs_f64()
    );
    println!("| pipe | requests | p50 ms | p95 ms | p99 ms | max ms | req/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for pipe in ["top_reps", "account_health", "all"] {
        let mut lat: Vec<Duration> = results
            .iter()
            .filter(|(p, _)| pipe == "all" || *p == pipe)
            .map(|(_, d)| *d)
            .collect();
        lat.sort();
        println!(
            "| {pipe} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.95),
            percentile(&lat, 0.99),
            lat.last().unwrap().as_secs_f64() * 1000.0,
            if pipe == "all" {
                format!("{:.0}", lat.len() as f64 / wall.as_secs_f64())
            } else {
                "".into()
            }
        );
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
}
