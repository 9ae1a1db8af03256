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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SubqueryAlias};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::session::prepared::{ExactStats, KeptPlan, deal, evaluated_when_planned};

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
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let size = batch.get_array_memory_size();
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

/// Runs `df` to completion into a table of its rows (with `schema`, else its physical
/// plan's), or `None` when they outgrow `budget` or the pool (or do not fit `schema`).
#[allow(clippy::too_many_arguments)]
async fn compute_rows(
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
    while let Some((subplan, reads)) = repeated_subplan(&plan, skip, &too_large) {
        let LogicalPlan::SubqueryAlias(alias) = &subplan else {
            break;
        };
        let name = alias.alias.table().to_string();
        let held: usize = shared.iter().map(|s| s.bytes).sum();
        let df = DataFrame::new(ctx.state(), alias.input.as_ref().clone());
        let schema = Arc::new(alias.input.schema().as_arrow().clone());
        let computed = compute_rows(
            ctx,
            &name,
            reads,
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
        let scan = LogicalPlanBuilder::scan(
            format!("__sluice_shared_{}", shared.len()),
            provider_as_source(Arc::new(table)),
            None,
        )?
        .build()?;
        let replacement = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
            Arc::new(scan),
            alias.alias.clone(),
        )?);
        plan = plan
            .transform_down_with_subqueries(|p| {
                Ok(if p == subplan {
                    Transformed::new(replacement.clone(), true, TreeNodeRecursion::Jump)
                } else {
                    Transformed::no(p)
                })
            })?
            .data;
        shared.push(node);
    }
    Ok((plan, shared))
}

/// A subplan under an alias that `plan` holds more than once, worth computing once and
/// safe to (see the module's documentation), with how many times it holds it; none in
/// `skip` or `too_large`. The innermost first: one that holds no other such subplan, so
/// that, shared in turn, every repeated subplan is computed once (an outer one then
/// reads the inner one's rows, and its copies are alike again).
fn repeated_subplan(
    plan: &LogicalPlan,
    skip: &BTreeSet<String>,
    too_large: &[LogicalPlan],
) -> Option<(LogicalPlan, usize)> {
    let aliased = aliased_subplans(plan, skip);
    let mut counts: HashMap<&LogicalPlan, usize> = HashMap::new();
    for p in &aliased {
        *counts.entry(p).or_default() += 1;
    }
    let mut repeated: Vec<&LogicalPlan> = Vec::new();
    for p in &aliased {
        if counts[p] > 1
            && !repeated.contains(&p)
            && !too_large.contains(p)
            && worth_sharing(p)
            && !every_reference_filtered(plan, p)
        {
            repeated.push(p);
        }
    }
    let innermost = repeated.iter().find(|p| {
        let LogicalPlan::SubqueryAlias(alias) = p else {
            return false;
        };
        let inside = aliased_subplans(&alias.input, skip);
        !inside.iter().any(|q| repeated.contains(&q))
    })?;
    Some(((*innermost).clone(), counts[*innermost]))
}

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

/// Whether every reference of `subplan` in `plan` has a condition of its own (one that
/// reads its columns alone: `inv1.d_moy = 1`, `t_s_firstyear.sale_type = 's'`) in a
/// filter or join. DataFusion pushes such a condition into that reference's copy,
/// which then computes only its part (TPC-DS q39's two months of a year, q04's one
/// year and channel of six): computed once in full, it could cost more than all the
/// parts (q39 took 5× as long). With one unfiltered reference, the whole is computed
/// anyway and sharing it costs no more.
fn every_reference_filtered(plan: &LogicalPlan, subplan: &LogicalPlan) -> bool {
    let mut references = Vec::new();
    filtered_references(plan, subplan, &BTreeSet::new(), &mut references);
    !references.is_empty() && references.iter().all(|filtered| *filtered)
}

