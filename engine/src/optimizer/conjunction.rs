//! [`FilterConjunction`], a physical optimizer rule: a filter's `a AND b AND …` evaluated
//! by [`Conjunction`], which computes cheap comparisons over whole batches and runs the
//! costly conditions on the rows still in play only.
//!
//! Why: DataFusion evaluates `a AND b` as a `BinaryExpr`: once `a` keeps at most a fifth
//! of a batch, it copies the *whole batch* down to those rows (every column, not just
//! the ones `b` reads), evaluates `b` on them, and writes the result back bit by bit.
//! In a chain of comparisons each step past the first fifth repeats that. TPC-H q06's
//! five comparisons of `lineitem` cost 71 ms of CPU at SF 1 that way, q12's 65 ms and
//! q19's 146 ms, where comparing every row directly takes a few ms.
//!
//! The same holds inside an `OR`: q91's and q85's `(cd_marital_status = 'M' AND
//! cd_education_status = 'Unknown') OR (… = 'W' AND … = 'Advanced Degree')`, one
//! condition over 1.7 M `customer_demographics` rows, copied the batch for each `AND`.
//!
//! How: the filter's conjuncts (after `FilterOrder` has ordered them) are split in two.
//! *Cheap* ones compare columns of fixed-width types (numbers, decimals, dates, times)
//! to each other or to literals, test them for null, compare a string column's views
//! with literals (`view_equality`), or combine such tests with `AND`, `OR` and `NOT`: they are evaluated over the whole batch, each `AND`/`OR` of them from
//! both sides' bitmaps, with no row counting or copying; they go first. The others
//! (other string tests, `LIKE`, `IN` lists of numbers, functions, dynamic filters) follow in their order; each
//! is evaluated over the whole batch while the conditions so far keep more than a fifth
//! of it, and otherwise on a copy of just the columns it reads, at just the rows still
//! kept, its answers put back in place. A condition that can fail (a division, a cast)
//! is always evaluated on the kept rows only, so it never sees a row that a condition
//! before it ruled out. Results are SQL's three-valued `AND`, so the filter keeps the
//! same rows. `explain` shows the conjuncts in the order they are evaluated.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::{and_kleene, or_kleene};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, DynamicFilterPhysicalExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};
use datafusion::physical_expr::utils::{collect_columns, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// The share of a batch the conditions so far may keep at most for a costly condition
/// to be evaluated on those rows only (DataFusion's `PRE_SELECTION_THRESHOLD`): above
/// it, copying the rows out costs more than the condition saves.
const COMPACT_BELOW: f64 = 0.2;

/// Evaluates each filter's conjunction with [`Conjunction`] (see the module's
/// documentation).
#[derive(Debug, Default)]
pub struct FilterConjunction;

impl PhysicalOptimizerRule for FilterConjunction {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let Some(conjunction) = Conjunction::try_new(filter.predicate(), &schema) else {
                return Ok(Transformed::no(node));
            };
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(Arc::new(conjunction))
                .build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_filter_conjunction"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// How a conjunct is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Over the whole batch, always (see `is_cheap`).
    Cheap,
    /// Over the whole batch while the rows kept so far are many, else on those rows.
    Costly,
    /// On the rows kept so far only: it may raise an error on a row ruled out before.
    CanFail,
}

/// One condition of the conjunction.
#[derive(Debug, Clone)]
struct Conjunct {
    expr: Arc<dyn PhysicalExpr>,
    kind: Kind,
    /// For evaluation on the kept rows: the columns it reads, in order, and the
    /// condition reading them from a batch of those columns alone; `None` if it could
    /// not be renumbered, and is then evaluated on the whole batch's kept rows.
    compact: Option<(Vec<usize>, Arc<dyn PhysicalExpr>)>,
}

impl Conjunct {
    fn new(expr: Arc<dyn PhysicalExpr>, kind: Kind) -> Conjunct {
        let compact = compact_form(&expr);
        Conjunct {
            expr,
            kind,
            compact,
        }
    }

    /// Its value at the rows `kept` selects (a buffer with no nulls and some, not all,
    /// rows set), as a `BooleanArray` of `kept`'s true count.
    fn evaluate_kept(&self, batch: &RecordBatch, kept: &BooleanArray) -> Result<BooleanArray> {
        let rows = kept.true_count();
        let (input, expr) = match &self.compact {
            Some((columns, expr)) => (batch.project(columns)?, expr),
            None => (batch.clone(), &self.expr),
        };
        let input = filter_record_batch(&input, kept)?;
        boolean(expr.evaluate(&input)?, rows)
    }
}

/// `expr` reading from a batch of just the columns it reads: those columns (in
/// ascending order) and the expression with its column indexes renumbered (a dynamic
/// filter follows: it maps its join's current condition onto the new columns).
fn compact_form(expr: &Arc<dyn PhysicalExpr>) -> Option<(Vec<usize>, Arc<dyn PhysicalExpr>)> {
    let mut columns: Vec<usize> = collect_columns(expr).iter().map(|c| c.index()).collect();
    columns.sort_unstable();
    columns.dedup();
    let renumbered = Arc::clone(expr)
        .transform_up(|e| match e.downcast_ref::<Column>() {
            Some(c) => {
                let at = columns.binary_search(&c.index()).expect("collected above");
                Ok(Transformed::yes(Arc::new(Column::new(c.name(), at)) as _))
            }
            None => Ok(Transformed::no(e)),
        })
        .ok()?
        .data;
    Some((columns, renumbered))
}

/// A filter's `AND` of conditions, evaluated as the module's documentation says.
#[derive(Debug)]
pub struct Conjunction {
    /// Cheap conjuncts first, then the others in the filter's order.
    conjuncts: Vec<Conjunct>,
    /// The same conditions as a `BinaryExpr` tree, in the evaluation order: what
    /// `explain` shows, and the answer to type questions.
    tree: Arc<dyn PhysicalExpr>,
}

impl PartialEq for Conjunction {
    fn eq(&self, other: &Self) -> bool {
        self.tree.eq(&other.tree)
    }
}

impl Eq for Conjunction {}

impl Hash for Conjunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tree.hash(state);
    }
}

