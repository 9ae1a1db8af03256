//! Nodes a pipe reads more than once, and common table expressions a query reads more
//! than once, computed once per run.
//!
//! A pipe's nodes are views: DataFusion inlines each where it is read, so a node the
//! later nodes read twice (TPC-H q15 reads `revenue0` in a join and in a scalar
//! subquery) is planned, scanned and aggregated twice. A local run computes such a
//! node once, keeps its rows in memory and lets every reader scan them, as DuckDB does
//! with a common table expression read more than once. The rows are held under the
//! environment's memory pool, within a quarter of its `memory_limit` (1 GiB without
//! one); a node that outgrows that is read as a view after all.
//!
//! DataFusion inlines a `WITH` query the same way, at each reference (TPC-DS q47 reads
//! `v1`, an aggregate under two window functions, three times). `share_repeated` finds
//! the subplans a plan holds more than once under the same alias (a common table
//! expression, or a view, read twice), computes each once in the same budget and puts a
//! scan of its rows in their places. Only what is costly to repeat is shared (a
//! subplan with an aggregate, a window, a join or a `DISTINCT`), and never a subplan
//! with a volatile function (each reference of `random()` draws its own values in
//! DataFusion's plan, which sharing would change), an outer reference (a correlated
//! subquery's) or an unbound parameter.
//!
//! When every reference keeps only rows that meet conditions of its own (TPC-DS q39's
//! `inv1.d_moy = 1` and `inv2.d_moy = 2`, q04's channel and year per reference), the
//! subplan is computed once for the rows some reference keeps: under the `OR` of the
//! references' conditions, which DataFusion pushes into it as it pushes each
//! reference's condition into that reference's copy (see `repeated_subplan`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::ArrayData;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SubqueryAlias};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::session::prepared::{ExactStats, KeptPlan, deal, evaluated_when_planned};
use crate::session::set_reads::same_plan;

/// The most a run keeps of shared nodes without a `memory_limit`.
const UNLIMITED_BUDGET: usize = 1 << 30;

/// How many times `plan` reads each of `nodes` (lower-cased names), counting through
/// the views it reads: a node read once by a view that is itself read twice is read
/// twice. Subqueries count. A table aliased with a node's name counts as a read of it:
/// at worst that node is computed ahead when it did not need to be.
pub fn node_reads(plan: &LogicalPlan, nodes: &BTreeSet<String>) -> HashMap<String, usize> {
    let mut reads = HashMap::new();
    // DataFusion's SQL planner inlines a view where it is read, under an alias of its
    // name, so a walk of the plan (subqueries included) meets every read, views read by
    // views too. The closure never fails, so neither does the walk.
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::SubqueryAlias(alias) = p {
            let name = alias.alias.table().to_ascii_lowercase();
            if nodes.contains(&name) {
                *reads.entry(name).or_default() += 1;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    reads
}

/// A node computed once for a run: its rows, in a table every reader scans.
pub struct SharedNode {
    pub name: String,
    /// How many times the rest of the pipe reads it.
    pub reads: usize,
    /// The plan that computed it, with its metrics (what it scanned).
    pub plan: Arc<dyn ExecutionPlan>,
    pub rows: usize,
    pub bytes: usize,
    /// The schema of the table of its rows (see `prepared::Ahead::schema`).
    pub(crate) schema: SchemaRef,
    /// For a session that keeps plans: the plan that computed it, as it is kept
    /// (`prepared::KeptPlan`), to compute it again on the next run, and what a scan of
    /// its rows told the optimizer (`prepared::ExactStats`).
    pub(crate) kept: Option<(KeptPlan, ExactStats)>,
    /// Whether its plan calls no function evaluated while planning (`now()`, see
    /// `prepared::evaluated_when_planned`), so that it may be kept.
    pub(crate) timeless: bool,
    /// Holds the rows' memory in the environment's pool until the run is over.
    _reservation: MemoryReservation,
}

impl std::fmt::Debug for SharedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNode")
            .field("name", &self.name)
            .field("reads", &self.reads)
            .field("rows", &self.rows)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// The budget of a run's shared nodes: a quarter of the memory limit.
pub fn budget(memory_limit: Option<u64>) -> usize {
    memory_limit.map_or(UNLIMITED_BUDGET, |l| (l / 4) as usize)
}

/// Runs `df` (the node `name`) to completion and registers its rows in `ctx` under
/// `name`, in place of the view. Returns `None`, with nothing registered, when its
/// rows outgrow `budget` or the pool: the caller keeps reading it as a view. With
/// `keep`, it is planned to be kept (`SharedNode::kept`).
pub async fn compute(
    ctx: &SessionContext,
    name: &str,
    reads: usize,
    df: DataFrame,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
    keep: bool,
) -> Result<Option<SharedNode>> {
    let Some((table, shared)) =
        compute_rows(ctx, name, reads, df, None, pool, budget, keep).await?
    else {
        return Ok(None);
    };
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| DataFusionError::Plan(format!("registering node `{name}`: {e}")))?;
    Ok(Some(shared))
}

/// Rows computed ahead of a run, held in the environment's pool.
pub(crate) struct HeldRows {
    /// In as many partitions as the session has cores, so that readers scan them in
    /// parallel.
    pub partitions: Vec<Vec<RecordBatch>>,
    pub rows: usize,
    pub reservation: MemoryReservation,
}

/// Runs `plan` (of the node `name`) to completion and holds its rows under `schema`,
/// or `None` when they outgrow `budget` or the pool (or do not fit `schema`).
pub(crate) async fn hold_rows(
    ctx: &SessionContext,
    name: &str,
    plan: Arc<dyn ExecutionPlan>,
    schema: &SchemaRef,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
) -> Result<Option<HeldRows>> {
    let reservation = MemoryConsumer::new(format!("shared node {name}")).register(pool);
    let mut stream = execute_stream(plan, ctx.task_ctx())?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut seen = HashSet::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let size = new_bytes(&batch, &mut seen);
        if reservation.size() + size > budget || reservation.try_grow(size).is_err() {
            tracing::debug!(node = name, budget, "shared node too large: read as a view");
            return Ok(None);
        }
        // The rows under the table's schema (the logical plan's, which may call a
        // column nullable that the physical plan does not).
        let Ok(batch) = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()) else {
            tracing::debug!(
                node = name,
                "shared node's rows do not fit its schema: read as a view"
            );
            return Ok(None);
        };
        batches.push(batch);
    }
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    Ok(Some(HeldRows {
        partitions: deal(batches, ctx.copied_config().target_partitions()),
        rows,
        reservation,
    }))
}

