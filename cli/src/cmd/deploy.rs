//! The deployment workflow commands: deploy, plan, promote, rollback, history, status.

use std::io::{BufRead, IsTerminal};

use anyhow::Result;
use sluice_engine::SluiceError;
use sluice_engine::deploy::{
    DeploymentState, GateOptions, PlanKind, PromoteOptions, deploy, plan, promote_with_progress,
    resolve_version, rollback, status,
};

use super::Failed;
use crate::args::{
    DeployArgs, DiffArgs, DiffFormat, HistoryArgs, PlanArgs, PromoteArgs, RollbackArgs,
};
use crate::outln;
use crate::print::print_table;
use crate::settings::Settings;

/// Asks on a terminal, or needs `--yes` elsewhere, before changing a protected environment.
fn confirm(env: &str, protected: bool, yes: bool, what: &str) -> Result<()> {
    if !protected || yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(SluiceError::Usage(format!(
            "environment `{env}` is protected: pass --yes to {what} without a terminal to confirm"
        ))
        .into());
    }
    eprint!("{what} in protected environment `{env}`? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(SluiceError::Usage("not confirmed: nothing changed".into()).into())
    }
}

pub async fn deploy_cmd(settings: &Settings, args: DeployArgs) -> Result<()> {
    let project = settings.project()?;
    let env = project
        .select_environment(args.env.as_deref())?
        .name
        .clone();
    let actor = settings.actor.clone();
    let outcomes = deploy(&project, &env, &args.pipes, &actor).await?;
    for o in outcomes {
        match (&o.previous, o.changed) {
            (_, false) => outln!("unchanged {} {} in {env}", o.pipe, o.version),
            (Some(prev), true) => {
                outln!("deployed  {} {} in {env} (was {prev})", o.pipe, o.version)
            }
            (None, true) => outln!("deployed  {} {} in {env} (new)", o.pipe, o.version),
        }
    }
    Ok(())
}

pub async fn plan_cmd(settings: &Settings, args: PlanArgs) -> Result<()> {
    let project = settings.project()?;
    let plan = plan(project, &args.from, &args.to).await?;
    outln!("promotion plan {} -> {}", plan.from, plan.to);
    if plan.items.is_empty() {
        outln!("nothing is deployed in `{}`", plan.from);
    }
    for item in &plan.items {
        let versions = format!(
            "{} -> {}",
            item.to_version.as_deref().unwrap_or("none"),
            item.from_version.as_deref().unwrap_or("none")
        );
        match item.kind {
            PlanKind::Unchanged => outln!(
                "= {} {} (up to date)",
                item.pipe,
                item.from_version.as_deref().unwrap_or("")
            ),
            PlanKind::Removed => outln!(
                "- {} live in `{}` as {} but not deployed in `{}` (a promotion leaves it as it is)",
                item.pipe,
                plan.to,
                item.to_version.as_deref().unwrap_or(""),
                plan.from
            ),
            PlanKind::Added | PlanKind::Changed => {
                let sign = if item.kind == PlanKind::Added {
                    "+"
                } else {
                    "~"
                };
                let what = if item.kind == PlanKind::Added {
                    "added"
                } else {
                    "changed"
                };
                let breaking = if item.is_breaking() { ", BREAKING" } else { "" };
                outln!("{sign} {} {what} {versions}{breaking}", item.pipe);
                if let Some(err) = &item.plan_error {
                    outln!("    plan: {err}");
                }
                if item.kind == PlanKind::Changed {
                    for c in &item.schema_changes {
                        outln!("    schema: {c}");
                    }
                    for line in item.diff.lines() {
                        outln!("    {line}");
                    }
                }
            }
        }
    }
    Ok(())
}

