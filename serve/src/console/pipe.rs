//! `/ui/pipes/NAME`: a pipe's definition (nodes' SQL, parameters, checks, tests), its
//! live version in each environment with the diff of two of them, and its history in
//! every environment (who, when, from where, gate results).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};

use sluice_engine::deploy::{DeploymentState, HistoryEvent};
use sluice_engine::project::checks::{CheckKind, DataCheck};
use sluice_engine::project::pipe_tests::{Expectation, TestCase, load_cases};
use sluice_engine::{Pipe, SluiceError};

use super::layout::{Nav, PageError, field, page as frame};
use super::{Console, param, query_pairs, url_with};

/// The working copy, in the diff's choices.
const WORKING: &str = "working copy";

pub async fn page(
    State(c): State<Arc<Console>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let project = c.project()?;
    let pairs = query_pairs(raw.as_deref());
    // The live version and its text in each environment, and every event of the pipe.
    let mut versions: Vec<(String, Option<(String, String)>)> = Vec::new();
    let mut history: Vec<(String, HistoryEvent)> = Vec::new();
    for env in super::environments(&project) {
        let state = DeploymentState::open(env)?;
        let live = match state.live_version(&name).await? {
            Some(v) => {
                let text = state.version_text(&name, &v).await?;
                Some((v, text))
            }
            None => None,
        };
        versions.push((env.name.clone(), live));
        history.extend(
            state
                .history(Some(&name))
                .await?
                .into_iter()
                .map(|e| (env.name.clone(), e)),
        );
    }
    // Newest first; events of one change share their time, then by sequence.
    history.sort_by(|a, b| b.1.at.cmp(&a.1.at).then(b.1.seq.cmp(&a.1.seq)));
    let working = project.pipes.get(&name);
    let shown: Pipe = match working {
        Some(p) => p.clone(),
        None => {
            // A pipe deleted from pipes/ but still live somewhere: its live definition.
            let Some((env, Some((v, _)))) = versions.iter().find(|(_, l)| l.is_some()) else {
                return Err(SluiceError::UnknownPipe {
                    name: name.clone(),
                    known: project.pipes.keys().cloned().collect(),
                }
                .into());
            };
            DeploymentState::open(project.environment(env)?)?
                .pipe(&project, &name, v)
                .await?
        }
    };
    let working_version = working.map(sluice_engine::stats::pipe_version);
    // A broken test file is said in place of the cases, not a failed page.
    let cases: std::result::Result<Vec<TestCase>, String> = load_cases(&project, false)
        .map(|cs| cs.into_iter().filter(|t| t.pipe == name).collect())
        .map_err(|e| e.to_string());

    // The two sides of the diff: asked for, else from the first environment whose live
    // version differs from the working copy to the working copy (else the first two).
    let mut choices: Vec<(String, String)> = Vec::new();
    if let Some(w) = working {
        choices.push((WORKING.to_string(), w.text.clone()));
    }
    for (env, live) in &versions {
        if let Some((_, text)) = live {
            choices.push((env.clone(), text.clone()));
        }
    }
    let default_a = choices
        .iter()
        .skip(1)
        .find(|(_, t)| Some(t) != choices.first().map(|c| &c.1))
        .or_else(|| choices.get(1))
        .map(|c| c.0.clone());
    let a = param(&pairs, "a").map(str::to_string).or(default_a);
    let b = param(&pairs, "b")
        .map(str::to_string)
        .or_else(|| choices.first().map(|c| c.0.clone()));
    let text_of = |side: &Option<String>| -> Result<Option<&String>, PageError> {
        match side {
            None => Ok(None),
            Some(s) => choices
                .iter()
                .find(|(n, _)| n == s)
                .map(|(_, t)| Some(t))
                .ok_or_else(|| {
                    PageError::new(
                        400,
                        format!(
                            "`{s}` is not a version of pipe `{name}` to compare (choose from: {})",
                            choices
                                .iter()
                                .map(|c| c.0.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                }),
        }
    };
    let (a_text, b_text) = (text_of(&a)?, text_of(&b)?);

    let body = html! {
        h1 { "Pipe " (name) }
        @if working.is_none() {
            p.note { "Pipe " (name) " is no longer in pipes/; shown as it is live." }
        }
        @if let Some(d) = &shown.description { p { (d) } }
        p {
            a href=(url_with("/monitor", &[("pipe", &name)])) { "Monitoring" }
            " · "
            a href=(url_with("/fidelity", &[("pipe", &name)])) { "Staging against production" }
        }
        dl {
            (field("endpoint", html! { @if shown.endpoint { "yes: /v0/pipes/" (name) ".json" } @else { "no" } }))
            @if let Some(m) = &shown.materialize {
                (field("materializes to", html! { code { (m.to) } }))
            }
            (field("working copy", html! { code { (working_version.as_deref().unwrap_or("(deleted)")) } }))
        }

        h2 { "Live versions" }
        table.versions {
            thead { tr { th { "environment" } th { "live version" } th { "against the working copy" } } }
            tbody {
                @for (env, live) in &versions {
                    tr data-env=(env) {
                        td { (env) }
                        @match live {
                            None => { td { "-" } td { "not deployed" } },
                            Some((v, _)) => {
                                td { code { (v) } }
                                @if working_version.as_ref() == Some(v) { td.same { "same" } } @else { td.differs { "differs" } }
                            },
                        }
                    }
                }
            }
        }
        @if choices.len() > 1 {
            form.pick method="get" {
                label { "from" (choice_select("a", &choices, a.as_deref())) }
                label { "to" (choice_select("b", &choices, b.as_deref())) }
                button type="submit" { "Compare" }
            }
            @if let (Some(a), Some(b), Some(at), Some(bt)) = (&a, &b, a_text, b_text) {
                h3 { "Diff: " (a) " → " (b) }
                (diff(at, bt))
            }
        }

        h2 { "Parameters" }
        @if shown.params.is_empty() { p.hint { "none" } } @else {
            table.params {
                thead { tr { th { "name" } th { "type" } th { "default" } th { "bounds" } th { "description" } } }
                tbody {
                    @for p in shown.params.values() {
                        tr {
                            td { code { (p.name) } }
                            td { (p.ty.to_string()) }
                            td { @match &p.default { Some(d) => { (d.to_string()) }, None => { @if p.required { "required" } @else { "-" } } } }
                            td { (bounds(p)) }
                            td { (p.description.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }

        h2 { "Nodes" }
        @for (i, node) in shown.nodes.iter().enumerate() {
            section.node data-node=(node.name) {
                h3 {
                    (node.name)
                    @if i + 1 == shown.nodes.len() { " (output)" }
                }
                @if let Some(d) = &node.description { p { (d) } }
                pre { code { (node.sql.trim()) } }
            }
        }

        h2 { "Checks" }
        @if shown.checks.is_empty() { p.hint { "none" } } @else {
            table.checks {
                thead { tr { th { "check" } th { "asserts" } } }
                tbody { @for ch in &shown.checks { tr { td { (ch.name) } td { code { (describe_check(ch)) } } } } }
            }
        }

        h2 { "Tests" }
        @match &cases {
            Err(e) => { p.error { (e) } },
            Ok(cases) if cases.is_empty() => { p.hint { "no case in tests/ runs this pipe" } },
            Ok(cases) => { table.tests {
                thead { tr { th { "case" } th { "file" } th { "parameters" } th { "expects" } } }
                tbody {
                    @for t in cases.iter() {
                        tr {
                            td { (t.name) }
                            td { code { (t.file.display().to_string()) } }
                            td { (t.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")) }
                            td { (expectation(&t.expect)) }
                        }
                    }
                }
            } },
        }

        h2 { "History" }
        @if history.is_empty() { p.hint { "never deployed" } } @else {
            table.history {
                thead { tr { th { "environment" } th { "seq" } th { "at (UTC)" } th { "actor" } th { "action" } th { "version" } th { "previous" } th { "from" } th { "gates" } } }
                tbody {
                    @for (env, e) in &history {
                        tr.event data-env=(env) data-action=(e.action) {
                            td { (env) }
                            td.num { (e.seq) }
                            td { (e.at) }
                            td { (e.actor) }
                            td { (e.action) }
                            td { code { (e.version) } }
                            td { code { (e.previous.as_deref().unwrap_or("")) } }
                            td { (e.from_env.as_deref().unwrap_or("")) }
                            td {
                                @for g in &e.gates {
                                    div class=(if g.passed { "passed" } else { "failed" }) {
                                        (g.gate) ": " @if g.passed { "passed" } @else { "failed" }
                                        @if !g.detail.is_empty() { " — " (g.detail) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(&c, &format!("Pipe {name}"), Nav::Pipe, body))
}

fn choice_select(name: &str, choices: &[(String, String)], selected: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            @for (c, _) in choices {
                option value=(c) selected[Some(c.as_str()) == selected] { (c) }
            }
        }
    }
}

/// A unified diff of two definitions, lines marked added or removed.
fn diff(a: &str, b: &str) -> Markup {
    let d = TextDiff::from_lines(a, b);
    let groups = d.grouped_ops(3);
    html! {
        @if groups.is_empty() {
            p.hint { "identical" }
        } @else {
            pre.diff {
                @for group in &groups {
                    span.hunk { "@@" }
                    @for op in group {
                        @for change in d.iter_changes(op) {
                            @let (class, sign) = match change.tag() {
                                ChangeTag::Delete => ("del", "-"),
                                ChangeTag::Insert => ("add", "+"),
                                ChangeTag::Equal => ("ctx", " "),
                            };
                            span class=(class) { (sign) (change.value().trim_end_matches('\n')) }
                        }
                    }
                }
            }
        }
    }
}

fn bounds(p: &sluice_engine::Param) -> String {
    let mut out = Vec::new();
    if let Some(m) = &p.min {
        out.push(format!("min {m}"));
    }
    if let Some(m) = &p.max {
        out.push(format!("max {m}"));
    }
    if !p.allowed.is_empty() {
        out.push(format!(
            "one of {}",
            p.allowed
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.join(", ")
}

fn describe_check(c: &DataCheck) -> String {
    match &c.kind {
        CheckKind::NotNull(cols) => format!("not_null: {}", cols.join(", ")),
        CheckKind::Unique(cols) => format!("unique: {}", cols.join(", ")),
        CheckKind::AcceptedValues { column, values } => format!(
            "{column} in ({})",
            values
                .iter()
                .map(|v| v.sql())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CheckKind::RowCount { min, max } => match (min, max) {
            (Some(a), Some(b)) => format!("{a} to {b} rows"),
            (Some(a), None) => format!("at least {a} rows"),
            (None, Some(b)) => format!("at most {b} rows"),
            (None, None) => "any number of rows".into(),
        },
        CheckKind::Expression(e) => e.clone(),
    }
}

fn expectation(e: &Expectation) -> String {
    match e {
        Expectation::Rows { columns, rows } => format!(
            "{} row{}{}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            match columns {
                Some(c) => format!(" of {}", c.join(", ")),
                None => String::new(),
            }
        ),
        Expectation::RowCount(n) => format!("{n} rows"),
        Expectation::Error(m) => format!("an error containing `{m}`"),
        Expectation::Runs => "runs without an error".into(),
    }
}
