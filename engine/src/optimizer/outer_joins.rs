//! [`PaddedRowsFiltered`], a logical optimizer rule: an outer join whose NULL-padded
//! rows a filter above it always drops is an inner (or one-sided) join.
//!
//! Why: TPC-DS q78 joins three channels' aggregates with `LEFT JOIN`s and keeps only
//! `WHERE coalesce(ws_qty, 0) > 0 AND coalesce(cs_qty, 0) > 0`: a padded row's `ws_qty`
//! is NULL, `coalesce(NULL, 0) > 0` is false, so no padded row survives and the joins
//! are inner. DataFusion's `eliminate_outer_join` recognizes a condition that rejects
//! NULLs by its shape (comparisons, `IS NOT NULL`, strict functions), and `coalesce` is
//! none of them, so the joins stay outer: no condition moves across them (the year that
//! `ss_sold_year = 2000` fixes is not inferred for the other channels), and the joins
//! keep the order they are written in.
//!
//! How: the filter's conjuncts are evaluated on a padded row: each column of the padded
//! side replaced by a NULL of its type, the conjunct simplified (constant folding) by
//! DataFusion's simplifier. If one folds to `false` or NULL with no column left, every
//! padded row fails it, whatever the other side's values, and the filter drops them
//! all: the join needs not pad that side (`LEFT` becomes `INNER`, `FULL` becomes
//! `LEFT`, `RIGHT` or `INNER`). This is sound as far as the simplifier is (it is what
//! DataFusion plans with), and it decides nothing when folding does not reach a
//! constant: a volatile function, a subquery, a condition that also reads the other
//! side. As DataFusion's rule does, it looks through projections between the filter
//! and the join by replacing their columns with the expressions that compute them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Filter, Join, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::push_down_filter::replace_cols_by_name;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// Turns an outer join into an inner or one-sided one when a filter above it drops
/// every row it pads (see the module's documentation).
#[derive(Debug, Default)]
pub struct PaddedRowsFiltered;

