//! [`SemiJoinPushdown`], a logical optimizer rule: a semi or anti join (`x IN (SELECT
//! …)`, `EXISTS`, `NOT EXISTS`) above a tree of inner joins, whose keys are all of one
//! relation of the tree, is moved onto that relation.
//!
//! Why: DataFusion decorrelates `d_date IN (SELECT d_date FROM date_dim WHERE d_week_seq
//! = …)` into a semi join above the whole `FROM` clause: TPC-DS q58 joins 2.88 M
//! `store_sales` rows with `item` and `date_dim` before the seven dates of its week keep
//! a fraction of them. On `date_dim` itself, the semi join keeps those seven dates first,
//! and `sluice_join_order` (which runs after it, and estimates a semi join's rows by the
//! share of keys its other side can match) can start the tree from them.
//!
//! How: from the semi join down, through projections that pass its key columns on
//! unchanged and inner joins one input of which has all of them, to the lowest node
//! that still has them; the semi join is rebuilt on that node, and the nodes above it
//! on the new child. A semi join's output is its left input's schema, so every node
//! above keeps its schema. Only onto a relation estimated (`join_order::estimate`) at
//! fewer rows than the tree's largest: a semi join on the largest relation (TPC-H q21's
//! `EXISTS` on `lineitem`, TPC-DS q95's `IN` on `web_sales`, q14b's on `store_sales`)
//! stays above the joins that keep a fraction of it, rather than probing all of it.
//!
//! Sound: a semi (anti) join keeps a row when the row's keys match (match no) row of its
//! right side: a condition on the row's own columns, here the columns of one relation.
//! An inner join's rows each hold one row of that relation, unchanged, and projections
//! that pass the columns on keep them as they are, so keeping the joined rows whose
//! relation row meets the condition is joining the relation's rows that meet it. Only a
//! join with equalities of columns and no other condition is moved, and not a
//! null-aware anti join (`NOT IN`), whose answer also depends on whether its right side
//! holds a NULL (still a condition on the row; left alone for simplicity).

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::join_order::estimate;

/// Moves a semi or anti join onto the relation of an inner-join tree its keys are of
/// (see the module's documentation).
#[derive(Debug, Default)]
pub struct SemiJoinPushdown;

impl OptimizerRule for SemiJoinPushdown {
    fn name(&self) -> &str {
        "sluice_semi_join_pushdown"
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
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(semi) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some(keys) = movable_keys(semi) else {
            return Ok(Transformed::no(plan));
        };
        let target = lowest(&semi.left, &keys);
        if std::ptr::eq(target, semi.left.as_ref()) {
            return Ok(Transformed::no(plan));
        }
        // Only onto a relation estimated at fewer rows than the largest of the tree.
        let unknown = super::unknown_selectivity(&config.options());
        let largest = relations(&semi.left)
            .into_iter()
            .map(|r| estimate(r, unknown).map(|e| e.rows()))
            .collect::<Option<Vec<f64>>>()
            .and_then(|rows| rows.into_iter().reduce(f64::max));
        let (Some(relation), Some(largest)) = (estimate(target, unknown), largest) else {
            return Ok(Transformed::no(plan));
        };
        if relation.rows() >= largest {
            return Ok(Transformed::no(plan));
        }
        Ok(Transformed::yes(rebuilt(&semi.left, semi, &keys)?))
    }
}

/// The left key columns of `join` when it is a semi or anti join this moves.
fn movable_keys(join: &Join) -> Option<Vec<Column>> {
    if !matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
        || join.filter.is_some()
        || join.null_aware
        || join.on.is_empty()
    {
        return None;
    }
    join.on
        .iter()
        .map(|(left, _)| match left {
            Expr::Column(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The input of `node` a semi join on `keys` goes into: one that has all of them, below a
/// projection passing them on unchanged or an inner join.
fn child_with_keys<'a>(node: &'a LogicalPlan, keys: &[Column]) -> Option<&'a Arc<LogicalPlan>> {
    let has_keys = |plan: &LogicalPlan| keys.iter().all(|k| plan.schema().has_column(k));
    match node {
        LogicalPlan::Projection(projection)
            if keys
                .iter()
                .all(|k| projection.expr.contains(&Expr::Column(k.clone()))) =>
        {
            Some(&projection.input).filter(|input| has_keys(input))
        }
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => [&join.left, &join.right]
            .into_iter()
            .find(|side| has_keys(side)),
        _ => None,
    }
}

/// The relations of the tree of inner joins (and projections) `node` is the top of.
fn relations(node: &LogicalPlan) -> Vec<&LogicalPlan> {
    match node {
        LogicalPlan::Projection(projection) => relations(&projection.input),
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => {
            let mut all = relations(&join.left);
            all.extend(relations(&join.right));
            all
        }
        _ => vec![node],
    }
}

/// The lowest node under `node` a semi join on `keys` goes into (`node` itself if none).
fn lowest<'a>(node: &'a LogicalPlan, keys: &[Column]) -> &'a LogicalPlan {
    match child_with_keys(node, keys) {
        Some(child) => lowest(child, keys),
        None => node,
    }
}

