//! Running SQL in an environment: one DataFusion session per run, configured with the
//! environment's settings, with the sources the SQL reads registered as that
//! environment's sampling policy says, and a pipe's nodes composed as views.
//!
//! `backend` is where runs execute (in this process or on a Ballista cluster),
//! `report` what a run read, `shared_nodes` the nodes computed once per run,
//! `prepared` the plans a long-lived session runs again.

mod backend;
#[cfg(feature = "ballista")]
pub mod ballista;
pub mod estimate;
mod grouping_levels;
mod listings;
mod prepared;
pub mod report;
mod set_reads;
pub mod shared_nodes;
pub mod warnings;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{BinaryExpr, Expr, Join, Operator};
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::error::{ErrorClass, Result, SluiceError, classify, df_message};
use crate::project::params::{self, ParamValue};
use crate::project::sampling::{SampleOverride, SamplePolicy, SourceSampling};
use crate::project::system_tables::{
    ERRORS_TABLE_SUFFIX, STATS_DIR, STATS_SCHEMA, STATS_TABLE, errors_dataset, errors_schema,
    errors_table, stats_schema,
};
use crate::project::{Environment, Pipe, Project, RunEngine, SourceDef};
use crate::scan::SourceScan;
use crate::store::snapshot::ScanSnapshot;
use crate::store::{SourceListing, Store};
use backend::Backend;
use report::{RunReport, source_reports};

/// The result of a run: its rows and what it read.
#[derive(Debug)]
pub struct RunOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub report: RunReport,
    /// With `RunOptions::estimate`: how each output column relates to production's
    /// answer (the rows hold the estimates and their `_low`/`_high` bounds).
    pub estimate: Option<estimate::EstimateReport>,
}

/// A pipe's output as it is computed (see `EnvSession::stream_pipe_def`).
pub struct PipeStream {
    pub stream: datafusion::execution::SendableRecordBatchStream,
    plan: Arc<dyn ExecutionPlan>,
    /// The nodes computed ahead of the output: their rows are read by the stream.
    shared: Vec<crate::session::shared_nodes::SharedNode>,
    scans: Vec<SourceScan>,
    started: Instant,
    env: String,
    pipe: String,
    sample: Option<SamplePolicy>,
}

impl PipeStream {
    /// The run's report, once the stream is consumed.
    pub fn report(&self, rows_out: u64) -> RunReport {
        RunReport {
            env: self.env.clone(),
            pipe: Some(self.pipe.clone()),
            sample: self.sample.clone(),
            rows_out,
            elapsed: self.started.elapsed(),
            sources: source_reports(&self.plan, &shared_plans(&self.shared), &self.scans),
        }
    }

    /// Turns a failure while reading the stream into the run's error.
    pub fn error(&self, e: DataFusionError) -> SluiceError {
        SluiceError::Query {
            env: self.env.clone(),
            message: format!("pipe `{}`: {}", self.pipe, df_message(&e)),
            class: classify(&e),
        }
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep at most this many output rows.
    pub limit: Option<usize>,
    /// Return estimates of what the full data would answer, with 95% intervals, in
    /// place of the sample's own aggregates (see `session::estimate`).
    pub estimate: bool,
}

/// What `plan_pipe` is for: a run, or a plan that is only shown or checked (nothing
/// is computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlanMode {
    Run,
    Explain,
    /// Also build each node's physical plan, to find the node at fault.
    Check,
    /// Every node a view (no node computed ahead), for a plan rewrite of the whole pipe
    /// (estimates).
    Estimate,
    /// As `Estimate`, with a `system` sample's unit exposed as a column of its source.
    EstimateUnits,
}

/// A pipe planned for a run: its output, the sources registered for it and the nodes
/// computed ahead of it (held until the run is over).
struct PlannedPipe {
    ctx: SessionContext,
    output: DataFrame,
    scans: Vec<SourceScan>,
    /// The tables the pipe reads but its own nodes.
    reads: BTreeSet<String>,
    /// The nodes the rest of the pipe reads more than once, and how many times.
    shared_reads: HashMap<String, usize>,
    shared: Vec<crate::session::shared_nodes::SharedNode>,
}

/// The pairs of expressions a join equates: its ON/USING pairs, then its filter's
/// equalities.
pub(crate) fn join_equalities(j: &Join) -> impl Iterator<Item = (&Expr, &Expr)> {
    let filtered = j
        .filter
        .iter()
        .flat_map(datafusion::logical_expr::utils::split_conjunction)
        .filter_map(|c| match c {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => Some((left.as_ref(), right.as_ref())),
            _ => None,
        });
    j.on.iter().map(|(a, b)| (a, b)).chain(filtered)
}

/// Whether `reads` names one of Sluice's run statistics or error tables, which change
/// with every run (so no plan reading them is kept).
fn reads_run_tables(reads: &BTreeSet<String>) -> bool {
    let schema = format!("{STATS_SCHEMA}.");
    reads.iter().any(|r| r.starts_with(&schema))
}

/// `df` with at most the run's row limit (`RunOptions::limit`).
fn limited(df: DataFrame, options: &RunOptions) -> std::result::Result<DataFrame, DataFusionError> {
    match options.limit {
        Some(n) => df.limit(0, Some(n)),
        None => Ok(df),
    }
}

/// The plans of the nodes computed ahead of a run's output, for its report.
fn shared_plans(
    shared: &[crate::session::shared_nodes::SharedNode],
) -> Vec<Arc<dyn ExecutionPlan>> {
    shared.iter().map(|s| s.plan.clone()).collect()
}

/// Plans one node's SQL against what `ctx` has registered, with the run's parameters.
async fn plan_node(
    ctx: &SessionContext,
    sql: &str,
    params: &ParamValues,
) -> std::result::Result<DataFrame, DataFusionError> {
    ctx.sql(sql).await?.with_param_values(params.clone())
}

/// A table name as written inside a double-quoted shell argument: bare when it is a
/// plain lowercase identifier, else quoted for SQL with the quotes escaped for the shell.
fn shell_ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::util::text::quote_ident(name)
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
            .replace('`', "\\`")
    }
}

/// How a pipe gets into a protected environment, from where it is now: promoted from
/// the environment that deploys (staging) if it is deployed there, else deployed there
/// first.
async fn promotion_hint(project: &Project, pipe: &str, env: &str) -> String {
    let Some(from) = project.deploying_environment() else {
        return "it runs promoted versions only".into();
    };
    let deployed = match crate::store::deployments::DeploymentState::open(from) {
        Ok(state) => matches!(state.live_version(pipe).await, Ok(Some(_))),
        Err(_) => false,
    };
    let promote = format!("sluice promote {pipe} --from {} --to {env}", from.name);
    if deployed {
        format!("it runs promoted versions only: `{promote}`")
    } else {
        format!(
            "it runs promoted versions only, and `{pipe}` is not deployed in `{0}` either: `sluice deploy {pipe} --env {0}`, then `{promote}`",
            from.name
        )
    }
}

/// Whether `env`'s store holds data for every declared source (a sample build from it
/// reads them all).
async fn has_every_source(project: &Project, env: &Environment) -> bool {
    let Ok(store) = Store::open(env) else {
        return false;
    };
    for def in project.sources.values() {
        if store.list_source(def).await.is_err() {
            return false;
        }
    }
    !project.sources.is_empty()
}