/// For each reference of `subplan` in `plan` (subqueries included), whether a filter or
/// join above it (`above`: the relations such conditions of its ancestors read alone)
/// has a condition of its own, on the name it goes by: the alias a reference gives it
/// (`v1 v1_lag`), or its own name.
fn filtered_references(
    plan: &LogicalPlan,
    subplan: &LogicalPlan,
    above: &BTreeSet<String>,
    references: &mut Vec<bool>,
) {
    let LogicalPlan::SubqueryAlias(own) = subplan else {
        return;
    };
    if plan == subplan {
        references.push(above.contains(own.alias.table()));
        return;
    }
    if let LogicalPlan::SubqueryAlias(a) = plan
        && a.input.as_ref() == subplan
    {
        references.push(above.contains(a.alias.table()));
        return;
    }
    let mut here = above.clone();
    match plan {
        LogicalPlan::Filter(f) => own_conditions(&f.predicate, &mut here),
        LogicalPlan::Join(j) => {
            if let Some(f) = &j.filter {
                own_conditions(f, &mut here);
            }
        }
        _ => {}
    }
    // A subquery's plan starts afresh: the conditions around it are not in it.
    let _ = plan.apply_subqueries(|sub| {
        filtered_references(sub, subplan, &BTreeSet::new(), references);
        Ok(TreeNodeRecursion::Continue)
    });
    for input in plan.inputs() {
        filtered_references(input, subplan, &here, references);
    }
}

/// Adds to `filtered` the relation of each conjunct of `predicate` whose columns are all
/// of that one relation, and that holds no subquery (a comparison with a subquery's
/// value is a join, after decorrelation, not a filter DataFusion pushes down).
fn own_conditions(predicate: &Expr, filtered: &mut BTreeSet<String>) {
    for conjunct in datafusion::logical_expr::utils::split_conjunction(predicate) {
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
            continue;
        }
        let columns = conjunct.column_refs();
        let mut relations = columns
            .iter()
            .map(|c| c.relation.as_ref().map(|r| r.table()));
        if let Some(Some(first)) = relations.next()
            && relations.all(|r| r == Some(first))
        {
            filtered.insert(first.to_string());
        }
    }
}

/// Whether computing `plan` once saves work (it aggregates, windows, joins or removes
/// duplicates) and gives the answer every reference would (no volatile function, no
/// outer reference, no parameter left unbound).
fn worth_sharing(plan: &LogicalPlan) -> bool {
    let mut costly = false;
    let mut safe = true;
    // The closures never fail, so neither does the walk.
    let _ = plan.apply_with_subqueries(|p| {
        costly |= matches!(
            p,
            LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Distinct(_)
        );
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
    costly && safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_count_through_views_and_subqueries() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS VALUES (1, 10), (2, 20), (2, 5)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
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
    /// `budget`): the same rows in order, and what was computed once.
    async fn shared_answer(
        ctx: &SessionContext,
        sql: &str,
        budget: usize,
    ) -> (Vec<(String, usize)>, LogicalPlan) {
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
        let names = shared.iter().map(|s| (s.name.clone(), s.reads)).collect();
        drop(shared);
        assert_eq!(pool.reserved(), 0, "the rows are given back with the nodes");
        (names, plan)
    }

    async fn events() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE t AS SELECT v % 13 AS k, v % 5 AS g, v AS v \
             FROM generate_series(1, 2000) AS s(v)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx
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
        // Every reference filtered on its own columns (q39's months): each copy computes
        // its part; one unfiltered reference makes the whole needed, and it is shared.
        let parts = "WITH v1 AS (SELECT k, g, sum(v) AS s FROM t GROUP BY k, g) \
                     SELECT a.k, a.s, b.s FROM v1 a JOIN v1 b ON a.k = b.k \
                     WHERE a.g = 1 AND b.g = 2 ORDER BY 1, 2, 3";
        assert!(shared_answer(&ctx, parts, 1 << 20).await.0.is_empty());
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
}
