//! The project model, the bottom layer: every definition parsed from a project's files
//! — `sluice.toml` (environments, stores, sources), `pipes/*.toml` (with their params and
//! `[[check]]`s), `checks/*.sql`, `tests/*.toml` and `.sluice/branches/*.toml` — loaded
//! and validated as a whole, every problem reported with its file, line and column.
//! Nothing here reads data or imports a module above it.

pub mod branch;
pub mod checks;
pub(crate) mod load;
pub mod location;
pub mod params;
pub mod pipe_tests;
pub mod sampling;
pub mod sql;
pub mod system_tables;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, SluiceError};
use checks::{DataCheck, SqlCheck};
use location::{StorageSettings, StoreLocation};
use params::Param;
use sampling::{SamplePolicy, SourceSampling};

pub(crate) use load::is_identifier;
pub use load::{PROJECT_FILE, find_project_root, parse_byte_size, parse_duration};

/// The environment used when none is named.
pub const DEFAULT_ENV: &str = "staging";

#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `sluice.toml`.
    pub root: PathBuf,
    pub name: String,
    pub environments: BTreeMap<String, Environment>,
    /// Branches whose deletion was started and not finished (with when it started):
    /// not usable, only deletable (`sluice branch delete` finishes it).
    pub deleting_branches: BTreeMap<String, (Environment, String)>,
    pub sources: BTreeMap<String, SourceDef>,
    pub pipes: BTreeMap<String, Pipe>,
    /// `checks/*.sql`: queries over the sources that must return no rows.
    pub sql_checks: Vec<SqlCheck>,
}

/// A named workspace: its own store, sampling policy, protection and engine settings.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// The data root as written in `sluice.toml`.
    pub data: String,
    /// Where the store is: a local folder or an object-store URL.
    pub location: StoreLocation,
    /// Credentials and endpoint of the store (`[environments.NAME.storage]`).
    pub storage: StorageSettings,
    pub sample: Option<SamplePolicy>,
    pub protected: bool,
    pub settings: EngineSettings,
    /// Where the environment's runs plan and execute (`engine = { kind = … }`).
    pub engine: RunEngine,
    /// How `sluice serve` serves this environment (`[environments.NAME.serve]`).
    pub serve: ServeSettings,
    /// For a branch: the environment whose store it overlays.
    pub parent: Option<Box<Environment>>,
}

impl Environment {
    pub fn is_branch(&self) -> bool {
        self.parent.is_some()
    }
}

/// DataFusion settings of one environment; `None` keeps DataFusion's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineSettings {
    pub target_partitions: Option<usize>,
    pub batch_size: Option<usize>,
    /// Bytes the environment's queries may hold in memory before spilling or failing.
    pub memory_limit: Option<u64>,
}

/// Where an environment's runs plan and execute.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RunEngine {
    /// DataFusion inside this process (the default).
    #[default]
    Embedded,
    /// An Apache DataFusion Ballista cluster, through its scheduler (`--features ballista`).
    Ballista(BallistaEngine),
}

impl RunEngine {
    /// How `sluice envs` shows it: `embedded` or `ballista df://host:port`.
    pub fn describe(&self) -> String {
        match self {
            RunEngine::Embedded => "embedded".into(),
            RunEngine::Ballista(b) => format!("ballista {}", b.url),
        }
    }
}

