//! [`AggregateKeys`], a logical optimizer rule: an aggregate joined on its group key to a
//! few of that key's values computes only the groups the join can keep.
//!
//! Why: TPC-H q02's subquery, decorrelated, is `min(ps_supplycost)` grouped by
//! `ps_partkey` over every European supplier's parts (117,000 groups at SF 1), and only
//! then joined to the outer query's parts: size 15 and type `%BRASS`, 747 of 200,000.
//! DataFusion's dynamic filter from that join cannot reach the aggregate's input: it
//! reads `min(…)` too, which only exists above the aggregate.
//!
//! How: where a join (inner or semi) equates an aggregate's group-by column with a column
//! of the other side, and that column comes (through column projections, filters and
//! inner joins) from a filtered source estimated to keep at most
//! `MAX_KEY_SHARE` of its values (`join_order`'s estimates), the source of the group-by
//! column inside the aggregate is semi-joined with that filtered source's keys. Groups
//! whose key the filtered source lacks are the only ones that lose rows, and the join
//! drops those groups anyway; the filtered source is read a second time for its keys,
//! so a source whose filter is volatile (`random()`), which would keep other rows the
//! second time, is left alone. A path through anything but column projections, filters
//! and inner joins (an outer join, a limit, a window) is left alone too.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::{
    Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The share of its values a filtered source must be estimated to keep at most for its
/// keys to be pushed into an aggregate: the keys are read twice, which must be cheap
/// next to the groups they save.
const MAX_KEY_SHARE: f64 = 0.05;

/// The alias of the keys' relation inside the aggregate: a plan that has one was
/// rewritten already.
const KEYS_ALIAS: &str = "__sluice_aggregate_keys";

/// Semi-joins an aggregate's input with the few keys a join above it keeps (see the
/// module's documentation).
#[derive(Debug, Default)]
pub struct AggregateKeys;

impl OptimizerRule for AggregateKeys {
    fn name(&self) -> &str {
        "sluice_aggregate_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let unknown = super::unknown_selectivity(&config.options());
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if join.null_equality != NullEquality::NullEqualsNothing {
            return Ok(Transformed::no(plan));
        }
        // Which side may hold the aggregate: a side whose rows without a match are dropped.
        let (left_ok, right_ok) = match join.join_type {
            JoinType::Inner => (true, true),
            JoinType::LeftSemi => (false, true),
            JoinType::RightSemi => (true, false),
            _ => return Ok(Transformed::no(plan)),
        };
        for (l, r) in &join.on {
            let (Expr::Column(lc), Expr::Column(rc)) = (l, r) else {
                continue;
            };
            for (aggregate_left, key, other) in [(false, rc, lc), (true, lc, rc)] {
                if (aggregate_left && !left_ok) || (!aggregate_left && !right_ok) {
                    continue;
                }
                let (aggregate_side, other_side) = if aggregate_left {
                    (join.left.as_ref(), join.right.as_ref())
                } else {
                    (join.right.as_ref(), join.left.as_ref())
                };
                let Some((keys, keys_column)) = selective_source(other_side, other, unknown) else {
                    continue;
                };
                let Some(rewritten) = with_keys(aggregate_side, key, &keys, &keys_column)? else {
                    continue;
                };
                tracing::debug!(
                    key = %key,
                    from = %other,
                    "aggregate computed only for the keys the join keeps"
                );
                let mut inputs = vec![join.left.as_ref().clone(), join.right.as_ref().clone()];
                inputs[usize::from(!aggregate_left)] = rewritten;
                let exprs = plan.expressions();
                return Ok(Transformed::yes(plan.with_new_exprs(exprs, inputs)?));
            }
        }
        Ok(Transformed::no(plan))
    }
}

/// The filtered source in `plan` that `column` comes from, and the column's name in it,
/// if it keeps at most `MAX_KEY_SHARE` of the column's values (`unknown`: the share a
/// filter nothing estimates keeps).
fn selective_source(
    plan: &LogicalPlan,
    column: &Column,
    unknown: f64,
) -> Option<(LogicalPlan, Column)> {
    let (source, column) = source_of(plan, column)?;
    let (filtered, volatile) = match &source {
        LogicalPlan::Filter(filter) => (
            true,
            filter.predicate.is_volatile()
                || matches!(filter.input.as_ref(), LogicalPlan::TableScan(scan)
                    if scan.filters.iter().any(Expr::is_volatile)),
        ),
        LogicalPlan::TableScan(scan) => (
            !scan.filters.is_empty(),
            scan.filters.iter().any(Expr::is_volatile),
        ),
        _ => (false, false),
    };
    // The source is read twice, once for its keys: a volatile filter (`random() < 0.1`)
    // would keep other rows the second time, and the aggregate would lose groups the
    // join keeps.
    if !filtered || volatile {
        return None;
    }
    let estimate = super::join_order::estimate(&source, unknown)?;
    let (now, base) = estimate.distinct_values(&column)?;
    (base > 0.0 && now / base <= MAX_KEY_SHARE).then_some((source, column))
}

