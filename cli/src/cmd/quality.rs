//! `sluice test` (pipe tests on the project's fixture data) and `sluice check` (data
//! checks in an environment): the two gates of a promotion, as commands of their own.

use anyhow::Result;
use sluice_engine::quality::checks::{CheckResult, plan_checks, run_pipe_checks, run_sql_checks};
use sluice_engine::quality::pipe_tests::{run_pipe_tests, update_pipe_tests};

use super::Failed;
use crate::args::{CheckArgs, TestArgs};
use crate::outln;
use crate::settings::Settings;

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

pub async fn test(settings: &Settings, args: TestArgs) -> Result<()> {
    let project = settings.project()?;
    let results = if args.update {
        update_pipe_tests(project, &args.pipes).await?
    } else {
        run_pipe_tests(project, &args.pipes).await?
    };
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

pub async fn check(settings: &Settings, args: CheckArgs) -> Result<()> {
    let session = settings.session(&args.env, &args.sample)?;
    let env = session.environment().name.clone();
    let protected = session.environment().protected;
    let plan = plan_checks(&session, &args.pipes).await?;
    let sample = match session.policy() {
        Some(p) => format!("sample {p}"),
        None => "full data".to_string(),
    };
    outln!(
        "environment {env} ({sample}{})",
        if protected { ", deployed versions" } else { "" }
    );
    for (pipe, why) in &plan.skipped {
        outln!("skip {pipe}: {why}");
    }
    // Each pipe's results are printed as they come, so an error later shows after them.
    let mut results: Vec<CheckResult> = Vec::new();
    for pipe in &plan.pipes {
        let these = run_pipe_checks(&session, pipe).await?;
        print_checks(&these)?;
        results.extend(these);
    }
    if plan.sql_checks {
        let these = run_sql_checks(&session).await?;
        print_checks(&these)?;
        results.extend(these);
    }
    if results.is_empty() {
        outln!("no checks to run ([[check]] in pipes/*.toml, checks/*.sql)");
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if !plan.skipped.is_empty() {
        outln!(
            "{} pipe(s) skipped: {}",
            plan.skipped.len(),
            plan.skipped
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
