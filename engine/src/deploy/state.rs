//! An environment's deployment state, kept in its own store under `_sluice/`:
//!
//! ```text
//! _sluice/versions/<pipe>/<version>.toml   each deployed definition (content-addressed, immutable)
//! _sluice/live.json                        the live version of each pipe + the last event
//! _sluice/history/<seq>.json               one file per change, append-only
//! _sluice/lock                             held while a change is made
//! ```
//!
//! `live.json` is replaced by an atomic rename and is the commit point: a change killed
//! before it leaves the previous live versions in place; one killed after it has its
//! history event completed from `live.json` by the next change.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};
use crate::project::Environment;
use crate::store::STATE_DIR;

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
    dir: PathBuf,
}

impl DeploymentState {
    pub fn open(env: &Environment) -> DeploymentState {
        DeploymentState {
            env: env.name.clone(),
            dir: env.data_dir.join(STATE_DIR),
        }
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    fn corrupt(&self, path: &Path, what: impl std::fmt::Display) -> SluiceError {
        SluiceError::State {
            env: self.env.clone(),
            message: format!(
                "{} is corrupted: {what}; restore it from a backup or remove it to start over",
                path.display()
            ),
        }
    }

    fn live_path(&self) -> PathBuf {
        self.dir.join("live.json")
    }

    fn version_path(&self, pipe: &str, version: &str) -> PathBuf {
        self.dir
            .join("versions")
            .join(pipe)
            .join(format!("{version}.toml"))
    }

    fn read_live(&self) -> Result<LiveFile> {
        let path = self.live_path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| self.corrupt(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LiveFile::default()),
            Err(e) => Err(SluiceError::io(&path, e)),
        }
    }

    /// The live version of each deployed pipe.
    pub fn live(&self) -> Result<BTreeMap<String, LiveEntry>> {
        Ok(self.read_live()?.pipes)
    }

    pub fn live_version(&self, pipe: &str) -> Result<Option<String>> {
        Ok(self.live()?.get(pipe).map(|e| e.version.clone()))
    }

    /// The definition of a deployed version, as TOML text.
    pub fn version_text(&self, pipe: &str, version: &str) -> Result<String> {
        let path = self.version_path(pipe, version);
        let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SluiceError::Usage(format!(
                "environment `{}` has no version `{version}` of pipe `{pipe}`",
                self.env
            )),
            _ => SluiceError::io(&path, e),
        })?;
        if super::version_of(&text).ok().as_deref() != Some(version) {
            return Err(self.corrupt(&path, "its content does not match its version"));
        }
        Ok(text)
    }

    pub fn has_version(&self, pipe: &str, version: &str) -> bool {
        self.version_path(pipe, version).is_file()
    }

    /// Every recorded change, oldest first (of one pipe, or all).
    pub fn history(&self, pipe: Option<&str>) -> Result<Vec<HistoryEvent>> {
        let mut events = self.history_files()?;
        // A change whose history file was not written yet (killed right after its
        // commit) is still in live.json.
        let live = self.read_live()?;
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

    fn history_files(&self) -> Result<Vec<HistoryEvent>> {
        let dir = self.dir.join("history");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SluiceError::io(&dir, e)),
        };
        let mut events = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| SluiceError::io(&path, e))?;
            events.push(
                serde_json::from_str::<HistoryEvent>(&text).map_err(|e| self.corrupt(&path, e))?,
            );
        }
        Ok(events)
    }

    /// Takes the environment's lock, or fails at once naming who holds it. A lock left by
    /// a process that no longer runs on this machine is taken over.
    pub fn lock(&self, actor: &str) -> Result<EnvLock> {
        fs::create_dir_all(&self.dir).map_err(|e| SluiceError::io(&self.dir, e))?;
        let path = self.dir.join("lock");
        let host = hostname();
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let body = serde_json::json!({
                    "pid": std::process::id(),
                    "host": host,
                    "actor": actor,
                    "at": now(),
                });
                f.write_all(body.to_string().as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| SluiceError::io(&path, e))?;
                Ok(EnvLock {
                    path,
                    stale_taken_over: None,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = fs::read_to_string(&path).unwrap_or_default();
                let holder: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let pid = holder["pid"].as_u64();
                let alive = match pid {
                    Some(pid) if holder["host"].as_str() == Some(host.as_str()) => {
                        Path::new(&format!("/proc/{pid}")).exists()
                    }
                    // Another machine's lock, or one we cannot read: assume it is held.
                    _ => true,
                };
                if alive {
                    return Err(SluiceError::Locked {
                        env: self.env.clone(),
                        holder: format!(
                            "{} (pid {} on {}, since {})",
                            holder["actor"].as_str().unwrap_or("?"),
                            pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                            holder["host"].as_str().unwrap_or("?"),
                            holder["at"].as_str().unwrap_or("?"),
                        ),
                        path: path.display().to_string(),
                    });
                }
                tracing::warn!(env = %self.env, "taking over a stale lock left by pid {pid:?}");
                fs::remove_file(&path).map_err(|e| SluiceError::io(&path, e))?;
                let mut lock = self.lock(actor)?;
                lock.stale_taken_over = pid;
                Ok(lock)
            }
            Err(e) => Err(SluiceError::io(&path, e)),
        }
    }

    /// Applies changes of live versions as one atomic step, under the lock: writes the
    /// versions, commits `live.json`, then the history events.
    pub fn commit(&self, _lock: &EnvLock, changes: Vec<Change>) -> Result<Vec<HistoryEvent>> {
        let mut live = self.read_live()?;
        // Complete the history of a change killed right after its commit.
        let existing = self.history_files()?;
        for e in &live.last_events {
            if !existing.iter().any(|x| x.seq == e.seq) {
                self.write_event(e)?;
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
        for change in changes {
            let path = self.version_path(&change.pipe, &change.version);
            if !path.is_file() {
                write_atomic(&path, change.text.as_bytes())?;
            }
            failpoint("commit:after_versions");
            let previous = live.pipes.get(&change.pipe).map(|e| e.version.clone());
            let event = HistoryEvent {
                seq: next_seq,
                at: now(),
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
        let body = serde_json::to_vec_pretty(&live).expect("live state serializes");
        write_atomic(&self.live_path(), &body)?;
        failpoint("commit:after_live");
        for e in &events {
            self.write_event(e)?;
        }
        Ok(events)
    }

    fn write_event(&self, e: &HistoryEvent) -> Result<()> {
        let path = self.dir.join("history").join(format!("{:08}.json", e.seq));
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(e).expect("event serializes"),
        )
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
    path: PathBuf,
    /// The pid of a dead process whose lock was taken over.
    pub stale_taken_over: Option<u64>,
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes a file through a temporary file in the same folder, synced and renamed into
/// place: readers see the old content or the new, never part of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a file path has a folder");
    fs::create_dir_all(dir).map_err(|e| SluiceError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(SluiceError::io(path, e));
    }
    Ok(())
}

/// Fault injection for tests of interrupted changes: `SLUICE_FAILPOINT=NAME` aborts the
/// process at that point, as a crash or `kill -9` would.
fn failpoint(name: &str) {
    if std::env::var("SLUICE_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Who is acting: `--actor`, else the OS user.
pub fn default_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