/// The bytes of the buffers of `batch` not in `seen`, which they are added to. Batches
/// sliced from one (an aggregate emits its groups as one and slices it) share their
/// buffers, and `get_array_memory_size` counts each buffer in every batch that holds
/// it: 342 K groups of TPC-DS q67's eight columns, 86 MB, counted 1.7 GB.
fn new_bytes(batch: &RecordBatch, seen: &mut HashSet<usize>) -> usize {
    fn walk(data: &ArrayData, seen: &mut HashSet<usize>, bytes: &mut usize) {
        let nulls = data.nulls().map(|n| n.buffer());
        for buffer in data.buffers().iter().chain(nulls) {
            // Keyed by the allocation, which a slice of it shares.
            if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                *bytes += buffer.capacity();
            }
        }
        for child in data.child_data() {
            walk(child, seen, bytes);
        }
    }
    let mut bytes = 0;
    for column in batch.columns() {
        walk(&column.to_data(), seen, &mut bytes);
    }
    bytes
}

/// Runs `df` to completion into a table of its rows (with `schema`, else its physical
/// plan's), or `None` when they outgrow `budget` or the pool (or do not fit `schema`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn compute_rows(
    ctx: &SessionContext,
    name: &str,
    reads: usize,
    df: DataFrame,
    schema: Option<SchemaRef>,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
    keep: bool,
) -> Result<Option<(MemTable, SharedNode)>> {
    let timeless = !evaluated_when_planned(df.logical_plan());
    let (plan, kept) = if keep {
        let (state, logical) = df.into_parts();
        let kept = KeptPlan::plan(state, &logical).await?;
        (kept.runnable(&[])?, Some(kept))
    } else {
        (df.create_physical_plan().await?, None)
    };
    // A schema of its own: the scans of this table are known by it.
    let schema: SchemaRef = Arc::new(schema.unwrap_or_else(|| plan.schema()).as_ref().clone());
    let Some(held) = hold_rows(ctx, name, plan.clone(), &schema, pool, budget).await? else {
        return Ok(None);
    };
    let kept = kept.map(|plan| (plan, ExactStats::of(&held.partitions)));
    let table = MemTable::try_new(schema.clone(), held.partitions)?;
    tracing::debug!(
        node = name,
        reads,
        rows = held.rows,
        bytes = held.reservation.size(),
        "shared node computed once"
    );
    Ok(Some((
        table,
        SharedNode {
            name: name.to_string(),
            reads,
            plan,
            rows: held.rows,
            bytes: held.reservation.size(),
            schema,
            kept,
            timeless,
            _reservation: held.reservation,
        },
    )))
}

/// `plan` with each subplan it holds more than once under the same alias (a common
/// table expression or view read twice, see the module's documentation) computed once,
/// within `budget`, and scanned where it was: the plan to run, and what was computed.
/// Aliases in `skip` (the pipe's nodes, which `compute` had its chance at) are left
/// alone, as is a subplan whose rows outgrow what is left of the budget.
pub async fn share_repeated(
    ctx: &SessionContext,
    mut plan: LogicalPlan,
    skip: &BTreeSet<String>,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
    keep: bool,
) -> Result<(LogicalPlan, Vec<SharedNode>)> {
    let mut shared: Vec<SharedNode> = Vec::new();
    let mut too_large: Vec<LogicalPlan> = Vec::new();
    while let Some(repeated) = repeated_subplan(&plan, skip, &too_large) {
        let subplan = repeated.subplan;
        let LogicalPlan::SubqueryAlias(alias) = &subplan else {
            break;
        };
        let name = alias.alias.table().to_string();
        let held: usize = shared.iter().map(|s| s.bytes).sum();
        // Its rows: all of them, or those some reference needs; only the distinct
        // values of the columns read when every reference reads it as a set.
        let whole = alias.input.schema().as_arrow();
        let narrowed = distinct_columns(&plan, &subplan, repeated.reads).and_then(|columns| {
            let positions: Vec<usize> = columns.iter().map(|(_, i)| *i).collect();
            let schema = Arc::new(whole.project(&positions).ok()?);
            // Only if the readers plan over those columns alone (tried on no rows).
            let empty = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).ok()?;
            with_shared_rows(plan.clone(), &subplan, alias, empty, shared.len(), true)
                .inspect_err(|e| tracing::debug!(node = %name, error = %e, "shared whole"))
                .ok()
                .map(|_| (columns, schema))
        });
        let columns = narrowed.as_ref().map(|(columns, _)| columns);
        let computed = match (&repeated.needed, columns) {
            (None, None) => alias.input.as_ref().clone(),
            (needed, columns) => {
                let mut builder = LogicalPlanBuilder::from(subplan.clone());
                if let Some(needed) = needed {
                    builder = builder.filter(needed.clone())?;
                }
                if let Some(columns) = columns {
                    let keys = columns.iter().map(|(c, _)| Expr::Column(c.clone()));
                    builder = builder.aggregate(keys, Vec::<Expr>::new())?;
                }
                builder.build()?
            }
        };
        let df = DataFrame::new(ctx.state(), computed);
        let schema = match &narrowed {
            None => Arc::new(whole.clone()),
            Some((_, schema)) => Arc::clone(schema),
        };
        let computed = compute_rows(
            ctx,
            &name,
            repeated.reads,
            df,
            Some(schema),
            pool,
            budget.saturating_sub(held),
            keep,
        )
        .await?;
        let Some((table, node)) = computed else {
            too_large.push(subplan);
            continue;
        };
        plan = with_shared_rows(
            plan,
            &subplan,
            alias,
            table,
            shared.len(),
            narrowed.is_some(),
        )?;
        shared.push(node);
    }
    Ok((plan, shared))
}

/// `plan` with a scan of `table` (the `index`th shared node's rows) under `alias` in
/// place of every copy of `subplan`; with the schemas of the nodes above each copy
/// derived again when `table` has fewer columns than `subplan`.
fn with_shared_rows(
    plan: LogicalPlan,
    subplan: &LogicalPlan,
    alias: &SubqueryAlias,
    table: MemTable,
    index: usize,
    fewer_columns: bool,
) -> Result<LogicalPlan> {
    let scan = LogicalPlanBuilder::scan(
        format!("__sluice_shared_{index}"),
        provider_as_source(Arc::new(table)),
        None,
    )?
    .build()?;
    let replacement =
        LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(scan), alias.alias.clone())?);
    let plan = replace_everywhere(plan, subplan, &replacement)?;
    if !fewer_columns {
        return Ok(plan);
    }
    Ok(plan
        .transform_up_with_subqueries(|p| Ok(Transformed::yes(p.recompute_schema()?)))?
        .data)
}

