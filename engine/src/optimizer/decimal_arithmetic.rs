//! [`DecimalArithmetic`], a physical optimizer rule: `+`, `-` and `*` of `Decimal128`
//! values computed without a check per value when the batch's values cannot overflow.
//!
//! Why: arrow checks every decimal operation for overflow, value by value, whatever the
//! operands' precision, and rescales an operand of a smaller scale inside the same
//! checked loop. TPC-H's money columns are `Decimal(15, 2)`: `1 - l_discount` rescales
//! the literal for each of the 60 M rows of SF 10 and `l_extendedprice * (1 -
//! l_discount)` checks each product. Those loops were 31% of q01's CPU time (`perf` at
//! SF 10): the checks and their early exits keep the compiler from unrolling them.
//!
//! How: each such `BinaryExpr` of a projection, a filter or an aggregate's arguments is
//! wrapped in [`DecimalExpr`]. For each batch it takes the largest magnitude of each
//! operand (one pass, no branch per value), and when those bounds prove that no result
//! can leave `i128`, computes the batch with wrapping arithmetic, which is then exact.
//! Otherwise it calls arrow's checked kernel, as the `BinaryExpr` would: same results,
//! same types, same errors. Statistics and ordering are the `BinaryExpr`'s; `explain`
//! shows it in parentheses: `(l_extendedprice@0 * (1 - l_discount@1))`.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::compute::kernels::numeric::{add, mul, sub};
use datafusion::arrow::datatypes::{
    DECIMAL128_MAX_PRECISION, DECIMAL128_MAX_SCALE, DataType, Decimal128Type, Schema,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr_common::datum::apply;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// Wraps the decimal `+`, `-` and `*` of projections, filters and aggregate arguments in
/// [`DecimalExpr`] (see the module's documentation).
#[derive(Debug, Default)]
pub struct DecimalArithmetic;

impl PhysicalOptimizerRule for DecimalArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::rewrite_row_expressions(plan, &rewrite)
    }

    fn name(&self) -> &str {
        "sluice_decimal_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with each decimal `+`, `-` and `*` in it wrapped, bottom up.
fn rewrite(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let Some(binary) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        match DecimalExpr::try_new(Arc::clone(&e), binary, schema)? {
            Some(wrapped) => Ok(Transformed::yes(Arc::new(wrapped) as Arc<dyn PhysicalExpr>)),
            None => Ok(Transformed::no(e)),
        }
    })
}

/// A decimal `+`, `-` or `*` (a `BinaryExpr`) computed with wrapping arithmetic for each
/// batch whose values cannot overflow, and by arrow's checked kernel otherwise.
#[derive(Debug, Eq)]
pub struct DecimalExpr {
    /// The `BinaryExpr` it stands for: its bounds and ordering are this one's.
    binary: Arc<dyn PhysicalExpr>,
    op: Operator,
    left: Arc<dyn PhysicalExpr>,
    right: Arc<dyn PhysicalExpr>,
    /// The operands' types, `Decimal128(precision, scale)`.
    left_type: DataType,
    right_type: DataType,
    /// What each operand is multiplied by to reach the result's scale (`+`, `-`).
    left_scale_by: i128,
    right_scale_by: i128,
    precision: u8,
    scale: i8,
}

impl PartialEq for DecimalExpr {
    fn eq(&self, other: &Self) -> bool {
        self.binary.eq(&other.binary)
    }
}

impl Hash for DecimalExpr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.binary.hash(state);
    }
}

