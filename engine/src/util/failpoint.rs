//! Fault injection for tests of interrupted changes: `SLUICE_FAILPOINT=NAME` aborts the
//! process at the point called NAME, as a crash or `kill -9` would. The names are
//! listed where they are hit (`commit:after_versions`, `dataset:before_commit`, …).

/// Aborts the process if `SLUICE_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var("SLUICE_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}
