//! [`KeysBelowJoins`], a logical optimizer rule: a group key computed from the columns
//! of one relation of a join (`GROUP BY substr(w_warehouse_name, 1, 20)`) is computed
//! on that relation's rows, below the joins, where it has far fewer rows than the joins
//! give the aggregate.
//!
//! Why: DataFusion evaluates a group key where the aggregate is, on every row its input
//! gives. TPC-DS q99 takes the `substr` of a warehouse's name once for each of 287,000
//! joined `catalog_sales` rows, of five warehouses (q62 the same); q23 the `substr` of an
//! item's description for each of about 2 M `store_sales` rows of 18,000 items.
//!
//! How: from the aggregate down, through projections that pass the key's columns on
//! (under other names, maybe), filters, and joins (both sides of an inner join, the
//! preserved side of a left or right join) into the side that holds every column the key
//! reads, as far as it goes. A projection there adds the key as a new column, every node
//! on the way up passes it on, and the aggregate groups by that column under the key's
//! name. Only if at least one join is crossed and the relation it lands on is estimated
//! at no more than a quarter of the aggregate's input rows (`join_order::estimate`, from
//! the sources' statistics); else the plan is left as it is.
//!
//! Sound: a join's output row carries its side's row's values unchanged (both sides of
//! an inner join; the preserved side of an outer join, never padded with NULLs), and a
//! filter or projection passes a row's values on as they are, so a deterministic key
//! computed on the side's row and carried up is the key computed on the row that
//! reaches the aggregate. The key is now also computed on rows the joins and filters
//! drop, so only expressions that cannot fail on any value move (`infallible`): columns,
//! literals, `||`, `substr` with literal positions and a length not below zero, `left`
//! and `right` with a literal length, `upper`, `lower`, the trims, `concat` and
//! `concat_ws`. `substr(s, 1, -1)`, which fails on every row, fails only if a row
//! reaches the aggregate, as before.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, JoinType, LogicalPlan, Operator, Projection,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::join_order::estimate;

/// How many times fewer rows than the aggregate's input the relation a key lands on
/// must be estimated to have: the key is then computed on at most a quarter of the rows,
/// which leaves room for the estimates' errors.
const FEWER_ROWS: f64 = 4.0;

/// Computes group keys of one joined relation's columns on that relation (see the
/// module's documentation).
#[derive(Debug, Default)]
pub struct KeysBelowJoins;

impl OptimizerRule for KeysBelowJoins {
    fn name(&self) -> &str {
        "sluice_keys_below_joins"
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
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
            || !agg.group_expr.iter().any(|e| worth_moving(strip_alias(e)))
        {
            return Ok(Transformed::no(plan));
        }
        let unknown = super::unknown_selectivity(&config.options());
        // A plan this rule cannot rebuild is left as it is, not an error of the query.
        match moved_keys(agg, unknown) {
            Ok(Some(moved)) => Ok(Transformed::yes(LogicalPlan::Aggregate(moved))),
            Ok(None) => Ok(Transformed::no(plan)),
            Err(error) => {
                tracing::debug!(%error, "group keys left where the aggregate is");
                Ok(Transformed::no(plan))
            }
        }
    }
}

/// `agg` with the keys worth it computed below the joins, if any is.
fn moved_keys(agg: &Aggregate, unknown: f64) -> Result<Option<Aggregate>> {
    let Some(input_rows) = estimate(&agg.input, unknown).map(|e| e.rows()) else {
        return Ok(None);
    };
    let mut input = agg.input.as_ref().clone();
    let mut group_expr = agg.group_expr.clone();
    for (i, key) in agg.group_expr.iter().enumerate() {
        let key = strip_alias(key);
        if !worth_moving(key) {
            continue;
        }
        let name = unused_name(&input);
        let Some(moved) = computed_below(&input, key, &name, unknown, false)? else {
            continue;
        };
        if moved.rows * FEWER_ROWS > input_rows {
            continue;
        }
        input = moved.plan;
        let (qualifier, field) = agg.schema.qualified_field(i);
        group_expr[i] = Expr::Column(Column::new_unqualified(name))
            .alias_qualified(qualifier.cloned(), field.name());
    }
    if group_expr == agg.group_expr {
        return Ok(None);
    }
    let moved = Aggregate::try_new(Arc::new(input), group_expr, agg.aggr_expr.clone())?;
    // The aggregate's output as it was, names, types and nulls, or nothing changes.
    let same = moved.schema.fields().len() == agg.schema.fields().len()
        && moved
            .schema
            .iter()
            .zip(agg.schema.iter())
            .all(|((q1, f1), (q2, f2))| {
                q1 == q2
                    && f1.name() == f2.name()
                    && f1.data_type() == f2.data_type()
                    && f1.is_nullable() == f2.is_nullable()
            });
    Ok(same.then_some(moved))
}

