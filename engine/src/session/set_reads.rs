//! Which columns of a subplan a plan reads, when it reads every copy of it only as a set.
//!
//! A plan's rows matter only as a set of some of its columns (a *set context*) in an
//! `IN` or `EXISTS` subquery's plan, for its output (`NOT IN` and `NOT EXISTS` too: which
//! values are there, NULL among them, not how many times); below an aggregate without
//! aggregate functions (`DISTINCT`, `GROUP BY` alone), for its group keys; on the side of
//! a semi or anti join that is only looked up, for its keys and condition's columns; and
//! from a set context down through projections (the columns their expressions read),
//! filters (and the columns their conditions read), aliases, and inner joins (each side
//! for its columns among those, its keys and its condition's columns). Not through
//! anything else: a limit, a sort, a window, an outer join, an aggregate function, a
//! volatile expression or a subquery in an expression make how many rows there are, or
//! which, matter.
//!
//! `shared_nodes::share_repeated` computes a `WITH` query that every reference reads
//! as a set as the distinct values of the columns they read (TPC-DS q95's `ws_wh`, a
//! self-join of `web_sales` read only for its order numbers in two `IN`s): the readers
//! see the same values, each once. DataFusion's `eliminate_join` then computes the
//! self-join as a semi join below the `DISTINCT` (60,000 order numbers, not 6.6 M pairs).

use std::collections::HashSet;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};

/// The columns a set context needs of a plan's output (of its schema).
type Needed = HashSet<Column>;

/// The columns of `subplan` that `plan` reads, when it reads each of its `reads` copies
/// in a set context (see the module's documentation): the distinct values of those
/// columns then give every reader the same answer. `None` if
/// a copy is read otherwise, or is not reached (a subquery where no context is known).
pub(crate) fn set_context_reads(
    plan: &LogicalPlan,
    subplan: &LogicalPlan,
    reads: usize,
) -> Option<HashSet<Column>> {
    let mut read = Some(Needed::new());
    let mut reached = 0;
    visit(plan, None, subplan, &mut read, &mut reached);
    read.filter(|_| reached == reads)
}

/// `a == b`, names first: `LogicalPlan`'s derived equality compares an alias's input
/// (the whole plan below it) before its name, and the walks here and in `shared_nodes`
/// compare each node of a plan with a subplan; two aliases of different names are told
/// apart at once. Here, below `shared_nodes`, which calls this module.
pub(crate) fn same_plan(a: &LogicalPlan, b: &LogicalPlan) -> bool {
    match (a, b) {
        (LogicalPlan::SubqueryAlias(x), LogicalPlan::SubqueryAlias(y)) => {
            x.alias == y.alias && (std::ptr::eq(a, b) || a == b)
        }
        _ => std::ptr::eq(a, b) || a == b,
    }
}

fn visit(
    plan: &LogicalPlan,
    needed: Option<Needed>,
    subplan: &LogicalPlan,
    read: &mut Option<Needed>,
    reached: &mut usize,
) {
    if same_plan(plan, subplan) {
        *reached += 1;
        match (needed, read.as_mut()) {
            (Some(needed), Some(read)) => read.extend(needed),
            _ => *read = None,
        }
        return;
    }
    for expr in plan.expressions() {
        // The closure never fails, so neither does the walk.
        let _ = expr.apply(|e| {
            match e {
                Expr::InSubquery(subquery) => {
                    let inner = &subquery.subquery.subquery;
                    let output = inner.schema().columns().into_iter().collect();
                    visit(inner, Some(output), subplan, read, reached);
                }
                Expr::Exists(exists) => {
                    let inner = &exists.subquery.subquery;
                    visit(inner, Some(Needed::new()), subplan, read, reached);
                }
                Expr::ScalarSubquery(subquery) => {
                    visit(&subquery.subquery, None, subplan, read, reached);
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    let needs = child_needs(plan, needed.as_ref());
    for (child, needed) in plan.inputs().into_iter().zip(needs) {
        visit(child, needed, subplan, read, reached);
    }
}

/// The columns `exprs` read, or `None` if one of them is volatile or holds a subquery
/// (its value can depend on how many rows there are).
fn columns_read<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Option<Needed> {
    let mut columns = Needed::new();
    for expr in exprs {
        if expr.is_volatile() || crate::optimizer::holds_subquery(expr) {
            return None;
        }
        columns.extend(expr.column_refs().into_iter().cloned());
    }
    Some(columns)
}

/// Of `columns`, those of `schema`.
fn of_side(columns: &Needed, schema: &DFSchema) -> Needed {
    columns
        .iter()
        .filter(|c| schema.has_column(c))
        .cloned()
        .collect()
}

/// For each child of `plan` (in order), the columns it is a set context for, if it is
/// one; `needed`: what `plan` is a set context for, if it is one.
fn child_needs(plan: &LogicalPlan, needed: Option<&Needed>) -> Vec<Option<Needed>> {
    let none = || vec![None; plan.inputs().len()];
    match plan {
        LogicalPlan::Aggregate(aggregate)
            if aggregate.aggr_expr.is_empty()
                && !aggregate
                    .group_expr
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSet(_))) =>
        {
            vec![columns_read(&aggregate.group_expr)]
        }
        LogicalPlan::Distinct(Distinct::All(input)) => {
            vec![Some(input.schema().columns().into_iter().collect())]
        }
        LogicalPlan::Projection(projection) if needed.is_some() => {
            vec![columns_read(&projection.expr)]
        }
        LogicalPlan::Filter(filter) => match needed {
            Some(needed) => vec![columns_read([&filter.predicate]).map(|mut read| {
                read.extend(needed.iter().cloned());
                read
            })],
            None => none(),
        },
        LogicalPlan::SubqueryAlias(alias) => match needed {
            // The same columns, by position, under the input's names.
            Some(needed) => {
                let input = alias.input.schema();
                let mapped: Option<Needed> = needed
                    .iter()
                    .map(|c| {
                        let i = alias.schema.index_of_column(c).ok()?;
                        Some(Column::from(input.qualified_field(i)))
                    })
                    .collect();
                vec![mapped]
            }
            None => none(),
        },
        LogicalPlan::Join(join) => {
            let Some(read) = columns_read(
                join.on
                    .iter()
                    .flat_map(|(l, r)| [l, r])
                    .chain(join.filter.as_ref()),
            ) else {
                return none();
            };
            let (left, right) = (join.left.schema(), join.right.schema());
            let side = |needed: &Needed, schema: &DFSchema| {
                let mut side = of_side(&read, schema);
                side.extend(of_side(needed, schema));
                side
            };
            let empty = Needed::new();
            match join.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti => {
                    vec![needed.map(|n| side(n, left)), Some(side(&empty, right))]
                }
                JoinType::RightSemi | JoinType::RightAnti => {
                    vec![Some(side(&empty, left)), needed.map(|n| side(n, right))]
                }
                JoinType::Inner => match needed {
                    Some(n) => vec![Some(side(n, left)), Some(side(n, right))],
                    None => none(),
                },
                _ => none(),
            }
        }
        _ => none(),
    }
}
