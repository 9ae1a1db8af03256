//! Prepared plans: a long-lived session (`sluice serve`, `sluice bench --prepared`) plans
//! a pipe or query once for its definition, its bound parameter values and the state of
//! the store, and runs a fresh copy of that physical plan on later calls instead of
//! parsing, analysing and optimizing it again. On the sales_calls endpoints planning
//! is about 4 ms of a 11 ms call (BENCHMARKS.md).
//!
//! Why a kept plan answers as a new one would:
//!
//! - **Its key is what it was made from**: the pipe's name and TOML text (or the query's
//!   SQL), the bound values, the row limit, whether the run estimates (`--estimate`: the
//!   rewritten plan, kept with its report), and the generation of the session's cached
//!   listings, which changes with any source's files (the kept plans are then dropped).
//!   A plan that reads what the key cannot see is never kept: Sluice's run statistics
//!   and error tables (they change with every run), key-sampled sources (their per-run
//!   counters), scans of anything but Parquet files and memory.
//! - **It holds no rows.** Nodes and `WITH` queries read more than once are computed
//!   ahead of the output (`session::shared_nodes`) and scanned from memory. A kept plan
//!   keeps their plans (`Ahead`) and scans emptied of rows; each run computes them
//!   again, in order, and its copy of the plans scans that run's rows (`Fill`). Their
//!   plans have nothing volatile or evaluated when planned, and the key fixes the
//!   sources' files, so a run computes the rows the plans were made for; what the
//!   optimizer may have answered from their statistics (`ExactStats`) is checked: a
//!   run whose rows disagree is planned anew and its key never kept again (until the
//!   store changes), one whose rows outgrow the budget now is planned anew.
//! - **It is kept before its dynamic filters exist.** A hash join's build-side bounds, a
//!   TopK's threshold and a global `min`/`max`'s running bounds are filters an execution
//!   fills in and the scans below read; a plan kept after they were wired would prune
//!   the next run with the last run's values. The physical optimizer runs in two parts:
//!   its rules up to DataFusion's dynamic-filter pushdown (`FilterPushdown`'s
//!   post-optimization phase) once, the rest (that phase, the sanity check and Sluice's
//!   rules after it) on every copy: each run's plan went through the same rules in the
//!   same order as an unprepared one.
//! - **Each run executes a fresh copy** (`runnable`): every operator rebuilt by
//!   `ExecutionPlan::reset_state`, DataFusion's own path for running a plan again (new
//!   metrics, build sides, shared execution state); an aggregate's dynamic filter, which
//!   `reset_state` keeps, is made anew; a Parquet scan gets a metrics set of its own
//!   (`ParquetSource::with_new_metrics`, vendored), so a run reports its own rows and
//!   bytes and the kept plan does not grow. The kept plan itself never runs.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::view::ViewTable;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::{DataSource, DataSourceExec};
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, lit};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::prelude::SessionContext;
use lru::LruCache;

use crate::scan::SourceScan;

/// How many plans a session keeps (least recently used out first).
const KEPT: usize = 128;

type Rules = Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>;

/// What a kept plan was made from, but for the store's state (the generation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    what: String,
    limit: Option<usize>,
    /// A run with estimates (`--estimate`): its rewritten plan.
    estimate: bool,
}

impl PlanKey {
    /// A pipe's plan: its name and text, and its bound values (every parameter, in
    /// name order).
    pub(crate) fn pipe(
        pipe: &crate::project::Pipe,
        values: &std::collections::HashMap<String, crate::project::params::ParamValue>,
        limit: Option<usize>,
    ) -> PlanKey {
        let mut bound: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        bound.sort();
        PlanKey {
            what: format!("pipe\0{}\0{}\0{}", pipe.name, pipe.text, bound.join("\0")),
            limit,
            estimate: false,
        }
    }

    /// A query's plan: its text.
    pub(crate) fn query(sql: &str, limit: Option<usize>) -> PlanKey {
        PlanKey {
            what: format!("query\0{sql}"),
            limit,
            estimate: false,
        }
    }

