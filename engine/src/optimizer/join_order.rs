//! [`JoinOrder`], a logical optimizer rule: the order of a query's inner joins, chosen by
//! estimated rows instead of the order its `FROM` clause lists the tables in.
//!
//! Why: DataFusion joins inner relations in `FROM` order and only picks each join's
//! build side later. TPC-H q05 lists `customer, orders, lineitem, supplier, nation,
//! region`: the region's filter (`r_name = 'ASIA'`, one region in five) reaches the
//! customers only after `customer ⋈ orders ⋈ lineitem` has been built for all of them.
//! Started from the region, the same joins keep a fifth of the customers before
//! `orders`, and their orders before `lineitem` (BENCHMARKS.md, "Fifth pass").
//!
//! How:
//! - a tree of inner joins on column equalities (seen through the column-only
//!   projections between them) is flattened into its relations, the classes of columns
//!   its equalities make equal (`c_nationkey = s_nationkey` and `s_nationkey =
//!   n_nationkey` let customers join nations directly), and its other join conditions;
//! - each relation's rows are estimated from its sources' statistics (row counts, column
//!   ranges and string columns' dictionary sizes from the Parquet footers,
//!   `scan::statistics`) and its filters: an equality with a value keeps one
//!   distinct value of its column; the rest go to DataFusion's interval analysis (the
//!   session's `default_filter_selectivity` where it has none, as DataFusion's
//!   `FilterExec` assumes: 5% in Sluice's sessions);
//! - a join's rows are its inputs' rows multiplied, divided by the distinct values of the
//!   most selective class of columns it joins on (a column's distinct values: the count
//!   from the statistics, else the width of its integer range; at most its rows, and at
//!   most those of the smallest source's column in its class);
//! - dynamic programming over the connected sets of relations picks the tree (bushy
//!   allowed) whose joins put out the fewest rows in all; it replaces the query's own
//!   order only when that is under `MIN_GAIN` of the written order's rows.
//!
//! `OuterJoinsLast` (`outer_joins.rs`), the rule before this one, walks the same trees
//! with the same estimates to join an outer join among their relations after their
//! inner joins (`Rewrite::OuterJoinsLast`).
//!
//! A tree with a relation it cannot estimate (a source without statistics), a cross
//! product, a condition other than column equalities in its `ON` list, or more than
//! `MAX_RELATIONS` relations is left as written. The build side of each join stays
//! DataFusion's choice (`JoinSelection`, then `BuildOnFewerRows`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{
    Column, ColumnStatistics, DFSchema, DFSchemaRef, NullEquality, Result, TableReference,
};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    Expr, Filter, Join, JoinConstraint, JoinType, LogicalPlan, Operator, Projection, TableScan,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::execution_props::ExecutionProps;
use datafusion::physical_expr::{AnalysisContext, analyze, create_physical_expr};

/// The most relations a join tree may have for its order to be chosen: the dynamic
/// programming visits every split of every set, 3^n of them (59,049 at 10; TPC-H's
/// largest tree, q08's, has 8).
const MAX_RELATIONS: usize = 10;

/// The share of rows an equality with one value keeps where the column's distinct values
/// are unknown (a string column: footers give its range, not its count).
const VALUE_SELECTIVITY: f64 = 0.1;

/// How much smaller the chosen order's rows must be than the written order's for it to
/// replace it: estimates are rough, and a close call is left to the query's author.
const MIN_GAIN: f64 = 0.8;

/// Reorders inner-join trees by estimated rows (see the module's documentation).
#[derive(Debug, Default)]
pub struct JoinOrder;

impl OptimizerRule for JoinOrder {
    fn name(&self) -> &str {
        "sluice_join_order"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        // The rule walks the plan itself: a reordered tree's joins are not visited again.
        None
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        rewrite_join_trees_in_session(plan, config, Rewrite::Order)
    }
}

/// `rewrite_join_trees` with the session's estimate for unknown filters; nothing when
/// the session turns join reordering off (`JoinOrder` and `OuterJoinsLast` both move
/// joins).
pub(super) fn rewrite_join_trees_in_session(
    plan: LogicalPlan,
    config: &dyn OptimizerConfig,
    rewrite: Rewrite,
) -> Result<Transformed<LogicalPlan>> {
    if !config.options().optimizer.join_reordering {
        return Ok(Transformed::no(plan));
    }
    rewrite_join_trees(plan, super::unknown_selectivity(&config.options()), rewrite)
}

/// What a walk over a plan's inner-join trees does to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rewrite {
    /// Orders its joins by estimated rows (`JoinOrder`).
    Order,
    /// Joins the outer joins among its relations after its inner joins
    /// (`outer_joins::OuterJoinsLast`, `JoinTree::with_outer_joins_last`).
    OuterJoinsLast,
}

/// Orders the join trees in `plan` and in the subqueries of its expressions (an
/// uncorrelated scalar subquery stays a plan of its own: q11's `HAVING … > (SELECT …)`
/// joins three tables too). DataFusion hands a rule that walks the plan itself only the
/// outermost plan.
///
/// `unknown`: the share of rows a filter keeps where nothing estimates it (the session's
/// `default_filter_selectivity`, as DataFusion's `FilterExec` assumes).
fn rewrite_join_trees(
    plan: LogicalPlan,
    unknown: f64,
    rewrite: Rewrite,
) -> Result<Transformed<LogicalPlan>> {
    order_joins(plan, unknown, rewrite)?.transform_data(|plan| {
        plan.transform_up(|node| {
            node.map_subqueries(|subquery| match &subquery {
                // A correlated one DataFusion could not turn into a join is left alone.
                LogicalPlan::Subquery(s) if s.outer_ref_columns.is_empty() => {
                    subquery.map_children(|p| rewrite_join_trees(p, unknown, rewrite))
                }
                _ => Ok(Transformed::no(subquery)),
            })
        })
    })
}

