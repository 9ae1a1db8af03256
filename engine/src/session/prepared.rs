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
//!   counters), nodes or `WITH` queries computed ahead (rows held in memory), scans of
//!   anything but Parquet files and memory.
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

use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::view::ViewTable;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
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
    /// The session's state with every optimizer rule: the rest of the physical rules
    /// run with it on each copy.
    state: SessionState,
    /// The physical plan optimized up to its dynamic filters (never executed).
    plan: Arc<dyn ExecutionPlan>,
    /// The rules that run on each copy (see the module doc).
    rest: Rules,
    pub scans: Vec<SourceScan>,
    /// Of a run with estimates: how its output columns relate to production's answer.
    pub estimate: Option<crate::session::estimate::EstimateReport>,
}

impl Prepared {
    /// Plans `logical` (with `state`, the run's own, and the sources its context
    /// registered) up to its dynamic filters; `estimate`, an estimated run's report.
    pub(crate) async fn plan(
        ctx: SessionContext,
        state: SessionState,
        logical: &LogicalPlan,
        scans: Vec<SourceScan>,
        estimate: Option<crate::session::estimate::EstimateReport>,
    ) -> DfResult<Prepared> {
        let (first, rest) = split_rules(state.physical_optimizers());
        let planning = SessionStateBuilder::new_from_existing(state.clone())
            .with_physical_optimizer_rules(first)
            .build();
        let plan = planning.create_physical_plan(logical).await?;
        Ok(Prepared {
            ctx,
            state,
            plan,
            rest,
            scans,
            estimate,
        })
    }

    /// Whether this plan may be kept and run again (see the module doc).
    pub(crate) fn keepable(&self) -> bool {
        self.scans.iter().all(|s| s.key_counters.is_none()) && runs_again(&self.plan)
    }

    /// A copy of the plan to execute once: fresh operator state, then the rest of the
    /// physical optimizer.
    pub(crate) fn runnable(&self) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut plan = fresh_copy(&self.plan)?;
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
                    .downcast_ref::<datafusion::datasource::memory::MemorySourceConfig>()
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

/// A copy of `plan` with no state shared with it or with an earlier copy.
fn fresh_copy(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.clone()
        .transform_up(|node| {
            if let Some(exec) = node.downcast_ref::<DataSourceExec>()
                && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
                && let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>()
            {
                let config = FileScanConfigBuilder::from(config.clone())
                    .with_source(Arc::new(parquet.with_new_metrics()))
                    .build();
                let exec = exec.clone().with_data_source(Arc::new(config));
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
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
                return Ok(Transformed::yes(
                    Arc::new(aggregate) as Arc<dyn ExecutionPlan>
                ));
            }
            Ok(Transformed::yes(node))
        })
        .map(|t| t.data)
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
}

impl Kept {
    /// Drops every plan of another generation than `generation`.
    fn at(&mut self, generation: u64) -> &mut Self {
        if self.generation != generation {
            self.plans.clear();
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

    /// Keeps `plan` here.
    pub(crate) fn keep(self, plan: Arc<Prepared>) {
        self.plans.put(self.key, self.generation, plan);
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
        kept.at(generation).plans.put(key, plan);
    }

    /// The count of runs that reused a kept plan, shared (e.g. for a server's metrics).
    pub(crate) fn hits_counter(&self) -> Arc<AtomicU64> {
        self.hits.clone()
    }
}