/// The source (a scan, or a filter right above one) whose rows `column` comes from, and
/// the column's name there, seen through aliases, column projections, filters and inner
/// joins; `None` through anything else.
fn source_of(plan: &LogicalPlan, column: &Column) -> Option<(LogicalPlan, Column)> {
    let here = || {
        plan.schema()
            .has_column(column)
            .then(|| (plan.clone(), column.clone()))
    };
    match plan {
        LogicalPlan::TableScan(_) => here(),
        LogicalPlan::Filter(filter) => match filter.input.as_ref() {
            LogicalPlan::TableScan(_) => here(),
            input => source_of(input, column),
        },
        LogicalPlan::Projection(projection) => {
            let input_column = projected_column(projection, column)?;
            source_of(&projection.input, &input_column)
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let inner = aliased_column(alias, column)?;
            source_of(&alias.input, &inner)
        }
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => {
            if join.left.schema().has_column(column) {
                source_of(&join.left, column)
            } else {
                source_of(&join.right, column)
            }
        }
        _ => None,
    }
}

/// The input column an alias's output `column` is.
fn aliased_column(alias: &SubqueryAlias, column: &Column) -> Option<Column> {
    let i = alias.schema.index_of_column(column).ok()?;
    Some(Column::from(alias.input.schema().qualified_field(i)))
}