impl DecimalExpr {
    /// Wraps `expr` (which is `binary`) if it is a `+`, `-` or `*` of two `Decimal128`
    /// operands whose result type is arrow's for them.
    fn try_new(
        expr: Arc<dyn PhysicalExpr>,
        binary: &BinaryExpr,
        schema: &Schema,
    ) -> Result<Option<Self>> {
        let op = *binary.op();
        if !matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply) {
            return Ok(None);
        }
        let (Ok(left_type), Ok(right_type)) = (
            binary.left().data_type(schema),
            binary.right().data_type(schema),
        ) else {
            return Ok(None);
        };
        let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
            (&left_type, &right_type)
        else {
            return Ok(None);
        };
        let (p1, s1, p2, s2) = (*p1, *s1, *p2, *s2);
        // The result's precision and scale as arrow's `decimal_op` computes them.
        let (precision, scale, left_scale_by, right_scale_by) = match op {
            Operator::Multiply => {
                let scale = s1.saturating_add(s2);
                if scale > DECIMAL128_MAX_SCALE {
                    return Ok(None);
                }
                let precision = p1.saturating_add(p2 + 1).min(DECIMAL128_MAX_PRECISION);
                (precision, scale, 1, 1)
            }
            _ => {
                let scale = s1.max(s2);
                let digits = (p1 as i8 - s1).max(p2 as i8 - s2);
                let precision = (scale.saturating_add(digits) as u8)
                    .saturating_add(1)
                    .min(DECIMAL128_MAX_PRECISION);
                let (Some(l), Some(r)) = (
                    10i128.checked_pow((scale - s1) as u32),
                    10i128.checked_pow((scale - s2) as u32),
                ) else {
                    return Ok(None);
                };
                (precision, scale, l, r)
            }
        };
        // Only where DataFusion expects arrow's type: the result must not change.
        if binary.data_type(schema).ok() != Some(DataType::Decimal128(precision, scale)) {
            return Ok(None);
        }
        Ok(Some(Self {
            binary: expr,
            op,
            left: Arc::clone(binary.left()),
            right: Arc::clone(binary.right()),
            left_type,
            right_type,
            left_scale_by,
            right_scale_by,
            precision,
            scale,
        }))
    }

    /// The result without per-value checks, or `None` when the values could overflow
    /// (or are not what the plan said: a null scalar, two scalars).
    fn unchecked(&self, lhs: &ColumnarValue, rhs: &ColumnarValue) -> Result<Option<ArrayRef>> {
        let (Some(l), Some(r)) = (
            Operand::of(lhs, &self.left_type),
            Operand::of(rhs, &self.right_type),
        ) else {
            return Ok(None);
        };
        if let (Operand::Array(a), Operand::Array(b)) = (&l, &r)
            && a.len() != b.len()
        {
            return Ok(None);
        }
        // The largest magnitude each side can have once rescaled to the result's scale
        // (`+`, `-`), and so of the result: within `i128`, wrapping arithmetic is exact.
        let (left_by, right_by) = match self.op {
            Operator::Multiply => (1, 1),
            _ => (self.left_scale_by, self.right_scale_by),
        };
        let (Some(lm), Some(rm)) = (
            l.magnitude().checked_mul(left_by as u128),
            r.magnitude().checked_mul(right_by as u128),
        ) else {
            return Ok(None);
        };
        let bound = match self.op {
            Operator::Multiply => lm.checked_mul(rm),
            _ => lm.checked_add(rm),
        };
        if bound.is_none_or(|b| b > i128::MAX as u128) {
            return Ok(None);
        }
        let (l, r) = (l.scaled(left_by), r.scaled(right_by));
        let result: Decimal128Array = match (self.op, &l, &r) {
            (_, Operand::Scalar(_), Operand::Scalar(_)) => return Ok(None),
            (Operator::Plus, _, _) => l.combine(&r, |a, b| a.wrapping_add(b)),
            (Operator::Minus, _, _) => l.combine(&r, |a, b| a.wrapping_sub(b)),
            // Both sides within `i64` (money and rates are): one 64 × 64 → 128-bit
            // multiply instead of `i128`'s three.
            (_, _, _) if lm <= i64::MAX as u128 && rm <= i64::MAX as u128 => {
                l.combine(&r, |a, b| (a as i64 as i128) * (b as i64 as i128))
            }
            (_, _, _) => l.combine(&r, |a, b| a.wrapping_mul(b)),
        };
        Ok(Some(Arc::new(
            result.with_precision_and_scale(self.precision, self.scale)?,
        )))
    }
}

