//! Two logical optimizer rules for outer joins:
//! - [`PaddedRowsFiltered`]: an outer join whose NULL-padded rows a filter (or an inner
//!   join) above it always drops is an inner (or one-sided) join;
//! - [`OuterJoinsLast`]: an outer join that is a relation of a tree of inner joins joins
//!   after them, when they keep fewer of its preserved side's rows.
//!
//! ## `PaddedRowsFiltered`
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
//! and the join by replacing their columns with the expressions that compute them (and
//! through aliases).
//!
//! An inner join above is such a filter too: it drops the rows whose keys are NULL
//! (unless its keys match NULLs, `IS NOT DISTINCT FROM`) and those its `ON` condition
//! fails on, so each of its sides is taken as filtered by `key IS NOT NULL AND …` (the
//! conditions on that side's columns alone). TPC-DS q93 writes `store_sales LEFT JOIN
//! store_returns ON (…), reason WHERE sr_reason_sk = r_reason_sk`; DataFusion's
//! `eliminate_cross_join` makes `sr_reason_sk = r_reason_sk` an inner join's key before
//! `eliminate_outer_join` looks for a filter, and the outer join padded all 2.88 M rows
//! of `store_sales` that the inner join then dropped.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ExprSchema, NullEquality, Result, ScalarValue, internal_err};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, Filter, Join, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::push_down_filter::replace_cols_by_name;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::join_order::{Rewrite, rewrite_join_trees_in_session};

/// Joins an outer join that is a relation of an inner-join tree after the tree's inner
/// joins.
///
/// Why: TPC-DS q80 and q40 write `FROM store_sales LEFT JOIN store_returns ON (…),
/// date_dim, item, …` with a month of `date_dim`: the inner joins keep 1% of
/// `store_sales`, but they joined above the outer join, so every row of `store_sales`
/// was probed against the returns first (2.88 M rows at SF 1).
///
/// Why it is sound: `(A ⟕ B) ⋈ C = (A ⋈ C) ⟕ B` whenever the inner join's condition reads
/// no column of `B`. Each row of `A` meets `C`'s condition or not whatever `B` pads it
/// with, so the inner join repeats or drops rows of `A` alone, and the outer join then
/// pairs each kept row with the same rows of `B` (or pads it) as it did. A filter
/// between the outer join and the tree (q78's `sr_ticket_number IS NULL`, which
/// DataFusion cannot push below the join) moves up with it: filters commute with inner
/// joins. Not a volatile filter (it would be evaluated on other rows), nor one with a
/// subquery; not a `FULL` join, a `USING` join or a null-aware one.
///
/// How (`join_order::JoinTree::with_outer_joins_last`): the tree is flattened into its
/// relations as `JoinOrder` flattens it; a relation that is a `LEFT` (or `RIGHT`) join,
/// under column-only projections and such filters, whose padded side no other join
/// condition of the tree reads, is replaced by its preserved side, and the joins are
/// rebuilt (in the order `JoinOrder`, which runs next, would choose) with the outer join
/// and its filters above them, and the tree's columns in their order. Only when the
/// inner joins are estimated (by `JoinOrder`'s estimates) to put out at most the
/// preserved side's rows: joins that multiply rows would give the outer join more rows
/// above the tree than where it was written.
#[derive(Debug, Default)]
pub struct OuterJoinsLast;

