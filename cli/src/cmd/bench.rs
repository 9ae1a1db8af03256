//! `sluice bench`: runs pipes repeatedly in one process on one warm session and prints
//! their latencies, scan throughput and peak memory.

use std::time::Duration;

use anyhow::Result;
use sluice_engine::bench::{BenchOptions, PipeBench, bench_pipe, check_params};
use sluice_engine::{Pipe, SluiceError};

use crate::args::BenchArgs;
use crate::outln;
use crate::print::{human_bytes, human_count, print_table};
use crate::settings::Settings;

pub async fn bench(settings: &Settings, args: BenchArgs) -> Result<()> {
    let project = settings.project()?;
    let session = settings.session(&args.env, &args.sample)?;
    let session = if args.prepared {
        session.prepare_plans()
    } else {
        session
    };
    let env = session.environment().name.clone();
    let names: Vec<String> = if args.all {
        project.pipes.keys().cloned().collect()
    } else {
        args.pipes.clone()
    };
    if names.is_empty() {
        return Err(SluiceError::Usage("the project has no pipes to benchmark".into()).into());
    }
    // Resolve every pipe and parameter before running any, so a typo fails at once.
    let mut pipes: Vec<Pipe> = Vec::with_capacity(names.len());
    for name in &names {
        pipes.push(session.resolve_pipe(name, args.deployed).await?);
    }
    check_params(&pipes, &args.params)?;
    let options = BenchOptions {
        runs: args.runs,
        warmup: args.warmup,
        estimate: args.estimate,
    };
    let mut results = Vec::with_capacity(pipes.len());
    for pipe in &pipes {
        let bar = crate::print::progress_bar();
        let r = bench_pipe(
            &session,
            pipe,
            &args.params,
            &options,
            &|p: &sluice_engine::util::progress::Progress| crate::print::show_progress(&bar, p),
        )
        .await;
        bar.finish_and_clear();
        let r = r?;
        eprintln!(
            "{env} · pipe {} · median {} over {} runs",
            r.pipe,
            ms(r.median()),
            r.latencies.len()
        );
        results.push(r);
    }
    let sample = session
        .policy()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "full".into());
    if args.json {
        let value = serde_json::json!({
            "env": env,
            "sample": sample,
            "runs": options.runs,
            "warmup": options.warmup,
            "peak_memory": "process peak RSS (VmHWM) while the pipe ran",
            "prepared": args.prepared,
            "prepared_runs": session.prepared_runs(),
            "pipes": results.iter().map(json_of).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = results.iter().map(row_of).collect();
    if results.len() > 1 {
        let total = |f: fn(&PipeBench) -> Duration| results.iter().map(f).sum::<Duration>();
        rows.push(vec![
            "total".into(),
            String::new(),
            ms(total(PipeBench::min)),
            ms(total(PipeBench::median)),
            ms(total(PipeBench::p95)),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let plans = if args.prepared {
        format!(
            " · prepared plans ({} runs reused one)",
            session.prepared_runs()
        )
    } else {
        String::new()
    };
    outln!(
        "environment {env} ({sample}) · {} measured runs per pipe after {} warm-up{plans}",
        options.runs,
        options.warmup
    );
    print_table(
        &[
            "pipe",
            "rows",
            "min",
            "median",
            "p95",
            "rows scanned/s",
            "bytes scanned/s",
            "peak RSS",
        ],
        &rows,
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn row_of(r: &PipeBench) -> Vec<String> {
    vec![
        r.pipe.clone(),
        human_count(r.rows_out),
        ms(r.min()),
        ms(r.median()),
        ms(r.p95()),
        human_count(r.rows_per_second() as u64),
        format!("{}/s", human_bytes(r.bytes_per_second() as u64)),
        r.peak_rss.map(human_bytes).unwrap_or_else(|| "-".into()),
    ]
}

fn json_of(r: &PipeBench) -> serde_json::Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    serde_json::json!({
        "pipe": r.pipe,
        "min_ms": ms(r.min()),
        "median_ms": ms(r.median()),
        "p95_ms": ms(r.p95()),
        "runs_ms": r.latencies.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "rows_out": r.rows_out,
        "rows_scanned": r.rows_scanned,
        "bytes_scanned": r.bytes_scanned,
        "rows_scanned_per_second": r.rows_per_second(),
        "bytes_scanned_per_second": r.bytes_per_second(),
        "peak_rss_bytes": r.peak_rss,
    })
}
