//! [`MixedDistinct`], a logical optimizer rule: an aggregate with one `DISTINCT`
//! argument beside plain counts, `SELECT g, count(*), count(DISTINCT x) … GROUP BY g`,
//! groups twice (by `g, x`, then by `g`) instead of keeping a set of `x` per group.
//!
//! Why: DataFusion rewrites such an aggregate so (`single_distinct_to_groupby`) only when
//! its other aggregates are `sum`, `min` or `max`; with a `count(*)` beside it, each
//! group keeps a hash set of its distinct values (a boxed accumulator per group). The
//! web-analytics suite's w10 (`count(*)` and `count(DISTINCT session_id)` per user,
//! 1.4 M events) took 5.2× DuckDB's time; grouped twice, a quarter of it.
//!
//! How: the inner aggregate groups by the group keys and the distinct argument, and
//! computes each plain aggregate per (key, value); the outer groups by the keys:
//! `f(DISTINCT x)` becomes `f(x)` over the inner groups, `count(…)` the `sum` of the inner
//! counts (`coalesce(…, 0)`, for a global aggregate over no rows), and `min`, `max`,
//! `bool_and`, `bool_or` and an integer `sum` the same function of the inner results.
//! A projection gives the outputs their names back. Aggregates with a `FILTER`, an
//! `ORDER BY`, more than one distinct argument, grouping sets, or any other function are
//! left alone, and so are those without a plain count (DataFusion's rule takes them).
//!
//! Sound: the inner groups of a group `g` partition its rows by the value of `x` (NULL
//! one more value), one inner group per distinct value. So `f(DISTINCT x)` (which, for
//! `count`, `sum`, `avg`, `min` and `max`, skips NULL as `f(x)` does) is `f` over the
//! inner groups' `x`; a count over `g` is the sum of its counts over the parts; `min`,
//! `max`, `bool_and` and `bool_or` of the parts' results (NULL for a part of NULLs, which
//! they skip) are those of `g`; an integer sum of the parts' sums is the sum (wrapping as
//! the sum does; a float or decimal sum is left alone: its rounding or type would
//! change). Each group key and argument is still evaluated once per row, so volatile
//! expressions see the rows they saw. Every group of a grouped aggregate has a part, so
//! its counts are never NULL; a global aggregate over no rows has no parts, and its count
//! is `coalesce(NULL, 0)` = 0, its other outputs NULL, as before.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, col};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::two_phase::{
    Combine, column, combine, combined, inner_key, named_as, plain, split, unfiltered,
};

/// The inner aggregate's column of the distinct argument.
const DISTINCT_ALIAS: &str = "__sluice_distinct";

/// Groups an aggregate with one distinct argument and plain counts twice (see the
/// module's documentation).
#[derive(Debug, Default)]
pub struct MixedDistinct;

/// How the outer aggregate computes an output from the inner one.
enum Outer {
    /// `f(DISTINCT x)`: `f` over the inner groups' `x`.
    Distinct,
    /// A plain aggregate: its parts combined (`bool_and` and `bool_or` too, here).
    Parts(Combine),
}

impl OptimizerRule for MixedDistinct {
    fn name(&self) -> &str {
        "sluice_mixed_distinct"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some(shape) = shape(aggregate) else {
            return Ok(Transformed::no(plan));
        };
        Ok(Transformed::yes(rewrite(aggregate, shape)?))
    }
}

/// What the rule needs of an aggregate it can rewrite: each output's function, its
/// arguments and how the outer aggregate computes it, and the distinct argument.
struct Shape<'a> {
    outputs: Vec<(&'a AggregateFunction, Outer)>,
    distinct: &'a Expr,
}