impl OptimizerRule for PaddedRowsFiltered {
    fn name(&self) -> &str {
        "sluice_padded_rows_filtered"
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
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        // Down through projections to a join, the predicate rewritten over each
        // projection's input (for the analysis only: the filter stays as it is).
        let mut predicate = filter.predicate.clone();
        let mut projections: Vec<Projection> = Vec::new();
        let mut below = filter.input.clone();
        let join = loop {
            match below.as_ref() {
                LogicalPlan::Projection(p) => {
                    predicate = inline_projection(predicate, p)?;
                    projections.push(p.clone());
                    below = p.input.clone();
                }
                LogicalPlan::Join(join) if join.join_type.is_outer() => break join.clone(),
                _ => return Ok(Transformed::no(LogicalPlan::Filter(filter))),
            }
        };
        let left_dropped = drops_padded_rows(&predicate, &join, join.left.schema())?;
        let right_dropped = drops_padded_rows(&predicate, &join, join.right.schema())?;
        let join_type = match (join.join_type, left_dropped, right_dropped) {
            (JoinType::Left, _, true) | (JoinType::Right, true, _) => JoinType::Inner,
            (JoinType::Full, true, true) => JoinType::Inner,
            (JoinType::Full, true, false) => JoinType::Left,
            (JoinType::Full, false, true) => JoinType::Right,
            (unchanged, _, _) => unchanged,
        };
        if join_type == join.join_type {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        // The join's schema is kept (its padded side's columns still called nullable),
        // as DataFusion's rule keeps it: the projections above it are reused as they are.
        let mut rebuilt = LogicalPlan::Join(Join { join_type, ..join });
        for mut p in projections.into_iter().rev() {
            p.input = Arc::new(rebuilt);
            rebuilt = LogicalPlan::Projection(p);
        }
        Filter::try_new(filter.predicate, Arc::new(rebuilt))
            .map(|f| Transformed::yes(LogicalPlan::Filter(f)))
    }
}

/// Whether some conjunct of `predicate` (over `join`'s output) is false or NULL on
/// every row padded on the side whose schema is `side`: with that side's columns
/// NULL, it folds to `false` or NULL.
fn drops_padded_rows(predicate: &Expr, join: &Join, side: &DFSchema) -> Result<bool> {
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(join.schema.clone())
            .build(),
    );
    for conjunct in split_conjunction(predicate) {
        if !conjunct.column_refs().iter().any(|c| side.has_column(c)) {
            continue;
        }
        let padded = conjunct.clone().transform(|e| {
            Ok(match e {
                Expr::Column(c) if side.has_column(&c) => {
                    let field = side.field_from_column(&c)?;
                    Transformed::yes(Expr::Literal(
                        ScalarValue::try_from(field.data_type())?,
                        None,
                    ))
                }
                other => Transformed::no(other),
            })
        })?;
        // A conjunct the simplifier cannot fold (or fails on) decides nothing.
        let Ok(folded) = simplifier.simplify(padded.data) else {
            continue;
        };
        if matches!(
            folded,
            Expr::Literal(
                ScalarValue::Boolean(Some(false)) | ScalarValue::Boolean(None),
                _
            ) | Expr::Literal(ScalarValue::Null, _)
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `predicate` over `projection`'s input: each of its output columns replaced by the
/// expression that computes it.
fn inline_projection(predicate: Expr, projection: &Projection) -> Result<Expr> {
    let computed: HashMap<String, Expr> = projection
        .schema
        .columns()
        .into_iter()
        .zip(projection.expr.iter())
        .map(|(column, expr)| (column.flat_name(), expr.clone().unalias()))
        .collect();
    replace_cols_by_name(predicate, &computed)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// A session with Sluice's rules, and one without this one, over two small tables
    /// (`b` misses some of `a`'s keys and has NULL values).
    async fn sessions() -> (SessionContext, SessionContext) {
        let build = |skipped: &[String]| {
            let builder = datafusion::execution::SessionStateBuilder::new().with_default_features();
            SessionContext::new_with_state(
                crate::optimizer::settings::with_sluice_rules(builder, skipped).build(),
            )
        };
        let with = build(&[]);
        let without = build(&["sluice_padded_rows_filtered".to_string()]);
        for ctx in [&with, &without] {
            for sql in [
                "CREATE TABLE a AS SELECT v AS k, v % 3 AS g FROM generate_series(1, 30) AS s(v)",
                "CREATE TABLE b AS SELECT v * 2 AS k, CASE WHEN v % 4 = 0 THEN NULL ELSE v END AS x \
                 FROM generate_series(1, 10) AS s(v)",
            ] {
                ctx.sql(sql).await.unwrap().collect().await.unwrap();
            }
        }
        (with, without)
    }

    /// The join types of `sql`'s optimized plan, and that both sessions answer alike.
    async fn join_types(sql: &str) -> Vec<JoinType> {
        let (with, without) = sessions().await;
        let answer = |ctx: SessionContext| async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            pretty_format_batches(&batches).unwrap().to_string()
        };
        assert_eq!(answer(with.clone()).await, answer(without).await, "{sql}");
        let plan = with.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let mut types = Vec::new();
        plan.apply(|p| {
            if let LogicalPlan::Join(j) = p {
                types.push(j.join_type);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        types
    }

    #[tokio::test]
    async fn a_condition_false_on_padded_rows_makes_the_join_inner() {
        // q78: coalesce of a padded column to 0, then `> 0`.
        let sql = "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k \
                   WHERE coalesce(b.x, 0) > 0 ORDER BY 1";
        assert_eq!(join_types(sql).await, vec![JoinType::Inner]);
        // Through a projection (a derived table computing the coalesce).
        let sql = "SELECT k, y FROM (SELECT a.k, coalesce(b.x, 0) AS y FROM a LEFT JOIN b \
                   ON a.k = b.k) t WHERE y > 1 ORDER BY 1";
        assert_eq!(join_types(sql).await, vec![JoinType::Inner]);
        // A full join filtered on one side's padded rows keeps the other's.
        let sql = "SELECT a.k, b.k, b.x FROM a FULL JOIN b ON a.k = b.k \
                   WHERE coalesce(a.g, -1) >= 0 ORDER BY 1, 2";
        assert_eq!(join_types(sql).await, vec![JoinType::Left]);
    }

    #[tokio::test]
    async fn conditions_a_padded_row_can_meet_keep_the_join_outer() {
        // `coalesce(b.x, 0) = 0` holds on padded rows (and on b's own NULLs).
        for sql in [
            "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k WHERE coalesce(b.x, 0) = 0 ORDER BY 1",
            "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k WHERE b.x IS NULL ORDER BY 1",
            // Reads the preserved side too: a padded row may pass on a.g's value.
            "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k \
             WHERE coalesce(b.x, a.g) > 0 ORDER BY 1",
            // An `OR` one branch of which a padded row meets.
            "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k \
             WHERE coalesce(b.x, 0) > 0 OR a.g = 1 ORDER BY 1",
            // Volatile: not folded, so nothing is concluded.
            "SELECT a.k, b.x FROM a LEFT JOIN b ON a.k = b.k \
             WHERE coalesce(b.x, 0) + random() > 2 ORDER BY 1",
        ] {
            assert_eq!(join_types(sql).await, vec![JoinType::Left], "{sql}");
        }
    }
}
