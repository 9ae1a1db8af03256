//! Deployments and promotion: content-addressed versions of pipes recorded in each
//! environment's store, promoted from one environment to another through gates, rolled
//! back in one step. A protected environment runs deployed versions only.

pub mod diff;
mod gates;
mod ops;
mod state;

pub use gates::{GateOptions, SchemaChange, schema_changes};
pub(crate) use ops::deployed_pipe;
pub use ops::{
    DeployOutcome, PipeStatus, PlanItem, PlanKind, PromoteOptions, PromotedPipe, PromotionPlan,
    PromotionReport, deploy, plan, promote, rollback, status,
};
pub use state::{
    Change, DeploymentState, EnvLock, GateResult, HistoryEvent, LiveEntry, default_actor,
};
pub(crate) use state::{now, write_atomic};

use sha2::{Digest, Sha256};

/// The version of a pipe definition: a hash of its normalized TOML (comments, layout
/// and key order do not change it; any change of content does).
pub fn version_of(text: &str) -> Result<String, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let canonical = toml::to_string(&table).map_err(|e| e.to_string())?;
    let digest = Sha256::digest(canonical.as_bytes());
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
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
