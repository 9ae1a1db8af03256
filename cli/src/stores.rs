//! Commands that write into stores: `materialize`, `ingest`, `sample build`, `branch`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use sluice_engine::deploy::default_actor;
use sluice_engine::ingest::ingest;
use sluice_engine::materialize::materialize;
use sluice_engine::sample_build::{self, SampleBuildOptions};
use sluice_engine::{SamplePolicy, SluiceError, branch};

use crate::args::{
    BranchArgs, BranchCommand, IngestArgs, MaterializeArgs, SampleCmdArgs, SampleCommand,
};
use crate::commands::{load_project, open, print_table, summary_line};
use crate::outln;
use crate::print::{human_bytes, human_count};

pub async fn materialize_cmd(
    project: Option<&Path>,
    args: MaterializeArgs,
    verbose: u8,
) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project, &args.env, &args.sample)?;
    let actor = args.actor.unwrap_or_else(default_actor);
    let report = materialize(&session, &args.pipe, &args.params, args.deployed, &actor).await?;
    eprintln!("{}", summary_line(&report.run));
    if verbose > 0 {
        for s in &report.run.sources {
            eprintln!("  {s:?}");
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

pub async fn ingest_cmd(project: Option<&Path>, args: IngestArgs) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project, &args.env, &Default::default())?;
    let actor = args.actor.unwrap_or_else(default_actor);
    let report = ingest(&session, &args.source, &args.files, args.strict, &actor).await?;
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

pub async fn sample_cmd(project: Option<&Path>, args: SampleCmdArgs) -> Result<()> {
    let SampleCommand::Build(args) = args.command;
    let project = load_project(project)?;
    // Defaults from the target's own policy, so a build matches what staging reads.
    let target_policy = project.environment(&args.to)?.sample.clone();
    let fraction = args
        .fraction
        .or_else(|| target_policy.as_ref().and_then(SamplePolicy::fraction))
        .unwrap_or(0.1);
    let seed = args
        .seed
        .or_else(|| target_policy.as_ref().map(SamplePolicy::seed))
        .unwrap_or(0);
    let options = SampleBuildOptions {
        fraction,
        key: args.key.clone(),
        seed,
    };
    let actor = args.actor.unwrap_or_else(default_actor);
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes}",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |p: &sample_build::BuildProgress| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("source {}/{}: {}", p.index + 1, p.total, p.source));
    };
    let report = sample_build::build(
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

pub async fn branch_cmd(project: Option<&Path>, args: BranchArgs) -> Result<()> {
    let project = load_project(project)?;
    match args.command {
        BranchCommand::Create(a) => {
            let parent = project.environment(&a.from)?;
            let sample = a
                .sample
                .to_override()
                .apply(parent.sample.as_ref())
                .map_err(SluiceError::SampleOverride)?;
            let actor = a.actor.unwrap_or_else(default_actor);
            let env = branch::create(
                &project,
                &a.name,
                &a.from,
                sample.as_ref(),
                a.data.as_deref(),
                &actor,
            )?;
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
            let rows: Vec<Vec<String>> = project
                .environments
                .values()
                .filter_map(|e| {
                    let parent = e.parent.as_ref()?;
                    Some(vec![
                        e.name.clone(),
                        parent.name.clone(),
                        e.location.to_string(),
                        e.sample
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "full".into()),
                    ])
                })
                .collect();
            print_table(&["branch", "parent", "store", "sample"], &rows)?;
        }
    }
    Ok(())
}