/// A pipe that failed to plan in an environment, with the node at fault.
#[derive(Debug, Clone)]
pub struct PlanFailure {
    pub pipe: String,
    pub node: Option<String>,
    pub message: String,
}

/// An environment ready to run: its store, its effective sampling policy and the
/// DataFusion runtime shared by its runs.
pub struct EnvSession {
    project: Arc<Project>,
    env: Environment,
    policy: Option<SamplePolicy>,
    store: Arc<Store>,
    runtime: Arc<RuntimeEnv>,
    backend: Backend,
    /// The heavy keys of every source key-sampled on a column, by column: found once a
    /// session, the same for every source and run (see `scan::key`).
    heavy: tokio::sync::Mutex<HashMap<String, Arc<crate::scan::key::HeavyKeys>>>,
    /// Listings kept across runs (`cache_listings`); `None`: every run lists.
    listings: Option<listings::ListingCache>,
    /// Physical plans kept across runs (`prepare_plans`); `None`: every run plans.
    prepared: Option<prepared::PreparedPlans>,
}

impl EnvSession {
    /// Opens `env` of `project` with a run's sampling override applied once.
    pub fn open(project: Arc<Project>, env: &str, sample: &SampleOverride) -> Result<EnvSession> {
        let env = project.environment(env)?.clone();
        Self::open_with(project, env, sample)
    }

    /// Opens an environment that is not (necessarily) declared in `sluice.toml`, such as
    /// the fixture store pipe tests run against.
    pub fn open_with(
        project: Arc<Project>,
        env: Environment,
        sample: &SampleOverride,
    ) -> Result<EnvSession> {
        let policy = sample
            .apply(env.sample.as_ref())
            .map_err(SluiceError::SampleOverride)?;
        let backend = Backend::of(&env)?;
        let store = Arc::new(Store::open(&env)?);
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = env.settings.memory_limit {
            runtime = runtime.with_memory_limit(limit as usize, 1.0);
        }
        let runtime = runtime.build_arc()?;
        Ok(EnvSession {
            project,
            env,
            policy,
            store,
            runtime,
            backend,
            heavy: Default::default(),
            listings: None,
            prepared: None,
        })
    }

    /// Keeps each source's listing (files, footers, schema) from one run to the next:
    /// runs then make no listing or state read of the store, and see a change of the
    /// store's sources only after `refresh_listings`. For a long-lived session (a server).
    pub fn cache_listings(mut self) -> EnvSession {
        self.listings = Some(listings::ListingCache::default());
        self
    }

    /// Keeps each pipe's and query's physical plan from one run to the next, per
    /// definition, bound values and generation of the cached listings (which this
    /// turns on), and runs a fresh copy of it instead of planning again (see
    /// `session::prepared`). For a long-lived session (a server, `sluice bench
    /// --prepared`); not with `SLUICE_SKIP_RULES=sluice_prepared_plans`.
    pub fn prepare_plans(self) -> EnvSession {
        let mut session = if self.listings.is_some() {
            self
        } else {
            self.cache_listings()
        };
        if !crate::optimizer::settings::skipped(crate::optimizer::settings::PREPARED_PLANS) {
            session.prepared = Some(prepared::PreparedPlans::default());
        }
        session
    }

