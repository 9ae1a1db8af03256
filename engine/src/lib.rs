//! # sluice-engine
//!
//! The library behind the `sluice` binary: a project model (`sluice.toml`, `pipes/`),
//! per-environment Parquet stores, sampling on read, typed pipe parameters, and runs of
//! pipes on Apache DataFusion. It prints nothing and parses no arguments: the binary
//! (and any program embedding Sluice) does that.
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

#[cfg(feature = "ballista")]
pub mod ballista;
pub mod bench;
pub mod branch;
pub mod checks;
pub mod deploy;
pub mod error;
pub mod fixtures;
pub mod ingest;
pub mod materialize;
pub mod optimizer;
pub mod params;
pub mod parquet_reader;
pub mod pipe_tests;
pub mod project;
pub mod report;
pub mod sample;
pub mod sample_build;
pub mod sampling;
pub mod serve;
pub mod session;
pub mod shared_nodes;
pub mod stats;
pub mod store;
pub mod tuning;

pub use checks::{CheckKind, CheckResult, DataCheck, SqlCheck};
pub use error::{ErrorClass, Problem, Result, SluiceError};
pub use params::{Param, ParamType, ParamValue};
pub use pipe_tests::CaseResult;
pub use project::{BallistaEngine, Environment, Pipe, Project, RunEngine, SourceDef};
pub use report::{RunReport, SourceReport};
pub use sample::{SampleOverride, SamplePolicy, SourceSampling};
pub use session::{EnvSession, PlanFailure, RunOptions, RunOutput};
pub use store::Store;