/// Rewrites the join trees in `plan`, outermost first.
fn order_joins(
    plan: LogicalPlan,
    unknown: f64,
    rewrite: Rewrite,
) -> Result<Transformed<LogicalPlan>> {
    if !is_inner_join(&plan) {
        return plan.map_children(|p| order_joins(p, unknown, rewrite));
    }
    let mut tree = JoinTree {
        unknown,
        ..JoinTree::default()
    };
    let Some(written) = tree.flatten(&plan) else {
        return within_tree(plan, unknown, rewrite);
    };
    let chosen = match rewrite {
        Rewrite::Order => tree
            .choose(&written, false)
            .map(|chosen| (tree, chosen, Vec::new())),
        Rewrite::OuterJoinsLast => tree.with_outer_joins_last(&written),
    };
    let Some((mut tree, chosen, outer)) = chosen else {
        return within_tree(plan, unknown, rewrite);
    };
    let leaves = std::mem::take(&mut tree.leaves)
        .into_iter()
        .map(|leaf| order_joins(leaf, unknown, rewrite).map(|t| t.data))
        .collect::<Result<Vec<_>>>()?;
    tree.leaves = leaves;
    let mut pending = chosen.filters;
    let (mut joined, _) = tree.build(&chosen.shape, &chosen.classes, &mut pending)?;
    debug_assert!(
        pending.is_empty(),
        "every condition has its join: {pending:?}"
    );
    for outer_join in outer {
        joined = outer_join.above(joined, unknown, rewrite)?;
    }
    // The tree's columns, in the order and with the names the plan above reads.
    let columns = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let projected = Projection::try_new(columns, Arc::new(joined))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projected)))
}

/// Leaves a join tree as it is, and rewrites the trees within its relations.
fn within_tree(
    plan: LogicalPlan,
    unknown: f64,
    rewrite: Rewrite,
) -> Result<Transformed<LogicalPlan>> {
    if is_inner_join(&plan) || is_tree_projection(&plan) {
        plan.map_children(|p| within_tree(p, unknown, rewrite))
    } else {
        order_joins(plan, unknown, rewrite)
    }
}

/// An inner join whose order may change: equalities that reject nulls, written as `ON`
/// (or found in `WHERE`), not a `NOT IN`'s null-aware join.
fn is_inner_join(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Join(join)
        if join.join_type == JoinType::Inner
            && join.join_constraint == JoinConstraint::On
            && join.null_equality == NullEquality::NullEqualsNothing
            && !join.null_aware)
}

/// A projection of columns only, between two inner joins of one tree (DataFusion's
/// projection pushdown puts them there).
fn is_tree_projection(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Projection(p)
        if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) && is_inner_join(&p.input))
}

/// The shape of a join tree over its relations (indexes into `JoinTree::leaves`).
#[derive(Debug, Clone)]
enum Shape {
    Leaf(usize),
    Join(Box<Shape>, Box<Shape>),
}

impl Shape {
    /// The same joins, whatever side each input is on.
    fn same_joins(&self, other: &Shape) -> bool {
        match (self, other) {
            (Shape::Leaf(a), Shape::Leaf(b)) => a == b,
            (Shape::Join(a1, b1), Shape::Join(a2, b2)) => {
                (a1.same_joins(a2) && b1.same_joins(b2)) || (a1.same_joins(b2) && b1.same_joins(a2))
            }
            _ => false,
        }
    }

    /// The relations under this node, one bit each.
    fn set(&self) -> u32 {
        match self {
            Shape::Leaf(i) => 1 << i,
            Shape::Join(a, b) => a.set() | b.set(),
        }
    }

    /// The rows all the joins of this tree put out, and the rows of its top, by
    /// `leaf_rows` of each relation and `join_rows` of each join; `None` if a join
    /// joins on nothing.
    fn estimate(
        &self,
        leaf_rows: &impl Fn(usize) -> f64,
        join_rows: &impl Fn((u32, f64), (u32, f64)) -> Option<f64>,
    ) -> Option<(f64, f64)> {
        match self {
            Shape::Leaf(i) => Some((0.0, leaf_rows(*i))),
            Shape::Join(a, b) => {
                let (a_cost, a_rows) = a.estimate(leaf_rows, join_rows)?;
                let (b_cost, b_rows) = b.estimate(leaf_rows, join_rows)?;
                let rows = join_rows((a.set(), a_rows), (b.set(), b_rows))?;
                Some((a_cost + b_cost + rows, rows))
            }
        }
    }
}

/// The best tree found for a set of relations.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// The rows all its joins put out.
    cost: f64,
    /// The relations of its top join's left input.
    left: u32,
    /// The rows its top join puts out.
    rows: f64,
}

/// A flattened tree of inner joins.
#[derive(Debug, Default, Clone)]
struct JoinTree {
    leaves: Vec<LogicalPlan>,
    equalities: Vec<(Column, Column)>,
    /// The join conditions other than equalities, conjunct by conjunct.
    filters: Vec<Expr>,
    /// The share of rows a filter nothing estimates keeps.
    unknown: f64,
}

/// The order `JoinTree::choose` picked, and what building it needs.
struct Chosen {
    shape: Shape,
    /// Each class of equal columns, with the relation each column is in.
    classes: Vec<Vec<(usize, Column)>>,
    /// Each other condition, with the relations it reads.
    filters: Vec<(u32, Expr)>,
    /// The rows its top join is estimated to put out.
    rows: f64,
    /// Each relation's estimated rows.
    leaf_rows: Vec<f64>,
}

/// An outer join that was a relation of an inner-join tree, to join after the tree's
/// inner joins (`outer_joins::OuterJoinsLast`), with the filters that were above it.
#[derive(Debug)]
struct OuterJoin {
    join: Join,
    filters: Vec<Expr>,
    /// The relation of the tree its preserved side became.
    leaf: usize,
}

impl OuterJoin {
    /// The preserved side of `leaf` if it is a `LEFT` or `RIGHT` join on column
    /// conditions (under column-only projections and deterministic filters without a
    /// subquery), and the join to put back above the tree.
    fn open(leaf: &LogicalPlan, index: usize) -> Option<(LogicalPlan, OuterJoin)> {
        let mut filters = Vec::new();
        let mut node = leaf;
        let join = loop {
            match node {
                LogicalPlan::Projection(p)
                    if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
                {
                    node = &p.input;
                }
                // Not one with a subquery, which a filter moved above other joins
                // would see evaluated elsewhere.
                LogicalPlan::Filter(f)
                    if !f.predicate.is_volatile() && !super::holds_subquery(&f.predicate) =>
                {
                    filters.push(f.predicate.clone());
                    node = &f.input;
                }
                LogicalPlan::Join(join) => break join,
                _ => return None,
            }
        };
        if join.join_constraint != JoinConstraint::On || join.null_aware {
            return None;
        }
        let preserved = match join.join_type {
            JoinType::Left => &join.left,
            JoinType::Right => &join.right,
            _ => return None,
        };
        Some((
            preserved.as_ref().clone(),
            OuterJoin {
                join: join.clone(),
                filters,
                leaf: index,
            },
        ))
    }

