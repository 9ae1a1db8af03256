//! Reading an environment: `envs`, `sources`, `query`, `run`, `explain`, `validate`.

use anyhow::Result;
use sluice_engine::{EnvSession, RunOptions, SampleOverride, SluiceError};

use super::Failed;
use crate::args::{ExplainArgs, QueryArgs, RunArgs, SampleArgs, SourcesArgs, ValidateArgs};
use crate::outln;
use crate::print::{human_bytes, human_count, print_output, print_table};
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: RunArgs) -> Result<()> {
    let session = if args.fixtures {
        // The pipe tests' store: what a case's run sees, to write its expectation from.
        let project = settings.project()?;
        let env = sluice_engine::project::pipe_tests::test_environment(&project);
        EnvSession::open_with(project, env, &args.sample.to_override())?
    } else {
        settings.session(&args.env, &args.sample)?
    };
    let pipe = session.resolve_pipe(&args.pipe, args.deployed).await?;
    if settings.verbose > 0 && !args.output.quiet {
        for w in session.sampling_warnings(&pipe).await.unwrap_or_default() {
            eprintln!("warning: {w}");
        }
    }
    let options = RunOptions {
        limit: args.output.limit,
        estimate: args.estimate,
        ..Default::default()
    };
    // Runs on the fixtures are not recorded: their store is committed test data.
    let out = if args.fixtures {
        session.run_pipe_def(&pipe, &args.params, &options).await?
    } else {
        sluice_engine::stats::run_pipe_recorded(&session, &pipe, &args.params, &options, "cli")
            .await?
    };
    print_output(&out, &args.output, settings.verbose)
}

/// The SQL of `sluice query`: the argument, standard input (`-`) or `--file`.
fn query_text(args: &QueryArgs) -> Result<String> {
    let text = match (&args.sql, &args.file) {
        (_, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            SluiceError::Usage(format!("--file {}: cannot read it: {e}", path.display()))
        })?,
        (Some(dash), None) if dash == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                SluiceError::Usage(format!("cannot read the query from standard input: {e}"))
            })?;
            text
        }
        (Some(sql), None) => sql.clone(),
        (None, None) => unreachable!("clap requires SQL or --file"),
    };
    if text.trim().is_empty() {
        return Err(SluiceError::Usage("the query is empty".into()).into());
    }
    Ok(text)
}

pub async fn query(settings: &Settings, args: QueryArgs) -> Result<()> {
    let sql = query_text(&args)?;
    let session = settings.session(&args.env, &args.sample)?;
    let out = session
        .query(
            &sql,
            &RunOptions {
                limit: args.output.limit,
                estimate: args.estimate,
                ..Default::default()
            },
        )
        .await?;
    print_output(&out, &args.output, settings.verbose)
}

pub async fn explain(settings: &Settings, args: ExplainArgs) -> Result<()> {
    let session = settings.session(&args.env, &args.sample)?;
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

pub fn envs(settings: &Settings) -> Result<()> {
    let project = settings.project()?;
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

pub async fn sources(settings: &Settings, args: SourcesArgs) -> Result<()> {
    let project = settings.project()?;
    let session = settings.session(&args.env, &SampleArgs::default())?;
    let names = if args.sources.is_empty() {
        session.source_names().await?
    } else {
        args.sources.clone()
    };
    let mut rows = Vec::new();
    let mut schemas = Vec::new();
    let mut empty = Vec::new();
    for name in &names {
        let listing = match session.list_source(name).await {
            Ok(l) => l,
            // An empty source is a row of its own, and how to fill it is said below.
            Err(e @ SluiceError::MissingSource { .. }) => {
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    "0".into(),
                    "0".into(),
                    "no data".into(),
                    "-".into(),
                    "-".into(),
                    "yes".into(),
                ]);
                empty.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
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
    for e in empty {
        eprintln!("note: {e}");
    }
    Ok(())
}

pub async fn validate(settings: &Settings, args: ValidateArgs) -> Result<()> {
    let project = settings.project()?;
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
        // How each pipe that plans reads the sample: warnings, not failures.
        for pipe in project.pipes.values() {
            if failures.iter().any(|f| f.pipe == pipe.name) {
                continue;
            }
            if let Ok(warnings) = session.sampling_warnings(pipe).await {
                for w in warnings {
                    outln!("warn {env}: {w}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} failing pipe plan(s)");
        return Err(Failed.into());
    }
    Ok(())
}
