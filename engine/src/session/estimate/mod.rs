//! Estimates of production's answer from a sampled run, with 95% intervals.
//!
//! A sampled run reads a sample of each sampled source's *units* — the row groups or
//! page ranges a `system` sample keeps, the key values a `key` sample keeps, the rows a
//! `bernoulli` sample keeps — each kept with a known probability π (the fraction; over
//! a sample build, relative to the environment it was built from). The run's plan is
//! rewritten so that its aggregate over sampled rows returns, for every group:
//!
//! - `count`, `sum` and `count(DISTINCT key)` (under `key` sampling on that key) scaled
//!   to the whole by the Horvitz–Thompson estimator Σ y/π, with its variance estimated
//!   from the units' totals: Σ_u (1 − π) (Y_u/π)². Rows of one unit rise and fall
//!   together, so the variance is taken over units, never over rows (an estimate that
//!   ignored the clusters of a `system` sample would claim far too much precision);
//! - `avg` and ratios of two such estimates (`won * 1.0 / calls`) by the ratio of the
//!   estimates, with the linearized variance of a ratio estimator;
//! - a 95% interval: the estimate ∓ t·SE, t from Student's distribution with one degree
//!   of freedom fewer than the units the group drew on (1.96 from 30 units on), counted
//!   by what they are worth (`effective_units`), so a group seen in few units, or
//!   carried by one, gets the wide interval it deserves. A count's lower bound
//!   is never below the rows the sample saw (production has at least those).
//!
//! The rewrite computes the aggregate in two steps, per (group, unit) then per group
//! (one step under `bernoulli`, whose unit is the row), and carries the standard errors
//! through the projections, joins with tables read in full, filters on group keys,
//! sorts and limits above it, so a monotone function of an estimate (`round(x, 1)`,
//! a cast, `x + 1`) and a ratio of two estimates get bounds too. What it cannot bound
//! — a minimum or maximum, a filter on an estimate (a HAVING), an aggregate over
//! estimates, `count(DISTINCT x)` on another column, two sources sampled independently
//! and joined — is named, never silently scaled.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions::core::expr_fn::{greatest, least};
use datafusion::functions_aggregate::expr_fn::{bool_and, bool_or, max, min, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator, Projection,
    SubqueryAlias, cast, lit, when,
};

use crate::project::sampling::{SamplePolicy, SourceSampling};
use crate::scan::SourceScan;
use crate::scan::key::{HeavyKeys, KeyWeight};
use crate::store::snapshot::UNIT_COLUMN;

mod interval;
mod unit_rows;

use interval::{Side, Step};

/// The confidence of the intervals.
pub const CONFIDENCE: f64 = 0.95;

/// Prefix of the columns the rewrite carries between plan nodes; never in an output.
const HIDDEN: &str = "__sluice_";

/// How one output column of an estimated run relates to production's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// Not computed from sampled rows' aggregates: a group key, or a column of a table
    /// read in full. Exact for the rows shown.
    Exact,
    /// A count or a sum scaled to the whole, with `_low` and `_high` bounds.
    Scaled,
    /// An average or a ratio of estimates, with `_low` and `_high` bounds.
    Ratio,
    /// A function of an estimate (a rounding, a cast, an offset), with bounds.
    Derived,
    /// The output rows are whole sampling units (an aggregate per sampled key): each
    /// value is exact, and the rows are a sample of production's rows.
    PerUnit,
    /// Not estimated, and why: the value is the sample's own.
    NotEstimated(String),
}

impl ColumnKind {
    pub fn has_bounds(&self) -> bool {
        matches!(
            self,
            ColumnKind::Scaled | ColumnKind::Ratio | ColumnKind::Derived
        )
    }

    pub fn describe(&self) -> String {
        match self {
            ColumnKind::Exact => "exact".into(),
            ColumnKind::Scaled => "estimate (scaled count or sum)".into(),
            ColumnKind::Ratio => "estimate (ratio)".into(),
            ColumnKind::Derived => "estimate (function of an estimate)".into(),
            ColumnKind::PerUnit => "exact per sampled unit".into(),
            ColumnKind::NotEstimated(why) => format!("not estimated: {why}"),
        }
    }
}

/// What an estimated run says of its output.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateReport {
    /// How the sample was drawn, as the estimates read it.
    pub design: String,
    /// Each column of the pipe's output (the bound columns not included), in order.
    pub columns: Vec<(String, ColumnKind)>,
    /// Why nothing could be estimated, when that is so.
    pub note: Option<String>,
}

impl EstimateReport {
    /// The columns that are not estimated, with why.
    pub fn not_estimated(&self) -> Vec<(&str, &str)> {
        self.columns
            .iter()
            .filter_map(|(c, k)| match k {
                ColumnKind::NotEstimated(why) => Some((c.as_str(), why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The name of the lower bound column of `column` in the output.
    pub fn low(column: &str) -> String {
        format!("{column}_low")
    }

    pub fn high(column: &str) -> String {
        format!("{column}_high")
    }
}

/// How the rows of one sampled source were drawn.
#[derive(Debug, Clone, PartialEq)]
struct Design {
    unit: Unit,
    /// How many rows of the full data each sampled row stands for (1/π).
    weight: Weight,
    /// The probability each unit is in the sample, relative to the data the estimates
    /// are of (the environment a sample build came from, if it is one).
    probability: f64,
    /// For `key` designs: the seed and fraction the keys were drawn with; two sources
    /// drawn alike keep the same keys.
    keys: Option<(u64, String)>,
    /// Whether a unit value may be NULL (a `key` sample's NULL keys are sampled row by
    /// row: each such row is a unit of its own).
    null_units: bool,
    /// The rows of the source in the data estimated (a store's own, or those a sample
    /// build came from): the total counts and sums are calibrated to.
    total_rows: Option<f64>,
    /// The rows of each unit the sample keeps, by unit number, when the footers told
    /// (`system`): the calibration is then computed from them, not from a second read.
    unit_rows: Option<Arc<[u64]>>,
    /// The rows the sample keeps, when the footers told (a `bernoulli` sample's access
    /// plans select each row): with rows as the units, the calibration's totals.
    sample_rows: Option<u64>,
    describe: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Weight {
    Constant(f64),
    /// By the value of `column`: a heavy key's rows (kept whole) stand for `heavy`
    /// rows each, the others' for `other`.
    ByKey {
        column: String,
        keys: Arc<HeavyKeys>,
        heavy: f64,
        other: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Unit {
    /// Every row is drawn on its own (`bernoulli`).
    Row,
    /// Rows sharing this column's value are drawn together (the key of a `key` sample,
    /// a `system` sample's unit column).
    Column(String),
}

/// The sampling design of a registered source, or why it has none estimates can use.
fn design_of(scan: &SourceScan) -> Option<Result<Design, String>> {
    let policy = match &scan.sampling {
        SourceSampling::Sampled(p) => Some(p),
        SourceSampling::Full => None,
    };
    let built = scan.built.as_ref();
    let total_rows = match built {
        Some(b) => b.origin_rows.map(|r| r as f64),
        None => Some(scan.rows_total as f64),
    };
    let over = |f: f64| built.map_or(f, |b| f * b.fraction);
    // Rows read from a build through another draw: its heavy keys were kept whole by
    // the build, the others with its fraction.
    let through_build = |left: f64| match built {
        Some(b) if !b.heavy_keys.is_empty() => Weight::ByKey {
            column: b.key.clone(),
            keys: Arc::new(HeavyKeys::from_strings(&b.heavy_keys)),
            heavy: 1.0 / left,
            other: 1.0 / (left * b.fraction),
        },
        _ => Weight::Constant(1.0 / over(left)),
    };
    let build_note = |d: String| match built {
        Some(b) => format!(
            "{d}, over a {} sample build of {}",
            percent(b.fraction),
            b.from
        ),
        None => d,
    };
    Some(Ok(match (policy, built) {
        (None, None) => return None,
        // A build read whole is the build's own key sample.
        (None, Some(b)) => Design {
            unit: Unit::Column(b.key.clone()),
            weight: Weight::ByKey {
                column: b.key.clone(),
                keys: Arc::new(HeavyKeys::from_strings(&b.heavy_keys)),
                heavy: 1.0,
                other: 1.0 / b.fraction,
            },
            probability: b.fraction,
            keys: Some((b.seed, b.key.clone())),
            null_units: true,
            total_rows,
            unit_rows: None,
            sample_rows: None,
            describe: format!(
                "{}: a {} key sample of {} on `{}` (seed {})",
                scan.source,
                percent(b.fraction),
                b.from,
                b.key,
                b.seed
            ),
        },
        (Some(SamplePolicy::System { fraction, .. }), _) => Design {
            unit: Unit::Column(UNIT_COLUMN.to_string()),
            weight: through_build(*fraction),
            probability: over(*fraction),
            keys: None,
            null_units: false,
            total_rows,
            unit_rows: scan.unit_rows.clone(),
            sample_rows: None,
            describe: build_note(format!(
                "{}: system {}, units (row groups or page ranges) kept with probability {}",
                scan.source,
                percent(*fraction),
                fmt_prob(*fraction)
            )),
        },
        (Some(SamplePolicy::Bernoulli { fraction, .. }), _) => Design {
            unit: Unit::Row,
            weight: through_build(*fraction),
            probability: over(*fraction),
            keys: None,
            null_units: false,
            total_rows,
            unit_rows: None,
            sample_rows: scan.rows_selected,
            describe: build_note(format!(
                "{}: bernoulli {}, each row kept with probability {}",
                scan.source,
                percent(*fraction),
                fmt_prob(*fraction)
            )),
        },
        (Some(SamplePolicy::Key { fraction, seed, .. }), _) => {
            let Some(key) = scan.key_column.clone() else {
                return Some(Err(format!(
                    "`{}` has no key column to sample on",
                    scan.source
                )));
            };
            // Over a build on the same key and seed, the hash test keeps the build's
            // keys under the policy's fraction: min(f, build); otherwise the draws
            // multiply (the policy's fraction was made relative to the build).
            let probability = match built {
                Some(b) if b.seed == *seed && b.key == key => fraction.min(b.fraction),
                Some(b) if b.key == key => fraction * b.fraction,
                Some(_) => {
                    return Some(Err(format!(
                        "`{}` is a key sample on `{key}` of a sample build on another key",
                        scan.source
                    )));
                }
                None => *fraction,
            };
            let heavy = scan.heavy_keys.clone().unwrap_or_default();
            let describe_heavy = if heavy.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} heavy key(s) (each 1% of the rows or more) kept whole",
                    heavy.len()
                )
            };
            Design {
                unit: Unit::Column(key.clone()),
                weight: Weight::ByKey {
                    column: key.clone(),
                    keys: heavy,
                    heavy: 1.0,
                    other: 1.0 / probability,
                },
                probability,
                keys: Some((*seed, key.clone())),
                null_units: true,
                total_rows,
                unit_rows: None,
                sample_rows: None,
                describe: build_note(format!(
                    "{}: key {} on `{key}` (seed {seed}), each key kept with probability {}{describe_heavy}",
                    scan.source,
                    percent(*fraction),
                    fmt_prob(probability)
                )),
            }
        }
        (Some(SamplePolicy::Rows { .. }), _) => {
            return Some(Err(format!(
                "`{}` is a `rows` sample, whose rows have no fixed probability of being kept",
                scan.source
            )));
        }
    }))
}

fn percent(f: f64) -> String {
    crate::util::text::percent(f)
}

fn fmt_prob(p: f64) -> String {
    format!("{}", (p * 1e6).round() / 1e6)
}

/// Whether a plan made with units (`register_sources(.., units: true)`) read any as
/// columns: a `system` sample's. Without, it is the plan a plain run makes.
pub(crate) fn reads_units(scans: &[SourceScan]) -> bool {
    scans.iter().any(|s| {
        matches!(
            s.sampling,
            SourceSampling::Sampled(SamplePolicy::System { .. })
        )
    })
}

/// The sampled sources of a run and their designs; `Err` names a source estimates
/// cannot read.
fn designs(scans: &[SourceScan]) -> Result<HashMap<String, Design>, String> {
    let mut out = HashMap::new();
    for s in scans {
        if let Some(d) = design_of(s) {
            out.insert(s.source.to_ascii_lowercase(), d?);
        }
    }
    Ok(out)
}

/// `SLUICE_ESTIMATE_PORTABLE=1` plans estimates as for a Ballista cluster in an embedded
/// run too: bounds as plain SQL, the calibration from a second read of the sample. Both
/// plans must answer alike; this compares them without a cluster. Empty, `0`, `false`,
/// `no` or `off` leave it off.
pub(crate) fn portable_forced() -> bool {
    std::env::var("SLUICE_ESTIMATE_PORTABLE").is_ok_and(|v| switched_on(&v))
}

/// Whether an on/off variable's value turns it on.
fn switched_on(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off"
    )
}

/// The outcome of rewriting a plan for estimates.
pub(crate) enum Rewritten {
    /// The plan to run instead, with the report of its columns.
    Plan(LogicalPlan, EstimateReport),
    /// Estimates cannot be made: run the plan as it is, and say why.
    NotEstimable(EstimateReport),
}

/// Rewrites `plan` (the output of a pipe or a query, its nodes as views) so that it
/// returns estimates of production's answer and their bounds.
///
/// `portable`: bounds as plain SQL expressions rather than Sluice's functions, for an
/// engine that knows only DataFusion's (a Ballista cluster).
pub(crate) fn rewrite(
    plan: &LogicalPlan,
    scans: &[SourceScan],
    portable: bool,
) -> DfResult<Rewritten> {
    let plan = inline_views(plan.clone())?;
    let visible: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let not = |design: String, why: String| {
        Rewritten::NotEstimable(EstimateReport {
            design,
            columns: visible
                .iter()
                .map(|c| (c.clone(), ColumnKind::NotEstimated(why.clone())))
                .collect(),
            note: Some(why),
        })
    };
    let mut designs = match designs(scans) {
        Ok(d) => d,
        Err(why) => return Ok(not(String::new(), why)),
    };
    if portable {
        // A cluster knows only DataFusion's functions: it reads the sample again for
        // the calibration rather than look its units up (`unit_rows`). (It is told no
        // row counts either: the plans are compared whole, second read and all.)
        for d in designs.values_mut() {
            d.unit_rows = None;
            d.sample_rows = None;
        }
    }
    let mut described: Vec<&String> = designs.values().map(|d| &d.describe).collect();
    described.sort();
    let design_text = described
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut rw = Rewriter {
        designs,
        next_derived: 0,
    };
    let (plan, flow) = rw.rewrite(&plan)?;
    let columns_of = |plan: &LogicalPlan, kinds: &dyn Fn(usize) -> ColumnKind| {
        plan.schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.name().starts_with(HIDDEN) && f.name() != UNIT_COLUMN)
            .map(|(i, f)| (f.name().clone(), kinds(i)))
            .collect::<Vec<_>>()
    };
    match flow {
        Flow::Fail(why) => Ok(not(design_text, why)),
        Flow::Exact => Ok(not(
            design_text,
            "the output reads no sampled rows: it is exact".into(),
        )),
        Flow::Rows { per_unit: false, .. } => Ok(not(
            design_text,
            "the output has no aggregate over the sampled rows: its rows are a sample of production's rows, with nothing to scale (add a GROUP BY with count, sum or avg)".into(),
        )),
        Flow::Rows { per_unit: true, .. } => {
            let columns = columns_of(&plan, &|_| ColumnKind::PerUnit);
            let plan = visible_only(plan)?;
            Ok(Rewritten::Plan(
                plan,
                EstimateReport {
                    design: design_text,
                    columns,
                    note: Some(
                        "each row is an aggregate of one sampled unit: exact, and the rows are a sample of production's".into(),
                    ),
                },
            ))
        }
        Flow::Estimated(status) => {
            let columns = columns_of(&plan, &|i| status[i].kind());
            let plan = with_bounds(plan, &status)?;
            let plan = without_unused_columns(plan)?;
            let plan = if portable {
                interval::portable(plan)?
            } else {
                plan
            };
            Ok(Rewritten::Plan(
                plan,
                EstimateReport {
                    design: design_text,
                    columns,
                    note: None,
                },
            ))
        }
    }
}

/// The plan with every view it reads (a pipe's earlier nodes, a `key` sample's
/// filter) put in place, so the rewrite sees the sampled scans.
fn inline_views(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(datafusion::common::tree_node::Transformed::no(node));
        };
        let Ok(provider) = source_as_provider(&scan.source) else {
            return Ok(datafusion::common::tree_node::Transformed::no(node));
        };
        let Some(view) = provider.downcast_ref::<datafusion::catalog::view::ViewTable>() else {
            return Ok(datafusion::common::tree_node::Transformed::no(node));
        };
        if scan.projection.is_some() || !scan.filters.is_empty() || scan.fetch.is_some() {
            return Ok(datafusion::common::tree_node::Transformed::no(node));
        }
        let inner = inline_views(view.logical_plan().clone())?;
        let alias = SubqueryAlias::try_new(Arc::new(inner), scan.table_name.clone())?;
        Ok(datafusion::common::tree_node::Transformed::yes(
            LogicalPlan::SubqueryAlias(alias),
        ))
    })
    .map(|t| t.data)
}