impl OptimizerRule for OuterJoinsLast {
    fn name(&self) -> &str {
        "sluice_outer_joins_last"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        // The walk is `JoinOrder`'s: a rebuilt tree is not visited again.
        None
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        rewrite_join_trees_in_session(plan, config, Rewrite::OuterJoinsLast)
    }
}

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
        match plan {
            LogicalPlan::Filter(filter) => {
                match without_padding(&filter.input, filter.predicate.clone())? {
                    Some(input) => Filter::try_new(filter.predicate, Arc::new(input))
                        .map(|f| Transformed::yes(LogicalPlan::Filter(f))),
                    None => Ok(Transformed::no(LogicalPlan::Filter(filter))),
                }
            }
            // An inner join drops the rows its keys are NULL in (not with `IS NOT
            // DISTINCT FROM` keys) and those its filter does not hold on: for each side,
            // the filter `key IS NOT NULL AND …` on that side's columns (q93's
            // `store_sales LEFT JOIN store_returns …, reason WHERE sr_reason_sk =
            // r_reason_sk`, which DataFusion's `eliminate_cross_join` makes an inner
            // join's key before `eliminate_outer_join` looks for a filter).
            LogicalPlan::Join(join)
                if join.join_type == JoinType::Inner
                    && join.null_equality == NullEquality::NullEqualsNothing =>
            {
                // `side` without padding under the filter the join puts on it.
                let unpadded = |side: &Arc<LogicalPlan>, keys: Vec<&Expr>| {
                    let schema = side.schema();
                    let filters = join.filter.iter().flat_map(split_conjunction).filter(|c| {
                        c.column_refs()
                            .iter()
                            .all(|column| schema.has_column(column))
                    });
                    let conjuncts: Vec<Expr> = keys
                        .into_iter()
                        .map(|k| k.clone().is_not_null())
                        .chain(filters.cloned())
                        .collect();
                    match conjunction(conjuncts) {
                        Some(predicate) => without_padding(side, predicate),
                        None => Ok(None),
                    }
                };
                let new_left = unpadded(&join.left, join.on.iter().map(|(l, _)| l).collect())?;
                let new_right = unpadded(&join.right, join.on.iter().map(|(_, r)| r).collect())?;
                if new_left.is_none() && new_right.is_none() {
                    return Ok(Transformed::no(LogicalPlan::Join(join)));
                }
                // Each side's schema is kept, so the join's is too.
                Ok(Transformed::yes(LogicalPlan::Join(Join {
                    left: new_left.map_or(join.left.clone(), Arc::new),
                    right: new_right.map_or(join.right.clone(), Arc::new),
                    ..join
                })))
            }
            plan => Ok(Transformed::no(plan)),
        }
    }
}