    /// The side the join pads with NULLs.
    fn padded(&self) -> &LogicalPlan {
        match self.join.join_type {
            JoinType::Left => &self.join.right,
            _ => &self.join.left,
        }
    }

    /// The join with `tree` in its preserved side's place, the trees of its padded side
    /// rewritten too, under the filters that were above it.
    fn above(self, tree: LogicalPlan, unknown: f64, rewrite: Rewrite) -> Result<LogicalPlan> {
        let join = self.join;
        let tree = Arc::new(tree);
        let padded = |side: &Arc<LogicalPlan>| -> Result<Arc<LogicalPlan>> {
            Ok(Arc::new(
                order_joins(side.as_ref().clone(), unknown, rewrite)?.data,
            ))
        };
        let (left, right) = match join.join_type {
            JoinType::Left => (tree, padded(&join.right)?),
            _ => (padded(&join.left)?, tree),
        };
        let joined = LogicalPlan::Join(Join::try_new(
            left,
            right,
            join.on,
            join.filter,
            join.join_type,
            join.join_constraint,
            join.null_equality,
            false,
        )?);
        match conjunction(self.filters) {
            Some(predicate) => Ok(LogicalPlan::Filter(Filter::try_new(
                predicate,
                Arc::new(joined),
            )?)),
            None => Ok(joined),
        }
    }
}

impl JoinTree {
    /// Collects the relations and conditions of the inner-join tree `plan`; `None` if a
    /// join condition is not a column equality.
    fn flatten(&mut self, plan: &LogicalPlan) -> Option<Shape> {
        match plan {
            LogicalPlan::Join(join) if is_inner_join(plan) => {
                for (left, right) in &join.on {
                    let (Expr::Column(left), Expr::Column(right)) = (left, right) else {
                        return None;
                    };
                    self.equalities.push((left.clone(), right.clone()));
                }
                if let Some(filter) = &join.filter {
                    self.filters
                        .extend(split_conjunction(filter).into_iter().cloned());
                }
                let left = self.flatten(&join.left)?;
                let right = self.flatten(&join.right)?;
                Some(Shape::Join(Box::new(left), Box::new(right)))
            }
            LogicalPlan::Projection(projection) if is_tree_projection(plan) => {
                self.flatten(&projection.input)
            }
            _ => {
                self.leaves.push(plan.clone());
                Some(Shape::Leaf(self.leaves.len() - 1))
            }
        }
    }

    /// The tree with its outer-join relations opened (`OuterJoin::open`) whose padded
    /// side no condition of the tree reads (one that is read stays a relation, so that
    /// the condition keeps a relation to be evaluated at, and the others still move),
    /// its order chosen, and those outer joins;
    /// `None` if there is none, or if the inner joins are estimated to put out more
    /// rows than an outer join's preserved side has (the outer join would then see more
    /// rows above the tree than where it was written).
    fn with_outer_joins_last(&self, written: &Shape) -> Option<(JoinTree, Chosen, Vec<OuterJoin>)> {
        let mut opened = self.clone();
        let mut outer = Vec::new();
        for (index, leaf) in opened.leaves.iter_mut().enumerate() {
            let Some((preserved, outer_join)) = OuterJoin::open(leaf, index) else {
                continue;
            };
            let padded = outer_join.padded().schema();
            let read = self
                .equalities
                .iter()
                .flat_map(|(a, b)| [a, b])
                .any(|c| padded.has_column(c))
                || self
                    .filters
                    .iter()
                    .any(|f| f.column_refs().into_iter().any(|c| padded.has_column(c)));
            if !read {
                *leaf = preserved;
                outer.push(outer_join);
            }
        }
        if outer.is_empty() {
            return None;
        }
        let chosen = opened.choose(written, true)?;
        if outer.iter().any(|o| chosen.rows > chosen.leaf_rows[o.leaf]) {
            return None;
        }
        tracing::debug!(
            outer_joins = outer.len(),
            rows = chosen.rows,
            "outer joins after the inner joins"
        );
        Some((opened, chosen, outer))
    }

