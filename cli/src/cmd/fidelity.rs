//! `sluice fidelity`: how far a sampled environment's estimates are from production's
//! answer, column by column.

use anyhow::Result;
use sluice_engine::fidelity::{FidelityReport, pipe_fidelity};

use crate::args::{DiffFormat, FidelityArgs};
use crate::outln;
use crate::print::print_table;
use crate::settings::Settings;

pub async fn fidelity_cmd(settings: &Settings, args: FidelityArgs) -> Result<()> {
    let report = pipe_fidelity(
        settings.project()?,
        &args.pipe,
        &args.env,
        &args.against,
        &args.params,
        &args.sample.to_override(),
        &args.key,
        args.tolerance,
    )
    .await?;
    print_fidelity(&report, args.format)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// The report as text (a header and a table per column) or as one JSON object.
pub fn print_fidelity(r: &FidelityReport, format: DiffFormat) -> Result<()> {
    match format {
        DiffFormat::Json => {
            let value = serde_json::json!({
                "what": r.what,
                "env": r.env,
                "against": r.against,
                "design": r.design,
                "keys": r.keys,
                "production_groups": r.production_groups,
                "sample_groups": r.sample_groups,
                "present": r.present,
                "present_share": r.present_share(),
                "tolerance": r.tolerance,
                "note": r.note,
                "agrees": r.agrees(),
                "columns": r.columns.iter().map(|c| serde_json::json!({
                    "column": c.column,
                    "kind": c.kind.describe(),
                    "compared": c.compared,
                    "median_relative_error": c.median_relative_error,
                    "worst_relative_error": c.worst_relative_error.filter(|v| v.is_finite()),
                    "bounded": c.bounded,
                    "within_interval": c.within_interval,
                    "within_tolerance": c.within_tolerance,
                })).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&value)?);
        }
        DiffFormat::Text => {
            outln!(
                "{} · {} estimates against {} · {}",
                r.what,
                r.env,
                r.against,
                if r.design.is_empty() {
                    "no sampled source"
                } else {
                    r.design.as_str()
                }
            );
            if r.keys.is_empty() {
                outln!(
                    "rows: {} in {}, {} in {}; not estimated: {}",
                    r.production_groups,
                    r.against,
                    r.sample_groups,
                    r.env,
                    r.note.as_deref().unwrap_or("")
                );
                return Ok(());
            }
            outln!(
                "groups: {} in {}, {} in {}; {} of {}'s groups ({:.1}%) present in {} (matched on {})",
                r.production_groups,
                r.against,
                r.sample_groups,
                r.env,
                r.present,
                r.against,
                r.present_share() * 100.0,
                r.env,
                r.keys.join(", ")
            );
            if let Some(note) = &r.note {
                outln!("note: {note}");
            }
            let mut headers = vec![
                "column",
                "estimate",
                "compared",
                "median error",
                "worst error",
                "with interval",
                "inside it",
            ];
            if r.tolerance.is_some() {
                headers.push("within tolerance");
            }
            let rows: Vec<Vec<String>> = r
                .columns
                .iter()
                .map(|c| {
                    let mut row = vec![
                        c.column.clone(),
                        c.kind.describe(),
                        c.compared.to_string(),
                        pct(c.median_relative_error),
                        pct(c.worst_relative_error.filter(|v| v.is_finite())),
                        if c.kind.has_bounds() {
                            c.bounded.to_string()
                        } else {
                            "-".into()
                        },
                        pct(c.within_interval),
                    ];
                    if r.tolerance.is_some() {
                        row.push(pct(c.within_tolerance));
                    }
                    row
                })
                .collect();
            print_table(&headers, &rows)?;
        }
    }
    Ok(())
}
