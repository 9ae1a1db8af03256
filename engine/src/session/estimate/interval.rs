//! The bounds of a 95% interval as one function call per bound.
//!
//! Written as SQL expressions, a bound repeats its estimate, its standard error and
//! the t quantile (low and high each hold a copy), and DataFusion's analyzer, optimizer
//! and physical planner walk and name every node of those trees on every pass: most of
//! an estimated run's time went there. As functions of columns computed once below
//! them, the plan stays as small as the query it estimates. A Ballista cluster knows only
//! DataFusion's functions: for a run there, `portable` writes the same bounds as plain SQL
//! expressions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::compute::{CastOptions, cast as cast_array, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::common::exec_err;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::{greatest, least};
use datafusion::functions::math::expr_fn::{abs, cbrt, ceil, floor, round, sqrt};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, cast, lit, when,
};

/// The normal's 0.975 quantile, and the Cornish-Fisher expansion's terms in 1/df:
/// (z³ + z)/4, (5z⁵ + 16z³ + 3z)/96, (3z⁷ + 19z⁵ + 17z³ − 15z)/384,
/// (79z⁹ + 776z⁷ + 1482z⁵ − 1920z³ − 945z)/92160.
const Z: f64 = 1.959_963_984_540_054;
const G: [f64; 4] = [
    2.372_271_278_705_108,
    2.822_498_705_328_416,
    2.555_849_791_159_61,
    1.589_534_145_494_78,
];

/// The 0.975 quantile of Student's t with `units - 1` degrees of freedom: the
/// multiplier of a 95% interval. The table's values for 1 and 2 degrees, then the
/// Cornish-Fisher expansion in 1/df to the fourth order, within 0.11% of the table from
/// 3 degrees on and exact in the limit (1.96), where a table cut at 30 degrees would say
/// 1.96 too early (t is still 2.04 at 30).
pub(crate) fn t_quantile(units: f64) -> f64 {
    let df = units - 1.0;
    if df <= 1.0 {
        12.706
    } else if df <= 2.0 {
        4.303
    } else {
        Z + (G[0] + (G[1] + (G[2] + G[3] / df) / df) / df) / df
    }
}

/// Which bound a call computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Low,
    High,
}

impl Side {
    fn sign(self) -> f64 {
        match self {
            Side::Low => -1.0,
            Side::High => 1.0,
        }
    }
}

/// What a bound is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    /// `sluice_interval(estimate, se, units)`: estimate ∓ t·se.
    Estimate,
    /// `sluice_ratio_interval(k, a, b, se_a, se_b, cov_ab, units)`: the ratio k·a/b
    /// ∓ t times its linearized standard error,
    /// |k|/|b| · √(se_a² − 2(a/b)·cov + (a/b)²·se_b²).
    Ratio,
    /// `sluice_proportion_interval(k, a, b, se_a, se_b, cov_ab, units, rows)`: k times
    /// the share p = a/b of a group's rows, by Wilson's score interval at the effective
    /// size p(1 − p)/var(p) (Korn and Graubard's for complex samples), no more than the
    /// sample's `rows` in the group, with t for z; at a share of 0 or 1, which shows no
    /// spread, the size is the units counted.
    Proportion,
    /// `sluice_skewed_interval(r, se, units, d, nnn, nnd, ndd, ddd)`: an average r =
    /// n/d with standard error `se`, its interval leaning with the skewness of its
    /// residuals (Hall's transformation of the studentized statistic), from the sums
    /// Σ(1 − π)(1 − 2π)·x over units of n³, n²d, nd², d³ (n, d a unit's weighted totals).
    Skewed,
    /// `sluice_share_interval(p, se, units, rows)`: an average of a 0-or-1 value, a share
    /// of the rows with standard error `se`, by Wilson's score interval as `Proportion`.
    Share,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bound {
    shape: Shape,
    side: Side,
    signature: Signature,
}

/// The `side` bound of `estimate` with standard error `se` from `units` sampling
/// units: NULL when fewer than two units (one unit's total says nothing of the others'
/// spread: no interval rather than a false one) or when an input is NULL.
pub(crate) fn interval(estimate: Expr, se: Expr, units: Expr, side: Side) -> Expr {
    call(Shape::Estimate, side, vec![estimate, se, units])
}

/// The low bound of `estimate` as `interval` makes it, but no lower than `floor` (a
/// count is at least the rows the sample saw); NULL as `interval`'s is.
pub(crate) fn low_at_least(estimate: Expr, se: Expr, units: Expr, floor: Expr) -> Expr {
    call(Shape::Estimate, Side::Low, vec![estimate, se, units, floor])
}

/// The `side` bound of the ratio `k · a / b` of two estimates with standard errors
/// `se_a`, `se_b` and covariance `cov`: NULL too when `b` is 0.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ratio_interval(
    k: Expr,
    a: Expr,
    b: Expr,
    se_a: Expr,
    se_b: Expr,
    cov: Expr,
    units: Expr,
    side: Side,
) -> Expr {
    call(Shape::Ratio, side, vec![k, a, b, se_a, se_b, cov, units])
}

/// The `side` bound of `k` times the share `a / b` of a group's rows (`a` counts some of
/// the rows `b` counts), with the same arguments as `ratio_interval`; `units` are the
/// denominator's, `rows` the sample's rows it counts. Where the linearized interval of a
/// share near 0 or 1 is too narrow (and of a share of exactly 0 or 1, empty), the score
/// interval stays inside [0, 1] and leans toward the middle.
#[allow(clippy::too_many_arguments)]
pub(crate) fn proportion_interval(
    k: Expr,
    a: Expr,
    b: Expr,
    se_a: Expr,
    se_b: Expr,
    cov: Expr,
    units: Expr,
    rows: Expr,
    side: Side,
) -> Expr {
    call(
        Shape::Proportion,
        side,
        vec![k, a, b, se_a, se_b, cov, units, rows],
    )
}