/// What flows out of a rewritten plan node.
enum Flow {
    /// Rows not drawn from any sampled source.
    Exact,
    /// Rows drawn from sampled sources, one design; the unit column's index in the
    /// node's output (none when every row is a unit). `per_unit`: an aggregate per unit
    /// made these rows (each exact for its unit).
    Rows {
        unit: Option<usize>,
        /// The column the weight of a row is looked up by (a `ByKey` weight).
        weight_key: Option<usize>,
        design: Design,
        per_unit: bool,
        /// The whole sample of the source, before the pipe's filters: what the estimates
        /// are calibrated on (see `Sample`).
        sample: Option<Arc<Sample>>,
    },
    /// The output of the estimation aggregate and the nodes above it, a status per
    /// output column.
    Estimated(Vec<Status>),
    /// Estimates cannot be made, and why.
    Fail(String),
}

/// The plan of a sampled source's whole sample (its scan, and a `key` sample's filter),
/// with the unit's and the weight key's columns in it. Its weighted row count is the
/// sample's estimate N̂ of the source's rows, whose true number N is known: every
/// count and sum is calibrated by N/N̂, which takes out of each estimate the error all
/// groups share (a sample with more or fewer rows than its fraction, a large unit drawn
/// or missed), and its variance is that of the residuals (the ratio estimator).
#[derive(Debug)]
struct Sample {
    plan: LogicalPlan,
    unit: Option<usize>,
    weight_key: Option<usize>,
}

/// The sample a `key` design's calibration reads a second time, `predicate` (the key
/// sample's) over `scan`: the union of its rows with a key, read by that column alone,
/// and of those without one (`key::split_by_null_key`), which a scan skips in row groups
/// with no NULL key. `None` when the predicate is not the key sample's alone.
fn key_sample_read(predicate: &Expr, scan: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    let Some((keyed, unkeyed)) = crate::scan::key::split_by_null_key(predicate) else {
        return Ok(None);
    };
    let keyed = LogicalPlanBuilder::from(scan.clone())
        .filter(keyed)?
        .build()?;
    let unkeyed = LogicalPlanBuilder::from(scan.clone())
        .filter(unkeyed)?
        .build()?;
    Ok(Some(
        LogicalPlanBuilder::from(keyed).union(unkeyed)?.build()?,
    ))
}

/// What an output column above the estimation aggregate is.
#[derive(Debug, Clone)]
enum Status {
    Exact,
    /// Estimation aggregate output `agg`: its bounds are the hidden columns
    /// `__sluice_lo_{agg}` / `__sluice_hi_{agg}`, its SE `__sluice_se_{agg}`.
    Est {
        agg: usize,
        ratio: bool,
        counts: Counts,
    },
    /// A function of estimates, bounded by hidden columns of these names.
    Bounded {
        lo: String,
        hi: String,
        ratio: bool,
    },
    /// One of the rewrite's own columns.
    Hidden,
    Not(String),
}

impl Status {
    fn kind(&self) -> ColumnKind {
        match self {
            Status::Exact | Status::Hidden => ColumnKind::Exact,
            Status::Est { ratio: false, .. } => ColumnKind::Scaled,
            Status::Est { ratio: true, .. } => ColumnKind::Ratio,
            Status::Bounded { ratio: true, .. } => ColumnKind::Ratio,
            Status::Bounded { .. } => ColumnKind::Derived,
            Status::Not(why) => ColumnKind::NotEstimated(why.clone()),
        }
    }

    fn bounds(&self) -> Option<(String, String)> {
        match self {
            Status::Est { agg, .. } => Some((lo_name(*agg), hi_name(*agg))),
            Status::Bounded { lo, hi, .. } => Some((lo.clone(), hi.clone())),
            _ => None,
        }
    }
}

fn lo_name(agg: usize) -> String {
    format!("{HIDDEN}lo_{agg}")
}
fn hi_name(agg: usize) -> String {
    format!("{HIDDEN}hi_{agg}")
}
fn se_name(agg: usize) -> String {
    format!("{HIDDEN}se_{agg}")
}
fn units_name(agg: usize) -> String {
    format!("{HIDDEN}units_{agg}")
}
/// The sample's rows a count counted (its raw count), or an average's denominator.
fn rows_name(agg: usize) -> String {
    format!("{HIDDEN}rows_{agg}")
}
fn cov_name(a: usize, b: usize) -> String {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    format!("{HIDDEN}cov_{a}_{b}")
}

struct Rewriter {
    designs: HashMap<String, Design>,
    next_derived: usize,
}

/// The column of field `i` of `schema`, qualified as the schema has it.
fn column_at(schema: &DFSchemaRef, i: usize) -> Expr {
    let (q, f) = schema.qualified_field(i);
    Expr::Column(Column::new(q.cloned(), f.name()))
}

/// The index of the field a column reference names in `schema`.
fn index_of(schema: &DFSchemaRef, c: &Column) -> Option<usize> {
    schema.index_of_column(c).ok()
}

/// The index of the (first) field called `name`, whatever its qualifier.
fn index_by_name(schema: &DFSchemaRef, name: &str) -> Option<usize> {
    schema.fields().iter().position(|f| f.name() == name)
}