    /// The order with the fewest estimated rows, if it differs from `written` and gains
    /// enough; `None` to leave the tree as written. With `written_otherwise`, the
    /// written order when the chosen one does not gain enough (`None` only when the
    /// tree cannot be estimated), for trees of two relations too.
    fn choose(&self, written: &Shape, written_otherwise: bool) -> Option<Chosen> {
        let n = self.leaves.len();
        let fewest = if written_otherwise { 2 } else { 3 };
        if !(fewest..=MAX_RELATIONS).contains(&n) {
            return None;
        }
        let leaf_of = |c: &Column| (0..n).find(|&i| self.leaves[i].schema().has_column(c));

        // Classes of equal columns (union-find over the equalities' columns).
        let mut columns: Vec<(usize, Column)> = Vec::new();
        let mut parent: Vec<usize> = Vec::new();
        let mut id_of = |c: &Column, columns: &mut Vec<(usize, Column)>| -> Option<usize> {
            if let Some(id) = columns.iter().position(|(_, k)| k == c) {
                return Some(id);
            }
            columns.push((leaf_of(c)?, c.clone()));
            parent.push(parent.len());
            Some(columns.len() - 1)
        };
        let mut pairs = Vec::new();
        for (a, b) in &self.equalities {
            let (a, b) = (id_of(a, &mut columns)?, id_of(b, &mut columns)?);
            pairs.push((a, b));
        }
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for (a, b) in pairs {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
        let mut by_root: HashMap<usize, Vec<(usize, Column)>> = HashMap::new();
        for (id, column) in columns.iter().enumerate() {
            let r = root(&mut parent, id);
            by_root.entry(r).or_default().push(column.clone());
        }
        // In a fixed order, so that every pass of the optimizer builds the same plan.
        let mut classes: Vec<Vec<(usize, Column)>> = by_root.into_values().collect();
        for class in &mut classes {
            class.sort_by_key(|(leaf, column)| (*leaf, column.flat_name()));
        }
        classes.sort_by_key(|class| {
            class
                .first()
                .map(|(leaf, column)| (*leaf, column.flat_name()))
        });
        // Two equal columns of one relation would need a condition inside it.
        for class in &classes {
            let mut leaves: Vec<usize> = class.iter().map(|(leaf, _)| *leaf).collect();
            leaves.sort_unstable();
            leaves.dedup();
            if leaves.len() != class.len() {
                return None;
            }
        }
        let mut filters = Vec::new();
        for filter in &self.filters {
            let mut set = 0u32;
            for column in filter.column_refs() {
                set |= 1 << leaf_of(column)?;
            }
            filters.push((set, filter.clone()));
        }

        let estimates = self
            .leaves
            .iter()
            .map(|leaf| estimate(leaf, self.unknown))
            .collect::<Option<Vec<_>>>()?;
        let ndv = |leaf: usize, column: &Column| {
            let e = &estimates[leaf];
            e.ndv.get(column).copied().unwrap_or(Ndv {
                now: e.rows,
                base: e.rows,
            })
        };
        // The values of equal columns come from one domain: a foreign key has at most the
        // distinct values of the key it references (`l_orderkey`'s range is 4× the order
        // count), so no member counts more than the smallest source's.
        let class_ndvs: Vec<Vec<(usize, f64)>> = classes
            .iter()
            .map(|class| {
                let ndvs: Vec<(usize, Ndv)> = class.iter().map(|(l, c)| (*l, ndv(*l, c))).collect();
                let domain = ndvs
                    .iter()
                    .map(|(_, d)| d.base)
                    .fold(f64::INFINITY, f64::min);
                ndvs.into_iter()
                    .map(|(l, d)| (l, d.now.min(domain)))
                    .collect()
            })
            .collect();
        // A join's rows: its inputs' rows multiplied, divided by the distinct values of
        // the most selective class it joins on (on both sides: the larger count). Only
        // the one class: the columns of a composite key (`l_partkey, l_suppkey`) are
        // not independent, and dividing by each would estimate q09's joins at one row.
        let distinct = |class: &[(usize, f64)], set: u32, rows: f64| {
            class
                .iter()
                .filter(|(leaf, _)| set & (1 << leaf) != 0)
                .map(|(_, d)| *d)
                .reduce(f64::min)
                .map(|d| d.min(rows))
        };
        let join_rows = |left: (u32, f64), right: (u32, f64)| -> Option<f64> {
            let divisor = class_ndvs
                .iter()
                .filter_map(|class| {
                    let l = distinct(class, left.0, left.1)?;
                    let r = distinct(class, right.0, right.1)?;
                    Some(l.max(r))
                })
                .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))?;
            Some((left.1 * right.1 / divisor.max(1.0)).max(1.0))
        };

        // best[set]: the fewest rows out of all the joins of a tree joining `set`, the
        // left input of that tree's top join, and the rows it puts out.
        let full = (1u32 << n) - 1;
        let mut best: Vec<Option<Plan>> = vec![None; full as usize + 1];
        for (i, e) in estimates.iter().enumerate() {
            best[1 << i] = Some(Plan {
                cost: 0.0,
                left: 0,
                rows: e.rows,
            });
        }
        for set in 1..=full {
            if set.count_ones() < 2 {
                continue;
            }
            let lowest = set & set.wrapping_neg();
            let mut left = (set - 1) & set;
            while left > 0 {
                let right = set ^ left;
                if left & lowest != 0
                    && let (Some(a), Some(b)) = (best[left as usize], best[right as usize])
                    && let Some(out) = join_rows((left, a.rows), (right, b.rows))
                {
                    let cost = a.cost + b.cost + out;
                    if best[set as usize].is_none_or(|p| cost < p.cost) {
                        best[set as usize] = Some(Plan {
                            cost,
                            left,
                            rows: out,
                        });
                    }
                }
                left = (left - 1) & set;
            }
        }
        let Plan { cost, rows, .. } = best[full as usize]?;
        fn shape_of(set: u32, best: &[Option<Plan>]) -> Shape {
            if set.count_ones() == 1 {
                return Shape::Leaf(set.trailing_zeros() as usize);
            }
            let left = best[set as usize]
                .expect("a joined set has a best split")
                .left;
            let right = set ^ left;
            let rows = |s: u32| best[s as usize].map_or(f64::INFINITY, |p| p.rows);
            let (small, large) = if rows(right) < rows(left) {
                (right, left)
            } else {
                (left, right)
            };
            Shape::Join(
                Box::new(shape_of(small, best)),
                Box::new(shape_of(large, best)),
            )
        }
        let shape = shape_of(full, &best);
        // The written tree's rows by the same estimates (a cross product in it: infinite).
        let leaf_rows = |i: usize| estimates[i].rows;
        let written_estimate = written.estimate(&leaf_rows, &join_rows);
        let written_cost = written_estimate.map_or(f64::INFINITY, |(cost, _)| cost);
        if shape.same_joins(written) || cost >= MIN_GAIN * written_cost {
            let (_, rows) = written_estimate.filter(|_| written_otherwise)?;
            return Some(Chosen {
                shape: written.clone(),
                classes,
                filters,
                rows,
                leaf_rows: estimates.iter().map(|e| e.rows).collect(),
            });
        }
        tracing::debug!(
            relations = n,
            written = written_cost,
            chosen = cost,
            "join order changed"
        );
        Some(Chosen {
            shape,
            classes,
            filters,
            rows,
            leaf_rows: estimates.iter().map(|e| e.rows).collect(),
        })
    }

    /// The plan of `shape`: each join on one equality per class of columns it joins
    /// (the classes' other members are equal already inside each input), with the other
    /// conditions at the lowest join that has their columns.
    fn build(
        &self,
        shape: &Shape,
        classes: &[Vec<(usize, Column)>],
        pending: &mut Vec<(u32, Expr)>,
    ) -> Result<(LogicalPlan, u32)> {
        match shape {
            Shape::Leaf(i) => Ok((self.leaves[*i].clone(), 1 << i)),
            Shape::Join(a, b) => {
                let (left, left_set) = self.build(a, classes, pending)?;
                let (right, right_set) = self.build(b, classes, pending)?;
                let member = |class: &[(usize, Column)], set: u32| {
                    class
                        .iter()
                        .find(|(leaf, _)| set & (1 << leaf) != 0)
                        .map(|(_, c)| Expr::Column(c.clone()))
                };
                let on = classes
                    .iter()
                    .filter_map(|class| Some((member(class, left_set)?, member(class, right_set)?)))
                    .collect();
                let set = left_set | right_set;
                let mut here = Vec::new();
                pending.retain(|(needs, filter)| {
                    let ready = needs & !set == 0;
                    if ready {
                        here.push(filter.clone());
                    }
                    !ready
                });
                let join = Join::try_new(
                    Arc::new(left),
                    Arc::new(right),
                    on,
                    conjunction(here),
                    JoinType::Inner,
                    JoinConstraint::On,
                    NullEquality::NullEqualsNothing,
                    false,
                )?;
                Ok((LogicalPlan::Join(join), set))
            }
        }
    }
}

