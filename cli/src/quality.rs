//! `sluice test` (pipe tests on the project's fixture data) and `sluice check` (data
//! checks in an environment): the two gates of a promotion, as commands of their own.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use sluice_engine::EnvSession;
use sluice_engine::checks::{CheckResult, run_pipe_checks, run_sql_checks};
use sluice_engine::pipe_tests::run_pipe_tests;

use crate::args::{EnvArg, SampleArgs};
use crate::commands::{Failed, load_project};
use crate::outln;

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only the cases of these pipes (default: every case of tests/*.toml)
    #[arg(value_name = "PIPE")]
    pub pipes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the checks of these pipes (default: every pipe's checks and checks/*.sql)
    #[arg(value_name = "PIPE")]
    pub pipes: Vec<String>,
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub sample: SampleArgs,
}

fn status(passed: bool) -> &'static str {
    if passed { "ok  " } else { "FAIL" }
}

/// Prints `N passed, M failed` and fails (exit 1) if any failed.
fn summary(passed: usize, failed: usize, what: &str) -> Result<()> {
    outln!("{passed} passed, {failed} failed");
    if failed > 0 {
        eprintln!("{failed} {what} failed");
        return Err(Failed.into());
    }
    Ok(())
}

pub async fn test(project: Option<&Path>, args: TestArgs) -> Result<()> {
    let project = load_project(project)?;
    let results = run_pipe_tests(project, &args.pipes).await?;
    if results.is_empty() {
        outln!("no pipe tests to run (tests/*.toml)");
    }
    for r in &results {
        outln!(
            "{} {}: {} ({}): {}",
            status(r.passed),
            r.file.display(),
            r.case,
            r.pipe,
            r.detail
        );
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    summary(results.len() - failed, failed, "case(s)")
}

pub async fn check(project: Option<&Path>, args: CheckArgs) -> Result<()> {
    let project = load_project(project)?;
    let env = project
        .select_environment(args.env.env.as_deref())?
        .name
        .clone();
    let session = EnvSession::open(project.clone(), &env, &args.sample.to_override())?;
    let protected = session.environment().protected;
    // The pipes as this environment runs them: in a protected one, the deployed versions.
    let names: Vec<String> = if !args.pipes.is_empty() {
        args.pipes.clone()
    } else if protected {
        session.deployments().live().await?.into_keys().collect()
    } else {
        project.pipes.keys().cloned().collect()
    };
    let mut pipes = Vec::new();
    for name in &names {
        pipes.push(session.resolve_pipe(name, false).await?);
    }
    let sample = match session.policy() {
        Some(p) => format!("sample {p}"),
        None => "full data".to_string(),
    };
    outln!(
        "environment {env} ({sample}{})",
        if protected { ", deployed versions" } else { "" }
    );
    // Each pipe's results are printed as they come, so an error later shows after them.
    let mut results: Vec<CheckResult> = Vec::new();
    for pipe in &pipes {
        let these = run_pipe_checks(&session, pipe).await?;
        print_checks(&these)?;
        results.extend(these);
    }
    if args.pipes.is_empty() {
        let these = run_sql_checks(&session).await?;
        print_checks(&these)?;
        results.extend(these);
    }
    if results.is_empty() {
        outln!("no checks to run ([[check]] in pipes/*.toml, checks/*.sql)");
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    summary(results.len() - failed, failed, "check(s)")
}

fn print_checks(results: &[CheckResult]) -> Result<()> {
    for r in results {
        let what = match &r.pipe {
            Some(p) => format!("{p}: {}", r.check),
            None => format!("checks/{}.sql", r.check),
        };
        outln!("{} {what}: {}", status(r.passed), r.detail);
    }
    Ok(())
}
