//! [`ConstantGroupKeys`], a logical optimizer rule: a group key that a filter below the
//! aggregate fixes to one value (`d_year = 2000`) is not grouped by; a projection
//! above gives it back as that value.
//!
//! Why: DataFusion's physical plan sees such a column as constant, so sorted, and
//! aggregates in "partially sorted" mode, which keeps every group until the input
//! ends and then emits them a batch at a time from the front of its tables. TPC-DS q78
//! groups 500 K sales of the year 2000 by `d_year, ss_item_sk, ss_customer_sk` per
//! channel: 2.5× the time of the same aggregate without `d_year` (630 against 250 ms).
//! DataFusion's `eliminate_group_by_constant` drops only keys that are constant
//! expressions themselves.
//!
//! How: walking down from the aggregate, the columns a filter's conjunct `column =
//! literal` fixes are collected, and carried up through projections that pass them on
//! (under their new names), aliases, sorts and limits, and joins on the side whose rows
//! are never padded with NULLs (both sides of an inner join). A group key that is one of
//! those columns is dropped from the aggregate, and a projection above it gives every
//! output back in its place, the key as the literal. At least one key is kept: an
//! aggregate with no keys gives a row even over no rows.
//!
//! Sound: every row reaching the aggregate met `column = literal`, which is true only
//! where the column is not NULL and equals the literal; with the column's type equal to
//! the literal's and not a float (where `-0.0 = 0.0` holds between values that are not
//! the same), it holds exactly the literal's value. The groups by the other keys are
//! then the groups by all of them, and the dropped key's value in each is the literal.
//! Nothing is evaluated that was not: the filters stay where they are.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, ExprSchemable, JoinType, LogicalPlan, Operator,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::two_phase::{column, named_as};

/// Drops the group keys a filter below fixes to one value (see the module's
/// documentation).
#[derive(Debug, Default)]
pub struct ConstantGroupKeys;

impl OptimizerRule for ConstantGroupKeys {
    fn name(&self) -> &str {
        "sluice_constant_group_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if agg.group_expr.len() < 2 || matches!(agg.group_expr[0], Expr::GroupingSet(_)) {
            return Ok(Transformed::no(plan));
        }
        let fixed = fixed_columns(&agg.input);
        let value = |key: &Expr| match key {
            Expr::Column(c) => fixed.iter().find(|(f, _)| f == c).map(|(_, v)| v.clone()),
            _ => None,
        };
        let mut values: Vec<Option<ScalarValue>> = agg.group_expr.iter().map(value).collect();
        if values.iter().all(Option::is_some) {
            values[0] = None;
        }
        if values.iter().all(Option::is_none) {
            return Ok(Transformed::no(plan));
        }
        let kept: Vec<Expr> = agg
            .group_expr
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let inner = Aggregate::try_new(Arc::clone(&agg.input), kept, agg.aggr_expr.clone())?;
        // Each output in its place: a kept key or an aggregate from the inner
        // aggregate, a dropped key as its value.
        let mut at = 0;
        let mut outputs = Vec::with_capacity(agg.schema.fields().len());
        for value in &values {
            outputs.push(match value {
                Some(v) => Expr::Literal(v.clone(), None),
                None => {
                    at += 1;
                    column(&inner, at - 1)
                }
            });
        }
        for i in 0..agg.aggr_expr.len() {
            outputs.push(column(&inner, at + i));
        }
        Ok(Transformed::yes(named_as(&agg.schema, outputs, inner)?))
    }
}

/// The columns of `plan`'s output that a filter within it fixes to one value, with the
/// value (see the module's documentation).
fn fixed_columns(plan: &LogicalPlan) -> Vec<(Column, ScalarValue)> {
    match plan {
        LogicalPlan::Filter(filter) => {
            let mut fixed = fixed_columns(&filter.input);
            for conjunct in split_conjunction(&filter.predicate) {
                fixed.extend(column_equal_to_literal(conjunct, filter.input.schema()));
            }
            fixed
        }
        LogicalPlan::Projection(projection) => {
            let below = fixed_columns(&projection.input);
            projection
                .expr
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let Expr::Column(c) = e.clone().unalias() else {
                        return None;
                    };
                    let (_, v) = below.iter().find(|(f, _)| *f == c)?;
                    Some((
                        Column::from(projection.schema.qualified_field(i)),
                        v.clone(),
                    ))
                })
                .collect()
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let input = alias.input.schema();
            fixed_columns(&alias.input)
                .into_iter()
                .filter_map(|(c, v)| {
                    let i = input.index_of_column(&c).ok()?;
                    Some((Column::from(alias.schema.qualified_field(i)), v))
                })
                .collect()
        }
        LogicalPlan::Join(join) => {
            let (left, right) = match join.join_type {
                JoinType::Inner => (true, true),
                JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
                    (true, false)
                }
                JoinType::Right
                | JoinType::RightSemi
                | JoinType::RightAnti
                | JoinType::RightMark => (false, true),
                JoinType::Full => (false, false),
            };
            let mut fixed = Vec::new();
            if left {
                fixed.extend(fixed_columns(&join.left));
            }
            if right {
                fixed.extend(fixed_columns(&join.right));
            }
            // Only what the join's output has (a semi join's other side it has not).
            fixed.retain(|(c, _)| join.schema.has_column(c));
            fixed
        }
        LogicalPlan::Sort(sort) => fixed_columns(&sort.input),
        LogicalPlan::Limit(limit) => fixed_columns(&limit.input),
        _ => Vec::new(),
    }
}

