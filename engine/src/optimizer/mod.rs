//! Sluice's own optimizer rules.
//!
//! [`outer_joins::PaddedRowsFiltered`], a logical rule right after DataFusion's
//! `eliminate_outer_join`: an outer join whose padded rows a filter above always drops
//! (`coalesce(b.x, 0) > 0`, folded on a NULL row), or an inner join above on a padded
//! column, is an inner join (q78, q93).
//!
//! [`semi_joins::SemiJoinPushdown`], a logical rule right after DataFusion's filter
//! pushdown: a semi or anti join whose keys are of one relation of an inner-join tree
//! below it is moved onto that relation (q58's `d_date IN (…)` onto `date_dim`).
//!
//! [`outer_joins::OuterJoinsLast`], a logical rule right after it: an outer join that is
//! a relation of an inner-join tree, whose padded side no other condition reads, joins
//! after the tree's inner joins when they keep fewer rows (q80's returns joined after
//! the month of `date_dim` that keeps 1% of `store_sales`).
//!
//! [`join_order::JoinOrder`], a logical rule right after it: the
//! order of a query's inner joins, by estimated rows (from `statistics`).
//!
//! [`aggregate_keys::AggregateKeys`], a logical rule right after it: an aggregate joined
//! on its group key to a few of the key's values computes only those groups (q02).
//!
//! [`constant_keys::ConstantGroupKeys`], a logical rule right after it: a group key a
//! filter below fixes to one value (`d_year = 2000`) is not grouped by, and is given
//! back as that value above the aggregate (q78).
//!
//! [`mixed_distinct::MixedDistinct`], a logical rule right before DataFusion's
//! `single_distinct_aggregation_to_group_by`: `count(*)` beside `count(DISTINCT x)`
//! groups by the keys and `x`, then by the keys, instead of a set of `x` per group (w10).
//!
//! [`grouping_sets::PreAggregateGroupingSets`], a logical rule right after it: `ROLLUP`,
//! `CUBE` and `GROUPING SETS` aggregate by all their columns first, then compute the
//! sets from those groups, instead of repeating every input row once per set (q22).
//!
//! Both split an aggregate into an inner and an outer one with the pieces of
//! `two_phase`.
//!
//! [`keys_below_joins::KeysBelowJoins`], a logical rule after all of DataFusion's: a
//! group key computed from one joined relation's columns (`substr(w_warehouse_name, 1,
//! 20)`) is computed on that relation's rows, below the joins, when they are far fewer
//! than the rows the joins give (q99: five warehouses, not 287,000 sales).
//!
//! [`any_value::AnyValue`], not a rule: DataFusion's `any_value` with a groups
//! accumulator, registered over DataFusion's (`settings::with_sluice_functions`), so a
//! sessionization's `GROUP BY session_id` does not box a value per group (w02, w08).
//!
//! [`filter_order::FilterOrder`], after all of DataFusion's physical rules: a filter's
//! conditions cheapest and most selective first.
//!
//! [`early_dynamic_filters::EarlyDynamicFilters`], after it: a join's dynamic filter that
//! reaches its scan through an aggregate is evaluated right above the scan too (q20).
//!
//! [`decimal_arithmetic::DecimalArithmetic`], after it: decimal `+`, `-` and `*` without a
//! check per value when a batch's values cannot overflow.
//!
//! [`like_segments::LikeSegments`], after it: a `LIKE` of literal pieces between `%`s
//! (`'%special%requests%'`) matched by substring searches instead of a regex (q13).
//!
//! [`clustered_aggregate::ClusteredAggregate`], after it: a partial aggregate whose group
//! key the files keep together emits each batch's groups at once (q18's `GROUP BY
//! l_orderkey`), its hash table the size of a batch.
//!
//! [`view_equality::ViewEquality`], after it: a string-view column `=`, `<>`, `IN` string
//! literals compared on the 16-byte views, without a branch per row (q19, q10).
//!
//! [`conjunction::FilterConjunction`], last: a filter's `AND` with cheap comparisons over
//! whole batches and the costly conditions on the rows still kept (q06, q12, q19).
//!
//! [`key_join_rows::KeyJoinRows`], not a rule: the physical planner's row estimates
//! (DataFusion's statistics registry, which its join selection and `BuildOnFewerRows`
//! consult), with a join on several keys estimated by each side's combined keys
//! (q64's `store_sales ⋈ store_returns` on item and ticket: 0.29 M rows, not 3.45 M).
//!
//! [`BuildOnFewerRows`], right after DataFusion's join selection: a hash join whose build
//! side is estimated at many times the rows of its probe side is turned around. DataFusion
//! picks the build side by estimated bytes first, and after a join or a semi join those
//! estimates can be far off (it carried a whole scan's bytes to q21's semi join, 60,000
//! rows), so q21 built its anti join's hash table on 38 M `lineitem` rows at SF 10
//! (2.3 s, 1.2 GB) to probe it with 0.7 M.
//!
//! [`SelectiveRowFilters`]: Parquet row-level filtering ("pushdown_filters") only on
//! the scans whose predicate is selective by construction: the `key` sample's filter,
//! which keeps the sampled fraction of the keys, or a dynamic filter that a hash join
//! builds from an aggregate's groups and carries through another join to its scan
//! (q18's `IN (… HAVING …)`: 57 orders of 1.5 M cut `orders` before two joins). Every
//! other dynamic filter (a hash join's build side pushed into its probe-side scan) only
//! prunes row groups and pages: filtering rows with it cost more than decoding them
//! (the SF 10 suite took 15% less without, BENCHMARKS.md, eighth pass), as static range
//! filters did (q06 −45% at SF 1, third pass). DataFusion's switch is all or nothing, so
//! Sluice leaves it off and turns it on scan by scan here. It also orders the row
//! filter's conjuncts: a `key` sample first, a dynamic filter estimated to keep 5% of
//! the rows or fewer ahead of column-to-column comparisons, other dynamic filters last.

