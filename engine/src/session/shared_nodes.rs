//! Nodes a pipe reads more than once, computed once per run.
//!
//! A pipe's nodes are views: DataFusion inlines each where it is read, so a node the
//! later nodes read twice (TPC-H q15 reads `revenue0` in a join and in a scalar
//! subquery) is planned, scanned and aggregated twice. A local run computes such a
//! node once, keeps its rows in memory and lets every reader scan them, as DuckDB does
//! with a common table expression read more than once. The rows are held under the
//! environment's memory pool, within a quarter of its `memory_limit` (1 GiB without
//! one); a node that outgrows that is read as a view after all.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

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
/// rows outgrow `budget` or the pool: the caller keeps reading it as a view.
pub async fn compute(
    ctx: &SessionContext,
    name: &str,
    reads: usize,
    df: DataFrame,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
) -> Result<Option<SharedNode>> {
    let plan = df.create_physical_plan().await?;
    let schema: SchemaRef = plan.schema();
    let reservation = MemoryConsumer::new(format!("shared node {name}")).register(pool);
    let mut stream = execute_stream(plan.clone(), ctx.task_ctx())?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let size = batch.get_array_memory_size();
        if reservation.size() + size > budget || reservation.try_grow(size).is_err() {
            tracing::debug!(node = name, budget, "shared node too large: read as a view");
            return Ok(None);
        }
        batches.push(batch);
    }
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    // One partition per core, so the readers' scans run in parallel.
    let partitions = ctx.copied_config().target_partitions().max(1);
    let mut split: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    for (i, batch) in batches.into_iter().enumerate() {
        split[i % partitions].push(batch);
    }
    let table = MemTable::try_new(schema, split)?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| DataFusionError::Plan(format!("registering node `{name}`: {e}")))?;
    tracing::debug!(
        node = name,
        reads,
        rows,
        bytes = reservation.size(),
        "shared node computed once"
    );
    Ok(Some(SharedNode {
        name: name.to_string(),
        reads,
        plan,
        rows,
        bytes: reservation.size(),
        _reservation: reservation,
    }))
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

        let too_small = compute(&ctx, "agg", 2, node.clone(), &pool, 16)
            .await
            .unwrap();
        assert!(too_small.is_none(), "over budget: left a view");
        assert_eq!(pool.reserved(), 0, "what it held is given back");

        let shared = compute(&ctx, "agg", 2, node, &pool, 1 << 20)
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
}