/// `column = literal` (either way round) with the literal not NULL and of the column's
/// type, not a float's.
fn column_equal_to_literal(conjunct: &Expr, schema: &DFSchema) -> Option<(Column, ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = conjunct
    else {
        return None;
    };
    let ((Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))) =
        (left.as_ref(), right.as_ref())
    else {
        return None;
    };
    let data_type = Expr::Column(c.clone()).get_type(schema).ok()?;
    (!v.is_null() && v.data_type() == data_type && !data_type.is_floating())
        .then(|| (c.clone(), v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Sluice's rules, all of them or all but this one (`settings::rules_session`).
    async fn session(with_rule: bool) -> SessionContext {
        let ctx = crate::optimizer::settings::rules_session(
            SessionConfig::new().with_target_partitions(3),
            (!with_rule).then_some("sluice_constant_group_keys"),
        );
        for sql in [
            // `y` a year, `a` a string key with NULLs, `f` a float with -0.0 and 0.0.
            "CREATE TABLE t AS SELECT 1999 + v % 3 AS y, \
             CASE WHEN v % 7 = 0 THEN NULL ELSE 'a' || (v % 5) END AS a, \
             v % 4 AS k, CAST(v AS INT) AS q, \
             CASE WHEN v % 2 = 0 THEN CAST(-0.0 AS DOUBLE) ELSE CAST(0.0 AS DOUBLE) END AS f \
             FROM generate_series(1, 2000) AS s(v)",
            "CREATE TABLE d AS SELECT v AS k, 1999 + v % 2 AS y FROM generate_series(0, 3) AS s(v)",
            "CREATE TABLE empty AS SELECT * FROM t WHERE false",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    /// The sorted rows and schema of `sql`, and the keys of its first aggregate.
    async fn answer(ctx: &SessionContext, sql: &str) -> (String, String, usize) {
        let df = ctx.sql(sql).await.unwrap();
        let schema = format!("{:?}", df.schema());
        let plan = df.clone().into_optimized_plan().unwrap();
        let mut keys = 0;
        plan.apply(|p| {
            Ok(match p {
                LogicalPlan::Aggregate(a) => {
                    keys = a.group_expr.len();
                    TreeNodeRecursion::Stop
                }
                _ => TreeNodeRecursion::Continue,
            })
        })
        .unwrap();
        let rows = crate::testing::sorted_lines(&df.collect().await.unwrap());
        (rows.join("\n"), schema, keys)
    }

    /// The same rows and schema with the rule and without; `keys` is how many keys the
    /// aggregate keeps with it.
    #[tokio::test]
    async fn answers_as_without_the_rule() {
        let cases = [
            (
                "SELECT y, a, count(*), sum(q) FROM t WHERE y = 2000 GROUP BY y, a",
                1,
            ),
            (
                "SELECT a, y, max(q) FROM t WHERE 2000 = y AND q > 10 GROUP BY a, y HAVING y > 0",
                1,
            ),
            // Through a join, a projection renaming it and an alias.
            (
                "SELECT d.y, t.a, sum(t.q) FROM t JOIN d ON t.k = d.k WHERE d.y = 2000 \
                 GROUP BY d.y, t.a",
                1,
            ),
            (
                "SELECT yy, a, count(*) FROM (SELECT y AS yy, a FROM t WHERE y = 2001) s \
                 GROUP BY yy, a",
                1,
            ),
            // Every key fixed: one is kept (no rows, no groups).
            (
                "SELECT y, k, count(*) FROM t WHERE y = 2000 AND k = 1 GROUP BY y, k",
                1,
            ),
            (
                "SELECT y, k, count(*) FROM empty WHERE y = 2000 AND k = 1 GROUP BY y, k",
                1,
            ),
            (
                "SELECT y, a, count(*) FROM empty WHERE y = 2000 GROUP BY y, a",
                1,
            ),
            // Left alone: the padded side of a left join, a float, an `OR`, one key.
            (
                "SELECT d.y, t.a, count(*) FROM t LEFT JOIN d ON t.k = d.k AND d.y = 2000 \
                 GROUP BY d.y, t.a",
                2,
            ),
            (
                "SELECT f, a, count(*) FROM t WHERE f = 0.0 GROUP BY f, a",
                2,
            ),
            (
                "SELECT y, a, count(*) FROM t WHERE y = 2000 OR y = 2001 GROUP BY y, a",
                2,
            ),
            ("SELECT y, count(*) FROM t WHERE y = 2000 GROUP BY y", 1),
        ];
        let with = session(true).await;
        let without = session(false).await;
        for (sql, keys) in cases {
            let (a, a_schema, a_keys) = answer(&with, sql).await;
            let (b, b_schema, _) = answer(&without, sql).await;
            assert_eq!(a, b, "{sql}");
            assert_eq!(a_schema, b_schema, "{sql}");
            assert_eq!(a_keys, keys, "{sql}");
        }
    }
}