/// A relation's estimated rows, and the distinct values of the columns it knows of.
#[derive(Debug)]
pub(super) struct Estimate {
    rows: f64,
    ndv: HashMap<Column, Ndv>,
}

/// A column's distinct values in a relation, and in its source before any filter.
#[derive(Debug, Clone, Copy)]
struct Ndv {
    now: f64,
    base: f64,
}

impl Estimate {
    /// A column's estimated distinct values in the relation, and in its source before
    /// any filter.
    pub(super) fn distinct_values(&self, column: &Column) -> Option<(f64, f64)> {
        self.ndv.get(column).map(|d| (d.now, d.base))
    }

    pub(super) fn rows(&self) -> f64 {
        self.rows
    }

    fn with_rows(mut self, rows: f64) -> Estimate {
        self.rows = rows.max(1.0);
        for d in self.ndv.values_mut() {
            d.now = d.now.min(self.rows);
        }
        self
    }

    /// The same columns under the names of `schema` (an alias's, a projection's).
    fn renamed(self, from: &DFSchemaRef, to: &DFSchemaRef) -> Estimate {
        let ndv = from
            .columns()
            .into_iter()
            .zip(to.columns())
            .filter_map(|(old, new)| Some((new, *self.ndv.get(&old)?)))
            .collect();
        Estimate {
            rows: self.rows,
            ndv,
        }
    }
}

/// The estimated rows of a relation; `None` where a part of it cannot be estimated.
pub(super) fn estimate(plan: &LogicalPlan, unknown: f64) -> Option<Estimate> {
    match plan {
        LogicalPlan::TableScan(scan) => scan_estimate(scan, &[], unknown),
        LogicalPlan::Filter(filter) => match filter.input.as_ref() {
            LogicalPlan::TableScan(scan) => {
                let predicate: Vec<Expr> = split_conjunction(&filter.predicate)
                    .into_iter()
                    .cloned()
                    .collect();
                scan_estimate(scan, &predicate, unknown)
            }
            input => {
                let e = estimate(input, unknown)?;
                let rows = e.rows * unknown;
                Some(e.with_rows(rows))
            }
        },
        LogicalPlan::Projection(projection) => {
            let input = estimate(&projection.input, unknown)?;
            let ndv = projection
                .expr
                .iter()
                .zip(projection.schema.columns())
                .filter_map(|(expr, out)| Some((out, *input.ndv.get(as_column(expr)?)?)))
                .collect();
            Some(Estimate {
                rows: input.rows,
                ndv,
            })
        }
        LogicalPlan::SubqueryAlias(alias) => {
            Some(estimate(&alias.input, unknown)?.renamed(alias.input.schema(), &alias.schema))
        }
        LogicalPlan::Aggregate(aggregate) => {
            let input = estimate(&aggregate.input, unknown)?;
            if aggregate.group_expr.is_empty() {
                return Some(Estimate {
                    rows: 1.0,
                    ndv: HashMap::new(),
                });
            }
            let groups: Option<f64> = aggregate
                .group_expr
                .iter()
                .map(|e| input.ndv.get(as_column(e)?).map(|d| d.now))
                .product();
            let rows = groups.unwrap_or(input.rows).min(input.rows);
            let ndv = aggregate
                .group_expr
                .iter()
                .zip(aggregate.schema.columns())
                .filter_map(|(e, out)| {
                    let d = input.ndv.get(as_column(e)?)?;
                    Some((
                        out,
                        Ndv {
                            now: d.now.min(rows),
                            base: d.base,
                        },
                    ))
                })
                .collect();
            Some(Estimate { rows, ndv })
        }
        LogicalPlan::Join(join) => match join.join_type {
            JoinType::LeftSemi => {
                // The share of the left side's key values that the right side's rows can
                // match, at most (each of its rows matches one value): `d_date IN` a
                // week's dates keeps 7 of 73 K days.
                let left = estimate(&join.left, unknown)?;
                let share = match (join.on.first(), estimate(&join.right, unknown)) {
                    (Some((key, _)), Some(right)) => as_column(key)
                        .and_then(|c| left.ndv.get(c))
                        .map_or(1.0, |d| (right.rows / d.now.max(1.0)).min(1.0)),
                    _ => 1.0,
                };
                let rows = left.rows * share;
                Some(left.with_rows(rows))
            }
            JoinType::LeftAnti | JoinType::LeftMark => estimate(&join.left, unknown),
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                estimate(&join.right, unknown)
            }
            _ => {
                let (left, right) = (
                    estimate(&join.left, unknown)?,
                    estimate(&join.right, unknown)?,
                );
                let divisor = join
                    .on
                    .iter()
                    .map(|(l, r)| {
                        let d = |e: &Expr, side: &Estimate| {
                            as_column(e)
                                .and_then(|c| side.ndv.get(c).map(|d| d.now))
                                .unwrap_or(side.rows)
                        };
                        d(l, &left).max(d(r, &right))
                    })
                    .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
                let mut rows = match divisor {
                    Some(d) => left.rows * right.rows / d.max(1.0),
                    None => left.rows * right.rows,
                };
                if join.filter.is_some() {
                    rows *= unknown;
                }
                rows = match join.join_type {
                    JoinType::Left => rows.max(left.rows),
                    JoinType::Right => rows.max(right.rows),
                    JoinType::Full => rows.max(left.rows + right.rows),
                    _ => rows,
                };
                let mut ndv = left.ndv;
                ndv.extend(right.ndv);
                Some(Estimate { rows, ndv }.with_rows(rows))
            }
        },
        LogicalPlan::Limit(limit) => {
            let input = estimate(&limit.input, unknown)?;
            match limit.get_fetch_type().ok()? {
                datafusion::logical_expr::FetchType::Literal(Some(n)) => {
                    let rows = input.rows.min(n as f64);
                    Some(input.with_rows(rows))
                }
                _ => Some(input),
            }
        }
        LogicalPlan::Sort(sort) => {
            let input = estimate(&sort.input, unknown)?;
            match sort.fetch {
                Some(n) => {
                    let rows = input.rows.min(n as f64);
                    Some(input.with_rows(rows))
                }
                None => Some(input),
            }
        }
        LogicalPlan::Distinct(distinct) => estimate(distinct.input(), unknown),
        LogicalPlan::Repartition(repartition) => estimate(&repartition.input, unknown),
        LogicalPlan::Window(window) => estimate(&window.input, unknown),
        LogicalPlan::Union(union) => {
            let rows = union
                .inputs
                .iter()
                .map(|input| estimate(input, unknown).map(|e| e.rows))
                .sum::<Option<f64>>()?;
            Some(Estimate {
                rows: rows.max(1.0),
                ndv: HashMap::new(),
            })
        }
        LogicalPlan::Values(values) => Some(Estimate {
            rows: (values.values.len() as f64).max(1.0),
            ndv: HashMap::new(),
        }),
        _ => None,
    }
}