/// The input column a projection's output `column` is (a column, or an alias of one).
fn projected_column(projection: &Projection, column: &Column) -> Option<Column> {
    let i = projection.schema.index_of_column(column).ok()?;
    match &projection.expr[i] {
        Expr::Column(c) => Some(c.clone()),
        Expr::Alias(alias) => match alias.expr.as_ref() {
            Expr::Column(c) => Some(c.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `plan` (the aggregate's side of the join) with the source of the aggregate's group-by
/// column semi-joined with `keys`' `keys_column`, or `None` where the path from the join
/// to the aggregate or from the aggregate to that source is not one this rule can see
/// through.
fn with_keys(
    plan: &LogicalPlan,
    column: &Column,
    keys: &LogicalPlan,
    keys_column: &Column,
) -> Result<Option<LogicalPlan>> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => {
            let Some(inner) = aliased_column(alias, column) else {
                return Ok(None);
            };
            let Some(input) = with_keys(&alias.input, &inner, keys, keys_column)? else {
                return Ok(None);
            };
            Ok(Some(plan.with_new_exprs(vec![], vec![input])?))
        }
        LogicalPlan::Projection(projection) => {
            let Some(inner) = projected_column(projection, column) else {
                return Ok(None);
            };
            let Some(input) = with_keys(&projection.input, &inner, keys, keys_column)? else {
                return Ok(None);
            };
            Ok(Some(plan.with_new_exprs(plan.expressions(), vec![input])?))
        }
        LogicalPlan::Aggregate(aggregate) => {
            let grouped = aggregate
                .group_expr
                .iter()
                .any(|g| matches!(g, Expr::Column(c) if c == column));
            if !grouped || rewritten_already(&aggregate.input) {
                return Ok(None);
            }
            let Some(input) = semi_joined(&aggregate.input, column, keys, keys_column)? else {
                return Ok(None);
            };
            let rewritten = Aggregate::try_new(
                Arc::new(input),
                aggregate.group_expr.clone(),
                aggregate.aggr_expr.clone(),
            )?;
            Ok(Some(LogicalPlan::Aggregate(rewritten)))
        }
        _ => Ok(None),
    }
}

/// `plan` with the one source of `column` replaced by its semi-join with the keys.
fn semi_joined(
    plan: &LogicalPlan,
    column: &Column,
    keys: &LogicalPlan,
    keys_column: &Column,
) -> Result<Option<LogicalPlan>> {
    let Some((source, column)) = source_of(plan, column) else {
        return Ok(None);
    };
    let keys = LogicalPlanBuilder::from(keys.clone())
        .project(vec![Expr::Column(keys_column.clone())])?
        .alias(KEYS_ALIAS)?
        .build()?;
    let keys_column = Column::new(Some(KEYS_ALIAS), keys_column.name.clone());
    let mut replaced = 0;
    let rewritten = plan
        .clone()
        .transform_down(|node| {
            if node == source {
                replaced += 1;
                let joined = LogicalPlanBuilder::from(node)
                    .join(
                        keys.clone(),
                        JoinType::LeftSemi,
                        (vec![column.clone()], vec![keys_column.clone()]),
                        None,
                    )?
                    .build()?;
                return Ok(Transformed::new(joined, true, TreeNodeRecursion::Jump));
            }
            Ok(Transformed::no(node))
        })?
        .data;
    // The same source twice (a self-join without aliases) is not this rule's to guess.
    Ok((replaced == 1).then_some(rewritten))
}

/// Whether the aggregate's input holds this rule's keys already (an optimizer pass runs
/// every rule more than once).
fn rewritten_already(plan: &LogicalPlan) -> bool {
    plan.exists(|node| {
        Ok(matches!(node, LogicalPlan::SubqueryAlias(alias) if alias.alias.table() == KEYS_ALIAS))
    })
    .expect("the visit cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::join_order::tests::{context, optimized, rows_table};
    use datafusion::prelude::SessionContext;

    const SQL: &str = "SELECT d.k, s.total FROM dim d \
        JOIN (SELECT k, sum(v) AS total FROM fact GROUP BY k) s ON d.k = s.k \
        WHERE d.tag = 7 ORDER BY d.k";

    /// `fact`: 3,000 rows over 1,000 keys (and null keys); `dim`: the 1,000 keys, each
    /// with a tag of 100, so `tag = 7` keeps 1% of them.
    fn register(ctx: &SessionContext) {
        let fact_k: Vec<Option<i64>> = (0..3000)
            .map(|i| (i % 97 != 0).then_some(i % 1000 + 1))
            .collect();
        let fact_v: Vec<Option<i64>> = (0..3000).map(|i| Some(i * 3 % 11)).collect();
        let dim_k: Vec<Option<i64>> = (1..=1000).map(Some).collect();
        let dim_tag: Vec<Option<i64>> = (1..=1000).map(|k| Some(k * 7 % 100)).collect();
        ctx.register_table("fact", rows_table(&[("k", fact_k), ("v", fact_v)], None))
            .unwrap();
        ctx.register_table("dim", rows_table(&[("k", dim_k), ("tag", dim_tag)], None))
            .unwrap();
    }

    fn has_keys(plan: &LogicalPlan) -> bool {
        rewritten_already(plan)
    }

    #[tokio::test]
    async fn aggregate_computes_only_the_joined_keys_and_answers_the_same() {
        let ctx = context();
        register(&ctx);
        let plan = optimized(&ctx, SQL).await;
        assert!(has_keys(&plan), "{}", plan.display_indent());
        // A second optimizer pass leaves it as it is.
        let again = ctx.state().optimize(&plan).unwrap();
        assert_eq!(
            again.display_indent().to_string(),
            plan.display_indent().to_string()
        );

        let plain = SessionContext::new();
        register(&plain);
        let expected = plain.sql(SQL).await.unwrap().collect().await.unwrap();
        let got = ctx.sql(SQL).await.unwrap().collect().await.unwrap();
        assert_eq!(got, expected);
        let rows: usize = got.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "the join keeps rows");
    }

    #[tokio::test]
    async fn unfiltered_or_unselective_sources_and_outer_joins_are_left_alone() {
        let ctx = context();
        register(&ctx);
        for sql in [
            // No filter on `dim`: every key joins.
            "SELECT d.k, s.total FROM dim d \
             JOIN (SELECT k, sum(v) AS total FROM fact GROUP BY k) s ON d.k = s.k",
            // Half the tags: not selective enough to read `dim` twice.
            "SELECT d.k, s.total FROM dim d \
             JOIN (SELECT k, sum(v) AS total FROM fact GROUP BY k) s ON d.k = s.k \
             WHERE d.tag < 50",
            // An outer join keeps the aggregate's rows without a match.
            "SELECT d.k, s.total FROM dim d \
             RIGHT JOIN (SELECT k, sum(v) AS total FROM fact GROUP BY k) s ON d.k = s.k \
             WHERE d.tag = 7 OR d.tag IS NULL",
            // A volatile filter would keep other keys when `dim` is read again for them.
            "SELECT d.k, s.total FROM dim d \
             JOIN (SELECT k, sum(v) AS total FROM fact GROUP BY k) s ON d.k = s.k \
             WHERE d.tag = 7 AND random() < 0.5",
        ] {
            let plan = optimized(&ctx, sql).await;
            assert!(!has_keys(&plan), "{sql}\n{}", plan.display_indent());
        }
    }
}