    /// The same run with estimates: another plan (the rewritten one).
    pub(crate) fn estimated(self) -> PlanKey {
        PlanKey {
            estimate: true,
            ..self
        }
    }
}

/// A plan kept for later runs, and what runs it.
pub(crate) struct Prepared {
    pub ctx: SessionContext,
    /// The output's plan.
    main: KeptPlan,
    /// What each run computes ahead of the output, in order (a later one may read an
    /// earlier one's rows).
    pub ahead: Vec<Ahead>,
    pub scans: Vec<SourceScan>,
    /// Of a run with estimates: how its output columns relate to production's answer.
    pub estimate: Option<crate::session::estimate::EstimateReport>,
}

/// A physical plan optimized up to its dynamic filters (never executed), and the rules
/// that run on each copy of it (see the module doc).
pub(crate) struct KeptPlan {
    /// The session's state with every optimizer rule: the rest of the physical rules
    /// run with it on each copy.
    state: SessionState,
    plan: Arc<dyn ExecutionPlan>,
    rest: Rules,
}

/// A pipe node or common table expression read more than once, which each run of a
/// kept plan computes ahead of the output (`session::shared_nodes`): the plans that
/// read it scan its rows from memory.
pub(crate) struct Ahead {
    pub name: String,
    /// How many times the rest of the plan reads it.
    pub reads: usize,
    pub plan: KeptPlan,
    /// The schema of the table its rows are scanned from: the memory scans of those
    /// rows hold this very `Arc`, which is how a run finds where its rows go.
    pub schema: SchemaRef,
    /// What the plans were told of its rows when they were made.
    pub exact: ExactStats,
}

/// What a scan of rows in memory tells the optimizer as exact of them
/// (`compute_record_batch_statistics`): their count and each column's nulls. Rules may
/// answer from these alone (`count(*)` from the row count, `count(c)` from the nulls,
/// a limit dropped when the rows are fewer), so a kept plan runs only on rows that
/// agree with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExactStats {
    rows: usize,
    nulls: Vec<usize>,
}

impl ExactStats {
    pub(crate) fn of(partitions: &[Vec<RecordBatch>]) -> ExactStats {
        let mut stats = ExactStats {
            rows: 0,
            nulls: Vec::new(),
        };
        for batch in partitions.iter().flatten() {
            stats.rows += batch.num_rows();
            stats.nulls.resize(batch.num_columns(), 0);
            for (n, column) in stats.nulls.iter_mut().zip(batch.columns()) {
                *n += column.logical_nulls().map_or(0, |nulls| nulls.null_count());
            }
        }
        stats
    }
}

/// One run's rows of an `Ahead` (its schema), in the partitions its scans read.
pub(crate) struct Fill {
    pub schema: SchemaRef,
    pub partitions: Vec<Vec<RecordBatch>>,
}

impl KeptPlan {
    /// Plans `logical` with `state` (the run's own) up to its dynamic filters.
    pub(crate) async fn plan(state: SessionState, logical: &LogicalPlan) -> DfResult<KeptPlan> {
        let (first, rest) = split_rules(state.physical_optimizers());
        let planning = SessionStateBuilder::new_from_existing(state.clone())
            .with_physical_optimizer_rules(first)
            .build();
        let plan = planning.create_physical_plan(logical).await?;
        Ok(KeptPlan { state, plan, rest })
    }