/// A plan that gives one more column than the plan it replaces, and the estimated rows
/// of the relation that column is computed on.
struct Moved {
    plan: LogicalPlan,
    rows: f64,
}

/// `plan` with `key` (an expression of `plan`'s columns) added as the column `name`,
/// computed as far down as the joins let it go (see the module's documentation);
/// `None` if it does not go below a join or where it lands has no estimate.
/// `crossed`: a join was crossed on the way down to `plan`.
fn computed_below(
    plan: &LogicalPlan,
    key: &Expr,
    name: &str,
    unknown: f64,
    crossed: bool,
) -> Result<Option<Moved>> {
    match plan {
        LogicalPlan::Projection(projection) => {
            let Some(below) = through_projection(key, projection) else {
                return computed_here(plan, key, name, unknown, crossed);
            };
            let Some(moved) = computed_below(&projection.input, &below, name, unknown, crossed)?
            else {
                return Ok(None);
            };
            let mut expr = projection.expr.clone();
            expr.push(Expr::Column(Column::new_unqualified(name)));
            let plan = Projection::try_new(expr, Arc::new(moved.plan))?;
            Ok(Some(Moved {
                plan: LogicalPlan::Projection(plan),
                rows: moved.rows,
            }))
        }
        LogicalPlan::Filter(filter) => {
            let Some(moved) = computed_below(&filter.input, key, name, unknown, crossed)? else {
                return Ok(None);
            };
            let plan = plan.with_new_exprs(plan.expressions(), vec![moved.plan])?;
            Ok(Some(Moved {
                plan,
                rows: moved.rows,
            }))
        }
        LogicalPlan::Join(join) => {
            // The sides whose rows the join's output carries unchanged.
            let (left, right) = match join.join_type {
                JoinType::Inner => (true, true),
                JoinType::Left => (true, false),
                JoinType::Right => (false, true),
                _ => (false, false),
            };
            let reads = key.column_refs();
            let holds = |side: &LogicalPlan| reads.iter().all(|c| side.schema().has_column(c));
            let (side, other, left_side) = if left && holds(&join.left) {
                (&join.left, &join.right, true)
            } else if right && holds(&join.right) {
                (&join.right, &join.left, false)
            } else {
                return computed_here(plan, key, name, unknown, crossed);
            };
            let Some(moved) = computed_below(side, key, name, unknown, true)? else {
                return Ok(None);
            };
            let inputs = if left_side {
                vec![moved.plan, other.as_ref().clone()]
            } else {
                vec![other.as_ref().clone(), moved.plan]
            };
            let plan = plan.with_new_exprs(plan.expressions(), inputs)?;
            Ok(Some(Moved {
                plan,
                rows: moved.rows,
            }))
        }
        _ => computed_here(plan, key, name, unknown, crossed),
    }
}

/// `plan` under a projection of its columns and `key` as `name`, if a join was crossed
/// to get here and `plan`'s rows can be estimated.
fn computed_here(
    plan: &LogicalPlan,
    key: &Expr,
    name: &str,
    unknown: f64,
    crossed: bool,
) -> Result<Option<Moved>> {
    if !crossed {
        return Ok(None);
    }
    let Some(rows) = estimate(plan, unknown).map(|e| e.rows()) else {
        return Ok(None);
    };
    let mut expr: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    expr.push(key.clone().alias(name));
    let plan = Projection::try_new(expr, Arc::new(plan.clone()))?;
    Ok(Some(Moved {
        plan: LogicalPlan::Projection(plan),
        rows,
    }))
}

