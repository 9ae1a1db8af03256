//! `sluice serve`: an environment's endpoint pipes over HTTP.
//!
//! - `GET /v0/pipes/{name}.{json|ndjson|csv|parquet|arrow}` runs a pipe with its
//!   parameters from the query string (parsed and checked as on the command line, bound
//!   as typed values); `/v0/pipes` lists the endpoints (parameters with their
//!   constraints, output columns), `/v0/openapi.json` describes them, `/v0/sql` (off
//!   unless enabled; admin tokens; read-only) runs a query, `/health` tells the server
//!   is up and `/metrics` (Prometheus; admin tokens) how it is doing.
//! - Tokens are the environment's own (`tokens`); requests without one get 401 unless
//!   the environment allows anonymous reads.
//! - Each query runs under the environment's timeout, row and byte limits, and a cap
//!   on queries at once (one more is refused with 429, never queued). Memory is the
//!   environment's DataFusion memory pool. Connections are capped, timed and their
//!   requests bounded in size (`conn`).
//! - Requests read no state from the store: the tokens, the pipes served (in a
//!   protected environment, its deployed versions) and the sources' listings are kept
//!   in memory and refreshed every `serve.refresh` (1 s) off the request path, so a
//!   promotion, rollback, revocation or new data is served within that time.
//! - Pipes that set `cache` answer repeated calls from a kept result (`cache`).
//! - Every pipe run appends a record to `_sluice/stats/` (see `stats`), off the
//!   request path; every request writes one access-log line (`access`).
//! - `/ui/` is the web console (`console`): read-only pages for admin tokens.

mod access;
mod cache;
mod conn;
pub mod console;
mod encode;
mod metrics;
mod openapi;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use access::LogFormat;
use access::{AccessInfo, AccessLine};
use cache::{CacheKey, ResultCache};
pub use encode::FORMATS;
use metrics::{Metrics, UNKNOWN_PIPE};
use tokens::{Scope, TokenRecord, TokenStore};

use sluice_engine::error::{Result, SluiceError};
use sluice_engine::project::sampling::SampleOverride;
use sluice_engine::project::{Pipe, Project, ServeSettings};
use sluice_engine::session::{EnvSession, RunOptions, RunOutput};
use sluice_engine::stats::{RunRecord, StatsWriter};
use sluice_engine::store::Store;

/// The longest request target (path and query string) served; longer ones get 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most bytes of request headers served; more get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How a server is started, beyond the environment's `[serve]` settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// Serve `/v0/sql` even if the environment does not enable it.
    pub sql: bool,
    /// Serve deployed versions even in an environment that is not protected.
    pub deployed: bool,
    /// How often run records are written to the store.
    pub stats_every: Duration,
    /// The access log's format (or none).
    pub log_format: LogFormat,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sql: false,
            deployed: false,
            stats_every: Duration::from_secs(2),
            log_format: LogFormat::Text,
        }
    }
}

/// An HTTP error: its status and a message naming what is at fault. The body is
/// `{"error": "...", "status": N}`; a 500 says only that the server failed, with an
/// `id` under which the server's log has the full error (which may name its files).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }
}

impl From<SluiceError> for ApiError {
    fn from(e: SluiceError) -> Self {
        ApiError::new(e.http_status(), e.to_string())
    }
}

/// A random id for a failure, to find its full error in the server's log.
fn error_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time still tells failures apart.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (body, id) = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            let id = error_id();
            tracing::error!(error_id = %id, error = %self.message, "request failed");
            (
                json!({
                    "error": format!("the server failed to answer this request; its log has the error under id {id}"),
                    "status": 500,
                    "id": id,
                }),
                Some(id),
            )
        } else {
            (
                json!({"error": self.message, "status": self.status.as_u16()}),
                None,
            )
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(id) = id {
            response.extensions_mut().insert(ErrorId(id));
        }
        response
    }
}

#[derive(Debug, Clone)]
struct ErrorId(String);