    /// A copy of the plan to execute once: fresh operator state, the memory scans of
    /// what was computed ahead reading `fills` (this run's rows), then the rest of the
    /// physical optimizer.
    pub(crate) fn runnable(&self, fills: &[Fill]) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut plan = fresh_copy(&self.plan, fills)?;
        for rule in &self.rest {
            let before = plan.schema();
            plan = rule
                .optimize_with_context(plan, &self.state)
                .map_err(|e| DataFusionError::Context(rule.name().to_string(), Box::new(e)))?;
            if rule.schema_check() && !allowed_schema_change(&before, &plan.schema()) {
                return Err(DataFusionError::Internal(format!(
                    "physical optimizer rule `{}` changed the plan's schema",
                    rule.name()
                )));
            }
        }
        Ok(plan)
    }

    /// This plan with the memory scans of `schemas`' tables emptied (the rows a run
    /// computed ahead: a kept plan must not hold them), and how many scans that was.
    fn without_rows(&self, schemas: &[SchemaRef]) -> DfResult<(KeptPlan, Vec<usize>)> {
        let mut emptied = vec![0; schemas.len()];
        let plan = self
            .plan
            .clone()
            .transform_up(|node| {
                let Some(config) = memory_scan(&node) else {
                    return Ok(Transformed::no(node));
                };
                let Some(i) = schemas
                    .iter()
                    .position(|s| Arc::ptr_eq(s, &config.original_schema()))
                else {
                    return Ok(Transformed::no(node));
                };
                let empty = vec![Vec::new(); config.partitions().len()];
                let Some(scan) = refilled(&node, config, &empty)? else {
                    return Err(DataFusionError::Internal(format!(
                        "a scan of rows computed ahead cannot be emptied: {}",
                        node.name()
                    )));
                };
                emptied[i] += 1;
                Ok(Transformed::yes(scan))
            })?
            .data;
        Ok((
            KeptPlan {
                state: self.state.clone(),
                plan,
                rest: self.rest.clone(),
            },
            emptied,
        ))
    }
}

impl Prepared {
    /// Plans `logical` (with `state`, the run's own, and the sources its context
    /// registered) up to its dynamic filters; `ahead`, what it reads that was computed
    /// ahead of it; `estimate`, an estimated run's report.
    pub(crate) async fn plan(
        ctx: SessionContext,
        state: SessionState,
        logical: &LogicalPlan,
        ahead: Vec<Ahead>,
        scans: Vec<SourceScan>,
        estimate: Option<crate::session::estimate::EstimateReport>,
    ) -> DfResult<Prepared> {
        Ok(Prepared {
            ctx,
            main: KeptPlan::plan(state, logical).await?,
            ahead,
            scans,
            estimate,
        })
    }

    /// Whether this plan may be kept and run again (see the module doc).
    pub(crate) fn keepable(&self) -> bool {
        self.scans.iter().all(|s| s.key_counters.is_none())
            && runs_again(&self.main.plan)
            && self.ahead.iter().all(|a| runs_again(&a.plan.plan))
    }

    /// A copy of the output's plan to execute once, reading `fills` (this run's rows
    /// of `ahead`, see `KeptPlan::runnable`).
    pub(crate) fn runnable(&self, fills: &[Fill]) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.main.runnable(fills)
    }

    /// The plan to keep: this one without the rows computed ahead of it, which each
    /// run computes again (its plans were made for those very rows: nothing volatile
    /// or planning-time in them, and the same sources' files, so a run computes the
    /// same rows again). `None` when a computed table is read by none of the scans
    /// found (a rule rewrote them), or a scan cannot be emptied: then it is not kept.
    pub(crate) fn without_rows(&self) -> Option<Prepared> {
        self.try_without_rows()
            .inspect_err(|e| tracing::debug!("a plan is not kept: {e}"))
            .ok()
            .flatten()
    }

    fn try_without_rows(&self) -> DfResult<Option<Prepared>> {
        let schemas: Vec<SchemaRef> = self.ahead.iter().map(|a| a.schema.clone()).collect();
        let (main, mut emptied) = self.main.without_rows(&schemas)?;
        let mut ahead = Vec::with_capacity(self.ahead.len());
        for a in &self.ahead {
            let (plan, found) = a.plan.without_rows(&schemas)?;
            emptied.iter_mut().zip(found).for_each(|(e, f)| *e += f);
            ahead.push(Ahead {
                name: a.name.clone(),
                reads: a.reads,
                plan,
                schema: a.schema.clone(),
                exact: a.exact.clone(),
            });
        }
        if emptied.contains(&0) {
            return Ok(None);
        }
        Ok(Some(Prepared {
            ctx: self.ctx.clone(),
            main,
            ahead,
            scans: self.scans.clone(),
            estimate: self.estimate.clone(),
        }))
    }
}

/// The memory scan `node` is, if it is one.
fn memory_scan(node: &Arc<dyn ExecutionPlan>) -> Option<&MemorySourceConfig> {
    node.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<MemorySourceConfig>()
}

