//! Locks kept as objects of a store: created only if absent (a create-new file locally,
//! a conditional put on object stores), released when dropped. A lock left by a process
//! that no longer runs on this machine is taken over; another machine's lock is assumed
//! held.
//!
//! Taking over is itself atomic, so two processes that find the same dead lock cannot
//! both take it: each must first create the take-over marker named after that lock's
//! exact content (`<lock>.takeover-<hash>`, create-if-absent), and the one that does
//! then checks the lock still holds that content before it writes its own over it.
//! Nobody else may replace a lock of that content while the marker exists, so the check
//! and the write cannot be raced; a process that read the dead lock too late finds the
//! marker taken, or the lock changed, and backs off.
//!
//! The marker is itself a lock, taken the same way: a process killed while it held one
//! (between creating the marker and replacing the lock) leaves a marker whose holder is
//! dead, and the next process takes that marker over through a marker of its own, so a
//! crash at any point never leaves a lock nobody can take.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::store::Store;

/// Who holds a lock that could not be taken, as a user reads it.
#[derive(Debug, Clone)]
pub struct Holder {
    pub description: String,
    /// The lock as a path or URL.
    pub location: String,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    local: Option<std::path::PathBuf>,
    /// The pid of a dead process whose lock was taken over.
    pub stale_taken_over: Option<u64>,
}

/// How many times a lock that vanished or changed under us is tried again.
const ATTEMPTS: usize = 4;
/// How many take-overs of take-overs (each interrupted by a crash) are followed.
const MAX_TAKEOVER_DEPTH: usize = 8;

impl StoreLock {
    /// Takes the lock at `relative` in `store`, or returns who holds it.
    pub async fn acquire(
        store: &Store,
        relative: &str,
        actor: &str,
    ) -> Result<std::result::Result<StoreLock, Holder>> {
        Self::acquire_at(store, relative, actor, 0).await
    }

    fn acquire_at<'a>(
        store: &'a Store,
        relative: &'a str,
        actor: &'a str,
        depth: usize,
    ) -> futures::future::BoxFuture<'a, Result<std::result::Result<StoreLock, Holder>>> {
        Box::pin(async move {
            let host = hostname();
            let body = serde_json::json!({
                "pid": std::process::id(),
                "host": host,
                "actor": actor,
                "at": crate::util::clock::now(),
                "nonce": nonce(),
            })
            .to_string();
            let held = |stale| StoreLock {
                store: store.object_store(),
                path: store.path(relative),
                // The file as the object store names it (`~` and others are escaped).
                local: store.local_file(relative),
                stale_taken_over: stale,
            };
            for _ in 0..ATTEMPTS {
                if store.put_new(relative, Bytes::from(body.clone())).await? {
                    return Ok(Ok(held(None)));
                }
                let Some(current) = store.get(relative).await? else {
                    // Released between our create and our read: try again.
                    continue;
                };
                let holder: serde_json::Value =
                    serde_json::from_slice(&current).unwrap_or_default();
                let pid = holder["pid"].as_u64();
                if is_alive(&holder, &host) {
                    return Ok(Err(Holder {
                        description: describe(&holder),
                        location: store.describe(relative),
                    }));
                }
                // Markers of markers only pile up with a crash at this very point each
                // time; past a few, something else is wrong.
                if depth >= MAX_TAKEOVER_DEPTH {
                    return Ok(Err(Holder {
                        description: format!(
                            "a dead process (pid {}), whose lock could not be taken over: {MAX_TAKEOVER_DEPTH} take-overs of it were interrupted; remove the lock and its `.takeover-*` files by hand once no Sluice process uses the store",
                            pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                        ),
                        location: store.describe(relative),
                    }));
                }
                // The holder is dead. Only the process that holds this lock content's
                // marker may replace it.
                let marker = format!("{relative}.takeover-{}", content_hash(&current));
                let marker_lock = match Self::acquire_at(store, &marker, actor, depth + 1).await? {
                    Ok(l) => l,
                    Err(_) => {
                        return Ok(Err(Holder {
                            description: format!(
                                "another process taking over the lock left by pid {} at the same time",
                                pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                            ),
                            location: store.describe(relative),
                        }));
                    }
                };
                crate::util::failpoint::hit("lock:takeover_marker");
                // The lock may have changed since we read it (a process that read it
                // earlier took it over and has since released it): replace only what we
                // judged dead.
                let unchanged = store.get(relative).await?.is_some_and(|now| now == current);
                if unchanged {
                    tracing::warn!(env = %store.env(), lock = relative, "taking over a stale lock left by pid {pid:?}");
                    store.put(relative, Bytes::from(body.clone())).await?;
                }
                // The dead content is gone from the lock (or was already): anyone who
                // read it finds the lock changed, so the marker is not needed any more.
                drop(marker_lock);
                if unchanged {
                    return Ok(Ok(held(pid)));
                }
            }
            Ok(Err(Holder {
                description: "other processes taking and releasing it in turn".into(),
                location: store.describe(relative),
            }))
        })
    }
}