/// `key`, an expression of `projection`'s output, as the same expression of its input,
/// if each column it reads is one of the input's columns passed on (renamed, maybe).
fn through_projection(key: &Expr, projection: &Projection) -> Option<Expr> {
    let mut below = HashMap::new();
    for column in key.column_refs() {
        let i = projection.schema.index_of_column(column).ok()?;
        let Expr::Column(input) = strip_alias(&projection.expr[i]) else {
            return None;
        };
        below.insert(column.clone(), input.clone());
    }
    key.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(below[&c].clone()))),
            e => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
        .ok()
}

/// A name for the new column that no node of `plan` has.
fn unused_name(plan: &LogicalPlan) -> String {
    let taken = |name: &str| {
        let mut found = false;
        plan.apply(|node| {
            found = node.schema().fields().iter().any(|f| f.name() == name);
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
        .expect("the visit cannot fail");
        found
    };
    (0..)
        .map(|i| format!("__sluice_key_{i}"))
        .find(|name| !taken(name))
        .expect("an unused name")
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        e => e,
    }
}

/// Whether computing `key` below the joins can pay: an expression, not a column or a
/// constant, that cannot fail.
fn worth_moving(key: &Expr) -> bool {
    !matches!(key, Expr::Column(_) | Expr::Literal(..))
        && !key.column_refs().is_empty()
        && infallible(key)
}

/// Whether `expr` gives a value for every row, whatever its columns hold (see the
/// module's documentation). Deterministic too: no function in the list is volatile.
fn infallible(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) => infallible(left) && infallible(right),
        Expr::ScalarFunction(f) => {
            let args = f.args.as_slice();
            match (f.func.name(), args) {
                // `substr` fails on a negative length and on the least start.
                ("substr", [s, start]) => {
                    integer(start).is_some_and(|n| n > i64::MIN) && infallible(s)
                }
                ("substr", [s, start, length]) => {
                    integer(start).is_some_and(|n| n > i64::MIN)
                        && integer(length).is_some_and(|n| n >= 0)
                        && infallible(s)
                }
                ("left" | "right", [s, n]) => {
                    integer(n).is_some_and(|n| n > i64::MIN) && infallible(s)
                }
                ("upper" | "lower" | "btrim" | "ltrim" | "rtrim" | "concat" | "concat_ws", _) => {
                    !args.is_empty() && args.iter().all(infallible)
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A literal integer's value (not NULL).
fn integer(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(n)) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::join_order::tests::{context, optimized, rows_table};
    use datafusion::prelude::SessionContext;

    /// `fact`: 2,000 rows over keys 1–5 (and null keys), tagged `Aa`, `Bb` or `Cc`; `dim`: keys 1–5 with long
    /// names, and key 9, which no fact row has, named `nine`.
    fn register(ctx: &SessionContext) {
        let fact_k: Vec<Option<i64>> = (0..2000)
            .map(|i| (i % 13 != 0).then_some(i % 5 + 1))
            .collect();
        let fact_v: Vec<Option<i64>> = (0..2000).map(|i| Some(i % 7)).collect();
        let dim_k: Vec<Option<i64>> = [1, 2, 3, 4, 5, 9].into_iter().map(Some).collect();
        let names = vec![
            "Conventional childr",
            "Important issues liv",
            "Doors canno",
            "Bad cards must make.",
            "Conventional childr2",
            "nine",
        ];
        let tags: Vec<&str> = (0..2000).map(|i| ["Aa", "Bb", "Cc"][i % 3]).collect();
        ctx.register_table(
            "fact",
            rows_table(&[("k", fact_k), ("v", fact_v)], Some(("tag", tags))),
        )
        .unwrap();
        ctx.register_table("dim", rows_table(&[("k", dim_k)], Some(("name", names))))
            .unwrap();
    }

    /// The relation each moved key is computed on: the tables under each projection
    /// that defines a `__sluice_key_` column.
    fn moved_onto(plan: &LogicalPlan) -> Vec<String> {
        let mut out = Vec::new();
        plan.apply(|node| {
            if let LogicalPlan::Projection(p) = node
                && p.expr
                    .iter()
                    .any(|e| matches!(e, Expr::Alias(a) if a.name.starts_with("__sluice_key_")))
            {
                p.input.apply(|n| {
                    if let LogicalPlan::TableScan(scan) = n {
                        out.push(scan.table_name.to_string());
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        out
    }

    async fn same_answer(ctx: &SessionContext, sql: &str) -> usize {
        let plain = SessionContext::new();
        register(&plain);
        let expected = plain.sql(sql).await.unwrap().collect().await.unwrap();
        let got = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let show = |b| {
            datafusion::arrow::util::pretty::pretty_format_batches(b)
                .unwrap()
                .to_string()
        };
        assert_eq!(show(&got), show(&expected), "{sql}");
        got.iter().map(|b| b.num_rows()).sum()
    }

    #[tokio::test]
    async fn a_key_of_the_small_side_is_computed_below_the_join_and_answers_the_same() {
        let ctx = context();
        register(&ctx);
        for sql in [
            // q99's shape.
            "SELECT substr(name, 1, 8) AS n, count(*) AS c, sum(v) AS s FROM fact \
             JOIN dim ON fact.k = dim.k GROUP BY substr(name, 1, 8) ORDER BY n",
            // Through a filter and a renaming subquery, beside a plain key, with `||`,
            // `upper` and `concat`.
            "SELECT upper(nm) || '!' AS n, f.k, concat(nm, '-', 'x') AS m, count(*) AS c \
             FROM fact f JOIN (SELECT k AS dk, name AS nm FROM dim WHERE k < 9) d \
             ON f.k = d.dk WHERE f.v > 1 \
             GROUP BY upper(nm) || '!', f.k, concat(nm, '-', 'x') ORDER BY n, f.k",
            // The preserved side of a left join.
            "SELECT lower(name) AS n, count(fact.v) AS c FROM dim LEFT JOIN fact \
             ON fact.k = dim.k GROUP BY lower(name) ORDER BY n",
        ] {
            let plan = optimized(&ctx, sql).await;
            let text = plan.display_indent().to_string();
            assert!(
                !moved_onto(&plan).is_empty() && moved_onto(&plan).iter().all(|t| t == "dim"),
                "{text}"
            );
            // A second optimizer pass leaves it as it is.
            let again = ctx.state().optimize(&plan).unwrap();
            assert_eq!(again.display_indent().to_string(), text);
            assert!(same_answer(&ctx, sql).await > 0, "{sql}");
        }
    }

    #[tokio::test]
    async fn keys_that_may_fail_read_both_sides_pad_or_are_of_the_large_side_stay() {
        let ctx = context();
        register(&ctx);
        for sql in [
            // Fails on every row: no row reaches the aggregate (key 9 joins no fact
            // row), so the query answers nothing, without an error.
            "SELECT substr(name, 1, -1) AS n, count(*) AS c FROM fact \
             JOIN dim ON fact.k = dim.k WHERE dim.k = 9 GROUP BY substr(name, 1, -1)",
            // A function not known not to fail (nor to be deterministic).
            "SELECT concat(name, CAST(random() AS VARCHAR)) IS NULL AS n, count(*) AS c \
             FROM fact JOIN dim ON fact.k = dim.k \
             GROUP BY concat(name, CAST(random() AS VARCHAR)) IS NULL",
            // Columns of both sides.
            "SELECT concat(name, v) AS n, count(*) AS c FROM fact JOIN dim ON fact.k = dim.k \
             GROUP BY concat(name, v) ORDER BY n",
            // The padded side of a left join: `concat('x', NULL)` is `x`, a padded
            // row's key computed below would be NULL.
            "SELECT concat('x', name) AS n, count(*) AS c FROM fact LEFT JOIN dim \
             ON fact.k = dim.k GROUP BY concat('x', name) ORDER BY n",
            // The large side's key.
            "SELECT lower(tag) AS n, count(*) AS c FROM fact \
             JOIN dim ON fact.k = dim.k GROUP BY lower(tag) ORDER BY n",
            // No join to go below.
            "SELECT lower(name) AS n, count(*) AS c FROM dim GROUP BY lower(name) ORDER BY n",
        ] {
            let plan = optimized(&ctx, sql).await;
            assert!(moved_onto(&plan).is_empty(), "{}", plan.display_indent());
            if !sql.contains("random") {
                same_answer(&ctx, sql).await;
            }
        }
    }
}