pub async fn promote_cmd(settings: &Settings, args: PromoteArgs) -> Result<()> {
    let project = settings.project()?;
    let target = project.environment(&args.to)?;
    project.environment(&args.from)?;
    if !args.dry_run {
        confirm(&args.to, target.protected, args.yes, "promote")?;
    }
    let options = PromoteOptions {
        dry_run: args.dry_run,
        gates: GateOptions {
            allow_breaking: args.allow_breaking,
            target_sample: args.sample,
        },
        actor: settings.actor.clone(),
    };
    let bar = crate::print::progress_bar();
    let report = promote_with_progress(
        project,
        &args.from,
        &args.to,
        &args.pipes,
        &options,
        &|p: &sluice_engine::util::progress::Progress| crate::print::show_progress(&bar, p),
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    if let Some(pid) = report.stale_lock {
        eprintln!(
            "note: took over a stale lock of `{}` left by pid {pid}",
            report.to
        );
    }
    for p in &report.pipes {
        if p.up_to_date {
            outln!("= {} {} already live in {}", p.pipe, p.version, report.to);
            continue;
        }
        outln!(
            "{} {} {} -> {}",
            if p.passed() { "ok  " } else { "FAIL" },
            p.pipe,
            p.previous.as_deref().unwrap_or("none"),
            p.version
        );
        for g in &p.gates {
            outln!(
                "    {} {}: {}",
                if g.passed { "pass" } else { "FAIL" },
                g.gate,
                g.detail
            );
        }
    }
    if report.blocked() {
        eprintln!(
            "promotion blocked by a failing gate: nothing changed in `{}`",
            report.to
        );
        return Err(Failed.into());
    }
    if report.dry_run {
        outln!("dry run: every gate passed; nothing changed");
    } else if report.applied {
        let n = report.pipes.iter().filter(|p| !p.up_to_date).count();
        outln!("promoted {n} pipe(s) from {} to {}", report.from, report.to);
    } else {
        outln!("nothing to promote: `{}` is up to date", report.to);
    }
    Ok(())
}

pub async fn rollback_cmd(settings: &Settings, args: RollbackArgs) -> Result<()> {
    let project = settings.project()?;
    let env = project.environment(&args.env)?;
    confirm(&args.env, env.protected, args.yes, "roll back")?;
    let actor = settings.actor.clone();
    let event = rollback(&project, &args.env, &args.pipe, args.to.as_deref(), &actor).await?;
    outln!(
        "rolled back {} in {}: {} -> {}",
        event.pipe,
        args.env,
        event.previous.as_deref().unwrap_or("none"),
        event.version
    );
    Ok(())
}

pub async fn history_cmd(settings: &Settings, args: HistoryArgs) -> Result<()> {
    let project = settings.project()?;
    let env = project.select_environment(args.env.as_deref())?;
    let events = DeploymentState::open(env)?
        .history(args.pipe.as_deref())
        .await?;
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let failed = e.gates.iter().filter(|g| !g.passed).count();
            vec![
                e.seq.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                e.pipe.clone(),
                e.version.clone(),
                e.previous.clone().unwrap_or_default(),
                e.from_env.clone().unwrap_or_default(),
                if e.gates.is_empty() {
                    String::new()
                } else {
                    format!("{} passed, {failed} failed", e.gates.len() - failed)
                },
            ]
        })
        .collect();
    outln!("history of {}", env.name);
    print_table(
        &[
            "seq", "at", "actor", "action", "pipe", "version", "previous", "from", "gates",
        ],
        &rows,
    )
}

pub async fn status_cmd(settings: &Settings) -> Result<()> {
    let project = settings.project()?;
    let statuses = status(&project).await?;
    let envs: Vec<String> = project.environments.keys().cloned().collect();
    let mut headers = vec!["pipe", "working copy"];
    headers.extend(envs.iter().map(|s| s.as_str()));
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let mut row = vec![
                s.pipe.clone(),
                s.working.clone().unwrap_or_else(|| "(deleted)".into()),
            ];
            for env in &envs {
                row.push(match (s.live.get(env).cloned().flatten(), &s.working) {
                    (None, _) => "-".into(),
                    (Some(v), Some(w)) if v == *w => format!("{v} (same)"),
                    (Some(v), _) => format!("{v} (differs)"),
                });
            }
            row
        })
        .collect();
    print_table(&headers, &rows)
}

