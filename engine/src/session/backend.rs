//! Where an environment's runs execute: in this process (DataFusion, the default) or on
//! an Apache DataFusion Ballista cluster (`--features ballista`, see `session::ballista`).
//! This is the one seam between the two: the session asks its backend for a context,
//! registers sources through it and runs plans through it, and no other module tests
//! the feature.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, collect, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::project::sampling::SourceSampling;
use crate::project::{Environment, RunEngine, SourceDef};
use crate::scan::{SourceScan, register_source};
use crate::store::SourceListing;
use crate::store::snapshot::{RunSnapshot, SNAPSHOT_URL, ScanSnapshot};

/// The engine an environment's runs execute on.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// DataFusion in this process.
    Embedded,
    /// A Ballista cluster, through its scheduler.
    #[cfg(feature = "ballista")]
    Ballista(crate::project::BallistaEngine),
}

impl Backend {
    /// The backend `env` names; a cluster in a build without Ballista is a usage error.
    pub(crate) fn of(env: &Environment) -> Result<Backend> {
        match &env.engine {
            RunEngine::Embedded => Ok(Backend::Embedded),
            #[cfg(feature = "ballista")]
            RunEngine::Ballista(b) => Ok(Backend::Ballista(b.clone())),
            #[cfg(not(feature = "ballista"))]
            RunEngine::Ballista(b) => Err(crate::error::SluiceError::Usage(format!(
                "environment `{}` runs on the Ballista cluster {}, but this build has no Ballista support: rebuild with `--features ballista`",
                env.name, b.url
            ))),
        }
    }

    /// Whether runs go to a cluster (whose executors cannot read this process's memory).
    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self, Backend::Embedded)
    }

    /// A context for one run: embedded (see `local_context`), or a Ballista client
    /// session.
    pub(crate) async fn context(
        &self,
        env: &Environment,
        config: SessionConfig,
        runtime: &RuntimeEnv,
    ) -> Result<(SessionContext, Arc<ScanSnapshot>)> {
        match self {
            Backend::Embedded => {
                let _ = env;
                local_context(config, runtime)
            }
            #[cfg(feature = "ballista")]
            Backend::Ballista(engine) => {
                let ctx = super::ballista::remote_context(env, engine, config).await?;
                Ok((ctx, Arc::new(ScanSnapshot::default())))
            }
        }
    }

    /// Registers one source on the backend.
    pub(crate) async fn register_source(
        &self,
        ctx: &SessionContext,
        env: &Environment,
        def: &SourceDef,
        listing: &SourceListing,
        sampling: SourceSampling,
        snapshot: &Arc<ScanSnapshot>,
        units: bool,
        heavy: Option<Arc<crate::scan::key::HeavyKeys>>,
    ) -> Result<SourceScan> {
        match self {
            Backend::Embedded => {
                register_source(
                    ctx, &env.name, def, listing, sampling, snapshot, units, heavy,
                )
                .await
            }
            #[cfg(feature = "ballista")]
            Backend::Ballista(engine) => {
                super::ballista::register_source(ctx, env, engine, def, listing, sampling)
            }
        }
    }

    /// Starts a plan and returns its output stream (on a cluster, bounded by the
    /// engine's job timeout).
    pub(crate) fn execute_stream(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> std::result::Result<SendableRecordBatchStream, DataFusionError> {
        let stream = execute_stream(plan, ctx.task_ctx())?;
        match self {
            Backend::Embedded => Ok(stream),
            #[cfg(feature = "ballista")]
            Backend::Ballista(engine) => Ok(super::ballista::bounded_stream(engine, stream)),
        }
    }

    /// Runs a plan to completion.
    pub(crate) async fn collect(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: &SessionContext,
    ) -> std::result::Result<Vec<RecordBatch>, DataFusionError> {
        match self {
            Backend::Embedded => collect(plan, ctx.task_ctx()).await,
            #[cfg(feature = "ballista")]
            Backend::Ballista(_) => {
                use futures::TryStreamExt;
                self.execute_stream(plan, ctx)?.try_collect().await
            }
        }
    }
}

/// A context for one run in this process: the environment's memory pool and spill
/// folder, and the snapshot of the files the run's sources read (see
/// `store::snapshot`), which the optimizer rules can read footers from.
pub(crate) fn local_context(
    mut config: SessionConfig,
    runtime: &RuntimeEnv,
) -> Result<(SessionContext, Arc<ScanSnapshot>)> {
    let snapshot = Arc::new(ScanSnapshot::default());
    let mut builder = RuntimeEnvBuilder::new()
        .with_memory_pool(runtime.memory_pool.clone())
        // The snapshot is the listing: DataFusion must not cache one of its own.
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0));
    builder.disk_manager = Some(runtime.disk_manager.clone());
    let run_runtime = builder.build_arc()?;
    let url = url::Url::parse(SNAPSHOT_URL).expect("snapshot URL");
    run_runtime.register_object_store(&url, snapshot.clone());
    config
        .options_mut()
        .extensions
        .insert(RunSnapshot(Some(snapshot.clone())));
    let state = crate::optimizer::settings::session_state(config, run_runtime);
    Ok((SessionContext::new_with_state(state), snapshot))
}