pub mod aggregate_keys;
pub mod any_value;
pub mod clustered_aggregate;
pub mod conjunction;
pub mod constant_keys;
pub mod decimal_arithmetic;
pub mod early_dynamic_filters;
pub mod filter_order;
pub mod grouping_sets;
pub mod join_order;
pub mod key_join_rows;
pub mod keys_below_joins;
pub mod like_segments;
pub mod mixed_distinct;
pub mod outer_joins;
pub mod semi_joins;
pub mod settings;
pub(crate) mod two_phase;
pub mod view_equality;

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Expr, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, Column, DynamicFilterPhysicalExpr};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
    SymmetricHashJoinExec,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

/// The share of rows a filter keeps where nothing estimates it (a `LIKE`, a comparison
/// of two columns, a function): the session's `default_filter_selectivity`, the one
/// value DataFusion's `FilterExec` statistics (and so its join selection) assume too,
/// 5% in Sluice's sessions (`settings::SLUICE_DEFAULTS`). `JoinOrder` and
/// `AggregateKeys` estimate with it; `FilterOrder` ranks conditions it knows nothing of
/// at an even chance instead (`filter_order::UNKNOWN_SELECTIVITY`, which says why).
pub(crate) fn unknown_selectivity(options: &ConfigOptions) -> f64 {
    f64::from(options.optimizer.default_filter_selectivity) / 100.0
}

/// How many times the rows of its probe side a hash join's build side must be estimated
/// at before `BuildOnFewerRows` turns the join around: only an estimate that is off by
/// an order of magnitude is overruled, never a close call.
const BUILD_SIDE_RATIO: usize = 10;

/// Turns a hash join around (keeping its mode: partitioned, or the build side collected
/// once) when its build (left) side is estimated at
/// `BUILD_SIDE_RATIO` times the rows of its probe side or more. Runs right after
/// DataFusion's `JoinSelection`, before distribution and dynamic filters are planned, so
/// they follow the new sides. Joins with a row estimate missing on either side are left
/// as DataFusion chose.
#[derive(Debug, Default)]
pub struct BuildOnFewerRows;

