//! An environment's deployment state, kept in its own store under `_sluice/`:
//!
//! ```text
//! _sluice/versions/<pipe>/<version>.toml   each deployed definition (content-addressed, immutable)
//! _sluice/live.json                        the live version of each pipe + the last event
//! _sluice/history/<seq>.json               one file per change, append-only
//! _sluice/lock                             held while a change is made
//! ```
//!
//! `live.json` is replaced in one put (an atomic rename locally, a single PUT on object
//! stores) and is the commit point: a change killed before it leaves the previous live
//! versions in place; one killed after it has its history event completed from
//! `live.json` by the next change. The lock is an object created only if absent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};
use crate::project::{Environment, Pipe, Project};
use crate::store::lock::StoreLock;
use crate::store::{STATE_DIR, Store};

/// The result of one gate for one pipe, as recorded in history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

/// One change of a pipe's live version in an environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEvent {
    pub seq: u64,
    /// RFC 3339 time of the change.
    pub at: String,
    pub actor: String,
    /// `deploy`, `promote` or `rollback`.
    pub action: String,
    pub pipe: String,
    pub version: String,
    pub previous: Option<String>,
    /// For a promotion: the environment the version came from.
    pub from_env: Option<String>,
    #[serde(default)]
    pub gates: Vec<GateResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveEntry {
    pub version: String,
    /// The event that made this version live.
    pub seq: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LiveFile {
    pipes: BTreeMap<String, LiveEntry>,
    /// The events of the last change; written to history/ right after the commit.
    #[serde(default)]
    last_events: Vec<HistoryEvent>,
}

/// The deployment state of one environment.
#[derive(Debug, Clone)]
pub struct DeploymentState {
    env: String,
    store: Arc<Store>,
}

impl DeploymentState {
    /// The deployment state in an environment's store.
    pub fn open(env: &Environment) -> Result<DeploymentState> {
        Ok(Self::in_store(Arc::new(Store::open(env)?)))
    }

    /// The deployment state in an opened store.
    pub fn in_store(store: Arc<Store>) -> DeploymentState {
        DeploymentState {
            env: store.env().to_string(),
            store,
        }
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    fn corrupt(&self, relative: &str, what: impl std::fmt::Display) -> SluiceError {
        SluiceError::State {
            env: self.env.clone(),
            message: format!(
                "{} is corrupted: {what}; restore it from a backup or remove it to start over",
                self.store.describe(relative)
            ),
        }
    }

    fn live_path() -> String {
        format!("{STATE_DIR}/live.json")
    }

    fn version_path(pipe: &str, version: &str) -> String {
        format!("{STATE_DIR}/versions/{pipe}/{version}.toml")
    }

    async fn read_live(&self) -> Result<LiveFile> {
        let path = Self::live_path();
        match self.store.get(&path).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&path, e)),
            None => Ok(LiveFile::default()),
        }
    }

    /// The live version of each deployed pipe.
    pub async fn live(&self) -> Result<BTreeMap<String, LiveEntry>> {
        Ok(self.read_live().await?.pipes)
    }

    pub async fn live_version(&self, pipe: &str) -> Result<Option<String>> {
        Ok(self.live().await?.get(pipe).map(|e| e.version.clone()))
    }

    /// A deployed version of a pipe, loaded and checked like a file of `pipes/`.
    pub async fn pipe(&self, project: &Project, pipe: &str, version: &str) -> Result<Pipe> {
        let text = self.version_text(pipe, version).await?;
        let path = PathBuf::from(format!(
            "{}:{}",
            self.env,
            Self::version_path(pipe, version)
        ));
        Pipe::from_text(project, &path, pipe, &text)
    }

    /// The definition of a deployed version, as TOML text.
    pub async fn version_text(&self, pipe: &str, version: &str) -> Result<String> {
        let path = Self::version_path(pipe, version);
        // Callers ask for versions the records name (live, history): a missing file is
        // a damaged store, not a user's typo (those are checked with `has_version`).
        let bytes = self.store.get(&path).await?.ok_or_else(|| {
            self.corrupt(
                &path,
                format!("version `{version}` of pipe `{pipe}` is recorded but its file is missing"),
            )
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| self.corrupt(&path, e))?;
        if crate::project::version_of(&text).ok().as_deref() != Some(version) {
            return Err(self.corrupt(&path, "its content does not match its version"));
        }
        Ok(text)
    }

    pub async fn has_version(&self, pipe: &str, version: &str) -> Result<bool> {
        Ok(self
            .store
            .get(&Self::version_path(pipe, version))
            .await?
            .is_some())
    }

    /// Every recorded change, oldest first (of one pipe, or all).
    pub async fn history(&self, pipe: Option<&str>) -> Result<Vec<HistoryEvent>> {
        let mut events = self.history_files().await?;
        // A change whose history file was not written yet (killed right after its
        // commit) is still in live.json.
        let live = self.read_live().await?;
        for e in live.last_events {
            if !events.iter().any(|x| x.seq == e.seq) {
                events.push(e);
            }
        }
        events.sort_by_key(|e| e.seq);
        Ok(events
            .into_iter()
            .filter(|e| pipe.is_none_or(|p| e.pipe == p))
            .collect())
    }

    async fn history_files(&self) -> Result<Vec<HistoryEvent>> {
        let dir = format!("{STATE_DIR}/history");
        let mut events = Vec::new();
        for (rel, _) in self.store.list(&dir).await? {
            if !rel.ends_with(".json") || rel.contains('/') || rel.starts_with('.') {
                continue;
            }
            let path = format!("{dir}/{rel}");
            let Some(bytes) = self.store.get(&path).await? else {
                continue;
            };
            events.push(
                serde_json::from_slice::<HistoryEvent>(&bytes)
                    .map_err(|e| self.corrupt(&path, e))?,
            );
        }
        Ok(events)
    }

    /// Takes the environment's lock, or fails at once naming who holds it. A lock left by
    /// a process that no longer runs on this machine is taken over.
    pub async fn lock(&self, actor: &str) -> Result<EnvLock> {
        let path = format!("{STATE_DIR}/lock");
        match StoreLock::acquire(&self.store, &path, actor).await? {
            Ok(lock) => Ok(EnvLock {
                stale_taken_over: lock.stale_taken_over,
                _lock: lock,
            }),
            Err(holder) => Err(SluiceError::Locked {
                env: self.env.clone(),
                holder: holder.description,
                path: holder.location,
            }),
        }
    }

    /// Applies changes of live versions as one atomic step, under the lock: writes the
    /// versions, commits `live.json`, then the history events.
    pub async fn commit(&self, _lock: &EnvLock, changes: Vec<Change>) -> Result<Vec<HistoryEvent>> {
        let mut live = self.read_live().await?;
        // Complete the history of a change killed right after its commit.
        let existing = self.history_files().await?;
        for e in &live.last_events {
            if !existing.iter().any(|x| x.seq == e.seq) {
                self.write_event(e).await?;
            }
        }
        let mut next_seq = existing
            .iter()
            .map(|e| e.seq)
            .chain(live.last_events.iter().map(|e| e.seq))
            .max()
            .unwrap_or(0)
            + 1;
        let mut events = Vec::new();
        // Version files this change adds: taken back if it fails before its commit.
        let mut added = Vec::new();
        for change in changes {
            if !self.has_version(&change.pipe, &change.version).await? {
                let path = Self::version_path(&change.pipe, &change.version);
                if let Err(e) = self
                    .store
                    .put(&path, Bytes::from(change.text.clone()))
                    .await
                {
                    self.take_back(&added).await;
                    return Err(e);
                }
                added.push(path);
            }
            crate::util::failpoint::hit("commit:after_versions");
            let previous = live.pipes.get(&change.pipe).map(|e| e.version.clone());
            let event = HistoryEvent {
                seq: next_seq,
                at: crate::util::clock::now(),
                actor: change.actor.clone(),
                action: change.action.clone(),
                pipe: change.pipe.clone(),
                version: change.version.clone(),
                previous,
                from_env: change.from_env.clone(),
                gates: change.gates.clone(),
            };
            live.pipes.insert(
                change.pipe.clone(),
                LiveEntry {
                    version: change.version.clone(),
                    seq: next_seq,
                },
            );
            next_seq += 1;
            events.push(event);
        }
        live.last_events = events.clone();
        let body = Bytes::from(serde_json::to_vec_pretty(&live).expect("live state serializes"));
        if let Err(e) = self.store.put(&Self::live_path(), body.clone()).await {
            // Not committed (unless the put landed after all): the store as it was.
            if !matches!(self.store.get(&Self::live_path()).await, Ok(Some(b)) if b == body) {
                self.take_back(&added).await;
            }
            return Err(e);
        }
        crate::util::failpoint::hit("commit:after_live");
        // Committed: an event not written now is kept in live.json and written by the
        // next change, so a failure here does not fail the change.
        for e in &events {
            if let Err(err) = self.write_event(e).await {
                tracing::warn!(env = %self.env, "history event {} not written ({err}): the next change writes it", e.seq);
                break;
            }
        }
        Ok(events)
    }

    /// Deletes the version files a change that failed before its commit added (best
    /// effort: a version file no live.json names is never read).
    async fn take_back(&self, added: &[String]) {
        for path in added {
            let _ = self.store.delete(path).await;
        }
    }

    async fn write_event(&self, e: &HistoryEvent) -> Result<()> {
        let path = format!("{STATE_DIR}/history/{:08}.json", e.seq);
        self.store
            .put(
                &path,
                Bytes::from(serde_json::to_vec_pretty(e).expect("event serializes")),
            )
            .await
    }
}

/// A change of one pipe's live version.
#[derive(Debug, Clone)]
pub struct Change {
    pub pipe: String,
    pub version: String,
    /// The definition (TOML text) of `version`.
    pub text: String,
    pub action: String,
    pub actor: String,
    pub from_env: Option<String>,
    pub gates: Vec<GateResult>,
}

/// The held lock of an environment; released when dropped.
#[derive(Debug)]
pub struct EnvLock {
    _lock: StoreLock,
    /// The pid of a dead process whose lock was taken over.
    pub stale_taken_over: Option<u64>,
}