/// Whether an expression holds a subquery that reads a sampled source.
fn reads_sampled_in_subquery(e: &Expr, rw: &Rewriter) -> bool {
    let mut found = false;
    let _ = e.apply(|e| {
        let plan = match e {
            Expr::ScalarSubquery(s) => Some(&s.subquery),
            Expr::Exists(x) => Some(&x.subquery.subquery),
            Expr::InSubquery(x) => Some(&x.subquery.subquery),
            _ => None,
        };
        if let Some(p) = plan
            && rw.reads_sampled(p)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

impl Rewriter {
    fn reads_sampled(&self, plan: &LogicalPlan) -> bool {
        let mut found = false;
        let _ = plan.apply_with_subqueries(|p| {
            if let LogicalPlan::TableScan(s) = p
                && self
                    .designs
                    .contains_key(&s.table_name.table().to_ascii_lowercase())
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            if let LogicalPlan::TableScan(s) = p
                && let Ok(provider) = source_as_provider(&s.source)
                && let Some(view) = provider.downcast_ref::<datafusion::catalog::view::ViewTable>()
                && self.reads_sampled(view.logical_plan())
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }

    fn rewrite(&mut self, plan: &LogicalPlan) -> DfResult<(LogicalPlan, Flow)> {
        if plan
            .expressions()
            .iter()
            .any(|e| reads_sampled_in_subquery(e, self))
        {
            return Ok((
                plan.clone(),
                Flow::Fail("a subquery reads a sampled source".into()),
            ));
        }
        match plan {
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table().to_ascii_lowercase();
                let Some(design) = self.designs.get(&name).cloned() else {
                    return Ok((plan.clone(), Flow::Exact));
                };
                if scan.fetch.is_some() {
                    return Ok((
                        plan.clone(),
                        Flow::Fail(format!("a LIMIT inside the scan of `{name}`")),
                    ));
                }
                let unit = match &design.unit {
                    Unit::Row => None,
                    Unit::Column(c) => match index_by_name(plan.schema(), c) {
                        Some(i) => Some(i),
                        None => {
                            return Ok((
                                plan.clone(),
                                Flow::Fail(format!(
                                    "the scan of `{name}` does not read its sampling unit `{c}`"
                                )),
                            ));
                        }
                    },
                };
                let weight_key = match &design.weight {
                    Weight::Constant(_) => None,
                    Weight::ByKey { column, .. } => match index_by_name(plan.schema(), column) {
                        Some(i) => Some(i),
                        None => {
                            return Ok((
                                plan.clone(),
                                Flow::Fail(format!(
                                    "the scan of `{name}` does not read its key `{column}`"
                                )),
                            ));
                        }
                    },
                };
                // A `key` sample is its filter over the scan: the sample is known there.
                let sample = match &design.unit {
                    Unit::Column(c) if design.keys.is_some() && *c != UNIT_COLUMN => None,
                    _ => Some(Arc::new(Sample {
                        plan: plan.clone(),
                        unit,
                        weight_key,
                    })),
                };
                Ok((
                    plan.clone(),
                    Flow::Rows {
                        unit,
                        weight_key,
                        design,
                        per_unit: false,
                        sample,
                    },
                ))
            }
            LogicalPlan::Projection(p) => {
                let (input, flow) = self.rewrite(&p.input)?;
                self.projection(p, input, flow)
            }
            LogicalPlan::Filter(f) => {
                let (input, flow) = self.rewrite(&f.input)?;
                let is_key_sample = f.predicate.exists(|e| {
                    Ok(matches!(e, Expr::ScalarFunction(sf) if sf.func.name() == crate::scan::key::FUNCTION_NAME))
                })?;
                let new_plan = rebuild(plan, vec![input.clone()])?;
                let flow = match flow {
                    // A `key` sample's own filter: its output is the source's sample.
                    Flow::Rows {
                        unit,
                        weight_key,
                        design,
                        per_unit,
                        sample: None,
                    } if is_key_sample && matches!(input, LogicalPlan::TableScan(_)) => {
                        let read = key_sample_read(&f.predicate, &input)?;
                        let sample = Some(Arc::new(Sample {
                            plan: read.unwrap_or_else(|| new_plan.clone()),
                            unit,
                            weight_key,
                        }));
                        Flow::Rows {
                            unit,
                            weight_key,
                            design,
                            per_unit,
                            sample,
                        }
                    }
                    Flow::Estimated(status) => {
                        match first_estimate(&f.predicate, input.schema(), &status) {
                            Some(name) => Flow::Fail(format!(
                                "the rows are chosen by a condition on an estimate (`{}` in a WHERE or HAVING): which groups production keeps cannot be told from a sample",
                                name
                            )),
                            None => Flow::Estimated(status),
                        }
                    }
                    other => other,
                };
                Ok((new_plan, flow))
            }
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::Sort(_) => {
                let (input, flow) = self.rewrite(plan.inputs()[0])?;
                Ok((rebuild(plan, vec![input])?, flow))
            }
            LogicalPlan::Limit(_) => {
                let (input, flow) = self.rewrite(plan.inputs()[0])?;
                let flow = match flow {
                    Flow::Rows { .. } => Flow::Fail(
                        "a LIMIT over sampled rows keeps an arbitrary part of the sample".into(),
                    ),
                    other => other,
                };
                Ok((rebuild(plan, vec![input])?, flow))
            }
            LogicalPlan::Join(j) => {
                let (left, lflow) = self.rewrite(&j.left)?;
                let (right, rflow) = self.rewrite(&j.right)?;
                let left_len = left.schema().fields().len();
                let new_plan = rebuild(plan, vec![left.clone(), right.clone()])?;
                let flow = self.join_flow(j, &left, &right, lflow, rflow, left_len);
                Ok((new_plan, flow))
            }
            LogicalPlan::Aggregate(a) => {
                let (input, flow) = self.rewrite(&a.input)?;
                match flow {
                    Flow::Exact => Ok((rebuild(plan, vec![input])?, Flow::Exact)),
                    Flow::Fail(w) => Ok((rebuild(plan, vec![input])?, Flow::Fail(w))),
                    Flow::Estimated(_) => Ok((
                        rebuild(plan, vec![input])?,
                        Flow::Fail("an aggregate over estimates (an aggregate of an aggregate over sampled rows)".into()),
                    )),
                    Flow::Rows {
                        unit,
                        weight_key,
                        design,
                        sample,
                        ..
                    } => self.aggregate(a, input, unit, weight_key, design, sample),
                }
            }
            other => {
                let mut inputs = Vec::new();
                let mut all_exact = true;
                for i in other.inputs() {
                    let (p, f) = self.rewrite(i)?;
                    all_exact &= matches!(f, Flow::Exact);
                    inputs.push(p);
                }
                let flow = if all_exact {
                    Flow::Exact
                } else {
                    Flow::Fail(format!(
                        "a {} over sampled rows or estimates",
                        other
                            .display()
                            .to_string()
                            .split(':')
                            .next()
                            .unwrap_or("plan step")
                    ))
                };
                let new_plan = if inputs.is_empty() {
                    other.clone()
                } else {
                    rebuild(other, inputs)?
                };
                Ok((new_plan, flow))
            }
        }
    }

    fn join_flow(
        &self,
        j: &datafusion::logical_expr::Join,
        left: &LogicalPlan,
        right: &LogicalPlan,
        lflow: Flow,
        rflow: Flow,
        left_len: usize,
    ) -> Flow {
        let keeps_left = matches!(
            j.join_type,
            JoinType::Inner | JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti
        );
        let keeps_right = matches!(
            j.join_type,
            JoinType::Inner | JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
        );
        let left_cols = !matches!(j.join_type, JoinType::RightSemi | JoinType::RightAnti);
        let right_offset = if left_cols { left_len } else { 0 };
        let right_cols = !matches!(j.join_type, JoinType::LeftSemi | JoinType::LeftAnti);
        let widths = |side_status: Vec<Status>, other_len: usize, left_side: bool| {
            let mut out = Vec::new();
            if left_side {
                out.extend(side_status);
                if right_cols {
                    out.extend(std::iter::repeat_n(Status::Exact, other_len));
                }
            } else {
                if left_cols {
                    out.extend(std::iter::repeat_n(Status::Exact, other_len));
                }
                out.extend(side_status);
            }
            out
        };
        match (lflow, rflow) {
            (Flow::Fail(w), _) | (_, Flow::Fail(w)) => Flow::Fail(w),
            (Flow::Exact, Flow::Exact) => Flow::Exact,
            (
                Flow::Rows {
                    unit,
                    weight_key,
                    design,
                    per_unit,
                    sample,
                },
                Flow::Exact,
            ) if keeps_left && left_cols => Flow::Rows {
                unit,
                weight_key,
                design,
                per_unit,
                sample,
            },
            (
                Flow::Exact,
                Flow::Rows {
                    unit,
                    weight_key,
                    design,
                    per_unit,
                    sample,
                },
            ) if keeps_right && right_cols => Flow::Rows {
                unit: unit.map(|u| u + right_offset),
                weight_key: weight_key.map(|u| u + right_offset),
                design,
                per_unit,
                sample,
            },
            (
                Flow::Rows {
                    unit: Some(lu),
                    weight_key: lw,
                    design: ld,
                    per_unit: lp,
                    sample: ls,
                },
                Flow::Rows {
                    unit: Some(ru),
                    design: rd,
                    per_unit: rp,
                    ..
                },
            ) if j.join_type == JoinType::Inner
                && ld.keys.is_some()
                && ld.keys == rd.keys
                && ld.probability == rd.probability
                && ld.weight == rd.weight =>
            {
                // Two sources drawn on the same keys keep the same keys: joined on that
                // key, a pair of rows is in the sample exactly when its key is.
                let lcol = column_at(left.schema(), lu);
                let rcol = column_at(right.schema(), ru);
                if joins_on(j, &lcol, &rcol) {
                    // Calibrated on the left source's sample: the joined rows are a
                    // sample of its keys too.
                    Flow::Rows {
                        unit: Some(lu),
                        weight_key: lw,
                        design: ld,
                        per_unit: lp && rp,
                        sample: ls,
                    }
                } else {
                    Flow::Fail(format!(
                        "two sampled sources are joined on another column than their sample key `{}`: a joined row is kept only when both its keys are",
                        ld.keys.as_ref().map(|k| k.1.as_str()).unwrap_or("?")
                    ))
                }
            }
            (Flow::Rows { .. }, Flow::Rows { .. }) => Flow::Fail(
                "two sources sampled independently are joined: a joined row is in the sample with the product of their fractions, which the sample cannot tell from the data (sample both by key on the join column)".into(),
            ),
            (Flow::Estimated(s), Flow::Exact) if keeps_left && left_cols => {
                Flow::Estimated(widths(s, right.schema().fields().len(), true))
            }
            (Flow::Exact, Flow::Estimated(s)) if keeps_right && right_cols => {
                Flow::Estimated(widths(s, left.schema().fields().len(), false))
            }
            _ => Flow::Fail(format!(
                "a {} join of sampled rows or estimates that does not keep every row of the sampled side",
                j.join_type
            )),
        }
    }

    fn projection(
        &mut self,
        p: &Projection,
        input: LogicalPlan,
        flow: Flow,
    ) -> DfResult<(LogicalPlan, Flow)> {
        let schema = input.schema().clone();
        match flow {
            Flow::Exact | Flow::Fail(_) => {
                let out = Projection::try_new(p.expr.clone(), Arc::new(input))?;
                Ok((LogicalPlan::Projection(out), flow))
            }
            Flow::Rows {
                unit,
                weight_key,
                design,
                per_unit,
                sample,
            } => {
                let mut exprs = p.expr.clone();
                // The unit (and the weight's key) go along, under a name of their own
                // when the projection drops them.
                let mut carry = |i: Option<usize>, name: &str| -> Option<usize> {
                    let c = column_at(&schema, i?);
                    let found = exprs.iter().position(|e| *e == c);
                    Some(found.unwrap_or_else(|| {
                        exprs.push(c.alias(format!("{HIDDEN}{name}")));
                        exprs.len() - 1
                    }))
                };
                let new_unit = carry(unit, "unit");
                let new_weight_key = if weight_key.is_some() && weight_key == unit {
                    new_unit
                } else {
                    carry(weight_key, "weight_key")
                };
                let out = Projection::try_new(exprs, Arc::new(input))?;
                Ok((
                    LogicalPlan::Projection(out),
                    Flow::Rows {
                        unit: new_unit,
                        weight_key: new_weight_key,
                        design,
                        per_unit,
                        sample,
                    },
                ))
            }
            Flow::Estimated(status) => {
                let mut exprs = Vec::new();
                let mut out_status = Vec::new();
                let mut extra = Vec::new();
                let mut extra_status = Vec::new();
                for e in &p.expr {
                    let st = self.classify(e, &schema, &status, &mut extra, &mut extra_status);
                    exprs.push(e.clone());
                    out_status.push(st);
                }
                exprs.extend(extra);
                out_status.extend(extra_status);
                // The rewrite's own columns go along with every projection.
                for (i, f) in schema.fields().iter().enumerate() {
                    if f.name().starts_with(HIDDEN)
                        && matches!(status[i], Status::Hidden)
                        && !exprs
                            .iter()
                            .any(|e| e.schema_name().to_string() == *f.name())
                    {
                        exprs.push(column_at(&schema, i));
                        out_status.push(Status::Hidden);
                    }
                }
                let out = Projection::try_new(exprs, Arc::new(input))?;
                Ok((LogicalPlan::Projection(out), Flow::Estimated(out_status)))
            }
        }
    }

    /// The status of projection expression `e` over an estimated input; bounds of a
    /// derived estimate are pushed to `extra` as hidden columns.
    fn classify(
        &mut self,
        e: &Expr,
        schema: &DFSchemaRef,
        status: &[Status],
        extra: &mut Vec<Expr>,
        extra_status: &mut Vec<Status>,
    ) -> Status {
        let mut inner = e;
        while let Expr::Alias(a) = inner {
            inner = a.expr.as_ref();
        }
        // A plain reference keeps the column's status.
        if let Expr::Column(c) = inner
            && let Some(i) = index_of(schema, c)
        {
            return status[i].clone();
        }
        let mut refs = Vec::new();
        for c in inner.column_refs() {
            if let Some(i) = index_of(schema, c) {
                refs.push(i);
            }
        }
        if let Some(why) = refs.iter().find_map(|i| match &status[*i] {
            Status::Not(w) => Some(w.clone()),
            _ => None,
        }) {
            return Status::Not(why);
        }
        if refs
            .iter()
            .all(|i| matches!(status[*i], Status::Exact | Status::Hidden))
        {
            return Status::Exact;
        }
        match bounds_of(inner, schema, status) {
            Ok(Some((lo, hi, ratio))) => {
                let n = self.next_derived;
                self.next_derived += 1;
                let (lo_n, hi_n) = (format!("{HIDDEN}lo_d{n}"), format!("{HIDDEN}hi_d{n}"));
                extra.push(lo.alias(lo_n.clone()));
                extra_status.push(Status::Hidden);
                extra.push(hi.alias(hi_n.clone()));
                extra_status.push(Status::Hidden);
                Status::Bounded {
                    lo: lo_n,
                    hi: hi_n,
                    ratio,
                }
            }
            Ok(None) => Status::Exact,
            Err(why) => Status::Not(why),
        }
    }

    /// The estimation aggregate: `a` over sampled rows whose unit is column `unit` of
    /// `input` (none: every row).
    fn aggregate(
        &mut self,
        a: &Aggregate,
        input: LogicalPlan,
        unit: Option<usize>,
        weight_key: Option<usize>,
        design: Design,
        sample: Option<Arc<Sample>>,
    ) -> DfResult<(LogicalPlan, Flow)> {
        let schema = input.schema().clone();
        let plain = |input: LogicalPlan| -> DfResult<LogicalPlan> {
            Ok(LogicalPlan::Aggregate(Aggregate::try_new(
                Arc::new(input),
                a.group_expr.clone(),
                a.aggr_expr.clone(),
            )?))
        };
        // An aggregate per unit (its GROUP BY holds the unit column) makes rows that are
        // each exact for their unit: they stay sampled rows, one per unit.
        if let Some(u) = unit {
            let is_unit =
                |g: &Expr| matches!(g, Expr::Column(c) if index_of(&schema, c) == Some(u));
            if let Some(g) = a.group_expr.iter().position(is_unit)
                && (weight_key.is_none() || weight_key == unit)
            {
                return Ok((
                    plain(input)?,
                    Flow::Rows {
                        unit: Some(g),
                        weight_key: weight_key.map(|_| g),
                        design,
                        per_unit: true,
                        sample,
                    },
                ));
            }
        }
        if a.group_expr
            .iter()
            .any(|g| matches!(g, Expr::GroupingSet(_)))
        {
            return Ok((
                plain(input)?,
                Flow::Fail("GROUPING SETS, ROLLUP or CUBE over sampled rows".into()),
            ));
        }
        let groups = a.group_expr.len();
        let mut plans = Vec::new();
        for (j, e) in a.aggr_expr.iter().enumerate() {
            let name = a.schema.field(groups + j).name().clone();
            match agg_plan(e, &schema, unit) {
                Ok(p) => plans.push((name, p)),
                Err(why) => {
                    return Ok((plain(input)?, Flow::Fail(format!("`{name}`: {why}"))));
                }
            }
        }
        let built = two_stage(
            &input,
            &a.group_expr,
            &plans,
            unit,
            weight_key,
            &design,
            sample.as_deref(),
        )?;
        let mut status: Vec<Status> = (0..groups).map(|_| Status::Exact).collect();
        for (j, (_, p)) in plans.iter().enumerate() {
            status.push(match p {
                AggPlan::Scaled { counts, .. } => Status::Est {
                    agg: j,
                    ratio: false,
                    counts: *counts,
                },
                AggPlan::Ratio { .. } => Status::Est {
                    agg: j,
                    ratio: true,
                    counts: Counts::Nothing,
                },
                AggPlan::Same { what, .. } => Status::Not(format!(
                    "{what} of the sample: it does not scale, and no interval bounds production's"
                )),
            });
        }
        let hidden = built.schema().fields().len() - status.len();
        status.extend((0..hidden).map(|_| Status::Hidden));
        Ok((built, Flow::Estimated(status)))
    }
}

/// Rebuilds a plan node over new inputs, its expressions unchanged.
fn rebuild(plan: &LogicalPlan, inputs: Vec<LogicalPlan>) -> DfResult<LogicalPlan> {
    plan.with_new_exprs(plan.expressions(), inputs)
}

/// Whether a join equates these two columns (in its ON/USING pairs or its filter).
fn joins_on(j: &datafusion::logical_expr::Join, l: &Expr, r: &Expr) -> bool {
    let same = |a: &Expr, b: &Expr| {
        let strip = |e: &Expr| match e {
            Expr::Cast(c) => c.expr.as_ref().clone(),
            Expr::TryCast(c) => c.expr.as_ref().clone(),
            other => other.clone(),
        };
        strip(a) == *l && strip(b) == *r || strip(a) == *r && strip(b) == *l
    };
    super::join_equalities(j).any(|(a, b)| same(a, b))
}

/// The first estimated column an expression reads, if any.
fn first_estimate(e: &Expr, schema: &DFSchemaRef, status: &[Status]) -> Option<String> {
    e.column_refs().into_iter().find_map(|c| {
        let i = index_of(schema, c)?;
        match status[i] {
            Status::Est { .. } | Status::Bounded { .. } | Status::Not(_) => Some(c.name.clone()),
            _ => None,
        }
    })
}

/// Bounds of an expression over estimates: `Ok(None)` when it reads none, `Err` when it
/// reads some in a way that cannot be bounded. The third value tells a ratio.
fn bounds_of(
    e: &Expr,
    schema: &DFSchemaRef,
    status: &[Status],
) -> Result<Option<(Expr, Expr, bool)>, String> {
    let has_estimate = |e: &Expr| first_estimate(e, schema, status).is_some();
    if !has_estimate(e) {
        return Ok(None);
    }
    match e {
        Expr::Alias(a) => bounds_of(&a.expr, schema, status),
        Expr::Column(c) => {
            let i = index_of(schema, c).ok_or("an unknown column")?;
            match &status[i] {
                s @ (Status::Est { .. } | Status::Bounded { .. }) => {
                    let (lo, hi) = s.bounds().expect("bounded");
                    let ratio = matches!(
                        s,
                        Status::Est { ratio: true, .. } | Status::Bounded { ratio: true, .. }
                    );
                    let lo_i = index_by_name(schema, &lo).ok_or("lost bounds")?;
                    let hi_i = index_by_name(schema, &hi).ok_or("lost bounds")?;
                    Ok(Some((
                        column_at(schema, lo_i),
                        column_at(schema, hi_i),
                        ratio,
                    )))
                }
                Status::Not(w) => Err(w.clone()),
                _ => Ok(None),
            }
        }
        Expr::Cast(c) if is_numeric(c.field.data_type()) => {
            let t = c.field.data_type().clone();
            Ok(bounds_of(&c.expr, schema, status)?
                .map(|(lo, hi, r)| (cast(lo, t.clone()), cast(hi, t), r)))
        }
        Expr::TryCast(c) if is_numeric(c.field.data_type()) => {
            let t = c.field.data_type().clone();
            Ok(bounds_of(&c.expr, schema, status)?
                .map(|(lo, hi, r)| (cast(lo, t.clone()), cast(hi, t), r)))
        }
        Expr::ScalarFunction(f) => {
            let name = f.func.name();
            let monotone = matches!(name, "round" | "trunc" | "floor" | "ceil" | "coalesce");
            let Some((first, rest)) = f.args.split_first() else {
                return Err(format!("`{name}` of an estimate"));
            };
            if !monotone || rest.iter().any(has_estimate) {
                return Err(format!("`{name}(…)` of an estimate"));
            }
            let (lo, hi, r) = bounds_of(first, schema, status)?.ok_or("no estimate")?;
            let with = |x: Expr| {
                let mut args = vec![x];
                args.extend(rest.iter().cloned());
                Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    f.func.clone(),
                    args,
                ))
            };
            Ok(Some((with(lo), with(hi), r)))
        }
        Expr::Negative(x) => Ok(bounds_of(x, schema, status)?.map(|(lo, hi, r)| {
            (
                Expr::Negative(Box::new(hi)),
                Expr::Negative(Box::new(lo)),
                r,
            )
        })),
        Expr::BinaryExpr(b) => {
            let (l_est, r_est) = (has_estimate(&b.left), has_estimate(&b.right));
            match (b.op, l_est, r_est) {
                (Operator::Divide, true, true) => ratio_bounds(&b.left, &b.right, schema, status)
                    .map(|(lo, hi)| Some((lo, hi, true))),
                (Operator::Plus, true, false) | (Operator::Minus, true, false) => {
                    let (lo, hi, r) = bounds_of(&b.left, schema, status)?.ok_or("no estimate")?;
                    Ok(Some((
                        binary(lo, b.op, b.right.as_ref().clone()),
                        binary(hi, b.op, b.right.as_ref().clone()),
                        r,
                    )))
                }
                (Operator::Plus, false, true) => {
                    let (lo, hi, r) = bounds_of(&b.right, schema, status)?.ok_or("no estimate")?;
                    Ok(Some((
                        binary(b.left.as_ref().clone(), b.op, lo),
                        binary(b.left.as_ref().clone(), b.op, hi),
                        r,
                    )))
                }
                (Operator::Minus, false, true) => {
                    let (lo, hi, r) = bounds_of(&b.right, schema, status)?.ok_or("no estimate")?;
                    Ok(Some((
                        binary(b.left.as_ref().clone(), b.op, hi),
                        binary(b.left.as_ref().clone(), b.op, lo),
                        r,
                    )))
                }
                // A product or quotient with an exact value: the bounds in either order.
                (Operator::Multiply, true, false) | (Operator::Divide, true, false) => {
                    let (lo, hi, r) = bounds_of(&b.left, schema, status)?.ok_or("no estimate")?;
                    let x = binary(lo, b.op, b.right.as_ref().clone());
                    let y = binary(hi, b.op, b.right.as_ref().clone());
                    Ok(Some((
                        least(vec![x.clone(), y.clone()]),
                        greatest(vec![x, y]),
                        r,
                    )))
                }
                (Operator::Multiply, false, true) => {
                    let (lo, hi, r) = bounds_of(&b.right, schema, status)?.ok_or("no estimate")?;
                    let x = binary(b.left.as_ref().clone(), b.op, lo);
                    let y = binary(b.left.as_ref().clone(), b.op, hi);
                    Ok(Some((
                        least(vec![x.clone(), y.clone()]),
                        greatest(vec![x, y]),
                        r,
                    )))
                }
                _ => Err(format!(
                    "`{e}` combines estimates in a way no interval is made for"
                )),
            }
        }
        other => Err(format!("`{other}` of an estimate")),
    }
}

fn binary(l: Expr, op: Operator, r: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

/// An estimation aggregate output under `e`, through casts and a product with a
/// constant: (its index, the constant).
fn plain_estimate(e: &Expr, schema: &DFSchemaRef, status: &[Status]) -> Option<(usize, Expr)> {
    match e {
        Expr::Alias(a) => plain_estimate(&a.expr, schema, status),
        Expr::Column(c) => match status[index_of(schema, c)?] {
            Status::Est {
                agg, ratio: false, ..
            } => Some((agg, lit(1.0))),
            _ => None,
        },
        Expr::Cast(c) if is_numeric(c.field.data_type()) => plain_estimate(&c.expr, schema, status),
        Expr::TryCast(c) if is_numeric(c.field.data_type()) => {
            plain_estimate(&c.expr, schema, status)
        }
        Expr::BinaryExpr(b) if b.op == Operator::Multiply => {
            let exact = |x: &Expr| first_estimate(x, schema, status).is_none();
            if exact(&b.right) {
                let (agg, k) = plain_estimate(&b.left, schema, status)?;
                Some((
                    agg,
                    binary(
                        k,
                        Operator::Multiply,
                        cast(b.right.as_ref().clone(), DataType::Float64),
                    ),
                ))
            } else if exact(&b.left) {
                let (agg, k) = plain_estimate(&b.right, schema, status)?;
                Some((
                    agg,
                    binary(
                        k,
                        Operator::Multiply,
                        cast(b.left.as_ref().clone(), DataType::Float64),
                    ),
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Bounds of `num / den`, both (constant multiples of) scaled estimates of the same
/// aggregate: the ratio's linearized standard error from their SEs and covariance.
fn ratio_bounds(
    num: &Expr,
    den: &Expr,
    schema: &DFSchemaRef,
    status: &[Status],
) -> Result<(Expr, Expr), String> {
    let (Some((a, ka)), Some((b, kb))) = (
        plain_estimate(num, schema, status),
        plain_estimate(den, schema, status),
    ) else {
        return Err(
            "a ratio of expressions of estimates (only a ratio of two counts or sums is bounded)"
                .into(),
        );
    };
    let col = |name: String| -> Result<Expr, String> {
        index_by_name(schema, &name)
            .map(|i| column_at(schema, i))
            .ok_or_else(|| "the estimates' errors were lost on the way".to_string())
    };
    let est = |agg: usize| -> Result<Expr, String> {
        // The estimate itself, as the aggregate returned it: hi + lo over 2 would be
        // shifted by a clamp, so it is recomputed from the hidden columns' source.
        col(format!("{HIDDEN}est_{agg}"))
    };
    let (ea, eb) = (est(a)?, est(b)?);
    let (sa, sb) = (col(se_name(a))?, col(se_name(b))?);
    let cab = if a == b {
        binary(sa.clone(), Operator::Multiply, sb.clone())
    } else {
        col(cov_name(a, b))?
    };
    let f = |e: Expr| cast(e, DataType::Float64);
    // r = (ka a) / (kb b); var(r) ≈ (k²/b²) (var a − 2 (a/b) cov + (a/b)² var b).
    let k = binary(f(ka), Operator::Divide, f(kb));
    let counts = |agg: usize| {
        status.iter().find_map(|s| match s {
            Status::Est { agg: x, counts, .. } if *x == agg => Some(*counts),
            _ => None,
        })
    };
    // A count of some of a group's rows over the count of all of them is a share:
    // Wilson's interval, on the denominator's units and rows (the numerator may have
    // none: a share of 0). Any other ratio: the linearized one, on the fewer units.
    let share = matches!(counts(a), Some(Counts::SomeRows | Counts::EveryRow))
        && counts(b) == Some(Counts::EveryRow);
    let (units, rows) = if share {
        (col(units_name(b))?, Some(col(rows_name(b))?))
    } else {
        (least(vec![col(units_name(a))?, col(units_name(b))?]), None)
    };
    let bound = |side| {
        let (k, ea, eb, sa, sb, cab, units) = (
            k.clone(),
            ea.clone(),
            eb.clone(),
            sa.clone(),
            sb.clone(),
            cab.clone(),
            units.clone(),
        );
        match &rows {
            Some(rows) => {
                interval::proportion_interval(k, ea, eb, sa, sb, cab, units, rows.clone(), side)
            }
            None => interval::ratio_interval(k, ea, eb, sa, sb, cab, units, side),
        }
    };
    Ok((bound(Side::Low), bound(Side::High)))
}

/// How one aggregate of the estimation aggregate is computed.
#[derive(Debug, Clone)]
enum AggPlan {
    /// Σ y over the group's rows, scaled: `y` per row (a count's 1, a sum's value), or
    /// for `count(DISTINCT unit)` one per unit (`units`). `integer`: a count, returned
    /// rounded as an integer.
    Scaled {
        y: Expr,
        units: bool,
        integer: bool,
        counts: Counts,
    },
    /// Σ num / Σ den (an average), each sum scaled. `share`: an average of a value
    /// that is 0 or 1 (`avg(CASE WHEN c THEN 1 ELSE 0 END)`), a share of the rows,
    /// bounded as one (`interval::share_interval`) rather than for its skewness.
    Ratio { num: Expr, den: Expr, share: bool },
    /// The same aggregate on the sample (a minimum, a maximum): computed per unit,
    /// then again over the units, so it equals the sample's; not estimated.
    Same {
        stage1: Expr,
        stage2: fn(Expr) -> Expr,
        what: String,
    },
}

/// What a scaled estimate counts: a ratio of a count of some rows to the count of every
/// row of the same group is a share, bounded as one (`interval::proportion_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// Not rows: a sum, or distinct units.
    Nothing,
    /// Some of the group's rows (`count(x)`, a count with FILTER): 0 or 1 per row.
    SomeRows,
    /// Every row of the group (`count(*)`, `count(1)`): 1 per row.
    EveryRow,
}

/// The names of the sums of a unit's n³, n²d, nd² and d³ (n, d its numerator's and
/// denominator's weighted totals), into which the third moment of an average's
/// residuals n − R·d expands (`interval::skewed_interval` puts them together).
const RATIO_CUBES: [&str; 4] = ["nnn", "nnd", "ndd", "ddd"];

fn ratio_cubes(n: &Expr, d: &Expr) -> Vec<(&'static str, Expr)> {
    let mul = |a: &Expr, b: &Expr| binary(a.clone(), Operator::Multiply, b.clone());
    let cubes = [
        mul(&mul(n, n), n),
        mul(&mul(n, n), d),
        mul(&mul(n, d), d),
        mul(&mul(d, d), d),
    ];
    RATIO_CUBES.into_iter().zip(cubes).collect()
}

/// Σ(1 − π)(1 − 2π)·x of an average's n²d, nd² or d³ (`name`) over rows as units of
/// weight `w`, from the sums of aggregate `j` that stage 2 has anyway: each row's d is
/// its indicator times w (an average's denominator counts its non-NULL values) and n is 0
/// where d is, so with q = 1 − 1/w and q3 = q(1 − 2/w): Σ q3 n²d = (q3 w / q) A,
/// Σ q3 nd² = q3 w² N and Σ q3 d³ = q3 w² D.
fn rows_cube(name: &str, w: f64, j: usize, c2: &dyn Fn(String) -> Expr) -> Expr {
    let (factor, sum) = rows_cube_factor(name, w);
    binary(
        lit(factor),
        Operator::Multiply,
        c2(format!("{HIDDEN}{sum}{j}")),
    )
}

/// `rows_cube`'s factor and the stage-2 sum (A, N or D) it multiplies.
fn rows_cube_factor(name: &str, w: f64) -> (f64, &'static str) {
    let q = 1.0 - 1.0 / w;
    let q3 = q * (1.0 - 2.0 / w);
    match name {
        "nnd" if q != 0.0 => (q3 * w / q, "A"),
        "nnd" => (0.0, "A"),
        "ndd" => (q3 * w * w, "N"),
        _ => (q3 * w * w, "D"),
    }
}

/// Whether every non-NULL value of `x` is 0 or 1: a CASE whose results are all the
/// literals 0, 1 or NULL, or a boolean cast to a number. Its average is a share of rows.
fn is_zero_or_one(x: &Expr, schema: &DFSchemaRef) -> bool {
    use datafusion::logical_expr::ExprSchemable;
    let zero_or_one = |e: &Expr| match e {
        Expr::Literal(v, _) if v.is_null() => true,
        Expr::Literal(v, _) => matches!(
            v.cast_to(&DataType::Float64),
            Ok(ScalarValue::Float64(Some(f))) if f == 0.0 || f == 1.0
        ),
        _ => false,
    };
    match x {
        Expr::Alias(a) => is_zero_or_one(&a.expr, schema),
        Expr::Case(c) => {
            c.when_then_expr.iter().all(|(_, then)| zero_or_one(then))
                && c.else_expr.as_deref().is_none_or(zero_or_one)
        }
        Expr::Cast(c) if c.field.data_type().is_numeric() => {
            matches!(c.expr.get_type(schema), Ok(DataType::Boolean))
        }
        _ => false,
    }
}

/// The plan of one aggregate expression over sampled rows, or why it cannot be made.
fn agg_plan(e: &Expr, schema: &DFSchemaRef, unit: Option<usize>) -> Result<AggPlan, String> {
    let inner = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
        return Err("not an aggregate function".into());
    };
    let name = func.name().to_ascii_lowercase();
    if !params.order_by.is_empty() && !matches!(name.as_str(), "min" | "max") {
        return Err(format!("`{name}` with ORDER BY"));
    }
    let every_row_unless_filtered = match params.filter {
        Some(_) => Counts::SomeRows,
        None => Counts::EveryRow,
    };
    // FILTER (WHERE c): a row counts when c is true.
    let gate = |y: Expr| match &params.filter {
        Some(f) => when(f.as_ref().clone().is_true(), y)
            .otherwise(lit(0.0))
            .expect("a CASE"),
        None => y,
    };
    let one_if = |x: &Expr| {
        when(x.clone().is_not_null(), lit(1.0))
            .otherwise(lit(0.0))
            .expect("a CASE")
    };
    let value = |x: &Expr| {
        datafusion::functions::core::expr_fn::coalesce(vec![
            cast(x.clone(), DataType::Float64),
            lit(0.0),
        ])
    };
    match (name.as_str(), params.distinct, params.args.as_slice()) {
        ("count", false, []) => Ok(AggPlan::Scaled {
            y: gate(lit(1.0)),
            units: false,
            integer: true,
            counts: every_row_unless_filtered,
        }),
        ("count", false, [x]) => {
            let every = matches!(x, Expr::Literal(v, _) if !v.is_null());
            Ok(AggPlan::Scaled {
                y: gate(if every { lit(1.0) } else { one_if(x) }),
                units: false,
                integer: true,
                counts: if every {
                    every_row_unless_filtered
                } else {
                    Counts::SomeRows
                },
            })
        }
        ("count", true, [Expr::Column(c)])
            if unit.is_some() && index_of(schema, c) == unit && params.filter.is_none() =>
        {
            Ok(AggPlan::Scaled {
                y: lit(1.0),
                units: true,
                integer: true,
                counts: Counts::Nothing,
            })
        }
        ("count", true, _) => Err(
            "count(DISTINCT …) of a column that is not the sample's key: distinct values do not scale with the sample".into(),
        ),
        ("sum", false, [x]) => Ok(AggPlan::Scaled {
            y: gate(value(x)),
            units: false,
            integer: false,
            counts: Counts::Nothing,
        }),
        ("avg" | "mean", false, [x]) => Ok(AggPlan::Ratio {
            num: gate(value(x)),
            den: gate(one_if(x)),
            share: is_zero_or_one(x, schema),
        }),
        ("min" | "max" | "bool_and" | "bool_or", false, [_]) => {
            let stage2: fn(Expr) -> Expr = match name.as_str() {
                "min" => min,
                "max" => max,
                "bool_and" => bool_and,
                _ => bool_or,
            };
            Ok(AggPlan::Same {
                stage1: inner.clone(),
                stage2,
                what: format!("the {name}"),
            })
        }
        (other, true, _) => Err(format!("`{other}(DISTINCT …)` cannot be estimated from a sample")),
        (other, _, _) => Err(format!(
            "`{other}` cannot be estimated from a sample (count, sum, avg and ratios of them can)"
        )),
    }
}

/// The estimation aggregate as two aggregates (per group and unit, then per group; one
/// under row sampling) and a projection that returns, in the original aggregate's
/// columns, the estimates, followed by hidden columns: bounds, standard errors, units
/// and covariances.
fn two_stage(
    input: &LogicalPlan,
    group_expr: &[Expr],
    plans: &[(String, AggPlan)],
    unit: Option<usize>,
    weight_key: Option<usize>,
    design: &Design,
    sample: Option<&Sample>,
) -> DfResult<LogicalPlan> {
    let schema = input.schema().clone();
    // Each row's weight (1/π of its unit), and the factor (1 − π) of its unit's
    // share of the variance.
    let weight_in = |schema: &DFSchemaRef, weight_key: Option<usize>| -> DfResult<Expr> {
        Ok(match &design.weight {
            Weight::Constant(w) => lit(*w),
            Weight::ByKey {
                keys, heavy, other, ..
            } => {
                let Some(k) = weight_key else {
                    return Err(DataFusionError::Internal(
                        "a weight by key without its key column".into(),
                    ));
                };
                KeyWeight::expr(column_at(schema, k), keys.clone(), *heavy, *other)
            }
        })
    };
    let w = weight_in(&schema, weight_key)?;
    let constant_w = match &design.weight {
        Weight::Constant(cw) => Some(*cw),
        Weight::ByKey { .. } => None,
    };
    // Calibration to the source's known rows, when the whole sample is at hand and a
    // count or sum of rows is there to calibrate (distinct counts and ratios are not:
    // a plan without them is spared the calibration's join).
    let calibrated = plans
        .iter()
        .any(|(_, p)| matches!(p, AggPlan::Scaled { units: false, .. }));
    let calibration = match (sample, design.total_rows) {
        (Some(s), Some(n)) if n > 0.0 && calibrated => Some((s, n)),
        _ => None,
    };
    let one_minus_inverse = |w: Expr| {
        binary(
            lit(1.0),
            Operator::Minus,
            binary(lit(1.0), Operator::Divide, w),
        )
    };
    let f64c = |e: Expr| cast(e, DataType::Float64);
    let mul = |a: Expr, b: Expr| binary(a, Operator::Multiply, b);
    let scaled_idx: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| matches!(p, AggPlan::Scaled { .. }))
        .map(|(j, _)| j)
        .collect();
    let pairs: Vec<(usize, usize)> = scaled_idx
        .iter()
        .enumerate()
        .flat_map(|(x, a)| scaled_idx[x + 1..].iter().map(move |b| (*a, *b)))
        .collect();
    let n_groups = group_expr.len();
    // A NULL unit's rows are units of their own (a `key` sample's NULL keys): for such
    // designs stage 1 also sums squares and products row by row, which stand in for a
    // NULL unit's squared totals. Designs whose units are never NULL (`system`) skip
    // those sums and the CASEs that choose them: a plan that is smaller to plan.
    let null_units = unit.is_some() && design.null_units;

    // Stage 1 (per group and unit), or the rows themselves under row sampling.
    let (stage1, unit_null): (LogicalPlan, Option<Expr>) = match unit {
        Some(u) => {
            let unit_col = column_at(&schema, u);
            let mut groups = group_expr.to_vec();
            groups.push(unit_col.clone().alias(format!("{HIDDEN}u")));
            // A unit's weight, unless every unit weighs the same.
            let mut aggs = match constant_w {
                Some(_) => vec![],
                None => vec![max(w.clone()).alias(format!("{HIDDEN}w"))],
            };
            for (j, (_, p)) in plans.iter().enumerate() {
                match p {
                    AggPlan::Scaled {
                        y, units: false, ..
                    } => {
                        // Weighted, unless every row weighs the same (then t = w·r).
                        if constant_w.is_none() {
                            aggs.push(
                                sum(mul(y.clone(), w.clone())).alias(format!("{HIDDEN}t{j}")),
                            );
                        }
                        aggs.push(sum(y.clone()).alias(format!("{HIDDEN}r{j}")));
                        if null_units {
                            aggs.push(
                                sum(mul(mul(y.clone(), w.clone()), mul(y.clone(), w.clone())))
                                    .alias(format!("{HIDDEN}q{j}")),
                            );
                            // Row by row, y·w times the row's own weighted count (w):
                            // the cross term of a NULL unit's rows with the calibration.
                            aggs.push(
                                sum(mul(mul(y.clone(), w.clone()), w.clone()))
                                    .alias(format!("{HIDDEN}yx{j}")),
                            );
                        }
                    }
                    AggPlan::Scaled { units: true, .. } => {
                        // One per unit; a NULL key is no distinct value.
                        let one = when(unit_col.clone().is_null(), lit(0.0)).otherwise(lit(1.0))?;
                        if constant_w.is_none() {
                            aggs.push(
                                max(mul(one.clone(), w.clone())).alias(format!("{HIDDEN}t{j}")),
                            );
                        }
                        aggs.push(max(one.clone()).alias(format!("{HIDDEN}r{j}")));
                        if null_units {
                            aggs.push(
                                max(mul(mul(one.clone(), w.clone()), mul(one, w.clone())))
                                    .alias(format!("{HIDDEN}q{j}")),
                            );
                        }
                    }
                    AggPlan::Ratio { num, den, share } => {
                        let (nw, dw) = (mul(num.clone(), w.clone()), mul(den.clone(), w.clone()));
                        aggs.push(sum(nw.clone()).alias(format!("{HIDDEN}n{j}")));
                        aggs.push(sum(dw.clone()).alias(format!("{HIDDEN}d{j}")));
                        if *share {
                            // The rows it averages over, for the score interval's size.
                            aggs.push(sum(den.clone()).alias(format!("{HIDDEN}dr{j}")));
                        }
                        if null_units {
                            aggs.push(
                                sum(mul(nw.clone(), nw.clone())).alias(format!("{HIDDEN}nn{j}")),
                            );
                            aggs.push(
                                sum(mul(dw.clone(), dw.clone())).alias(format!("{HIDDEN}dd{j}")),
                            );
                            aggs.push(
                                sum(mul(nw.clone(), dw.clone())).alias(format!("{HIDDEN}nd{j}")),
                            );
                            for (name, cube) in ratio_cubes(&nw, &dw).into_iter().filter(|_| !share)
                            {
                                aggs.push(sum(cube).alias(format!("{HIDDEN}{name}{j}")));
                            }
                        }
                    }
                    AggPlan::Same { stage1, .. } => {
                        aggs.push(stage1.clone().alias(format!("{HIDDEN}p{j}")));
                    }
                }
            }
            for (a, b) in pairs.iter().filter(|_| null_units) {
                let (ya, yb) = match (&plans[*a].1, &plans[*b].1) {
                    (
                        AggPlan::Scaled {
                            y: ya,
                            units: false,
                            ..
                        },
                        AggPlan::Scaled {
                            y: yb,
                            units: false,
                            ..
                        },
                    ) => (ya.clone(), yb.clone()),
                    // A per-unit indicator's product with a row value is that value's
                    // unit total; per-row cross terms only matter for NULL units.
                    (AggPlan::Scaled { y: ya, .. }, AggPlan::Scaled { y: yb, .. }) => {
                        (ya.clone(), yb.clone())
                    }
                    _ => unreachable!("pairs are of scaled aggregates"),
                };
                aggs.push(
                    sum(mul(mul(ya, w.clone()), mul(yb, w.clone())))
                        .alias(format!("{HIDDEN}x{a}_{b}")),
                );
            }
            let stage1 =
                LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(input.clone()), groups, aggs)?);
            let s1 = stage1.schema().clone();
            let null = null_units.then(|| column_at(&s1, n_groups).is_null());
            (stage1, null)
        }
        None => (input.clone(), None),
    };
    // The calibration's totals over the whole sample (one row: N̂ and Σ(1 − π)X²), and
    // each unit's weighted rows X joined to stage 1; or, when the footers gave each
    // unit's rows and every row weighs the same (`footers`), X looked up by unit number
    // (`unit_rows`) and the totals as constants (`known_totals`).
    let footers = match (calibration, unit, &design.unit_rows, &design.weight) {
        (Some(_), Some(_), Some(rows), Weight::Constant(cw)) => {
            Some(unit_rows::UnitRows::new(rows.clone(), *cw))
        }
        _ => None,
    };
    // Rows as units (`bernoulli`), each weighing w, n of them in the sample as its
    // access plans count them: units of one row each, as a second read would sum them.
    let row_totals = match (calibration, unit, design.sample_rows, &design.weight) {
        (Some(_), None, Some(n), Weight::Constant(cw)) => {
            Some(unit_rows::calibration_totals(n as f64, n as f64, *cw))
        }
        _ => None,
    };
    let known_totals = footers
        .as_ref()
        .map(unit_rows::UnitRows::totals)
        .or(row_totals);
    let (stage1, totals) = match (calibration, unit) {
        (None, _) => (stage1, None),
        (Some(_), Some(_)) if footers.is_some() => (stage1, None),
        (Some(_), None) if row_totals.is_some() => (stage1, None),
        (Some((sample, _)), Some(_)) => {
            let ss = sample.plan.schema().clone();
            let ws = weight_in(&ss, sample.weight_key)?;
            let Some(su) = sample.unit else {
                return Err(DataFusionError::Internal(
                    "a unit design's sample without its unit".into(),
                ));
            };
            let mut aggs0 = vec![
                sum(ws.clone()).alias(format!("{HIDDEN}xw")),
                max(ws.clone()).alias(format!("{HIDDEN}w0")),
            ];
            if null_units {
                aggs0.push(sum(mul(ws.clone(), ws)).alias(format!("{HIDDEN}xw2")));
            }
            let stage0 = LogicalPlan::Aggregate(Aggregate::try_new(
                Arc::new(sample.plan.clone()),
                vec![column_at(&ss, su).alias(format!("{HIDDEN}u0"))],
                aggs0,
            )?);
            let s0 = stage0.schema().clone();
            let c0 =
                |name: &str| column_at(&s0, index_by_name(&s0, name).expect("a stage-0 column"));
            let q0 = one_minus_inverse(c0(&format!("{HIDDEN}w0")));
            let xw = c0(&format!("{HIDDEN}xw"));
            let squared = mul(xw.clone(), xw.clone());
            let squared = if null_units {
                when(
                    c0(&format!("{HIDDEN}u0")).is_null(),
                    c0(&format!("{HIDDEN}xw2")),
                )
                .otherwise(squared)?
            } else {
                squared
            };
            // The totals over every unit ride along each unit's row (a window over all
            // of them), so the sample is aggregated once for both.
            let over_all = |e: Expr, name: String| -> Expr {
                Expr::from(datafusion::logical_expr::expr::WindowFunction::new(
                    datafusion::functions_aggregate::sum::sum_udaf(),
                    vec![e],
                ))
                .alias(name)
            };
            let stage0 = datafusion::logical_expr::LogicalPlanBuilder::from(stage0)
                .window(vec![
                    over_all(xw.clone(), format!("{HIDDEN}nhat")),
                    over_all(mul(q0, squared), format!("{HIDDEN}c")),
                ])?
                .build()?;
            let s0 = stage0.schema().clone();
            let c0 =
                |name: &str| column_at(&s0, index_by_name(&s0, name).expect("a stage-0 column"));
            let s1 = stage1.schema().clone();
            let u1 = column_at(&s1, n_groups);
            let joined = datafusion::logical_expr::LogicalPlanBuilder::from(stage1)
                .join_on(
                    stage0,
                    JoinType::Left,
                    vec![u1.eq(c0(&format!("{HIDDEN}u0")))],
                )?
                .build()?;
            (joined, None)
        }
        (Some((sample, _)), None) => {
            let ss = sample.plan.schema().clone();
            let ws = weight_in(&ss, sample.weight_key)?;
            let totals = LogicalPlan::Aggregate(Aggregate::try_new(
                Arc::new(sample.plan.clone()),
                vec![],
                vec![
                    sum(ws.clone()).alias(format!("{HIDDEN}nhat")),
                    sum(mul(one_minus_inverse(ws.clone()), mul(ws.clone(), ws)))
                        .alias(format!("{HIDDEN}c")),
                ],
            )?);
            (stage1, Some(totals))
        }
    };
    let s1 = stage1.schema().clone();
    let c1 = |name: String| -> Expr {
        let i = index_by_name(&s1, &name).expect("a stage-1 column");
        column_at(&s1, i)
    };
    // A unit's weighted total of aggregate `j` (Σ y·w over its rows).
    let t_of = |j: usize| -> Expr {
        match constant_w {
            Some(cw) => mul(c1(format!("{HIDDEN}r{j}")), lit(cw)),
            None => c1(format!("{HIDDEN}t{j}")),
        }
    };
    // (1 − π): of each unit, from its weight; of each row when rows are the units.
    let q = match unit {
        Some(_) => match constant_w {
            Some(cw) => lit(1.0 - 1.0 / cw),
            None => one_minus_inverse(c1(format!("{HIDDEN}w"))),
        },
        None => one_minus_inverse(w.clone()),
    };

    // (1 − π)(1 − 2π): a unit's factor in the third moment, as (1 − π) is in the second.
    let q3 = match unit {
        Some(_) => match constant_w {
            Some(cw) => lit((1.0 - 1.0 / cw) * (1.0 - 2.0 / cw)),
            None => mul(
                q.clone(),
                binary(
                    lit(1.0),
                    Operator::Minus,
                    binary(lit(2.0), Operator::Divide, c1(format!("{HIDDEN}w"))),
                ),
            ),
        },
        None => mul(
            q.clone(),
            binary(
                lit(1.0),
                Operator::Minus,
                binary(lit(2.0), Operator::Divide, w.clone()),
            ),
        ),
    };

    // Stage 2: per group.
    let groups2: Vec<Expr> = match unit {
        Some(_) => (0..n_groups).map(|i| column_at(&s1, i)).collect(),
        None => group_expr.to_vec(),
    };
    let mut aggs2 = Vec::new();
    // A unit's value, or for a NULL unit (whose rows are units of their own) the sum
    // over its rows that stage 1 computed for it (the column `per_row`).
    let by_unit = |per_row: &str, per_unit: Expr| -> DfResult<Expr> {
        Ok(match &unit_null {
            Some(null) => {
                when(null.clone(), c1(format!("{HIDDEN}{per_row}"))).otherwise(per_unit)?
            }
            None => per_unit,
        })
    };
    // 1 for a unit that carries the value (x ≠ 0) and was drawn by chance (π < 1):
    // the units an interval counts. A unit kept whole (a heavy key, weight 1) adds
    // nothing to the variance and says nothing of how the drawn units spread, so a
    // group whose value lies only in such units and in drawn units without it has no
    // interval, not one that only the calibration's term makes wide. Where nothing is
    // drawn by chance (a fraction of 1: every unit kept), the answer is exact, and every
    // unit counts: its interval is the estimate itself.
    let by_chance = match &design.weight {
        Weight::Constant(w) => *w > 1.0,
        Weight::ByKey { heavy, other, .. } => heavy.max(*other) > 1.0,
    };
    let drawn_with = |x: Expr| -> DfResult<Expr> {
        let holds = x.not_eq(lit(0.0));
        let counts = if by_chance {
            holds.and(q.clone().gt(lit(0.0)))
        } else {
            holds
        };
        when(counts, lit(1.0)).otherwise(lit(0.0))
    };
    // Σ (1 − π) x² over units.
    let var_of = |t: Expr, per_row: &str| -> DfResult<Expr> {
        Ok(sum(mul(q.clone(), by_unit(per_row, mul(t.clone(), t))?)))
    };
    for (j, (_, p)) in plans.iter().enumerate() {
        match (p, unit) {
            (AggPlan::Scaled { units, .. }, Some(_)) => {
                let (t, r) = (t_of(j), c1(format!("{HIDDEN}r{j}")));
                if calibration.is_some() && !units {
                    // Σ (1 − π) Y_u X_u: the unit's total with its weighted rows.
                    let x = match &footers {
                        Some(f) => f.call(column_at(&s1, n_groups)),
                        None => datafusion::functions::core::expr_fn::coalesce(vec![
                            c1(format!("{HIDDEN}xw")),
                            lit(0.0),
                        ]),
                    };
                    aggs2.push(
                        sum(mul(
                            q.clone(),
                            by_unit(&format!("yx{j}"), mul(t.clone(), x))?,
                        ))
                        .alias(format!("{HIDDEN}B{j}")),
                    );
                }
                aggs2.push(sum(t.clone()).alias(format!("{HIDDEN}E{j}")));
                aggs2.push(sum(r.clone()).alias(format!("{HIDDEN}R{j}")));
                aggs2.push(var_of(t.clone(), &format!("q{j}"))?.alias(format!("{HIDDEN}V{j}")));
                // Σ ((1 − π) Y_u²)²: how unevenly the units share the variance
                // (`effective_units`). A NULL unit's rows (units of their own) count as
                // one unit here: their squares summed, then squared, which errs wide.
                let qt2 = mul(
                    q.clone(),
                    by_unit(&format!("q{j}"), mul(t.clone(), t.clone()))?,
                );
                aggs2.push(sum(mul(qt2.clone(), qt2)).alias(format!("{HIDDEN}K{j}")));
                aggs2.push(
                    sum(by_unit(&format!("r{j}"), drawn_with(t)?)?).alias(format!("{HIDDEN}U{j}")),
                );
            }
            (AggPlan::Scaled { y, units, .. }, None) => {
                let yw = mul(y.clone(), w.clone());
                if calibration.is_some() && !units {
                    aggs2.push(
                        sum(mul(q.clone(), mul(yw.clone(), w.clone())))
                            .alias(format!("{HIDDEN}B{j}")),
                    );
                }
                aggs2.push(sum(yw.clone()).alias(format!("{HIDDEN}E{j}")));
                aggs2.push(sum(y.clone()).alias(format!("{HIDDEN}R{j}")));
                aggs2.push(
                    sum(mul(q.clone(), mul(yw.clone(), yw.clone()))).alias(format!("{HIDDEN}V{j}")),
                );
                let qt2 = mul(q.clone(), mul(yw.clone(), yw.clone()));
                aggs2.push(sum(mul(qt2.clone(), qt2)).alias(format!("{HIDDEN}K{j}")));
                aggs2.push(sum(drawn_with(y.clone())?).alias(format!("{HIDDEN}U{j}")));
            }
            (AggPlan::Ratio { share, .. }, Some(_)) => {
                let (n, d) = (c1(format!("{HIDDEN}n{j}")), c1(format!("{HIDDEN}d{j}")));
                aggs2.push(sum(n.clone()).alias(format!("{HIDDEN}N{j}")));
                aggs2.push(sum(d.clone()).alias(format!("{HIDDEN}D{j}")));
                if *share {
                    aggs2.push(sum(c1(format!("{HIDDEN}dr{j}"))).alias(format!("{HIDDEN}Dr{j}")));
                }
                aggs2.push(var_of(n.clone(), &format!("nn{j}"))?.alias(format!("{HIDDEN}A{j}")));
                aggs2.push(
                    sum(mul(
                        q.clone(),
                        by_unit(&format!("nd{j}"), mul(n.clone(), d.clone()))?,
                    ))
                    .alias(format!("{HIDDEN}B{j}")),
                );
                aggs2.push(var_of(d.clone(), &format!("dd{j}"))?.alias(format!("{HIDDEN}C{j}")));
                // Σ (1 − π)(1 − 2π) of the unit totals' cubes and products: the third
                // moment of the ratio's residuals (`interval::skewed_interval`).
                for (name, cube) in ratio_cubes(&n, &d).into_iter().filter(|_| !share) {
                    aggs2.push(
                        sum(mul(q3.clone(), by_unit(&format!("{name}{j}"), cube)?))
                            .alias(format!("{HIDDEN}{name}{j}")),
                    );
                }
                // Of the denominator's unit totals (`effective_units`).
                let qd2 = mul(
                    q.clone(),
                    by_unit(&format!("dd{j}"), mul(d.clone(), d.clone()))?,
                );
                aggs2.push(sum(mul(qd2.clone(), qd2)).alias(format!("{HIDDEN}K{j}")));
                aggs2.push(
                    sum(by_unit(&format!("dd{j}"), drawn_with(d)?)?).alias(format!("{HIDDEN}U{j}")),
                );
            }
            (AggPlan::Ratio { num, den, share }, None) => {
                let (nw, dw) = (mul(num.clone(), w.clone()), mul(den.clone(), w.clone()));
                aggs2.push(sum(nw.clone()).alias(format!("{HIDDEN}N{j}")));
                aggs2.push(sum(dw.clone()).alias(format!("{HIDDEN}D{j}")));
                if *share {
                    aggs2.push(sum(den.clone()).alias(format!("{HIDDEN}Dr{j}")));
                }
                aggs2.push(
                    sum(mul(q.clone(), mul(nw.clone(), nw.clone()))).alias(format!("{HIDDEN}A{j}")),
                );
                aggs2.push(
                    sum(mul(q.clone(), mul(nw.clone(), dw.clone()))).alias(format!("{HIDDEN}B{j}")),
                );
                // Rows as units of equal weight w: a row's d is 0 or w, and n is 0 where d
                // is, so n²d = w·n², nd² = w²·n and d³ = w²·d: only Σ n³ is new, the rest
                // come from A, N and D (`rows_cube`).
                for (name, cube) in ratio_cubes(&nw, &dw).into_iter().filter(|_| !share) {
                    if constant_w.is_none() || name == RATIO_CUBES[0] {
                        aggs2.push(sum(mul(q3.clone(), cube)).alias(format!("{HIDDEN}{name}{j}")));
                    }
                }
                aggs2.push(
                    sum(mul(q.clone(), mul(dw.clone(), dw.clone()))).alias(format!("{HIDDEN}C{j}")),
                );
                aggs2.push(sum(drawn_with(den.clone())?).alias(format!("{HIDDEN}U{j}")));
            }
            (AggPlan::Same { stage2, .. }, Some(_)) => {
                aggs2.push(stage2(c1(format!("{HIDDEN}p{j}"))).alias(format!("{HIDDEN}P{j}")));
            }
            (AggPlan::Same { stage1, .. }, None) => {
                aggs2.push(stage1.clone().alias(format!("{HIDDEN}P{j}")));
            }
        }
    }
    for (a, b) in &pairs {
        let cov = match unit {
            Some(_) => {
                let (ta, tb) = (t_of(*a), t_of(*b));
                sum(mul(q.clone(), by_unit(&format!("x{a}_{b}"), mul(ta, tb))?))
            }
            None => {
                let (AggPlan::Scaled { y: ya, .. }, AggPlan::Scaled { y: yb, .. }) =
                    (&plans[*a].1, &plans[*b].1)
                else {
                    unreachable!("pairs are of scaled aggregates")
                };
                sum(mul(
                    q.clone(),
                    mul(mul(ya.clone(), w.clone()), mul(yb.clone(), w.clone())),
                ))
            }
        };
        aggs2.push(cov.alias(cov_name(*a, *b)));
    }
    // Under a unit design the totals ride on stage 1's rows: one value per group.
    if calibration.is_some() && unit.is_some() && known_totals.is_none() {
        aggs2.push(max(c1(format!("{HIDDEN}nhat"))).alias(format!("{HIDDEN}nhat")));
        aggs2.push(max(c1(format!("{HIDDEN}c"))).alias(format!("{HIDDEN}c")));
    }
    let stage2 = LogicalPlan::Aggregate(Aggregate::try_new(Arc::new(stage1), groups2, aggs2)?);
    let stage2 = match totals {
        Some(t) => datafusion::logical_expr::LogicalPlanBuilder::from(stage2)
            .cross_join(t)?
            .build()?,
        None => stage2,
    };
    let s2 = stage2.schema().clone();
    let c2 = |name: String| -> Expr {
        let i = index_by_name(&s2, &name).expect("a stage-2 column");
        column_at(&s2, i)
    };

    // Two projections: the first computes each estimate, its standard error and its
    // units once; the second names the estimates and bounds them from those columns,
    // so no bound repeats the trees below it (see `interval`).
    let mut inner: Vec<Expr> = (0..n_groups).map(|i| column_at(&s2, i)).collect();
    for (j, (_, p)) in plans.iter().enumerate() {
        match p {
            AggPlan::Scaled { units, .. } => {
                let (e, r, v, u) = (
                    c2(format!("{HIDDEN}E{j}")),
                    c2(format!("{HIDDEN}R{j}")),
                    c2(format!("{HIDDEN}V{j}")),
                    c2(format!("{HIDDEN}U{j}")),
                );
                let ht_se = interval::step(Step::Root, v.clone());
                // Calibrated to the source's N rows: N·(Ŷ/N̂), with the variance of the
                // residuals Y_u − R·X_u: (N/N̂)² (Σ(1−π)Y² − 2R Σ(1−π)YX + R² Σ(1−π)X²).
                let (est, se) = match (calibration, *units) {
                    (Some((_, n)), false) => {
                        let (nhat, c) = match known_totals {
                            Some((nhat, c)) => (lit(nhat), lit(c)),
                            None => (c2(format!("{HIDDEN}nhat")), c2(format!("{HIDDEN}c"))),
                        };
                        let b = c2(format!("{HIDDEN}B{j}"));
                        let ok = nhat.clone().gt(lit(0.0));
                        let ratio = binary(e.clone(), Operator::Divide, nhat.clone());
                        let f = binary(lit(n), Operator::Divide, nhat);
                        let var = mul(
                            mul(f.clone(), f),
                            binary(
                                binary(v, Operator::Minus, mul(mul(lit(2.0), ratio.clone()), b)),
                                Operator::Plus,
                                mul(mul(ratio.clone(), ratio.clone()), c),
                            ),
                        );
                        let se = interval::step(Step::Root, var);
                        match known_totals {
                            // Constants: no CASE for the planner to fold.
                            Some((nhat, _)) if nhat > 0.0 => (mul(lit(n), ratio), se),
                            Some(_) => (e.clone(), ht_se.clone()),
                            None => (
                                when(ok.clone(), mul(lit(n), ratio)).otherwise(e.clone())?,
                                when(ok, se).otherwise(ht_se.clone())?,
                            ),
                        }
                    }
                    _ => (e.clone(), ht_se.clone()),
                };
                inner.push(est.alias(format!("{HIDDEN}k{j}")));
                inner.push(se.alias(format!("{HIDDEN}ks{j}")));
                inner.push(f64c(r).alias(format!("{HIDDEN}R{j}")));
                // Ratios of estimates are made of the uncalibrated ones (the
                // calibration cancels out of a ratio) and their own errors.
                inner.push(e.alias(format!("{HIDDEN}est_{j}")));
                inner.push(ht_se.alias(se_name(j)));
                let u =
                    effective_units(u, c2(format!("{HIDDEN}V{j}")), c2(format!("{HIDDEN}K{j}")));
                inner.push(u.alias(units_name(j)));
            }
            AggPlan::Ratio { share, .. } => {
                let (n, d) = (c2(format!("{HIDDEN}N{j}")), c2(format!("{HIDDEN}D{j}")));
                let (a, b, c, u) = (
                    c2(format!("{HIDDEN}A{j}")),
                    c2(format!("{HIDDEN}B{j}")),
                    c2(format!("{HIDDEN}C{j}")),
                    c2(format!("{HIDDEN}U{j}")),
                );
                let nonzero = d.clone().not_eq(lit(0.0));
                // NULL over no rows: its bounds are NULL too.
                let r = when(nonzero, binary(n, Operator::Divide, d.clone()))
                    .otherwise(lit(ScalarValue::Float64(None)))?;
                // var(R) ≈ (A − 2R·B + R²·C) / D²
                // The residuals are taken from R fitted to the same units, so they
                // understate the spread by (units − 1)/units: corrected, as the usual
                // 1/(n − 1) does.
                let var = binary(
                    binary(
                        binary(
                            binary(a, Operator::Minus, mul(mul(lit(2.0), r.clone()), b)),
                            Operator::Plus,
                            mul(mul(r.clone(), r.clone()), c),
                        ),
                        Operator::Divide,
                        mul(d.clone(), d.clone()),
                    ),
                    Operator::Multiply,
                    binary(
                        u.clone(),
                        Operator::Divide,
                        greatest(vec![binary(u.clone(), Operator::Minus, lit(1.0)), lit(1.0)]),
                    ),
                );
                inner.push(r.alias(format!("{HIDDEN}est_{j}")));
                inner.push(interval::step(Step::Root, var).alias(se_name(j)));
                inner.push(d.alias(format!("{HIDDEN}D{j}")));
                if *share {
                    inner.push(c2(format!("{HIDDEN}Dr{j}")));
                }
                for name in RATIO_CUBES.into_iter().filter(|_| !share) {
                    let column = format!("{HIDDEN}{name}{j}");
                    inner.push(match (unit, constant_w) {
                        (None, Some(cw)) if name != RATIO_CUBES[0] => {
                            rows_cube(name, cw, j, &c2).alias(column)
                        }
                        _ => c2(column),
                    });
                }
                // Rows as units count alike in a ratio's denominator (`bernoulli`).
                let u = match unit {
                    Some(_) => {
                        effective_units(u, c2(format!("{HIDDEN}C{j}")), c2(format!("{HIDDEN}K{j}")))
                    }
                    None => u,
                };
                inner.push(u.alias(units_name(j)));
            }
            AggPlan::Same { .. } => inner.push(c2(format!("{HIDDEN}P{j}"))),
        }
    }
    for (a, b) in &pairs {
        inner.push(c2(cov_name(*a, *b)));
    }
    let inner = LogicalPlan::Projection(Projection::try_new(inner, Arc::new(stage2))?);
    let s3 = inner.schema().clone();
    let c3 = |name: String| -> Expr {
        let i = index_by_name(&s3, &name).expect("an estimate's column");
        column_at(&s3, i)
    };

    // The estimates under the aggregate's own column names, then the hidden columns.
    let mut exprs: Vec<Expr> = (0..n_groups).map(|i| column_at(&s3, i)).collect();
    let mut hidden = Vec::new();
    for (j, (name, p)) in plans.iter().enumerate() {
        let (est, se, u) = match p {
            AggPlan::Scaled { .. } => (
                c3(format!("{HIDDEN}k{j}")),
                c3(format!("{HIDDEN}ks{j}")),
                c3(units_name(j)),
            ),
            AggPlan::Ratio { .. } => (
                c3(format!("{HIDDEN}est_{j}")),
                c3(se_name(j)),
                c3(units_name(j)),
            ),
            AggPlan::Same { .. } => {
                exprs.push(c3(format!("{HIDDEN}P{j}")).alias(name));
                continue;
            }
        };
        let hi = interval::interval(est.clone(), se.clone(), u.clone(), Side::High);
        let (shown, lo, hi) = match p {
            // A count: whole numbers, and production has at least the rows the
            // sample saw (a floor only where there is an interval). The bounds are
            // widened to whole numbers, but not past one a rounding error misses by a
            // hair (an exact 333 computed as 333.00000000001 is 333, not 334).
            AggPlan::Scaled { integer: true, .. } => (
                interval::step(Step::Nearest, est.clone()),
                interval::step(
                    Step::Down,
                    interval::low_at_least(est, se, u, c3(format!("{HIDDEN}R{j}"))),
                ),
                interval::step(Step::Up, hi),
            ),
            // A share of the rows: Wilson's score interval.
            AggPlan::Ratio { share: true, .. } => {
                let rows = c3(format!("{HIDDEN}Dr{j}"));
                (
                    est.clone(),
                    interval::share_interval(
                        est.clone(),
                        se.clone(),
                        u.clone(),
                        rows.clone(),
                        Side::Low,
                    ),
                    interval::share_interval(est, se, u, rows, Side::High),
                )
            }
            // An average: its interval leans with the residuals' skewness.
            AggPlan::Ratio { .. } => {
                let mut args = vec![est.clone(), se, u, c3(format!("{HIDDEN}D{j}"))];
                args.extend(
                    RATIO_CUBES
                        .iter()
                        .map(|name| c3(format!("{HIDDEN}{name}{j}"))),
                );
                (
                    est,
                    interval::skewed_interval(args.clone(), Side::Low),
                    interval::skewed_interval(args, Side::High),
                )
            }
            _ => (est.clone(), interval::interval(est, se, u, Side::Low), hi),
        };
        exprs.push(shown.alias(name));
        hidden.push(c3(format!("{HIDDEN}est_{j}")));
        hidden.push(lo.alias(lo_name(j)));
        hidden.push(hi.alias(hi_name(j)));
        hidden.push(c3(se_name(j)));
        hidden.push(c3(units_name(j)));
        if let AggPlan::Scaled { .. } = p {
            hidden.push(c3(format!("{HIDDEN}R{j}")).alias(rows_name(j)));
        }
    }
    for (a, b) in &pairs {
        hidden.push(c3(cov_name(*a, *b)));
    }
    exprs.extend(hidden);
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(inner),
    )?))
}

/// The number of units an interval's t quantile counts: the units a group drew on, but
/// no more than they are worth. A variance summed over units, v = Σ v_u, is only as
/// steady as its parts are even: when one busy key (or one dense row group) carries most
/// of a group's variance, the spread of the other units says little of what a sample
/// that missed or drew it would show, and t must be that of a handful of units. The
/// count is Kish's effective number (Σ v_u)² / Σ v_u², v_u the unit's (1 − π)·Y_u² (of a
/// ratio, of its denominator's totals; of an estimate calibrated to the source's rows,
/// of its uncalibrated totals); `v` = Σ v_u, `k` = Σ v_u². Equal units count in full. (A
/// χ² approximation of the variance estimator under Poisson sampling of units gives
/// twice that many degrees of freedom; measured, it left `key` samples of skewed keys
/// further below 95%: BENCHMARKS.md, "Estimates".) A group with fewer than two units
/// keeps its count (no interval), and the effective count is at least two (t with one
/// degree of freedom at most).
fn effective_units(units: Expr, v: Expr, k: Expr) -> Expr {
    // One function call rather than the CASE it computes: a smaller plan to plan
    // (`interval::portable` writes the CASE for a cluster).
    interval::effective_units(units, v, k)
}

/// The final output: each visible column followed, where it has bounds, by
/// `<name>_low` and `<name>_high`; the rewrite's own columns dropped.
fn with_bounds(plan: LogicalPlan, status: &[Status]) -> DfResult<LogicalPlan> {
    let schema = plan.schema().clone();
    let mut exprs = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if f.name().starts_with(HIDDEN) || f.name() == UNIT_COLUMN {
            continue;
        }
        exprs.push(column_at(&schema, i));
        if let Some((lo, hi)) = status[i].bounds() {
            let lo_i = index_by_name(&schema, &lo)
                .ok_or_else(|| DataFusionError::Internal(format!("estimate bounds {lo} lost")))?;
            let hi_i = index_by_name(&schema, &hi)
                .ok_or_else(|| DataFusionError::Internal(format!("estimate bounds {hi} lost")))?;
            exprs.push(column_at(&schema, lo_i).alias(EstimateReport::low(f.name())));
            exprs.push(column_at(&schema, hi_i).alias(EstimateReport::high(f.name())));
        }
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

/// The plan with the columns no node above uses dropped and the projections that are
/// left merged (DataFusion's `OptimizeProjections`, once). The rewrite carries every
/// estimate's hidden columns up through each node; the optimizer would drop them in its
/// first pass and only then be able to merge the projections they kept apart, which
/// took it a third pass over the whole plan (`daily_outcomes`: 10.7 → 10.2 ms planned
/// and run). Dropping unused columns and merging projections changes no answer.
fn without_unused_columns(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    use datafusion::optimizer::OptimizerRule;
    use datafusion::optimizer::optimize_projections::OptimizeProjections;
    Ok(OptimizeProjections::new()
        .rewrite(plan, &datafusion::optimizer::OptimizerContext::new())?
        .data)
}

/// The plan's visible columns only (the rewrite's unit column dropped).
fn visible_only(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let schema = plan.schema().clone();
    let exprs: Vec<Expr> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with(HIDDEN) && f.name() != UNIT_COLUMN)
        .map(|(i, _)| column_at(&schema, i))
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_on_off_variable_is_off_when_empty_or_negative() {
        for off in ["", " ", "0", "false", "No", "OFF"] {
            assert!(!super::switched_on(off), "{off:?}");
        }
        for on in ["1", "true", "yes", "on"] {
            assert!(super::switched_on(on), "{on:?}");
        }
    }

    /// An average over rows as units of one weight: the three cube sums `rows_cube` takes
    /// from A, N and D equal the sums themselves, over values with NULLs (d = 0, n = 0).
    #[test]
    fn rows_cubes_follow_from_the_second_moments() {
        let values = [
            Some(3.0),
            None,
            Some(0.5),
            Some(40.0),
            None,
            Some(7.25),
            Some(0.0),
        ];
        for w in [1.0, 1.5, 10.0, 100.0] {
            let (q, q3) = (1.0 - 1.0 / w, (1.0 - 1.0 / w) * (1.0 - 2.0 / w));
            let rows: Vec<(f64, f64)> = values
                .iter()
                .map(|v| v.map_or((0.0, 0.0), |x| (x * w, w)))
                .collect();
            let total =
                |f: &dyn Fn(f64, f64) -> f64| -> f64 { rows.iter().map(|(n, d)| f(*n, *d)).sum() };
            let sums = [
                ("A", total(&|n, _| q * n * n)),
                ("N", total(&|n, _| n)),
                ("D", total(&|_, d| d)),
            ];
            let direct = [
                ("nnd", total(&|n, d| q3 * n * n * d)),
                ("ndd", total(&|n, d| q3 * n * d * d)),
                ("ddd", total(&|_, d| q3 * d * d * d)),
            ];
            for (name, want) in direct {
                let (factor, of) = super::rows_cube_factor(name, w);
                let got = factor * sums.iter().find(|(s, _)| *s == of).unwrap().1;
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "w {w}, {name}: {got} vs {want}"
                );
            }
        }
    }

    /// Which averages are shares: of a CASE whose results are 0, 1 or NULL, or of a
    /// boolean cast to a number; not of another CASE, a number, or a cast number.
    #[test]
    fn an_average_of_zeros_and_ones_is_a_share() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::common::DFSchema;
        use datafusion::logical_expr::{cast, col, lit, when};
        use std::sync::Arc;
        let schema = Arc::new(
            DFSchema::try_from(Schema::new(vec![
                Field::new("b", DataType::Boolean, true),
                Field::new("i", DataType::Int64, true),
            ]))
            .unwrap(),
        );
        let share = |e: datafusion::logical_expr::Expr| super::is_zero_or_one(&e, &schema);
        let case = |then: f64, otherwise: Option<f64>| {
            let mut w = when(col("i").gt(lit(3)), lit(then));
            match otherwise {
                Some(v) => w.otherwise(lit(v)).unwrap(),
                None => w.end().unwrap(),
            }
        };
        assert!(share(case(1.0, Some(0.0))));
        assert!(share(case(0.0, Some(1.0))));
        assert!(
            share(case(1.0, None)),
            "no ELSE: NULL, left out of the average"
        );
        assert!(share(cast(col("b"), DataType::Int32)));
        assert!(share(cast(col("b"), DataType::Float64).alias("x")));
        assert!(!share(case(2.0, Some(0.0))));
        assert!(!share(case(1.0, Some(0.5))));
        assert!(!share(col("i")));
        assert!(!share(cast(col("i"), DataType::Float64)));
        assert!(!share(
            when(col("b"), col("i")).otherwise(lit(0i64)).unwrap()
        ));
    }
}