/// Whether the lock's holder may still be running: a process on this machine that
/// exists; another machine's lock, or one we cannot read, is assumed held.
fn is_alive(holder: &serde_json::Value, host: &str) -> bool {
    match holder["pid"].as_u64() {
        Some(pid) if holder["host"].as_str() == Some(host) => {
            std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => true,
    }
}

fn describe(holder: &serde_json::Value) -> String {
    format!(
        "{} (pid {} on {}, since {})",
        holder["actor"].as_str().unwrap_or("?"),
        holder["pid"]
            .as_u64()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        holder["host"].as_str().unwrap_or("?"),
        holder["at"].as_str().unwrap_or("?"),
    )
}

fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A value no other lock body shares, so a lock's content names one holding.
fn nonce() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            let _ = std::fs::remove_file(local);
            return;
        }
        // Drop cannot await: release on a thread of its own, and wait for it, so the
        // lock is gone when the holder returns.
        let store = self.store.clone();
        let path = self.path.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(store.delete(&path));
            }
        })
        .join();
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Environment;
    use crate::project::location::StoreLocation;

    fn environment(location: StoreLocation) -> Environment {
        Environment {
            name: "staging".into(),
            data: location.to_string(),
            location,
            storage: Default::default(),
            sample: None,
            protected: false,
            settings: Default::default(),
            engine: Default::default(),
            serve: Default::default(),
            parent: None,
        }
    }

    /// A lock body left by a process that is gone: a pid no Linux system hands out.
    fn dead_lock(round: usize) -> Bytes {
        Bytes::from(
            serde_json::json!({
                "pid": 4_194_304_000u64 + round as u64,
                "host": hostname(),
                "actor": "crashed",
                "at": "2026-01-01T00:00:00Z",
            })
            .to_string(),
        )
    }

    /// Many writers start together against a stale lock, round after round: exactly one
    /// takes it each round, the others are told who has it, and once it is released the
    /// next round's stale lock is taken over again.
    /// With `killed_takeover`, each round's stale lock also has the take-over marker of a
    /// process killed while taking it over (its holder dead too).
    async fn one_writer_per_round(store: Arc<Store>, killed_takeover: bool) {
        const WRITERS: usize = 8;
        const ROUNDS: usize = 40;
        for round in 0..ROUNDS {
            let dead = dead_lock(round);
            store.put("_sluice/lock", dead.clone()).await.unwrap();
            if killed_takeover {
                let marker = format!("_sluice/lock.takeover-{}", content_hash(&dead));
                store.put(&marker, dead_lock(1_000 + round)).await.unwrap();
            }
            let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
            let tried = Arc::new(tokio::sync::Barrier::new(WRITERS));
            let mut tasks = Vec::new();
            for w in 0..WRITERS {
                let store = store.clone();
                let (start, tried) = (start.clone(), tried.clone());
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    let got = StoreLock::acquire(&store, "_sluice/lock", &format!("w{w}"))
                        .await
                        .unwrap();
                    // The holder keeps it until every writer has tried.
                    tried.wait().await;
                    got.map(|l| l.stale_taken_over)
                }));
            }
            let mut winners = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(stale) => {
                        winners += 1;
                        assert!(
                            stale.is_some(),
                            "round {round}: the stale lock was taken over"
                        );
                    }
                    Err(holder) => assert!(!holder.description.is_empty()),
                }
            }
            assert_eq!(
                winners, 1,
                "round {round}: exactly one writer takes the lock"
            );
            // Released by its holder; no marker is left behind.
            let left: Vec<String> = store
                .list("_sluice")
                .await
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            assert!(left.is_empty(), "round {round}: left {left:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stale_lock_is_taken_by_one_writer_locally() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(StoreLocation::Local(dir.path().to_path_buf()));
        one_writer_per_round(Arc::new(Store::open(&env).unwrap()), false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stale_lock_is_taken_by_one_writer_in_an_object_store() {
        let url = url::Url::parse("memory://lock-race").unwrap();
        let env = environment(StoreLocation::Url(url));
        one_writer_per_round(Arc::new(Store::open(&env).unwrap()), false).await;
    }

    /// A process killed between taking the take-over marker and replacing the lock left
    /// both behind: the next writers take the marker over the same way, one of them wins,
    /// and nothing is left once it releases the lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_killed_take_over_is_taken_over_by_one_writer() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(StoreLocation::Local(dir.path().to_path_buf()));
        one_writer_per_round(Arc::new(Store::open(&env).unwrap()), true).await;
        let url = url::Url::parse("memory://lock-race-killed").unwrap();
        let env = environment(StoreLocation::Url(url));
        one_writer_per_round(Arc::new(Store::open(&env).unwrap()), true).await;
    }

    #[tokio::test]
    async fn a_live_lock_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(StoreLocation::Local(dir.path().to_path_buf()));
        let store = Store::open(&env).unwrap();
        let held = StoreLock::acquire(&store, "_sluice/lock", "first")
            .await
            .unwrap()
            .unwrap();
        let refused = StoreLock::acquire(&store, "_sluice/lock", "second")
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            refused.description.starts_with("first"),
            "{}",
            refused.description
        );
        drop(held);
        assert!(
            StoreLock::acquire(&store, "_sluice/lock", "third")
                .await
                .unwrap()
                .is_ok()
        );
    }
}