/// The columns of `subplan` (by name under its alias, and position) to compute the
/// distinct values of instead of its rows: those its readers read, when each of its
/// `reads` copies is read as a set (`set_reads`: TPC-DS q95 reads `ws_wh` only in
/// `IN`s, for its order numbers) and they are fewer than its columns. DataFusion's
/// `eliminate_join` then makes its inner joins semi joins where the `DISTINCT` reads
/// one side: q95's self-join of `web_sales` gives 60,000 order numbers, not 6.6 M pairs.
fn distinct_columns(
    plan: &LogicalPlan,
    subplan: &LogicalPlan,
    reads: usize,
) -> Option<Vec<(Column, usize)>> {
    if crate::optimizer::settings::skipped(crate::optimizer::settings::SHARED_SETS) {
        return None;
    }
    let read = crate::session::set_reads::set_context_reads(plan, subplan, reads)?;
    let columns: Vec<(Column, usize)> = subplan
        .schema()
        .columns()
        .into_iter()
        .enumerate()
        .filter(|(_, c)| read.contains(c))
        .map(|(i, c)| (c, i))
        .collect();
    (columns.len() == read.len() && columns.len() < subplan.schema().fields().len())
        .then_some(columns)
}

/// `plan` with every copy of `subplan` in it (subqueries included) replaced by
/// `replacement`, which is not looked into.
pub(crate) fn replace_everywhere(
    plan: LogicalPlan,
    subplan: &LogicalPlan,
    replacement: &LogicalPlan,
) -> Result<LogicalPlan> {
    Ok(plan
        .transform_down_with_subqueries(|p| {
            Ok(if same_plan(&p, subplan) {
                Transformed::new(replacement.clone(), true, TreeNodeRecursion::Jump)
            } else {
                Transformed::no(p)
            })
        })?
        .data)
}

/// A subplan to compute once: how many times the plan reads it, and the condition its
/// rows must meet to be read at all (`None`: all are read).
struct Repeated {
    subplan: LogicalPlan,
    reads: usize,
    needed: Option<Expr>,
}

/// A subplan under an alias that `plan` holds more than once, worth computing once and
/// safe to (see the module's documentation); none in `skip` or `too_large`. One that
/// each copy of which holds each other such subplan it holds once, and all of that
/// subplan's reads (computed with it, they are computed once), else the innermost.
///
/// When every reference keeps only rows that meet conditions of its own (q39's
/// `inv1.d_moy = 1` and `inv2.d_moy = 2`, q04's year and channel per reference), the
/// subplan is computed once for the rows some reference keeps (`Repeated::needed`), as
/// DuckDB does: DataFusion pushes that condition into it as it would each reference's
/// into its own copy. Computed once in full instead, it could cost more than all the
/// copies (q39 took 5× as long). When some reference has a condition of its own that
/// this cannot rely on (beyond an outer join, an aggregate, a limit), its copies are
/// left to compute their parts; with one unfiltered reference, the whole is needed
/// anyway and computed once.
fn repeated_subplan(
    plan: &LogicalPlan,
    skip: &BTreeSet<String>,
    too_large: &[LogicalPlan],
) -> Option<Repeated> {
    let aliased = aliased_subplans(plan, skip);
    let mut counts: HashMap<ByAlias, usize> = HashMap::new();
    for p in &aliased {
        *counts.entry(ByAlias(p)).or_default() += 1;
    }
    let count = |p: &LogicalPlan| counts[&ByAlias(p)];
    let mut repeated: Vec<(&LogicalPlan, Option<Expr>)> = Vec::new();
    for p in &aliased {
        if count(p) > 1
            && !repeated.iter().any(|(q, _)| same_plan(q, p))
            && !too_large.iter().any(|t| same_plan(t, p))
            && worth_sharing(p)
        {
            let mut references = Vec::new();
            collect_references(plan, p, &BTreeSet::new(), &[], &mut references);
            if let Some(needed) = needed_rows(&references) {
                repeated.push((p, Some(needed)));
            } else if references.is_empty() || !references.iter().all(|r| r.filtered) {
                repeated.push((p, None));
            }
        }
    }
    // For each of `repeated`, how many times each of them occurs in one copy of it.
    let holds: Vec<Vec<usize>> = repeated
        .iter()
        .map(|(outer, _)| {
            let LogicalPlan::SubqueryAlias(alias) = outer else {
                return vec![0; repeated.len()];
            };
            let within = aliased_subplans(&alias.input, skip);
            repeated
                .iter()
                .map(|(r, _)| within.iter().filter(|q| same_plan(q, r)).count())
                .collect()
        })
        .collect();
    // `outer` covers `inner` when each of `inner`'s reads is in a copy of `outer`, once
    // per copy: computed once with `outer`, it is computed once (under the conditions
    // `outer`'s readers put on it: q39's months reach its inner aggregate).
    let covers = |outer: usize, inner: usize| {
        holds[outer][inner] == 1 && count(repeated[outer].0) == count(repeated[inner].0)
    };
    let covered = |inner: usize| (0..repeated.len()).any(|o| o != inner && covers(o, inner));
    // The outermost that covers whatever it holds, else the innermost: one that holds no
    // other such subplan, so that, shared in turn, every repeated subplan is computed
    // once (an outer one then reads the inner one's rows, and its copies are alike).
    let chosen = (0..repeated.len())
        .find(|&i| !covered(i) && (0..repeated.len()).all(|j| holds[i][j] == 0 || covers(i, j)))
        .or_else(|| (0..repeated.len()).find(|&i| holds[i].iter().all(|n| *n == 0)))?;
    let (subplan, needed) = &repeated[chosen];
    Some(Repeated {
        subplan: (*subplan).clone(),
        reads: count(subplan),
        needed: needed.clone(),
    })
}

/// A subplan under an alias, counted as its plan (`same_plan`) but hashed by its alias
/// name alone: equal plans have equal names, and hashing each aliased subplan in full
/// walked the whole plan below every alias of a query.
struct ByAlias<'a>(&'a LogicalPlan);

impl std::hash::Hash for ByAlias<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if let LogicalPlan::SubqueryAlias(a) = self.0 {
            a.alias.hash(state);
        }
    }
}

