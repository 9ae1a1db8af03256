//! `/ui/monitor`: an environment's run statistics (`sluice.pipe_stats`): every pipe's
//! calls, errors and latency, then one pipe's calls, errors, p50/p95/p99 latency and
//! read rates over time, with its deployments, promotions and rollbacks marked.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use maud::{Markup, html};

use sluice_engine::deploy::DeploymentState;
use sluice_engine::project::sampling::SampleOverride;
use sluice_engine::stats::{Series, series, summary_sql};
use sluice_engine::util::text::human_bytes;
use sluice_engine::{EnvSession, RunOptions};

use super::layout::{Nav, PageError, page as frame};
use super::svg::{Line, Marker, TimeChart, short_number};
use super::{Console, param, pipe_url, query_pairs, url_with};

/// The windows the page offers, back from now.
const WINDOWS: &[(&str, Option<u64>)] = &[
    ("1h", Some(3600)),
    ("6h", Some(6 * 3600)),
    ("24h", Some(86_400)),
    ("7d", Some(7 * 86_400)),
    ("30d", Some(30 * 86_400)),
    ("all", None),
];

/// At most this many buckets on the time axis.
const BUCKETS: u32 = 60;

/// One pipe's totals in the window.
struct PipeTotals {
    pipe: String,
    calls: f64,
    errors: f64,
    p50: f64,
    p95: f64,
    p99: f64,
}

