//! [`FilterOrder`], a physical optimizer rule: the conditions of a filter evaluated
//! cheapest and most selective first.
//!
//! Why: DataFusion evaluates `a AND b AND c` left to right, and once the conditions so
//! far keep at most a fifth of a batch's rows it evaluates the next ones on those rows
//! only (its "pre-selection"). So the order the query wrote them in decides how many rows
//! each condition costs. TPC-H q12 writes `l_shipmode IN ('MAIL', 'SHIP')` (string
//! comparisons, 29% of rows) and two column-to-column date comparisons before the one
//! year of `l_receiptdate` (14%): every condition ran on all 6 M rows at SF 1.
//!
//! How: the conjuncts of each `FilterExec` are grouped by the one column they read (the
//! two bounds of a range count as one condition, with their joint selectivity), each
//! group estimated by DataFusion's interval analysis over the input's statistics, and
//! put in ascending order of cost per row over the share of rows it removes, except
//! that the cheapest condition keeping a fifth of the rows or fewer goes first: until
//! then, every condition runs on every row. Only
//! conditions that cannot fail are moved (comparisons, `IN`, `LIKE`, `IS NULL` of
//! columns and values): a division that a condition before it guards stays where it is.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr, Literal, NotExpr,
};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr::{AnalysisContext, PhysicalExpr, analyze};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The share of a batch's rows the conditions so far may keep at most for DataFusion to
/// evaluate the next ones on those rows only (`PRE_SELECTION_THRESHOLD` in its
/// `BinaryExpr`).
const PRE_SELECTION: f64 = 0.2;

/// The share of rows a condition keeps when interval analysis cannot say, for ranking
/// only: an even chance, not the session's `default_filter_selectivity` (5%) that
/// `JoinOrder` estimates rows with (`optimizer::unknown_selectivity`). The two answer
/// different questions. A join's build side is better guessed small: a filter that
/// keeps more than guessed costs a larger hash table, one that keeps less a lost
/// reordering. Here a guess of 5% would call every condition nothing estimates (a
/// `LIKE`, `a < b`) selective enough to go first (`PRE_SELECTION`) and to be run on
/// every row ahead of a range that interval analysis knows is selective (q12's column
/// comparisons, which keep half of `lineitem` and more, could go ahead of its one year
/// of `l_receiptdate`, 14%); at an even chance such a condition is ranked by its cost
/// and goes after the conditions known to be selective.
pub(crate) const UNKNOWN_SELECTIVITY: f64 = 0.5;

/// Orders the conditions of each filter (see the module's documentation).
#[derive(Debug, Default)]
pub struct FilterOrder;