/// `below` with the outer join it is (through projections and aliases) made inner or
/// one-sided, if `predicate`, a filter over `below`'s output, drops every row it pads;
/// `None` if it does not.
fn without_padding(below: &Arc<LogicalPlan>, predicate: Expr) -> Result<Option<LogicalPlan>> {
    // Down through projections and aliases to a join, the predicate rewritten over
    // each one's input (for the analysis only: the filter stays as it is).
    let mut predicate = predicate;
    let mut above: Vec<LogicalPlan> = Vec::new();
    let mut below = below.clone();
    let join = loop {
        match below.as_ref() {
            LogicalPlan::Projection(p) => {
                predicate = inline_projection(predicate, p)?;
                above.push(below.as_ref().clone());
                below = p.input.clone();
            }
            LogicalPlan::SubqueryAlias(alias) => {
                let inner: HashMap<String, Expr> = alias
                    .schema
                    .columns()
                    .into_iter()
                    .zip(alias.input.schema().columns())
                    .map(|(outer, inner)| (outer.flat_name(), Expr::Column(inner)))
                    .collect();
                predicate = replace_cols_by_name(predicate, &inner)?;
                above.push(below.as_ref().clone());
                below = alias.input.clone();
            }
            LogicalPlan::Join(join) if join.join_type.is_outer() => break join.clone(),
            _ => return Ok(None),
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
        return Ok(None);
    }
    // The join's schema is kept (its padded side's columns still called nullable),
    // as DataFusion's rule keeps it: the projections and aliases above it are reused
    // as they are.
    let mut rebuilt = LogicalPlan::Join(Join { join_type, ..join });
    for node in above.into_iter().rev() {
        rebuilt = match node {
            LogicalPlan::Projection(mut p) => {
                p.input = Arc::new(rebuilt);
                LogicalPlan::Projection(p)
            }
            LogicalPlan::SubqueryAlias(mut alias) => {
                alias.input = Arc::new(rebuilt);
                LogicalPlan::SubqueryAlias(alias)
            }
            other => return internal_err!("only projections and aliases are passed: {other}"),
        };
    }
    Ok(Some(rebuilt))
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
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A session with Sluice's rules, and one without this one, over two small tables
    /// (`b` misses some of `a`'s keys and has NULL values).
    async fn sessions() -> (SessionContext, SessionContext) {
        let build =
            |without| crate::optimizer::settings::rules_session(SessionConfig::new(), without);
        let with = build(None);
        let without = build(Some("sluice_padded_rows_filtered"));
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

    /// q93's shape: the padded side's column is the key of an inner join above.
    #[tokio::test]
    async fn an_inner_join_on_a_padded_column_makes_the_join_inner() {
        let sql = "SELECT a.k, b.x, c.k FROM a LEFT JOIN b ON a.k = b.k, a AS c \
                   WHERE b.x = c.k AND c.g = 1 ORDER BY 1";
        assert_eq!(
            join_types(sql).await,
            vec![JoinType::Inner, JoinType::Inner]
        );
        // Through a projection, the join written with `JOIN … ON`.
        let sql = "SELECT t.k, c.k FROM (SELECT a.k, b.x + 1 AS y FROM a LEFT JOIN b \
                   ON a.k = b.k) t JOIN a AS c ON t.y = c.k ORDER BY 1";
        assert_eq!(
            join_types(sql).await,
            vec![JoinType::Inner, JoinType::Inner]
        );
        // A condition of the inner join's `ON` on the padded side alone.
        let sql = "SELECT a.k, c.k FROM a LEFT JOIN b ON a.k = b.k JOIN a AS c \
                   ON a.g = c.g AND coalesce(b.x, 0) > 2 ORDER BY 1, 2";
        assert_eq!(
            join_types(sql).await,
            vec![JoinType::Inner, JoinType::Inner]
        );
    }

    #[tokio::test]
    async fn inner_joins_a_padded_row_can_meet_keep_the_join_outer() {
        for sql in [
            // The key is the preserved side's.
            "SELECT a.k, b.x, c.k FROM a LEFT JOIN b ON a.k = b.k JOIN a AS c ON a.g = c.g \
             ORDER BY 1, 3",
            // A padded row's key is not NULL.
            "SELECT a.k, b.x, c.k FROM a LEFT JOIN b ON a.k = b.k JOIN a AS c \
             ON coalesce(b.x, 0) = c.g ORDER BY 1, 3",
            // NULL keys match: `IS NOT DISTINCT FROM`.
            "SELECT a.k, b.x, c.k FROM a LEFT JOIN b ON a.k = b.k JOIN a AS c \
             ON b.x IS NOT DISTINCT FROM c.g ORDER BY 1, 3",
        ] {
            let types = join_types(sql).await;
            assert!(types.contains(&JoinType::Left), "{sql}: {types:?}");
        }
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

    /// An outer join among an inner-join tree's relations joins after the inner joins
    /// when no other condition reads its padded side and the inner joins keep fewer
    /// rows; the rows stay the written ones (NULL keys, a ticket returned twice,
    /// conditions in `ON`, a filter on the padded side above the join).
    #[tokio::test]
    async fn outer_joins_join_after_the_inner_joins() {
        let n = 3_000i64;
        let sales = crate::optimizer::join_order::tests::rows_table(
            &[
                (
                    "s_day",
                    (0..n).map(|i| (i % 17 != 0).then_some(i % 300)).collect(),
                ),
                ("s_item", (0..n).map(|i| Some(i % 40)).collect()),
                ("s_ticket", (0..n).map(Some).collect()),
                ("s_v", (0..n).map(|i| Some(i % 23)).collect()),
            ],
            None,
        );
        let returned = || (0..n).step_by(7).chain([0]);
        let returns = crate::optimizer::join_order::tests::rows_table(
            &[
                (
                    "r_item",
                    returned()
                        .map(|i| (i % 5 != 0 || i == 0).then_some(i % 40))
                        .collect(),
                ),
                ("r_ticket", returned().map(Some).collect()),
                (
                    "r_amt",
                    returned().map(|i| (i % 3 != 0).then_some(i % 11)).collect(),
                ),
            ],
            None,
        );
        let days = crate::optimizer::join_order::tests::rows_table(
            &[
                ("d_id", (0..300).map(Some).collect()),
                ("d_month", (0..300).map(|i| Some(i / 30)).collect()),
            ],
            None,
        );
        let items = crate::optimizer::join_order::tests::rows_table(
            &[
                ("i_id", (0..40).map(Some).collect()),
                ("i_cat", (0..40).map(|i| Some(i % 4)).collect()),
            ],
            None,
        );
        // Ten rows per item: joined to it, `sales` grows tenfold.
        let many = crate::optimizer::join_order::tests::rows_table(
            &[("m_item", (0..400).map(|i| Some(i % 40)).collect())],
            None,
        );
        let cases = [
            (
                "SELECT i_cat, count(*) AS n, count(r_amt) AS r, sum(r_amt) AS a, sum(s_v) AS v \
                 FROM sales LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket, days, items \
                 WHERE s_day = d_id AND d_month = 3 AND s_item = i_id GROUP BY i_cat",
                true,
            ),
            (
                "SELECT i_cat, count(*) AS n, count(r_amt) AS r, sum(r_amt) AS a \
                 FROM returns RIGHT JOIN sales ON s_item = r_item AND s_ticket = r_ticket \
                 JOIN days ON s_day = d_id JOIN items ON s_item = i_id \
                 WHERE d_month = 3 GROUP BY i_cat",
                true,
            ),
            (
                "SELECT count(*) AS n, sum(s_v) AS v FROM sales \
                 LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket \
                 JOIN days ON s_day = d_id WHERE r_ticket IS NULL AND d_month = 2",
                true,
            ),
            (
                "SELECT s_ticket, r_amt FROM sales \
                 LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket AND r_amt > 4, days \
                 WHERE s_day = d_id AND d_month = 3",
                true,
            ),
            // Two outer joins: the one whose padded side a condition of the tree reads
            // stays, the other moves.
            (
                "SELECT count(*) AS n, count(r_amt) AS r, count(m_item) AS m FROM sales \
                 LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket, \
                 days LEFT JOIN many ON d_month = m_item \
                 WHERE s_day = d_id AND d_month IN (3, 4) AND (m_item IS NULL OR m_item < s_v)",
                true,
            ),
            // Left where they are: a condition of the tree reads the padded side; the
            // inner joins grow the rows.
            (
                "SELECT count(*) AS n, count(r_amt) AS r FROM sales \
                 LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket, days \
                 WHERE s_day = d_id AND d_month = 3 AND (r_amt IS NULL OR r_amt > d_month)",
                false,
            ),
            (
                "SELECT count(*) AS n, count(r_amt) AS r FROM sales \
                 LEFT JOIN returns ON s_item = r_item AND s_ticket = r_ticket, many, days \
                 WHERE s_item = m_item AND s_day = d_id",
                false,
            ),
        ];
        // All of Sluice's rules, all but this one, and DataFusion's alone.
        let build =
            |without| crate::optimizer::settings::rules_session(SessionConfig::new(), without);
        let with_rule = build(None);
        let without = build(Some("sluice_outer_joins_last"));
        let datafusion = SessionContext::new();
        for ctx in [&with_rule, &without, &datafusion] {
            ctx.register_table("sales", sales.clone()).unwrap();
            ctx.register_table("returns", returns.clone()).unwrap();
            ctx.register_table("days", days.clone()).unwrap();
            ctx.register_table("items", items.clone()).unwrap();
            ctx.register_table("many", many.clone()).unwrap();
        }
        // Whether an outer join is above every inner join.
        let outer_last = |plan: &LogicalPlan| {
            let text = plan.display_indent().to_string();
            let line = |what: &str| text.lines().position(|l| l.trim_start().starts_with(what));
            let outer = line("Left Join").or_else(|| line("Right Join"));
            matches!((outer, line("Inner Join")), (Some(o), Some(i)) if o < i)
        };
        for (sql, moved) in cases {
            let ordered = crate::optimizer::join_order::tests::optimized(&with_rule, sql).await;
            let written = crate::optimizer::join_order::tests::optimized(&without, sql).await;
            assert!(!outer_last(&written), "{sql}: {}", written.display_indent());
            assert_eq!(
                outer_last(&ordered),
                moved,
                "{sql}: {}",
                ordered.display_indent()
            );
            let rows = |ctx: &SessionContext| {
                let ctx = ctx.clone();
                async move {
                    crate::testing::sorted_lines(
                        &ctx.sql(sql).await.unwrap().collect().await.unwrap(),
                    )
                }
            };
            let expected = rows(&datafusion).await;
            assert!(expected.len() > 4, "{sql}: {expected:?}");
            assert_eq!(rows(&with_rule).await, expected, "{sql}");
            assert_eq!(rows(&without).await, expected, "{sql}");
        }
    }
}
