//! Runs on an Apache DataFusion Ballista cluster (`--features ballista`).
//!
//! An environment with `engine = { kind = "ballista", url = "df://host:50050" }` plans its
//! SQL here, as the embedded engine does, and hands the plan to the cluster through
//! Ballista's `SessionContext::remote_with_state`: the scheduler plans it physically and
//! its executors read the store themselves.
//!
//! Nothing of Sluice's own scan machinery travels to the executors (they run stock
//! Ballista): a source is registered as DataFusion's plain `ListingTable` over the real
//! URLs of the files Sluice listed (`file://…`, `s3://…`), so a run still reads exactly the
//! files it listed — per file, or per partition folder for hive-partitioned sources.
//! Sampling that needs Sluice's scan (`system`, `bernoulli`, `rows` access plans) or its
//! key-hash function (`key`) is refused with an error naming it, never run locally.
//!
//! Every run is bounded: the scheduler must accept a connection within the engine's
//! `connect_timeout`, and the job must finish within its `timeout`.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{ErrorClass, Result, SluiceError, df_message};
use crate::project::sampling::{SamplePolicy, SourceSampling};
use crate::project::{BallistaEngine, Environment, SourceDef};
use crate::scan::SourceScan;
use crate::store::{SourceFile, SourceListing, StoreLocation};

/// The Ballista setting bounding the client's gRPC connection to the scheduler.
const CONNECT_TIMEOUT_KEY: &str = "ballista.client.grpc_connect_timeout_seconds";

fn engine_error(env: &Environment, engine: &BallistaEngine, message: String) -> SluiceError {
    SluiceError::Engine {
        env: env.name.clone(),
        url: engine.url.clone(),
        message,
        class: ErrorClass::Run,
    }
}