/// The `side` bound of a share `p` of a group's rows with standard error `se` from
/// `units` units: an average of a value that is 0 or 1, bounded as `proportion_interval`
/// bounds a ratio of counts.
pub(crate) fn share_interval(p: Expr, se: Expr, units: Expr, rows: Expr, side: Side) -> Expr {
    call(Shape::Share, side, vec![p, se, units, rows])
}

/// Wilson's score bounds of a share `p` with variance `var` from `units` units and
/// `rows` rows of the sample (see `Shape::Proportion`), before the factor k.
fn wilson(p: f64, var: f64, units: f64, rows: f64) -> (f64, f64) {
    let p = p.clamp(0.0, 1.0);
    let t = t_quantile(units);
    // The effective size, no more than the rows the sample has (Korn and Graubard
    // truncate it there): a group whose few drawn units all show nearly the same share
    // has a tiny variance, and would otherwise claim a huge sample.
    let n = if var > 0.0 && p > 0.0 && p < 1.0 {
        (p * (1.0 - p) / var).min(rows)
    } else {
        units
    };
    let c = t * t / n;
    let center = (p + c / 2.0) / (1.0 + c);
    let half = (c * p * (1.0 - p) + c * c / 4.0).sqrt() / (1.0 + c);
    (center - half, center + half)
}

/// The `side` bound of an average from `args` (see `Shape::Skewed`).
///
/// A t interval is symmetric; the average of a right-skewed value (revenue, durations)
/// over a few dozen units is not: its interval missed production's value on the high
/// side far more than 2.5% of the time, and on the low side less. Hall (1992, "On the
/// removal of skewness by transformation") corrects the studentized statistic T with
/// its estimated skewness a: g(T) = T + aT²/3 + a²T³/27 + a/6 is nearly symmetric and
/// monotone, so the bounds are r − se·g⁻¹(±t). Under Poisson sampling of units the
/// estimator's third cumulant is Σ(1 − π)(1 − 2π)z_u³ over the drawn units' residuals
/// z_u = (n_u − r·d_u)/d, expanded into the four sums; a = that over se³, no more than
/// 6 either way (`MAX_SKEWNESS`). Where the expansion cancels to rounding noise (values
/// far from 0 with little spread), a is 0 and the interval is the t interval.
pub(crate) fn skewed_interval(args: Vec<Expr>, side: Side) -> Expr {
    call(Shape::Skewed, side, args)
}

/// The skewness a of an average (see `skewed_interval`), 0 where unknown or lost to
/// rounding.
fn skewness(r: f64, se: f64, d: f64, cubes: [f64; 4]) -> f64 {
    let terms = [
        cubes[0],
        -3.0 * r * cubes[1],
        3.0 * r * r * cubes[2],
        -r * r * r * cubes[3],
    ];
    let sum: f64 = terms.iter().sum();
    let scale: f64 = terms.iter().map(|t| t.abs()).sum();
    if !(se > 0.0 && d != 0.0 && sum.is_finite()) || sum.abs() <= 1e-9 * scale {
        return 0.0;
    }
    let a = sum / (d * d * d) / (se * se * se);
    if a.is_finite() {
        a.clamp(-MAX_SKEWNESS, MAX_SKEWNESS)
    } else {
        0.0
    }
}

/// The largest skewness an interval leans by: g(0) = a/6, so beyond 6·t the estimate
/// itself would fall outside its interval (and a from so few units is mostly noise).
const MAX_SKEWNESS: f64 = 6.0;

/// g⁻¹(x) of Hall's transformation with skewness `a`: (3/a)·(∛(1 + a(x − a/6)) − 1),
/// x itself at a = 0.
fn hall_inverse(x: f64, a: f64) -> f64 {
    if a.abs() < 1e-12 {
        x
    } else {
        3.0 / a * ((1.0 + a * (x - a / 6.0)).cbrt() - 1.0)
    }
}