impl PartialEq for ByAlias<'_> {
    fn eq(&self, other: &Self) -> bool {
        same_plan(self.0, other.0)
    }
}

impl Eq for ByAlias<'_> {}

/// The subplans under an alias in `plan` (subqueries included), in the walk's order,
/// but those whose alias `skip` names. Cloned, as a subquery's plan is not borrowed for
/// as long as `plan` (a clone of an alias copies its `Arc`s, not the plan below it).
fn aliased_subplans(plan: &LogicalPlan, skip: &BTreeSet<String>) -> Vec<LogicalPlan> {
    let mut aliased = Vec::new();
    // The closure never fails, so neither does the walk.
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::SubqueryAlias(a) = p
            && !skip.contains(&a.alias.table().to_ascii_lowercase())
        {
            aliased.push(p.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    aliased
}

/// One reference of a repeated subplan.
struct Reference {
    /// Whether a filter or join above it has a condition of its own, on the name it
    /// goes by (the alias a reference gives it, `v1 v1_lag`, or its own name): DataFusion
    /// pushes such a condition into that reference's copy.
    filtered: bool,
    /// The conditions every row of it that reaches the answer meets, on the subplan's
    /// own name (see `collect_references`); none when nothing is known.
    needs: Vec<Expr>,
}

/// The condition a repeated subplan's rows must meet to be read by any of its
/// `references`, when each needs some: the `OR` of each reference's conditions and, for
/// each column every reference has conditions on alone, the `OR` of those. The latter
/// are implied by the former, and written out so that DataFusion pushes each where it
/// pushes a condition on that column (below an aggregate grouped by it) when the whole
/// `OR` also reads an aggregate's value and stays above (q39b's `cov > 1.5`).
fn needed_rows(references: &[Reference]) -> Option<Expr> {
    if references.is_empty() || references.iter().any(|r| r.needs.is_empty()) {
        return None;
    }
    let either = |conditions: Vec<Expr>| {
        let mut distinct: Vec<Expr> = Vec::new();
        for c in conditions {
            if !distinct.contains(&c) {
                distinct.push(c);
            }
        }
        distinct.into_iter().reduce(Expr::or)
    };
    let all = |conditions: &[Expr]| conditions.iter().cloned().reduce(Expr::and);
    let whole = either(references.iter().filter_map(|r| all(&r.needs)).collect())?;
    let mut needed = vec![whole.clone()];
    let columns: BTreeSet<_> = references[0]
        .needs
        .iter()
        .filter_map(single_column)
        .collect();
    for column in columns {
        let per_reference: Option<Vec<Expr>> = references
            .iter()
            .map(|r| {
                let on_it: Vec<Expr> = r
                    .needs
                    .iter()
                    .filter(|c| single_column(c).as_ref() == Some(&column))
                    .cloned()
                    .collect();
                all(&on_it)
            })
            .collect();
        if let Some(implied) = per_reference.and_then(either)
            && !needed.contains(&implied)
        {
            needed.push(implied);
        }
    }
    needed.into_iter().reduce(Expr::and)
}

/// The one column `condition` reads, if it reads exactly one.
fn single_column(condition: &Expr) -> Option<Column> {
    let columns = condition.column_refs();
    match columns.iter().next() {
        Some(column) if columns.len() == 1 => Some((*column).clone()),
        _ => None,
    }
}

/// For each reference of `subplan` in `plan` (subqueries included), what is known of
/// the rows it keeps (`Reference`). `above` names the relations that conditions of
/// filters and joins above read alone (a hint); `needs` holds the conjuncts of filters
/// and inner joins above that every row reaching the answer meets, each reading one
/// relation: a row that fails one is dropped there, and so is every row made from it on
/// the way up, as long as the way passes only filters, sorts without a limit, inner
/// joins and projections that pass the condition's columns on unchanged. Any other node
/// (an aggregate, a window, a limit, an outer, semi or anti join, a union, another
/// alias) forgets them: above it a row's absence can change the answer.
fn collect_references(
    plan: &LogicalPlan,
    subplan: &LogicalPlan,
    above: &BTreeSet<String>,
    needs: &[Expr],
    references: &mut Vec<Reference>,
) {
    let LogicalPlan::SubqueryAlias(own) = subplan else {
        return;
    };
    // A reference, by the subplan's own name or under an alias of its own: the
    // conditions on that name, on the subplan's own name.
    let name = if same_plan(plan, subplan) {
        Some(&own.alias)
    } else if let LogicalPlan::SubqueryAlias(a) = plan
        && same_plan(&a.input, subplan)
    {
        Some(&a.alias)
    } else {
        None
    };
    if let Some(name) = name {
        let own_needs = needs
            .iter()
            .filter(|c| {
                c.column_refs()
                    .iter()
                    .all(|col| col.relation.as_ref() == Some(name))
            })
            .map(|c| {
                c.clone()
                    .transform(|e| {
                        Ok(match e {
                            Expr::Column(col) => Transformed::yes(Expr::Column(Column::new(
                                Some(own.alias.clone()),
                                col.name,
                            ))),
                            other => Transformed::no(other),
                        })
                    })
                    .map(|t| t.data)
            })
            // (The rewrite never fails.)
            .collect::<Result<Vec<_>>>()
            .unwrap_or_default();
        references.push(Reference {
            filtered: above.contains(name.table()),
            needs: own_needs,
        });
        return;
    }
    let mut here = above.clone();
    let mut below: Vec<Expr> = Vec::new();
    match plan {
        LogicalPlan::Filter(f) => {
            own_conditions(&f.predicate, &mut here);
            below.extend_from_slice(needs);
            below.extend(needed_conjuncts(&f.predicate));
        }
        LogicalPlan::Join(j) => {
            if let Some(f) = &j.filter {
                own_conditions(f, &mut here);
            }
            if j.join_type == datafusion::logical_expr::JoinType::Inner {
                below.extend_from_slice(needs);
                if let Some(f) = &j.filter {
                    below.extend(needed_conjuncts(f));
                }
            }
        }
        LogicalPlan::Sort(s) if s.fetch.is_none() => below.extend_from_slice(needs),
        LogicalPlan::Projection(p) => below.extend(needs.iter().cloned().filter(|c| {
            c.column_refs().iter().all(|col| {
                p.expr
                    .iter()
                    .any(|e| matches!(e, Expr::Column(x) if x == *col))
            })
        })),
        _ => {}
    }
    // A subquery's plan starts afresh: the conditions around it are not in it.
    let _ = plan.apply_subqueries(|sub| {
        collect_references(sub, subplan, &BTreeSet::new(), &[], references);
        Ok(TreeNodeRecursion::Continue)
    });
    for input in plan.inputs() {
        collect_references(input, subplan, &here, &below, references);
    }
}

/// The conjuncts of `predicate` a row must meet that read one relation (`own_relation`)
/// and may be evaluated anywhere below: nothing volatile, no outer reference or
/// unbound parameter.
fn needed_conjuncts(predicate: &Expr) -> Vec<Expr> {
    datafusion::logical_expr::utils::split_conjunction(predicate)
        .into_iter()
        .filter(|c| {
            // (The closure never fails: an error cannot come back.)
            let movable = !c
                .exists(|e| {
                    Ok(e.is_volatile_node()
                        || matches!(e, Expr::OuterReferenceColumn(..) | Expr::Placeholder(_)))
                })
                .unwrap_or(true);
            movable && own_relation(c).is_some()
        })
        .cloned()
        .collect()
}

/// Adds to `filtered` the relation of each conjunct of `predicate` that reads one
/// relation (`own_relation`).
fn own_conditions(predicate: &Expr, filtered: &mut BTreeSet<String>) {
    for conjunct in datafusion::logical_expr::utils::split_conjunction(predicate) {
        if let Some(relation) = own_relation(conjunct) {
            filtered.insert(relation.table().to_string());
        }
    }
}

/// The relation all of `conjunct`'s columns are of, if they are of one and it holds no
/// subquery (a comparison with a subquery's value is a join, after decorrelation, not
/// a filter DataFusion pushes down).
fn own_relation(conjunct: &Expr) -> Option<TableReference> {
    // (The closure never fails: an error cannot come back.)
    let subquery = conjunct.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::SetComparison(_)
        ))
    });
    if subquery.unwrap_or(true) {
        return None;
    }
    let columns = conjunct.column_refs();
    let mut relations = columns.iter().map(|c| c.relation.as_ref());
    let first = relations.next()??;
    relations.all(|r| r == Some(first)).then(|| first.clone())
}

