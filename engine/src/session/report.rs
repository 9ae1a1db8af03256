//! What a run actually read, from the scan metrics of its executed plan: rows and bytes
//! scanned per source, and the fraction the sample kept.

use std::sync::Arc;
use std::time::Duration;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::project::sampling::SamplePolicy;
use crate::scan::SourceScan;

/// Per source: how it was read and what the scan read.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub source: String,
    /// `full`, or the policy in effect.
    pub sampling: String,
    pub rows_total: u64,
    /// Rows the Parquet scans returned.
    pub rows_scanned: u64,
    /// Bytes the Parquet scans fetched from the store.
    pub bytes_scanned: u64,
    /// Fraction of the source's rows the sample keeps (1.0 for a full read).
    pub fraction: f64,
    /// When the source's files are a sample build: the environment it was built from
    /// and the fraction of that environment's rows the store holds.
    pub built_from: Option<(String, f64)>,
}

impl SourceReport {
    /// The fraction of the rows of the environment the data came from that this read
    /// keeps: `fraction` over a store's own data, times the build's fraction over a
    /// sample build.
    pub fn origin_fraction(&self) -> f64 {
        self.fraction * self.built_from.as_ref().map_or(1.0, |(_, f)| *f)
    }
}

/// The summary of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub env: String,
    pub pipe: Option<String>,
    /// The environment's policy after the run's override; `None`: full set.
    pub sample: Option<SamplePolicy>,
    pub rows_out: u64,
    pub elapsed: Duration,
    pub sources: Vec<SourceReport>,
}

impl RunReport {
    pub fn rows_scanned(&self) -> u64 {
        self.sources.iter().map(|s| s.rows_scanned).sum()
    }

    pub fn bytes_scanned(&self) -> u64 {
        self.sources.iter().map(|s| s.bytes_scanned).sum()
    }

    /// When a source read is a sample build: the environment it was built from and the
    /// fraction of that environment's rows the run's reads keep, weighted by each
    /// source's size there (a build's rows over its fraction; a source copied whole
    /// counts as it is).
    pub fn origin_fraction(&self) -> Option<(String, f64)> {
        let from = self
            .sources
            .iter()
            .find_map(|s| s.built_from.as_ref().map(|(e, _)| e.clone()))?;
        let origin_rows =
            |s: &SourceReport| s.rows_total as f64 / s.built_from.as_ref().map_or(1.0, |(_, f)| *f);
        let total: f64 = self.sources.iter().map(origin_rows).sum();
        if total == 0.0 {
            return Some((from, 1.0));
        }
        let kept: f64 = self
            .sources
            .iter()
            .map(|s| s.origin_fraction() * origin_rows(s))
            .sum();
        Some((from, kept / total))
    }

    /// The fraction of the sources' rows the run's samples keep, weighted by source size.
    pub fn effective_fraction(&self) -> f64 {
        let total: u64 = self.sources.iter().map(|s| s.rows_total).sum();
        if total == 0 {
            return 1.0;
        }
        self.sources
            .iter()
            .map(|s| s.fraction * s.rows_total as f64)
            .sum::<f64>()
            / total as f64
    }
}

/// Sums the scan metrics of a run's executed plans (its output's, and those of the
/// nodes computed ahead of it, `shared`) per registered source.
pub(crate) fn source_reports(
    plan: &Arc<dyn ExecutionPlan>,
    shared: &[Arc<dyn ExecutionPlan>],
    scans: &[SourceScan],
) -> Vec<SourceReport> {
    let mut rows = vec![0u64; scans.len()];
    let mut bytes = vec![0u64; scans.len()];
    let mut touched = vec![false; scans.len()];
    let mut count = |node: &Arc<dyn ExecutionPlan>| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return;
        };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return;
        };
        let Some(first) = config.file_groups.iter().flat_map(|g| g.iter()).next() else {
            return;
        };
        let location = first.object_meta.location.as_ref();
        // The longest matching prefix, so `calls` and `calls_archive` don't mix.
        let Some((i, _)) = scans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                location.starts_with(&s.location_prefix)
                    && location[s.location_prefix.len()..].starts_with('/')
            })
            .max_by_key(|(_, s)| s.location_prefix.len())
        else {
            return;
        };
        touched[i] = true;
        if let Some(m) = node.metrics() {
            // Rows the scan read: those it returned and, with filter pushdown, those its
            // row filter dropped while decoding.
            rows[i] += m.output_rows().unwrap_or(0) as u64
                + m.sum_by_name("pushdown_rows_pruned")
                    .map(|v| v.as_usize())
                    .unwrap_or(0) as u64;
            bytes[i] += m
                .sum_by_name("bytes_scanned")
                .map(|v| v.as_usize())
                .unwrap_or(0) as u64;
        }
    };
    for plan in std::iter::once(plan).chain(shared) {
        visit(plan, &mut count);
    }
    scans
        .iter()
        .enumerate()
        .filter(|(i, s)| touched[*i] || s.key_counters.is_some())
        .map(|(i, s)| SourceReport {
            source: s.source.clone(),
            sampling: s.describe(),
            rows_total: s.rows_total,
            rows_scanned: rows[i],
            bytes_scanned: bytes[i],
            fraction: s.fraction(),
            built_from: s.built.as_ref().map(|b| (b.from.clone(), b.fraction)),
        })
        .collect()
}

fn visit(plan: &Arc<dyn ExecutionPlan>, f: &mut impl FnMut(&Arc<dyn ExecutionPlan>)) {
    f(plan);
    for child in plan.children() {
        visit(child, f);
    }
}