pub async fn page(
    State(c): State<Arc<Console>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let project = c.project()?;
    let pairs = query_pairs(raw.as_deref());
    let env = param(&pairs, "env").unwrap_or(&c.env).to_string();
    let window = param(&pairs, "since").unwrap_or("all");
    let since = WINDOWS
        .iter()
        .find(|(n, _)| *n == window)
        .map(|(_, s)| s.map(Duration::from_secs))
        .ok_or_else(|| {
            PageError::new(
                400,
                format!(
                    "parameter `since`: `{window}` is not a window (use {})",
                    WINDOWS.iter().map(|w| w.0).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
    let environment = project.environment(&env)?;
    let session = EnvSession::open(project.clone(), &env, &SampleOverride::default())?;
    let totals = totals(&session, since).await?;
    // The pipe asked for, else the one with the most calls.
    let pipe = param(&pairs, "pipe").map(str::to_string).or_else(|| {
        totals
            .iter()
            .max_by(|a, b| a.calls.total_cmp(&b.calls))
            .map(|t| t.pipe.clone())
    });
    let mut names: Vec<String> = project.pipes.keys().cloned().collect();
    for t in &totals {
        if !names.contains(&t.pipe) {
            names.push(t.pipe.clone());
        }
    }
    let charts = match &pipe {
        Some(p) => {
            let s = series(&session, p, since, BUCKETS).await?;
            let events = DeploymentState::open(environment)?.history(Some(p)).await?;
            let markers: Vec<Marker> = events
                .iter()
                .filter_map(|e| {
                    let at = chrono::DateTime::parse_from_rfc3339(&e.at).ok()?;
                    Some(Marker {
                        at_us: at.timestamp_micros(),
                        action: e.action.clone(),
                        label: format!(
                            "{} of {} by {} at {}{}",
                            e.action,
                            e.version,
                            e.actor,
                            e.at,
                            e.from_env
                                .as_ref()
                                .map(|f| format!(" from {f}"))
                                .unwrap_or_default()
                        ),
                    })
                })
                .collect();
            pipe_charts(&env, p, &s, &markers, since)
        }
        None => {
            html! { p.hint { "No runs recorded in environment " (env) " yet: serve its endpoints (" code { "sluice serve --env " (env) } ") or run its pipes." } }
        }
    };
    let body = html! {
        h1 { "Monitoring · " (env) }
        form.pick method="get" {
            label { "environment"
                select name="env" {
                    @for e in project.environments.keys() { option value=(e) selected[*e == env] { (e) } }
                }
            }
            label { "pipe"
                select name="pipe" {
                    @for n in &names { option value=(n) selected[Some(n) == pipe.as_ref()] { (n) } }
                }
            }
            label { "window"
                select name="since" {
                    @for (w, _) in WINDOWS { option value=(w) selected[*w == window] { (w) } }
                }
            }
            button type="submit" { "Show" }
        }
        h2 { "Every pipe" }
        @if totals.is_empty() { p.hint { "no runs recorded" } } @else {
            table.totals {
                thead { tr { th { "pipe" } th { "calls" } th { "errors" } th { "p50 ms" } th { "p95 ms" } th { "p99 ms" } } }
                tbody {
                    @for t in &totals {
                        tr data-pipe=(t.pipe) {
                            td { a href=(url_with("/monitor", &[("env", &env), ("pipe", &t.pipe), ("since", window)])) { (t.pipe) } }
                            td.num { (t.calls) } td.num { (t.errors) }
                            td.num { (format!("{:.2}", t.p50)) } td.num { (format!("{:.2}", t.p95)) } td.num { (format!("{:.2}", t.p99)) }
                        }
                    }
                }
            }
        }
        (charts)
    };
    Ok(frame(
        &c,
        &format!("Monitoring {env}"),
        Nav::Monitoring,
        body,
    ))
}

/// Every pipe's calls, errors and latency percentiles in the window (`sluice stats`).
async fn totals(
    session: &EnvSession,
    since: Option<Duration>,
) -> Result<Vec<PipeTotals>, PageError> {
    let out = session
        .query(&summary_sql(None, since), &RunOptions::default())
        .await?;
    let mut rows = Vec::new();
    for b in &out.batches {
        let num = |name: &str| -> Result<Vec<f64>, PageError> {
            let col = b.column_by_name(name).ok_or_else(|| {
                PageError::new(500, format!("the statistics have no column `{name}`"))
            })?;
            let f = cast(col, &DataType::Float64).map_err(sluice_engine::SluiceError::from)?;
            let f = f.as_primitive::<Float64Type>();
            Ok((0..f.len())
                .map(|i| if f.is_null(i) { 0.0 } else { f.value(i) })
                .collect())
        };
        let pipes = cast(
            b.column_by_name("pipe")
                .ok_or_else(|| PageError::new(500, "the statistics have no column `pipe`"))?,
            &DataType::Utf8,
        )
        .map_err(sluice_engine::SluiceError::from)?;
        let pipes = pipes.as_string::<i32>();
        let (calls, errors, p50, p95, p99) = (
            num("calls")?,
            num("errors")?,
            num("p50_ms")?,
            num("p95_ms")?,
            num("p99_ms")?,
        );
        for i in 0..b.num_rows() {
            rows.push(PipeTotals {
                pipe: pipes.value(i).to_string(),
                calls: calls[i],
                errors: errors[i],
                p50: p50[i],
                p95: p95[i],
                p99: p99[i],
            });
        }
    }
    Ok(rows)
}

fn pipe_charts(
    env: &str,
    pipe: &str,
    s: &Series,
    markers: &[Marker],
    since: Option<Duration>,
) -> Markup {
    let (Some(first), Some(last)) = (s.first_us, s.last_us) else {
        return html! {
            h2 { a href=(pipe_url(pipe)) { (pipe) } }
            p.hint { "No runs of " (pipe) " recorded in environment " (env) " in this window." }
        };
    };
    let bucket_us = s.bucket.as_micros() as i64;
    let t0 = s
        .points
        .first()
        .map(|p| p.start_us)
        .unwrap_or(first)
        .min(first);
    let t1 = s
        .points
        .last()
        .map(|p| p.start_us + bucket_us)
        .unwrap_or(last)
        .max(last);
    // Changes in the window are shown even before the first call (what was live when
    // the calls began); over all time, only those among the calls.
    let now = chrono::Utc::now().timestamp_micros();
    let earliest = since.map(|d| now - d.as_micros() as i64);
    let in_window: Vec<i64> = markers
        .iter()
        .map(|m| m.at_us)
        .filter(|t| earliest.is_some_and(|e| *t >= e))
        .collect();
    let t0 = in_window.iter().copied().min().map_or(t0, |m| m.min(t0));
    let t1 = in_window.iter().copied().max().map_or(t1, |m| m.max(t1));
    let line = |name: &'static str, f: fn(&sluice_engine::stats::SeriesPoint) -> f64| Line {
        name,
        points: s.points.iter().map(|p| (p.start_us, f(p))).collect(),
    };
    let chart = |id: &str, title: &str, lines: Vec<Line>, format: fn(f64) -> String| {
        TimeChart {
            id,
            title,
            lines,
            markers,
            t0,
            t1,
            format,
        }
        .render()
    };
    let bucket = humanize(s.bucket);
    html! {
        h2 { "Pipe " a href=(pipe_url(pipe)) { (pipe) } " over time" }
        p.hint { (s.points.iter().map(|p| p.calls).sum::<u64>()) " calls in buckets of " (bucket) "; vertical lines: deployments, promotions and rollbacks in " (env) " (hover for who and which version)." }
        (chart("latency", "Latency (ms): p50, p95, p99", vec![
            line("p50", |p| p.p50_ms),
            line("p95", |p| p.p95_ms),
            line("p99", |p| p.p99_ms),
        ], short_number))
        (chart("calls", &format!("Calls and errors per {bucket}"), vec![
            line("calls", |p| p.calls as f64),
            line("errors", |p| p.errors as f64),
        ], short_number))
        (chart("rows", "Rows read per second", vec![line("rows/s", |p| p.rows_read_per_s)], short_number))
        (chart("bytes", "Bytes read per second", vec![line("bytes/s", |p| p.bytes_read_per_s)], bytes_label))
        @if !markers.is_empty() {
            h3 { "Changes of " (pipe) " in " (env) }
            table.changes {
                thead { tr { th { "at (UTC)" } th { "change" } } }
                tbody { @for m in markers.iter().rev() { tr data-action=(m.action) { td { (super::svg::format_time(m.at_us, "%Y-%m-%d %H:%M:%S")) } td { (m.label) } } } }
            }
        }
    }
}

fn bytes_label(v: f64) -> String {
    human_bytes(v.max(0.0) as u64)
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
