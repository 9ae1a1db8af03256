//! The web console, `/ui`: read-only pages of a project for people — its environments
//! side by side, a pipe (definition, live versions and their diff, history), its
//! monitoring over time from `sluice.pipe_stats`, and staging's estimates against
//! production. Server-rendered HTML with inline SVG charts; no JavaScript, nothing
//! fetched but the embedded style sheet.
//!
//! Access: an admin token of the environment the console was started for, as
//! `Authorization: Bearer`, or once as `?token=` (or the sign-in form), which sets an
//! HttpOnly, SameSite=Strict cookie and redirects to the URL without it. Without a
//! token only where the environment allows anonymous reads.

mod auth;
mod fidelity;
mod layout;
mod monitor;
mod overview;
mod pipe;
pub mod svg;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use sluice_engine::error::{Result, SluiceError};
use sluice_engine::project::Project;
use sluice_engine::store::Store;

use crate::tokens::TokenStore;

/// Where the console is mounted.
pub const PREFIX: &str = "/ui";

/// The console of a project, admitting the tokens of one environment.
pub struct Console {
    project: Arc<Project>,
    /// The environment whose tokens (and anonymous setting) admit.
    env: String,
    anonymous: bool,
    tokens: TokenStore,
}

impl Console {
    /// The console admitting `env`'s admin tokens, read from its opened `store`.
    pub fn new(project: Arc<Project>, env: &str, store: Arc<Store>) -> Result<Console> {
        let anonymous = project.environment(env)?.serve.anonymous;
        Ok(Console {
            project,
            env: env.to_string(),
            anonymous,
            tokens: TokenStore::new(store),
        })
    }

    /// The project as its files are now: the working copy a page shows is the one on
    /// disk, not the one the server started with (access settings are the latter's).
    fn project(&self) -> Result<Arc<Project>> {
        Project::load(&self.project.root).map(Arc::new)
    }

    /// The name of the cookie holding this console's token: one per environment, since
    /// cookies do not tell the ports of one host apart.
    fn cookie_name(&self) -> String {
        let env: String = self
            .env
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("sluice_console_{env}")
    }
}

/// The console's routes, all under `/ui`.
pub fn router(console: Arc<Console>) -> Router {
    let pages = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/pipes/{name}", get(pipe::page))
        .route("/ui/monitor", get(monitor::page))
        .route("/ui/fidelity", get(fidelity::page))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_admin,
        ));
    Router::new()
        .merge(pages)
        .route("/ui/console.css", get(stylesheet))
        .route("/ui/login", post(auth::login))
        .with_state(console)
}

/// The router of `sluice ui`: the console, and `/` sending browsers to it.
pub fn standalone(console: Arc<Console>) -> Router {
    router(console)
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .fallback(|| async {
            layout::PageError::new(404, "no such page: the console is under /ui/")
        })
}

/// `sluice ui`: the console on its own, without the endpoints.
pub struct ConsoleServer {
    console: Arc<Console>,
    listener: tokio::net::TcpListener,
}

impl ConsoleServer {
    /// Opens the environment whose tokens admit and binds the address; fails (naming
    /// the address) if it is taken.
    pub async fn bind(project: Arc<Project>, env: &str, bind: SocketAddr) -> Result<ConsoleServer> {
        let store = Arc::new(Store::open(project.environment(env)?)?);
        store.check().await?;
        let console = Arc::new(Console::new(project, env, store)?);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| SluiceError::Usage(format!("cannot listen on {bind}: {e}")))?;
        Ok(ConsoleServer { console, listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        axum::serve(self.listener, standalone(self.console))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| SluiceError::Usage(format!("console failed: {e}")))
    }
}

async fn stylesheet() -> Response {
    let mut r = layout::CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// A project's environments in the order of the workflow: those open to edits first,
/// the protected ones after, each by name.
fn environments(project: &Project) -> Vec<&sluice_engine::Environment> {
    let mut envs: Vec<_> = project.environments.values().collect();
    envs.sort_by_key(|e| (e.protected, e.name.clone()));
    envs
}

/// A small query string: its pairs, decoded.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name` in a query, if not empty.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// A URL of the console with a query string, each value encoded.
fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        format!("{PREFIX}{path}")
    } else {
        format!("{PREFIX}{path}?{q}")
    }
}

/// The path of a pipe's page.
fn pipe_url(name: &str) -> String {
    let mut path = format!("{PREFIX}/pipes/");
    path.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
    path
}
