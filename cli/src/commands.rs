//! One function per command: resolve the arguments, call the engine, print.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_engine::fixtures::{GenOptions, generate_sales_calls, write_example_project};
use sluice_engine::{
    EnvSession, Project, RunOptions, RunOutput, RunReport, SampleOverride, SluiceError,
};

use crate::args::{
    EnvArg, ExplainArgs, InitArgs, OutputArgs, QueryArgs, RunArgs, SampleArgs, SourcesArgs,
    ValidateArgs,
};
use crate::outln;
use crate::print::{emit, human_bytes, human_count, human_duration};

/// Failures found by a command that ran fine (e.g. `validate` finding broken pipes):
/// reported already, exit 1.
#[derive(Debug)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Failed {}

pub fn load_project(dir: Option<&Path>) -> Result<Arc<Project>, SluiceError> {
    let project = match dir {
        Some(d) => Project::load(d)?,
        None => Project::discover(".")?,
    };
    Ok(Arc::new(project))
}

pub(crate) fn open(
    project: Arc<Project>,
    env: &EnvArg,
    sample: &SampleArgs,
) -> Result<EnvSession, SluiceError> {
    let name = project.select_environment(env.env.as_deref())?.name.clone();
    EnvSession::open(project, &name, &sample.to_override())
}

pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let fields: Vec<Field> = headers
        .iter()
        .map(|h| Field::new(*h, DataType::Utf8, false))
        .collect();
    let columns: Vec<ArrayRef> = (0..headers.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    outln!("{}", pretty_format_batches(&[batch])?);
    Ok(())
}

/// The one-line summary of a run, for standard error.
pub fn summary_line(report: &RunReport) -> String {
    let what = match &report.pipe {
        Some(p) => format!("pipe {p}"),
        None => "query".to_string(),
    };
    let sample = match &report.sample {
        Some(p) => format!(
            "sample {p}, kept {:.1}% of rows",
            report.effective_fraction() * 100.0
        ),
        None => "full data".to_string(),
    };
    format!(
        "{} · {} · {} rows in {} · scanned {} rows, {} · {}",
        report.env,
        what,
        human_count(report.rows_out),
        human_duration(report.elapsed),
        human_count(report.rows_scanned()),
        human_bytes(report.bytes_scanned()),
        sample
    )
}

pub(crate) fn print_output(out: &RunOutput, args: &OutputArgs, verbose: u8) -> Result<()> {
    emit(
        args.output.as_deref(),
        args.format,
        &out.schema,
        &out.batches,
    )?;
    if !args.quiet {
        eprintln!("{}", summary_line(&out.report));
        if verbose > 0 {
            for s in &out.report.sources {
                eprintln!(
                    "  {}: {} · scanned {} of {} rows, {} · kept {:.1}%",
                    s.source,
                    s.sampling,
                    human_count(s.rows_scanned),
                    human_count(s.rows_total),
                    human_bytes(s.bytes_scanned),
                    s.fraction * 100.0
                );
            }
        }
        if let Some(path) = &args.output {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

pub async fn run(project: Option<&Path>, args: RunArgs, verbose: u8) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project, &args.env, &args.sample)?;
    let pipe = session.resolve_pipe(&args.pipe, args.deployed).await?;
    let out = session
        .run_pipe_recorded(
            &pipe,
            &args.params,
            &RunOptions {
                limit: args.output.limit,
            },
            "cli",
        )
        .await?;
    print_output(&out, &args.output, verbose)
}

pub async fn query(project: Option<&Path>, args: QueryArgs, verbose: u8) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project, &args.env, &args.sample)?;
    let out = session
        .query(
            &args.sql,
            &RunOptions {
                limit: args.output.limit,
            },
        )
        .await?;
    print_output(&out, &args.output, verbose)
}

pub async fn explain(project: Option<&Path>, args: ExplainArgs) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project, &args.env, &args.sample)?;
    let pipe = session.resolve_pipe(&args.pipe, args.deployed).await?;
    let text = session
        .explain_pipe(&pipe, &args.params, args.analyze)
        .await?;
    let sample = match session.policy() {
        Some(p) => format!("sample {p}"),
        None => "full data".into(),
    };
    outln!(
        "-- pipe {} in {} ({sample})",
        args.pipe,
        session.environment().name
    );
    outln!("{text}");
    Ok(())
}

pub fn envs(project: Option<&Path>) -> Result<()> {
    let project = load_project(project)?;
    let rows: Vec<Vec<String>> = project
        .environments
        .values()
        .map(|e| {
            let mut settings = Vec::new();
            if let Some(n) = e.settings.target_partitions {
                settings.push(format!("target_partitions={n}"));
            }
            if let Some(n) = e.settings.batch_size {
                settings.push(format!("batch_size={n}"));
            }
            if let Some(n) = e.settings.memory_limit {
                settings.push(format!("memory_limit={}", human_bytes(n)));
            }
            if e.engine != sluice_engine::RunEngine::Embedded {
                settings.push(format!("engine={}", e.engine.describe()));
            }
            let data = match &e.parent {
                Some(p) => format!("{} (branch over {})", e.data, p.name),
                None => e.data.clone(),
            };
            vec![
                e.name.clone(),
                data,
                e.sample
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "full".into()),
                if e.protected {
                    "yes".into()
                } else {
                    "no".into()
                },
                settings.join(" "),
            ]
        })
        .collect();
    print_table(
        &["environment", "data", "sample", "protected", "settings"],
        &rows,
    )
}

