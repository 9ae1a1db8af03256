//! Creating projects: `init` (the sales_calls example, with data) and `quickstart`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use sluice_engine::fixtures::{GenOptions, generate_sales_calls, write_example_project};
use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride, SluiceError};

use crate::args::{InitArgs, NewArgs};
use crate::outln;
use crate::print::{human_bytes, human_count, human_duration, print_table};

fn init_project(args: &InitArgs, default_dir: &str) -> Result<PathBuf> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_dir));
    // Check everything before writing anything: a failed init leaves no half project.
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(SluiceError::Usage(format!(
            "--scale {} must be a positive number",
            args.scale
        ))
        .into());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_example_project(&dir)?;
    let options = GenOptions {
        scale: args.scale,
        seed: args.seed,
        ..GenOptions::default()
    };
    let project = Project::load(&dir)?;
    for env in project.environments.values() {
        let dir = env
            .location
            .local_dir()
            .expect("the example project's stores are local folders");
        let summary = generate_sales_calls(dir, &options)?;
        eprintln!(
            "{}: wrote {} calls, {} accounts, {} reps into {}",
            env.name,
            human_count(summary.calls),
            human_count(summary.accounts),
            human_count(summary.reps),
            dir.display()
        );
    }
    // The pipe tests' fixture store: tiny and fixed, whatever --scale and --seed say.
    let summary = sluice_engine::fixtures::generate_example_test_data(&dir)?;
    eprintln!(
        "tests: wrote {} calls, {} accounts, {} reps into {}",
        human_count(summary.calls),
        human_count(summary.accounts),
        human_count(summary.reps),
        dir.join(sluice_engine::project::pipe_tests::TEST_DATA_DIR)
            .display()
    );
    Ok(dir)
}

/// Deploys the example's pipes to staging and promotes them to production, so both
/// environments run them on day one (and the history shows how they got there).
async fn deploy_example(dir: &Path) -> Result<()> {
    let project = Arc::new(Project::load(dir)?);
    sluice_engine::deploy::deploy_and_promote(project, "staging", "production", "sluice init")
        .await?;
    eprintln!("deployed the example pipes to staging and promoted them to production");
    Ok(())
}

pub async fn init(args: InitArgs) -> Result<()> {
    let dir = init_project(&args, ".")?;
    deploy_example(&dir).await?;
    outln!("created the sales_calls project in {}", dir.display());
    outln!(
        "next: cd {} && sluice run top_reps     (staging, sampled)",
        dir.display()
    );
    outln!("      sluice run top_reps --env production   (full data)");
    Ok(())
}