pub async fn diff_cmd(settings: &Settings, args: DiffArgs) -> Result<()> {
    use sluice_engine::deploy::diff::diff_outputs;
    use sluice_engine::{EnvSession, RunOptions, SampleOverride};
    let project = settings.project()?;
    if args.scaled {
        // The head's estimates of the full data against the base's answer.
        let report = sluice_engine::fidelity::pipe_fidelity(
            project,
            &args.pipe,
            args.head.as_deref().unwrap_or("staging"),
            args.base.as_deref().unwrap_or("production"),
            &args.params,
            &SampleOverride::default(),
            &args.key,
            args.tolerance,
        )
        .await?;
        super::fidelity::print_fidelity(&report, args.format)?;
        outln!(
            "{}",
            if report.agrees() {
                "equal (within the estimates' bounds)"
            } else {
                "different"
            }
        );
        return if report.agrees() {
            Ok(())
        } else {
            Err(Failed.into())
        };
    }
    let options = RunOptions::default();
    let (base_label, base, head_label, head) = if let Some(spec) = &args.versions {
        let (a, b) = spec
            .split_once("..")
            .ok_or_else(|| SluiceError::Usage(format!("--versions `{spec}` is not A..B")))?;
        let env = args
            .env
            .clone()
            .expect("clap requires --env with --versions");
        let session = EnvSession::open(project.clone(), &env, &SampleOverride::default())?;
        let (old, new) = (
            resolve_version(&session, &args.pipe, a).await?,
            resolve_version(&session, &args.pipe, b).await?,
        );
        let base = session.run_pipe_def(&old, &args.params, &options).await?;
        let head = session.run_pipe_def(&new, &args.params, &options).await?;
        (format!("{env}@{a}"), base, format!("{env}@{b}"), head)
    } else {
        let base_env = args.base.clone().unwrap_or_else(|| "production".into());
        let head_env = args.head.clone().unwrap_or_else(|| "staging".into());
        let run = |env: String| {
            let project = project.clone();
            let pipe = args.pipe.clone();
            let params = args.params.clone();
            async move {
                let session = EnvSession::open(project, &env, &SampleOverride::default())?;
                let out = session
                    .run_pipe(&pipe, &params, &RunOptions::default())
                    .await?;
                Ok::<_, SluiceError>((env, out))
            }
        };
        let (b, base) = run(base_env).await?;
        let (h, head) = run(head_env).await?;
        (b, base, h, head)
    };
    let report = diff_outputs(
        base_label,
        &base,
        head_label,
        &head,
        &args.key,
        args.sample_rows,
    )
    .await?;
    match args.format {
        DiffFormat::Json => {
            let sample = |batches: &[datafusion::arrow::record_batch::RecordBatch]| -> Result<serde_json::Value> {
                let mut buf = Vec::new();
                crate::print::write_batches(&mut buf, crate::print::PrintFormat::Json, &batches.first().map(|b| b.schema()).unwrap_or_else(|| std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty())), batches)?;
                Ok(serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Array(vec![])))
            };
            let value = serde_json::json!({
                "equal": report.is_equal(),
                "base": { "label": report.base.label, "rows": report.base.rows },
                "head": { "label": report.head.label, "rows": report.head.rows },
                "schema_changes": report.schema_changes.iter().map(|c| serde_json::json!({"change": c.to_string(), "breaking": c.is_breaking()})).collect::<Vec<_>>(),
                "key": report.key,
                "only_in_base": report.only_in_base,
                "only_in_head": report.only_in_head,
                "columns": report.columns.iter().map(|c| serde_json::json!({"column": c.column, "matching": c.matching, "compared": c.compared, "match_percent": c.percent()})).collect::<Vec<_>>(),
                "sample_base": sample(&report.sample_base)?,
                "sample_head": sample(&report.sample_head)?,
            });
            outln!("{}", serde_json::to_string_pretty(&value)?);
        }
        DiffFormat::Text => {
            outln!(
                "diff of {}: base {} ({} rows), head {} ({} rows)",
                args.pipe,
                report.base.label,
                report.base.rows,
                report.head.label,
                report.head.rows
            );
            if report.schema_changes.is_empty() {
                outln!("schema: unchanged");
            }
            for c in &report.schema_changes {
                outln!("schema: {c}");
            }
            let by = if report.key.is_empty() {
                "whole rows".to_string()
            } else {
                format!("key ({})", report.key.join(", "))
            };
            outln!(
                "rows only in base: {}, only in head: {} (by {by})",
                report.only_in_base,
                report.only_in_head
            );
            if !report.columns.is_empty() {
                let rows: Vec<Vec<String>> = report
                    .columns
                    .iter()
                    .map(|c| {
                        vec![
                            c.column.clone(),
                            format!("{:.2}%", c.percent()),
                            format!("{} of {}", c.matching, c.compared),
                        ]
                    })
                    .collect();
                print_table(&["column", "match", "rows"], &rows)?;
            }
            for (side, batches) in [("base", &report.sample_base), ("head", &report.sample_head)] {
                if sluice_engine::deploy::diff::sample_rows(batches) > 0 {
                    outln!("differing rows in {side}:");
                    outln!(
                        "{}",
                        datafusion::arrow::util::pretty::pretty_format_batches(batches)?
                    );
                }
            }
            outln!(
                "{}",
                if report.is_equal() {
                    "equal"
                } else {
                    "different"
                }
            );
        }
    }
    if report.is_equal() {
        Ok(())
    } else {
        Err(Failed.into())
    }
}