/// The column an expression reads as it is (under an alias, maybe).
fn as_column(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(c) => Some(c),
        Expr::Alias(alias) => as_column(&alias.expr),
        _ => None,
    }
}

/// A source scan's rows after its filters (and `predicate`, a filter right above it),
/// from the source's statistics.
fn scan_estimate(scan: &TableScan, predicate: &[Expr], unknown: f64) -> Option<Estimate> {
    let provider = source_as_provider(&scan.source).ok()?;
    let stats = provider.statistics()?;
    let rows = *stats.num_rows.get_value()? as f64;
    let schema = scan.source.schema();
    if stats.column_statistics.len() != schema.fields().len() {
        return None;
    }
    let mut conjuncts: Vec<Expr> = scan
        .filters
        .iter()
        .flat_map(|f| split_conjunction(f).into_iter().cloned())
        .collect();
    for p in predicate {
        if !conjuncts.contains(p) {
            conjuncts.push(p.clone());
        }
    }
    let selectivity = selectivity(
        &conjuncts,
        &scan.table_name,
        &schema,
        &stats.column_statistics,
        rows,
        unknown,
    );
    let mut out = (rows * selectivity).max(1.0);
    if let Some(fetch) = scan.fetch {
        out = out.min(fetch as f64).max(1.0);
    }
    let ndv = scan
        .projected_schema
        .columns()
        .into_iter()
        .filter_map(|column| {
            let i = schema.index_of(&column.name).ok()?;
            let base = column_ndv(&stats.column_statistics[i], rows).unwrap_or(rows);
            Some((
                column,
                Ndv {
                    now: base.min(out),
                    base,
                },
            ))
        })
        .collect();
    Some(Estimate { rows: out, ndv })
}

/// A column's distinct values: the count if the statistics have one, else the width of
/// its range (integers and dates), at most `rows`; `None` if neither is known (strings,
/// floats: DataFusion's `distance` rounds a float range, so 0.0–1.0 would count two).
fn column_ndv(stats: &ColumnStatistics, rows: f64) -> Option<f64> {
    let known = stats.distinct_count.get_value().map(|d| *d as f64);
    let range = match (&stats.min_value, &stats.max_value) {
        (
            Precision::Exact(min) | Precision::Inexact(min),
            Precision::Exact(max) | Precision::Inexact(max),
        ) if !min.data_type().is_floating() => min.distance(max).map(|d| d as f64 + 1.0),
        _ => None,
    };
    known.or(range).map(|d| d.min(rows).max(1.0))
}

/// The share of a source's rows `conjuncts` keep. An equality with a value keeps one
/// distinct value of the column (`IN` lists and `OR`s of them, one per value); the other
/// conjuncts go to DataFusion's interval analysis over the source's column statistics,
/// together (so that two bounds of one range count once), else one by one, `unknown`
/// each where it cannot say.
fn selectivity(
    conjuncts: &[Expr],
    table: &TableReference,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    columns: &[ColumnStatistics],
    rows: f64,
    unknown: f64,
) -> f64 {
    let ndv = |column: &Column| {
        schema
            .index_of(&column.name)
            .ok()
            .and_then(|i| column_ndv(&columns[i], rows))
    };
    let mut share = 1.0;
    let mut ranges = Vec::new();
    for conjunct in conjuncts {
        match value_selectivity(conjunct, &ndv) {
            Some(s) => share *= s,
            None => ranges.push(conjunct.clone()),
        }
    }
    if !ranges.is_empty() {
        let df_schema = DFSchema::try_from_qualified_schema(table.clone(), schema).ok();
        let props = ExecutionProps::new();
        let analyzed = |expr: &Expr| -> Option<f64> {
            let physical = create_physical_expr(
                expr,
                df_schema.as_ref()?,
                &props,
                &PhysicalPlanningContext::default(),
            )
            .ok()?;
            let context = AnalysisContext::try_from_statistics(schema, columns).ok()?;
            analyze(&physical, context, schema).ok()?.selectivity
        };
        let all = conjunction(ranges.iter().cloned()).expect("at least one conjunct");
        share *= analyzed(&all).unwrap_or_else(|| {
            ranges
                .iter()
                .map(|c| analyzed(c).unwrap_or(unknown))
                .product()
        });
    }
    share.clamp(1e-9, 1.0)
}