impl Conjunction {
    /// The conjunction of `predicate`, read over `schema`, when it has two conjuncts
    /// or more, or is one `OR` (or `AND`) of cheap tests.
    pub fn try_new(predicate: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Conjunction> {
        let conjuncts: Vec<&Arc<dyn PhysicalExpr>> = split_conjunction(predicate);
        let cheap_tree = |e: &Arc<dyn PhysicalExpr>| {
            e.downcast_ref::<BinaryExpr>()
                .is_some_and(|b| matches!(b.op(), Operator::And | Operator::Or))
                && is_cheap(e, schema)
        };
        match conjuncts.as_slice() {
            [] => return None,
            [only] if !cheap_tree(only) => return None,
            _ => {}
        }
        let kind = |e: &Arc<dyn PhysicalExpr>| {
            if is_cheap(e, schema) {
                Kind::Cheap
            } else if super::filter_order::cannot_fail(e)
                || e.is::<DynamicFilterPhysicalExpr>()
                || e.is::<super::early_dynamic_filters::RedundantFilter>()
            {
                Kind::Costly
            } else {
                Kind::CanFail
            }
        };
        let (cheap, rest): (Vec<_>, Vec<_>) = conjuncts
            .into_iter()
            .map(|e| Conjunct::new(Arc::clone(e), kind(e)))
            .partition(|c| c.kind == Kind::Cheap);
        Some(Self::from_conjuncts(
            cheap.into_iter().chain(rest).collect(),
        ))
    }

    fn from_conjuncts(conjuncts: Vec<Conjunct>) -> Conjunction {
        let tree = conjunction(conjuncts.iter().map(|c| Arc::clone(&c.expr)));
        Conjunction { conjuncts, tree }
    }
}

/// Whether `expr` is a test of fixed-width columns and literals that arrow computes a
/// batch at a time without branching per row: a comparison, a null test, a string
/// view's equality with literals (`ViewEquals`), or `AND`, `OR` and `NOT` of such.
fn is_cheap(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    let fixed_width_operand = |e: &Arc<dyn PhysicalExpr>| {
        (e.is::<Column>() || e.is::<Literal>())
            && e.data_type(schema)
                .is_ok_and(|t| t.is_primitive() || t == DataType::Boolean)
    };
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        return match binary.op() {
            Operator::And | Operator::Or => {
                is_cheap(binary.left(), schema) && is_cheap(binary.right(), schema)
            }
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => {
                fixed_width_operand(binary.left()) && fixed_width_operand(binary.right())
            }
            _ => false,
        };
    }
    if let Some(not) = expr.downcast_ref::<NotExpr>() {
        return is_cheap(not.arg(), schema);
    }
    if super::view_equality::is_view_equals(expr) {
        return true;
    }
    if let Some(e) = expr.downcast_ref::<IsNullExpr>() {
        return e.arg().is::<Column>();
    }
    if let Some(e) = expr.downcast_ref::<IsNotNullExpr>() {
        return e.arg().is::<Column>();
    }
    expr.is::<Literal>()
        || (expr.is::<Column>() && expr.data_type(schema).is_ok_and(|t| t == DataType::Boolean))
}