pub async fn quickstart(args: InitArgs) -> Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("sluice-quickstart"));
    if dir.join("sluice.toml").exists() {
        eprintln!("using the existing project in {}", dir.display());
    } else {
        init_project(
            &InitArgs {
                dir: Some(dir.clone()),
                ..args
            },
            "sluice-quickstart",
        )?;
        deploy_example(&dir).await?;
    }
    let project = Arc::new(Project::load(&dir)?);
    let mut rows = Vec::new();
    let mut first_output = None;
    for pipe in project.pipes.keys() {
        for env in ["staging", "production"] {
            if !project.environments.contains_key(env) {
                continue;
            }
            let session = EnvSession::open(project.clone(), env, &SampleOverride::default())?;
            let out = session.run_pipe(pipe, &[], &RunOptions::default()).await?;
            let r = &out.report;
            rows.push(vec![
                pipe.clone(),
                env.to_string(),
                r.sample
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "full".into()),
                human_count(r.rows_out),
                human_count(r.rows_scanned()),
                human_bytes(r.bytes_scanned()),
                format!("{:.1}%", r.effective_fraction() * 100.0),
                human_duration(r.elapsed),
            ]);
            if first_output.is_none() && pipe == "top_reps" && env == "staging" {
                // Staging's answer as estimates of the full data.
                let estimate = RunOptions {
                    estimate: true,
                    ..RunOptions::default()
                };
                first_output = Some(session.run_pipe(pipe, &[], &estimate).await?);
            }
        }
    }
    if let Some(out) = first_output {
        outln!(
            "top_reps in staging: estimates of production's answer from a sample, with 95% intervals:"
        );
        crate::print::write_batches(
            &mut std::io::stdout().lock(),
            crate::print::PrintFormat::Table,
            &out.schema,
            &out.batches,
        )?;
        outln!();
    }
    outln!("staging vs production, every pipe of {}:", dir.display());
    print_table(
        &[
            "pipe",
            "environment",
            "sample",
            "rows out",
            "rows scanned",
            "bytes scanned",
            "kept",
            "time",
        ],
        &rows,
    )?;
    // How far staging's estimates are from production's answer, pipe by pipe.
    if project.environments.contains_key("staging")
        && project.environments.contains_key("production")
    {
        let mut fidelity_rows = Vec::new();
        for pipe in project.pipes.keys() {
            let report = sluice_engine::fidelity::pipe_fidelity(
                project.clone(),
                pipe,
                "staging",
                "production",
                &[],
                &SampleOverride::default(),
                &[],
                None,
            )
            .await;
            let row = match report {
                Ok(r) => {
                    let (inside, bounded): (f64, usize) = r
                        .columns
                        .iter()
                        .filter_map(|c| Some((c.within_interval? * c.bounded as f64, c.bounded)))
                        .fold((0.0, 0), |(i, b), (ci, cb)| (i + ci, b + cb));
                    let errors: Vec<f64> = r
                        .columns
                        .iter()
                        .filter_map(|c| c.median_relative_error)
                        .collect();
                    vec![
                        pipe.clone(),
                        if r.keys.is_empty() {
                            "-".into()
                        } else {
                            format!("{:.0}%", r.present_share() * 100.0)
                        },
                        errors
                            .iter()
                            .cloned()
                            .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))))
                            .map(|e| format!("{:.1}%", e * 100.0))
                            .unwrap_or_else(|| "-".into()),
                        if bounded == 0 {
                            r.note
                                .clone()
                                .map(|n| format!("not estimated: {n}"))
                                .unwrap_or_else(|| {
                                    "no interval (groups in a single sampled unit)".into()
                                })
                        } else {
                            format!("{:.0}% of {bounded}", 100.0 * inside / bounded as f64)
                        },
                    ]
                }
                Err(e) => vec![pipe.clone(), "-".into(), "-".into(), e.to_string()],
            };
            fidelity_rows.push(row);
        }
        outln!("\nhow far staging's estimates are from production (sluice fidelity PIPE):");
        print_table(
            &[
                "pipe",
                "production groups in staging",
                "median error (worst column)",
                "production inside the 95% intervals",
            ],
            &fidelity_rows,
        )?;
    }
    outln!(
        "\nnext: cd {} && sluice run top_reps --estimate && sluice fidelity daily_outcomes && sluice sources",
        dir.display()
    );
    Ok(())
}

/// `sluice new DIR`: an empty project for the user's own data.
pub fn new_project(args: NewArgs) -> Result<()> {
    let created = sluice_engine::project::template::write_new_project(&args.dir, &args.source)?;
    let dir = created.dir.display();
    let source = &created.source;
    outln!(
        "created the project {} in {dir}: environments staging (a 10% sample) and production (protected, full), the source {source}, the pipe {}",
        created.name,
        created.pipe
    );
    for f in &created.files {
        outln!("  {f}");
    }
    outln!("next: cd {dir}");
    outln!(
        "      sluice ingest {source} FILE --env production   # your data: CSV, NDJSON or Parquet"
    );
    outln!(
        "      sluice sample build                             # staging: a sample of production"
    );
    outln!("      sluice run {}", created.pipe);
    Ok(())
}