    /// How many runs reused a prepared plan (see `prepare_plans`).
    pub fn prepared_runs(&self) -> u64 {
        self.prepared_runs_counter()
            .map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The count `prepared_runs` reads, shared (e.g. for a server's metrics); `None`
    /// when the session keeps no plans.
    pub fn prepared_runs_counter(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        self.prepared.as_ref().map(|p| p.hits_counter())
    }

    /// Whether this session keeps the plans of its runs (`plan_slot`).
    fn keeps_plans(&self) -> bool {
        self.prepared.is_some() && !self.is_remote()
    }

    /// Where a run's plan is kept, under the listings' current generation, when this
    /// session keeps plans and runs here; `key` is made only then.
    fn plan_slot(&self, key: impl FnOnce() -> prepared::PlanKey) -> Option<prepared::Slot<'_>> {
        let plans = self.prepared.as_ref().filter(|_| !self.is_remote())?;
        Some(plans.slot(key(), self.listings_generation()))
    }

    /// Lists the cached sources (see `cache_listings`) again and replaces those that
    /// changed; whether any did. Without the cache, nothing to do.
    pub async fn refresh_listings(&self) -> Result<bool> {
        match &self.listings {
            Some(cache) => cache.refresh(&self.store).await,
            None => Ok(false),
        }
    }

    /// A number that changes whenever `refresh_listings` finds a change: results
    /// computed under one generation are stale under another.
    pub fn listings_generation(&self) -> u64 {
        self.listings.as_ref().map_or(0, |c| c.generation())
    }

    /// The store's top-level folders, from the cache when there is one.
    async fn folders(&self) -> Result<Vec<String>> {
        match &self.listings {
            Some(cache) => cache.folders(&self.store).await,
            None => self.store.folders().await,
        }
    }

    /// A source's listing, from the cache when there is one.
    async fn cached_listing(&self, def: &SourceDef) -> Result<SourceListing> {
        match &self.listings {
            Some(cache) => cache.listing(&self.store, def).await,
            None => self.store.list_source(def).await,
        }
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, shared (e.g. to read its counters from another task).
    pub fn shared_store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The sampling policy runs in this session use (`None`: the full set).
    pub fn policy(&self) -> Option<&SamplePolicy> {
        self.policy.as_ref()
    }

    fn config(&self) -> SessionConfig {
        crate::optimizer::settings::session_config(&self.env.settings).with_information_schema(true)
    }

    /// Where this environment's runs execute: `embedded`, or `ballista df://host:port`.
    pub fn engine(&self) -> &RunEngine {
        &self.env.engine
    }

    /// Whether runs go to a cluster (whose executors cannot read this process's memory).
    fn is_remote(&self) -> bool {
        self.backend.is_remote()
    }

    /// A context for one run on the environment's engine.
    async fn context(&self) -> Result<(SessionContext, Arc<ScanSnapshot>)> {
        self.backend
            .context(&self.env, self.config(), &self.runtime)
            .await
    }

    /// The definition of a source: declared in `sluice.toml`, or a folder of the store
    /// that is not declared (read in full, with default settings).
    pub async fn source_def(&self, name: &str) -> Result<Option<SourceDef>> {
        if let Some(def) = self.project.sources.get(name) {
            return Ok(Some(def.clone()));
        }
        if name.starts_with(['_', '.']) || !self.folders().await?.iter().any(|f| f == name) {
            return Ok(None);
        }
        Ok(Some(SourceDef {
            name: name.to_string(),
            path: name.to_string(),
            sample_key: None,
            sample: None,
            sort: Vec::new(),
        }))
    }

    /// Every source: declared ones, then undeclared folders of the store.
    pub async fn source_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.project.sources.keys().cloned().collect();
        for folder in self.folders().await? {
            if !self.project.sources.values().any(|s| s.path == folder) && !names.contains(&folder)
            {
                names.push(folder);
            }
        }
        Ok(names)
    }

    /// A source's files in this environment's store; a source with no data is an error
    /// that says how to fill it.
    async fn listing(&self, def: &SourceDef) -> Result<SourceListing> {
        match self.cached_listing(def).await {
            Err(SluiceError::MissingSource {
                env,
                source_name,
                path,
                hint,
            }) if hint.is_empty() => Err(SluiceError::MissingSource {
                hint: self.fill_hint(&env, def).await,
                env,
                source_name,
                path,
            }),
            other => other,
        }
    }

    /// How to fill `def` in `env` (this environment, or the parent a branch reads), as
    /// a command that works from here: pipe tests' fixture rows written by a query;
    /// else a sample build from an environment that has every source's data; else an
    /// ingest.
    async fn fill_hint(&self, env: &str, def: &SourceDef) -> String {
        let source = &def.name;
        if env == crate::project::pipe_tests::TEST_ENV {
            let from = self
                .project
                .select_environment(None)
                .map(|e| e.name.clone())
                .unwrap_or_else(|_| "staging".into());
            return format!(
                "; pipe tests read fixture rows there: write some with `sluice query \"SELECT * FROM {} LIMIT 100\" --env {from} -f parquet -o {}/{}/part-0.parquet`",
                shell_ident(source),
                crate::project::pipe_tests::TEST_DATA_DIR,
                def.path
            );
        }
        let Ok(target) = self.project.environment(env) else {
            return String::new();
        };
        if !self.project.sources.contains_key(source) {
            return String::new();
        }
        if !target.protected && target.parent.is_none() {
            // `production` first: the default of `sluice sample build --from`.
            let mut candidates: Vec<&Environment> = self
                .project
                .environments
                .values()
                .filter(|e| e.name != env && e.parent.is_none())
                .collect();
            candidates.sort_by_key(|e| e.name != "production");
            for from in candidates {
                if has_every_source(&self.project, from).await {
                    return format!(
                        "; fill it with a sample of {0}'s data: `sluice sample build --from {0} --to {env}`",
                        from.name
                    );
                }
            }
        }
        format!(
            "; fill it with `sluice ingest {source} FILE --env {env}` (a CSV, NDJSON or Parquet file)"
        )
    }

    /// A source's definition, or a usage error naming it and the environment.
    async fn known_source(&self, name: &str) -> Result<SourceDef> {
        self.source_def(name).await?.ok_or_else(|| {
            SluiceError::Usage(format!(
                "unknown source `{name}` in environment `{}`",
                self.env.name
            ))
        })
    }

    /// Lists a source's files in this environment's store.
    pub async fn list_source(&self, name: &str) -> Result<SourceListing> {
        let def = self.known_source(name).await?;
        self.listing(&def).await
    }

    /// A context in this process with the source `name` registered in full.
    async fn full_source_context(
        &self,
        name: &str,
    ) -> Result<(SessionContext, SourceDef, SourceListing)> {
        let def = self.known_source(name).await?;
        let listing = self.listing(&def).await?;
        // Sample builds, exports and heavy keys write or decide here: read here too.
        let (ctx, snapshot) = backend::local_context(self.config(), &self.runtime)?;
        crate::scan::register_source(
            &ctx,
            &self.env.name,
            &def,
            &listing,
            SourceSampling::Full,
            &snapshot,
            false,
            None,
        )
        .await?;
        Ok((ctx, def, listing))
    }

    /// A source of this environment read in full, as a DataFrame to build on (sample
    /// builds, exports).
    pub async fn source_frame(&self, name: &str) -> Result<(DataFrame, SourceListing)> {
        let (ctx, def, listing) = self.full_source_context(name).await?;
        let df = ctx.table(def.name.as_str()).await?;
        Ok((df, listing))
    }

    /// The heavy keys of a source on `column` (see `scan::key`), read in full here.
    pub async fn heavy_keys(
        &self,
        name: &str,
        column: &str,
    ) -> Result<crate::scan::key::HeavyKeys> {
        let (ctx, def, listing) = self.full_source_context(name).await?;
        let table = ctx.table_provider(def.name.as_str()).await?;
        crate::scan::find_heavy_keys(&ctx, table, &listing, column).await
    }

    /// Registers the sources among `names` (other names are nodes or unknown tables,
    /// which DataFusion reports when planning).
    async fn register_sources(
        &self,
        ctx: &SessionContext,
        snapshot: &Arc<ScanSnapshot>,
        names: &BTreeSet<String>,
        units: bool,
    ) -> Result<Vec<SourceScan>> {
        let mut scans = Vec::new();
        let mut sources = Vec::new();
        for name in names {
            if let Some(table) = name.strip_prefix(&format!("{STATS_SCHEMA}.")) {
                if table == STATS_TABLE {
                    scans.extend(self.register_stats(ctx, snapshot).await?);
                } else if let Some(source) = table.strip_suffix(ERRORS_TABLE_SUFFIX)
                    && self.source_def(source).await?.is_some()
                {
                    scans.extend(self.register_errors(ctx, snapshot, source).await?);
                }
                continue;
            }
            let Some(def) = self.source_def(name).await? else {
                continue;
            };
            let listing = self.listing(&def).await?;
            let sampling = self.project.source_sampling(&def, self.policy.as_ref());
            // A policy's fraction is of the data a build was taken from, not of the build.
            let (sampling, build_note) = match (&listing.built_sample, &sampling) {
                (Some(built), SourceSampling::Sampled(policy)) => {
                    let key = match policy {
                        SamplePolicy::Key { key, .. } => {
                            crate::scan::key_column(&def, key.as_deref(), &listing.table_schema())
                        }
                        _ => None,
                    };
                    crate::scan::build::over_build(sampling.clone(), built, key.as_deref())
                }
                _ => (sampling, None),
            };
            sources.push((def, listing, sampling, build_note));
        }
        // The footers' row counts decide how a small run reads (see
        // `small_input_settings`): before the sources are registered, as a scan takes
        // its Parquet options when its table is.
        if !self.is_remote() {
            let rows: u64 = sources.iter().map(|(_, l, _, _)| l.rows()).sum();
            let state = ctx.state_ref();
            let mut state = state.write();
            crate::optimizer::settings::small_input_settings(
                state.config_mut().options_mut(),
                rows,
            );
        }
        for (def, listing, sampling, build_note) in sources {
            tracing::debug!(
                env = %self.env.name,
                source = %def.name,
                files = listing.files.len(),
                rows = listing.rows(),
                ?sampling,
                "registering source"
            );
            // A key sample keeps the same heavy keys in every source sampled on the key.
            let heavy = match &sampling {
                SourceSampling::Sampled(SamplePolicy::Key { key, .. }) => {
                    match crate::scan::key_column(&def, key.as_deref(), &listing.table_schema()) {
                        Some(column) if listing.built_sample.is_none() => {
                            Some(self.shared_heavy_keys(&column, key.as_deref()).await?)
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let mut scan = self
                .register_source(ctx, &def, &listing, sampling, snapshot, units, heavy)
                .await?;
            if let Some(note) = build_note {
                match scan.sampling {
                    SourceSampling::Full => scan.full_reason = Some(note),
                    SourceSampling::Sampled(_) => scan.note = Some(note),
                }
            }
            scans.push(scan);
        }
        Ok(scans)
    }

    /// Registers one source on the environment's engine.
    async fn register_source(
        &self,
        ctx: &SessionContext,
        def: &SourceDef,
        listing: &SourceListing,
        sampling: SourceSampling,
        snapshot: &Arc<ScanSnapshot>,
        units: bool,
        heavy: Option<Arc<crate::scan::key::HeavyKeys>>,
    ) -> Result<SourceScan> {
        self.backend
            .register_source(
                ctx, &self.env, def, listing, sampling, snapshot, units, heavy,
            )
            .await
    }

    /// The heavy keys on `column` of every declared source a `key` sample reads on it
    /// (its `sample_key`, or the policy's `key` when it has that column), together: a
    /// key heavy in one source is kept whole in all of them, so joins on it stay whole.
    pub async fn shared_heavy_keys(
        &self,
        column: &str,
        policy_key: Option<&str>,
    ) -> Result<Arc<crate::scan::key::HeavyKeys>> {
        let mut cache = self.heavy.lock().await;
        if let Some(h) = cache.get(column) {
            return Ok(h.clone());
        }
        let mut all = crate::scan::key::HeavyKeys::default();
        let defs: Vec<SourceDef> = self.project.sources.values().cloned().collect();
        for def in defs {
            if def.sample == Some(SourceSampling::Full) {
                continue;
            }
            let Ok(listing) = self.store.list_source(&def).await else {
                continue;
            };
            let keyed = crate::scan::key_column(&def, policy_key, &listing.table_schema());
            if keyed.as_deref() != Some(column) {
                continue;
            }
            let h = self.heavy_keys(&def.name, column).await?;
            all.ints.extend(h.ints);
            all.strings.extend(h.strings);
        }
        let all = Arc::new(all);
        cache.insert(column.to_string(), all.clone());
        Ok(all)
    }

    /// Registers `sluice.pipe_stats`: the run records in this environment's own store
    /// (an empty table before the first run; a branch's statistics are its own, never
    /// its parent's).
    async fn register_stats(
        &self,
        ctx: &SessionContext,
        snapshot: &Arc<ScanSnapshot>,
    ) -> Result<Option<SourceScan>> {
        let own = self.store.list(STATS_DIR).await?;
        let exists = own.iter().any(|(rel, _)| rel.ends_with(".parquet"));
        let name = format!("{STATS_SCHEMA}.{STATS_TABLE}");
        self.register_own_table(
            ctx,
            snapshot,
            name,
            STATS_DIR.to_string(),
            stats_schema(),
            exists,
        )
        .await
    }

    /// Registers `sluice.SOURCE_errors`: the rows ingestion kept out of a source, from
    /// this environment's own quarantine (an empty table before the first rejected row;
    /// a branch's quarantine is its own, never its parent's).
    async fn register_errors(
        &self,
        ctx: &SessionContext,
        snapshot: &Arc<ScanSnapshot>,
        source: &str,
    ) -> Result<Option<SourceScan>> {
        let path = errors_dataset(source);
        let exists = self.store.owns(&path).await?;
        let name = errors_table(source);
        self.register_own_table(ctx, snapshot, name, path, errors_schema(), exists)
            .await
    }

    /// Registers one of Sluice's own tables (`sluice.NAME`): the dataset at `path` in
    /// this environment's store, read in full, or an empty table of `schema` when it
    /// does not exist yet.
    async fn register_own_table(
        &self,
        ctx: &SessionContext,
        snapshot: &Arc<ScanSnapshot>,
        name: String,
        path: String,
        schema: SchemaRef,
        exists: bool,
    ) -> Result<Option<SourceScan>> {
        self.ensure_sluice_schema(ctx)?;
        if !exists {
            let empty = datafusion::datasource::MemTable::try_new(schema, vec![vec![]])?;
            ctx.register_table(name.as_str(), Arc::new(empty))?;
            return Ok(None);
        }
        let def = SourceDef {
            name,
            path,
            sample_key: None,
            sample: None,
            sort: Vec::new(),
        };
        let listing = self.listing(&def).await?;
        let scan = self
            .register_source(
                ctx,
                &def,
                &listing,
                SourceSampling::Full,
                snapshot,
                false,
                None,
            )
            .await?;
        Ok(Some(scan))
    }

    /// The `sluice` schema of Sluice's own tables (run statistics, quarantines).
    fn ensure_sluice_schema(&self, ctx: &SessionContext) -> Result<()> {
        let catalog_name = ctx.state().config_options().catalog.default_catalog.clone();
        let catalog = ctx.catalog(&catalog_name).ok_or_else(|| {
            SluiceError::Usage(format!("no catalog `{catalog_name}` in the session"))
        })?;
        if catalog.schema(STATS_SCHEMA).is_none() {
            catalog.register_schema(
                STATS_SCHEMA,
                Arc::new(datafusion::catalog::MemorySchemaProvider::new()),
            )?;
        }
        Ok(())
    }

    fn node_error(&self, pipe: &Pipe, node: &str, err: &DataFusionError) -> SluiceError {
        SluiceError::Node {
            env: self.env.name.clone(),
            pipe: pipe.name.clone(),
            node: node.to_string(),
            message: df_message(err),
            class: classify(err),
        }
    }

    /// Plans a pipe's nodes in a fresh context, each node a view the later ones read.
    /// With `PlanMode::Run`, a local run first computes the nodes the rest of the pipe
    /// reads more than once (see `shared_nodes`).
    async fn plan_pipe(
        &self,
        pipe: &Pipe,
        values: &HashMap<String, ParamValue>,
        mode: PlanMode,
    ) -> Result<PlannedPipe> {
        let (ctx, snapshot) = self.context().await?;
        let node_names: BTreeSet<String> = pipe
            .nodes
            .iter()
            .map(|n| n.name.to_ascii_lowercase())
            .collect();
        // The tables the nodes read but the pipe's own nodes (sources, Sluice's tables).
        let mut reads = BTreeSet::new();
        for node in &pipe.nodes {
            for r in crate::project::node_references_of(&node.sql).unwrap_or_default() {
                if !node_names.contains(&r) {
                    reads.insert(r);
                }
            }
        }
        let scans = self
            .register_sources(&ctx, &snapshot, &reads, mode == PlanMode::EstimateUnits)
            .await?;
        let param_values = ParamValues::Map(
            values
                .iter()
                .map(|(k, v)| (k.clone(), v.to_scalar().into()))
                .collect(),
        );
        let last = pipe.nodes.len() - 1;
        let mut output = None;
        for (i, node) in pipe.nodes.iter().enumerate() {
            let df = plan_node(&ctx, &node.sql, &param_values)
                .await
                .map_err(|e| self.node_error(pipe, &node.name, &e))?;
            if mode == PlanMode::Check {
                df.clone()
                    .create_physical_plan()
                    .await
                    .map_err(|e| self.node_error(pipe, &node.name, &e))?;
            }
            if i < last {
                ctx.register_table(node.name.as_str(), df.into_view())
                    .map_err(|e| self.node_error(pipe, &node.name, &e))?;
            } else {
                output = Some(df);
            }
        }
        let output = output.expect("a pipe has nodes");
        // Only nodes before the output can be read by it.
        let mut earlier = node_names.clone();
        earlier.remove(&pipe.nodes[last].name.to_ascii_lowercase());
        let mut shared_reads =
            crate::session::shared_nodes::node_reads(output.logical_plan(), &earlier);
        shared_reads.retain(|_, n| *n > 1);
        let mut planned = PlannedPipe {
            ctx,
            output,
            scans,
            reads,
            shared_reads,
            shared: Vec::new(),
        };
        if mode != PlanMode::Run || self.is_remote() {
            return Ok(planned);
        }
        if !planned.shared_reads.is_empty() {
            self.compute_shared_nodes(pipe, &param_values, &mut planned)
                .await?;
        }
        // What the output still reads more than once (a `WITH` query read twice).
        let last_node = &pipe.nodes[last].name;
        let (output, shared) = self
            .share_repeated(&planned.ctx, &planned.output, &node_names, &planned.shared)
            .await
            .map_err(|e| self.node_error(pipe, last_node, &e))?;
        planned.output = output;
        planned.shared.extend(shared);
        Ok(planned)
    }

    /// Computes the nodes `planned.shared_reads` names ahead of the nodes that read them
    /// (see `shared_nodes`).
    async fn compute_shared_nodes(
        &self,
        pipe: &Pipe,
        param_values: &ParamValues,
        planned: &mut PlannedPipe,
    ) -> Result<()> {
        let last = pipe.nodes.len() - 1;
        // Plan again, node by node from the first shared one (the nodes before it read
        // none, so their views stand), computing each shared node before the nodes that
        // read it are planned, so they scan its rows instead of inlining the view.
        let pool = self.runtime.memory_pool.clone();
        let budget = crate::session::shared_nodes::budget(self.env.settings.memory_limit);
        let first = pipe
            .nodes
            .iter()
            .position(|n| {
                planned
                    .shared_reads
                    .contains_key(&n.name.to_ascii_lowercase())
            })
            .expect("a shared node is one of the pipe's");
        for (i, node) in pipe.nodes.iter().enumerate().skip(first) {
            let df = plan_node(&planned.ctx, &node.sql, param_values)
                .await
                .map_err(|e| self.node_error(pipe, &node.name, &e))?;
            if i == last {
                planned.output = df;
                break;
            }
            let name = node.name.to_ascii_lowercase();
            let held: usize = planned.shared.iter().map(|s| s.bytes).sum();
            if let Some(&reads) = planned.shared_reads.get(&name) {
                let computed = crate::session::shared_nodes::compute(
                    &planned.ctx,
                    node.name.as_str(),
                    reads,
                    df.clone(),
                    &pool,
                    budget.saturating_sub(held),
                    self.keeps_plans(),
                )
                .await
                .map_err(|e| self.node_error(pipe, &node.name, &e))?;
                if let Some(shared) = computed {
                    planned.shared.push(shared);
                    continue;
                }
            }
            planned
                .ctx
                .deregister_table(node.name.as_str())
                .and_then(|_| {
                    planned
                        .ctx
                        .register_table(node.name.as_str(), df.into_view())
                })
                .map_err(|e| self.node_error(pipe, &node.name, &e))?;
        }
        Ok(())
    }

    /// `df` with the subplans it holds more than once computed once
    /// (`shared_nodes::share_repeated`), then its grouping sets computed set by set
    /// (`grouping_levels`, over those subplans' rows: TPC-DS q14a rolls up a union
    /// reading `cross_items` three times), within what is left of the run's budget after
    /// `held`; `skip` names the pipe's nodes. Neither on a Ballista engine, nor when
    /// `SLUICE_SKIP_RULES` names `sluice_shared_subplans` or `sluice_grouping_levels`;
    /// grouping sets are left to DataFusion in a session that keeps its plans too.
    async fn share_repeated(
        &self,
        ctx: &SessionContext,
        df: &DataFrame,
        skip: &BTreeSet<String>,
        held: &[crate::session::shared_nodes::SharedNode],
    ) -> std::result::Result<
        (DataFrame, Vec<crate::session::shared_nodes::SharedNode>),
        DataFusionError,
    > {
        use crate::optimizer::settings::{GROUPING_LEVELS, SHARED_SUBPLANS, skipped};
        if self.is_remote() {
            return Ok((df.clone(), Vec::new()));
        }
        let pool = self.runtime.memory_pool.clone();
        let held: usize = held.iter().map(|s| s.bytes).sum();
        let budget = crate::session::shared_nodes::budget(self.env.settings.memory_limit)
            .saturating_sub(held);
        let plan = df.logical_plan().clone();
        let (plan, mut shared) = if skipped(SHARED_SUBPLANS) {
            (plan, Vec::new())
        } else {
            crate::session::shared_nodes::share_repeated(
                ctx,
                plan,
                skip,
                &pool,
                budget,
                self.keeps_plans(),
            )
            .await?
        };
        let (plan, levels) = if self.keeps_plans() || skipped(GROUPING_LEVELS) {
            (plan, Vec::new())
        } else {
            let used: usize = shared.iter().map(|s| s.bytes).sum();
            grouping_levels::compute_levels(ctx, plan, &pool, budget.saturating_sub(used)).await?
        };
        shared.extend(levels);
        if shared.is_empty() {
            return Ok((df.clone(), shared));
        }
        Ok((DataFrame::new(ctx.state(), plan), shared))
    }

    /// Parses `--param k=v` style values against the pipe's declarations.
    pub fn resolve_params(
        &self,
        pipe: &Pipe,
        given: &[(String, String)],
    ) -> Result<HashMap<String, ParamValue>> {
        params::resolve(&pipe.params, given).map_err(|(param, message)| SluiceError::Param {
            pipe: pipe.name.clone(),
            param,
            message,
        })
    }

    /// The definition of a pipe this environment runs: in a protected environment (or
    /// with `deployed`) the version deployed there, else the project's working copy.
    /// Production never runs an edit that was not promoted.
    pub async fn resolve_pipe(&self, name: &str, deployed: bool) -> Result<Pipe> {
        if !(deployed || self.env.protected) {
            return Ok(self.project.pipe(name)?.clone());
        }
        let state = self.deployments();
        let Some(version) = state.live_version(name).await? else {
            // A name the project does not know either is a typo, not a missing promotion.
            self.project.pipe(name)?;
            let hint = if self.env.protected {
                promotion_hint(&self.project, name, &self.env.name).await
            } else {
                format!(
                    "deploy it first: `sluice deploy {name} --env {}`",
                    self.env.name
                )
            };
            return Err(SluiceError::Usage(format!(
                "pipe `{name}` has no deployed version in environment `{}`: {hint}",
                self.env.name
            )));
        };
        state.pipe(&self.project, name, &version).await
    }

    /// The deployments of this environment, in its store.
    pub fn deployments(&self) -> crate::store::deployments::DeploymentState {
        crate::store::deployments::DeploymentState::in_store(self.store.clone())
    }

    /// Runs a pipe as this environment runs it (see `resolve_pipe`), with parameters
    /// given as text.
    pub async fn run_pipe(
        &self,
        name: &str,
        given: &[(String, String)],
        options: &RunOptions,
    ) -> Result<RunOutput> {
        let pipe = self.resolve_pipe(name, false).await?;
        self.run_pipe_def(&pipe, given, options).await
    }

    /// Runs the given definition of a pipe (e.g. a deployed version).
    pub async fn run_pipe_def(
        &self,
        pipe: &Pipe,
        given: &[(String, String)],
        options: &RunOptions,
    ) -> Result<RunOutput> {
        let values = self.resolve_params(pipe, given)?;
        let started = Instant::now();
        if options.estimate {
            let values = &values;
            let plan = |units: bool| async move {
                let mode = if units {
                    PlanMode::EstimateUnits
                } else {
                    PlanMode::Estimate
                };
                let p = self.plan_pipe(pipe, values, mode).await?;
                Ok((p.ctx, p.output, p.scans, p.reads))
            };
            let slot =
                self.plan_slot(|| prepared::PlanKey::pipe(pipe, values, options.limit).estimated());
            return self
                .run_estimated(plan, slot, Some(pipe), options, started)
                .await;
        }
        let slot = self.plan_slot(|| prepared::PlanKey::pipe(pipe, &values, options.limit));
        if let Some(planned) = slot.as_ref().and_then(prepared::Slot::kept)
            && let Some(out) = self
                .run_prepared(&planned, slot.as_ref(), Some(pipe), started)
                .await?
        {
            return Ok(out);
        }
        let planned = self.plan_pipe(pipe, &values, PlanMode::Run).await?;
        if let Some(slot) = slot {
            return self
                .execute_prepared(
                    slot,
                    &planned.reads,
                    planned.ctx,
                    planned.output,
                    planned.shared,
                    planned.scans,
                    None,
                    Some(pipe),
                    options,
                    started,
                )
                .await;
        }
        let shared_plans = shared_plans(&planned.shared);
        self.execute(
            &planned.ctx,
            planned.output,
            planned.scans,
            &shared_plans,
            Some(pipe),
            options,
            started,
        )
        .await
    }

    /// Runs one SQL query against the environment's sources.
    pub async fn query(&self, sql: &str, options: &RunOptions) -> Result<RunOutput> {
        let started = Instant::now();
        let reads = crate::project::query_references(sql).map_err(|m| SluiceError::Query {
            env: self.env.name.clone(),
            message: m,
            class: ErrorClass::Usage,
        })?;
        let reads: BTreeSet<String> = reads.into_iter().collect();
        let plan_query = |units: bool| {
            let reads = reads.clone();
            async move {
                let (ctx, snapshot) = self.context().await?;
                let scans = self
                    .register_sources(&ctx, &snapshot, &reads, units)
                    .await?;
                let df = ctx.sql(sql).await.map_err(|e| self.query_error(&e))?;
                Ok::<_, SluiceError>((ctx, df, scans, reads))
            }
        };
        if options.estimate {
            let slot = self.plan_slot(|| prepared::PlanKey::query(sql, options.limit).estimated());
            return self
                .run_estimated(plan_query, slot, None, options, started)
                .await;
        }
        let slot = self.plan_slot(|| prepared::PlanKey::query(sql, options.limit));
        if let Some(planned) = slot.as_ref().and_then(prepared::Slot::kept)
            && let Some(out) = self
                .run_prepared(&planned, slot.as_ref(), None, started)
                .await?
        {
            return Ok(out);
        }
        let (ctx, df, scans, reads) = plan_query(false).await?;
        let (df, shared) = self
            .share_repeated(&ctx, &df, &BTreeSet::new(), &[])
            .await
            .map_err(|e| self.query_error(&e))?;
        if let Some(slot) = slot {
            return self
                .execute_prepared(
                    slot, &reads, ctx, df, shared, scans, None, None, options, started,
                )
                .await;
        }
        self.execute(
            &ctx,
            df,
            scans,
            &shared_plans(&shared),
            None,
            options,
            started,
        )
        .await
    }

    /// `--estimate` needs a sampled read: of a sample policy, or of a sample build.
    fn require_sample(&self, scans: &[SourceScan]) -> Result<()> {
        let sampled = scans
            .iter()
            .any(|s| matches!(s.sampling, SourceSampling::Sampled(_)) || s.built.is_some());
        if sampled {
            return Ok(());
        }
        Err(SluiceError::Usage(format!(
            "environment `{}` reads its sources in full here: there is nothing to estimate (estimates scale a sampled run to the full data: run in a sampled environment, or give --sample F)",
            self.env.name
        )))
    }

    /// Runs a pipe or query for estimates (`session::estimate`): `plan(units)` plans it,
    /// with a `system` sample's units as columns or without. Planned once with units;
    /// again without only when the plan cannot be estimated and read units (it then runs
    /// as it is, and the report says why). In a session that keeps plans, the rewritten
    /// plan is kept in `slot` with its report, as a plain run's is.
    async fn run_estimated<F, Planned>(
        &self,
        plan: F,
        slot: Option<prepared::Slot<'_>>,
        pipe: Option<&Pipe>,
        options: &RunOptions,
        started: Instant,
    ) -> Result<RunOutput>
    where
        F: Fn(bool) -> Planned,
        Planned:
            Future<Output = Result<(SessionContext, DataFrame, Vec<SourceScan>, BTreeSet<String>)>>,
    {
        if let Some(planned) = slot.as_ref().and_then(prepared::Slot::kept)
            && let Some(out) = self
                .run_prepared(&planned, slot.as_ref(), pipe, started)
                .await?
        {
            return Ok(out);
        }
        let fail = |e: DataFusionError| self.run_error(pipe, &e);
        let (ctx, df, scans, reads) = plan(true).await?;
        self.require_sample(&scans)?;
        let (ctx, df, scans, report) = match estimate::rewrite(
            df.logical_plan(),
            &scans,
            self.is_remote() || estimate::portable_forced(),
        )
        .map_err(fail)?
        {
            estimate::Rewritten::Plan(plan, report) => {
                let df = DataFrame::new(ctx.state(), plan);
                (ctx, df, scans, report)
            }
            estimate::Rewritten::NotEstimable(report) if estimate::reads_units(&scans) => {
                let (ctx, df, scans, _) = plan(false).await?;
                (ctx, df, scans, report)
            }
            estimate::Rewritten::NotEstimable(report) => (ctx, df, scans, report),
        };
        if let Some(slot) = slot {
            return self
                .execute_prepared(
                    slot,
                    &reads,
                    ctx,
                    df,
                    Vec::new(),
                    scans,
                    Some(report),
                    pipe,
                    options,
                    started,
                )
                .await;
        }
        let mut out = self
            .execute(&ctx, df, scans, &[], pipe, options, started)
            .await?;
        out.estimate = Some(report);
        Ok(out)
    }

    fn query_error(&self, err: &DataFusionError) -> SluiceError {
        SluiceError::Query {
            env: self.env.name.clone(),
            message: df_message(err),
            class: classify(err),
        }
    }

    /// The error of a run of `pipe` (a query's when `None`).
    fn run_error(&self, pipe: Option<&Pipe>, err: &DataFusionError) -> SluiceError {
        match pipe {
            Some(p) => SluiceError::Query {
                env: self.env.name.clone(),
                message: format!("pipe `{}`: {}", p.name, df_message(err)),
                class: classify(err),
            },
            None => self.query_error(err),
        }
    }

    async fn execute(
        &self,
        ctx: &SessionContext,
        df: DataFrame,
        scans: Vec<SourceScan>,
        shared_plans: &[Arc<dyn ExecutionPlan>],
        pipe: Option<&Pipe>,
        options: &RunOptions,
        started: Instant,
    ) -> Result<RunOutput> {
        let fail = |e: DataFusionError| self.run_error(pipe, &e);
        let plan = limited(df, options)
            .map_err(fail)?
            .create_physical_plan()
            .await
            .map_err(fail)?;
        self.execute_plan(ctx, plan, scans, shared_plans, pipe, started)
            .await
    }

    /// Plans `df` for a session that keeps plans (`prepare_plans`) and runs it; keeps
    /// the plan in `slot` when it may run again (`session::prepared`): not when it
    /// reads Sluice's run tables (of `reads`, the tables it reads), which change with
    /// every run. `shared`: what was computed ahead of `df` (its plans are kept with
    /// it, its rows are not); `estimate`: the report of an estimated run, kept with its
    /// plan.
    #[allow(clippy::too_many_arguments)]
    async fn execute_prepared(
        &self,
        slot: prepared::Slot<'_>,
        reads: &BTreeSet<String>,
        ctx: SessionContext,
        df: DataFrame,
        mut shared: Vec<crate::session::shared_nodes::SharedNode>,
        scans: Vec<SourceScan>,
        estimate: Option<estimate::EstimateReport>,
        pipe: Option<&Pipe>,
        options: &RunOptions,
        started: Instant,
    ) -> Result<RunOutput> {
        let fail = |e: DataFusionError| self.run_error(pipe, &e);
        let df = limited(df, options).map_err(fail)?;
        // Functions such as `now()` are evaluated while planning: such a plan is of
        // its time and not kept.
        let timeless = !prepared::evaluated_when_planned(df.logical_plan())
            && shared.iter().all(|s| s.timeless && s.kept.is_some());
        let ahead = shared
            .iter_mut()
            .filter_map(|s| {
                let (plan, exact) = s.kept.take()?;
                Some(prepared::Ahead {
                    name: s.name.clone(),
                    reads: s.reads,
                    plan,
                    schema: s.schema.clone(),
                    exact,
                })
            })
            .collect();
        let (state, logical) = df.into_parts();
        let planned = prepared::Prepared::plan(ctx, state, &logical, ahead, scans, estimate)
            .await
            .map_err(fail)?;
        if !reads_run_tables(reads)
            && timeless
            && planned.keepable()
            && let Some(kept) = planned.without_rows()
        {
            slot.keep(Arc::new(kept));
        }
        // This run reads the rows computed while planning (held by `shared` until
        // it is over).
        let plan = planned.runnable(&[]).map_err(fail)?;
        let mut out = self
            .execute_plan(
                &planned.ctx,
                plan,
                planned.scans.clone(),
                &shared_plans(&shared),
                pipe,
                started,
            )
            .await?;
        out.estimate = planned.estimate.clone();
        Ok(out)
    }

    /// Runs a fresh copy of a prepared plan: first what it computes ahead, then its
    /// output. `None` when what it computes ahead outgrows what is left of the run's
    /// budget for it now (other runs hold the rest: planned anew, the run reads such a
    /// node as a view), or its rows are not what the plan was made for
    /// (`prepared::ExactStats`: no plan is kept in `slot` again): the caller plans the
    /// run anew.
    async fn run_prepared(
        &self,
        planned: &prepared::Prepared,
        slot: Option<&prepared::Slot<'_>>,
        pipe: Option<&Pipe>,
        started: Instant,
    ) -> Result<Option<RunOutput>> {
        let fail = |e: DataFusionError| self.run_error(pipe, &e);
        let pool = self.runtime.memory_pool.clone();
        let budget = crate::session::shared_nodes::budget(self.env.settings.memory_limit);
        let mut fills: Vec<prepared::Fill> = Vec::new();
        let mut held: Vec<datafusion::execution::memory_pool::MemoryReservation> = Vec::new();
        let mut ahead_plans = Vec::new();
        for ahead in &planned.ahead {
            let plan = ahead.plan.runnable(&fills).map_err(fail)?;
            let used: usize = held.iter().map(|r| r.size()).sum();
            let Some(rows) = crate::session::shared_nodes::hold_rows(
                &planned.ctx,
                &ahead.name,
                plan.clone(),
                &ahead.schema,
                &pool,
                budget.saturating_sub(used),
            )
            .await
            .map_err(fail)?
            else {
                return Ok(None);
            };
            // Rows that do not agree with what the plan was made for (a node whose
            // rows vary from run to run without a volatile function, e.g. a `LIMIT`
            // without an order over values with NULLs): planned anew for them.
            if prepared::ExactStats::of(&rows.partitions) != ahead.exact {
                tracing::debug!(node = %ahead.name, "rows computed ahead differ from the kept plan's: planned anew, and not kept");
                if let Some(slot) = slot {
                    slot.never_keep();
                }
                return Ok(None);
            }
            tracing::debug!(node = %ahead.name, reads = ahead.reads, rows = rows.rows, "computed ahead for a kept plan");
            fills.push(prepared::Fill {
                schema: ahead.schema.clone(),
                partitions: rows.partitions,
            });
            held.push(rows.reservation);
            ahead_plans.push(plan);
        }
        let plan = planned.runnable(&fills).map_err(fail)?;
        let mut out = self
            .execute_plan(
                &planned.ctx,
                plan,
                planned.scans.clone(),
                &ahead_plans,
                pipe,
                started,
            )
            .await?;
        drop(held);
        out.estimate = planned.estimate.clone();
        Ok(Some(out))
    }

    /// Runs a physical plan to completion and reports what it read.
    async fn execute_plan(
        &self,
        ctx: &SessionContext,
        plan: Arc<dyn ExecutionPlan>,
        scans: Vec<SourceScan>,
        shared_plans: &[Arc<dyn ExecutionPlan>],
        pipe: Option<&Pipe>,
        started: Instant,
    ) -> Result<RunOutput> {
        let fail = |e: DataFusionError| self.run_error(pipe, &e);
        let schema = plan.schema();
        let batches = self.collect(plan.clone(), ctx).await.map_err(fail)?;
        let rows_out = batches.iter().map(|b| b.num_rows() as u64).sum();
        tracing::debug!(env = %self.env.name, rows_out, elapsed = ?started.elapsed(), "run finished");
        let report = RunReport {
            env: self.env.name.clone(),
            pipe: pipe.map(|p| p.name.clone()),
            sample: self.policy.clone(),
            rows_out,
            elapsed: started.elapsed(),
            sources: source_reports(&plan, shared_plans, &scans),
        };
        Ok(RunOutput {
            schema,
            batches,
            report,
            estimate: None,
        })
    }

    /// Runs a plan to completion on the environment's engine.
    async fn collect(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> std::result::Result<Vec<RecordBatch>, DataFusionError> {
        self.backend.collect(plan, ctx).await
    }

    /// Starts a plan on the environment's engine and returns its output stream.
    fn execute_stream(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> std::result::Result<datafusion::execution::SendableRecordBatchStream, DataFusionError>
    {
        self.backend.execute_stream(plan, ctx)
    }

    /// Starts a run of the given definition of a pipe and returns its output as a
    /// stream of batches, for writers that must not hold the whole output in memory.
    pub async fn stream_pipe_def(
        &self,
        pipe: &Pipe,
        given: &[(String, String)],
    ) -> Result<PipeStream> {
        let values = self.resolve_params(pipe, given)?;
        let started = Instant::now();
        let planned = self.plan_pipe(pipe, &values, PlanMode::Run).await?;
        let fail = |e: DataFusionError| SluiceError::Query {
            env: self.env.name.clone(),
            message: format!("pipe `{}`: {}", pipe.name, df_message(&e)),
            class: classify(&e),
        };
        let plan = planned.output.create_physical_plan().await.map_err(fail)?;
        let stream = self
            .execute_stream(plan.clone(), &planned.ctx)
            .map_err(fail)?;
        Ok(PipeStream {
            stream,
            plan,
            shared: planned.shared,
            scans: planned.scans,
            started,
            env: self.env.name.clone(),
            pipe: pipe.name.clone(),
            sample: self.policy.clone(),
        })
    }

    /// The plan of a pipe: logical and physical, or with `analyze`, the executed plan
    /// with its metrics. A node the pipe reads more than once is named: an analyzed run
    /// computes it first and shows its own executed plan, as a run does.
    pub async fn explain_pipe(
        &self,
        pipe: &Pipe,
        given: &[(String, String)],
        analyze: bool,
    ) -> Result<String> {
        let values = self.resolve_params(pipe, given)?;
        let mode = if analyze {
            PlanMode::Run
        } else {
            PlanMode::Explain
        };
        let planned = self.plan_pipe(pipe, &values, mode).await?;
        let fail = |e: DataFusionError| SluiceError::Query {
            env: self.env.name.clone(),
            message: format!("pipe `{}`: {}", pipe.name, df_message(&e)),
            class: classify(&e),
        };
        let (ctx, df) = (&planned.ctx, &planned.output);
        let logical = df.logical_plan().clone();
        let optimized = ctx.state().optimize(&logical).map_err(fail)?;
        let plan: Arc<dyn ExecutionPlan> = df.clone().create_physical_plan().await.map_err(fail)?;
        let mut out = String::new();
        let mut shared: Vec<_> = planned.shared_reads.iter().collect();
        shared.sort();
        for (name, reads) in shared {
            match planned.shared.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                Some(s) => {
                    out.push_str(&format!(
                        "== Node `{}`: read {reads} times, computed once ({} rows, {} bytes held) ==\n",
                        s.name, s.rows, s.bytes
                    ));
                    out.push_str(
                        &DisplayableExecutionPlan::with_metrics(s.plan.as_ref())
                            .indent(true)
                            .to_string(),
                    );
                    out.push('\n');
                }
                None if analyze || self.is_remote() => out.push_str(&format!(
                    "== Node `{name}`: read {reads} times, each time as a view ==\n\n"
                )),
                None => out.push_str(&format!(
                    "== Node `{name}`: read {reads} times; a run computes it once (the plans below read it as a view) ==\n\n"
                )),
            }
        }
        // `WITH` queries (or views) the output holds more than once (`share_repeated`).
        for s in planned.shared.iter().filter(|s| {
            !planned
                .shared_reads
                .contains_key(&s.name.to_ascii_lowercase())
        }) {
            out.push_str(&match s.reads {
                // Grouping sets computed set by set (`grouping_levels`).
                1 => format!(
                    "== `{}`: computed ahead ({} rows, {} bytes held) ==\n",
                    s.name, s.rows, s.bytes
                ),
                reads => format!(
                    "== `{}`: read {reads} times, computed once ({} rows, {} bytes held) ==\n",
                    s.name, s.rows, s.bytes
                ),
            });
            out.push_str(
                &DisplayableExecutionPlan::with_metrics(s.plan.as_ref())
                    .indent(true)
                    .to_string(),
            );
            out.push('\n');
        }
        out.push_str("== Logical plan ==\n");
        out.push_str(&optimized.display_indent().to_string());
        out.push_str("\n\n");
        if analyze {
            self.collect(plan.clone(), ctx).await.map_err(fail)?;
            out.push_str("== Executed plan (with metrics) ==\n");
            out.push_str(
                &DisplayableExecutionPlan::with_metrics(plan.as_ref())
                    .indent(true)
                    .to_string(),
            );
        } else {
            // `DATAFUSION_EXPLAIN_SHOW_STATISTICS=true` shows the estimates the planner
            // chose join sides by.
            let statistics = ctx.copied_config().options().explain.show_statistics;
            out.push_str("== Physical plan ==\n");
            out.push_str(
                &displayable(plan.as_ref())
                    .set_show_statistics(statistics)
                    .indent(false)
                    .to_string(),
            );
        }
        Ok(out)
    }

    /// Warnings about how `pipe` reads this environment's sample (joins of sampled
    /// sources off their key, groups on a `system` sample's sort column); none when the
    /// environment reads everything. Planned with each parameter's default.
    pub async fn sampling_warnings(&self, pipe: &Pipe) -> Result<Vec<warnings::SamplingWarning>> {
        if self.policy.is_none() {
            return Ok(Vec::new());
        }
        let values: HashMap<String, ParamValue> = pipe
            .params
            .iter()
            .map(|(k, p)| (k.clone(), params::planning_value(p)))
            .collect();
        let planned = self.plan_pipe(pipe, &values, PlanMode::Estimate).await?;
        Ok(warnings::warnings(
            &self.project,
            pipe,
            planned.output.logical_plan(),
            &planned.scans,
        ))
    }

    /// Plans every pipe (logical and physical) against this environment's real
    /// schemas, without running them. Returns the pipes that fail, with the node.
    pub async fn validate(&self) -> Vec<PlanFailure> {
        let mut failures = Vec::new();
        for pipe in self.project.pipes.values() {
            if let Err(f) = self.plan_check(pipe).await {
                failures.push(f);
            }
        }
        failures
    }

    /// Plans one definition of a pipe against this environment's real schemas (with
    /// each parameter's default, or a value of its type) and returns its output schema.
    pub async fn plan_check(&self, pipe: &Pipe) -> std::result::Result<SchemaRef, PlanFailure> {
        let values: HashMap<String, ParamValue> = pipe
            .params
            .iter()
            .map(|(k, p)| (k.clone(), params::planning_value(p)))
            .collect();
        match self.plan_pipe(pipe, &values, PlanMode::Check).await {
            Ok(planned) => {
                let schema = Arc::new(planned.output.schema().as_arrow().clone());
                // The data checks must name columns of the output.
                crate::project::checks::check_columns(pipe, &schema).map_err(|message| {
                    PlanFailure {
                        pipe: pipe.name.clone(),
                        node: None,
                        message,
                    }
                })?;
                Ok(schema)
            }
            Err(e) => {
                let node = match &e {
                    SluiceError::Node { node, .. } => Some(node.clone()),
                    _ => None,
                };
                let message = match e {
                    SluiceError::Node { message, .. } => message,
                    other => other.to_string(),
                };
                Err(PlanFailure {
                    pipe: pipe.name.clone(),
                    node,
                    message,
                })
            }
        }
    }
}
