//! [`EarlyDynamicFilters`], a physical optimizer rule: a hash join's dynamic filter that
//! reaches its Parquet scan through an aggregate is also evaluated right above the scan,
//! so the aggregate only sees the rows the join can keep.
//!
//! Why: DataFusion pushes a join's dynamic filter (its build side's keys) down the probe
//! side into the scan, where it prunes row groups and pages only (row-level filtering
//! costs more than it saves there: `SelectiveRowFilters`). That is enough when the join
//! reads the scan directly: it drops the rows itself. But when an aggregate lies between
//! them, the aggregate groups every row first. TPC-H q20's correlated `sum(l_quantity)`
//! becomes an aggregate of 909,000 `lineitem` rows of one year into 543,000 groups
//! (160 ms of CPU at SF 1), joined to the 8,500 `partsupp` pairs of the selected parts:
//! 98% of the groups were computed to be thrown away.
//!
//! How: for each hash join, the dynamic filters it produces are followed down its probe
//! side; a scan reached through an `AggregateExec` (and that does not already filter
//! rows with the filter) gets the filter, its columns renamed to the scan's output, as
//! a last conjunct of the `FilterExec` above it (or above the repartition right above
//! it), or in a new one. The conjunct is
//! wrapped in [`RedundantFilter`]: the join applies the same condition anyway, so once
//! the filter has shown over enough rows that it keeps nearly all of them, it stops
//! being evaluated (true for every row). `FilterConjunction` evaluates it after the
//! cheap conditions, on the rows they keep.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::physical_plan::{FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

/// Rows a `RedundantFilter` evaluates before it may judge itself not worth it.
const JUDGE_AFTER_ROWS: u64 = 200_000;

/// The share of rows a `RedundantFilter` must keep, over its first rows, to stop.
const STOP_ABOVE: f64 = 0.9;

/// Evaluates the dynamic filters that reach a scan through an aggregate right above
/// the scan (see the module's documentation).
#[derive(Debug, Default)]
pub struct EarlyDynamicFilters;