/// The memory scan `node` (of `config`) reading `partitions` instead, with its
/// projection, limit and number of partitions (the rows dealt round into as many as it
/// had, if they came in another number); `None` when it cannot be rebuilt as it was (a
/// scan that claims an order: a table of rows computed ahead claims none, and a kept
/// plan has none that does, see `KeptPlan::without_rows`).
fn refilled(
    node: &Arc<dyn ExecutionPlan>,
    config: &MemorySourceConfig,
    partitions: &[Vec<RecordBatch>],
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if !config.sort_information().is_empty() {
        return Ok(None);
    }
    let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
        return Ok(None);
    };
    let wanted = config.partitions().len().max(1);
    let dealt;
    let partitions = if partitions.len() == wanted {
        partitions
    } else {
        dealt = deal(partitions.iter().flatten().cloned(), wanted);
        &dealt[..]
    };
    let source = MemorySourceConfig::try_new(
        partitions,
        config.original_schema(),
        config.projection().clone(),
    )?
    .with_limit(config.fetch())
    .with_show_sizes(config.show_sizes());
    Ok(Some(Arc::new(
        exec.clone().with_data_source(Arc::new(source)),
    )))
}

/// `batches` dealt round into `partitions` partitions (at least one), so that the scans
/// of rows held in memory read them in parallel.
pub(crate) fn deal(
    batches: impl IntoIterator<Item = RecordBatch>,
    partitions: usize,
) -> Vec<Vec<RecordBatch>> {
    let partitions = partitions.max(1);
    let mut split: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    for (i, batch) in batches.into_iter().enumerate() {
        split[i % partitions].push(batch);
    }
    split
}

/// The check DataFusion's planner makes after each rule whose `schema_check` is on: the
/// same fields and metadata, a field only ever becoming non-nullable.
fn allowed_schema_change(old: &Schema, new: &Schema) -> bool {
    old.metadata == new.metadata
        && old.fields.len() == new.fields.len()
        && old.fields.iter().zip(new.fields.iter()).all(|(o, n)| {
            o.name() == n.name()
                && o.data_type() == n.data_type()
                && o.metadata() == n.metadata()
                && (o.is_nullable() == n.is_nullable() || !n.is_nullable())
        })
}