/// Whether computing `plan` once saves work (it aggregates, windows, joins or removes
/// duplicates) and gives the answer every reference would (`computable_ahead`).
fn worth_sharing(plan: &LogicalPlan) -> bool {
    let mut costly = false;
    // The closure never fails, so neither does the walk.
    let _ = plan.apply_with_subqueries(|p| {
        costly |= matches!(
            p,
            LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Distinct(_)
        );
        Ok(TreeNodeRecursion::Continue)
    });
    costly && computable_ahead(plan)
}

/// Whether `plan`'s rows computed ahead of the run, once, are those each place that
/// holds it would compute: it calls no volatile function (each copy of `random()`
/// draws its own values in DataFusion's plan), reads no outer reference (a correlated
/// subquery's) and has no parameter left unbound.
pub(crate) fn computable_ahead(plan: &LogicalPlan) -> bool {
    let mut safe = true;
    // The closures never fail, so neither does the walk.
    let _ = plan.apply_with_subqueries(|p| {
        let _ = p.apply_expressions(|e| {
            safe &= !e
                .exists(|e| {
                    Ok(e.is_volatile_node()
                        || matches!(e, Expr::OuterReferenceColumn(..) | Expr::Placeholder(_)))
                })
                .unwrap_or(true);
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if safe {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session with a table `t` of three rows, `(1, 10), (2, 20), (2, 5)`.
    async fn context_with_t() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS VALUES (1, 10), (2, 20), (2, 5)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        ctx
    }

    /// `same_plan` is `==`, and a `WITH` query read twice is found by its alias alone
    /// (`ByAlias` hashes names only): every pair of aliased subplans of a query with two
    /// `WITH` queries of the same shape, one read under two names, one under the same,
    /// and one name (`x`) over both.
    #[tokio::test]
    async fn aliased_subplans_compare_as_plans() {
        let ctx = context_with_t().await;
        let sql = "WITH a AS (SELECT column1 AS k, sum(column2) AS v FROM t GROUP BY column1), \
                        b AS (SELECT column1 AS k, sum(column2) AS v FROM t GROUP BY column1) \
                   SELECT x.k FROM a x JOIN a y ON x.k = y.k JOIN b ON b.k = x.k \
                   WHERE x.v > (SELECT max(x.v) FROM b x)";
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.logical_plan();
        let aliased = aliased_subplans(plan, &BTreeSet::new());
        assert!(aliased.len() >= 6, "{}", aliased.len());
        let mut equal_pairs = 0;
        let mut same_name_other_plan = 0;
        for p in &aliased {
            for q in &aliased {
                assert_eq!(same_plan(p, q), p == q);
                if let (LogicalPlan::SubqueryAlias(a), LogicalPlan::SubqueryAlias(b)) = (p, q)
                    && a.alias == b.alias
                    && p != q
                {
                    same_name_other_plan += 1;
                }
                // Equal keys hash alike, as a map needs.
                if ByAlias(p) == ByAlias(q) {
                    use std::hash::BuildHasher;
                    let hasher = std::collections::hash_map::RandomState::new();
                    assert_eq!(hasher.hash_one(ByAlias(p)), hasher.hash_one(ByAlias(q)));
                    equal_pairs += 1;
                }
            }
        }
        // `a` twice, `b` twice (the join and the subquery), each a pair both ways.
        assert!(equal_pairs > aliased.len(), "{equal_pairs}");
        assert!(same_name_other_plan > 0);
        let repeated = repeated_subplan(plan, &BTreeSet::new(), &[]).expect("a repeated subplan");
        assert_eq!(repeated.reads, 2);
        let LogicalPlan::SubqueryAlias(alias) = &repeated.subplan else {
            panic!("not an alias: {}", repeated.subplan.display());
        };
        assert!(["a", "b"].contains(&alias.alias.table()), "{}", alias.alias);
    }

    #[tokio::test]
    async fn reads_count_through_views_and_subqueries() {
        let ctx = context_with_t().await;
        let a = ctx
            .sql("SELECT column1 AS k, sum(column2) AS v FROM t GROUP BY column1")
            .await
            .unwrap();
        ctx.register_table("a", a.into_view()).unwrap();
        let b = ctx.sql("SELECT k, v FROM a WHERE v > 0").await.unwrap();
        ctx.register_table("b", b.into_view()).unwrap();
        let out = ctx
            .sql("SELECT b1.k FROM b b1 JOIN b b2 ON b1.k = b2.k WHERE b1.v = (SELECT max(v) FROM a)")
            .await
            .unwrap();
        let nodes: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let reads = node_reads(out.logical_plan(), &nodes);
        assert_eq!(reads.get("b"), Some(&2));
        // Twice through `b`, once in the subquery.
        assert_eq!(reads.get("a"), Some(&3));
        assert_eq!(reads.get("t"), None);
    }

    /// Slices of one batch count its buffers once; batches of their own each count.
    #[test]
    fn held_bytes_count_each_buffer_once() {
        use datafusion::arrow::array::{ArrayRef, Int64Array, StringViewArray};
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..100_000));
        let names: ArrayRef = Arc::new(StringViewArray::from_iter_values(
            (0..100_000).map(|i| format!("a longer name than a view holds inline {i}")),
        ));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
        let whole = new_bytes(&batch, &mut HashSet::new());
        let slices: Vec<RecordBatch> = (0..10).map(|i| batch.slice(i * 10_000, 10_000)).collect();
        let mut seen = HashSet::new();
        let counted: usize = slices.iter().map(|b| new_bytes(b, &mut seen)).sum();
        assert_eq!(counted, whole);
        let naive: usize = slices.iter().map(|b| b.get_array_memory_size()).sum();
        assert!(naive >= 9 * whole, "{naive} against {whole}");
        // A batch of its own buffers is counted in full.
        let copy = RecordBatch::try_from_iter([(
            "id",
            Arc::new(Int64Array::from_iter_values(0..10)) as ArrayRef,
        )])
        .unwrap();
        let n = new_bytes(&copy, &mut seen);
        assert!((80..=copy.get_array_memory_size()).contains(&n), "{n}");
    }

    #[tokio::test]
    async fn a_computed_node_answers_like_its_view_and_a_large_one_is_left_alone() {
        let ctx = SessionContext::new();
        let pool = ctx.runtime_env().memory_pool.clone();
        let node = ctx
            .sql("SELECT v % 7 AS k, count(*) AS n FROM generate_series(1, 10000) AS s(v) GROUP BY v % 7")
            .await
            .unwrap();
        ctx.register_table("agg", node.clone().into_view()).unwrap();
        let query = "SELECT sum(n) AS total, (SELECT max(n) FROM agg) AS top FROM agg";
        let as_view = ctx.sql(query).await.unwrap().collect().await.unwrap();

        let too_small = compute(&ctx, "agg", 2, node.clone(), &pool, 16, false)
            .await
            .unwrap();
        assert!(too_small.is_none(), "over budget: left a view");
        assert_eq!(pool.reserved(), 0, "what it held is given back");

        let shared = compute(&ctx, "agg", 2, node, &pool, 1 << 20, false)
            .await
            .unwrap()
            .expect("within budget");
        assert_eq!(shared.rows, 7);
        assert!(pool.reserved() > 0, "its rows are held in the pool");
        // A table of rows now, no longer the view (a temporary table).
        let provider = ctx.table_provider("agg").await.unwrap();
        assert_eq!(
            provider.table_type(),
            datafusion::datasource::TableType::Base
        );
        let computed = ctx.sql(query).await.unwrap().collect().await.unwrap();
        assert_eq!(
            datafusion::arrow::util::pretty::pretty_format_batches(&as_view)
                .unwrap()
                .to_string(),
            datafusion::arrow::util::pretty::pretty_format_batches(&computed)
                .unwrap()
                .to_string()
        );
        drop(shared);
        assert_eq!(pool.reserved(), 0);
    }

    /// `sql` in `ctx` as DataFusion plans it, and with `share_repeated` (within
    /// `budget`): the same rows in order; what was computed once (name, reads, rows
    /// held), and the plan run.
    async fn shared_run(
        ctx: &SessionContext,
        sql: &str,
        budget: usize,
    ) -> (Vec<(String, usize, usize)>, LogicalPlan) {
        let pool = ctx.runtime_env().memory_pool.clone();
        let df = ctx.sql(sql).await.unwrap();
        let inlined = df.clone().collect().await.unwrap();
        let (plan, shared) = share_repeated(
            ctx,
            df.logical_plan().clone(),
            &BTreeSet::new(),
            &pool,
            budget,
            false,
        )
        .await
        .unwrap();
        let computed = DataFrame::new(ctx.state(), plan.clone())
            .collect()
            .await
            .unwrap();
        let pretty = |b: &[RecordBatch]| {
            datafusion::arrow::util::pretty::pretty_format_batches(b)
                .unwrap()
                .to_string()
        };
        assert_eq!(pretty(&inlined), pretty(&computed), "{sql}");
        let nodes = shared
            .iter()
            .map(|s| (s.name.clone(), s.reads, s.rows))
            .collect();
        drop(shared);
        assert_eq!(pool.reserved(), 0, "the rows are given back with the nodes");
        (nodes, plan)
    }

    /// `shared_run`'s nodes by name and reads, and its plan.
    async fn shared_answer(
        ctx: &SessionContext,
        sql: &str,
        budget: usize,
    ) -> (Vec<(String, usize)>, LogicalPlan) {
        let (nodes, plan) = shared_run(ctx, sql, budget).await;
        let names = nodes.into_iter().map(|(n, reads, _)| (n, reads)).collect();
        (names, plan)
    }

    /// `shared_run`'s nodes by name and rows held (within 1 MiB).
    async fn shared_rows(ctx: &SessionContext, sql: &str) -> Vec<(String, usize)> {
        let (nodes, _) = shared_run(ctx, sql, 1 << 20).await;
        nodes.into_iter().map(|(n, _, rows)| (n, rows)).collect()
    }

    /// A table `t` of 2,000 rows: `k` 13 values, `g` as `g` computes it from `v`.
    async fn table(g: &str) -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(&format!(
            "CREATE TABLE t AS SELECT v % 13 AS k, {g} AS g, v AS v \
             FROM generate_series(1, 2000) AS s(v)"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx
    }

    async fn events() -> SessionContext {
        table("v % 5").await
    }

    fn aggregates(plan: &LogicalPlan) -> usize {
        let mut n = 0;
        let _ = plan.apply_with_subqueries(|p| {
            n += usize::from(matches!(p, LogicalPlan::Aggregate(_)));
            Ok(TreeNodeRecursion::Continue)
        });
        n
    }

    #[tokio::test]
    async fn a_with_query_read_three_times_is_computed_once() {
        let ctx = events().await;
        // As TPC-DS q47: an aggregate under a window function, joined to itself twice.
        let sql = "WITH v1 AS (SELECT k, g, sum(v) AS s, rank() OVER (PARTITION BY k ORDER BY g) AS rn \
                   FROM t GROUP BY k, g) \
                   SELECT a.k, a.g, a.s, b.s AS prev, c.s AS next FROM v1 a \
                   JOIN v1 b ON a.k = b.k AND a.rn = b.rn + 1 \
                   JOIN v1 c ON a.k = c.k AND a.rn = c.rn - 1 ORDER BY a.k, a.g";
        let (shared, plan) = shared_answer(&ctx, sql, 1 << 20).await;
        assert_eq!(shared, vec![("v1".to_string(), 3)]);
        assert_eq!(aggregates(&plan), 0, "the readers scan its rows:\n{plan}");
    }

    #[tokio::test]
    async fn a_with_query_read_only_as_a_set_is_computed_as_the_distinct_values_read() {
        let ctx = events().await;
        // As TPC-DS q95: pairs of rows of a `k` with different `g`s (many per `k`), read
        // only for `k`, in an `IN` and in a join inside an `IN`.
        let pairs = "WITH p AS (SELECT t1.k, t1.g AS g1, t2.g AS g2 FROM t t1, t t2 \
                     WHERE t1.k = t2.k AND t1.g <> t2.g AND t1.v <= 200 AND t2.v <= 200) ";
        let sql = format!(
            "{pairs}SELECT count(*), sum(v) FROM t WHERE k IN (SELECT k FROM p) \
             AND v IN (SELECT t.v FROM t, p WHERE t.k = p.k AND t.v > 1000)"
        );
        assert_eq!(shared_rows(&ctx, &sql).await, vec![("p".to_string(), 13)]);
        // `NOT IN` and `EXISTS` read sets too; a NULL among the values is kept.
        let sql = format!(
            "{pairs}, q AS (SELECT CASE WHEN k = 3 THEN NULL ELSE k END AS k, g1 FROM p) \
             SELECT count(*) FROM t WHERE g NOT IN (SELECT k FROM q) \
             AND EXISTS (SELECT 1 FROM q WHERE q.k = t.k + 1)"
        );
        let rows = shared_rows(&ctx, &sql).await;
        assert!(rows.contains(&("q".to_string(), 13)), "{rows:?}");
        // One reader counts its rows: all of them are computed.
        let sql = format!(
            "{pairs}SELECT (SELECT count(*) FROM p) AS n, count(*) AS m FROM t \
             WHERE k IN (SELECT k FROM p)"
        );
        let all = shared_rows(&ctx, &sql).await;
        assert_eq!(all.len(), 1);
        assert!(all[0].1 > 13 * 100, "{all:?}");
        // A reader of every column (in a set context): its rows as they are.
        let sql = format!(
            "{pairs}SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM p WHERE p.k = t.k \
             AND p.g1 = t.g AND p.g2 = t.v % 3) AND k IN (SELECT k FROM p)"
        );
        assert!(shared_rows(&ctx, &sql).await[0].1 > 13 * 100);
    }

    #[tokio::test]
    async fn a_with_query_read_in_a_subquery_too_is_computed_once() {
        let ctx = events().await;
        // As TPC-DS q14a: read in FROM and in a scalar subquery.
        let sql = "WITH per_key AS (SELECT k, avg(v) AS a FROM t GROUP BY k) \
                   SELECT k, a FROM per_key WHERE a > (SELECT avg(a) FROM per_key) ORDER BY k";
        let (shared, plan) = shared_answer(&ctx, sql, 1 << 20).await;
        assert_eq!(shared, vec![("per_key".to_string(), 2)]);
        assert_eq!(aggregates(&plan), 1, "only the subquery's own avg:\n{plan}");
    }

    #[tokio::test]
    async fn what_is_cheap_volatile_or_too_large_stays_inlined() {
        let ctx = events().await;
        // Cheap: a filter is no work to repeat (and each reader's filter reaches the scan).
        let cheap = "WITH big AS (SELECT k, v FROM t WHERE v > 10) \
                     SELECT count(*) FROM big a JOIN big b ON a.k = b.k";
        assert!(shared_answer(&ctx, cheap, 1 << 20).await.0.is_empty());
        // Volatile: DataFusion draws each reference's `random()` on its own. (Whether
        // the rows agree is chance, so only the plan is compared.)
        let volatile = "WITH r AS (SELECT k, sum(v) * random() AS x FROM t GROUP BY k) \
                        SELECT count(*) FROM r a JOIN r b ON a.k = b.k";
        let pool = ctx.runtime_env().memory_pool.clone();
        let df = ctx.sql(volatile).await.unwrap();
        let (plan, shared) = share_repeated(
            &ctx,
            df.logical_plan().clone(),
            &BTreeSet::new(),
            &pool,
            1 << 20,
            false,
        )
        .await
        .unwrap();
        assert!(shared.is_empty());
        assert_eq!(&plan, df.logical_plan());
        // One unfiltered reference makes the whole needed, and it is shared whole.
        let whole = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) \
                     SELECT a.k, a.s, b.s FROM v1 a JOIN v1 b ON a.k = b.k AND b.g = 2 \
                     ORDER BY 1, 2, 3";
        assert_eq!(
            shared_answer(&ctx, whole, 1 << 20).await.0,
            vec![("v1".to_string(), 2)]
        );
        // The same name read filtered in the query and whole in a subquery (q24's
        // `ssales`): the whole is needed, and shared.
        let subquery = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) \
                        SELECT k, s FROM v1 WHERE g = 1 AND s > (SELECT avg(s) FROM v1) \
                        ORDER BY 1, 2";
        assert_eq!(
            shared_answer(&ctx, subquery, 1 << 20).await.0,
            vec![("v1".to_string(), 2)]
        );
        // Too large for the budget: inlined, and the memory given back.
        let sql = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) \
                   SELECT a.k, a.s, b.s FROM v1 a JOIN v1 b ON a.k = b.k AND a.g = b.g + 1 ORDER BY 1, 2, 3";
        assert!(shared_answer(&ctx, sql, 64).await.0.is_empty());
    }

    #[tokio::test]
    async fn with_queries_inside_shared_ones_are_each_computed_once() {
        let ctx = events().await;
        // `b` is read twice; `a` by `b` and by a subquery.
        let sql = "WITH a AS (SELECT k, sum(v) AS s FROM t GROUP BY k), \
                   b AS (SELECT a.k, a.s, count(*) AS n FROM a JOIN t ON a.k = t.k GROUP BY a.k, a.s) \
                   SELECT x.k, x.n, y.s, (SELECT max(s) FROM a) AS top \
                   FROM b x JOIN b y ON x.k = y.k ORDER BY x.k";
        let (shared, plan) = shared_answer(&ctx, sql, 1 << 20).await;
        // `a` first (three reads: one in each copy of `b`, one in the subquery), then
        // `b`, whose copies read `a`'s rows: each computed once.
        assert_eq!(shared, vec![("a".to_string(), 3), ("b".to_string(), 2)]);
        assert_eq!(aggregates(&plan), 1, "only the subquery's max:\n{plan}");
    }

    /// `t` with NULLs among its group keys: `g` is NULL on every seventh row.
    async fn with_nulls() -> SessionContext {
        table("CASE WHEN v % 7 = 0 THEN NULL ELSE v % 5 END").await
    }

    #[tokio::test]
    async fn filtered_references_share_the_rows_some_reference_keeps() {
        let ctx = with_nulls().await;
        // v1 has 13 keys × 6 groups (g 0..4 and NULL): 78 rows.
        let v1 = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) ";
        // Each reference filtered on its own months (q39): one computation of the two.
        let months = format!(
            "{v1} SELECT a.k, a.s, b.s FROM v1 a, v1 b \
             WHERE a.k = b.k AND a.g = 1 AND b.g = 2 ORDER BY 1, 2, 3"
        );
        assert_eq!(shared_rows(&ctx, &months).await, vec![("v1".into(), 26)]);
        // One reference's condition also reads an aggregate's value (q39b's `cov`): the
        // groups' condition alone still reaches below the aggregate.
        let value = format!(
            "{v1} SELECT a.k, a.s, b.s FROM v1 a JOIN v1 b ON a.k = b.k AND b.g = 2 \
             WHERE a.g = 1 AND a.s > 15000 ORDER BY 1, 2, 3"
        );
        let rows = shared_rows(&ctx, &value).await;
        assert_eq!(rows.len(), 1);
        assert!(rows[0].1 <= 26, "{rows:?}");
        // Three references (q31's quarters), one in a derived table, one with the same
        // condition twice.
        let quarters = format!(
            "{v1} SELECT x.k, x.s, y.s, z.s FROM \
             (SELECT * FROM (SELECT a.k, a.g, a.s FROM v1 a ORDER BY a.s) q) x, v1 y, v1 z \
             WHERE x.k = y.k AND y.k = z.k AND y.g = 2 AND z.g = 3 AND z.g = 3 \
             AND x.g IS NOT NULL ORDER BY 1, 2, 3, 4"
        );
        // `x` is another alias: its condition is not `a`'s, which is read whole.
        assert_eq!(shared_rows(&ctx, &quarters).await, vec![("v1".into(), 78)]);
        let quarters = format!(
            "{v1} SELECT x.k, x.s, y.s, z.s FROM \
             (SELECT a.k, a.g, a.s FROM v1 a WHERE a.g = 1 ORDER BY a.s) x, v1 y, v1 z \
             WHERE x.k = y.k AND y.k = z.k AND y.g = 2 AND z.g = 3 AND z.g = 3 \
             ORDER BY 1, 2, 3, 4"
        );
        assert_eq!(shared_rows(&ctx, &quarters).await, vec![("v1".into(), 39)]);
        // NULL groups: `IS NULL` keeps them, and they are kept.
        let nulls = format!(
            "{v1} SELECT a.k, a.s, b.s FROM v1 a JOIN v1 b ON a.k = b.k \
             WHERE a.g IS NULL AND b.g = 0 ORDER BY 1, 2, 3"
        );
        assert_eq!(shared_rows(&ctx, &nulls).await, vec![("v1".into(), 26)]);
    }

    #[tokio::test]
    async fn an_outer_with_query_filtered_per_reference_is_shared_with_its_inner_one() {
        let ctx = with_nulls().await;
        // q39: `inv` reads the aggregate `foo` under a condition on its value; each
        // reference of `inv` keeps one month. `inv` is shared (with `foo` in it, once),
        // and the months reach `foo`'s groups: 26 of its 78 rows, fewer after `s > 0`.
        let sql = "WITH inv AS (SELECT k, g, s FROM \
                   (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) foo WHERE s > 0) \
                   SELECT a.k, a.s, b.s FROM inv a, inv b \
                   WHERE a.k = b.k AND a.g = 1 AND b.g = 2 ORDER BY 1, 2, 3";
        let (shared, plan) = shared_run(&ctx, sql, 1 << 20).await;
        assert_eq!(shared, vec![("inv".to_string(), 2, 26)]);
        assert_eq!(aggregates(&plan), 0, "{plan}");
    }

    #[tokio::test]
    async fn conditions_past_outer_joins_and_aggregates_are_not_relied_on() {
        let ctx = with_nulls().await;
        let v1 = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) ";
        // A left join's condition on its preserved side keeps every row of it (with
        // NULLs for the other side): all of `a` is needed, so nothing is relied on
        // (the copies compute what they need).
        let left = format!(
            "{v1} SELECT a.k, a.g, a.s, b.s FROM v1 a LEFT JOIN v1 b \
             ON a.k = b.k AND a.g = 1 AND b.g = 2 ORDER BY 1, 2, 3, 4"
        );
        for (name, rows) in shared_rows(&ctx, &left).await {
            assert_eq!((name.as_str(), rows), ("v1", 78));
        }
        // A condition above an aggregate of the reference, and one above a limit.
        let grouped = format!(
            "{v1} SELECT x.g, x.total, b.s FROM \
             (SELECT a.g, sum(a.s) AS total FROM v1 a GROUP BY a.g) x \
             JOIN v1 b ON x.g = b.g WHERE x.g = 1 AND b.k = 3 ORDER BY 1, 2, 3"
        );
        for (name, rows) in shared_rows(&ctx, &grouped).await {
            assert_eq!((name.as_str(), rows), ("v1", 78));
        }
        let limited = format!(
            "{v1} SELECT x.k, x.s, b.s FROM \
             (SELECT a.k, a.g, a.s FROM v1 a ORDER BY a.s, a.k, a.g LIMIT 20) x \
             JOIN v1 b ON x.k = b.k WHERE x.g = 1 AND b.g = 2 ORDER BY 1, 2, 3"
        );
        for (name, rows) in shared_rows(&ctx, &limited).await {
            assert_eq!((name.as_str(), rows), ("v1", 78));
        }
    }
}
