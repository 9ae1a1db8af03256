//! Commands that write into stores: `materialize`, `ingest`, `sample build`, `branch`.

use anyhow::Result;
use sluice_engine::branch;
use sluice_engine::ingest::ingest;
use sluice_engine::materialize::materialize;
use sluice_engine::sample_store::{self, SampleBuildOptions};

use crate::args::{
    BranchArgs, BranchCommand, IngestArgs, MaterializeArgs, SampleCmdArgs, SampleCommand,
};
use crate::outln;
use crate::print::{
    human_bytes, human_count, print_table, progress_bar, show_progress, source_lines, summary_line,
};
use crate::settings::Settings;
use sluice_engine::util::progress::{Progress, ProgressUnit};

pub async fn materialize_cmd(settings: &Settings, args: MaterializeArgs) -> Result<()> {
    let session = settings.session(&args.env, &args.sample)?;
    let actor = settings.actor.clone();
    let bar = progress_bar();
    let report = materialize(
        &session,
        &args.pipe,
        &args.params,
        args.deployed,
        &actor,
        &|p: &Progress| show_progress(&bar, p),
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    eprintln!("{}", summary_line(&report.run));
    if settings.verbose > 0 {
        for line in source_lines(&report.run) {
            eprintln!("{line}");
        }
    }
    outln!(
        "materialized pipe {} into dataset {} ({}, {}): {} rows, {} in this write; the dataset now has {} rows in {} files (version {})",
        report.pipe,
        report.dataset,
        report.location,
        report.mode.as_str(),
        human_count(report.rows_written),
        human_bytes(report.bytes_written),
        human_count(report.dataset_rows),
        report.dataset_files,
        report.manifest.version
    );
    Ok(())
}

pub async fn ingest_cmd(settings: &Settings, args: IngestArgs) -> Result<()> {
    let session = settings.session(&args.env, &Default::default())?;
    let actor = settings.actor.clone();
    let bar = progress_bar();
    let report = ingest(
        &session,
        &args.source,
        &args.files,
        args.strict,
        &actor,
        &args.partition,
        &|p: &Progress| show_progress(&bar, p),
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    outln!(
        "ingested {} rows from {} file(s) into {} ({})",
        human_count(report.rows_ingested),
        report.files,
        report.source,
        session.environment().name
    );
    if report.rows_rejected > 0 {
        outln!(
            "rejected {} rows: kept in the quarantine {} (query it as {})",
            human_count(report.rows_rejected),
            report.errors_location.as_deref().unwrap_or(""),
            sluice_engine::ingest::errors_table(&report.source)
        );
        for r in &report.rejected_sample {
            outln!("  {}:{}: {}", r.file, r.line, r.reason);
        }
        if report.rows_rejected > report.rejected_sample.len() as u64 {
            outln!("  …");
        }
    }
    Ok(())
}

pub async fn sample_cmd(settings: &Settings, args: SampleCmdArgs) -> Result<()> {
    let SampleCommand::Build(args) = args.command;
    let project = settings.project()?;
    let options = SampleBuildOptions::for_target(
        &project,
        &args.to,
        args.fraction,
        args.key.clone(),
        args.seed,
    )?;
    let actor = settings.actor.clone();
    let bar = progress_bar();
    let progress = |p: &sample_store::BuildProgress| {
        show_progress(
            &bar,
            &Progress::new(
                format!("source {}/{}: {}", p.index + 1, p.total, p.source),
                p.bytes_done,
                Some(p.bytes_total),
                ProgressUnit::Bytes,
            ),
        )
    };
    let report = sample_store::build(
        project.clone(),
        &args.from,
        &args.to,
        &options,
        &actor,
        &progress,
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    let rows: Vec<Vec<String>> = report
        .sources
        .iter()
        .map(|s| {
            vec![
                s.source.clone(),
                s.method.clone(),
                human_count(s.rows_in),
                human_count(s.rows_out),
                if s.rows_in == 0 {
                    "-".into()
                } else {
                    format!("{:.2}%", 100.0 * s.rows_out as f64 / s.rows_in as f64)
                },
                human_bytes(s.bytes_in),
                human_bytes(s.bytes_out),
                if s.null_keys_in == 0 {
                    "-".into()
                } else {
                    format!(
                        "{} of {}",
                        human_count(s.null_keys_kept),
                        human_count(s.null_keys_in)
                    )
                },
            ]
        })
        .collect();
    print_table(
        &[
            "source",
            "kept",
            "rows in",
            "rows out",
            "rows %",
            "bytes in",
            "bytes out",
            "null keys kept",
        ],
        &rows,
    )?;
    outln!(
        "sample build {} -> {}: key fraction {} (seed {}), effective fraction {}",
        report.from,
        report.to,
        report.options.fraction,
        report.options.seed,
        report
            .effective_fraction()
            .map(|f| format!("{:.2}%", f * 100.0))
            .unwrap_or_else(|| "- (no source has a sample_key)".into())
    );
    Ok(())
}

pub async fn branch_cmd(settings: &Settings, args: BranchArgs) -> Result<()> {
    let project = settings.project()?;
    match args.command {
        BranchCommand::Create(a) => {
            let env = branch::create(
                &project,
                &a.name,
                &a.from,
                &a.sample.to_override(),
                a.data.as_deref(),
                &settings.actor,
            )
            .await?;
            outln!(
                "created branch {} over {}: its store is {}, it reads {}",
                env.name,
                a.from,
                env.location,
                env.sample
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "the full set".into())
            );
            outln!(
                "try it: sluice deploy --all --env {0} && sluice run PIPE --env {0} --deployed",
                env.name
            );
        }
        BranchCommand::Delete(a) => {
            let deleted = branch::delete(&project, &a.name).await?;
            outln!(
                "deleted branch {} ({deleted} object(s) it wrote); its parent's store is untouched",
                a.name
            );
        }
        BranchCommand::List => {
            let deleting = project.deleting_branches.values().map(|(e, since)| {
                (
                    e,
                    format!(
                        "being deleted since {since}: run `sluice branch delete {}` to finish",
                        e.name
                    ),
                )
            });
            let mut rows: Vec<(String, Vec<String>)> = project
                .environments
                .values()
                .map(|e| (e, "ok".to_string()))
                .chain(deleting)
                .filter_map(|(e, state)| {
                    let parent = e.parent.as_ref()?;
                    Some((
                        e.name.clone(),
                        vec![
                            e.name.clone(),
                            parent.name.clone(),
                            e.location.to_string(),
                            e.sample
                                .as_ref()
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "full".into()),
                            state,
                        ],
                    ))
                })
                .collect();
            rows.sort();
            let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
            print_table(&["branch", "parent", "store", "sample", "state"], &rows)?;
        }
    }
    Ok(())
}