impl PhysicalOptimizerRule for BuildOnFewerRows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let mode = *join.partition_mode();
            if !matches!(
                mode,
                PartitionMode::Partitioned | PartitionMode::CollectLeft
            ) || !join.dynamic_expressions_produced().is_empty()
                // A `NOT IN`'s null-aware anti join has one side only (DataFusion's
                // `JoinSelection` does not turn it around either).
                || join.null_aware
            {
                return Ok(Transformed::no(node));
            }
            let rows = |p: &Arc<dyn ExecutionPlan>| {
                key_join_rows::estimated_rows(p.as_ref(), config.optimizer.use_statistics_registry)
            };
            match (rows(join.left()), rows(join.right())) {
                (Some(build), Some(probe))
                    if build >= probe.max(1).saturating_mul(BUILD_SIDE_RATIO) =>
                {
                    tracing::debug!(
                        join_type = %join.join_type(),
                        build,
                        probe,
                        "hash join turned around: the build side had the most rows"
                    );
                    Ok(Transformed::yes(join.swap_inputs(mode)?))
                }
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_build_on_fewer_rows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Turns on row-level filtering for each Parquet scan whose predicate holds a `key`
/// sample or a dynamic filter worth it (`dynamic_filters_worth_row_filtering`: an
/// aggregate's few groups, carried through another join). DataFusion, with row-level
/// pushdown off, keeps the static filters in a `FilterExec` above the scan (and gives
/// the scan a copy for pruning only); that filter stays whole. The scan's row filter is
/// not a promise to apply every conjunct of its predicate: DataFusion's
/// `build_row_filter` leaves out, file by file and silently, a conjunct it cannot
/// evaluate row by row (a whole struct column, a column the file lacks), and drops the
/// whole row filter of a file on an error. The filter above then evaluates its
/// conjuncts again on the rows the scan kept, which this rule only lets happen where
/// the scan keeps few. With `datafusion.execution.parquet.pushdown_filters` on, every
/// scan filters rows already and the rule changes nothing.
#[derive(Debug, Default)]
pub struct SelectiveRowFilters;

impl PhysicalOptimizerRule for SelectiveRowFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            return Ok(plan);
        }
        // The estimates only order the conjuncts of a scan that filters rows, which most
        // plans have none of: derived once, on the first such scan.
        let whole = Arc::clone(&plan);
        let estimates = OnceCell::new();
        let dynamic_selectivity = || estimates.get_or_init(|| dynamic_filter_selectivity(&whole));
        let row_filtering = dynamic_filters_worth_row_filtering(&plan);
        // Only scans are replaced: the join that owns a dynamic filter keeps it
        // (`with_new_children` keeps it; the scan's predicate shares its state).
        plan.transform_up(|node| {
            let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            match with_row_filter(scan, &dynamic_selectivity, &row_filtering) {
                Some(scan) => Ok(Transformed::yes(scan)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_selective_row_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The share of its probe side's rows a dynamic filter must be estimated to keep at most
/// to go ahead of a scan's column-to-column comparisons.
const SELECTIVE_DYNAMIC_FILTER: f64 = 0.05;

/// The scan, filtering rows, if it is a Parquet scan with a selective filter that does
/// not filter rows yet. `dynamic_selectivity`: the estimated share of rows each dynamic
/// filter keeps, by expression id (`dynamic_filter_selectivity`), asked for only when
/// the scan is rewritten.
fn with_row_filter<'a>(
    scan: &DataSourceExec,
    dynamic_selectivity: &dyn Fn() -> &'a HashMap<u64, f64>,
    row_filtering: &HashSet<u64>,
) -> Option<Arc<dyn ExecutionPlan>> {
    let (config, parquet) = scan.downcast_to_file_source::<ParquetSource>()?;
    let predicate = parquet.filter()?;
    if !holds_selective_filter(&predicate, row_filtering)
        || parquet.table_parquet_options().global.pushdown_filters
    {
        return None;
    }
    tracing::debug!(scan = %scan_name(config), "a Parquet scan filters rows");
    let source = parquet
        .with_predicate(row_filter_order(&predicate, dynamic_selectivity()))
        .with_pushdown_filters(true);
    let config: FileScanConfig = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .build();
    Some(DataSourceExec::from_data_source(config))
}

/// The scan's conjuncts in the order its row filter applies them, each decoding its
/// columns for the rows the ones before kept:
/// - a `key` sample first: it keeps 1% of the rows and costs a hash;
/// - then the others as written, which leaves the dynamic filters last, where
///   DataFusion put them: put first, their per-row partition and set lookups ran on
///   every row and the SF 10 suite took 9% longer (BENCHMARKS.md, third pass);
/// - except that a dynamic filter estimated to keep at most `SELECTIVE_DYNAMIC_FILTER`
///   of the rows goes ahead of the column-to-column comparisons (which then go after
///   the other static conjuncts), whose selectivity nothing estimates and which decode
///   two columns for every row they see (q04's `l_receiptdate > l_commitdate` keeps 63%
///   of `lineitem`, its dynamic filter 3.9%, when q04's scan filtered rows: it no
///   longer does).
fn row_filter_order(
    predicate: &Arc<dyn PhysicalExpr>,
    dynamic_selectivity: &HashMap<u64, f64>,
) -> Arc<dyn PhysicalExpr> {
    let conjuncts: Vec<Arc<dyn PhysicalExpr>> =
        split_conjunction(predicate).into_iter().cloned().collect();
    let selective = |c: &Arc<dyn PhysicalExpr>| {
        c.expression_id()
            .and_then(|id| dynamic_selectivity.get(&id))
            .is_some_and(|s| *s <= SELECTIVE_DYNAMIC_FILTER)
    };
    let is_dynamic =
        |c: &Arc<dyn PhysicalExpr>| c.downcast_ref::<DynamicFilterPhysicalExpr>().is_some();
    let reorder = conjuncts.iter().any(selective) && conjuncts.iter().any(compares_columns);
    let rank = |c: &Arc<dyn PhysicalExpr>| match () {
        _ if is_key_sample(c) => 0,
        _ if reorder && selective(c) => 2,
        _ if reorder && compares_columns(c) => 3,
        _ if reorder && is_dynamic(c) => 4,
        _ => 1,
    };
    let mut ranked: Vec<(usize, Arc<dyn PhysicalExpr>)> =
        conjuncts.into_iter().map(|c| (rank(&c), c)).collect();
    // Stable: the written order within each rank.
    ranked.sort_by_key(|(r, _)| *r);
    conjunction(ranked.into_iter().map(|(_, c)| c))
}

/// Whether `expr` compares two columns (`a < b`).
fn compares_columns(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<BinaryExpr>().is_some_and(|b| {
        matches!(
            b.op(),
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
        ) && b.left().downcast_ref::<Column>().is_some()
            && b.right().downcast_ref::<Column>().is_some()
    })
}

/// The estimated share of its probe side's rows each hash join's dynamic filter keeps,
/// by the filter's expression id: the build side's estimated rows over the rows of the
/// one source it reads (seen through filters, projections, repartitions and coalesces).
/// A join on a key keeps the probe rows whose key the build side kept: q04's
/// `lineitem` rows of one quarter's orders, 579,801 of 15 M orders estimated (3.9%) at
/// SF 10. A build side over a join, an aggregate or a source without a row count gets
/// no estimate.
fn dynamic_filter_selectivity(plan: &Arc<dyn ExecutionPlan>) -> HashMap<u64, f64> {
    let mut out = HashMap::new();
    // DataFusion's own estimates, as before the statistics registry.
    let rows = |plan: &Arc<dyn ExecutionPlan>| {
        key_join_rows::estimated_rows(plan.as_ref(), false).map(|n| n as f64)
    };
    plan.apply(|node| {
        let Some(join) = node.downcast_ref::<HashJoinExec>() else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let build = join.left();
        let selectivity = source_under(build)
            .and_then(|source| Some((rows(build)?, rows(&source)?)))
            .filter(|(_, total)| *total > 0.0)
            .map(|(kept, total)| (kept / total).min(1.0));
        if let Some(selectivity) = selectivity {
            for filter in node.dynamic_expressions_produced() {
                if let Some(id) = filter.expression_id() {
                    out.insert(id, selectivity);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visit cannot fail");
    out
}

/// The ids of the dynamic filters worth filtering rows with inside their scan: those a
/// hash join builds from an aggregate's groups (seen through filters, projections,
/// repartitions and coalesces) and that reach their scan through another join. Such a
/// build side is usually a few groups a `HAVING` kept (q18's `o_orderkey IN (SELECT
/// l_orderkey … GROUP BY l_orderkey HAVING sum(l_quantity) > 300)`: 57 orders of 1.5 M at
/// SF 1), and every row the filter drops is also spared the joins between its scan and
/// the join that built it (q18's semi join sits above `customer ⋈ orders ⋈ lineitem`).
/// Any other dynamic filter only prunes row groups and pages: decoding its key for every
/// row, then the other columns through the row selection it makes, cost more than
/// decoding all of them and letting its join drop the rows (BENCHMARKS.md, eighth pass:
/// the SF 10 suite −15%, q21 −41%, q04 −47%).
fn dynamic_filters_worth_row_filtering(plan: &Arc<dyn ExecutionPlan>) -> HashSet<u64> {
    let builds_from_aggregate = |plan: &Arc<dyn ExecutionPlan>| {
        node_under(plan, &|p| p.downcast_ref::<AggregateExec>().is_some()).is_some()
    };
    /// Adds to `out` the `ids` found in the predicates of the scans under `plan` that
    /// are reached through a join (`crossed`: one was passed on the way down).
    fn reached_through_a_join(
        plan: &Arc<dyn ExecutionPlan>,
        crossed: bool,
        ids: &[u64],
        out: &mut HashSet<u64>,
    ) {
        if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
            if crossed
                && let Some((_, parquet)) = scan.downcast_to_file_source::<ParquetSource>()
                && let Some(predicate) = parquet.filter()
            {
                out.extend(
                    split_conjunction(&predicate)
                        .into_iter()
                        .filter_map(|c| c.expression_id())
                        .filter(|id| ids.contains(id)),
                );
            }
            return;
        }
        let crossed = crossed || is_join(plan);
        for child in plan.children() {
            reached_through_a_join(child, crossed, ids, out);
        }
    }
    let mut out = HashSet::new();
    plan.apply(|node| {
        if let Some(join) = node.downcast_ref::<HashJoinExec>()
            && builds_from_aggregate(join.left())
        {
            let ids: Vec<u64> = node
                .dynamic_expressions_produced()
                .iter()
                .filter_map(|f| f.expression_id())
                .collect();
            reached_through_a_join(join.right(), false, &ids, &mut out);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visit cannot fail");
    out
}

/// Whether `plan` combines two inputs by a join condition.
fn is_join(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<HashJoinExec>().is_some()
        || plan.downcast_ref::<SortMergeJoinExec>().is_some()
        || plan.downcast_ref::<NestedLoopJoinExec>().is_some()
        || plan.downcast_ref::<CrossJoinExec>().is_some()
        || plan.downcast_ref::<SymmetricHashJoinExec>().is_some()
}

/// The one scan `plan` reads, through nodes that keep or drop rows but do not combine
/// inputs.
fn source_under(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    node_under(plan, &|p| p.downcast_ref::<DataSourceExec>().is_some())
}

/// `plan`, or the first node under it, that `wanted` accepts, through filters,
/// projections, repartitions and coalesces (nodes that keep or drop rows but do not
/// combine inputs).
fn node_under(
    plan: &Arc<dyn ExecutionPlan>,
    wanted: &dyn Fn(&Arc<dyn ExecutionPlan>) -> bool,
) -> Option<Arc<dyn ExecutionPlan>> {
    if wanted(plan) {
        return Some(Arc::clone(plan));
    }
    let passes_through = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some();
    match plan.children().as_slice() {
        [child] if passes_through => node_under(child, wanted),
        _ => None,
    }
}

/// Whether `expr` is the `key` sample's filter.
fn is_key_sample(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<ScalarFunctionExpr>()
        .is_some_and(|f| f.name() == crate::scan::key::FUNCTION_NAME)
}

/// The first file a scan reads, to name it in logs.
fn scan_name(config: &FileScanConfig) -> String {
    config
        .file_groups
        .iter()
        .flat_map(|group| group.iter())
        .next()
        .map_or_else(String::new, |file| file.object_meta.location.to_string())
}

/// Whether `expr` holds the `key` sample's filter or one of the dynamic filters in
/// `row_filtering` (`dynamic_filters_worth_row_filtering`).
fn holds_selective_filter(expr: &Arc<dyn PhysicalExpr>, row_filtering: &HashSet<u64>) -> bool {
    expr.exists(|e| {
        let worth = e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some()
            && e.expression_id()
                .is_some_and(|id| row_filtering.contains(&id));
        Ok(is_key_sample(e) || worth)
    })
    .expect("the visit cannot fail")
}

/// Whether `expr` holds a subquery anywhere (`IN`, `EXISTS`, a scalar subquery, `op ANY`
/// or `ALL`); `true` where the walk cannot tell.
pub(crate) fn holds_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::SetComparison(_)
        ))
    })
    .unwrap_or(true)
}

/// How an expression rule rewrites one expression, given the schema it reads.
pub(crate) type ExpressionRewrite =
    dyn Fn(&Arc<dyn PhysicalExpr>, &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>>;

/// `plan` with the expressions evaluated row by row rewritten by `rewrite`: each
/// projection's expressions, each filter's predicate and each aggregate's arguments.
/// A node none of whose expressions changed is kept as it is.
pub(crate) fn rewrite_row_expressions(
    plan: Arc<dyn ExecutionPlan>,
    rewrite: &ExpressionRewrite,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
            let schema = projection.input().schema();
            let mut changed = false;
            let exprs = projection
                .expr()
                .iter()
                .map(|p| {
                    let expr = rewrite(&p.expr, &schema)?;
                    changed |= expr.transformed;
                    Ok(ProjectionExpr::new(expr.data, p.alias.clone()))
                })
                .collect::<Result<Vec<_>>>()?;
            if !changed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = ProjectionExec::try_new_with_schema_metadata(
                exprs,
                Arc::clone(projection.input()),
                &projection.schema(),
            )?;
            return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
        }
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            let predicate = rewrite(filter.predicate(), &filter.input().schema())?;
            if !predicate.transformed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(predicate.data)
                .build()?;
            return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
        }
        if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
            let schema = aggregate.input_schema();
            let mut changed = false;
            let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr().len());
            for function in aggregate.aggr_expr() {
                let expressions = function.all_expressions();
                let mut args = Vec::with_capacity(expressions.args.len());
                let mut any = false;
                for arg in &expressions.args {
                    let arg = rewrite(arg, &schema)?;
                    any |= arg.transformed;
                    args.push(arg.data);
                }
                let rewritten = any
                    .then(|| function.with_new_expressions(args, expressions.order_by_exprs))
                    .flatten();
                match rewritten {
                    Some(f) => {
                        changed = true;
                        aggr_expr.push(Arc::new(f));
                    }
                    None => aggr_expr.push(Arc::clone(function)),
                }
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = aggregate.with_new_aggr_exprs(aggr_expr);
            return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
        }
        Ok(Transformed::no(node))
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    /// The vendored `datafusion-expr-common` types arithmetic of two operands of one
    /// primitive numeric type without asking arrow's kernels (vendor/README.md): it must
    /// say what the kernels say, for every such type and operator, and mixed types and
    /// decimals still go to the kernels.
    #[test]
    fn same_type_arithmetic_keeps_its_type() {
        use datafusion::arrow::array::new_empty_array;
        use datafusion::arrow::compute::kernels::numeric::{
            add_wrapping, div, mul_wrapping, rem, sub_wrapping,
        };
        use datafusion::arrow::datatypes::DataType::{self, *};
        use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
        let types = [
            Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, Float16, Float32, Float64,
        ];
        let kernel = |op: Operator, l: &DataType, r: &DataType| -> DataType {
            let (l, r) = (new_empty_array(l), new_empty_array(r));
            let out = match op {
                Operator::Plus => add_wrapping(&l, &r),
                Operator::Minus => sub_wrapping(&l, &r),
                Operator::Multiply => mul_wrapping(&l, &r),
                Operator::Divide => div(&l, &r),
                Operator::Modulo => rem(&l, &r),
                _ => unreachable!(),
            };
            out.unwrap().data_type().clone()
        };
        let ops = [
            Operator::Plus,
            Operator::Minus,
            Operator::Multiply,
            Operator::Divide,
            Operator::Modulo,
        ];
        for t in &types {
            for op in ops {
                let typed = BinaryTypeCoercer::new(t, &op, t).get_result_type().unwrap();
                assert_eq!(typed, kernel(op, t, t), "{t} {op} {t}");
                assert_eq!(&typed, t, "{t} {op} {t}");
            }
        }
        let decimal = Decimal128(10, 2);
        for (l, r) in [(&Int32, &Int64), (&Float32, &Float64), (&decimal, &decimal)] {
            for op in ops {
                let typed = BinaryTypeCoercer::new(l, &op, r).get_result_type().unwrap();
                let (cl, cr) = BinaryTypeCoercer::new(l, &op, r).get_input_types().unwrap();
                assert_eq!(typed, kernel(op, &cl, &cr), "{l} {op} {r}");
            }
        }
        assert_eq!(
            BinaryTypeCoercer::new(&decimal, &Operator::Multiply, &decimal)
                .get_result_type()
                .unwrap(),
            Decimal128(21, 4)
        );
    }

    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(SelectiveRowFilters));
        }
        SessionContext::new_with_state(state.build())
    }

    /// A probe-side scan with two static filters it can apply and one it cannot
    /// (volatile), under two plans. Where the scan also gets a dynamic filter built from
    /// an aggregate's groups (an `IN (… GROUP BY … HAVING …)`) through another join, it
    /// filters rows, and the filter above stays whole (see
    /// `a_conjunct_the_row_filter_leaves_out_is_still_applied`). Under a plain join's
    /// dynamic filter, it does not filter rows. Both answers are the ones without the
    /// rule.
    #[tokio::test]
    async fn scans_filter_rows_for_an_aggregates_keys_through_a_join() {
        let dir = tempfile::tempdir().unwrap();
        let writer = context(false);
        for (name, sql) in [
            (
                "big",
                "SELECT value AS k, value % 100 AS v, concat('c', value) AS s FROM generate_series(1, 50000)",
            ),
            ("small", "SELECT value * 7 AS k FROM generate_series(1, 30)"),
            ("mid", "SELECT value AS v FROM generate_series(0, 99)"),
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
        let static_filters = "b.v > 5 AND b.s NOT LIKE '%9%' AND random() < 2.0";
        let through_a_join = format!(
            "SELECT count(*) AS n, sum(b.v) AS v FROM big b JOIN mid m ON b.v = m.v \
             WHERE b.k IN (SELECT k FROM small GROUP BY k HAVING count(*) > 0) AND {static_filters}"
        );
        let plain_join = format!(
            "SELECT count(*) AS n, sum(b.v) AS v FROM big b JOIN small s ON b.k = s.k \
             WHERE {static_filters}"
        );
        for (sql, filters_rows) in [(through_a_join, true), (plain_join, false)] {
            let mut answers = Vec::new();
            for rule in [false, true] {
                let ctx = context(rule);
                for name in ["big", "small", "mid"] {
                    let path = dir.path().join(format!("{name}.parquet"));
                    ctx.register_parquet(
                        name,
                        path.to_str().unwrap(),
                        ParquetReadOptions::default(),
                    )
                    .await
                    .unwrap();
                }
                let plan = ctx
                    .sql(&sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap();
                let text = displayable(plan.as_ref()).indent(true).to_string();
                let filters: Vec<&str> =
                    text.lines().filter(|l| l.contains("FilterExec")).collect();
                let row_filtering = scans(&plan).iter().filter(|s| scan_filters_rows(s)).count();
                if rule && filters_rows {
                    assert_eq!(row_filtering, 1, "{text}");
                } else {
                    assert_eq!(row_filtering, 0, "{text}");
                }
                for conjunct in ["NOT LIKE", "> 5", "random()"] {
                    assert!(filters.iter().any(|f| f.contains(conjunct)), "{text}");
                }
                let batches = collect(plan, ctx.task_ctx()).await.unwrap();
                answers.push(
                    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                        .unwrap()
                        .to_string(),
                );
            }
            assert_eq!(answers[0], answers[1], "{sql}");
            assert!(
                !answers[0].contains("| 0 "),
                "the join keeps rows: {}",
                answers[0]
            );
        }
    }

    /// A scan whose predicate holds a conjunct DataFusion's row filter cannot evaluate
    /// row by row (`st IS NOT NULL`, a whole struct column: `build_row_filter` leaves it
    /// out, silently) next to a `key` sample, which makes the rule turn row filtering
    /// on. The filter above the scan must still apply it: the rule once dropped from
    /// that filter every conjunct the scan's predicate held, and the rows with a null
    /// `st` came through.
    #[tokio::test]
    async fn a_conjunct_the_row_filter_leaves_out_is_still_applied() {
        use datafusion::common::DFSchema;
        use datafusion::prelude::col;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let writer = context(false);
        let sql = "SELECT value AS k, CASE WHEN value % 3 = 0 THEN NULL \
                   ELSE named_struct('a', value) END AS st FROM generate_series(1, 3000)";
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
        let query = "SELECT count(*) AS n FROM t WHERE st IS NOT NULL";
        let mut answers = Vec::new();
        for rule in [false, true] {
            let ctx = context(false);
            ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap();
            let plan = ctx
                .sql(query)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            // The scan's predicate as a table provider may hand it over: the query's
            // filter and a `key` sample keeping every key.
            let plan = plan
                .transform_up(|node| {
                    let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                        return Ok(Transformed::no(node));
                    };
                    let (config, parquet) =
                        scan.downcast_to_file_source::<ParquetSource>().unwrap();
                    let schema = config.file_schema().clone();
                    let df_schema = DFSchema::try_from(schema.as_ref().clone()).unwrap();
                    let counters = Arc::new(crate::scan::key::KeySampleCounters::default());
                    let sample = crate::scan::key::KeySample::predicate(
                        col("k"),
                        Vec::new(),
                        7,
                        1.0,
                        counters,
                        Default::default(),
                    );
                    let predicate = sample.and(col("st").is_not_null());
                    let predicate = ctx.create_physical_expr(predicate, &df_schema).unwrap();
                    let source = parquet.with_predicate(predicate);
                    let config = FileScanConfigBuilder::from(config.clone())
                        .with_source(Arc::new(source))
                        .build();
                    Ok(Transformed::yes(
                        DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
                    ))
                })
                .unwrap()
                .data;
            let plan = if rule {
                SelectiveRowFilters
                    .optimize(plan, ctx.state().config().options())
                    .unwrap()
            } else {
                plan
            };
            let text = displayable(plan.as_ref()).indent(true).to_string();
            assert_eq!(
                scans(&plan).iter().filter(|s| scan_filters_rows(s)).count(),
                usize::from(rule),
                "{text}"
            );
            let batches = collect(plan, ctx.task_ctx()).await.unwrap();
            answers.push(
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string(),
            );
        }
        assert!(answers[0].contains("| 2000 |"), "{}", answers[0]);
        assert_eq!(answers[1], answers[0]);
    }

    #[test]
    fn a_selective_dynamic_filter_goes_ahead_of_column_comparisons() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::physical_expr::expressions::{binary, col, lit};
        let schema = Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("committed", DataType::Int32, false),
            Field::new("received", DataType::Int32, false),
        ]);
        let c = |name: &str| col(name, &schema).unwrap();
        let late = binary(c("received"), Operator::Gt, c("committed"), &schema).unwrap();
        let range = binary(c("committed"), Operator::Lt, lit(100i32), &schema).unwrap();
        let dynamic: Arc<dyn PhysicalExpr> =
            Arc::new(DynamicFilterPhysicalExpr::new(vec![c("key")], lit(true)));
        let id = dynamic.expression_id().expect("a dynamic filter has an id");
        let predicate = conjunction([late, range, dynamic]);
        let order = |selectivity: f64| {
            let ordered = row_filter_order(&predicate, &HashMap::from([(id, selectivity)]));
            split_conjunction(&ordered)
                .iter()
                .map(|c| match c.downcast_ref::<DynamicFilterPhysicalExpr>() {
                    Some(_) => "dynamic".to_string(),
                    None => c.to_string(),
                })
                .collect::<Vec<_>>()
        };
        // 4% of the keys: ahead of the comparison of two columns, behind the range.
        assert_eq!(
            order(0.04),
            ["committed@1 < 100", "dynamic", "received@2 > committed@1"]
        );
        // 30%: last, where DataFusion put it; the static conjuncts as written.
        assert_eq!(
            order(0.3),
            ["received@2 > committed@1", "committed@1 < 100", "dynamic"]
        );
    }

    /// Whether a scan applies its predicate to rows.
    fn scan_filters_rows(scan: &DataSourceExec) -> bool {
        scan.downcast_to_file_source::<ParquetSource>()
            .is_some_and(|(_, p)| p.table_parquet_options().global.pushdown_filters)
    }

    fn scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<DataSourceExec> {
        let mut out = Vec::new();
        plan.apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
                out.push(scan.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        out
    }
}