/// Limits and access of an environment's HTTP endpoints (`[environments.NAME.serve]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// Requests without a token may call the endpoints (`anonymous = true`).
    pub anonymous: bool,
    /// A request still running after this is cancelled (408).
    pub timeout: std::time::Duration,
    /// Results with more rows are refused (400): add a `limit` parameter to the pipe.
    pub max_rows: u64,
    /// Encoded results larger than this are refused (400).
    pub max_bytes: u64,
    /// Queries running at once; one more is refused at once (429), never queued.
    pub max_concurrent: usize,
    /// `/v0/sql` (read-only, admin tokens only) is served.
    pub sql: bool,
    /// A connection that has sent part of a request head and not the rest within this
    /// is closed.
    pub header_timeout: std::time::Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// The largest body of a `POST /v0/sql` (413 above).
    pub max_body: u64,
    /// How often the server looks for changes in its store (deployments, tokens,
    /// sources); requests never read the store's state themselves.
    pub refresh: std::time::Duration,
    /// The bytes of results the server keeps for pipes that set `cache`.
    pub cache_bytes: u64,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            anonymous: false,
            timeout: std::time::Duration::from_secs(30),
            max_rows: 100_000,
            max_bytes: 100 << 20,
            max_concurrent: 8,
            sql: false,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 256,
            max_body: 1 << 20,
            refresh: std::time::Duration::from_secs(1),
            cache_bytes: 64 << 20,
        }
    }
}

/// `engine = { kind = "ballista", url = "df://host:50050", … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct BallistaEngine {
    /// The scheduler, as written: `df://host[:port]` (port 50050 by default).
    pub url: String,
    pub host: String,
    pub port: u16,
    /// How long reaching the scheduler may take before a run fails (default 5 s).
    pub connect_timeout: std::time::Duration,
    /// How long one run's job may take on the cluster before it fails (default 30 min):
    /// the bound on a run whose executors were lost or never come.
    pub job_timeout: std::time::Duration,
}

/// A named table: a folder of Parquet files under each store.
#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    /// Folder under the store's root.
    pub path: String,
    /// The column this source is key-sampled on.
    pub sample_key: Option<String>,
    /// `None`: follow the environment's policy.
    pub sample: Option<SourceSampling>,
    /// The declared order of rows within each file, e.g. `["started_at ASC"]`.
    pub sort: Vec<SortKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub column: String,
    pub descending: bool,
    pub nulls_first: bool,
}

/// An ordered list of SQL nodes; the last one is the output.
#[derive(Debug, Clone)]
pub struct Pipe {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub params: BTreeMap<String, Param>,
    pub nodes: Vec<Node>,
    pub endpoint: bool,
    /// Where `sluice materialize` writes the output, if the pipe says.
    pub materialize: Option<Materialize>,
    /// How long `sluice serve` may answer a call from a result it computed before for
    /// the same version and parameters (`cache = "30s"`); `None`: every call runs.
    pub cache: Option<std::time::Duration>,
    /// The `[[check]]`s of the pipe's output, in file order.
    pub checks: Vec<DataCheck>,
    /// The TOML text the pipe was loaded from: what a deployment records.
    pub text: String,
}

/// A pipe's output written as a dataset of the store it runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Materialize {
    /// The dataset (a source folder) written.
    pub to: String,
    pub mode: WriteMode,
    /// Columns whose values become `k=v/` folders.
    pub partition_by: Vec<String>,
    /// The pipe means to replace a source the project declares (or a folder Sluice did
    /// not write): `replace_source = true`, and its output must have the source's columns.
    pub replace_source: bool,
}

/// Whether a write replaces the dataset or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Replace,
    Append,
}

impl WriteMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            WriteMode::Replace => "replace",
            WriteMode::Append => "append",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub description: Option<String>,
    pub sql: String,
}

impl Pipe {
    pub fn output(&self) -> &Node {
        self.nodes
            .last()
            .expect("a loaded pipe has at least one node")
    }

    /// Loads a pipe from TOML text (e.g. a deployed version), checked like a file of
    /// `pipes/`; `path` names it in messages.
    pub fn from_text(project: &Project, path: &Path, name: &str, text: &str) -> Result<Pipe> {
        load::pipe_from_text(path, name, text, &project.sources)
    }
}

impl Project {
    /// Loads and validates the project whose `sluice.toml` is in `root`.
    pub fn load(root: impl AsRef<Path>) -> Result<Project> {
        load::load_project(root.as_ref())
    }

