//! How far staging's answer is from production's: a pipe run with estimates in a
//! sampled environment and in full in another, joined on the output's exact columns
//! (its group keys), compared column by column: the share of production's groups
//! present in the sample, the estimates' relative errors, and the share of production's
//! values inside the 95% intervals (`sluice fidelity`, `sluice diff --scaled`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Result, SluiceError};
use crate::project::Project;
use crate::project::sampling::SampleOverride;
use crate::session::estimate::{ColumnKind, EstimateReport};
use crate::session::{EnvSession, RunOptions, RunOutput};

/// One output column compared.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnFidelity {
    pub column: String,
    pub kind: ColumnKind,
    /// Groups present in both outputs with a value on both sides.
    pub compared: usize,
    /// |estimate − production| / |production| over the compared groups.
    pub median_relative_error: Option<f64>,
    pub worst_relative_error: Option<f64>,
    /// Compared groups whose estimate has an interval.
    pub bounded: usize,
    /// Of the compared groups with an interval, the share whose production value lies
    /// inside it (`bounded` says how many had one: a ratio seen in fewer than two
    /// units has none).
    pub within_interval: Option<f64>,
    /// Compared groups whose relative error is at most the tolerance, when one is given.
    pub within_tolerance: Option<f64>,
    /// Each compared group's values, largest production value first (for a chart).
    pub groups: Vec<GroupFidelity>,
}

/// One group of one column: production's value against the sample's estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFidelity {
    /// The group's key columns, as arrow displays them.
    pub key: Vec<String>,
    pub production: f64,
    pub estimate: f64,
    /// The estimate's 95% interval, when it has one.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl GroupFidelity {
    /// Whether production's value lies inside the interval (`None`: no interval).
    pub fn inside(&self) -> Option<bool> {
        let (l, h) = (self.low?, self.high?);
        let slack = 1e-9 * self.production.abs().max(1.0);
        Some(l - slack <= self.production && self.production <= h + slack)
    }
}

/// Staging against production for one pipe or query.
#[derive(Debug, Clone, PartialEq)]
pub struct FidelityReport {
    pub what: String,
    pub env: String,
    pub against: String,
    pub design: String,
    /// The columns the two outputs are joined on.
    pub keys: Vec<String>,
    pub production_groups: usize,
    pub sample_groups: usize,
    /// Production's groups that the sample has too.
    pub present: usize,
    pub columns: Vec<ColumnFidelity>,
    pub tolerance: Option<f64>,
    /// Why some or all of the output is not estimated.
    pub note: Option<String>,
}

impl FidelityReport {
    /// The share of production's groups the sample has.
    pub fn present_share(&self) -> f64 {
        if self.production_groups == 0 {
            1.0
        } else {
            self.present as f64 / self.production_groups as f64
        }
    }

    /// Whether every compared estimate agrees with production: inside its interval, or
    /// within the tolerance when one is given.
    pub fn agrees(&self) -> bool {
        self.columns.iter().filter(|c| c.compared > 0).all(|c| {
            match (self.tolerance, c.within_tolerance, c.within_interval) {
                (Some(_), Some(t), _) => t >= 1.0,
                (None, _, Some(w)) => w >= 1.0,
                _ => true,
            }
        })
    }
}

/// Runs `pipe` in `env` with estimates (`sample` overriding its sampling) and in
/// `against` (production, in full), and compares the two.
pub async fn pipe_fidelity(
    project: Arc<Project>,
    pipe: &str,
    env: &str,
    against: &str,
    params: &[(String, String)],
    sample: &SampleOverride,
    keys: &[String],
    tolerance: Option<f64>,
) -> Result<FidelityReport> {
    let staging = EnvSession::open(project.clone(), env, sample)?;
    let production = EnvSession::open(project, against, &SampleOverride::default())?;
    let estimate = RunOptions {
        estimate: true,
        ..RunOptions::default()
    };
    let sampled = staging.run_pipe(pipe, params, &estimate).await?;
    let full = production
        .run_pipe(pipe, params, &RunOptions::default())
        .await?;
    compare(
        &format!("pipe {pipe}"),
        env,
        &sampled,
        against,
        &full,
        keys,
        tolerance,
    )
}