impl PhysicalOptimizerRule for FilterOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            match ordered(filter) {
                Some(predicate) => {
                    let reordered = FilterExecBuilder::from(filter)
                        .with_predicate(predicate)
                        .build()?;
                    Ok(Transformed::yes(
                        Arc::new(reordered) as Arc<dyn ExecutionPlan>
                    ))
                }
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_filter_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A condition of a filter: the conjuncts that read one column (or one conjunct).
struct Condition {
    conjuncts: Vec<Arc<dyn PhysicalExpr>>,
    /// Cost per row over the share of rows it removes: the lower, the earlier.
    rank: f64,
    cost: f64,
    selectivity: f64,
}

/// The filter's predicate in the better order, or `None` to keep it as it is.
fn ordered(filter: &FilterExec) -> Option<Arc<dyn PhysicalExpr>> {
    let conjuncts: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(filter.predicate())
        .into_iter()
        .cloned()
        .collect();
    if conjuncts.len() < 2 || !conjuncts.iter().all(cannot_fail) {
        return None;
    }
    let input = filter.input();
    let schema = input.schema();
    let statistics = StatisticsContext::new()
        .compute(input.as_ref(), &StatisticsArgs::new())
        .ok()?;

    // Group by the one column a conjunct reads, in the written order.
    let mut conditions: Vec<(Option<usize>, Vec<Arc<dyn PhysicalExpr>>)> = Vec::new();
    for conjunct in conjuncts.iter().cloned() {
        let columns: HashSet<usize> = columns_of(&conjunct);
        let column = (columns.len() == 1).then(|| *columns.iter().next().expect("one"));
        match conditions
            .iter_mut()
            .find(|(c, _)| column.is_some() && *c == column)
        {
            Some((_, group)) => group.push(conjunct),
            None => conditions.push((column, vec![conjunct])),
        }
    }
    let analyzed = |expr: &Arc<dyn PhysicalExpr>| -> Option<f64> {
        let context =
            AnalysisContext::try_from_statistics(&schema, &statistics.column_statistics).ok()?;
        analyze(expr, context, &schema).ok()?.selectivity
    };
    let mut ranked: Vec<Condition> = conditions
        .into_iter()
        .map(|(_, conjuncts)| {
            let all = conjunction(conjuncts.iter().cloned());
            let selectivity = analyzed(&all)
                .unwrap_or(UNKNOWN_SELECTIVITY)
                .clamp(0.0, 1.0);
            let cost: f64 = conjuncts.iter().map(|c| cost(c, &schema)).sum();
            // A condition that keeps every row goes last, whatever it costs.
            let rank = cost / (1.0 - selectivity).max(1e-6);
            Condition {
                conjuncts,
                rank,
                cost,
                selectivity,
            }
        })
        .collect();
    // Stable: equal ranks keep the written order.
    ranked.sort_by(|a, b| a.rank.total_cmp(&b.rank));
    // The conditions before pre-selection starts run on every row: if one condition
    // alone gets there, the cheapest such goes first, and the rest run on its rows.
    if let Some(first) = ranked
        .iter()
        .enumerate()
        .filter(|(_, c)| c.selectivity <= PRE_SELECTION)
        .min_by(|(_, a), (_, b)| a.cost.total_cmp(&b.cost))
        .map(|(i, _)| i)
    {
        let condition = ranked.remove(first);
        ranked.insert(0, condition);
    }
    let reordered: Vec<Arc<dyn PhysicalExpr>> =
        ranked.into_iter().flat_map(|c| c.conjuncts).collect();
    let unchanged = reordered
        .iter()
        .zip(&conjuncts)
        .all(|(a, b)| a.as_ref() == b.as_ref());
    (!unchanged).then(|| conjunction(reordered))
}

/// Whether evaluating `expr` cannot raise an error (no arithmetic, cast or function), so
/// that it may run before a condition written ahead of it.
pub(crate) fn cannot_fail(expr: &Arc<dyn PhysicalExpr>) -> bool {
    if expr.is::<Column>() || expr.is::<Literal>() {
        return true;
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        let comparison = matches!(
            binary.op(),
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::And
                | Operator::Or
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom
                | Operator::LikeMatch
                | Operator::ILikeMatch
                | Operator::NotLikeMatch
                | Operator::NotILikeMatch
        );
        return comparison && cannot_fail(binary.left()) && cannot_fail(binary.right());
    }
    if expr.is::<InListExpr>()
        || expr.is::<LikeExpr>()
        || expr.is::<super::like_segments::SegmentedLike>()
        || expr.is::<super::view_equality::ViewEquals>()
        || expr.is::<IsNullExpr>()
        || expr.is::<IsNotNullExpr>()
        || expr.is::<NotExpr>()
    {
        return expr.children().into_iter().all(cannot_fail);
    }
    false
}

/// The columns (by index in the filter's input) an expression reads.
fn columns_of(expr: &Arc<dyn PhysicalExpr>) -> HashSet<usize> {
    collect_columns(expr).iter().map(|c| c.index()).collect()
}

/// A condition's relative cost per row: a comparison of fixed-width values 1, of strings
/// 3, a `LIKE` 10 (a substring search), an `IN` list 2 (strings 4), each column read
/// beyond the first 0.5.
fn cost(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> f64 {
    let is_string = |e: &Arc<dyn PhysicalExpr>| {
        e.data_type(schema).is_ok_and(|t| {
            matches!(
                t,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Binary
            )
        })
    };
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        return match binary.op() {
            Operator::And | Operator::Or => {
                cost(binary.left(), schema) + cost(binary.right(), schema)
            }
            Operator::LikeMatch
            | Operator::ILikeMatch
            | Operator::NotLikeMatch
            | Operator::NotILikeMatch => 10.0,
            _ if is_string(binary.left()) || is_string(binary.right()) => 3.0,
            _ if columns_of(expr).len() > 1 => 1.5,
            _ => 1.0,
        };
    }
    if expr.is::<LikeExpr>() {
        return 10.0;
    }
    if let Some(in_list) = expr.downcast_ref::<InListExpr>() {
        return if is_string(in_list.expr()) { 4.0 } else { 2.0 };
    }
    expr.children()
        .into_iter()
        .map(|c| cost(c, schema))
        .sum::<f64>()
        .max(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    fn filter_over_rows(predicate: impl Fn(&Schema) -> Arc<dyn PhysicalExpr>) -> FilterExec {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, false),
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["x", "y", "z"])) as ArrayRef,
                Arc::new(Int64Array::from(vec![1, 6, 9])),
                Arc::new(Int64Array::from(vec![3, 8, 20])),
            ],
        )
        .unwrap();
        let input = MemorySourceConfig::try_new_exec(&[vec![batch]], schema.clone(), None).unwrap();
        FilterExec::try_new(predicate(&schema), input).unwrap()
    }

    fn predicate_text(expr: &Arc<dyn PhysicalExpr>) -> String {
        format!("{expr}")
    }

    #[test]
    fn cheaper_conditions_first_and_fallible_ones_stay() {
        // A string comparison written before an integer one: the integer one goes first
        // (neither's selectivity is known here, so the cost decides).
        let filter = filter_over_rows(|schema| {
            let s = binary(col("s", schema).unwrap(), Operator::Eq, lit("x"), schema).unwrap();
            let a = binary(col("a", schema).unwrap(), Operator::Gt, lit(5i64), schema).unwrap();
            binary(s, Operator::And, a, schema).unwrap()
        });
        let reordered = ordered(&filter).expect("reordered");
        assert_eq!(predicate_text(&reordered), "a@1 > 5 AND s@0 = x");
        // The same filter with a division: it could fail where the condition before it
        // guards it, so nothing moves.
        let filter = filter_over_rows(|schema| {
            let s = binary(col("s", schema).unwrap(), Operator::Eq, lit("x"), schema).unwrap();
            let ratio = binary(
                col("b", schema).unwrap(),
                Operator::Divide,
                col("a", schema).unwrap(),
                schema,
            )
            .unwrap();
            let a = binary(ratio, Operator::Gt, lit(1i64), schema).unwrap();
            binary(s, Operator::And, a, schema).unwrap()
        });
        assert!(ordered(&filter).is_none());
        // Already in order: left as it is.
        let filter = filter_over_rows(|schema| {
            let a = binary(col("a", schema).unwrap(), Operator::Gt, lit(5i64), schema).unwrap();
            let s = binary(col("s", schema).unwrap(), Operator::Eq, lit("x"), schema).unwrap();
            binary(a, Operator::And, s, schema).unwrap()
        });
        assert!(ordered(&filter).is_none());
    }
}