/// A power of two at or above every value's magnitude, in one branch-free pass: the
/// ones' complement of each negative value (`!v`, one below its magnitude) and each other
/// value are OR-ed together, so the result's highest bit bounds them all. An exact
/// maximum of `unsigned_abs` took 8% of q01's CPU in compares and borrows; this is a few
/// bit operations a value, in four independent chains.
fn power_of_two_bound(values: &[i128]) -> u128 {
    let folded = |v: i128| (v ^ (v >> 127)) as u128;
    let mut acc = [0u128; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a |= folded(*v);
        }
    }
    let all = rest
        .iter()
        .fold(acc[0] | acc[1] | acc[2] | acc[3], |a, v| a | folded(*v));
    // Every magnitude is at most `all + 1`, so at most the power of two above `all`'s
    // highest bit (1 when `all` is 0: values of 0 and -1). `all`'s top bit is clear
    // (each folded value is non-negative), so the shift stays within `u128`.
    1u128 << (128 - all.leading_zeros())
}

/// One side of the operation: a non-null scalar or an array.
enum Operand {
    Scalar(i128),
    Array(Decimal128Array),
}

impl Operand {
    fn of(value: &ColumnarValue, expected: &DataType) -> Option<Self> {
        match value {
            ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), p, s))
                if DataType::Decimal128(*p, *s) == *expected =>
            {
                Some(Operand::Scalar(*v))
            }
            ColumnarValue::Array(a) if a.data_type() == expected => {
                Some(Operand::Array(a.as_primitive::<Decimal128Type>().clone()))
            }
            _ => None,
        }
    }

    /// Multiplied by `by`, a power of ten its magnitude was checked against: a scalar
    /// once, an array in one pass.
    fn scaled(self, by: i128) -> Self {
        match self {
            _ if by == 1 => self,
            Operand::Scalar(v) => Operand::Scalar(v.wrapping_mul(by)),
            Operand::Array(a) => Operand::Array(a.unary(|v| v.wrapping_mul(by))),
        }
    }

    /// A bound on the magnitude of its values: a scalar's own, an array's a power of two
    /// at or above its largest (at most twice that). An array's null slots count
    /// too: they only make the bound looser.
    fn magnitude(&self) -> u128 {
        match self {
            Operand::Scalar(v) => v.unsigned_abs(),
            Operand::Array(a) => power_of_two_bound(a.values()),
        }
    }

    /// `f` of each pair of values; nulls as arrow's kernels give them (a null on either
    /// side is null).
    fn combine(&self, other: &Operand, f: impl Fn(i128, i128) -> i128) -> Decimal128Array {
        match (self, other) {
            (Operand::Array(a), Operand::Array(b)) => {
                datafusion::arrow::compute::binary(a, b, f).expect("lengths checked")
            }
            (Operand::Array(a), Operand::Scalar(s)) => a.unary(|v| f(v, *s)),
            (Operand::Scalar(s), Operand::Array(b)) => b.unary(|v| f(*s, v)),
            (Operand::Scalar(_), Operand::Scalar(_)) => unreachable!("two scalars fall back"),
        }
    }
}

/// Written as its `BinaryExpr` would be, but always in parentheses: a `BinaryExpr` above
/// it only puts its `BinaryExpr` children in them, and `a / (b * c)` must not read as
/// `a / b * c`.
impl fmt::Display for DecimalExpr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.write(f, |f, e| write!(f, "{e}"))
    }
}

impl DecimalExpr {
    fn write(
        &self,
        f: &mut fmt::Formatter,
        each: impl Fn(&mut fmt::Formatter, &dyn PhysicalExpr) -> fmt::Result,
    ) -> fmt::Result {
        let precedence = self.op.precedence();
        let child = |f: &mut fmt::Formatter, e: &Arc<dyn PhysicalExpr>| match e
            .downcast_ref::<BinaryExpr>()
        {
            Some(b) if b.op().precedence() == 0 || b.op().precedence() < precedence => {
                write!(f, "(")?;
                each(f, e.as_ref())?;
                write!(f, ")")
            }
            _ => each(f, e.as_ref()),
        };
        write!(f, "(")?;
        child(f, &self.left)?;
        write!(f, " {} ", self.op)?;
        child(f, &self.right)?;
        write!(f, ")")
    }
}