/// Compares an estimated run with a full one, joined on `keys` (by default the
/// estimated output's exact columns).
pub fn compare(
    what: &str,
    env: &str,
    sampled: &RunOutput,
    against: &str,
    full: &RunOutput,
    keys: &[String],
    tolerance: Option<f64>,
) -> Result<FidelityReport> {
    let report: &EstimateReport = sampled.estimate.as_ref().ok_or_else(|| {
        SluiceError::Usage(format!("{what}: the run in `{env}` was not estimated"))
    })?;
    let keys: Vec<String> = if keys.is_empty() {
        report
            .columns
            .iter()
            .filter(|(_, k)| *k == ColumnKind::Exact)
            .map(|(c, _)| c.clone())
            .collect()
    } else {
        keys.to_vec()
    };
    if keys.is_empty() {
        // Nothing estimated (and so no group key known): say why, compare nothing.
        if let Some(note) = &report.note {
            return Ok(FidelityReport {
                what: what.to_string(),
                env: env.to_string(),
                against: against.to_string(),
                design: report.design.clone(),
                keys,
                production_groups: full.report.rows_out as usize,
                sample_groups: sampled.report.rows_out as usize,
                present: 0,
                columns: Vec::new(),
                tolerance,
                note: Some(note.clone()),
            });
        }
        return Err(SluiceError::Usage(format!(
            "{what}: the output has no exact column to match production's rows on (no GROUP BY key): give --key COLUMNS"
        )));
    }
    for k in &keys {
        for (side, out) in [(env, sampled), (against, full)] {
            if out.schema.field_with_name(k).is_err() {
                return Err(SluiceError::Usage(format!(
                    "{what}: key column `{k}` is not a column of the output in `{side}`"
                )));
            }
        }
    }
    let prod = rows_by_key(&full.batches, &keys)?;
    let samp = rows_by_key(&sampled.batches, &keys)?;
    let present = prod.keys().filter(|k| samp.contains_key(*k)).count();
    let mut columns = Vec::new();
    for (column, kind) in &report.columns {
        if keys.contains(column) || full.schema.field_with_name(column).is_err() {
            continue;
        }
        let truth = numeric_column(&full.batches, column)?;
        let est = numeric_column(&sampled.batches, column)?;
        let (lo, hi) = if kind.has_bounds() {
            (
                numeric_column(&sampled.batches, &EstimateReport::low(column))?,
                numeric_column(&sampled.batches, &EstimateReport::high(column))?,
            )
        } else {
            (None, None)
        };
        let (Some(truth), Some(est)) = (truth, est) else {
            continue;
        };
        let mut errors = Vec::new();
        let mut groups = Vec::new();
        let (mut compared, mut bounded, mut inside, mut tolerated) = (0usize, 0, 0, 0);
        for (key, &ps) in &prod {
            let Some(&ss) = samp.get(key) else {
                continue;
            };
            let (Some(t), Some(e)) = (truth[ps], est[ss]) else {
                continue;
            };
            compared += 1;
            let err = if t == 0.0 {
                if e == 0.0 { 0.0 } else { f64::INFINITY }
            } else {
                ((e - t) / t).abs()
            };
            errors.push(err);
            if tolerance.is_some_and(|tol| err <= tol) {
                tolerated += 1;
            }
            let (low, high) = match (&lo, &hi) {
                (Some(lo), Some(hi)) => (lo[ss], hi[ss]),
                _ => (None, None),
            };
            let group = GroupFidelity {
                key: key.clone(),
                production: t,
                estimate: e,
                low,
                high,
            };
            // A little slack for the rounding of integer bounds and floats (`inside`).
            if let Some(within) = group.inside() {
                bounded += 1;
                if within {
                    inside += 1;
                }
            }
            groups.push(group);
        }
        errors.sort_by(|a, b| a.total_cmp(b));
        groups.sort_by(|a, b| {
            b.production
                .total_cmp(&a.production)
                .then(a.key.cmp(&b.key))
        });
        let share = |n: usize| (compared > 0).then(|| n as f64 / compared as f64);
        let bounded_share = (bounded > 0).then(|| inside as f64 / bounded as f64);
        columns.push(ColumnFidelity {
            column: column.clone(),
            kind: kind.clone(),
            compared,
            median_relative_error: errors
                .get(errors.len() / 2)
                .copied()
                .filter(|_| compared > 0),
            worst_relative_error: errors.last().copied(),
            bounded,
            within_interval: if kind.has_bounds() {
                bounded_share
            } else {
                None
            },
            within_tolerance: tolerance.and_then(|_| share(tolerated)),
            groups,
        });
    }
    Ok(FidelityReport {
        what: what.to_string(),
        env: env.to_string(),
        against: against.to_string(),
        design: report.design.clone(),
        keys,
        production_groups: prod.len(),
        sample_groups: samp.len(),
        present,
        columns,
        tolerance,
        note: report.note.clone(),
    })
}

/// Each row's key (its key columns as arrow displays them) and its row number.
fn rows_by_key(batches: &[RecordBatch], keys: &[String]) -> Result<HashMap<Vec<String>, usize>> {
    let options = FormatOptions::default().with_null("\u{0}null");
    let mut out = HashMap::new();
    let mut row = 0usize;
    for b in batches {
        let schema = b.schema();
        let formatters = keys
            .iter()
            .map(|k| {
                let i = schema.index_of(k)?;
                ArrayFormatter::try_new(b.column(i).as_ref(), &options)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            let key: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
            out.entry(key).or_insert(row);
            row += 1;
        }
    }
    Ok(out)
}

/// A column's values as floats, by row number; `None` when it is not numeric.
fn numeric_column(batches: &[RecordBatch], name: &str) -> Result<Option<Vec<Option<f64>>>> {
    let mut out = Vec::new();
    for b in batches {
        let Ok(i) = b.schema().index_of(name) else {
            return Ok(None);
        };
        let col = b.column(i);
        if !(col.data_type().is_numeric() || *col.data_type() == DataType::Null) {
            return Ok(None);
        }
        let f = cast(col, &DataType::Float64)?;
        let f = f.as_primitive::<Float64Type>();
        out.extend((0..f.len()).map(|r| (!f.is_null(r)).then(|| f.value(r))));
    }
    Ok(Some(out))
}