pub async fn sources(project: Option<&Path>, args: SourcesArgs) -> Result<()> {
    let project = load_project(project)?;
    let session = open(project.clone(), &args.env, &SampleArgs::default())?;
    let names = if args.sources.is_empty() {
        session.source_names().await?
    } else {
        args.sources.clone()
    };
    let mut rows = Vec::new();
    let mut schemas = Vec::new();
    for name in &names {
        let listing = session.list_source(name).await?;
        let def = session.source_def(name).await?.expect("listed");
        let sampling = match project.source_sampling(&def, session.policy()) {
            sluice_engine::SourceSampling::Full => "full".to_string(),
            sluice_engine::SourceSampling::Sampled(p) => p.to_string(),
        };
        rows.push(vec![
            name.clone(),
            def.path.clone(),
            listing.files.len().to_string(),
            listing.row_groups().to_string(),
            human_count(listing.rows()),
            human_bytes(listing.bytes()),
            sampling,
            if project.sources.contains_key(name) {
                "yes".into()
            } else {
                "no".into()
            },
        ]);
        let schema = listing.table_schema();
        let cols: Vec<Vec<String>> = schema
            .fields()
            .iter()
            .map(|f| {
                vec![
                    f.name().clone(),
                    f.data_type().to_string(),
                    if f.is_nullable() {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    if listing.partitions.contains(f.name()) {
                        "partition".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        schemas.push((name.clone(), cols));
    }
    outln!(
        "environment {} ({})",
        session.environment().name,
        session.store().location()
    );
    print_table(
        &[
            "source",
            "path",
            "files",
            "row_groups",
            "rows",
            "bytes",
            "sample",
            "declared",
        ],
        &rows,
    )?;
    for (name, cols) in schemas {
        outln!("\n{name}");
        print_table(&["column", "type", "nullable", "note"], &cols)?;
    }
    Ok(())
}

pub async fn validate(project: Option<&Path>, args: ValidateArgs) -> Result<()> {
    let project = load_project(project)?;
    let envs: Vec<String> = match &args.env {
        Some(e) => vec![project.environment(e)?.name.clone()],
        None => project.environments.keys().cloned().collect(),
    };
    let mut failed = 0;
    for env in &envs {
        let session = EnvSession::open(project.clone(), env, &SampleOverride::default())?;
        let failures = session.validate().await;
        if failures.is_empty() {
            outln!("ok   {env}: {} pipes plan", project.pipes.len());
        }
        for f in &failures {
            failed += 1;
            match &f.node {
                Some(node) => outln!(
                    "FAIL {env}: pipe `{}`, node `{node}`: {}",
                    f.pipe,
                    f.message
                ),
                None => outln!("FAIL {env}: pipe `{}`: {}", f.pipe, f.message),
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} failing pipe plan(s)");
        return Err(Failed.into());
    }
    Ok(())
}

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
        dir.join(sluice_engine::pipe_tests::TEST_DATA_DIR).display()
    );
    Ok(dir)
}

/// Deploys the example's pipes to staging and promotes them to production, so both
/// environments run them on day one (and the history shows how they got there).
async fn deploy_example(dir: &Path) -> Result<()> {
    let project = Arc::new(Project::load(dir)?);
    deploy_and_promote(project, "sluice init", "the example pipes").await
}

/// Deploys every pipe to staging and promotes them all to production as `actor`; a
/// blocked promotion is an error listing the failed gates. `what` names the pipes.
pub(crate) async fn deploy_and_promote(
    project: Arc<Project>,
    actor: &str,
    what: &str,
) -> Result<()> {
    use sluice_engine::deploy::{PromoteOptions, deploy, promote};
    deploy(&project, "staging", &[], actor).await?;
    let report = promote(
        project,
        "staging",
        "production",
        &[],
        &PromoteOptions {
            actor: actor.to_string(),
            ..PromoteOptions::default()
        },
    )
    .await?;
    if report.blocked() {
        anyhow::bail!(
            "the promotion of {what} to production was blocked: {}",
            report.failed_gates().join("; ")
        );
    }
    eprintln!("deployed {what} to staging and promoted them to production");
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
                first_output = Some(out);
            }
        }
    }
    if let Some(out) = first_output {
        outln!("top_reps in staging (sampled):");
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
    outln!(
        "\nnext: cd {} && sluice run top_reps --param limit=5 && sluice sources",
        dir.display()
    );
    Ok(())
}
