//! # sluice-engine
//!
//! The library behind the `sluice` binary: a project model (`sluice.toml`, `pipes/`),
//! per-environment Parquet stores, sampling on read, typed pipe parameters, and runs of
//! pipes on Apache DataFusion. It prints nothing and parses no arguments: the binary
//! (and any program embedding Sluice) does that. The HTTP server is the crate
//! `sluice-serve`, above this one.
//!
//! ```no_run
//! # async fn demo() -> sluice_engine::Result<()> {
//! use std::sync::Arc;
//! use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride};
//! let project = Arc::new(Project::discover(".")?);
//! let staging = EnvSession::open(project, "staging", &SampleOverride::default())?;
//! let out = staging.run_pipe("top_reps", &[("limit".into(), "5".into())], &RunOptions::default()).await?;
//! println!("{} rows, {} bytes scanned", out.report.rows_out, out.report.bytes_scanned());
//! # Ok(()) }
//! ```
//!
//! ## Layers
//!
//! Each module may use the modules of its own layer and of the layers below it, never
//! one above (`tests/layers.rs` checks every `crate::` path of this crate):
//!
//! | layer | modules | what they hold |
//! | --- | --- | --- |
//! | 0 | `error`, `util` | the error type; clock, atomic files, failpoints, text formatting |
//! | 1 | `project` | every definition parsed from a project's files |
//! | 2 | `store` | stores: listing, datasets, locks, footers, deployment records |
//! | 3 | `scan` | a source registered for a run, sampled as its policy says; footer statistics |
//! | 4 | `optimizer` | Sluice's optimizer rules and the DataFusion settings of a session |
//! | 5 | `session` | `EnvSession`: runs of SQL and pipes in an environment, embedded or on Ballista |
//! | 6 | `deploy`, `quality`, `fidelity`, `ingest`, `materialize`, `sample_store`, `stats`, `branch`, `bench`, `fixtures` | operations built on runs |
//!
//! Above the engine: `sluice-serve` (the HTTP server), then the `sluice` binary.

// Layer 0
pub mod error;
#[cfg(test)]
mod testing;
pub mod util;
// Layer 1
pub mod project;
// Layer 2
pub mod store;
// Layer 3
pub mod scan;
// Layer 4
pub mod optimizer;
// Layer 5
pub mod session;
// Layer 6
#[cfg(feature = "bench")]
pub mod bench;
pub mod branch;
pub mod deploy;
pub mod fidelity;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod ingest;
pub mod materialize;
pub mod quality;
pub mod sample_store;
pub mod stats;

pub use error::{ErrorClass, Problem, Result, SluiceError};
pub use project::checks::{CheckKind, DataCheck, SqlCheck};
pub use project::params::{Param, ParamType, ParamValue};
pub use project::sampling::{SampleOverride, SamplePolicy, SourceSampling};
pub use project::{BallistaEngine, Environment, Pipe, Project, RunEngine, SourceDef};
pub use quality::checks::CheckResult;
pub use quality::pipe_tests::CaseResult;
pub use session::report::{RunReport, SourceReport};
pub use session::{EnvSession, PlanFailure, RunOptions, RunOutput};
pub use store::Store;
