//! Fault injection for tests of interrupted changes: `SLUICE_FAILPOINT=NAME` aborts the
//! process at the point called NAME, as a crash or `kill -9` would. The names are
//! listed where they are hit and in docs/guarantees.md (`commit:after_versions`,
//! `dataset:before_commit`, `together:between`, `branch_delete:midway`, …).
//!
//! `SLUICE_FAIL_WRITES_AFTER=N` makes every write of an object to a store after the
//! first N fail as on a full disk, so a test can make a change fail at each of its
//! writes in turn: portable, unlike a small file system or a read-only folder (which
//! root writes anyway), and it fails exactly where the store API does.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Aborts the process if `SLUICE_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var("SLUICE_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// The error of a write refused by `SLUICE_FAIL_WRITES_AFTER`, if this one is.
pub fn write_refused() -> Option<std::io::Error> {
    static BUDGET: OnceLock<Option<u64>> = OnceLock::new();
    static USED: AtomicU64 = AtomicU64::new(0);
    let budget = (*BUDGET.get_or_init(|| {
        std::env::var("SLUICE_FAIL_WRITES_AFTER")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }))?;
    (USED.fetch_add(1, Ordering::SeqCst) >= budget).then(|| {
        std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (SLUICE_FAIL_WRITES_AFTER)",
        )
    })
}
