//! `sluice serve`: an environment's endpoint pipes over HTTP.
//!
//! - `GET /v0/pipes/{name}.{json|ndjson|csv|parquet|arrow}` runs a pipe with its
//!   parameters from the query string (parsed and checked as on the command line, bound
//!   as typed values); `/v0/pipes` lists the endpoints, `/v0/openapi.json` describes
//!   them, `/v0/sql` (off unless enabled; admin tokens; read-only) runs a query,
//!   `/health` and `/metrics` (Prometheus) tell how the server is.
//! - Tokens are the environment's own (`tokens`); requests without one get 401 unless
//!   the environment allows anonymous reads.
//! - Each query runs under the environment's timeout, row and byte limits, and a cap
//!   on queries at once (one more is refused with 429, never queued). Memory is the
//!   environment's DataFusion memory pool.
//! - A protected environment serves its deployed versions, read at each request, so a
//!   promotion or rollback is served at once without a restart.
//! - Every pipe call appends a record to `_sluice/stats/` (see `stats`), off the
//!   request path.
//! - `/ui/` is the web console (`console`): read-only pages for admin tokens.

pub mod console;
mod encode;
mod metrics;
mod openapi;
pub mod tokens;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use encode::FORMATS;
use metrics::Metrics;
use tokens::{Scope, TokenRecord, TokenStore};

use sluice_engine::error::{Result, SluiceError};
use sluice_engine::project::sampling::SampleOverride;
use sluice_engine::project::{Pipe, Project, ServeSettings};
use sluice_engine::session::{EnvSession, RunOptions, RunOutput};
use sluice_engine::stats::{RunRecord, StatsWriter};

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
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sql: false,
            deployed: false,
            stats_every: Duration::from_secs(2),
        }
    }
}

/// An HTTP error: its status and a message naming what is at fault. The body is
/// `{"error": "...", "status": N}`.
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

struct AppState {
    project: Arc<Project>,
    session: EnvSession,
    settings: ServeSettings,
    sql: bool,
    deployed: bool,
    tokens: TokenStore,
    slots: Arc<Semaphore>,
    metrics: Metrics,
    stats: Arc<StatsWriter>,
}

