//! `sluice serve`, `sluice ui`, `sluice token`, `sluice stats`: endpoints over HTTP,
//! the web console, their tokens, and the run statistics of an environment.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use sluice_engine::{RunOptions, SluiceError, Store, stats};
use sluice_serve::tokens::{Scope, TokenStore};
use sluice_serve::{LogFormat, ServeOptions, Server, shutdown_signal};

use crate::args::{
    AccessLogFormat, ServeArgs, StatsArgs, TokenArgs, TokenCommand, TokenScope, UiArgs,
};
use crate::outln;
use crate::print::{print_output, print_table};
use crate::settings::Settings;

pub async fn serve_cmd(settings: &Settings, args: ServeArgs) -> Result<()> {
    let project = settings.project()?;
    let env = project
        .select_environment(args.env.env.as_deref())?
        .name
        .clone();
    let server = Server::bind(
        project.clone(),
        &env,
        ServeOptions {
            bind: args.bind,
            sql: args.sql,
            deployed: args.deployed,
            log_format: match args.log_format {
                AccessLogFormat::Text => LogFormat::Text,
                AccessLogFormat::Json => LogFormat::Json,
                AccessLogFormat::Off => LogFormat::Off,
            },
            ..Default::default()
        },
    )
    .await?;
    let versions = if server.serves_deployed() {
        "deployed versions"
    } else {
        "working copy"
    };
    // The address on the first line of standard output, for scripts and tests that
    // bind port 0.
    outln!(
        "serving environment {env} ({versions}) on http://{}",
        server.local_addr()
    );
    std::io::stdout().flush()?;
    server.run(shutdown_signal()).await?;
    eprintln!("stopped: requests in flight finished, run statistics written");
    Ok(())
}

pub async fn ui_cmd(settings: &Settings, args: UiArgs) -> Result<()> {
    let project = settings.project()?;
    let env = project
        .select_environment(args.env.env.as_deref())?
        .name
        .clone();
    let server = sluice_serve::console::ConsoleServer::bind(project, &env, args.bind).await?;
    // The address on the first line of standard output, for scripts and tests that
    // bind port 0.
    outln!(
        "console of project {} on http://{}/ui/ (admin tokens of environment {env})",
        settings.project()?.name,
        server.local_addr()
    );
    std::io::stdout().flush()?;
    server.run(shutdown_signal()).await?;
    Ok(())
}

fn token_store(project: &sluice_engine::Project, env: Option<&str>) -> Result<TokenStore> {
    let env = project.select_environment(env)?;
    Ok(TokenStore::new(Arc::new(Store::open(env)?)))
}

pub async fn token_cmd(settings: &Settings, args: TokenArgs) -> Result<()> {
    let project = settings.project()?;
    match args.command {
        TokenCommand::Create(a) => {
            for p in &a.pipes {
                let pipe = project.pipe(p)?;
                if !pipe.endpoint {
                    return Err(SluiceError::Usage(format!(
                        "--pipes: pipe `{p}` is not an endpoint (set `endpoint = true` in {})",
                        pipe.file.display()
                    ))
                    .into());
                }
            }
            let tokens = token_store(&project, a.env.env.as_deref())?;
            let scope = match a.scope {
                TokenScope::Read => Scope::Read,
                TokenScope::Admin => Scope::Admin,
            };
            let (token, record) = tokens.create(&a.name, scope, a.pipes).await?;
            eprintln!(
                "created {} token `{}` in environment {}{}: keep it now, it is not shown again",
                record.scope,
                record.name,
                record.env,
                if record.pipes.is_empty() {
                    String::new()
                } else {
                    format!(" for pipes {}", record.pipes.join(", "))
                }
            );
            outln!("{token}");
        }
        TokenCommand::List(a) => {
            let tokens = token_store(&project, a.env.as_deref())?;
            let rows: Vec<Vec<String>> = tokens
                .list()
                .await?
                .into_iter()
                .map(|t| {
                    vec![
                        t.name,
                        t.scope.to_string(),
                        if t.pipes.is_empty() {
                            "all endpoints".into()
                        } else {
                            t.pipes.join(", ")
                        },
                        t.created_at,
                        t.hash[..12].to_string(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                outln!("no tokens");
            } else {
                print_table(&["token", "scope", "pipes", "created", "sha256"], &rows)?;
            }
        }
        TokenCommand::Revoke(a) => {
            let tokens = token_store(&project, a.env.env.as_deref())?;
            let record = tokens.revoke(&a.name).await?;
            outln!(
                "revoked token `{}` of environment {}",
                record.name,
                record.env
            );
        }
    }
    Ok(())
}

pub async fn stats_cmd(settings: &Settings, args: StatsArgs) -> Result<()> {
    let session = settings.session(&args.env, &Default::default())?;
    let sql = stats::summary_sql(args.pipe.as_deref(), args.since);
    let out = session.query(&sql, &RunOptions::default()).await?;
    if out.report.rows_out == 0 && matches!(args.output.format, crate::print::PrintFormat::Table) {
        outln!(
            "no runs recorded in environment {}{}",
            session.environment().name,
            match &args.pipe {
                Some(p) => format!(" for pipe {p}"),
                None => String::new(),
            }
        );
        return Ok(());
    }
    print_output(&out, &args.output, settings.verbose)
}