/// A session whose queries run on the environment's Ballista cluster, configured with
/// the environment's DataFusion settings and its store's S3 settings (which the cluster's
/// stock scheduler and executors read as `s3.*` options). Fails within the engine's
/// `connect_timeout` when the scheduler cannot be reached.
pub(crate) async fn remote_context(
    env: &Environment,
    engine: &BallistaEngine,
    config: SessionConfig,
) -> Result<SessionContext> {
    reach_scheduler(env, engine).await?;
    let mut config = config.upgrade_for_ballista();
    let secs = engine.connect_timeout.as_secs().max(1);
    config
        .options_mut()
        .set(CONNECT_TIMEOUT_KEY, &secs.to_string())?;
    if let StoreLocation::Url(url) = &env.location
        && matches!(url.scheme(), "s3" | "s3a")
    {
        let options = cluster_s3_options(env)?;
        config = config.with_option_extension(options);
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    let url = format!("df://{}:{}", engine.host, engine.port);
    SessionContext::remote_with_state(&url, state)
        .await
        .map_err(|e| engine_error(env, engine, df_message(&e)))
}

/// Connects to the scheduler's port once, so an unreachable scheduler is an error that
/// names the environment and URL within `connect_timeout`, before anything is planned.
async fn reach_scheduler(env: &Environment, engine: &BallistaEngine) -> Result<()> {
    let addr = (engine.host.as_str(), engine.port);
    match tokio::time::timeout(engine.connect_timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(engine_error(
            env,
            engine,
            format!("cannot reach the Ballista scheduler: {e}"),
        )),
        Err(_) => Err(engine_error(
            env,
            engine,
            format!(
                "cannot reach the Ballista scheduler: no connection within {} (the engine's `connect_timeout`)",
                human_duration(engine.connect_timeout)
            ),
        )),
    }
}

fn human_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.as_secs() % 60 == 0 && d.as_secs() >= 60 {
        format!("{} min", d.as_secs() / 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The `s3.*` options of Ballista's stock scheduler and executors (their `S3Options`
/// extension): sent with every job, so the cluster reads the store with the
/// environment's endpoint, region and credentials. Sluice holds them in an extension of
/// its own with the same prefix; a cluster without S3 support ignores them.
#[derive(Debug, Clone, Default)]
struct ClusterS3Options {
    values: BTreeMap<String, String>,
}

impl ExtensionOptions for ClusterS3Options {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        self.values.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        self.values
            .iter()
            .map(|(k, v)| ConfigEntry {
                key: format!("{}.{k}", Self::PREFIX),
                value: Some(v.clone()),
                description: "an S3 setting of the environment's store, for the Ballista cluster",
            })
            .collect()
    }
}

impl ConfigExtension for ClusterS3Options {
    const PREFIX: &'static str = "s3";
}

/// Maps the environment's storage settings (object_store keys, secrets read from the
/// variables `from_env` names) to the cluster's `s3.*` options. Settings the cluster has
/// no option for (timeouts, say) are left to the executors' own configuration.
fn cluster_s3_options(env: &Environment) -> Result<ClusterS3Options> {
    use object_store::ClientConfigKey;
    use object_store::aws::AmazonS3ConfigKey;
    use std::str::FromStr;
    let values = crate::store::open::resolved_settings(&env.storage).map_err(|message| {
        SluiceError::StorageConfig {
            env: env.name.clone(),
            url: env.location.to_string(),
            message,
        }
    })?;
    let mut options = ClusterS3Options::default();
    for (key, value) in values {
        let name = match AmazonS3ConfigKey::from_str(&key) {
            Ok(AmazonS3ConfigKey::AccessKeyId) => "access_key_id",
            Ok(AmazonS3ConfigKey::SecretAccessKey) => "secret_access_key",
            Ok(AmazonS3ConfigKey::Token) => "session_token",
            Ok(AmazonS3ConfigKey::Region) => "region",
            Ok(AmazonS3ConfigKey::Endpoint) => "endpoint",
            Ok(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)) => "allow_http",
            _ => {
                tracing::debug!(env = %env.name, %key, "storage setting not sent to the Ballista cluster");
                continue;
            }
        };
        options.values.insert(name.to_string(), value);
    }
    Ok(options)
}

/// Registers a source for a run on the cluster: a plain listing table over the real URLs
/// of the files Sluice listed. Refuses a sampled read, which needs Sluice's own scan.
pub(crate) fn register_source(
    ctx: &SessionContext,
    env: &Environment,
    engine: &BallistaEngine,
    def: &SourceDef,
    listing: &SourceListing,
    sampling: SourceSampling,
) -> Result<SourceScan> {
    let schema = listing.table_schema();
    let mut scan = SourceScan {
        source: def.name.clone(),
        location_prefix: listing.location.clone(),
        sampling: sampling.clone(),
        full_reason: None,
        note: None,
        rows_total: listing.rows(),
        rows_selected: None,
        key_counters: None,
        built: listing.built_sample.clone(),
        key_column: None,
        heavy_keys: None,
        unit_rows: None,
    };
    match &sampling {
        SourceSampling::Full => {
            if def.sample == Some(SourceSampling::Full) {
                scan.full_reason = Some("source setting".into());
            }
        }
        SourceSampling::Sampled(SamplePolicy::Key { key, .. })
            if def.sample_key.is_none()
                && !key
                    .as_ref()
                    .is_some_and(|k| schema.field_with_name(k).is_ok()) =>
        {
            // As embedded: a source without the key column is read in full.
            scan.sampling = SourceSampling::Full;
            scan.full_reason = Some(match key {
                Some(k) => format!("no `{k}` column and no sample_key"),
                None => "no sample_key".into(),
            });
        }
        SourceSampling::Sampled(policy) => {
            let why = match policy {
                SamplePolicy::Key { .. } => "it filters rows with Sluice's key-hash function",
                _ => "it reads through Sluice's own Parquet scan (row-group and page access plans)",
            };
            return Err(SluiceError::Engine {
                env: env.name.clone(),
                url: engine.url.clone(),
                message: format!(
                    "source `{}`: `{}` sampling ({policy}) cannot run on a Ballista cluster: {why}, which Ballista's executors do not have. Run with `--full`, or sample in an environment without `engine`",
                    def.name,
                    policy.method()
                ),
                class: ErrorClass::Usage,
            });
        }
    }
    let err = |message: String| SluiceError::Source {
        env: env.name.clone(),
        source_name: def.name.clone(),
        message,
    };
    let urls = table_urls(listing).map_err(err)?;
    let table = listing_table(def, listing, urls).map_err(|e| err(df_message(&e)))?;
    ctx.register_table(def.name.as_str(), table)?;
    Ok(scan)
}

/// The URL the cluster reads a file at: `file:///…` for a local or shared folder,
/// `s3://bucket/…` for a bucket.
fn file_url(listing: &SourceListing, file: &SourceFile) -> String {
    match url::Url::parse(&listing.location) {
        Ok(u) if u.has_host() => {
            let scheme = if u.scheme() == "s3a" {
                "s3"
            } else {
                u.scheme()
            };
            format!(
                "{scheme}://{}/{}",
                u.host_str().unwrap_or_default(),
                file.meta.location
            )
        }
        _ => format!("file:///{}", file.meta.location),
    }
}

/// The table paths of a source: each of its files; for a hive-partitioned source, each
/// folder its `k=v/` folders start under (DataFusion reads partition values relative to
/// the table path).
fn table_urls(listing: &SourceListing) -> Result<Vec<ListingTableUrl>, String> {
    let mut urls: Vec<String> = Vec::new();
    for file in &listing.files {
        let url = file_url(listing, file);
        let url = if listing.partitions.is_empty() {
            url
        } else {
            let parts: Vec<&str> = url.split('/').collect();
            let first_partition = parts
                .iter()
                .position(|p| {
                    listing
                        .partitions
                        .iter()
                        .any(|c| p.starts_with(&format!("{c}=")))
                })
                .unwrap_or(parts.len() - 1);
            format!("{}/", parts[..first_partition].join("/"))
        };
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls.iter()
        .map(|u| ListingTableUrl::parse(u).map_err(|e| format!("{u}: {e}")))
        .collect()
}

fn listing_table(
    def: &SourceDef,
    listing: &SourceListing,
    urls: Vec<ListingTableUrl>,
) -> DfResult<Arc<ListingTable>> {
    let options = crate::scan::listing_options(
        def,
        listing,
        &listing.table_schema(),
        ParquetFormat::default(),
    )?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(listing.file_schema.clone());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A run's output stream from the cluster, bounded by the engine's job `timeout`, with
/// the cluster's errors naming it.
pub(crate) fn bounded_stream(
    engine: &BallistaEngine,
    stream: SendableRecordBatchStream,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let deadline = tokio::time::Instant::now() + engine.job_timeout;
    let url = engine.url.clone();
    let timeout = engine.job_timeout;
    let stream = futures::stream::unfold(Some(stream), move |state| {
        let url = url.clone();
        async move {
            let mut stream = state?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(batch))) => Some((Ok(batch), Some(stream))),
                Ok(Some(Err(e))) => Some((
                    Err(DataFusionError::Execution(format!(
                        "on the Ballista cluster {url}: {}",
                        df_message(&e)
                    ))),
                    None,
                )),
                Ok(None) => None,
                Err(_) => Some((
                    Err(DataFusionError::Execution(format!(
                        "the Ballista job on {url} did not finish within {} (the engine's `timeout`): its executors may be lost, or none is available",
                        human_duration(timeout)
                    ))),
                    None,
                )),
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

type Stopper = tokio::sync::oneshot::Sender<()>;

/// One part of a local cluster: a thread running its own tokio runtime, so stopping
/// it ends every task of that part at once (as if its process died).
struct Part {
    stop: Option<Stopper>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Part {
    fn spawn<T, F, Fut>(name: String, start: F) -> Result<(Part, T), String>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(name)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    match start().await {
                        Ok(v) => {
                            let _ = ready_tx.send(Ok(v));
                            let _ = stop_rx.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_background();
            })
            .map_err(|e| e.to_string())?;
        let value = ready_rx
            .recv()
            .map_err(|_| "the cluster thread ended before it started".to_string())??;
        Ok((
            Part {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            value,
        ))
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A Ballista cluster inside this process: a scheduler and executors started as
/// Ballista's standalone mode starts them, each on its own runtime. For tests,
/// benchmarks and trying the engine on one machine; it reads local folders only.
/// A production cluster runs Ballista's `ballista-scheduler` and `ballista-executor`.
pub struct LocalCluster {
    port: u16,
    scheduler: Part,
    executors: Vec<Part>,
}

impl LocalCluster {
    /// Starts a scheduler on a free port of localhost and `executors` executors, each
    /// running up to `slots` tasks at once.
    pub fn start(executors: usize, slots: usize) -> Result<LocalCluster> {
        let fail =
            |m: String| SluiceError::Usage(format!("starting a local Ballista cluster: {m}"));
        let (scheduler, port) = Part::spawn("ballista-scheduler".into(), || async {
            ballista_scheduler::standalone::new_standalone_scheduler()
                .await
                .map(|addr| addr.port())
                .map_err(|e| e.to_string())
        })
        .map_err(fail)?;
        let mut cluster = LocalCluster {
            port,
            scheduler,
            executors: Vec::new(),
        };
        for i in 0..executors {
            let (part, ()) = Part::spawn(format!("ballista-executor-{i}"), move || async move {
                use ballista_core::serde::BallistaCodec;
                use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
                let url = format!("http://localhost:{port}");
                let mut attempts = 0;
                let scheduler = loop {
                    match SchedulerGrpcClient::connect(url.clone()).await {
                        Ok(s) => break s,
                        Err(e) if attempts >= 50 => return Err(e.to_string()),
                        Err(_) => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
                ballista_executor::new_standalone_executor(
                    scheduler,
                    slots.max(1),
                    BallistaCodec::default(),
                )
                .await
                .map_err(|e| e.to_string())
            })
            .map_err(fail)?;
            cluster.executors.push(part);
        }
        Ok(cluster)
    }

    /// The scheduler's URL, for `engine = { kind = "ballista", url = … }`.
    pub fn url(&self) -> String {
        format!("df://localhost:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops executor `i` at once, as if its process died: its tasks and its
    /// connection to the scheduler end without a word.
    pub fn kill_executor(&mut self, i: usize) {
        if let Some(part) = self.executors.get_mut(i) {
            part.stop();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for e in &mut self.executors {
            e.stop();
        }
        self.scheduler.stop();
    }
}
