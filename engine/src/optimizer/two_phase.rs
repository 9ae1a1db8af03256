//! What `MixedDistinct` and `PreAggregateGroupingSets` share: each splits an aggregate
//! into an inner one, grouped more finely, that computes every output's parts, and an
//! outer one that combines the parts; a projection gives the outputs their names back.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, AggregateUDF, Expr, LogicalPlan, Projection, col, lit};

/// How the parts of a plain (not `DISTINCT`) aggregate combine.
pub(crate) enum Combine {
    /// A count: the sum of the parts' counts (0 where there are none).
    Count,
    /// `min`, `max`, an integer `sum` (and what a rule adds): the same function.
    Same,
}

/// `expr` (under its alias, if it has one) as an aggregate function without a `FILTER`,
/// an `ORDER BY` or a null treatment: the only ones either rule splits.
pub(crate) fn unfiltered(expr: &Expr) -> Option<&AggregateFunction> {
    let expr = match expr {
        Expr::Alias(alias) => alias.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(f) = expr else {
        return None;
    };
    let p = &f.params;
    (p.filter.is_none() && p.order_by.is_empty() && p.null_treatment.is_none()).then_some(f)
}

/// How the parts of `f` (not `DISTINCT`, its output of type `output`) combine, if they
/// do: `count`, `min`, `max`, and `sum` of integers (a float's rounding or a decimal's
/// type would change).
pub(crate) fn combine(f: &AggregateFunction, output: &DataType) -> Option<Combine> {
    match f.func.name() {
        "count" => Some(Combine::Count),
        "min" | "max" => Some(Combine::Same),
        "sum" if matches!(output, DataType::Int64 | DataType::UInt64) => Some(Combine::Same),
        _ => None,
    }
}

/// `func(args)`, plain: not distinct, no filter, no order.
pub(crate) fn plain(func: Arc<AggregateUDF>, args: Vec<Expr>) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        func,
        args,
        false,
        None,
        vec![],
        None,
    ))
}

/// The `i`th group key of the inner aggregate, and the expression the outer aggregate
/// reads it by: a column as it is, another expression under an alias.
pub(crate) fn inner_key(i: usize, key: &Expr) -> (Expr, Expr) {
    if let Expr::Column(c) = key {
        (key.clone(), Expr::Column(c.clone()))
    } else {
        let alias = format!("__sluice_group_{i}");
        (key.clone().alias(&alias), col(&alias))
    }
}

/// The name of the inner aggregate's part of output `i`.
pub(crate) fn part_name(i: usize) -> String {
    format!("__sluice_part_{i}")
}

/// Adds output `i`'s part (`f` over the inner groups) to `inner`, and to `outer` the
/// aggregate that combines the parts as `how` says.
pub(crate) fn split(
    i: usize,
    f: &AggregateFunction,
    how: &Combine,
    inner: &mut Vec<Expr>,
    outer: &mut Vec<Expr>,
) {
    let part = part_name(i);
    inner.push(plain(Arc::clone(&f.func), f.params.args.clone()).alias(&part));
    let func = match how {
        Combine::Count => sum_udaf(),
        Combine::Same => Arc::clone(&f.func),
    };
    outer.push(plain(func, vec![col(&part)]));
}

/// The output of a split aggregate from its combined column: a count is 0 where there
/// were no parts (a global aggregate over no rows), where the sum is NULL.
pub(crate) fn combined(how: &Combine, column: Expr) -> Expr {
    match how {
        Combine::Count => coalesce(vec![column, lit(0i64)]),
        Combine::Same => column,
    }
}

/// Column `i` of `outer`'s output.
pub(crate) fn column(outer: &Aggregate, i: usize) -> Expr {
    Expr::Column(Column::from(outer.schema.qualified_field(i)))
}

/// A projection of `values` (one per field of `original`) over `outer`, under the
/// names and qualifiers of `original`'s fields: the plan the rule puts in the place of
/// the aggregate that had `original` as its schema.
pub(crate) fn named_as(
    original: &DFSchema,
    values: Vec<Expr>,
    outer: Aggregate,
) -> Result<LogicalPlan> {
    let exprs = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let (qualifier, field) = original.qualified_field(i);
            value.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(outer)))?;
    Ok(LogicalPlan::Projection(projection))
}