/// The share an equality of a column with values keeps: one of its distinct values per
/// value (`VALUE_SELECTIVITY` per value where the count is unknown, as for strings).
/// `None` for any other kind of condition.
fn value_selectivity(expr: &Expr, ndv: &impl Fn(&Column) -> Option<f64>) -> Option<f64> {
    match expr {
        Expr::BinaryExpr(binary) if binary.op == Operator::Eq => {
            let column = match (binary.left.as_ref(), binary.right.as_ref()) {
                (Expr::Column(c), Expr::Literal(..)) | (Expr::Literal(..), Expr::Column(c)) => c,
                _ => return None,
            };
            Some(ndv(column).map_or(VALUE_SELECTIVITY, |d| 1.0 / d))
        }
        Expr::BinaryExpr(binary) if binary.op == Operator::Or => {
            let share =
                value_selectivity(&binary.left, ndv)? + value_selectivity(&binary.right, ndv)?;
            Some(share.min(1.0))
        }
        Expr::InList(in_list) if !in_list.negated => {
            let Expr::Column(column) = in_list.expr.as_ref() else {
                return None;
            };
            if !in_list.list.iter().all(|e| matches!(e, Expr::Literal(..))) {
                return None;
            }
            let each = ndv(column).map_or(VALUE_SELECTIVITY, |d| 1.0 / d);
            Some((in_list.list.len() as f64 * each).min(1.0))
        }
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use async_trait::async_trait;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::catalog::Session;
    use datafusion::common::{ScalarValue, Statistics};
    use datafusion::datasource::{MemTable, TableProvider, TableType};
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;

    /// A table known only by its statistics: enough to plan (it has no rows).
    /// `columns`: each integer column's name and range; `names`: string columns.
    fn planned_table(
        rows: usize,
        columns: &[(&str, i64, i64)],
        names: &[&str],
    ) -> Arc<RowsWithStats> {
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|(name, _, _)| Field::new(*name, DataType::Int64, false))
            .collect();
        fields.extend(names.iter().map(|n| Field::new(*n, DataType::Utf8, false)));
        let schema = Arc::new(Schema::new(fields));
        let mut statistics = Statistics::new_unknown(&schema);
        statistics.num_rows = Precision::Exact(rows);
        for (i, (_, min, max)) in columns.iter().enumerate() {
            statistics.column_statistics[i].min_value =
                Precision::Exact(ScalarValue::Int64(Some(*min)));
            statistics.column_statistics[i].max_value =
                Precision::Exact(ScalarValue::Int64(Some(*max)));
        }
        Arc::new(RowsWithStats {
            rows: MemTable::try_new(schema, vec![vec![]]).unwrap(),
            statistics,
        })
    }

    /// TPC-H's q05 shape at SF 1: the region filter is on the last table listed, and
    /// customers reach nations only through suppliers (`c_nationkey = s_nationkey`).
    const Q05: &str = "SELECT n_name, count(*) FROM customer, orders, supplier, nation, region \
        WHERE c_custkey = o_custkey AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey \
        AND n_regionkey = r_regionkey AND r_name = 'ASIA' GROUP BY n_name";

    fn tpch_tables() -> Vec<(&'static str, Arc<RowsWithStats>)> {
        vec![
            (
                "customer",
                planned_table(
                    150_000,
                    &[("c_custkey", 1, 150_000), ("c_nationkey", 0, 24)],
                    &[],
                ),
            ),
            (
                "orders",
                planned_table(
                    1_500_000,
                    &[("o_orderkey", 1, 6_000_000), ("o_custkey", 1, 149_999)],
                    &[],
                ),
            ),
            (
                "supplier",
                planned_table(
                    10_000,
                    &[("s_suppkey", 1, 10_000), ("s_nationkey", 0, 24)],
                    &[],
                ),
            ),
            (
                "nation",
                planned_table(
                    25,
                    &[("n_nationkey", 0, 24), ("n_regionkey", 0, 4)],
                    &["n_name"],
                ),
            ),
            (
                "region",
                planned_table(5, &[("r_regionkey", 0, 4)], &["r_name"]),
            ),
        ]
    }

    pub(in crate::optimizer) async fn optimized(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        ctx.state().optimize(&plan).unwrap()
    }

    pub(in crate::optimizer) fn context() -> SessionContext {
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rules(crate::optimizer::settings::optimizer_rules())
            .build();
        SessionContext::new_with_state(state)
    }

    /// The tables each inner join joins, innermost first.
    fn joins(plan: &LogicalPlan) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        plan.apply(|node| {
            if let LogicalPlan::Join(join) = node {
                let mut tables: Vec<String> = join
                    .on
                    .iter()
                    .flat_map(|(l, r)| [l, r])
                    .flat_map(|e| e.column_refs())
                    .filter_map(|c| c.relation.as_ref().map(|r| r.to_string()))
                    .collect();
                tables.sort();
                tables.dedup();
                out.push(tables);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        out.reverse();
        out
    }

    #[test]
    fn a_range_counts_distinct_values_for_integers_and_dates_only() {
        let stats = |min: ScalarValue, max: ScalarValue| ColumnStatistics {
            min_value: Precision::Exact(min),
            max_value: Precision::Inexact(max),
            ..ColumnStatistics::new_unknown()
        };
        let ints = stats(ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(10)));
        assert_eq!(column_ndv(&ints, 1000.0), Some(10.0));
        assert_eq!(column_ndv(&ints, 4.0), Some(4.0), "at most the rows");
        let dates = stats(ScalarValue::Date32(Some(0)), ScalarValue::Date32(Some(364)));
        assert_eq!(column_ndv(&dates, 1000.0), Some(365.0));
        // A float between 0 and 1 may hold as many values as rows.
        let floats = stats(
            ScalarValue::Float64(Some(0.0)),
            ScalarValue::Float64(Some(1.0)),
        );
        assert_eq!(column_ndv(&floats, 1000.0), None);
        let counted = ColumnStatistics {
            distinct_count: Precision::Exact(700),
            ..floats
        };
        assert_eq!(column_ndv(&counted, 1000.0), Some(700.0));
    }

    #[tokio::test]
    async fn starts_from_the_filtered_dimension_through_equal_columns() {
        let ctx = context();
        for (name, table) in tpch_tables() {
            ctx.register_table(name, table).unwrap();
        }
        let plan = optimized(&ctx, Q05).await;
        let order = joins(&plan);
        let text = plan.display_indent().to_string();
        // Written: customer ⋈ orders first, region last.
        assert_eq!(order.len(), 4, "{text}");
        assert_eq!(order[0], ["nation", "region"], "{text}");
        // Customers join the region's nations directly, through the class of
        // `c_nationkey = s_nationkey = n_nationkey`, before their orders.
        assert_eq!(order[1], ["customer", "nation"], "{text}");
        assert!(order[2].contains(&"orders".to_string()), "{text}");
        // The supplier join keeps the nation condition the query wrote.
        assert!(
            order[3].contains(&"supplier".to_string()) && order[3].len() == 2,
            "{text}"
        );
        // The plan above reads the columns it read before.
        let written = SessionContext::new();
        for (name, table) in tpch_tables() {
            written.register_table(name, table).unwrap();
        }
        let unordered = optimized(&written, Q05).await;
        assert_eq!(joins(&unordered)[0], ["customer", "orders"]);
        assert_eq!(plan.schema(), unordered.schema());
        // The rule does not move a tree it has ordered: a second pass leaves it alone.
        let again = order_joins(plan.clone(), 0.05, Rewrite::Order).unwrap();
        assert!(!again.transformed, "{text}");
    }

    /// A table of rows with statistics (row count, integer ranges): the rule orders its
    /// joins, and a query over it runs.
    #[derive(Debug)]
    pub(in crate::optimizer) struct RowsWithStats {
        rows: MemTable,
        statistics: Statistics,
    }

    #[async_trait]
    impl TableProvider for RowsWithStats {
        fn schema(&self) -> SchemaRef {
            self.rows.schema()
        }

        fn table_type(&self) -> TableType {
            TableType::Base
        }

        fn statistics(&self) -> Option<Statistics> {
            Some(self.statistics.clone())
        }

        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            filters: &[Expr],
            limit: Option<usize>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            self.rows.scan(state, projection, filters, limit).await
        }
    }

    /// Integer columns (`None`: null) and one string column, with their statistics.
    pub(in crate::optimizer) fn rows_table(
        columns: &[(&str, Vec<Option<i64>>)],
        names: Option<(&str, Vec<&str>)>,
    ) -> Arc<RowsWithStats> {
        use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Int64, true))
            .collect();
        let mut arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|(_, v)| Arc::new(Int64Array::from(v.clone())) as ArrayRef)
            .collect();
        if let Some((name, values)) = &names {
            fields.push(Field::new(*name, DataType::Utf8, false));
            arrays.push(Arc::new(StringArray::from(values.clone())));
        }
        let schema = Arc::new(Schema::new(fields));
        let mut statistics = Statistics::new_unknown(&schema);
        statistics.num_rows = Precision::Exact(columns[0].1.len());
        for (i, (_, values)) in columns.iter().enumerate() {
            let present = values.iter().flatten();
            if let (Some(min), Some(max)) = (present.clone().min(), present.max()) {
                statistics.column_statistics[i].min_value =
                    Precision::Exact(ScalarValue::Int64(Some(*min)));
                statistics.column_statistics[i].max_value =
                    Precision::Exact(ScalarValue::Int64(Some(*max)));
            }
        }
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        Arc::new(RowsWithStats {
            rows: MemTable::try_new(schema, vec![vec![batch]]).unwrap(),
            statistics,
        })
    }

    #[tokio::test]
    async fn reordered_joins_return_the_written_rows() {
        let n = 2_000i64;
        let fact = rows_table(
            &[
                ("f_id", (0..n).map(Some).collect()),
                // Every 13th line item has no `a`: an inner join drops it.
                (
                    "f_a",
                    (0..n).map(|i| (i % 13 != 0).then_some(i % 50)).collect(),
                ),
                ("f_b", (0..n).map(|i| Some(i % 20)).collect()),
                ("f_v", (0..n).map(|i| Some(i % 17)).collect()),
            ],
            None,
        );
        let a = rows_table(
            &[
                ("a_id", (0..50).map(Some).collect()),
                ("a_grp", (0..50).map(|i| Some(i % 5)).collect()),
                ("a_w", (0..50).map(|i| Some(i % 9)).collect()),
            ],
            None,
        );
        let b = rows_table(
            &[
                ("b_id", (0..20).map(Some).collect()),
                (
                    "b_grp",
                    (0..20).map(|i| (i != 7).then_some(i % 5)).collect(),
                ),
                ("b_w", (0..20).map(|i| Some(i % 6)).collect()),
            ],
            None,
        );
        let g = rows_table(
            &[("g_id", (0..5).map(Some).collect())],
            Some(("g_name", vec!["g0", "g1", "g2", "g3", "g4"])),
        );
        // A chain of equal columns (`a_grp = b_grp = g_id`), a filter on the last table
        // listed, and a condition over three tables that no equality carries.
        let sql = "SELECT g_name, a_grp, count(*) AS n, sum(f_v) AS v \
            FROM fact, a, b, g \
            WHERE f_a = a_id AND f_b = b_id AND a_grp = b_grp AND b_grp = g_id \
            AND g_name IN ('g1', 'g3') AND (f_v > a_w + 4 OR b_w > 3) \
            GROUP BY g_name, a_grp ORDER BY g_name, a_grp";
        let with_rule = context();
        let without = SessionContext::new();
        for ctx in [&with_rule, &without] {
            ctx.register_table("fact", fact.clone()).unwrap();
            ctx.register_table("a", a.clone()).unwrap();
            ctx.register_table("b", b.clone()).unwrap();
            ctx.register_table("g", g.clone()).unwrap();
        }
        let ordered = optimized(&with_rule, sql).await;
        let written = optimized(&without, sql).await;
        assert_ne!(
            joins(&ordered),
            joins(&written),
            "the rule reorders this tree: {}",
            ordered.display_indent()
        );
        let run = |ctx: SessionContext| async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        };
        let expected = run(without).await;
        assert!(expected.lines().count() > 5, "{expected}");
        assert_eq!(run(with_rule).await, expected);
    }

    #[tokio::test]
    async fn a_tree_without_statistics_keeps_its_written_order() {
        let with_rule = context();
        let without = SessionContext::new();
        for ctx in [&with_rule, &without] {
            for (name, table) in tpch_tables() {
                let empty = MemTable::try_new(table.schema(), vec![vec![]]).unwrap();
                ctx.register_table(name, Arc::new(empty)).unwrap();
            }
        }
        let ordered = optimized(&with_rule, Q05).await;
        let written = optimized(&without, Q05).await;
        assert_eq!(
            ordered.display_indent().to_string(),
            written.display_indent().to_string()
        );
    }

    #[test]
    fn value_equalities_keep_one_distinct_value() {
        let column = Column::new(Some("t"), "k");
        let ndv = |_: &Column| Some(50.0);
        let eq = Expr::Column(column.clone()).eq(datafusion::prelude::lit(3i64));
        assert_eq!(value_selectivity(&eq, &ndv), Some(1.0 / 50.0));
        let in_list = Expr::Column(column.clone()).in_list(
            vec![
                datafusion::prelude::lit(1i64),
                datafusion::prelude::lit(2i64),
            ],
            false,
        );
        assert_eq!(value_selectivity(&in_list, &ndv), Some(2.0 / 50.0));
        let unknown = |_: &Column| None;
        assert_eq!(value_selectivity(&eq.clone().or(eq), &unknown), Some(0.2));
        let range = Expr::Column(column).gt(datafusion::prelude::lit(3i64));
        assert_eq!(value_selectivity(&range, &ndv), None);
    }
}