/// A value of a boolean expression as an array of `rows`.
fn boolean(value: ColumnarValue, rows: usize) -> Result<BooleanArray> {
    let array: ArrayRef = value.into_array(rows)?;
    match array.as_boolean_opt() {
        Some(b) => Ok(b.clone()),
        None => internal_err!("a filter condition gave {}", array.data_type()),
    }
}

/// A cheap condition over the whole batch: an `AND` or `OR` from both sides' values
/// (DataFusion's `BinaryExpr` would count rows and maybe copy the batch in between).
fn evaluate_cheap(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray> {
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        let combine = match binary.op() {
            Operator::And => Some(and_kleene as fn(&_, &_) -> _),
            Operator::Or => Some(or_kleene as fn(&_, &_) -> _),
            _ => None,
        };
        if let Some(combine) = combine {
            let left = evaluate_cheap(binary.left(), batch)?;
            let right = evaluate_cheap(binary.right(), batch)?;
            return Ok(combine(&left, &right)?);
        }
    }
    boolean(expr.evaluate(batch)?, batch.num_rows())
}

/// The condition's answers `value` at the rows `kept` selects (in order; `kept` has no
/// nulls) put back in place: `kept AND value`.
fn scatter(kept: &BooleanArray, value: &BooleanArray) -> BooleanArray {
    let len = kept.len();
    let positions: Vec<usize> = kept.values().set_indices().collect();
    let mut values = BooleanBufferBuilder::new(len);
    values.append_n(len, false);
    for j in value.values().set_indices() {
        if value.is_valid(j) {
            values.set_bit(positions[j], true);
        }
    }
    let nulls = value
        .nulls()
        .filter(|n| n.null_count() > 0)
        .map(|value_nulls| {
            let mut valid = BooleanBufferBuilder::new(len);
            valid.append_n(len, true);
            for (j, &row) in positions.iter().enumerate() {
                if value_nulls.is_null(j) {
                    valid.set_bit(row, false);
                }
            }
            NullBuffer::new(valid.finish())
        });
    BooleanArray::new(values.finish(), nulls)
}

impl fmt::Display for Conjunction {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.tree)
    }
}