impl PhysicalExpr for DecimalExpr {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.binary.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.binary.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let lhs = self.left.evaluate(batch)?;
        let rhs = self.right.evaluate(batch)?;
        if let Some(array) = self.unchecked(&lhs, &rhs)? {
            return Ok(ColumnarValue::Array(array));
        }
        // What `BinaryExpr` does (its wrapping kernels check decimals all the same).
        match self.op {
            Operator::Plus => apply(&lhs, &rhs, add),
            Operator::Minus => apply(&lhs, &rhs, sub),
            _ => apply(&lhs, &rhs, mul),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let binary = Arc::clone(&self.binary).with_new_children(children)?;
        let b = binary
            .downcast_ref::<BinaryExpr>()
            .expect("a BinaryExpr's new children give a BinaryExpr");
        Ok(Arc::new(Self {
            left: Arc::clone(b.left()),
            right: Arc::clone(b.right()),
            binary: Arc::clone(&binary),
            op: self.op,
            left_type: self.left_type.clone(),
            right_type: self.right_type.clone(),
            left_scale_by: self.left_scale_by,
            right_scale_by: self.right_scale_by,
            precision: self.precision,
            scale: self.scale,
        }))
    }

    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.binary.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.binary.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.binary.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |f, e| e.fmt_sql(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_expr::expressions::{Literal, col};
    use datafusion::prelude::SessionContext;

    /// Values of a `Decimal(15, 2)`-like column, every seventh one null, from a fixed
    /// sequence (no randomness in tests), at most `max` in magnitude.
    fn decimals(n: usize, max: i128, seed: u64, p: u8, s: i8) -> Decimal128Array {
        let mut x = seed;
        let values: Vec<Option<i128>> = (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((x >> 11) as i128 * (max >> 53).max(1)) % (max + 1);
                let v = if x >> 63 == 0 { v } else { -v };
                (i % 7 != 3).then_some(v)
            })
            .collect();
        Decimal128Array::from(values)
            .with_precision_and_scale(p, s)
            .unwrap()
    }

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("discount", DataType::Decimal128(15, 2), true),
            Field::new("whole", DataType::Decimal128(20, 0), true),
            Field::new("huge", DataType::Decimal128(38, 0), true),
        ]))
    }

    fn batch(huge: i128) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(decimals(1000, 10i128.pow(13), 1, 15, 2)) as ArrayRef,
                Arc::new(decimals(1000, 10, 2, 15, 2)),
                Arc::new(decimals(1000, 10i128.pow(19), 3, 20, 0)),
                Arc::new(decimals(1000, huge, 4, 38, 0)),
            ],
        )
        .unwrap()
    }

    /// The plain `BinaryExpr`'s result (or error) and the wrapped one's, for `l op r`.
    fn both(
        l: Arc<dyn PhysicalExpr>,
        op: Operator,
        r: Arc<dyn PhysicalExpr>,
        batch: &RecordBatch,
    ) -> (Result<ArrayRef>, Result<ArrayRef>) {
        let schema = batch.schema();
        let plain: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(l, op, r));
        let binary = plain.downcast_ref::<BinaryExpr>().unwrap();
        let wrapped = DecimalExpr::try_new(Arc::clone(&plain), binary, &schema)
            .unwrap()
            .expect("a decimal operation is wrapped");
        let run = |e: &dyn PhysicalExpr| {
            e.evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
        };
        (run(plain.as_ref()), run(&wrapped))
    }

    #[test]
    fn same_values_types_and_nulls_as_binary_expr() {
        let batch = batch(10i128.pow(20));
        let schema = batch.schema();
        let one = Arc::new(Literal::new(ScalarValue::Decimal128(Some(1), 20, 0)))
            as Arc<dyn PhysicalExpr>;
        let cents = Arc::new(Literal::new(ScalarValue::Decimal128(Some(-250), 15, 2)))
            as Arc<dyn PhysicalExpr>;
        let c = |name: &str| col(name, &schema).unwrap();
        type Case = (Arc<dyn PhysicalExpr>, Operator, Arc<dyn PhysicalExpr>);
        let cases: Vec<Case> = vec![
            (c("price"), Operator::Multiply, c("discount")),
            (c("price"), Operator::Plus, c("discount")),
            (c("price"), Operator::Minus, c("whole")),
            (c("whole"), Operator::Plus, c("price")),
            (one.clone(), Operator::Minus, c("discount")),
            (c("discount"), Operator::Plus, one.clone()),
            (c("price"), Operator::Multiply, cents.clone()),
            (cents.clone(), Operator::Minus, c("price")),
            (c("huge"), Operator::Multiply, c("discount")),
            // `whole` leaves `i64` (up to 10^19): the `i128` multiply, not the 64-bit one.
            (c("price"), Operator::Multiply, c("whole")),
        ];
        for (l, op, r) in cases {
            let text = format!("{l} {op} {r}");
            let (plain, wrapped) = both(l, op, r, &batch);
            let (plain, wrapped) = (plain.unwrap(), wrapped.unwrap());
            assert_eq!(plain.data_type(), wrapped.data_type(), "{text}");
            assert_eq!(&plain, &wrapped, "{text}");
            assert!(wrapped.null_count() > 0, "{text}");
        }
    }

    #[test]
    fn power_of_two_bound_covers_every_magnitude() {
        for values in [
            vec![0i128, 0],
            vec![0, -1],
            vec![1],
            vec![-1],
            vec![5, -3, 2, 7, 0],
            vec![-8, 1, 2, 3, 4, 5, 6],
            vec![i64::MAX as i128, i64::MIN as i128],
            vec![i128::MAX, 3],
            vec![i128::MIN + 1, -2],
            vec![10i128.pow(37), -(10i128.pow(37)), 1, 2, 3, 4, 5, 6, 7],
        ] {
            let bound = power_of_two_bound(&values);
            let max = values.iter().map(|v| v.unsigned_abs()).max().unwrap();
            assert!(
                bound >= max && bound.is_power_of_two(),
                "{values:?}: {bound}"
            );
            assert!(bound <= 2 * max.max(1), "{values:?}: {bound} is loose");
        }
    }

    #[test]
    fn overflow_is_the_checked_kernels_error() {
        // Values near 10^37: their products leave i128, and both forms must say so.
        let batch = batch(10i128.pow(37));
        let schema = batch.schema();
        let (plain, wrapped) = both(
            col("huge", &schema).unwrap(),
            Operator::Multiply,
            col("whole", &schema).unwrap(),
            &batch,
        );
        let (plain, wrapped) = (plain.unwrap_err(), wrapped.unwrap_err());
        assert!(plain.to_string().contains("Overflow"), "{plain}");
        assert_eq!(plain.to_string(), wrapped.to_string());
        // A sum that fits once rescaled, from the same column: the fast path's answer.
        let (plain, wrapped) = both(
            col("huge", &schema).unwrap(),
            Operator::Plus,
            col("whole", &schema).unwrap(),
            &batch,
        );
        assert_eq!(&plain.unwrap(), &wrapped.unwrap());
    }

    #[tokio::test]
    async fn rule_wraps_projections_and_aggregates_and_keeps_results() {
        let batch = batch(10i128.pow(20));
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        let sql = "SELECT sum(price * (1 - discount)) AS revenue, \
                          sum(price * (1 - discount) * (1 + discount)) AS charge, \
                          min(whole - price) AS low \
                   FROM t WHERE price * discount > 0";
        let plain = SessionContext::new();
        plain.register_table("t", Arc::new(table)).unwrap();
        let provider = plain.table_provider("t").await.unwrap();
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rules(crate::optimizer::settings::physical_optimizer_rules())
            .build();
        let sluice = SessionContext::new_with_state(state);
        sluice.register_table("t", provider).unwrap();

        let df = sluice.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let mut wrapped = 0;
        plan.apply(|node| {
            node.apply_expressions(&mut |e| {
                e.apply(|e| {
                    wrapped += usize::from(e.downcast_ref::<DecimalExpr>().is_some());
                    Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                })
            })?;
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert!(wrapped >= 3, "wrapped {wrapped} operations in\n{plan:?}");
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        assert!(
            text.contains("(price@0 * (1 - discount@1)) as __common_expr_1"),
            "{text}"
        );
        let got = df.collect().await.unwrap();
        let expected = plain.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(got, expected);
    }
}
