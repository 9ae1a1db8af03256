//! Deployments and promotion: content-addressed versions of pipes (recorded in each
//! environment's store by `store::deployments`), promoted from one environment to another through gates, rolled
//! back in one step. A protected environment runs deployed versions only.

pub mod diff;
mod gates;
mod ops;

pub use crate::project::version_of;
pub use crate::store::deployments::{
    Change, DeploymentState, EnvLock, GateResult, HistoryEvent, LiveEntry,
};
pub use crate::util::clock::default_actor;
pub use gates::{
    DEFAULT_TARGET_SAMPLE, GateOptions, SchemaChange, schema_changes, target_sampling,
};
pub use ops::{
    DeployOutcome, PipeStatus, PlanItem, PlanKind, PromoteOptions, PromotedPipe, PromotionPlan,
    PromotionReport, deploy, deploy_and_promote, plan, promote, promote_with_progress,
    resolve_version, rollback, status,
};
