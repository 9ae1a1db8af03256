//! `/ui/fidelity`: staging against production for one pipe — what `sluice fidelity
//! PIPE` prints, and per estimated column a chart of each group's estimate with its
//! interval against production's value. The pipe runs in both environments when the
//! form is submitted (never on its own: a run of production's full data costs).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use sluice_engine::fidelity::{FidelityReport, pipe_fidelity};
use sluice_engine::project::sampling::SampleOverride;

use super::layout::{Nav, PageError, field, page as frame};
use super::svg::{IntervalRow, interval_chart};
use super::{Console, param, pipe_url, query_pairs};

/// Groups drawn per column: the largest by production's value.
const MAX_GROUPS: usize = 40;
/// Parameters of the pipe come as `p.NAME=value`.
const PARAM_PREFIX: &str = "p.";

pub async fn page(
    State(c): State<Arc<Console>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let project = c.project()?;
    let pairs = query_pairs(raw.as_deref());
    let envs: Vec<&String> = project.environments.keys().collect();
    // Defaults: the first sampled environment against the first one read in full.
    let sampled_default = project
        .environments
        .values()
        .find(|e| e.sample.is_some())
        .map(|e| e.name.clone())
        .unwrap_or_else(|| "staging".into());
    let full_default = project
        .environments
        .values()
        .find(|e| e.sample.is_none() && e.protected)
        .or_else(|| project.environments.values().find(|e| e.sample.is_none()))
        .map(|e| e.name.clone())
        .unwrap_or_else(|| "production".into());
    let env = param(&pairs, "env")
        .map(str::to_string)
        .unwrap_or(sampled_default);
    let against = param(&pairs, "against")
        .map(str::to_string)
        .unwrap_or(full_default);
    let pipe = param(&pairs, "pipe").map(str::to_string);
    let params: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(PARAM_PREFIX)?;
            (!v.is_empty()).then(|| (name.to_string(), v.clone()))
        })
        .collect();
    let def = match &pipe {
        Some(p) => Some(project.pipe(p)?),
        None => None,
    };

    // A run that fails is shown under the form, with its status.
    let mut status = StatusCode::OK;
    let result: Markup = match &pipe {
        None => {
            html! { p.hint { "Choose a pipe: it runs with estimates in the sampled environment and in full in the other, and each group's estimate is set against production's value." } }
        }
        Some(p) => match pipe_fidelity(
            project.clone(),
            p,
            &env,
            &against,
            &params,
            &SampleOverride::default(),
            &[],
            None,
        )
        .await
        {
            Ok(report) => render(&report),
            Err(e) => {
                status = StatusCode::from_u16(e.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                html! { p.error { (e.to_string()) } }
            }
        },
    };
    let body = html! {
        h1 { "Staging against production" }
        form.pick method="get" {
            label { "pipe"
                select name="pipe" {
                    @for n in project.pipes.keys() { option value=(n) selected[Some(n) == pipe.as_ref()] { (n) } }
                }
            }
            label { "estimates of"
                select name="env" { @for e in &envs { option value=(e) selected[**e == env] { (e) } } }
            }
            label { "against"
                select name="against" { @for e in &envs { option value=(e) selected[**e == against] { (e) } } }
            }
            @if let Some(d) = def {
                @for p in d.params.values() {
                    @let given = params.iter().find(|(k, _)| *k == p.name).map(|(_, v)| v.as_str()).unwrap_or("");
                    label { (p.name) " (" (p.ty.to_string()) ")"
                        input type="text" name={(PARAM_PREFIX) (p.name)} value=(given)
                            placeholder=(p.default.as_ref().map(|v| v.to_string()).unwrap_or_default());
                    }
                }
            }
            button type="submit" { "Compare" }
        }
        @if let Some(p) = &pipe { p { a href=(pipe_url(p)) { "Pipe " (p) } } }
        (result)
    };
    let mut response = frame(&c, "Staging against production", Nav::Fidelity, body);
    *response.status_mut() = status;
    Ok(response)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| {
        if v.is_finite() {
            format!("{:.1}%", v * 100.0)
        } else {
            "∞".into()
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn render(r: &FidelityReport) -> Markup {
    html! {
        section.fidelity data-pipe=(r.what) {
            dl {
                (field("compared", html! { (r.what) ": " (r.env) "'s estimates against " (r.against) "'s full answer" }))
                (field("sample", html! { @if r.design.is_empty() { "no sampled source" } @else { (r.design) } }))
                @if !r.keys.is_empty() {
                    (field("groups", html! {
                        (r.production_groups) " in " (r.against) ", " (r.sample_groups) " in " (r.env) "; "
                        (r.present) " of " (r.against) "'s groups (" (pct(Some(r.present_share()))) ") present in " (r.env)
                        " (matched on " (r.keys.join(", ")) ")"
                    }))
                }
            }
            @if let Some(note) = &r.note {
                p.note data-estimable=(!r.keys.is_empty()) {
                    @if r.keys.is_empty() { "Cannot be estimated: " } @else { "Not estimated in part: " }
                    (note)
                }
            }
            @if !r.columns.is_empty() {
                table.columns {
                    thead { tr { th { "column" } th { "estimate" } th { "compared" } th { "median error" } th { "worst error" } th { "with interval" } th { "inside it" } } }
                    tbody {
                        @for col in &r.columns {
                            tr data-column=(col.column) {
                                td { (col.column) } td { (col.kind.describe()) } td.num { (col.compared) }
                                td.num { (pct(col.median_relative_error)) } td.num { (pct(col.worst_relative_error)) }
                                td.num { (col.bounded) } td.num { (pct(col.within_interval)) }
                            }
                        }
                    }
                }
                @for col in r.columns.iter().filter(|c| !c.groups.is_empty()) {
                    @let rows: Vec<IntervalRow> = col.groups.iter().take(MAX_GROUPS).map(|g| IntervalRow {
                        label: g.key.join(" · "),
                        truth: g.production,
                        estimate: g.estimate,
                        low: g.low,
                        high: g.high,
                        inside: g.inside(),
                    }).collect();
                    (interval_chart(&col.column, &format!(
                        "{}: {}'s estimate (95% interval) against {}'s value{}",
                        col.column, r.env, r.against,
                        if col.groups.len() > MAX_GROUPS { format!(", the {MAX_GROUPS} largest of {} groups", col.groups.len()) } else { String::new() }
                    ), &rows))
                }
            }
        }
    }
}