    /// Loads the project containing `dir` (the nearest `sluice.toml` upward).
    pub fn discover(dir: impl AsRef<Path>) -> Result<Project> {
        let root = find_project_root(dir.as_ref())?;
        Project::load(root)
    }

    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        if let Some((_, since)) = self.deleting_branches.get(name) {
            return Err(SluiceError::Usage(format!(
                "branch `{name}` is being deleted (since {since}; the delete was interrupted and its store may be partly gone): run `sluice branch delete {name}` to finish"
            )));
        }
        self.environments
            .get(name)
            .ok_or_else(|| SluiceError::UnknownEnvironment {
                name: name.to_string(),
                known: self.environments.keys().cloned().collect(),
            })
    }

    /// Picks the environment a command works on: the named one, or the default one,
    /// which must not be protected (a protected environment is used only when named).
    /// The environment pipes are deployed to before a promotion: `staging` when it is
    /// declared and not protected, else the first environment that is neither protected
    /// nor a branch.
    pub fn deploying_environment(&self) -> Option<&Environment> {
        self.environments
            .get(DEFAULT_ENV)
            .filter(|e| !e.protected)
            .or_else(|| {
                self.environments
                    .values()
                    .find(|e| !e.protected && e.parent.is_none())
            })
    }

    pub fn select_environment(&self, named: Option<&str>) -> Result<&Environment> {
        match named {
            Some(n) => self.environment(n),
            None => {
                let env = self.environment(DEFAULT_ENV)?;
                if env.protected {
                    return Err(SluiceError::ProtectedEnvironment {
                        env: env.name.clone(),
                    });
                }
                Ok(env)
            }
        }
    }

    pub fn pipe(&self, name: &str) -> Result<&Pipe> {
        self.pipes
            .get(name)
            .ok_or_else(|| SluiceError::UnknownPipe {
                name: name.to_string(),
                known: self.pipes.keys().cloned().collect(),
            })
    }

    /// What a source reads in an environment: its own override, else the environment's
    /// policy (already adjusted by a run's override), else the full set.
    pub fn source_sampling(
        &self,
        source: &SourceDef,
        env_policy: Option<&SamplePolicy>,
    ) -> SourceSampling {
        match (&source.sample, env_policy) {
            // A run that reads the full set reads every source in full.
            (_, None) => SourceSampling::Full,
            (Some(own), Some(_)) => own.clone(),
            (None, Some(p)) => SourceSampling::Sampled(p.clone()),
        }
    }
}

/// The version of a pipe definition: a hash of its normalized TOML (comments, layout
/// and key order do not change it; any change of content does).
pub fn version_of(text: &str) -> std::result::Result<String, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let canonical = toml::to_string(&table).map_err(|e| e.to_string())?;
    let digest = Sha256::digest(canonical.as_bytes());
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// Lower-cased names of the tables a node's SQL reads.
pub(crate) fn node_references_of(sql: &str) -> std::result::Result<Vec<String>, String> {
    sql::node_references(sql)
}

/// Lower-cased names of the tables an ad-hoc query reads. Only read-only statements
/// (queries and EXPLAIN of a query) are accepted.
pub(crate) fn query_references(sql: &str) -> std::result::Result<Vec<String>, String> {
    sql::query_references(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ignore_layout_but_not_content() {
        let a = "description = \"x\"\n[[node]]\nname = \"a\"\nsql = \"SELECT 1\"\n";
        let b =
            "# a comment\ndescription   = \"x\"\n\n[[node]]\nsql = \"SELECT 1\"\nname = \"a\"\n";
        let c = "description = \"x\"\n[[node]]\nname = \"a\"\nsql = \"SELECT 2\"\n";
        assert_eq!(version_of(a).unwrap(), version_of(b).unwrap());
        assert_ne!(version_of(a).unwrap(), version_of(c).unwrap());
        assert_eq!(version_of(a).unwrap().len(), 12);
    }
}
