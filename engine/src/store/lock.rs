//! Locks kept as objects of a store: created only if absent (a create-new file locally,
//! a conditional put on object stores), released when dropped. A lock left by a process
//! that no longer runs on this machine is taken over; another machine's lock is assumed
//! held.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

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

impl StoreLock {
    /// Takes the lock at `relative` in `store`, or returns who holds it.
    pub async fn acquire(
        store: &Store,
        relative: &str,
        actor: &str,
    ) -> Result<std::result::Result<StoreLock, Holder>> {
        let host = hostname();
        let mut stale = None;
        for _ in 0..2 {
            let body = serde_json::json!({
                "pid": std::process::id(),
                "host": host,
                "actor": actor,
                "at": crate::deploy::now(),
            });
            if store
                .put_new(relative, Bytes::from(body.to_string()))
                .await?
            {
                return Ok(Ok(StoreLock {
                    store: store.object_store(),
                    path: store.path(relative),
                    local: store.location().local_dir().map(|d| d.join(relative)),
                    stale_taken_over: stale,
                }));
            }
            let text = store.get(relative).await?.unwrap_or_default();
            let holder: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
            let pid = holder["pid"].as_u64();
            let alive = match pid {
                Some(pid) if holder["host"].as_str() == Some(host.as_str()) => {
                    std::path::Path::new(&format!("/proc/{pid}")).exists()
                }
                // Another machine's lock, or one we cannot read: assume it is held.
                _ => true,
            };
            if alive {
                return Ok(Err(Holder {
                    description: format!(
                        "{} (pid {} on {}, since {})",
                        holder["actor"].as_str().unwrap_or("?"),
                        pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                        holder["host"].as_str().unwrap_or("?"),
                        holder["at"].as_str().unwrap_or("?"),
                    ),
                    location: store.describe(relative),
                }));
            }
            tracing::warn!(env = %store.env(), lock = relative, "taking over a stale lock left by pid {pid:?}");
            store.delete(relative).await?;
            stale = pid;
        }
        Ok(Err(Holder {
            description: "another process that took it over at the same time".into(),
            location: store.describe(relative),
        }))
    }
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