impl PhysicalOptimizerRule for EarlyDynamicFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let ids = filters_behind_aggregates(&plan);
        if ids.is_empty() {
            return Ok(plan);
        }
        // The scans a filter reads: that filter gets the conjuncts; other scans get a new
        // filter from their parent.
        let mut filtered: HashSet<*const ()> = HashSet::new();
        plan.apply(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                filtered.insert(Arc::as_ptr(scan_under(filter.input())) as *const ());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let unfiltered =
            |p: &Arc<dyn ExecutionPlan>| !filtered.contains(&(Arc::as_ptr(p) as *const ()));
        // Bottom up, so a filter this rule puts in is never visited (and extended) again.
        plan.transform_up(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let Some(extra) = early_conjuncts(scan_under(filter.input()), &ids) else {
                    return Ok(Transformed::no(node));
                };
                let predicate = conjunction(
                    split_conjunction(filter.predicate())
                        .into_iter()
                        .cloned()
                        .chain(extra),
                );
                let rebuilt = FilterExecBuilder::from(filter)
                    .with_predicate(predicate)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
            }
            let children = node.children();
            let wrapped = |c: &Arc<dyn ExecutionPlan>| {
                unfiltered(c).then(|| early_conjuncts(c, &ids)).flatten()
            };
            if !children.iter().any(|c| wrapped(c).is_some()) {
                return Ok(Transformed::no(node));
            }
            let children = children
                .into_iter()
                .map(|child| match wrapped(child) {
                    Some(extra) => Ok(Arc::new(FilterExec::try_new(
                        conjunction(extra),
                        Arc::clone(child),
                    )?) as Arc<dyn ExecutionPlan>),
                    None => Ok(Arc::clone(child)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Transformed::yes(replace_children_if_necessary(
                node, children,
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_early_dynamic_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan`, or the scan a repartition of it reads (DataFusion puts a filter above the
/// repartition that spreads a one-file scan).
fn scan_under(plan: &Arc<dyn ExecutionPlan>) -> &Arc<dyn ExecutionPlan> {
    match plan.downcast_ref::<RepartitionExec>() {
        Some(r) if r.input().downcast_ref::<DataSourceExec>().is_some() => r.input(),
        _ => plan,
    }
}

/// The ids of the dynamic filters that some hash join produces and that reach a scan
/// down its probe side through an aggregate.
fn filters_behind_aggregates(plan: &Arc<dyn ExecutionPlan>) -> HashSet<u64> {
    fn down(plan: &Arc<dyn ExecutionPlan>, crossed: bool, ids: &[u64], out: &mut HashSet<u64>) {
        if let Some(ids_here) = crossed.then(|| scan_filter_ids(plan)).flatten() {
            out.extend(ids_here.into_iter().filter(|id| ids.contains(id)));
            return;
        }
        let crossed = crossed || plan.downcast_ref::<AggregateExec>().is_some();
        for child in plan.children() {
            down(child, crossed, ids, out);
        }
    }
    let mut out = HashSet::new();
    plan.apply(|node| {
        if let Some(join) = node.downcast_ref::<HashJoinExec>() {
            let ids: Vec<u64> = node
                .dynamic_expressions_produced()
                .iter()
                .filter_map(|f| f.expression_id())
                .collect();
            if !ids.is_empty() {
                down(join.right(), false, &ids, &mut out);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visit cannot fail");
    out
}

/// The ids of the dynamic filters in a Parquet scan's predicate, if `plan` is one.
fn scan_filter_ids(plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<u64>> {
    let scan = plan.downcast_ref::<DataSourceExec>()?;
    let (_, parquet) = scan.downcast_to_file_source::<ParquetSource>()?;
    let predicate = parquet.filter()?;
    Some(
        split_conjunction(&predicate)
            .into_iter()
            .filter_map(|c| c.expression_id())
            .collect(),
    )
}

/// For a Parquet scan that holds some of `ids` in its predicate and does not filter
/// rows: those filters over its output columns, each a [`RedundantFilter`].
fn early_conjuncts(
    plan: &Arc<dyn ExecutionPlan>,
    ids: &HashSet<u64>,
) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
    let scan = plan.downcast_ref::<DataSourceExec>()?;
    let (_, parquet) = scan.downcast_to_file_source::<ParquetSource>()?;
    if parquet.table_parquet_options().global.pushdown_filters {
        return None;
    }
    let predicate = parquet.filter()?;
    let output = scan.schema();
    let conjuncts: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(&predicate)
        .into_iter()
        .filter(|c| c.expression_id().is_some_and(|id| ids.contains(&id)))
        .filter_map(|c| over_columns_of(c, &output))
        .map(|c| Arc::new(RedundantFilter::new(c)) as Arc<dyn PhysicalExpr>)
        .collect();
    (!conjuncts.is_empty()).then_some(conjuncts)
}

/// `expr` (over a scan's table columns) over `schema`'s columns of the same names, or
/// `None` if it reads a column `schema` does not have.
fn over_columns_of(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    Arc::clone(expr)
        .transform_up(|e| match e.downcast_ref::<Column>() {
            Some(c) => match schema.index_of(c.name()) {
                Ok(i) => Ok(Transformed::yes(Arc::new(Column::new(c.name(), i)) as _)),
                Err(e) => Err(e.into()),
            },
            None => Ok(Transformed::no(e)),
        })
        .ok()
        .map(|t| t.data)
}

/// A condition that something above applies anyway (a join's dynamic filter under the
/// join): evaluated while it pays, and once it has kept more than `STOP_ABOVE` of its
/// first `JUDGE_AFTER_ROWS` rows, taken as true for every row.
#[derive(Debug)]
pub struct RedundantFilter {
    expr: Arc<dyn PhysicalExpr>,
    rows: AtomicU64,
    kept: AtomicU64,
    stopped: AtomicBool,
}

impl RedundantFilter {
    fn new(expr: Arc<dyn PhysicalExpr>) -> RedundantFilter {
        RedundantFilter {
            expr,
            rows: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }
}

impl PartialEq for RedundantFilter {
    fn eq(&self, other: &Self) -> bool {
        self.expr.eq(&other.expr)
    }
}

impl Eq for RedundantFilter {}

impl Hash for RedundantFilter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
    }
}

impl fmt::Display for RedundantFilter {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

impl PhysicalExpr for RedundantFilter {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.expr.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.expr.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.stopped.load(Ordering::Relaxed) {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))));
        }
        let value = self.expr.evaluate(batch)?;
        let kept = match &value {
            ColumnarValue::Array(a) => a.as_boolean_opt().map(|b| b.true_count() as u64),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => {
                Some(batch.num_rows() as u64)
            }
            ColumnarValue::Scalar(_) => Some(0),
        };
        if let Some(kept) = kept {
            let rows = self
                .rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed)
                + batch.num_rows() as u64;
            let all_kept = self.kept.fetch_add(kept, Ordering::Relaxed) + kept;
            if rows >= JUDGE_AFTER_ROWS && all_kept as f64 > STOP_ABOVE * rows as f64 {
                self.stopped.store(true, Ordering::Relaxed);
            }
        }
        Ok(value)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.expr]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(RedundantFilter::new(Arc::clone(&children[0]))))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, col, lit};
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    fn batch(values: impl Iterator<Item = i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    #[test]
    fn a_redundant_filter_stops_once_it_keeps_nearly_every_row() {
        let b = batch(0..10_000);
        let schema = b.schema();
        let keeps_all = RedundantFilter::new(
            binary(
                col("a", &schema).unwrap(),
                Operator::GtEq,
                lit(0i64),
                &schema,
            )
            .unwrap(),
        );
        let keeps_half = RedundantFilter::new(
            binary(
                col("a", &schema).unwrap(),
                Operator::Lt,
                lit(5_000i64),
                &schema,
            )
            .unwrap(),
        );
        for _ in 0..(JUDGE_AFTER_ROWS / 10_000) {
            assert!(matches!(
                keeps_all.evaluate(&b).unwrap(),
                ColumnarValue::Array(_)
            ));
            keeps_half.evaluate(&b).unwrap();
        }
        assert!(matches!(
            keeps_all.evaluate(&b).unwrap(),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
        ));
        let half = keeps_half
            .evaluate(&b)
            .unwrap()
            .into_array(b.num_rows())
            .unwrap();
        assert_eq!(half.as_boolean().true_count(), 5_000, "still evaluated");
    }

    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(EarlyDynamicFilters));
        }
        SessionContext::new_with_state(state.build())
    }

    /// q20's shape: a join of a few keys with an aggregate of a big table by key. With
    /// the rule the join's dynamic filter is evaluated above the big table's scan, so
    /// the aggregate sees only the joined keys' rows; the answers are the same.
    #[tokio::test]
    async fn a_join_above_an_aggregate_filters_the_aggregates_rows_early() {
        let dir = tempfile::tempdir().unwrap();
        let writer = context(false);
        for (name, sql) in [
            (
                "big",
                "SELECT value % 20000 AS k, value AS v FROM generate_series(1, 200000)",
            ),
            (
                "small",
                "SELECT value * 97 AS k FROM generate_series(1, 40)",
            ),
        ] {
            let path = dir.path().join(format!("{name}.parquet"));
            writer
                .sql(&format!(
                    "COPY ({sql}) TO '{}' STORED AS PARQUET",
                    path.display()
                ))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
        }
        let sql = "SELECT count(*) AS n, sum(a.s) AS s FROM small JOIN \
                   (SELECT k, sum(v) AS s FROM big WHERE v > 10 GROUP BY k) a ON small.k = a.k";
        let mut answers = Vec::new();
        for rule in [false, true] {
            let ctx = context(rule);
            for name in ["big", "small"] {
                let path = dir.path().join(format!("{name}.parquet"));
                ctx.register_parquet(name, path.to_str().unwrap(), ParquetReadOptions::default())
                    .await
                    .unwrap();
            }
            let plan = ctx
                .sql(sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let text = displayable(plan.as_ref()).indent(true).to_string();
            let early = text
                .lines()
                .any(|l| l.contains("FilterExec: v@1 > 10 AND DynamicFilter"));
            assert_eq!(early, rule, "{text}");
            let batches = collect(plan, ctx.task_ctx()).await.unwrap();
            answers.push(
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(answers[0], answers[1]);
        assert!(answers[0].contains("| 40 "), "{}", answers[0]);
    }
}
