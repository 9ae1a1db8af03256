//! The physical planner's row estimates, with joins on several keys estimated by their
//! combined keys.
//!
//! DataFusion picks each hash join's build side and mode (`JoinSelection`) from row
//! estimates its operators derive from their inputs'. For a join on several keys it
//! divides the product of the inputs' rows by the largest count of distinct values of
//! any one key (Spark's conservative estimate), so `store_sales ⋈ store_returns ON
//! (item, ticket)` (2.88 M and 0.29 M rows) is estimated at 3.45 M rows, more than
//! either input, where each return meets one sale: 0.29 M. Each join above inherits
//! the excess; TPC-DS q64 built a hash table on all 1.92 M rows of
//! `customer_demographics` to probe it with 52,000.
//!
//! [`KeyJoinRows`] is a DataFusion [`StatisticsProvider`]: each operator's statistics
//! come from its inputs' (`statistics_from_inputs`, DataFusion's own formulas), and an
//! inner (or left, right) hash join on two keys or more is estimated at no more than
//! `left × right / max(ndv(left keys), ndv(right keys))`, where a side's keys have at
//! most as many distinct combinations as the side has rows, and at most the product of
//! each key's distinct values (its statistics' distinct count, else its min–max range,
//! else its rows: what DataFusion assumes of one key). With one key this is DataFusion's
//! estimate; with several it is at most DataFusion's (the combined count is at least
//! any one key's), and no lower than an estimate that takes the keys as independent,
//! as PostgreSQL and DuckDB do. An outer join keeps at least its preserved side's rows.
//!
//! Soundness: an estimate chooses a join's build side and whether its build side is
//! collected once; every choice gives the same rows. A wrong estimate costs time or
//! memory, as DataFusion's own can.
//!
//! `with_sluice_rules` registers it in the session (`datafusion.optimizer.use_statistics_registry`),
//! where DataFusion's `JoinSelection` consults it, as does `BuildOnFewerRows`;
//! `SLUICE_SKIP_RULES=sluice_key_join_rows` leaves DataFusion's estimates.

use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, JoinType, Result, Statistics};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::operator_statistics::{
    ExtendedStatistics, StatisticsProvider, StatisticsRegistry, StatisticsResult,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs, StatisticsContext};

/// The name `SLUICE_SKIP_RULES` takes to plan with DataFusion's own row estimates.
pub const SKIP_NAME: &str = "sluice_key_join_rows";

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct KeyJoinRows;

/// A registry of `KeyJoinRows` alone: it derives every operator's statistics.
pub fn registry() -> StatisticsRegistry {
    StatisticsRegistry::with_providers(vec![Arc::new(KeyJoinRows)])
}

/// The estimated rows of `plan`: `KeyJoinRows`' when the session consults its registry
/// (`use_statistics_registry`, which `with_sluice_rules` sets with it), else
/// DataFusion's.
pub fn estimated_rows(plan: &dyn ExecutionPlan, use_registry: bool) -> Option<usize> {
    let stats = if use_registry {
        registry().compute(plan).map(|s| Arc::clone(s.base_arc()))
    } else {
        StatisticsContext::new().compute(plan, &StatisticsArgs::new())
    };
    stats.ok().and_then(|s| s.num_rows.get_value().copied())
}