impl PhysicalExpr for Conjunction {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.tree.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.tree.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let mut kept: Option<BooleanArray> = None;
        for conjunct in &self.conjuncts {
            let Some(so_far) = &kept else {
                kept = Some(match conjunct.kind {
                    Kind::Cheap => evaluate_cheap(&conjunct.expr, batch)?,
                    _ => boolean(conjunct.expr.evaluate(batch)?, rows)?,
                });
                continue;
            };
            // The rows the conjunct can still change: those not already false.
            let nulls = so_far.null_count() > 0;
            let candidates = match so_far.nulls().filter(|_| nulls) {
                Some(valid) => BooleanArray::new(so_far.values() | &!valid.inner(), None),
                None => so_far.clone(),
            };
            let selected = candidates.true_count();
            if selected == 0 {
                break;
            }
            let whole = match conjunct.kind {
                _ if selected == rows => true,
                Kind::Cheap => true,
                Kind::Costly => selected as f64 > COMPACT_BELOW * rows as f64,
                Kind::CanFail => false,
            };
            let next = if whole {
                let value = match conjunct.kind {
                    Kind::Cheap => evaluate_cheap(&conjunct.expr, batch)?,
                    _ => boolean(conjunct.expr.evaluate(batch)?, rows)?,
                };
                and_kleene(so_far, &value)?
            } else {
                let value = conjunct.evaluate_kept(batch, &candidates)?;
                let scattered = scatter(&candidates, &value);
                if nulls {
                    and_kleene(so_far, &scattered)?
                } else {
                    scattered
                }
            };
            kept = Some(next);
        }
        match kept {
            Some(kept) => Ok(ColumnarValue::Array(Arc::new(kept))),
            None => internal_err!("a conjunction without conditions"),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conjuncts.iter().map(|c| &c.expr).collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let conjuncts = self
            .conjuncts
            .iter()
            .zip(children)
            .map(|(c, expr)| Conjunct::new(expr, c.kind))
            .collect();
        Ok(Arc::new(Conjunction::from_conjuncts(conjuncts)))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tree.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int32Array, StringViewArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{InListExpr, LikeExpr, col, lit};

    /// A batch of `n` rows from a fixed sequence: `a` Int32 (every ninth null, some
    /// zeros), `b` Float64, `s` Utf8View (every eleventh null).
    fn batch(n: usize) -> RecordBatch {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut s = Vec::new();
        for i in 0..n {
            let r = next();
            a.push((i % 9 != 4).then_some((r % 100) as i32));
            b.push((r >> 8) as f64 % 1000.0 / 10.0);
            let words = ["AIR", "MAIL", "SHIP", "DELIVER IN PERSON", "TRUCK"];
            s.push((i % 11 != 3).then(|| words[(r >> 20) as usize % words.len()].to_string()));
        }
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Float64, false),
            Field::new("s", DataType::Utf8View, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(a)),
                Arc::new(Float64Array::from(b)),
                Arc::new(StringViewArray::from(s)),
            ],
        )
        .unwrap()
    }

    fn binary(
        l: Arc<dyn PhysicalExpr>,
        op: Operator,
        r: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(l, op, r))
    }

    fn string(v: &str) -> Arc<dyn PhysicalExpr> {
        lit(ScalarValue::Utf8View(Some(v.into())))
    }

    /// Conditions of every kind over `batch`'s schema.
    fn conditions(schema: &Schema) -> Vec<Arc<dyn PhysicalExpr>> {
        let a = col("a", schema).unwrap();
        let b = col("b", schema).unwrap();
        let s = col("s", schema).unwrap();
        vec![
            // cheap
            binary(Arc::clone(&a), Operator::GtEq, lit(10i32)),
            binary(Arc::clone(&a), Operator::Lt, lit(30i32)),
            binary(Arc::clone(&b), Operator::Lt, lit(5.0f64)),
            binary(
                binary(Arc::clone(&b), Operator::Gt, lit(90.0f64)),
                Operator::Or,
                binary(Arc::clone(&a), Operator::Eq, lit(7i32)),
            ),
            Arc::new(IsNotNullExpr::new(Arc::clone(&a))),
            // costly
            binary(Arc::clone(&s), Operator::Eq, string("AIR")),
            Arc::new(LikeExpr::new(
                false,
                false,
                Arc::clone(&s),
                string("%IN%ER%"),
            )),
            Arc::new(
                InListExpr::try_new(
                    Arc::clone(&s),
                    vec![string("MAIL"), string("SHIP")],
                    false,
                    schema,
                )
                .unwrap(),
            ),
        ]
    }

    fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray> {
        boolean(expr.evaluate(batch)?, batch.num_rows())
    }

    #[test]
    fn same_answers_as_the_binary_expressions() {
        let batch = batch(5000);
        let schema = batch.schema();
        let all = conditions(&schema);
        // Every ordered pair and triple, and the whole list both ways round.
        let mut cases: Vec<Vec<Arc<dyn PhysicalExpr>>> = Vec::new();
        for i in 0..all.len() {
            for j in 0..all.len() {
                if i != j {
                    cases.push(vec![Arc::clone(&all[i]), Arc::clone(&all[j])]);
                    let k = (i + j + 1) % all.len();
                    if k != i && k != j {
                        cases.push(vec![
                            Arc::clone(&all[i]),
                            Arc::clone(&all[j]),
                            Arc::clone(&all[k]),
                        ]);
                    }
                }
            }
        }
        cases.push(all.clone());
        cases.push(all.iter().rev().cloned().collect());
        for case in cases {
            let tree = conjunction(case.iter().cloned());
            let ours = Conjunction::try_new(&tree, &schema).expect("two or more conjuncts");
            let expected = evaluate(&tree, &batch).unwrap();
            let got = evaluate(&(Arc::new(ours) as Arc<dyn PhysicalExpr>), &batch).unwrap();
            assert_eq!(got, expected, "{tree}");
        }
    }

    #[test]
    fn cheap_conditions_go_first_and_show_in_that_order() {
        let batch = batch(10);
        let schema = batch.schema();
        let all = conditions(&schema);
        let tree = conjunction([
            Arc::clone(&all[5]),
            Arc::clone(&all[0]),
            Arc::clone(&all[1]),
        ]);
        let ours = Conjunction::try_new(&tree, &schema).unwrap();
        assert_eq!(
            ours.to_string(),
            "a@0 >= 10 AND a@0 < 30 AND s@2 = AIR",
            "the string comparison runs last"
        );
        assert!(
            Conjunction::try_new(&all[0], &schema).is_none(),
            "one condition"
        );
    }

    /// q91's shape: one condition, an `OR` of `AND`s of cheap tests (string views
    /// compared with literals among them), over nulls in `a` and `s`.
    #[test]
    fn one_or_of_cheap_tests_is_evaluated_over_whole_batches() {
        let batch = batch(5000);
        let schema = batch.schema();
        let all = conditions(&schema);
        let s = col("s", &schema).unwrap();
        let view = |v: &str| -> Arc<dyn PhysicalExpr> {
            let equals = binary(Arc::clone(&s), Operator::Eq, string(v));
            Arc::new(super::super::view_equality::ViewEquals::try_new(&equals, &schema).unwrap())
        };
        let tree = binary(
            binary(
                binary(Arc::clone(&all[0]), Operator::And, view("AIR")),
                Operator::Or,
                binary(
                    view("DELIVER IN PERSON"),
                    Operator::And,
                    Arc::clone(&all[2]),
                ),
            ),
            Operator::Or,
            binary(Arc::clone(&all[4]), Operator::And, Arc::clone(&all[1])),
        );
        let ours = Conjunction::try_new(&tree, &schema).expect("an OR of cheap tests");
        assert_eq!(ours.conjuncts.len(), 1);
        assert_eq!(ours.conjuncts[0].kind, Kind::Cheap);
        let expected = evaluate(&tree, &batch).unwrap();
        assert!(expected.null_count() > 0 && expected.true_count() > 0);
        let got = evaluate(&(Arc::new(ours) as Arc<dyn PhysicalExpr>), &batch).unwrap();
        assert_eq!(got, expected, "{tree}");
        // An `OR` with a costly side is left to DataFusion.
        let costly = binary(Arc::clone(&all[0]), Operator::Or, Arc::clone(&all[5]));
        assert!(Conjunction::try_new(&costly, &schema).is_none());
    }

    #[test]
    fn a_condition_that_can_fail_sees_only_the_kept_rows() {
        let batch = batch(5000);
        let schema = batch.schema();
        let a = col("a", &schema).unwrap();
        // `a > 0` keeps most rows, so DataFusion evaluates `100 / a` on every row,
        // the zeros too.
        let guard = binary(Arc::clone(&a), Operator::Gt, lit(0i32));
        let division = binary(
            binary(lit(100i32), Operator::Divide, Arc::clone(&a)),
            Operator::Gt,
            lit(3i32),
        );
        let tree = conjunction([Arc::clone(&guard), Arc::clone(&division)]);
        assert!(
            evaluate(&tree, &batch).is_err(),
            "the test needs zeros in `a`"
        );
        let ours: Arc<dyn PhysicalExpr> = Arc::new(Conjunction::try_new(&tree, &schema).unwrap());
        let got = evaluate(&ours, &batch).unwrap();
        let a = batch
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        for (i, v) in a.iter().enumerate() {
            let expected = v.map(|v| v > 0 && 100 / v > 3);
            let expected = match expected {
                Some(true) => Some(true),
                // `NULL > 0` is null, and so is the conjunction; `false AND x` is false.
                Some(false) => Some(false),
                None => None,
            };
            assert_eq!(got.is_valid(i).then(|| got.value(i)), expected, "row {i}");
        }
    }
}