/// The pipes a server runs, by name, as it runs them: the working copy, or in a
/// protected environment (or with `--deployed`) the live deployed versions.
#[derive(Debug, Default)]
struct Catalog {
    pipes: BTreeMap<String, (String, Arc<Pipe>)>,
}

impl Catalog {
    fn versions(&self) -> BTreeMap<&str, &str> {
        self.pipes
            .iter()
            .map(|(n, (v, _))| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// What requests read instead of the store; swapped whole by the refresh.
#[derive(Debug, Default)]
struct Known {
    tokens: Vec<TokenRecord>,
    catalog: Catalog,
}

struct AppState {
    project: Arc<Project>,
    session: EnvSession,
    settings: ServeSettings,
    sql: bool,
    deployed: bool,
    tokens: TokenStore,
    known: RwLock<Arc<Known>>,
    /// Bumped by every refresh that finds a change.
    generation: AtomicU64,
    results: ResultCache,
    /// Each endpoint version's output schema (`None`: it does not plan), for the
    /// listing and the OpenAPI document.
    schemas: Mutex<HashMap<(String, String), Option<SchemaRef>>>,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    stats: Arc<StatsWriter>,
    log_format: LogFormat,
}

/// The values `/metrics` reads from the parts of the server that own them.
struct Sampled {
    stats: Arc<StatsWriter>,
    stores: Vec<Arc<Store>>,
    /// Runs that reused a prepared plan (`EnvSession::prepare_plans`).
    prepared: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl std::fmt::Debug for Sampled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sampled")
    }
}

impl metrics::Sampled for Sampled {
    fn stats_records(&self) -> (u64, u64) {
        let (written, failed) = self.stats.written();
        (written, self.stats.dropped() + failed)
    }

    fn store_reads(&self) -> u64 {
        self.stores.iter().map(|s| s.state_reads()).sum()
    }

    fn prepared_runs(&self) -> u64 {
        self.prepared
            .as_ref()
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

/// A bound server, ready to run.
pub struct Server {
    state: Arc<AppState>,
    console: Arc<console::Console>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Opens the environment, reads what it serves (tokens, deployed versions) and
    /// binds the address; fails (naming the address) if it is taken.
    pub async fn bind(project: Arc<Project>, env: &str, options: ServeOptions) -> Result<Server> {
        // Listings and plans kept across requests: a call plans once per pipe version
        // and parameter values, until the store changes.
        let session =
            EnvSession::open(project.clone(), env, &SampleOverride::default())?.prepare_plans();
        let store = Arc::new(Store::open(session.environment())?);
        store.check().await?;
        let settings = session.environment().serve.clone();
        let deployed = options.deployed || session.environment().protected;
        let console = Arc::new(console::Console::new(project.clone(), env, store.clone())?);
        let tokens = TokenStore::new(store.clone());
        let stats = StatsWriter::start(store.clone(), options.stats_every);
        let session_store = session.shared_store();
        let metrics = Arc::new(Metrics::new(
            env,
            Arc::new(Sampled {
                stats: stats.clone(),
                stores: vec![store.clone(), session_store.clone()],
                prepared: session.prepared_runs_counter(),
            }),
        ));
        let mut state = AppState {
            project,
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            sql: options.sql || settings.sql,
            deployed,
            tokens,
            known: RwLock::new(Arc::new(Known::default())),
            generation: AtomicU64::new(0),
            results: ResultCache::new(settings.cache_bytes),
            schemas: Mutex::new(HashMap::new()),
            metrics,
            stats,
            log_format: options.log_format,
            settings,
            session,
        };
        let known = state.read_known(None).await?;
        state.known = RwLock::new(Arc::new(known));
        let listener = tokio::net::TcpListener::bind(options.bind)
            .await
            .map_err(|e| SluiceError::Usage(format!("cannot listen on {}: {e}", options.bind)))?;
        Ok(Server {
            state: Arc::new(state),
            console,
            listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Whether the server runs deployed versions (a protected environment, or asked).
    pub fn serves_deployed(&self) -> bool {
        self.state.deployed
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish and
    /// writes the run records still queued.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let state = self.state.clone();
        let refresher = tokio::spawn(refresh_loop(state.clone()));
        let limits = conn::Limits {
            max_connections: state.settings.max_connections,
            header_timeout: state.settings.header_timeout,
            idle_timeout: state.settings.idle_timeout,
        };
        let app = router(self.state).merge(console::router(self.console));
        conn::serve(self.listener, app, limits, state.metrics.clone(), shutdown).await;
        refresher.abort();
        state.stats.close().await;
        Ok(())
    }
}

/// Looks for changes in the store every `serve.refresh`, off the request path.
async fn refresh_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.settings.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state.refresh().await {
            tracing::warn!(error = %e, "refresh of the store's state failed; serving what was read before");
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v0/pipes", get(list_pipes))
        .route("/v0/pipes/{file}", get(call_pipe))
        .route("/v0/openapi.json", get(openapi_doc))
        .route("/v0/sql", get(sql_get).post(sql_post))
        .fallback(|| async {
            ApiError::new(
                404,
                "no such route (see /v0/pipes, /v0/openapi.json, /v0/sql, /health, /metrics, /ui/)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_and_log,
        ))
        .with_state(state)
}

/// Refuses request targets and headers over their limits, then writes the request's
/// access line.
async fn limit_and_log(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let response = if target > MAX_URI_BYTES {
        ApiError::new(
            414,
            format!(
                "the request target is {target} bytes, over the server's limit of {MAX_URI_BYTES}"
            ),
        )
        .into_response()
    } else if header_bytes > MAX_HEADER_BYTES {
        ApiError::new(
            431,
            format!(
                "the request headers are {header_bytes} bytes, over the server's limit of {MAX_HEADER_BYTES}"
            ),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    if st.log_format != LogFormat::Off {
        let mut info = response
            .extensions()
            .get::<AccessInfo>()
            .cloned()
            .unwrap_or_default();
        if let Some(ErrorId(id)) = response.extensions().get::<ErrorId>() {
            info.error_id = Some(id.clone());
        }
        let line = AccessLine {
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            bytes: response.body().size_hint().exact(),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            info: &info,
        };
        if let Some(text) = line.render(st.log_format) {
            access::write(&text);
        }
    }
    response
}

/// The query string as name/value pairs, with the token (if passed there) taken out.
fn query_pairs(raw: Option<&str>) -> (Vec<(String, String)>, Option<String>) {
    let mut token = None;
    let mut pairs = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "token" {
            token = Some(v.into_owned());
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    (pairs, token)
}

impl AppState {
    fn env(&self) -> &str {
        &self.session.environment().name
    }

    fn known(&self) -> Arc<Known> {
        self.known.read().expect("known state").clone()
    }

    /// Reads the tokens and the pipes served from the store; versions already in
    /// `previous` are not read again (a version's text never changes).
    async fn read_known(&self, previous: Option<&Known>) -> Result<Known> {
        let tokens = self.tokens.list().await?;
        let mut catalog = Catalog::default();
        if self.deployed {
            let state = self.session.deployments();
            for (name, entry) in state.live().await? {
                let kept = previous
                    .and_then(|p| p.catalog.pipes.get(&name))
                    .filter(|(v, _)| *v == entry.version);
                let pipe = match kept {
                    Some((_, p)) => p.clone(),
                    None => Arc::new(state.pipe(&self.project, &name, &entry.version).await?),
                };
                catalog.pipes.insert(name, (entry.version, pipe));
            }
        } else {
            for (name, pipe) in &self.project.pipes {
                catalog.pipes.insert(
                    name.clone(),
                    (
                        sluice_engine::stats::pipe_version(pipe),
                        Arc::new(pipe.clone()),
                    ),
                );
            }
        }
        Ok(Known { tokens, catalog })
    }

    /// Reads the store's state again (tokens, deployments, the sources' listings) and
    /// swaps in what changed; a change empties the result cache.
    async fn refresh(&self) -> Result<()> {
        let mut changed = self.session.refresh_listings().await?;
        let current = self.known();
        let fresh = self.read_known(Some(&current)).await?;
        if fresh.tokens != current.tokens || fresh.catalog.versions() != current.catalog.versions()
        {
            *self.known.write().expect("known state") = Arc::new(fresh);
            changed = true;
        }
        if changed {
            self.generation.fetch_add(1, Ordering::Relaxed);
            self.results.clear();
            self.schemas.lock().expect("schemas").clear();
            tracing::info!(env = %self.env(), "the store changed: serving its new state");
        }
        Ok(())
    }

    /// The caller's token record (`None`: an anonymous call the environment allows),
    /// or 401.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<String>,
    ) -> Result<Option<TokenRecord>, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let Some(token) = bearer.or(query_token) else {
            if self.settings.anonymous {
                return Ok(None);
            }
            return Err(ApiError::new(
                401,
                format!(
                    "environment `{}` needs a token: pass `Authorization: Bearer <token>` or `?token=` (create one with `sluice token create NAME --env {}`)",
                    self.env(),
                    self.env()
                ),
            ));
        };
        let known = self.known();
        match self.tokens.find(&known.tokens, &token) {
            Some(record) => Ok(Some(record.clone())),
            None => {
                let message = match tokens::token_env(&token) {
                    Some(other) if other != self.env() => format!(
                        "the token is one of environment `{other}`, not `{}`: tokens are valid only in their own environment",
                        self.env()
                    ),
                    _ => format!(
                        "the token is not a token of environment `{}` (unknown or revoked)",
                        self.env()
                    ),
                };
                Err(ApiError::new(401, message))
            }
        }
    }

    /// The caller, who must hold an admin token (`what` names what needs it).
    fn authenticate_admin(
        &self,
        headers: &HeaderMap,
        query_token: Option<String>,
        what: &str,
    ) -> Result<TokenRecord, ApiError> {
        let given = query_token.is_some() || headers.contains_key(header::AUTHORIZATION);
        if !given {
            return Err(ApiError::new(
                401,
                format!(
                    "{what} needs an admin token: pass `Authorization: Bearer <token>` or `?token=` (create one with `sluice token create NAME --env {} --scope admin`)",
                    self.env()
                ),
            ));
        }
        match self.authenticate(headers, query_token) {
            Ok(Some(t)) if t.scope == Scope::Admin => Ok(t),
            Ok(Some(t)) => Err(ApiError::new(
                403,
                format!(
                    "{what} needs an admin token; token `{}` is `{}`",
                    t.name, t.scope
                ),
            )),
            Ok(None) => Err(ApiError::new(
                401,
                format!("{what} needs an admin token, even where anonymous reads are allowed"),
            )),
            Err(e) => Err(e),
        }
    }

    fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            self.metrics.rejected_capacity.inc();
            ApiError::new(
                429,
                format!(
                    "environment `{}` is running its maximum of {} queries at once (serve.max_concurrent): retry later",
                    self.env(),
                    self.settings.max_concurrent
                ),
            )
        })
    }

    /// The endpoint pipe `name` as this server runs it (with its version), or 404.
    fn endpoint(&self, name: &str) -> Result<(String, Arc<Pipe>), ApiError> {
        let known = self.known();
        match known.catalog.pipes.get(name) {
            Some((version, pipe)) if pipe.endpoint => Ok((version.clone(), pipe.clone())),
            Some(_) => Err(ApiError::new(
                404,
                format!("pipe `{name}` is not an endpoint (set `endpoint = true` in its file)"),
            )),
            None if self.deployed && self.project.pipes.contains_key(name) => {
                let hint = if self.session.environment().protected {
                    format!(
                        "it runs promoted versions only: sluice promote {name} --from staging --to {}",
                        self.env()
                    )
                } else {
                    format!("deploy it first: sluice deploy {name} --env {}", self.env())
                };
                Err(ApiError::new(
                    404,
                    format!(
                        "pipe `{name}` has no deployed version in environment `{}`: {hint}",
                        self.env()
                    ),
                ))
            }
            None => Err(ApiError::new(404, format!("no pipe `{name}`"))),
        }
    }

    /// The label a call of `name` is counted under: the name if this server serves
    /// such an endpoint, else one label for every other name.
    fn pipe_label(&self, name: &str) -> String {
        match self.known().catalog.pipes.get(name) {
            Some((_, p)) if p.endpoint => name.to_string(),
            _ => UNKNOWN_PIPE.to_string(),
        }
    }

    /// The endpoints the caller's token may call (all of them for anonymous reads).
    fn visible_endpoints(
        &self,
        headers: &HeaderMap,
        raw_query: Option<&str>,
    ) -> Result<(Option<TokenRecord>, Vec<(String, Arc<Pipe>)>), ApiError> {
        let (_, token) = query_pairs(raw_query);
        let caller = self.authenticate(headers, token)?;
        let known = self.known();
        let pipes = known
            .catalog
            .pipes
            .values()
            .filter(|(_, p)| p.endpoint)
            .filter(|(_, p)| caller.as_ref().is_none_or(|t| t.may_call(&p.name)))
            .cloned()
            .collect();
        Ok((caller, pipes))
    }

    /// The output schema of an endpoint's version, planned against the environment's
    /// sources once per version (and again after a change in the store).
    async fn output_schema(&self, version: &str, pipe: &Pipe) -> Option<SchemaRef> {
        let key = (pipe.name.clone(), version.to_string());
        if let Some(s) = self.schemas.lock().expect("schemas").get(&key) {
            return s.clone();
        }
        let schema = match self.session.plan_check(pipe).await {
            Ok(s) => Some(s),
            Err(f) => {
                tracing::debug!(pipe = %pipe.name, error = %f.message, "no output schema");
                None
            }
        };
        self.schemas
            .lock()
            .expect("schemas")
            .insert(key, schema.clone());
        schema
    }

    /// Runs under the environment's timeout and row limit.
    async fn run_limited<F>(&self, what: &str, run: F) -> Result<RunOutput, ApiError>
    where
        F: Future<Output = Result<RunOutput>>,
    {
        let timeout = self.settings.timeout;
        self.metrics.in_flight.inc();
        let out = tokio::time::timeout(timeout, run).await;
        self.metrics.in_flight.dec();
        let out = match out {
            Err(_) => {
                self.metrics.timeouts.inc();
                return Err(ApiError::new(
                    408,
                    format!(
                        "{what} ran longer than environment `{}`'s timeout of {:?} (serve.timeout) and was cancelled",
                        self.env(),
                        timeout
                    ),
                ));
            }
            Ok(r) => r?,
        };
        if out.report.rows_out > self.settings.max_rows {
            return Err(ApiError::new(
                400,
                format!(
                    "{what} returns more than {} rows, environment `{}`'s limit (serve.max_rows): filter it or give it a `limit` parameter",
                    self.settings.max_rows,
                    self.env()
                ),
            ));
        }
        Ok(out)
    }

    /// The encoded body of a run's output, within the environment's byte limit.
    fn encode(&self, what: &str, format: &str, out: &RunOutput) -> Result<Bytes, ApiError> {
        let body = encode::encode(format, &out.schema, &out.batches, &out.report)?;
        if body.len() as u64 > self.settings.max_bytes {
            return Err(ApiError::new(
                400,
                format!(
                    "{what}: the {format} result is {} bytes, over environment `{}`'s limit of {} (serve.max_bytes)",
                    body.len(),
                    self.env(),
                    self.settings.max_bytes
                ),
            ));
        }
        Ok(Bytes::from(body))
    }
}

fn body_response(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn with_info(mut response: Response, info: AccessInfo) -> Response {
    response.extensions_mut().insert(info);
    response
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.other_request("/health", 200);
    axum::Json(json!({
        "status": "ok",
        "env": st.env(),
        "deployed": st.deployed,
    }))
    .into_response()
}

async fn metrics_text(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (_, token) = query_pairs(raw.as_deref());
    let result = st
        .authenticate_admin(&headers, token, "/metrics")
        .map(|caller| {
            with_info(
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    st.metrics.render(),
                )
                    .into_response(),
                AccessInfo {
                    token: Some(caller.name),
                    ..AccessInfo::default()
                },
            )
        });
    finish_other(&st, "/metrics", result)
}

/// A parameter as `/v0/pipes` lists it: its type, default and constraints.
fn param_json(param: &sluice_engine::Param) -> serde_json::Value {
    let mut v = json!({
        "name": param.name,
        "type": param.ty.name(),
        "required": param.required && param.default.is_none(),
        "default": param.default.as_ref().map(openapi::value_json),
        "description": param.description,
    });
    if let Some(m) = &param.min {
        v["min"] = openapi::value_json(m);
    }
    if let Some(m) = &param.max {
        v["max"] = openapi::value_json(m);
    }
    if !param.allowed.is_empty() {
        v["allowed"] = param.allowed.iter().map(openapi::value_json).collect();
    }
    v
}

async fn list_pipes(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let (caller, endpoints) = st.visible_endpoints(&headers, raw.as_deref())?;
        let mut pipes = Vec::new();
        for (version, p) in endpoints {
            let columns = st
                .output_schema(&version, &p)
                .await
                .map(|s| openapi::columns_json(&s));
            pipes.push(json!({
                "name": p.name,
                "description": p.description,
                "version": version,
                "parameters": p.params.values().map(param_json).collect::<Vec<_>>(),
                "columns": columns,
                "cache_seconds": p.cache.map(|d| d.as_secs_f64()),
                "formats": FORMATS,
                "url": format!("/v0/pipes/{}.json", p.name),
            }));
        }
        Ok::<_, ApiError>(with_info(
            axum::Json(json!({"env": st.env(), "pipes": pipes})).into_response(),
            AccessInfo {
                token: caller.map(|t| t.name),
                ..AccessInfo::default()
            },
        ))
    }
    .await;
    finish_other(&st, "/v0/pipes", result)
}

async fn openapi_doc(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let (caller, endpoints) = st.visible_endpoints(&headers, raw.as_deref())?;
        let mut described = Vec::new();
        for (version, p) in endpoints {
            let schema = st.output_schema(&version, &p).await;
            described.push((p, schema));
        }
        Ok::<_, ApiError>(with_info(
            axum::Json(openapi::document(&st.project.name, st.env(), &described)).into_response(),
            AccessInfo {
                token: caller.map(|t| t.name),
                ..AccessInfo::default()
            },
        ))
    }
    .await;
    finish_other(&st, "/v0/openapi.json", result)
}

fn finish_other(
    st: &AppState,
    route: &'static str,
    result: Result<Response, ApiError>,
) -> Response {
    let response = result.unwrap_or_else(|e| e.into_response());
    st.metrics.other_request(route, response.status().as_u16());
    response
}

/// The result cache's key of a call: the bound values of every parameter, in name order.
fn cache_key(
    pipe: &Pipe,
    version: &str,
    format: &str,
    values: &HashMap<String, sluice_engine::ParamValue>,
) -> CacheKey {
    let mut params: Vec<(&String, String)> =
        values.iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
    params.sort();
    CacheKey {
        pipe: pipe.name.clone(),
        version: version.to_string(),
        format: format.to_string(),
        params: params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
    }
}

/// How a call was answered.
enum Answer {
    Ran(RunOutput, Response),
    Cached(Response, u64),
}

async fn call_pipe(
    State(st): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let (name, format) = match file.rsplit_once('.') {
        Some((n, f)) => (n.to_string(), f.to_ascii_lowercase()),
        None => (file.clone(), "json".to_string()),
    };
    let (given, token) = query_pairs(raw.as_deref());
    let mut caller: Option<TokenRecord> = None;
    let mut pipe_def: Option<(String, Arc<Pipe>)> = None;
    let mut cache_state: Option<&'static str> = None;
    let result: Result<Answer, ApiError> = async {
        if !FORMATS.contains(&format.as_str()) {
            return Err(ApiError::new(
                404,
                format!(
                    "unknown format `{format}` in `/v0/pipes/{file}` (use {})",
                    FORMATS.join(", ")
                ),
            ));
        }
        caller = st.authenticate(&headers, token)?;
        if let Some(t) = &caller
            && !t.may_call(&name)
        {
            return Err(ApiError::new(
                403,
                format!(
                    "token `{}` may not call pipe `{name}` (it may call: {})",
                    t.name,
                    t.pipes.join(", ")
                ),
            ));
        }
        let (version, pipe) = st.endpoint(&name)?;
        pipe_def = Some((version.clone(), pipe.clone()));
        let values = st.session.resolve_params(&pipe, &given)?;
        let key = pipe
            .cache
            .map(|ttl| (ttl, cache_key(&pipe, &version, &format, &values)));
        if let Some((_, key)) = &key {
            if let Some(hit) = st.results.get(key) {
                st.metrics.cache_result(true);
                cache_state = Some("hit");
                return Ok(Answer::Cached(
                    body_response(hit.body, hit.content_type),
                    hit.rows_out,
                ));
            }
            st.metrics.cache_result(false);
            cache_state = Some("miss");
        }
        let _slot = st.slot()?;
        let what = format!("pipe `{name}`");
        let options = RunOptions {
            // One row over the limit is enough to refuse the result.
            limit: Some(st.settings.max_rows.saturating_add(1) as usize),
            ..Default::default()
        };
        let generation = st.generation.load(Ordering::Relaxed);
        let out = st
            .run_limited(&what, st.session.run_pipe_def(&pipe, &given, &options))
            .await?;
        let body = st.encode(&what, &format, &out)?;
        let content_type = encode::content_type(&format);
        // A result computed while the store changed may be of the old state: not kept.
        if let Some((ttl, key)) = key
            && st.generation.load(Ordering::Relaxed) == generation
        {
            st.results
                .put(key, body.clone(), content_type, out.report.rows_out, ttl);
        }
        Ok(Answer::Ran(out, body_response(body, content_type)))
    }
    .await;
    let label = st.pipe_label(&name);
    let token_name = caller.map(|t| t.name);
    let info = |rows: Option<u64>| AccessInfo {
        token: token_name.clone(),
        pipe: Some(name.clone()),
        rows,
        cache: cache_state,
        error_id: None,
    };
    let mut response = match result {
        Ok(Answer::Cached(response, rows)) => {
            st.metrics
                .pipe_request(&label, 200, started.elapsed(), 0, 0);
            with_info(response, info(Some(rows)))
        }
        Ok(Answer::Ran(out, response)) => {
            let (_, pipe) = pipe_def.as_ref().expect("a run has its pipe");
            st.metrics.pipe_request(
                &label,
                200,
                started.elapsed(),
                out.report.rows_scanned(),
                out.report.bytes_scanned(),
            );
            st.stats.record(
                RunRecord::finished(pipe, "http", started_at, &given, &out.report)
                    .with_token(token_name.clone()),
            );
            with_info(response, info(Some(out.report.rows_out)))
        }
        Err(e) => {
            let status = e.status.as_u16();
            st.metrics
                .pipe_request(&label, status, started.elapsed(), 0, 0);
            // Calls of pipes that exist are recorded, failed ones too; noise (unknown
            // pipes, bad tokens) is only counted.
            if let Some((version, pipe)) = &pipe_def {
                let kind = match status {
                    408 => "timeout",
                    429 | 503 => "rejected",
                    _ => "error",
                };
                st.stats.record(
                    RunRecord::failed(
                        st.env(),
                        &pipe.name,
                        Some(version.clone()),
                        "http",
                        started_at,
                        &given,
                        kind,
                        e.message.clone(),
                    )
                    .with_token(token_name.clone()),
                );
            }
            with_info(e.into_response(), info(None))
        }
    };
    if let Some(c) = cache_state {
        response
            .headers_mut()
            .insert("x-sluice-cache", HeaderValue::from_static(c));
    }
    response
}

async fn sql_get(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (pairs, token) = query_pairs(raw.as_deref());
    let sql = pairs.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone());
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.to_ascii_lowercase());
    run_sql(st, headers, token, Ok(sql), format).await
}

async fn sql_post(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (pairs, token) = query_pairs(raw.as_deref());
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.to_ascii_lowercase());
    let sql = read_sql_body(&st, &headers, body).await.map(Some);
    run_sql(st, headers, token, sql, format).await
}

/// The body of a `POST /v0/sql`: at most `serve.max_body` bytes (413), received within
/// `serve.header_timeout` (408), UTF-8 (400).
async fn read_sql_body(st: &AppState, headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    let limit = st.settings.max_body;
    let too_large = || {
        ApiError::new(
            413,
            format!(
                "the body of /v0/sql is over environment `{}`'s limit of {limit} bytes (serve.max_body)",
                st.env()
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(
        st.settings.header_timeout,
        axum::body::to_bytes(body, limit as usize),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            408,
            format!(
                "the body of /v0/sql was not received within {:?} (serve.header_timeout)",
                st.settings.header_timeout
            ),
        )
    })?;
    let bytes = read.map_err(|_| too_large())?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(400, "the body of /v0/sql is not UTF-8 text"))
}

async fn run_sql(
    st: Arc<AppState>,
    headers: HeaderMap,
    token: Option<String>,
    sql: Result<Option<String>, ApiError>,
    format: Option<String>,
) -> Response {
    let mut caller_name = None;
    let result = async {
        if !st.sql {
            return Err(ApiError::new(
                404,
                format!(
                    "/v0/sql is not enabled in environment `{}` (set `serve.sql = true` or start with `sluice serve --sql`)",
                    st.env()
                ),
            ));
        }
        let caller = st.authenticate_admin(&headers, token, "/v0/sql")?;
        caller_name = Some(caller.name);
        let format = format.unwrap_or_else(|| "json".into());
        if !FORMATS.contains(&format.as_str()) {
            return Err(ApiError::new(
                400,
                format!("unknown format `{format}` (use {})", FORMATS.join(", ")),
            ));
        }
        let sql = sql?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::new(400, "give the query as `?q=SELECT …` or as the body of a POST"))?;
        let _slot = st.slot()?;
        let options = RunOptions {
            limit: Some(st.settings.max_rows.saturating_add(1) as usize),
            ..Default::default()
        };
        // `query` refuses anything but a query or an EXPLAIN of one (no DDL, DML or COPY).
        let out = st
            .run_limited("the query", st.session.query(&sql, &options))
            .await?;
        let body = st.encode("the query", &format, &out)?;
        Ok(with_info(
            body_response(body, encode::content_type(&format)),
            AccessInfo {
                rows: Some(out.report.rows_out),
                ..AccessInfo::default()
            },
        ))
    }
    .await;
    let mut response = finish_other(&st, "/v0/sql", result);
    let mut info = response
        .extensions()
        .get::<AccessInfo>()
        .cloned()
        .unwrap_or_default();
    info.token = caller_name;
    response.extensions_mut().insert(info);
    response
}

/// Completes on SIGINT or SIGTERM: the signal for a graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
