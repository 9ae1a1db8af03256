//! `sluice`: parses the command line, resolves the global settings once, calls the
//! engine, prints. Exit codes: 0 ok, 1 a run or query failed, 2 a usage or
//! configuration error. A closed pipe (`| head`) is a normal exit.
//!
//! `args` is the command line (clap), `settings` the global flags resolved, `cmd` one
//! module per group of commands, `print` the output formats.

mod allocator;
mod args;
mod cmd;
mod cpu;
mod print;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use sluice_engine::SluiceError;

use args::{Cli, Command};
use cmd::{bench, data, deploy, fidelity, fixtures, init, quality, serve, shell, stores};
use settings::Settings;

// mimalloc, with `--features mimalloc`: not the default, it measured slower than the
// system allocator on TPC-H SF 1 (BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The stack of every thread that plans or runs queries.
const STACK_SIZE: usize = 64 << 20;

fn main() -> ExitCode {
    // Before any other thread exists (see allocator.rs for why).
    allocator::tune();
    // The command runs on a thread with the same large stack as the runtime's workers:
    // `block_on` plans on the calling thread.
    match std::thread::Builder::new()
        .name("sluice-main".into())
        .stack_size(STACK_SIZE)
        .spawn(run)
        .map(|t| t.join())
    {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> ExitCode {
    if let Err(message) = cpu::check() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    // -v is Sluice's own per-source lines; logs are asked for by level.
    let filter = match (&cli.log_level, cli.verbose) {
        (Some(level), _) => tracing_subscriber::EnvFilter::try_new(level),
        (None, v) => tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
            .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
            .or_else(|_| {
                tracing_subscriber::EnvFilter::try_new(if v >= 2 {
                    "info,sluice_engine=debug"
                } else {
                    "warn"
                })
            }),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: --log-level: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    // Planning walks SQL expressions recursively: every thread that plans gets a stack
    // large enough for the longest expression the engine accepts
    // (`project::sql::MAX_SQL_OPERATORS`), the main one included (see `main`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_SIZE)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let settings = Settings::resolve(&cli);
    let s = &settings;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Init(a) => init::init(a).await,
            Command::Quickstart(a) => init::quickstart(a).await,
            Command::Envs => data::envs(s),
            Command::Sources(a) => data::sources(s, a).await,
            Command::Query(a) => data::query(s, a).await,
            Command::Run(a) => data::run(s, a).await,
            Command::Explain(a) => data::explain(s, a).await,
            Command::Validate(a) => data::validate(s, a).await,
            Command::Test(a) => quality::test(s, a).await,
            Command::Check(a) => quality::check(s, a).await,
            Command::Deploy(a) => deploy::deploy_cmd(s, a).await,
            Command::Plan(a) => deploy::plan_cmd(s, a).await,
            Command::Promote(a) => deploy::promote_cmd(s, a).await,
            Command::Rollback(a) => deploy::rollback_cmd(s, a).await,
            Command::History(a) => deploy::history_cmd(s, a).await,
            Command::Status => deploy::status_cmd(s).await,
            Command::Diff(a) => deploy::diff_cmd(s, a).await,
            Command::Fidelity(a) => fidelity::fidelity_cmd(s, a).await,
            Command::Materialize(a) => stores::materialize_cmd(s, a).await,
            Command::Ingest(a) => stores::ingest_cmd(s, a).await,
            Command::Sample(a) => stores::sample_cmd(s, a).await,
            Command::Branch(a) => stores::branch_cmd(s, a).await,
            Command::Bench(a) => bench::bench(s, a).await,
            Command::Fixtures(a) => fixtures::fixtures(s, a).await,
            Command::Serve(a) => serve::serve_cmd(s, a).await,
            Command::Ui(a) => serve::ui_cmd(s, a).await,
            Command::Token(a) => serve::token_cmd(s, a).await,
            Command::Stats(a) => serve::stats_cmd(s, a).await,
            Command::New(a) => init::new_project(a),
            Command::Shell(a) => shell::shell(s, a).await,
            Command::Completions(a) => completions(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit_for(err),
    }
}

/// `sluice completions SHELL`: the completion script clap generates from the commands.
fn completions(args: args::CompletionsArgs) -> anyhow::Result<()> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sluice", &mut out);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    Ok(())
}

fn exit_for(err: anyhow::Error) -> ExitCode {
    if is_broken_pipe(&err) {
        return ExitCode::SUCCESS;
    }
    if err.downcast_ref::<cmd::Failed>().is_some() {
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