impl StatisticsProvider for KeyJoinRows {
    fn compute_statistics(
        &self,
        plan: &dyn ExecutionPlan,
        child_stats: &[ExtendedStatistics],
    ) -> Result<StatisticsResult> {
        let children = plan.children();
        let requests = plan.child_stats_requests(None);
        if requests.len() != children.len() || child_stats.len() != children.len() {
            return Ok(StatisticsResult::Delegate);
        }
        let inputs = children
            .iter()
            .zip(requests)
            .zip(child_stats)
            .map(|((child, request), computed)| match request {
                ChildStats::At(None) => Ok(Arc::clone(computed.base_arc())),
                // A partition's: DataFusion's, as it derives them.
                ChildStats::At(Some(p)) => StatisticsContext::new().compute(
                    child.as_ref(),
                    &StatisticsArgs::new().with_partition(Some(p)),
                ),
                ChildStats::Skip => Ok(Arc::new(Statistics::new_unknown(child.schema().as_ref()))),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut stats = plan.statistics_from_inputs(&inputs, &StatisticsArgs::new())?;
        if let Some(join) = plan.downcast_ref::<HashJoinExec>()
            && let [left, right] = inputs.as_slice()
            && let Some(rows) = key_join_rows(join, left, right)
            && stats.num_rows.get_value().is_some_and(|r| rows < *r)
        {
            stats = Arc::new(with_rows(&stats, rows));
        }
        Ok(StatisticsResult::Computed(ExtendedStatistics::new_arc(
            stats,
        )))
    }
}

/// The rows of `join` estimated by each side's combined keys (see the module's
/// documentation), for a join on two keys or more that keeps inner rows.
fn key_join_rows(join: &HashJoinExec, left: &Statistics, right: &Statistics) -> Option<usize> {
    let on = join.on();
    if on.len() < 2 {
        return None;
    }
    let left_rows = *left.num_rows.get_value()?;
    let right_rows = *right.num_rows.get_value()?;
    let at_least = match join.join_type() {
        JoinType::Inner => 0,
        JoinType::Left => left_rows,
        JoinType::Right => right_rows,
        _ => return None,
    };
    let left_keys = combined_distinct(on.iter().map(|(l, _)| l), left, left_rows);
    let right_keys = combined_distinct(on.iter().map(|(_, r)| r), right, right_rows);
    let divisor = left_keys.max(right_keys).max(1.0);
    let rows = (left_rows as f64) * (right_rows as f64) / divisor;
    Some((rows.round() as usize).max(at_least))
}

/// How many distinct combinations `keys` can take on a side of `rows` rows: at most its
/// rows, and at most the product of each key's distinct values.
fn combined_distinct<'a>(
    keys: impl Iterator<Item = &'a Arc<dyn PhysicalExpr>>,
    side: &Statistics,
    rows: usize,
) -> f64 {
    let rows = rows as f64;
    let product = keys
        .map(|key| {
            key.downcast_ref::<Column>()
                .and_then(|c| side.column_statistics.get(c.index()))
                .and_then(|column| distinct_values(column, rows))
                .unwrap_or(rows)
        })
        .fold(1.0, |product, distinct| product * distinct.max(1.0));
    product.min(rows)
}

/// A column's distinct values: its statistics' count, else the size of its min–max
/// range (integer and temporal columns only: a float's or a decimal's range says
/// nothing of how many values it holds), at most its rows that are not NULL.
fn distinct_values(column: &ColumnStatistics, rows: f64) -> Option<f64> {
    let nulls = column.null_count.get_value().copied().unwrap_or(0) as f64;
    let non_null = (rows - nulls).max(0.0);
    let distinct = match column.distinct_count.get_value() {
        Some(count) => *count as f64,
        None => {
            let (min, max) = (column.min_value.get_value()?, column.max_value.get_value()?);
            let range = Interval::try_new(min.clone(), max.clone()).ok()?;
            if !range.data_type().is_integer() && !range.data_type().is_temporal() {
                return None;
            }
            range.cardinality()? as f64
        }
    };
    Some(distinct.min(non_null))
}

/// `stats` with `rows` rows (inexact) and its bytes scaled with them.
fn with_rows(stats: &Statistics, rows: usize) -> Statistics {
    let mut stats = stats.clone();
    if let (Some(&before), Some(&bytes)) = (
        stats.num_rows.get_value(),
        stats.total_byte_size.get_value(),
    ) && before > 0
    {
        stats.total_byte_size =
            Precision::Inexact((bytes as f64 * rows as f64 / before as f64).round() as usize);
    }
    stats.num_rows = Precision::Inexact(rows);
    stats
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::joins::PartitionMode;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A session with Sluice's rules and estimates, and one with DataFusion's estimates,
    /// over Parquet tables (whose footers give min–max statistics):
    /// - `f`, 20,000 sales: 20 items, tickets 1–1,000, each (item, ticket) once, `dk` a
    ///   key of `d`, `x` NULL on a tenth of the rows;
    /// - `r`, 2,000 returns of sales of `f` (items 1–20, tickets 1–1,000);
    /// - `d`, 30,000 rows keyed by `d_sk`;
    /// - `e`, empty.
    async fn sessions(dir: &std::path::Path) -> (SessionContext, SessionContext) {
        let build =
            |without| crate::optimizer::settings::rules_session(SessionConfig::new(), without);
        let (with, without) = (build(None), build(Some(SKIP_NAME)));
        let tables = [
            (
                "f",
                "SELECT v % 20 + 1 AS item, v / 20 + 1 AS ticket, (v * 7) % 30000 + 1 AS dk, \
                 CASE WHEN v % 10 = 0 THEN NULL ELSE v END AS x \
                 FROM generate_series(0, 19999) AS s(v)",
            ),
            (
                "r",
                "SELECT (v * 10 - 3) % 20 + 1 AS item, (v * 10 - 3) / 20 + 1 AS ticket \
                 FROM generate_series(1, 2000) AS s(v)",
            ),
            (
                "d",
                "SELECT v AS d_sk, v % 7 AS payload FROM generate_series(1, 30000) AS s(v)",
            ),
            (
                "e",
                "SELECT v AS item, v AS ticket FROM generate_series(1, 10) AS s(v) WHERE v > 10",
            ),
        ];
        for (name, select) in tables {
            let path = dir.join(format!("{name}.parquet"));
            let path = path.display();
            with.sql(&format!("COPY ({select}) TO '{path}' STORED AS PARQUET"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            for ctx in [&with, &without] {
                ctx.sql(&format!(
                    "CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{path}'"
                ))
                .await
                .unwrap();
            }
        }
        (with, without)
    }

    /// The hash joins of `sql`'s physical plan in `ctx`, top down.
    async fn hash_joins(ctx: &SessionContext, sql: &str) -> Vec<Arc<dyn ExecutionPlan>> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut joins = Vec::new();
        plan.apply(|p| {
            if p.downcast_ref::<HashJoinExec>().is_some() {
                joins.push(Arc::clone(p));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        joins
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn a_join_on_two_keys_is_estimated_by_both() {
        let dir = tempfile::tempdir().unwrap();
        let (with, without) = sessions(dir.path()).await;
        let rows = |join: &Arc<dyn ExecutionPlan>, registry| {
            estimated_rows(join.as_ref(), registry).unwrap()
        };
        // Inner, on item and ticket: DataFusion divides by the tickets' range (1,000),
        // 20,000 × 2,000 / 1,000; each side's combined keys are its rows here, so
        // 20,000 × 2,000 / 20,000.
        let sql = "SELECT f.x FROM f JOIN r ON f.item = r.item AND f.ticket = r.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(joins.len(), 1);
        assert_eq!(rows(&joins[0], false), 40_000);
        assert_eq!(rows(&joins[0], true), 2_000);
        assert_eq!(
            answer(&with, &format!("SELECT count(*) FROM ({sql})")).await,
            answer(&without, &format!("SELECT count(*) FROM ({sql})")).await
        );
        // One key: DataFusion's estimate.
        let sql = "SELECT f.x FROM f JOIN r ON f.ticket = r.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(rows(&joins[0], true), rows(&joins[0], false));
        // A left join keeps at least its preserved side's rows.
        let sql =
            "SELECT r.item, f.x FROM r LEFT JOIN f ON f.item = r.item AND f.ticket = r.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(rows(&joins[0], true), 2_000);
        let sql =
            "SELECT f.x, r.item FROM f LEFT JOIN r ON f.item = r.item AND f.ticket = r.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(rows(&joins[0], true), 20_000);
        // An empty side: no rows either way.
        let sql = "SELECT f.x FROM f JOIN e ON f.item = e.item AND f.ticket = e.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(rows(&joins[0], true), 0);
        // Keys that are not columns (a key of unknown distinct values counts as the
        // side's rows): 20,000 × 2,000 / max(20,000, 2,000).
        let sql = "SELECT f.x FROM f JOIN r ON f.item + 0 = r.item + 0 AND f.ticket = r.ticket";
        let joins = hash_joins(&with, sql).await;
        assert_eq!(rows(&joins[0], true), 2_000);
    }

    #[tokio::test]
    async fn the_join_above_builds_on_the_side_the_keys_make_small() {
        let dir = tempfile::tempdir().unwrap();
        let (with, without) = sessions(dir.path()).await;
        // `f ⋈ r` keeps 2,000 rows; DataFusion estimated 40,000, more than `d`'s 30,000,
        // and built the hash table on `d`.
        let sql = "SELECT d.payload, count(*), sum(f.x) FROM f JOIN r ON f.item = r.item \
                   AND f.ticket = r.ticket JOIN d ON f.dk = d.d_sk GROUP BY d.payload \
                   ORDER BY d.payload";
        let builds_on_d = |joins: &[Arc<dyn ExecutionPlan>]| {
            let join = joins
                .iter()
                .filter_map(|j| j.downcast_ref::<HashJoinExec>())
                .find(|j| j.on().len() == 1)
                .expect("the join with d");
            let left = join.left().schema();
            (left.field_with_name("d_sk").is_ok(), *join.partition_mode())
        };
        let (on_d, mode) = builds_on_d(&hash_joins(&with, sql).await);
        assert!(!on_d, "with the estimates, the join with d builds on f ⋈ r");
        assert_eq!(mode, PartitionMode::CollectLeft);
        let (on_d, _) = builds_on_d(&hash_joins(&without, sql).await);
        assert!(on_d, "DataFusion's estimates build on d");
        assert_eq!(answer(&with, sql).await, answer(&without, sql).await);
    }
}
