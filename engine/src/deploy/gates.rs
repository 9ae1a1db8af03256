//! The gates a version passes before it is promoted:
//! 1. it plans against the target environment's real schemas;
//! 2. its pipe tests pass on the project's fixture data;
//! 3. its data checks and the project's SQL checks pass on the source environment and
//!    on a sample of the target;
//! 4. it does not break the live output schema (unless allowed).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::project::sampling::SampleOverride;
use crate::project::{Pipe, Project};
use crate::session::EnvSession;
use crate::store::deployments::GateResult;

/// How the gates run.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Accept a breaking change of the live output schema.
    pub allow_breaking: bool,
    /// The fraction of the target's data the data checks read (`system` sampling).
    pub target_sample: f64,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            allow_breaking: false,
            target_sample: 0.1,
        }
    }
}

/// A change of one output column between two versions.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaChange {
    Added {
        column: String,
        data_type: String,
    },
    Removed {
        column: String,
        data_type: String,
    },
    Retyped {
        column: String,
        from: String,
        to: String,
    },
}

impl SchemaChange {
    /// Removing or retyping a column breaks readers of the output; adding one does not.
    pub fn is_breaking(&self) -> bool {
        !matches!(self, SchemaChange::Added { .. })
    }
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaChange::Added { column, data_type } => {
                write!(f, "+ {column} {data_type} (non-breaking)")
            }
            SchemaChange::Removed { column, data_type } => {
                write!(f, "- {column} {data_type} (breaking)")
            }
            SchemaChange::Retyped { column, from, to } => {
                write!(f, "~ {column} {from} -> {to} (breaking)")
            }
        }
    }
}

/// The column changes from `old` to `new` (a renamed column is one removed, one added).
pub fn schema_changes(old: &SchemaRef, new: &SchemaRef) -> Vec<SchemaChange> {
    let mut changes = Vec::new();
    for f in old.fields() {
        match new.field_with_name(f.name()) {
            Err(_) => changes.push(SchemaChange::Removed {
                column: f.name().clone(),
                data_type: f.data_type().to_string(),
            }),
            Ok(n) if n.data_type() != f.data_type() => changes.push(SchemaChange::Retyped {
                column: f.name().clone(),
                from: f.data_type().to_string(),
                to: n.data_type().to_string(),
            }),
            Ok(_) => {}
        }
    }
    for f in new.fields() {
        if old.field_with_name(f.name()).is_err() {
            changes.push(SchemaChange::Added {
                column: f.name().clone(),
                data_type: f.data_type().to_string(),
            });
        }
    }
    changes
}

fn gate(name: &str, passed: bool, detail: impl Into<String>) -> GateResult {
    GateResult {
        gate: name.to_string(),
        passed,
        detail: detail.into(),
    }
}

/// Runs every gate for `candidate` going from `from` to `to`, where `live` is the
/// definition live in `to` (if any). Stops at the first gate that fails: the later
/// ones are not run.
pub(crate) async fn run_gates(
    project: &Arc<Project>,
    from: &str,
    to: &str,
    candidate: &Pipe,
    live: Option<&Pipe>,
    options: &GateOptions,
) -> Result<Vec<GateResult>> {
    let mut results = Vec::new();
    let target = EnvSession::open(project.clone(), to, &SampleOverride::default())?;

    // 1. Plans on the target.
    let new_schema = match target.plan_check(candidate).await {
        Ok(schema) => {
            results.push(gate("plans", true, format!("plans against `{to}`")));
            schema
        }
        Err(f) => {
            let at = f.node.map(|n| format!(", node `{n}`")).unwrap_or_default();
            results.push(gate(
                "plans",
                false,
                format!("does not plan against `{to}`{at}: {}", f.message),
            ));
            return Ok(results);
        }
    };

    // 2. Pipe tests on the project's fixture data.
    let cases = crate::quality::pipe_tests::run_pipe_tests_for(project.clone(), candidate).await?;
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        results.push(gate(
            "tests",
            true,
            format!("{} case(s) passed", cases.len()),
        ));
    } else {
        let detail = failed
            .iter()
            .map(|c| format!("{}: {}", c.case, c.detail))
            .collect::<Vec<_>>()
            .join("; ");
        results.push(gate(
            "tests",
            false,
            format!(
                "{} of {} case(s) failed: {detail}",
                failed.len(),
                cases.len()
            ),
        ));
        return Ok(results);
    }

    // 3. Data checks on the source environment, then on a sample of the target.
    for (env, sample) in [
        (from, SampleOverride::default()),
        (
            to,
            SampleOverride {
                fraction: Some(options.target_sample),
                method: Some("system".into()),
                ..SampleOverride::default()
            },
        ),
    ] {
        let session = EnvSession::open(project.clone(), env, &sample)?;
        // The pipe's own checks, then the project's SQL checks (which must return no rows).
        let checks = match crate::quality::checks::run_pipe_checks(&session, candidate).await {
            Ok(mut pipe_checks) => {
                crate::quality::checks::run_sql_checks(&session)
                    .await
                    .map(|sql| {
                        pipe_checks.extend(sql);
                        pipe_checks
                    })
            }
            Err(e) => Err(e),
        };
        let name = format!("checks on {env}");
        match checks {
            Err(e) => {
                results.push(gate(&name, false, e.to_string()));
                return Ok(results);
            }
            Ok(checks) => {
                let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
                if failed.is_empty() {
                    results.push(gate(
                        &name,
                        true,
                        format!("{} check(s) passed", checks.len()),
                    ));
                } else {
                    let detail = failed
                        .iter()
                        .map(|c| format!("{}: {}", c.check, c.detail))
                        .collect::<Vec<_>>()
                        .join("; ");
                    results.push(gate(&name, false, detail));
                    return Ok(results);
                }
            }
        }
    }

    // 4. Breaking changes to the live output schema.
    if let Some(live) = live {
        match target.plan_check(live).await {
            Ok(old_schema) => {
                let changes = schema_changes(&old_schema, &new_schema);
                let breaking: Vec<String> = changes
                    .iter()
                    .filter(|c| c.is_breaking())
                    .map(|c| c.to_string())
                    .collect();
                if breaking.is_empty() {
                    results.push(gate("schema", true, describe(&changes)));
                } else if options.allow_breaking {
                    results.push(gate(
                        "schema",
                        true,
                        format!("breaking change allowed: {}", breaking.join(", ")),
                    ));
                } else {
                    results.push(gate(
                        "schema",
                        false,
                        format!("breaking change to the live output: {} (pass --allow-breaking to accept it)", breaking.join(", ")),
                    ));
                }
            }
            // The live version no longer plans (its sources changed): nothing to break.
            Err(f) => results.push(gate(
                "schema",
                true,
                format!("the live version no longer plans ({})", f.message),
            )),
        }
    } else {
        results.push(gate("schema", true, "new pipe in the target"));
    }
    Ok(results)
}

fn describe(changes: &[SchemaChange]) -> String {
    if changes.is_empty() {
        "output schema unchanged".into()
    } else {
        changes
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
