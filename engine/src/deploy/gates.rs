//! The gates a version passes before it is promoted:
//! 1. it plans against the target environment's real schemas;
//! 2. its pipe tests pass on the project's fixture data;
//! 3. its data checks and the project's SQL checks pass on the source environment and
//!    on a sample of the target, read as the target reads it (its own policy; else a
//!    `key` sample on each source's `sample_key`, `"full"` sources in full);
//! 4. it does not break the live output schema (unless allowed).
//!
//! Every gate runs and every failure is reported: a promotion blocked by its tests
//! also says whether its checks and its schema would have passed.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::project::sampling::SampleOverride;
use crate::project::{Pipe, Project};
use crate::session::EnvSession;
use crate::store::deployments::GateResult;

/// How the gates run.
#[derive(Debug, Clone, Default)]
pub struct GateOptions {
    /// Accept a breaking change of the live output schema.
    pub allow_breaking: bool,
    /// The fraction of the target's data the data checks read (`--sample`); `None`: the
    /// target's own sample policy, else `DEFAULT_TARGET_SAMPLE`.
    pub target_sample: Option<f64>,
}

/// The fraction of an unsampled target (production) the data checks read by default.
pub const DEFAULT_TARGET_SAMPLE: f64 = 0.1;

/// How the data checks read the target: its own policy, with `--sample` changing its
/// fraction; a target without one (production reads everything) is read by a `key`
/// sample on each source's `sample_key` (sources without one, and `"full"` ones, in
/// full), so checks over joins on the key see whole keys.
pub fn target_sampling(
    target: &crate::project::Environment,
    fraction: Option<f64>,
) -> SampleOverride {
    match &target.sample {
        Some(_) => SampleOverride {
            fraction,
            ..SampleOverride::default()
        },
        None => SampleOverride {
            fraction: Some(fraction.unwrap_or(DEFAULT_TARGET_SAMPLE)),
            method: Some("key".into()),
            ..SampleOverride::default()
        },
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
/// definition live in `to` (if any). Every gate runs, whatever the earlier ones found.
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
            Some(schema)
        }
        Err(f) => {
            let at = f.node.map(|n| format!(", node `{n}`")).unwrap_or_default();
            results.push(gate(
                "plans",
                false,
                format!("does not plan against `{to}`{at}: {}", f.message),
            ));
            None
        }
    };

    // 2. Pipe tests on the project's fixture data.
    let cases = crate::quality::pipe_tests::run_pipe_tests_for(project.clone(), candidate).await?;
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    if cases.is_empty() {
        results.push(gate(
            "tests",
            true,
            format!(
                "no pipe tests: tests/*.toml has no case for `{}`",
                candidate.name
            ),
        ));
    } else if failed.is_empty() {
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
    }

    // 3. Data checks on the source environment, then on a sample of the target read as
    // the target reads it.
    let target_env = project.environment(to)?;
    for (env, sample) in [
        (from, SampleOverride::default()),
        (to, target_sampling(target_env, options.target_sample)),
    ] {
        let name = format!("checks on {env}");
        let session = match EnvSession::open(project.clone(), env, &sample) {
            Ok(s) => s,
            Err(e) => {
                results.push(gate(&name, false, e.to_string()));
                continue;
            }
        };
        let read = match session.policy() {
            Some(p) => format!("read as sample {p}"),
            None => "read in full".to_string(),
        };
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
        match checks {
            Err(e) => results.push(gate(&name, false, format!("{read}: {e}"))),
            Ok(checks) => {
                let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
                if checks.is_empty() {
                    results.push(gate(&name, true, format!("no data checks to run ({read})")));
                } else if failed.is_empty() {
                    results.push(gate(
                        &name,
                        true,
                        format!("{} check(s) passed ({read})", checks.len()),
                    ));
                } else {
                    let detail = failed
                        .iter()
                        .map(|c| format!("{}: {}", c.check, c.detail))
                        .collect::<Vec<_>>()
                        .join("; ");
                    results.push(gate(
                        &name,
                        false,
                        format!(
                            "{} of {} check(s) failed ({read}): {detail}",
                            failed.len(),
                            checks.len()
                        ),
                    ));
                }
            }
        }
    }

    // 4. Breaking changes to the live output schema.
    match (live, &new_schema) {
        (_, None) => results.push(gate(
            "schema",
            false,
            "not compared: the version does not plan against the target",
        )),
        (None, Some(_)) => results.push(gate("schema", true, "new pipe in the target")),
        (Some(live), Some(new_schema)) => match target.plan_check(live).await {
            Ok(old_schema) => {
                let changes = schema_changes(&old_schema, new_schema);
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
        },
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