/// Whether `plan` (with its subqueries and the views it reads: a pipe's earlier nodes)
/// calls a function that is not immutable: a stable one (`now()`, `current_date`) is
/// evaluated once while planning, so its plan answers for the time it was planned at; a
/// volatile one is left out as well, to be safe.
pub(crate) fn evaluated_when_planned(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let walked = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(view) = provider.downcast_ref::<ViewTable>()
        {
            found |= evaluated_when_planned(view.logical_plan());
        }
        node.apply_expressions(|e| {
            found |= e.exists(|e| {
                Ok(matches!(e, Expr::ScalarFunction(f)
                    if f.func.signature().volatility != Volatility::Immutable))
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found || walked.is_err()
}

/// `rules` split before DataFusion's dynamic-filter pushdown (`FilterPushdown(Post)`).
/// Without it (skipped by `SLUICE_SKIP_RULES`), nothing wires dynamic filters and every
/// rule runs once.
fn split_rules(rules: &[Arc<dyn PhysicalOptimizerRule + Send + Sync>]) -> (Rules, Rules) {
    let at = rules
        .iter()
        .position(|r| r.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    (rules[..at].to_vec(), rules[at..].to_vec())
}

/// Whether every operator of `plan` can run again from a fresh copy: its leaves scan
/// Parquet files or memory (or nothing), and it is not recursive (a recursive query's
/// work table is shared state DataFusion cannot reset).
fn runs_again(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut ok = true;
    let _ = plan.apply(|node| {
        let leaf_ok = if !node.children().is_empty() {
            !matches!(node.name(), "RecursiveQueryExec" | "WorkTableExec")
        } else if let Some(exec) = node.downcast_ref::<DataSourceExec>() {
            match exec.data_source().downcast_ref::<FileScanConfig>() {
                Some(config) => config
                    .file_source()
                    .downcast_ref::<ParquetSource>()
                    .is_some(),
                None => exec
                    .data_source()
                    .downcast_ref::<MemorySourceConfig>()
                    .is_some(),
            }
        } else {
            node.downcast_ref::<EmptyExec>().is_some()
                || node.downcast_ref::<PlaceholderRowExec>().is_some()
        };
        ok &= leaf_ok;
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// A copy of `plan` with no state shared with it or with an earlier copy, its scans of
/// rows computed ahead reading `fills`.
///
/// Each copy has the properties of the node it copies (the same plan with fresh state;
/// a memory scan the same partitions of this run's rows, in no order): a parent is
/// copied keeping its properties rather than deriving them again from its new children,
/// which DataFusion does when the children are other objects (a projection's
/// equivalences most of all: a tenth of an estimated run's time with its plan kept).
fn fresh_copy(plan: &Arc<dyn ExecutionPlan>, fills: &[Fill]) -> DfResult<Arc<dyn ExecutionPlan>> {
    let children = plan
        .children()
        .into_iter()
        .map(|child| fresh_copy(child, fills))
        .collect::<DfResult<Vec<_>>>()?;
    let node = if children.is_empty() {
        plan.clone()
    } else {
        plan.clone().replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )?
    };
    fresh_node(node, fills)
}

/// `node` (its children already fresh) with fresh state of its own.
fn fresh_node(node: Arc<dyn ExecutionPlan>, fills: &[Fill]) -> DfResult<Arc<dyn ExecutionPlan>> {
    if let Some(config) = memory_scan(&node)
        && let Some(fill) = fills
            .iter()
            .find(|f| Arc::ptr_eq(&f.schema, &config.original_schema()))
    {
        let Some(scan) = refilled(&node, config, &fill.partitions)? else {
            return Err(DataFusionError::Internal(format!(
                "a scan of rows computed ahead cannot read this run's: {}",
                node.name()
            )));
        };
        return Ok(scan);
    }
    if let Some(exec) = node.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
        && let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>()
    {
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(parquet.with_new_metrics()))
            .build();
        let exec = exec.clone().with_data_source(Arc::new(config));
        return Ok(Arc::new(exec) as Arc<dyn ExecutionPlan>);
    }
    let node = node.reset_state()?;
    if let Some(aggregate) = node.downcast_ref::<AggregateExec>()
        && let Some(filter) = dynamic_filter_of(aggregate)
    {
        let fresh = Arc::new(DynamicFilterPhysicalExpr::new(
            filter.children().into_iter().cloned().collect(),
            lit(true),
        ));
        let aggregate = aggregate.clone().with_dynamic_filter_expr(fresh)?;
        return Ok(Arc::new(aggregate) as Arc<dyn ExecutionPlan>);
    }
    Ok(node)
}

#[expect(
    deprecated,
    reason = "the aggregate's own filter, not every filter it produces"
)]
fn dynamic_filter_of(aggregate: &AggregateExec) -> Option<&Arc<DynamicFilterPhysicalExpr>> {
    aggregate.dynamic_filter_expr()
}

/// The plans a session keeps, for one generation of its listings.
pub(crate) struct PreparedPlans {
    inner: Mutex<Kept>,
    hits: Arc<AtomicU64>,
}

struct Kept {
    generation: u64,
    plans: LruCache<PlanKey, Arc<Prepared>>,
    /// Keys whose plans are not kept again: their rows computed ahead came out unlike
    /// the ones the plan was made for (see `Slot::never_keep`). As many as `plans`
    /// holds, the least recently marked out first.
    unkept: LruCache<PlanKey, ()>,
}

impl Kept {
    /// Drops every plan (and mark) of another generation than `generation`.
    fn at(&mut self, generation: u64) -> &mut Self {
        if self.generation != generation {
            self.plans.clear();
            self.unkept.clear();
            self.generation = generation;
        }
        self
    }
}

impl Default for PreparedPlans {
    fn default() -> Self {
        PreparedPlans {
            inner: Mutex::new(Kept {
                generation: 0,
                plans: LruCache::new(NonZeroUsize::new(KEPT).expect("not zero")),
                unkept: LruCache::new(NonZeroUsize::new(KEPT).expect("not zero")),
            }),
            hits: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Where one run's plan is kept: its key, under the generation of the listings the run
/// plans with.
pub(crate) struct Slot<'a> {
    plans: &'a PreparedPlans,
    key: PlanKey,
    generation: u64,
}

impl Slot<'_> {
    /// The plan kept here, if any.
    pub(crate) fn kept(&self) -> Option<Arc<Prepared>> {
        self.plans.get(&self.key, self.generation)
    }

    /// Keeps `plan` here (unless `never_keep` was said of it).
    pub(crate) fn keep(self, plan: Arc<Prepared>) {
        self.plans.put(self.key, self.generation, plan);
    }

    /// Drops the plan kept here and keeps none here again (until the store changes):
    /// its rows computed ahead differ from run to run (a node whose answer is not
    /// fixed by its sources, such as a `LIMIT` without an order), so each run would
    /// compute them for the kept plan and again for a new one.
    pub(crate) fn never_keep(&self) {
        let mut kept = self.plans.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept = kept.at(self.generation);
        kept.plans.pop(&self.key);
        kept.unkept.put(self.key.clone(), ());
    }
}

impl PreparedPlans {
    /// Where the plan of `key` is kept under `generation`.
    pub(crate) fn slot(&self, key: PlanKey, generation: u64) -> Slot<'_> {
        Slot {
            plans: self,
            key,
            generation,
        }
    }

    /// The plan kept for `key` under `generation`.
    fn get(&self, key: &PlanKey, generation: u64) -> Option<Arc<Prepared>> {
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let found = kept.at(generation).plans.get(key).cloned();
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps `plan` for `key`, planned from the listings of `generation`.
    fn put(&self, key: PlanKey, generation: u64, plan: Arc<Prepared>) {
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Planned before the listings changed: of no use from now on.
        if generation < kept.generation {
            return;
        }
        let kept = kept.at(generation);
        if kept.unkept.contains(&key) {
            return;
        }
        kept.plans.put(key, plan);
    }

    /// The count of runs that reused a kept plan, shared (e.g. for a server's metrics).
    pub(crate) fn hits_counter(&self) -> Arc<AtomicU64> {
        self.hits.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::catalog::MemTable;
    use datafusion::physical_plan::collect;

    fn batch(schema: &SchemaRef, values: impl IntoIterator<Item = i64>) -> RecordBatch {
        let column = Arc::new(Int64Array::from_iter_values(values));
        RecordBatch::try_new(schema.clone(), vec![column]).unwrap()
    }

    /// The rows a plan's memory scans of `schema`'s table hold.
    fn rows_held(plan: &Arc<dyn ExecutionPlan>, schema: &SchemaRef) -> (usize, usize) {
        let (mut scans, mut rows) = (0, 0);
        plan.apply(|node| {
            if let Some(config) = memory_scan(node)
                && Arc::ptr_eq(&config.original_schema(), schema)
            {
                scans += 1;
                rows += config
                    .partitions()
                    .iter()
                    .flatten()
                    .map(|b| b.num_rows())
                    .sum::<usize>();
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        (scans, rows)
    }

    #[tokio::test]
    async fn a_kept_plan_holds_no_rows_computed_ahead_and_reads_each_runs() {
        let ctx = SessionContext::new();
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let partitions = vec![vec![batch(&schema, 1..=4)], vec![batch(&schema, 5..=6)]];
        let table = MemTable::try_new(schema.clone(), partitions).unwrap();
        ctx.register_table("shared", Arc::new(table)).unwrap();
        // Read twice, with a TopK above one read (a dynamic filter over the scan).
        let df = ctx
            .sql("SELECT a.v, (SELECT count(*) FROM shared) AS n FROM shared a ORDER BY a.v DESC LIMIT 2")
            .await
            .unwrap();
        let (state, logical) = df.into_parts();
        let planned = Prepared {
            ctx: ctx.clone(),
            main: KeptPlan::plan(state.clone(), &logical).await.unwrap(),
            ahead: vec![Ahead {
                name: "shared".into(),
                reads: 2,
                plan: KeptPlan::plan(
                    state,
                    &LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                        produce_one_row: false,
                        schema: Arc::new(datafusion::common::DFSchema::empty()),
                    }),
                )
                .await
                .unwrap(),
                schema: schema.clone(),
                exact: ExactStats::of(&[vec![batch(&schema, 1..=6)]]),
            }],
            scans: Vec::new(),
            estimate: None,
        };
        let pretty = |batches: &[RecordBatch]| {
            datafusion::arrow::util::pretty::pretty_format_batches(batches)
                .unwrap()
                .to_string()
        };
        let first = collect(planned.runnable(&[]).unwrap(), ctx.task_ctx())
            .await
            .unwrap();
        assert!(pretty(&first).contains("| 6 | 6 |"), "{}", pretty(&first));
        assert_eq!(rows_held(&planned.main.plan, &schema).1, 6);

        let kept = planned.without_rows().expect("its scans are found");
        let (scans, rows) = rows_held(&kept.main.plan, &schema);
        assert!(scans >= 1, "the table is scanned");
        assert_eq!(rows, 0, "the kept plan holds none of its rows");
        // Another run's rows (in as many partitions, as many rows and nulls: the
        // count is the plan's, from the statistics): read where the table was.
        let fill = Fill {
            schema: schema.clone(),
            partitions: vec![
                vec![batch(&schema, [10, 30, 40])],
                vec![batch(&schema, [20, 60, 50])],
            ],
        };
        assert_eq!(ExactStats::of(&fill.partitions), kept.ahead[0].exact);
        assert_ne!(
            ExactStats::of(&[vec![batch(&schema, [1, 2])]]),
            kept.ahead[0].exact,
            "fewer rows: not what the plan was made for"
        );
        for _ in 0..2 {
            let got = collect(
                kept.runnable(std::slice::from_ref(&fill)).unwrap(),
                ctx.task_ctx(),
            )
            .await
            .unwrap();
            let text = pretty(&got);
            assert!(
                text.contains("| 60 | 6 |") && text.contains("| 50 | 6 |"),
                "{text}"
            );
        }
        // The same rows in another number of partitions: dealt into the scans' own.
        let one = Fill {
            schema: schema.clone(),
            partitions: vec![vec![
                batch(&schema, [10, 30, 40]),
                batch(&schema, [20, 60, 50]),
            ]],
        };
        let plan = kept.runnable(std::slice::from_ref(&one)).unwrap();
        let text = pretty(&collect(plan, ctx.task_ctx()).await.unwrap());
        assert!(
            text.contains("| 60 | 6 |") && text.contains("| 50 | 6 |"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_key_whose_rows_vary_is_not_kept_again_until_the_store_changes() {
        let ctx = SessionContext::new();
        let df = ctx.sql("SELECT 1 AS one").await.unwrap();
        let (state, logical) = df.into_parts();
        let planned = || async {
            Arc::new(
                Prepared::plan(
                    ctx.clone(),
                    state.clone(),
                    &logical,
                    Vec::new(),
                    Vec::new(),
                    None,
                )
                .await
                .unwrap(),
            )
        };
        let plans = PreparedPlans::default();
        let key = PlanKey::query("SELECT 1 AS one", None);
        plans.slot(key.clone(), 1).keep(planned().await);
        assert!(plans.slot(key.clone(), 1).kept().is_some());
        plans.slot(key.clone(), 1).never_keep();
        assert!(plans.slot(key.clone(), 1).kept().is_none(), "dropped");
        plans.slot(key.clone(), 1).keep(planned().await);
        assert!(
            plans.slot(key.clone(), 1).kept().is_none(),
            "not kept again"
        );
        // Another key is kept as before; a new store state forgets the mark.
        let other = PlanKey::query("SELECT 2", None);
        plans.slot(other.clone(), 1).keep(planned().await);
        assert!(plans.slot(other, 1).kept().is_some());
        plans.slot(key.clone(), 2).keep(planned().await);
        assert!(
            plans.slot(key, 2).kept().is_some(),
            "kept under the new state"
        );
    }
}