/// A bound server, ready to run.
pub struct Server {
    state: Arc<AppState>,
    console: Arc<console::Console>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Opens the environment and binds the address; fails (naming the address) if it
    /// is taken.
    pub async fn bind(project: Arc<Project>, env: &str, options: ServeOptions) -> Result<Server> {
        let session = EnvSession::open(project.clone(), env, &SampleOverride::default())?;
        let store = Arc::new(sluice_engine::store::Store::open(session.environment())?);
        store.check().await?;
        let settings = session.environment().serve.clone();
        let listener = tokio::net::TcpListener::bind(options.bind)
            .await
            .map_err(|e| SluiceError::Usage(format!("cannot listen on {}: {e}", options.bind)))?;
        let deployed = options.deployed || session.environment().protected;
        let console = Arc::new(console::Console::new(project.clone(), env, store.clone())?);
        let state = Arc::new(AppState {
            project,
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            sql: options.sql || settings.sql,
            deployed,
            tokens: TokenStore::new(store.clone()),
            metrics: Metrics::default(),
            stats: StatsWriter::start(store, options.stats_every),
            settings,
            session,
        });
        Ok(Server {
            state,
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
        let app = router(self.state).merge(console::router(self.console));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        state.stats.close().await;
        served.map_err(|e| SluiceError::Usage(format!("server failed: {e}")))
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
        .with_state(state)
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

    /// The caller's token record (`None`: an anonymous call the environment allows),
    /// or 401.
    async fn authenticate(
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
        match self.tokens.verify(&token).await? {
            Some(record) => Ok(Some(record)),
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

    fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            self.metrics.rejected_capacity.fetch_add(1, Ordering::Relaxed);
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

    /// The endpoint pipe `name` as this server runs it, or 404.
    async fn endpoint(&self, name: &str) -> Result<Pipe, ApiError> {
        let pipe = match self.session.resolve_pipe(name, self.deployed).await {
            Ok(p) => p,
            Err(SluiceError::UnknownPipe { .. }) => {
                return Err(ApiError::new(404, format!("no pipe `{name}`")));
            }
            Err(SluiceError::Usage(m)) => return Err(ApiError::new(404, m)),
            Err(e) => return Err(e.into()),
        };
        if !pipe.endpoint {
            return Err(ApiError::new(
                404,
                format!("pipe `{name}` is not an endpoint (set `endpoint = true` in its file)"),
            ));
        }
        Ok(pipe)
    }

    /// The names of the pipes this server could serve.
    async fn pipe_names(&self) -> Result<BTreeSet<String>, ApiError> {
        if self.deployed {
            Ok(self
                .session
                .deployments()
                .live()
                .await?
                .into_keys()
                .collect())
        } else {
            Ok(self.project.pipes.keys().cloned().collect())
        }
    }

    async fn endpoints(&self) -> Result<Vec<Pipe>, ApiError> {
        let mut pipes = Vec::new();
        for name in self.pipe_names().await? {
            match self.endpoint(&name).await {
                Ok(p) => pipes.push(p),
                Err(e) if e.status == StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pipes)
    }

    /// The endpoints the caller's token may call (all of them for anonymous reads).
    async fn visible_endpoints(
        &self,
        headers: &HeaderMap,
        raw_query: Option<&str>,
    ) -> Result<Vec<Pipe>, ApiError> {
        let (_, token) = query_pairs(raw_query);
        let caller = self.authenticate(headers, token).await?;
        Ok(self
            .endpoints()
            .await?
            .into_iter()
            .filter(|p| caller.as_ref().is_none_or(|t| t.may_call(&p.name)))
            .collect())
    }

    /// Runs under the environment's timeout and row limit.
    async fn run_limited<F>(&self, what: &str, run: F) -> Result<RunOutput, ApiError>
    where
        F: Future<Output = Result<RunOutput>>,
    {
        let timeout = self.settings.timeout;
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let out = tokio::time::timeout(timeout, run).await;
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let out = match out {
            Err(_) => {
                self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
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

    fn respond(&self, what: &str, format: &str, out: &RunOutput) -> Result<Response, ApiError> {
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
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encode::content_type(format)),
        );
        Ok(response)
    }
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.other_request("/health", 200);
    axum::Json(json!({
        "status": "ok",
        "env": st.env(),
        "deployed": st.deployed,
        "queries_in_flight": st.metrics.in_flight.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    let text = st
        .metrics
        .render(st.env(), st.stats.dropped(), st.stats.written());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn list_pipes(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let pipes: Vec<serde_json::Value> = st
            .visible_endpoints(&headers, raw.as_deref())
            .await?
            .into_iter()
            .map(|p| {
                let params: Vec<serde_json::Value> = p
                    .params
                    .values()
                    .map(|param| {
                        json!({
                            "name": param.name,
                            "type": param.ty.name(),
                            "required": param.required && param.default.is_none(),
                            "default": param.default.as_ref().map(openapi::value_json),
                            "description": param.description,
                        })
                    })
                    .collect();
                json!({
                    "name": p.name,
                    "description": p.description,
                    "version": sluice_engine::stats::pipe_version(&p),
                    "parameters": params,
                    "formats": FORMATS,
                    "url": format!("/v0/pipes/{}.json", p.name),
                })
            })
            .collect();
        Ok::<_, ApiError>(axum::Json(json!({"env": st.env(), "pipes": pipes})).into_response())
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
        let pipes = st.visible_endpoints(&headers, raw.as_deref()).await?;
        Ok::<_, ApiError>(
            axum::Json(openapi::document(&st.project.name, st.env(), &pipes)).into_response(),
        )
    }
    .await;
    finish_other(&st, "/v0/openapi.json", result)
}

fn finish_other(st: &AppState, route: &str, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(|e| e.into_response());
    st.metrics.other_request(route, response.status().as_u16());
    response
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
    let mut pipe_def: Option<Pipe> = None;
    let result: Result<(Response, RunOutput), ApiError> = async {
        if !FORMATS.contains(&format.as_str()) {
            return Err(ApiError::new(
                404,
                format!(
                    "unknown format `{format}` in `/v0/pipes/{file}` (use {})",
                    FORMATS.join(", ")
                ),
            ));
        }
        caller = st.authenticate(&headers, token).await?;
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
        let _slot = st.slot()?;
        let pipe = st.endpoint(&name).await?;
        pipe_def = Some(pipe.clone());
        let what = format!("pipe `{name}`");
        let options = RunOptions {
            // One row over the limit is enough to refuse the result.
            limit: Some(st.settings.max_rows.saturating_add(1) as usize),
            ..Default::default()
        };
        let out = st
            .run_limited(&what, st.session.run_pipe_def(&pipe, &given, &options))
            .await?;
        let response = st.respond(&what, &format, &out)?;
        Ok((response, out))
    }
    .await;
    let token_name = caller.map(|t| t.name);
    match result {
        Ok((response, out)) => {
            let pipe = pipe_def.as_ref().expect("a run has its pipe");
            st.metrics.pipe_request(
                &name,
                200,
                started.elapsed(),
                out.report.rows_scanned(),
                out.report.bytes_scanned(),
            );
            st.stats.record(
                RunRecord::finished(pipe, "http", started_at, &given, &out.report)
                    .with_token(token_name),
            );
            response
        }
        Err(e) => {
            let status = e.status.as_u16();
            st.metrics
                .pipe_request(&name, status, started.elapsed(), 0, 0);
            // Calls of pipes that exist are recorded, failed ones too; noise (unknown
            // pipes, bad tokens) is only counted.
            if let Some(pipe) = &pipe_def {
                let kind = match status {
                    408 => "timeout",
                    429 | 503 => "rejected",
                    _ => "error",
                };
                st.stats.record(
                    RunRecord::failed(
                        st.env(),
                        &pipe.name,
                        Some(sluice_engine::stats::pipe_version(pipe)),
                        "http",
                        started_at,
                        &given,
                        kind,
                        e.message.clone(),
                    )
                    .with_token(token_name),
                );
            }
            e.into_response()
        }
    }
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
    run_sql(st, headers, token, sql, format).await
}

async fn sql_post(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (pairs, token) = query_pairs(raw.as_deref());
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.to_ascii_lowercase());
    run_sql(st, headers, token, Some(body), format).await
}

async fn run_sql(
    st: Arc<AppState>,
    headers: HeaderMap,
    token: Option<String>,
    sql: Option<String>,
    format: Option<String>,
) -> Response {
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
        let caller = st.authenticate(&headers, token).await?;
        match &caller {
            Some(t) if t.scope == Scope::Admin => {}
            Some(t) => {
                return Err(ApiError::new(
                    403,
                    format!("/v0/sql needs an admin token; token `{}` is `{}`", t.name, t.scope),
                ));
            }
            None => {
                return Err(ApiError::new(
                    401,
                    "/v0/sql needs an admin token, even where anonymous reads are allowed",
                ));
            }
        }
        let format = format.unwrap_or_else(|| "json".into());
        if !FORMATS.contains(&format.as_str()) {
            return Err(ApiError::new(
                400,
                format!("unknown format `{format}` (use {})", FORMATS.join(", ")),
            ));
        }
        let sql = sql
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
        st.respond("the query", &format, &out)
    }
    .await;
    finish_other(&st, "/v0/sql", result)
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
