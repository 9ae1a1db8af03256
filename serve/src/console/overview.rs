//! `/ui/`: the environments side by side (store, sampling, protection, sources with
//! their files, rows and bytes) and what is live where, with the pipes whose live
//! versions differ between environments.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use sluice_engine::deploy::{PipeStatus, status};
use sluice_engine::project::sampling::SampleOverride;
use sluice_engine::util::text::{human_bytes, thousands};
use sluice_engine::{EnvSession, Environment, Project, SluiceError};

use super::layout::{Nav, PageError, field, page as frame};
use super::{Console, pipe_url};

pub async fn page(State(c): State<Arc<Console>>) -> Result<Response, PageError> {
    let project = c.project()?;
    let mut cards = Vec::new();
    let ordered = super::environments(&project);
    for env in &ordered {
        cards.push(environment_card(&project, env).await);
    }
    let statuses = status(&project).await?;
    let envs: Vec<&String> = ordered.iter().map(|e| &e.name).collect();
    let body = html! {
        h1 { "Project " (project.name) }
        h2 { "Environments" }
        div.envs { @for card in &cards { (card) } }
        h2 { "What is live where" }
        (live_table(&statuses, &envs))
    };
    Ok(frame(&c, "Overview", Nav::Overview, body))
}

async fn environment_card(project: &Arc<Project>, env: &Environment) -> Markup {
    let sources = sources_table(project, env).await;
    html! {
        section.card.env data-env=(env.name) {
            h2 { (env.name) }
            dl {
                (field("store", html! { code { (env.location) } }))
                @if let Some(parent) = &env.parent {
                    (field("branch of", html! { (parent.name) }))
                }
                (field("sample", html! {
                    @match &env.sample { Some(p) => { (p.to_string()) }, None => { "full data" } }
                }))
                (field("protected", html! {
                    @if env.protected { span.badge.yes { "yes" } " deployed versions only" } @else { span.badge { "no" } }
                }))
                (field("engine", html! { (env.engine.describe()) }))
                (field("anonymous reads", html! { @if env.serve.anonymous { "allowed" } @else { "no: tokens only" } }))
            }
            (sources)
        }
    }
}

/// The sources of an environment with their files, rows and bytes; a store that cannot
/// be read says why, in place.
async fn sources_table(project: &Arc<Project>, env: &Environment) -> Markup {
    let session = match EnvSession::open(project.clone(), &env.name, &SampleOverride::default()) {
        Ok(s) => s,
        Err(e) => return html! { p.error { (e.to_string()) } },
    };
    let names = match session.source_names().await {
        Ok(n) => n,
        Err(e) => return html! { p.error { (e.to_string()) } },
    };
    let mut rows = Vec::new();
    for name in names {
        let row = match session.list_source(&name).await {
            Ok(l) => html! {
                tr data-source=(name) {
                    td { (name) }
                    td.num { (l.files.len()) }
                    td.num { (thousands(l.rows())) }
                    td.num { (human_bytes(l.bytes())) }
                }
            },
            Err(SluiceError::MissingSource { .. }) => html! {
                tr data-source=(name) { td { (name) } td colspan="3" { "no data" } }
            },
            Err(e) => html! {
                tr data-source=(name) { td { (name) } td.error colspan="3" { (e.to_string()) } }
            },
        };
        rows.push(row);
    }
    html! {
        table.sources {
            thead { tr { th { "source" } th { "files" } th { "rows" } th { "bytes" } } }
            tbody { @for r in &rows { (r) } }
        }
    }
}

fn live_table(statuses: &[PipeStatus], envs: &[&String]) -> Markup {
    html! {
        table.live {
            thead {
                tr {
                    th { "pipe" } th { "working copy" }
                    @for e in envs { th { (e) } }
                    th { "across environments" }
                }
            }
            tbody {
                @for s in statuses {
                    @let (live, differs) = live_of(s, envs);
                    tr data-pipe=(s.pipe) data-differs=(differs) {
                        td { a href=(pipe_url(&s.pipe)) { (s.pipe) } }
                        td { code { (s.working.as_deref().unwrap_or("(deleted)")) } }
                        @for v in &live {
                            @match v {
                                None => { td { "-" } },
                                Some(v) => {
                                    @let same = s.working.as_ref() == Some(*v);
                                    td class=(if same { "same" } else { "differs" }) {
                                        code { (v) }
                                        @if !same { " (differs from the working copy)" }
                                    }
                                },
                            }
                        }
                        td {
                            @if differs { span.badge.no { "differs" } }
                            @else if live.iter().all(|v| v.is_none()) { span.badge { "not deployed" } }
                            @else { span.badge.yes { "same everywhere" } }
                        }
                    }
                }
            }
        }
    }
}

/// A pipe's live version in each environment, and whether they are not all the same
/// (deployed in some environments only counts as different).
fn live_of<'a>(s: &'a PipeStatus, envs: &[&String]) -> (Vec<Option<&'a String>>, bool) {
    let live: Vec<Option<&String>> = envs
        .iter()
        .map(|e| s.live.get(*e).and_then(|v| v.as_ref()))
        .collect();
    let mut versions: Vec<&String> = live.iter().flatten().copied().collect();
    versions.sort();
    versions.dedup();
    let differs = versions.len() > 1 || (versions.len() == 1 && live.iter().any(|v| v.is_none()));
    (live, differs)
}