fn shape(aggregate: &Aggregate) -> Option<Shape<'_>> {
    if matches!(aggregate.group_expr.first(), Some(Expr::GroupingSet(_))) {
        return None;
    }
    let groups = aggregate.group_expr.len();
    let mut distinct: Option<&Expr> = None;
    let mut outputs = Vec::with_capacity(aggregate.aggr_expr.len());
    for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
        let f = unfiltered(expr)?;
        let name = f.func.name();
        let outer = if f.params.distinct {
            let [arg] = f.params.args.as_slice() else {
                return None;
            };
            if !matches!(name, "count" | "sum" | "avg" | "min" | "max") {
                return None;
            }
            match distinct {
                Some(d) if d != arg => return None,
                _ => distinct = Some(arg),
            }
            Outer::Distinct
        } else if matches!(name, "bool_and" | "bool_or") {
            Outer::Parts(Combine::Same)
        } else {
            Outer::Parts(combine(f, aggregate.schema.field(groups + i).data_type())?)
        };
        outputs.push((f, outer));
    }
    let counts = outputs
        .iter()
        .any(|(_, o)| matches!(o, Outer::Parts(Combine::Count)));
    Some(Shape {
        distinct: distinct?,
        outputs,
    })
    .filter(|_| counts)
}

fn rewrite(aggregate: &Aggregate, shape: Shape<'_>) -> Result<LogicalPlan> {
    // The inner aggregate's keys: the group keys, then the distinct argument.
    let (mut inner_groups, outer_groups): (Vec<Expr>, Vec<Expr>) = aggregate
        .group_expr
        .iter()
        .enumerate()
        .map(|(i, key)| inner_key(i, key))
        .unzip();
    inner_groups.push(shape.distinct.clone().alias(DISTINCT_ALIAS));
    let mut inner_aggregates = Vec::new();
    let mut outer_aggregates = Vec::with_capacity(shape.outputs.len());
    for (i, (f, outer)) in shape.outputs.iter().enumerate() {
        match outer {
            Outer::Distinct => {
                outer_aggregates.push(plain(Arc::clone(&f.func), vec![col(DISTINCT_ALIAS)]));
            }
            Outer::Parts(how) => split(i, f, how, &mut inner_aggregates, &mut outer_aggregates),
        }
    }
    let inner = Aggregate::try_new(Arc::clone(&aggregate.input), inner_groups, inner_aggregates)?;
    let outer = Aggregate::try_new(
        Arc::new(LogicalPlan::Aggregate(inner)),
        outer_groups,
        outer_aggregates,
    )?;
    // The group keys as the outer aggregate has them, then each output (one outer
    // aggregate each).
    let groups = aggregate.group_expr.len();
    let values = (0..aggregate.schema.fields().len())
        .map(
            |i| match i.checked_sub(groups).map(|o| &shape.outputs[o].1) {
                Some(Outer::Parts(how)) => combined(how, column(&outer, i)),
                _ => column(&outer, i),
            },
        )
        .collect();
    named_as(&aggregate.schema, values, outer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::optimizer::Optimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A session with DataFusion's rules, and `MixedDistinct` before its own distinct
    /// rewrite when `with_rule`, over `t(g, h, x, y)`: `rows` rows with NULLs in every
    /// column, `volatile` kept for the test of `random()`.
    async fn session(with_rule: bool, rows: usize) -> SessionContext {
        let mut rules = Optimizer::new().rules;
        if with_rule {
            let at = rules
                .iter()
                .position(|r| r.name() == "single_distinct_aggregation_to_group_by")
                .unwrap();
            rules.insert(at, Arc::new(MixedDistinct));
        }
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(3))
            .with_default_features()
            .with_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let g: Int64Array = (0..rows)
            .map(|i| (i % 11 != 0).then_some((i % 7) as i64))
            .collect();
        let h: StringArray = (0..rows)
            .map(|i| (i % 5 != 0).then(|| format!("h{}", i % 3)))
            .collect();
        let x: StringArray = (0..rows)
            .map(|i| (i % 4 != 0).then(|| format!("x{}", (i * 13) % 17)))
            .collect();
        let y: Int64Array = (0..rows)
            .map(|i| (i % 3 != 0).then_some((i * 7 % 23) as i64))
            .collect();
        let batch = RecordBatch::try_from_iter([
            ("g", Arc::new(g) as ArrayRef),
            ("h", Arc::new(h) as ArrayRef),
            ("x", Arc::new(x) as ArrayRef),
            ("y", Arc::new(y) as ArrayRef),
        ])
        .unwrap();
        let batches: Vec<RecordBatch> = (0..batch.num_rows())
            .step_by(50)
            .map(|i| batch.slice(i, 50.min(rows - i)))
            .collect();
        let parts: Vec<Vec<RecordBatch>> =
            batches.chunks(2).map(|c| c.to_vec()).collect::<Vec<_>>();
        let parts = if parts.is_empty() {
            vec![vec![]]
        } else {
            parts
        };
        let table = MemTable::try_new(batch.schema(), parts).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> (String, String, String) {
        let df = ctx.sql(sql).await.unwrap();
        let schema = format!("{:?}", df.schema().fields());
        let plan = format!(
            "{}",
            df.clone().into_optimized_plan().unwrap().display_indent()
        );
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (rows, schema, plan)
    }

    /// Each query answers the same rows, with the same names, types and nullability,
    /// with the rule and without; `rewritten` says whether the rule must apply.
    #[tokio::test]
    async fn answers_as_without_the_rule() {
        let cases = [
            (
                "SELECT g, count(*), count(DISTINCT x) FROM t GROUP BY g ORDER BY g",
                true,
            ),
            (
                "SELECT g, h, count(y) AS c, count(DISTINCT x) AS d, min(y), max(x), sum(y) \
                 FROM t GROUP BY g, h ORDER BY g, h",
                true,
            ),
            (
                "SELECT g % 3 AS k, count(*), sum(DISTINCT y), max(DISTINCT y) \
                 FROM t GROUP BY g % 3 ORDER BY k",
                true,
            ),
            // `avg` casts its argument: the distinct argument is an expression.
            (
                "SELECT h, count(*), avg(DISTINCT y) FROM t GROUP BY h ORDER BY h",
                true,
            ),
            // Two distinct arguments (`y`, and `avg`'s `CAST(y AS DOUBLE)`): left alone.
            (
                "SELECT h, count(*), sum(DISTINCT y), avg(DISTINCT y) FROM t GROUP BY h ORDER BY h",
                false,
            ),
            ("SELECT count(*), count(x), count(DISTINCT x) FROM t", true),
            (
                "SELECT count(*), count(DISTINCT x) FROM t WHERE false",
                true,
            ),
            (
                "SELECT g, count(*) FROM t GROUP BY g HAVING count(DISTINCT x) > 3 ORDER BY g",
                true,
            ),
            (
                "SELECT g, count(*), count(DISTINCT lower(x)), bool_or(y > 10), bool_and(y > 2) \
                 FROM t GROUP BY g ORDER BY g",
                true,
            ),
            // The distinct argument is a group key.
            (
                "SELECT g, count(*), count(DISTINCT g) FROM t GROUP BY g ORDER BY g",
                true,
            ),
            // Left alone: two distinct arguments, a filter, a float sum, no plain count.
            (
                "SELECT g, count(*), count(DISTINCT x), count(DISTINCT y) FROM t GROUP BY g ORDER BY g",
                false,
            ),
            (
                "SELECT g, count(*) FILTER (WHERE y > 3), count(DISTINCT x) FROM t GROUP BY g ORDER BY g",
                false,
            ),
            (
                "SELECT g, count(*), sum(CAST(y AS DOUBLE)), count(DISTINCT x) FROM t GROUP BY g ORDER BY g",
                false,
            ),
            (
                "SELECT g, sum(y), count(DISTINCT x) FROM t GROUP BY g ORDER BY g",
                false,
            ),
        ];
        for rows in [0, 1, 997] {
            let with = session(true, rows).await;
            let without = session(false, rows).await;
            for (sql, rewritten) in cases {
                let (a, a_schema, plan) = answer(&with, sql).await;
                let (b, b_schema, _) = answer(&without, sql).await;
                assert_eq!(a, b, "{sql} over {rows} rows");
                assert_eq!(a_schema, b_schema, "{sql}");
                assert_eq!(plan.contains(DISTINCT_ALIAS), rewritten, "{sql}:\n{plan}");
            }
        }
    }

    /// A volatile argument is evaluated once per row, as without the rule: each row's
    /// `random()` is a distinct value, so the distinct count is the row count.
    #[tokio::test]
    async fn a_volatile_argument_is_evaluated_once_per_row() {
        let ctx = session(true, 500).await;
        let (rows, _, plan) = answer(
            &ctx,
            "SELECT count(*) = count(DISTINCT random()) AS same, count(*) AS n FROM t",
        )
        .await;
        assert!(plan.contains(DISTINCT_ALIAS), "{plan}");
        assert!(rows.contains("| true | 500 |"), "{rows}");
    }
}