/// `node` with `semi` rebuilt on its lowest node (`lowest`), and the nodes between
/// rebuilt on their new child (each keeps its schema: a semi join's is its left input's).
fn rebuilt(node: &Arc<LogicalPlan>, semi: &Join, keys: &[Column]) -> Result<LogicalPlan> {
    let Some(child) = child_with_keys(node, keys) else {
        return Ok(LogicalPlan::Join(Join::try_new(
            Arc::clone(node),
            Arc::clone(&semi.right),
            semi.on.clone(),
            None,
            semi.join_type,
            semi.join_constraint,
            semi.null_equality,
            false,
        )?));
    };
    let child = Arc::new(rebuilt(child, semi, keys)?);
    Ok(match node.as_ref() {
        LogicalPlan::Projection(projection) => {
            LogicalPlan::Projection(Projection::try_new_with_schema(
                projection.expr.clone(),
                child,
                Arc::clone(&projection.schema),
            )?)
        }
        LogicalPlan::Join(join) => {
            let mut join = join.clone();
            // The side `child_with_keys` chose: the first with every key.
            if keys.iter().all(|k| join.left.schema().has_column(k)) {
                join.left = child;
            } else {
                join.right = child;
            }
            LogicalPlan::Join(join)
        }
        _ => unreachable!("child_with_keys goes below projections and joins only"),
    })
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Sluice's rules, all of them or all but this one (`settings::rules_session`).
    async fn session(with_rule: bool) -> SessionContext {
        let ctx = crate::optimizer::settings::rules_session(
            SessionConfig::new().with_target_partitions(3),
            (!with_rule).then_some("sluice_semi_join_pushdown"),
        );
        // Sales `t` by day `k` (NULL now and then), days `d` (one NULL `y`), and `e`, a
        // few values of `y` with a NULL; with statistics, which the rule estimates by.
        use crate::optimizer::join_order::tests::rows_table;
        let names = ["a0", "a1", "a2", "a3"];
        let t = rows_table(
            &[
                (
                    "k",
                    (1..=2000)
                        .map(|v| (v % 13 != 0).then_some(v % 30))
                        .collect(),
                ),
                ("q", (1..=2000).map(Some).collect()),
            ],
            Some(("a", (1..=2000).map(|v| names[v % 4]).collect())),
        );
        let d = rows_table(
            &[
                ("k", (0..30).map(Some).collect()),
                ("y", (0..30).map(|v| (v != 5).then_some(v % 7)).collect()),
            ],
            None,
        );
        let e = rows_table(&[("y", vec![Some(1), Some(3), None])], None);
        ctx.register_table("t", t).unwrap();
        ctx.register_table("d", d).unwrap();
        ctx.register_table("e", e).unwrap();
        ctx
    }

    /// The sorted rows of `sql`, and whether its semi or anti join sits below an inner
    /// join in the optimized plan.
    async fn answer(ctx: &SessionContext, sql: &str) -> (Vec<String>, bool) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().into_optimized_plan().unwrap();
        let text = plan.display_indent().to_string();
        let line = |what: &str| text.lines().position(|l| l.trim_start().starts_with(what));
        let semi = line("LeftSemi Join").or_else(|| line("LeftAnti Join"));
        let below = matches!((line("Inner Join"), semi), (Some(i), Some(s)) if s > i);
        let rows = crate::testing::sorted_lines(&df.collect().await.unwrap());
        (rows, below)
    }

    /// The same rows with the rule and without; `moved` says whether it applies.
    #[tokio::test]
    async fn answers_as_without_the_rule() {
        let cases = [
            (
                "SELECT t.a, t.q, d.y FROM t JOIN d ON t.k = d.k WHERE d.y IN (SELECT y FROM e)",
                true,
            ),
            (
                "SELECT t.a, count(*) FROM t JOIN d ON t.k = d.k \
                 WHERE EXISTS (SELECT 1 FROM e WHERE e.y = d.y) GROUP BY t.a",
                true,
            ),
            // An anti join keeps rows whose key is NULL or matches nothing.
            (
                "SELECT t.a, t.q, d.y FROM t JOIN d ON t.k = d.k \
                 WHERE NOT EXISTS (SELECT 1 FROM e WHERE e.y = d.y)",
                true,
            ),
            // Left alone: `NOT IN` (a NULL in `e` empties it), keys of both sides, a left
            // join's padded side, a condition beside the keys.
            (
                "SELECT t.a, t.q FROM t JOIN d ON t.k = d.k WHERE d.y NOT IN (SELECT y FROM e)",
                false,
            ),
            (
                "SELECT t.a, t.q FROM t JOIN d ON t.k = d.k \
                 WHERE EXISTS (SELECT 1 FROM e WHERE e.y = d.y AND e.y = t.q % 5)",
                false,
            ),
            (
                "SELECT t.a, t.q, d.y FROM t LEFT JOIN d ON t.k = d.k \
                 WHERE d.y IN (SELECT y FROM e)",
                false,
            ),
            (
                "SELECT t.a, t.q FROM t JOIN d ON t.k = d.k \
                 WHERE EXISTS (SELECT 1 FROM e WHERE e.y = d.y AND e.y < t.q)",
                false,
            ),
            // On the tree's largest relation (TPC-H q21, TPC-DS q95).
            (
                "SELECT t.a, t.q FROM t JOIN d ON t.k = d.k \
                 WHERE d.k = 3 AND t.q IN (SELECT y FROM e)",
                false,
            ),
        ];
        let with = session(true).await;
        let without = session(false).await;
        for (sql, moved) in cases {
            let (a, a_moved) = answer(&with, sql).await;
            let (b, b_moved) = answer(&without, sql).await;
            assert_eq!(a, b, "{sql}");
            assert!(!b_moved, "{sql}: DataFusion leaves it above");
            assert_eq!(a_moved, moved, "{sql}");
        }
    }
}
