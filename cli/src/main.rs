//! `sluice`: parses the command line, calls the engine, prints. Exit codes: 0 ok, 1 a
//! run or query failed, 2 a usage or configuration error. A closed pipe (`| head`) is
//! a normal exit.

mod args;
mod bench;
mod commands;
mod cpu;
mod deploy;
mod fixtures;
mod print;
mod quality;
mod serve;
mod stores;

use std::process::ExitCode;

use clap::Parser;
use sluice_engine::SluiceError;

use args::{Cli, Command};

// mimalloc, with `--features mimalloc`: not the default, it measured slower than the
// system allocator on TPC-H SF 1 (BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Err(message) = cpu::check() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,sluice_engine=debug",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let project = cli.project.clone();
    let project = project.as_deref();
    let verbose = cli.verbose;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init(a) => commands::init(a).await,
            Command::Quickstart(a) => commands::quickstart(a).await,
            Command::Envs => commands::envs(project),
            Command::Sources(a) => commands::sources(project, a).await,
            Command::Query(a) => commands::query(project, a, verbose).await,
            Command::Run(a) => commands::run(project, a, verbose).await,
            Command::Explain(a) => commands::explain(project, a).await,
            Command::Validate(a) => commands::validate(project, a).await,
            Command::Test(a) => quality::test(project, a).await,
            Command::Check(a) => quality::check(project, a).await,
            Command::Deploy(a) => deploy::deploy_cmd(project, a).await,
            Command::Plan(a) => deploy::plan_cmd(project, a).await,
            Command::Promote(a) => deploy::promote_cmd(project, a).await,
            Command::Rollback(a) => deploy::rollback_cmd(project, a).await,
            Command::History(a) => deploy::history_cmd(project, a).await,
            Command::Status => deploy::status_cmd(project).await,
            Command::Diff(a) => deploy::diff_cmd(project, a).await,
            Command::Materialize(a) => stores::materialize_cmd(project, a, verbose).await,
            Command::Ingest(a) => stores::ingest_cmd(project, a).await,
            Command::Sample(a) => stores::sample_cmd(project, a).await,
            Command::Branch(a) => stores::branch_cmd(project, a).await,
            Command::Bench(a) => bench::bench(project, a).await,
            Command::Fixtures(a) => fixtures::fixtures(project, a).await,
            Command::Serve(a) => serve::serve_cmd(project, a).await,
            Command::Token(a) => serve::token_cmd(project, a).await,
            Command::Stats(a) => serve::stats_cmd(project, a, verbose).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit_for(err),
    }
}

fn exit_for(err: anyhow::Error) -> ExitCode {
    if is_broken_pipe(&err) {
        return ExitCode::SUCCESS;
    }
    if err.downcast_ref::<commands::Failed>().is_some() {
        return ExitCode::from(1);
    }
    if let Some(e) = err.downcast_ref::<SluiceError>() {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code() as u8);
    }
    eprintln!("error: {err:#}");
    ExitCode::from(1)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        // arrow and parquet writers wrap the io::Error in their own types.
        let text = cause.to_string();
        text.contains("Broken pipe") || text.contains("os error 32")
    })
}