/// `sluice_effective_units(units, v, k)`: the units a group's interval counts, no more
/// than Kish's effective number (Σ v_u)² / Σ v_u² = v² / k and at least two; `units`
/// itself below two units (no interval) or when `k` is 0 or unknown. See
/// `super::effective_units`.
pub(crate) fn effective_units(units: Expr, v: Expr, k: Expr) -> Expr {
    Arc::new(ScalarUDF::new_from_impl(EffectiveUnits {
        signature: Signature::any(3, Volatility::Immutable),
    }))
    .call(vec![units, v, k])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct EffectiveUnits {
    signature: Signature,
}

impl EffectiveUnits {
    fn value(units: f64, v: Option<f64>, k: Option<f64>) -> f64 {
        match (v, k) {
            (Some(v), Some(k)) if units >= 2.0 && k != 0.0 => {
                let n = v * v / k;
                // As SQL's least/greatest: a NaN count is no count.
                if n.is_nan() {
                    units
                } else {
                    n.min(units).max(2.0)
                }
            }
            _ => units,
        }
    }

    /// The same as a plain SQL expression.
    fn expression(args: Vec<Expr>) -> Result<Expr> {
        let [units, v, k] = <[Expr; 3]>::try_from(args).map_err(|_| {
            datafusion::error::DataFusionError::Execution(
                "sluice_effective_units takes 3 arguments".into(),
            )
        })?;
        let (units, v, k) = (f64(units), f64(v), f64(k));
        let n = binary(
            binary(v.clone(), Operator::Multiply, v),
            Operator::Divide,
            k.clone(),
        );
        when(
            units
                .clone()
                .gt_eq(lit(2.0))
                .and(k.not_eq(lit(0.0)))
                .and(n.clone().is_not_null()),
            greatest(vec![least(vec![units.clone(), n]), lit(2.0)]),
        )
        .otherwise(units)
    }
}

impl ScalarUDFImpl for EffectiveUnits {
    fn name(&self) -> &str {
        "sluice_effective_units"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 3 {
            return exec_err!("{} takes 3 arguments", self.name());
        }
        let cols = float_arguments(&args)?;
        let value = |i: usize, c: usize| at(&cols[c], i);
        let out: Float64Array = (0..args.number_rows)
            .map(|i| Some(Self::value(value(i, 0)?, value(i, 1), value(i, 2))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// A step of an estimate's arithmetic that DataFusion's own functions make costly to
/// plan, as one call: `round`, `floor` and `ceil` try each of their signatures in turn
/// (and write an error for every one that does not fit) whenever a plan's schema is
/// derived, which an estimated plan's optimizer does dozens of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// `sqrt(greatest(x, 0))`: a standard error from a variance that rounding may
    /// leave a hair below 0 (0 for NULL, as `greatest` skips it).
    Root,
    /// `CAST(round(x) AS BIGINT)`: a count's estimate.
    Nearest,
    /// `CAST(floor(x + WHOLE_TOLERANCE) AS BIGINT)`: a count's low bound.
    Down,
    /// `CAST(ceil(x - WHOLE_TOLERANCE) AS BIGINT)`: a count's high bound.
    Up,
}

/// How far from a whole number a count's bound may be and still be taken as it: an
/// exact 333 computed as 333.00000000001 is 333, not 334.
pub(crate) const WHOLE_TOLERANCE: f64 = 1e-6;

pub(crate) fn step(step: Step, x: Expr) -> Expr {
    Arc::new(ScalarUDF::new_from_impl(StepFn {
        step,
        signature: Signature::any(1, Volatility::Immutable),
    }))
    .call(vec![x])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StepFn {
    step: Step,
    signature: Signature,
}

impl StepFn {
    /// The same as a plain SQL expression.
    fn expression(&self, args: Vec<Expr>) -> Result<Expr> {
        let [x] = <[Expr; 1]>::try_from(args).map_err(|_| {
            datafusion::error::DataFusionError::Execution(format!(
                "{} takes 1 argument",
                self.name()
            ))
        })?;
        let whole = |e: Expr| cast(e, DataType::Int64);
        Ok(match self.step {
            Step::Root => sqrt(greatest(vec![x, lit(0.0)])),
            Step::Nearest => whole(round(vec![x])),
            Step::Down => whole(floor(binary(x, Operator::Plus, lit(WHOLE_TOLERANCE)))),
            Step::Up => whole(ceil(binary(x, Operator::Minus, lit(WHOLE_TOLERANCE)))),
        })
    }

    fn value(&self, x: f64) -> f64 {
        match self.step {
            // As `greatest`: NaN is above every number, and -0 below 0.
            Step::Root if x.is_nan() => x,
            Step::Root if x > 0.0 => x.sqrt(),
            Step::Root => 0.0,
            Step::Nearest => x.round(),
            Step::Down => (x + WHOLE_TOLERANCE).floor(),
            Step::Up => (x - WHOLE_TOLERANCE).ceil(),
        }
    }
}

impl ScalarUDFImpl for StepFn {
    fn name(&self) -> &str {
        match self.step {
            Step::Root => "sluice_root",
            Step::Nearest => "sluice_count",
            Step::Down => "sluice_count_low",
            Step::Up => "sluice_count_high",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.step {
            Step::Root => DataType::Float64,
            _ => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 1 {
            return exec_err!("{} takes 1 argument", self.name());
        }
        let cols = float_arguments(&args)?;
        let out: Float64Array = match self.step {
            Step::Root => (0..args.number_rows)
                .map(|i| Some(self.value(at(&cols[0], i).unwrap_or(0.0))))
                .collect(),
            _ => (0..args.number_rows)
                .map(|i| at(&cols[0], i).map(|x| self.value(x)))
                .collect(),
        };
        Ok(ColumnarValue::Array(match self.step {
            Step::Root => Arc::new(out),
            // As SQL's CAST: an error, not a NULL, for what no BIGINT holds.
            _ => cast_with_options(
                &out,
                &DataType::Int64,
                &CastOptions {
                    safe: false,
                    ..Default::default()
                },
            )?,
        }))
    }
}

/// A function's arguments as Float64 columns, what every function here computes in.
fn float_arguments(args: &ScalarFunctionArgs) -> Result<Vec<Float64Array>> {
    ColumnarValue::values_to_arrays(&args.args)?
        .iter()
        .map(|a| {
            Ok(cast_array(a, &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone())
        })
        .collect()
}

/// Row `i` of a column, `None` when NULL.
fn at(column: &Float64Array, i: usize) -> Option<f64> {
    (!column.is_null(i)).then(|| column.value(i))
}

fn call(shape: Shape, side: Side, args: Vec<Expr>) -> Expr {
    let n = args.len();
    Arc::new(ScalarUDF::new_from_impl(Bound {
        shape,
        side,
        signature: Signature::any(n, Volatility::Immutable),
    }))
    .call(args)
}

/// `plan` with every bound written as the plain SQL expression it computes, for engines
/// that know only DataFusion's functions (a Ballista cluster's executors).
pub(crate) fn portable(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| {
                let Expr::ScalarFunction(f) = &e else {
                    return Ok(Transformed::no(e));
                };
                if let Some(step) = f.func.inner().downcast_ref::<StepFn>() {
                    return Ok(Transformed::yes(step.expression(f.args.clone())?));
                }
                if f.func.inner().downcast_ref::<EffectiveUnits>().is_some() {
                    return Ok(Transformed::yes(EffectiveUnits::expression(
                        f.args.clone(),
                    )?));
                }
                let Some(bound) = f.func.inner().downcast_ref::<Bound>() else {
                    return Ok(Transformed::no(e));
                };
                Ok(Transformed::yes(bound.expression(f.args.clone())?))
            })
        })
    })
    .map(|t| t.data)
}

fn binary(l: Expr, op: Operator, r: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

fn f64(e: Expr) -> Expr {
    cast(e, DataType::Float64)
}

/// `t_quantile` as an expression of `units`.
fn t_quantile_expr(units: Expr) -> Result<Expr> {
    let df = binary(f64(units), Operator::Minus, lit(1.0));
    let over = |e: Expr| binary(e, Operator::Divide, df.clone());
    let series = binary(
        lit(Z),
        Operator::Plus,
        over(binary(
            lit(G[0]),
            Operator::Plus,
            over(binary(
                lit(G[1]),
                Operator::Plus,
                over(binary(lit(G[2]), Operator::Plus, over(lit(G[3])))),
            )),
        )),
    );
    when(df.clone().lt_eq(lit(1.0)), lit(12.706))
        .when(df.lt_eq(lit(2.0)), lit(4.303))
        .otherwise(series)
}

impl Bound {
    /// The expression this bound computes from `args`, as `invoke_with_args` does.
    fn expression(&self, args: Vec<Expr>) -> Result<Expr> {
        let null = lit(ScalarValue::Float64(None));
        let sign = lit(self.side.sign());
        match (self.shape, args.as_slice()) {
            (Shape::Estimate, [est, se, units, floor @ ..]) if floor.len() <= 1 => {
                let t = t_quantile_expr(units.clone())?;
                let width = binary(
                    binary(sign, Operator::Multiply, t),
                    Operator::Multiply,
                    abs(f64(se.clone())),
                );
                let bound = binary(f64(est.clone()), Operator::Plus, width);
                let known = f64(units.clone())
                    .gt_eq(lit(2.0))
                    .and(bound.clone().is_not_null());
                // As the function: a NULL floor is no floor (`greatest` skips it), and a
                // floor is no bound where there is none.
                let bound = match floor {
                    [f] => greatest(vec![bound, f64(f.clone())]),
                    _ => bound,
                };
                when(known, bound).otherwise(null)
            }
            (Shape::Ratio, [k, a, b, sa, sb, cov, units]) => {
                let (k, a, b) = (f64(k.clone()), f64(a.clone()), f64(b.clone()));
                let (sa, sb, cov) = (f64(sa.clone()), f64(sb.clone()), f64(cov.clone()));
                // As the function: NULL when any input is (`greatest` would skip a
                // NULL variance).
                let known = sa
                    .clone()
                    .is_not_null()
                    .and(sb.clone().is_not_null())
                    .and(cov.clone().is_not_null());
                let q = binary(a, Operator::Divide, b.clone());
                let var = binary(
                    binary(
                        binary(sa.clone(), Operator::Multiply, sa),
                        Operator::Minus,
                        binary(
                            binary(lit(2.0), Operator::Multiply, q.clone()),
                            Operator::Multiply,
                            cov,
                        ),
                    ),
                    Operator::Plus,
                    binary(
                        binary(q.clone(), Operator::Multiply, q.clone()),
                        Operator::Multiply,
                        binary(sb.clone(), Operator::Multiply, sb),
                    ),
                );
                let se = binary(
                    abs(binary(k.clone(), Operator::Divide, b.clone())),
                    Operator::Multiply,
                    sqrt(greatest(vec![var, lit(0.0)])),
                );
                let t = t_quantile_expr(units.clone())?;
                let width = binary(binary(sign, Operator::Multiply, t), Operator::Multiply, se);
                when(
                    f64(units.clone())
                        .gt_eq(lit(2.0))
                        .and(b.clone().not_eq(lit(0.0)))
                        .and(known),
                    binary(binary(k, Operator::Multiply, q), Operator::Plus, width),
                )
                .otherwise(null)
            }
            (Shape::Skewed, [r, se, units, d, nnn, nnd, ndd, ddd]) => {
                let (r, se, d) = (f64(r.clone()), abs(f64(se.clone())), f64(d.clone()));
                let mul = |x: Expr, y: Expr| binary(x, Operator::Multiply, y);
                let div = |x: Expr, y: Expr| binary(x, Operator::Divide, y);
                let add = |x: Expr, y: Expr| binary(x, Operator::Plus, y);
                let sub = |x: Expr, y: Expr| binary(x, Operator::Minus, y);
                let r2 = mul(r.clone(), r.clone());
                let terms = [
                    f64(nnn.clone()),
                    mul(mul(lit(-3.0), r.clone()), f64(nnd.clone())),
                    mul(mul(lit(3.0), r2.clone()), f64(ndd.clone())),
                    mul(mul(lit(-1.0), mul(r2, r.clone())), f64(ddd.clone())),
                ];
                let total = terms.iter().cloned().reduce(add).expect("four terms");
                let scale = terms
                    .iter()
                    .cloned()
                    .map(abs)
                    .reduce(add)
                    .expect("four terms");
                let se3 = mul(mul(se.clone(), se.clone()), se.clone());
                let a = div(
                    div(total.clone(), mul(mul(d.clone(), d.clone()), d.clone())),
                    se3,
                );
                // As the function: no skewness where it is unknown or rounding noise.
                let a = when(
                    se.clone()
                        .gt(lit(0.0))
                        .and(d.clone().not_eq(lit(0.0)))
                        .and(abs(total).gt(mul(lit(1e-9), scale))),
                    least(vec![
                        greatest(vec![a, lit(-MAX_SKEWNESS)]),
                        lit(MAX_SKEWNESS),
                    ]),
                )
                .otherwise(lit(0.0))?;
                let x = mul(lit(-self.side.sign()), t_quantile_expr(units.clone())?);
                let inverse = when(abs(a.clone()).lt(lit(1e-12)), x.clone()).otherwise(mul(
                    div(lit(3.0), a.clone()),
                    sub(
                        cbrt(add(lit(1.0), mul(a.clone(), sub(x, div(a, lit(6.0)))))),
                        lit(1.0),
                    ),
                ))?;
                let known = [nnn, nnd, ndd, ddd]
                    .into_iter()
                    .map(|c| c.clone().is_not_null())
                    .reduce(|x, y| x.and(y))
                    .expect("four sums");
                when(
                    f64(units.clone()).gt_eq(lit(2.0)).and(known),
                    sub(r, mul(se, inverse)),
                )
                .otherwise(null)
            }
            (Shape::Proportion, [k, a, b, sa, sb, cov, units, rows]) => {
                let (k, a, b) = (f64(k.clone()), f64(a.clone()), f64(b.clone()));
                let (sa, sb, cov) = (f64(sa.clone()), f64(sb.clone()), f64(cov.clone()));
                // As the function: NULL when any input is (`greatest` would skip one).
                let known = a
                    .clone()
                    .is_not_null()
                    .and(sa.clone().is_not_null())
                    .and(sb.clone().is_not_null())
                    .and(cov.clone().is_not_null())
                    .and(rows.clone().is_not_null());
                let mul = |x: Expr, y: Expr| binary(x, Operator::Multiply, y);
                let div = |x: Expr, y: Expr| binary(x, Operator::Divide, y);
                let add = |x: Expr, y: Expr| binary(x, Operator::Plus, y);
                let sub = |x: Expr, y: Expr| binary(x, Operator::Minus, y);
                let p = least(vec![greatest(vec![div(a, b.clone()), lit(0.0)]), lit(1.0)]);
                let var = div(
                    add(
                        sub(mul(sa.clone(), sa), mul(mul(lit(2.0), p.clone()), cov)),
                        mul(mul(p.clone(), p.clone()), mul(sb.clone(), sb)),
                    ),
                    mul(b.clone(), b.clone()),
                );
                let u = f64(units.clone());
                let (lo, hi) = wilson_expr(p, var, units, rows)?;
                let (lo, hi) = (mul(k.clone(), lo), mul(k, hi));
                let bound = match self.side {
                    Side::Low => least(vec![lo, hi]),
                    Side::High => greatest(vec![lo, hi]),
                };
                when(u.gt_eq(lit(2.0)).and(b.not_eq(lit(0.0))).and(known), bound).otherwise(null)
            }
            (Shape::Share, [p, se, units, rows]) => {
                let (p, se) = (f64(p.clone()), f64(se.clone()));
                let known = p
                    .clone()
                    .is_not_null()
                    .and(se.clone().is_not_null())
                    .and(rows.clone().is_not_null());
                let p = least(vec![greatest(vec![p, lit(0.0)]), lit(1.0)]);
                let var = binary(se.clone(), Operator::Multiply, se);
                let (lo, hi) = wilson_expr(p, var, units, rows)?;
                let bound = match self.side {
                    Side::Low => lo,
                    Side::High => hi,
                };
                when(f64(units.clone()).gt_eq(lit(2.0)).and(known), bound).otherwise(null)
            }
            _ => exec_err!("{} takes {} arguments", self.name(), args.len()),
        }
    }
}

/// `wilson` as expressions of a share `p` (in [0, 1]), its variance, its units and the
/// sample's rows.
fn wilson_expr(p: Expr, var: Expr, units: &Expr, rows: &Expr) -> Result<(Expr, Expr)> {
    let mul = |x: Expr, y: Expr| binary(x, Operator::Multiply, y);
    let div = |x: Expr, y: Expr| binary(x, Operator::Divide, y);
    let add = |x: Expr, y: Expr| binary(x, Operator::Plus, y);
    let sub = |x: Expr, y: Expr| binary(x, Operator::Minus, y);
    let pq = mul(p.clone(), sub(lit(1.0), p.clone()));
    let n = when(
        var.clone()
            .gt(lit(0.0))
            .and(p.clone().gt(lit(0.0)))
            .and(p.clone().lt(lit(1.0))),
        least(vec![div(pq.clone(), var), f64(rows.clone())]),
    )
    .otherwise(f64(units.clone()))?;
    let t = t_quantile_expr(units.clone())?;
    let c = div(mul(t.clone(), t), n);
    let center = div(add(p, div(c.clone(), lit(2.0))), add(lit(1.0), c.clone()));
    let half = div(
        sqrt(add(
            mul(c.clone(), pq),
            div(mul(c.clone(), c.clone()), lit(4.0)),
        )),
        add(lit(1.0), c),
    );
    Ok((sub(center.clone(), half.clone()), add(center, half)))
}

impl ScalarUDFImpl for Bound {
    fn name(&self) -> &str {
        match (self.shape, self.side) {
            (Shape::Estimate, Side::Low) => "sluice_interval_low",
            (Shape::Estimate, Side::High) => "sluice_interval_high",
            (Shape::Ratio, Side::Low) => "sluice_ratio_interval_low",
            (Shape::Ratio, Side::High) => "sluice_ratio_interval_high",
            (Shape::Proportion, Side::Low) => "sluice_proportion_interval_low",
            (Shape::Proportion, Side::High) => "sluice_proportion_interval_high",
            (Shape::Skewed, Side::Low) => "sluice_skewed_interval_low",
            (Shape::Skewed, Side::High) => "sluice_skewed_interval_high",
            (Shape::Share, Side::Low) => "sluice_share_interval_low",
            (Shape::Share, Side::High) => "sluice_share_interval_high",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let want = match (self.shape, self.side) {
            (Shape::Estimate, Side::Low) => 3..=4,
            (Shape::Estimate, Side::High) => 3..=3,
            (Shape::Ratio, _) => 7..=7,
            (Shape::Proportion | Shape::Skewed, _) => 8..=8,
            (Shape::Share, _) => 4..=4,
        };
        if !want.contains(&args.args.len()) {
            return exec_err!("{} takes {want:?} arguments", self.name());
        }
        let cols = float_arguments(&args)?;
        let sign = self.side.sign();
        let rows = args.number_rows;
        let value = |i: usize, c: usize| at(&cols[c], i);
        let out: Float64Array = (0..rows)
            .map(|i| match self.shape {
                Shape::Estimate => {
                    let (est, se, units) = (value(i, 0)?, value(i, 1)?, value(i, 2)?);
                    let floor = (cols.len() > 3).then(|| value(i, 3)).flatten();
                    (units >= 2.0).then(|| {
                        let bound = est + sign * t_quantile(units) * se.abs();
                        floor.map_or(bound, |f| bound.max(f))
                    })
                }
                Shape::Ratio => {
                    let (k, a, b) = (value(i, 0)?, value(i, 1)?, value(i, 2)?);
                    let (sa, sb, cov, units) =
                        (value(i, 3)?, value(i, 4)?, value(i, 5)?, value(i, 6)?);
                    if units < 2.0 || b == 0.0 {
                        return None;
                    }
                    let q = a / b;
                    let var = sa * sa - 2.0 * q * cov + q * q * sb * sb;
                    let se = (k / b).abs() * var.max(0.0).sqrt();
                    Some(k * q + sign * t_quantile(units) * se)
                }
                Shape::Skewed => {
                    let (r, se, units, d) =
                        (value(i, 0)?, value(i, 1)?, value(i, 2)?, value(i, 3)?);
                    if units < 2.0 {
                        return None;
                    }
                    let cubes = [value(i, 4)?, value(i, 5)?, value(i, 6)?, value(i, 7)?];
                    let se = se.abs();
                    let a = skewness(r, se, d, cubes);
                    Some(r - se * hall_inverse(-sign * t_quantile(units), a))
                }
                Shape::Share => {
                    let (p, se, units, rows) =
                        (value(i, 0)?, value(i, 1)?, value(i, 2)?, value(i, 3)?);
                    if units < 2.0 {
                        return None;
                    }
                    let (lo, hi) = wilson(p, se * se, units, rows);
                    Some(match self.side {
                        Side::Low => lo,
                        Side::High => hi,
                    })
                }
                Shape::Proportion => {
                    let (k, a, b) = (value(i, 0)?, value(i, 1)?, value(i, 2)?);
                    let (sa, sb, cov, units) =
                        (value(i, 3)?, value(i, 4)?, value(i, 5)?, value(i, 6)?);
                    let rows = value(i, 7)?;
                    if units < 2.0 || b == 0.0 {
                        return None;
                    }
                    let p = (a / b).clamp(0.0, 1.0);
                    let var = (sa * sa - 2.0 * p * cov + p * p * sb * sb) / (b * b);
                    let (lo, hi) = wilson(p, var, units, rows);
                    let (lo, hi) = (k * lo, k * hi);
                    Some(match self.side {
                        Side::Low => lo.min(hi),
                        Side::High => lo.max(hi),
                    })
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
    use datafusion::prelude::{SessionContext, col, lit};

    /// Student's t, 0.975, for 1 to 29 degrees of freedom (the printed table).
    const TABLE: [f64; 29] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045,
    ];

    #[test]
    fn t_quantiles_follow_the_table_and_fall_to_the_normals() {
        for (i, want) in TABLE.iter().enumerate() {
            let df = i + 1;
            let got = t_quantile(df as f64 + 1.0);
            assert!(
                (got - want).abs() / want < 0.0015,
                "df {df}: {got} vs {want}"
            );
        }
        // 30, 60 and 120 degrees as printed tables give them; the normal's 1.96 at the end.
        let at = |df: f64| t_quantile(df + 1.0);
        assert!((at(30.0) - 2.042).abs() < 0.001, "{}", at(30.0));
        assert!((at(60.0) - 2.000).abs() < 0.001, "{}", at(60.0));
        assert!((at(120.0) - 1.980).abs() < 0.001, "{}", at(120.0));
        assert!((at(100_000.0) - 1.960).abs() < 0.001, "{}", at(100_000.0));
    }

    /// The low and high bounds `bound` computes over `batch`.
    async fn low_high(
        batch: RecordBatch,
        bound: impl Fn(Side) -> Expr,
    ) -> (Float64Array, Float64Array) {
        let out = SessionContext::new()
            .read_batch(batch)
            .unwrap()
            .select(vec![
                bound(Side::Low).alias("lo"),
                bound(Side::High).alias("hi"),
            ])
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = |i: usize| out[0].column(i).as_primitive::<Float64Type>().clone();
        (column(0), column(1))
    }

    #[tokio::test]
    async fn bounds_are_null_below_two_units_and_symmetric_above() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "est",
                Arc::new(Float64Array::from(vec![
                    Some(100.0),
                    Some(100.0),
                    None,
                    Some(7.0),
                ])) as ArrayRef,
            ),
            (
                "se",
                Arc::new(Float64Array::from(vec![10.0, 10.0, 1.0, 0.0])) as ArrayRef,
            ),
            (
                "u",
                Arc::new(Int64Array::from(vec![1, 31, 5, 5])) as ArrayRef,
            ),
        ])
        .unwrap();
        let (lo, hi) = low_high(batch, |side| {
            interval(col("est"), col("se"), col("u"), side)
        })
        .await;
        assert!(lo.is_null(0) && hi.is_null(0), "one unit: no interval");
        let t = t_quantile(31.0);
        assert!((lo.value(1) - (100.0 - t * 10.0)).abs() < 1e-9);
        assert!((hi.value(1) - (100.0 + t * 10.0)).abs() < 1e-9);
        assert!(lo.is_null(2) && hi.is_null(2), "no estimate: no interval");
        assert_eq!((lo.value(3), hi.value(3)), (7.0, 7.0));
    }

    #[test]
    fn proportions_stay_inside_zero_and_one_and_lean_to_the_middle() {
        // A share of 1 seen in 30 units: Wilson's low bound n / (n + t²), not 1.
        let t = t_quantile(30.0);
        let (lo, hi) = wilson(1.0, 0.0, 30.0, 300.0);
        assert!((lo - 30.0 / (30.0 + t * t)).abs() < 1e-12, "{lo}");
        assert!((hi - 1.0).abs() < 1e-12, "{hi}");
        let (lo, hi) = wilson(0.0, 0.0, 30.0, 300.0);
        assert!(lo.abs() < 1e-12 && hi > 0.05 && hi < 0.2, "{lo} {hi}");
        // Near 0.9 from 29 units: shifted toward the middle, inside [0, 1].
        let (lo, hi) = wilson(0.9, 0.9 * 0.1 / 29.0, 29.0, 29.0);
        assert!(0.0 < lo && hi < 1.0 && (0.9 - lo) > (hi - 0.9), "{lo} {hi}");
        // Far from the edges with a large effective size: the linearized interval.
        let (lo, hi) = wilson(0.5, 1e-6, 1000.0, 1e6);
        let t = t_quantile(1000.0);
        assert!((lo - (0.5 - t * 1e-3)).abs() < 1e-5, "{lo}");
        assert!((hi - (0.5 + t * 1e-3)).abs() < 1e-5, "{hi}");
        // 23 rows that all but show the same share: a tiny variance, but the interval is
        // that of 23 rows, not of the million the variance would claim.
        let (lo, hi) = wilson(0.999, 1e-6 * 0.999 * 0.001, 4.0, 23.0);
        assert!(lo < 0.9 && hi > 0.999, "{lo} {hi}");
    }

    /// Sums as a rows-as-units sample of `y` with weight `w` gives them: (r, se, d, cubes).
    fn average_of(y: &[f64], w: f64) -> (f64, f64, f64, [f64; 4]) {
        let (q, q3) = (1.0 - 1.0 / w, (1.0 - 1.0 / w) * (1.0 - 2.0 / w));
        let (n, d): (Vec<f64>, Vec<f64>) = y.iter().map(|v| (w * v, w)).unzip();
        let total =
            |f: &dyn Fn(f64, f64) -> f64| -> f64 { n.iter().zip(&d).map(|(a, b)| f(*a, *b)).sum() };
        let (big_n, big_d) = (total(&|a, _| a), total(&|_, b| b));
        let r = big_n / big_d;
        let units = y.len() as f64;
        let var = (total(&|a, _| q * a * a) - 2.0 * r * total(&|a, b| q * a * b)
            + r * r * total(&|_, b| q * b * b))
            / (big_d * big_d)
            * units
            / (units - 1.0);
        let cubes = [
            total(&|a, _| q3 * a * a * a),
            total(&|a, b| q3 * a * a * b),
            total(&|a, b| q3 * a * b * b),
            total(&|_, b| q3 * b * b * b),
        ];
        (r, var.sqrt(), big_d, cubes)
    }

    #[test]
    fn skewed_averages_lean_toward_their_tail() {
        let bounds = |y: &[f64]| {
            let (r, se, d, cubes) = average_of(y, 10.0);
            let a = skewness(r, se, d, cubes);
            let t = t_quantile(y.len() as f64);
            (
                r,
                se,
                a,
                r - se * hall_inverse(t, a),
                r - se * hall_inverse(-t, a),
            )
        };
        // Symmetric residuals: no skewness, the t interval.
        let (r, se, a, lo, hi) = bounds(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let t = t_quantile(5.0);
        assert_eq!(a, 0.0);
        assert!((lo - (r - t * se)).abs() < 1e-9 && (hi - (r + t * se)).abs() < 1e-9);
        // A long right tail: the interval reaches further up than down, and its low
        // bound is above the t interval's.
        let tail = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 20.0];
        let (r, se, a, lo, hi) = bounds(&tail);
        let t = t_quantile(10.0);
        assert!(a > 0.0, "{a}");
        assert!(hi - r > r - lo, "{lo} {r} {hi}");
        assert!(lo > r - t * se, "{lo} vs {}", r - t * se);
        // Mirrored, the other way.
        let mirrored: Vec<f64> = tail.iter().map(|v| 30.0 - v).collect();
        let (r, _, a, lo, hi) = bounds(&mirrored);
        assert!(a < 0.0 && r - lo > hi - r, "{lo} {r} {hi}");
        // Values far from 0 with little spread: the expansion cancels to rounding, and
        // the skewness is taken as 0 rather than as that noise.
        let far: Vec<f64> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|v| 1e9 + v).collect();
        assert_eq!(bounds(&far).2, 0.0);
    }

    /// The plain expressions `portable` writes for a cluster answer as the functions do.
    #[tokio::test]
    async fn portable_bounds_answer_as_the_functions_do() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "est",
                Arc::new(Float64Array::from(vec![
                    Some(100.0),
                    Some(100.0),
                    None,
                    Some(7.0),
                    Some(-3.0),
                    Some(5.0),
                ])) as ArrayRef,
            ),
            (
                "se",
                Arc::new(Float64Array::from(vec![
                    Some(10.0),
                    Some(10.0),
                    Some(1.0),
                    Some(0.0),
                    Some(2.5),
                    None,
                ])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(Float64Array::from(vec![100.0, 40.0, 10.0, 0.0, -8.0, 4.0])) as ArrayRef,
            ),
            (
                "u",
                Arc::new(Int64Array::from(vec![1, 31, 5, 5, 3, 9])) as ArrayRef,
            ),
        ])
        .unwrap();
        let ctx = SessionContext::new();
        let df = ctx.read_batch(batch).unwrap();
        let exprs = |side| {
            vec![
                interval(col("est"), col("se"), col("u"), side),
                ratio_interval(
                    lit(2.0),
                    col("est"),
                    col("b"),
                    col("se"),
                    lit(3.0),
                    lit(1.5),
                    col("u"),
                    side,
                ),
            ]
        };
        let mut all = exprs(Side::Low);
        all.extend(exprs(Side::High));
        // Effective units below, at and above their count, and over a zero, a negative
        // and an unknown sum of squares.
        all.push(effective_units(col("u"), col("se"), col("est")));
        // A floored low bound: below, above and without its floor (`b`, then NULL).
        all.push(low_at_least(col("est"), col("se"), col("u"), col("b")));
        all.push(low_at_least(
            col("est"),
            col("se"),
            col("u"),
            lit(ScalarValue::Float64(None)),
        ));
        // Shares: inside (0, 1) with a spread, below 0 (clamped), of b = 0, NULL; a share
        // of 1 with no spread, times a negative factor.
        for side in [Side::Low, Side::High] {
            all.push(proportion_interval(
                lit(1.0),
                col("se"),
                col("b"),
                lit(0.5),
                lit(1.0),
                lit(0.2),
                col("u"),
                lit(3.0),
                side,
            ));
            all.push(proportion_interval(
                lit(-3.0),
                col("b"),
                col("b"),
                lit(0.0),
                lit(0.0),
                lit(0.0),
                col("u"),
                lit(100.0),
                side,
            ));
            // Shares as averages: clamped above 1 (`est` / 100 reaches 1), with and
            // without spread, NULL.
            all.push(share_interval(
                binary(col("est"), Operator::Divide, lit(100.0)),
                binary(col("se"), Operator::Divide, lit(100.0)),
                col("u"),
                lit(7.0),
                side,
            ));
            // Averages leaning either way, and one whose sums are all zero.
            all.push(skewed_interval(
                vec![
                    col("est"),
                    col("se"),
                    col("u"),
                    col("b"),
                    col("est"),
                    col("se"),
                    col("b"),
                    lit(3.0),
                ],
                side,
            ));
            all.push(skewed_interval(
                vec![
                    col("est"),
                    col("se"),
                    col("u"),
                    lit(2.0),
                    lit(0.0),
                    lit(0.0),
                    lit(0.0),
                    lit(0.0),
                ],
                side,
            ));
        }
        // The steps of a count's bounds and of a standard error: negative, NULL, -0 and
        // NaN roots; rounding half away from 0; bounds a rounding error missed by a hair.
        let third = binary(col("est"), Operator::Divide, lit(3.0));
        for x in [col("b"), col("est"), lit(-0.0), lit(f64::NAN)] {
            all.push(step(Step::Root, x));
        }
        for x in [third.clone(), lit(2.5), lit(-2.5)] {
            all.push(step(Step::Nearest, x));
        }
        for x in [third, lit(333.000_000_01), lit(332.999_999_99), col("se")] {
            all.push(step(Step::Down, x.clone()));
            all.push(step(Step::Up, x));
        }
        let all: Vec<Expr> = all
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.alias(format!("c{i}")))
            .collect();
        let plan = df.select(all).unwrap().into_unoptimized_plan();
        let run = |plan: LogicalPlan| {
            let ctx = ctx.clone();
            async move {
                ctx.execute_logical_plan(plan)
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap()
            }
        };
        let with_functions = run(plan.clone()).await;
        let plain = portable(plan).unwrap();
        assert!(
            !format!("{}", plain.display_indent()).contains("sluice_"),
            "{}",
            plain.display_indent()
        );
        let with_sql = run(plain).await;
        for c in 0..with_functions[0].num_columns() {
            let float = |column: &ArrayRef| {
                assert!(matches!(
                    column.data_type(),
                    DataType::Float64 | DataType::Int64
                ));
                cast_array(column, &DataType::Float64)
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .clone()
            };
            assert_eq!(
                with_functions[0].column(c).data_type(),
                with_sql[0].column(c).data_type(),
                "column {c}"
            );
            let (x, y) = (
                float(with_functions[0].column(c)),
                float(with_sql[0].column(c)),
            );
            for i in 0..x.len() {
                assert_eq!(x.is_null(i), y.is_null(i), "column {c} row {i}");
                if !x.is_null(i) {
                    assert!(
                        (x.value(i) - y.value(i)).abs() < 1e-9
                            || (x.value(i).is_nan() && y.value(i).is_nan()),
                        "column {c} row {i}: {} vs {}",
                        x.value(i),
                        y.value(i)
                    );
                }
            }
        }
    }

    #[test]
    fn effective_units_are_kishs_count_between_two_and_the_units() {
        // Four units of equal variance are worth four; one carrying it all, one (so two,
        // the least an interval counts).
        assert_eq!(EffectiveUnits::value(4.0, Some(4.0), Some(4.0)), 4.0);
        assert_eq!(EffectiveUnits::value(4.0, Some(9.0), Some(81.0)), 2.0);
        // (3 + 1)² / (9 + 1) = 1.6 units: at least two. 100 parts: no more than counted.
        assert_eq!(EffectiveUnits::value(2.0, Some(4.0), Some(10.0)), 2.0);
        assert_eq!(EffectiveUnits::value(30.0, Some(10.0), Some(1.0)), 30.0);
        assert!((EffectiveUnits::value(30.0, Some(10.0), Some(20.0)) - 5.0).abs() < 1e-12);
        // Under two units there is no interval to widen; nothing known, nothing changed.
        assert_eq!(EffectiveUnits::value(1.0, Some(10.0), Some(20.0)), 1.0);
        assert_eq!(EffectiveUnits::value(7.0, None, Some(20.0)), 7.0);
        assert_eq!(EffectiveUnits::value(7.0, Some(3.0), Some(0.0)), 7.0);
    }

    #[tokio::test]
    async fn a_ratio_bound_is_the_linearized_error_and_null_over_zero() {
        // a = 50 ± 5, b = 100 ± 10, fully correlated: the ratio 0.5 has no error.
        let batch = RecordBatch::try_from_iter(vec![
            (
                "a",
                Arc::new(Float64Array::from(vec![50.0, 50.0, 50.0])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(Float64Array::from(vec![100.0, 100.0, 0.0])) as ArrayRef,
            ),
            (
                "sa",
                Arc::new(Float64Array::from(vec![5.0, 5.0, 5.0])) as ArrayRef,
            ),
            (
                "sb",
                Arc::new(Float64Array::from(vec![10.0, 10.0, 10.0])) as ArrayRef,
            ),
            (
                "cov",
                Arc::new(Float64Array::from(vec![50.0, 0.0, 0.0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let bound = |side| {
            ratio_interval(
                lit(2.0),
                col("a"),
                col("b"),
                col("sa"),
                col("sb"),
                col("cov"),
                lit(10.0),
                side,
            )
        };
        let (lo, hi) = low_high(batch, bound).await;
        assert!((lo.value(0) - 1.0).abs() < 1e-12 && (hi.value(0) - 1.0).abs() < 1e-12);
        // Independent: se = 2/100 · √(25 + 0.25·100) = 0.02·√50.
        let want = t_quantile(10.0) * 0.02 * 50f64.sqrt();
        assert!((hi.value(1) - 1.0 - want).abs() < 1e-12, "{}", hi.value(1));
        assert!((1.0 - lo.value(1) - want).abs() < 1e-12, "{}", lo.value(1));
        assert!(
            lo.is_null(2) && hi.is_null(2),
            "a ratio over 0 has no interval"
        );
    }
}
