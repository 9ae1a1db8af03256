//! Running data checks (defined in `project::checks`): assertions on a pipe's output (`[[check]]` tables of a pipe file) and
//! free SQL checks over an environment's sources (`checks/*.sql`, which must return no
//! rows). Both run in an environment, so in staging they see its sample and in
//! production the full set; promotion runs them as gates.
//!
//! A pipe's checks run on its output, computed once with each parameter's default: the
//! rows are held in memory as a table called `output`, and each check is one SQL query
//! over it.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::error::{ErrorClass, Result, SluiceError, classify, df_message};
use crate::project::Pipe;
use crate::project::checks::{CheckKind, DataCheck, check_columns};
use crate::quality::cells::{cut, render};
use crate::session::{EnvSession, RunOptions};
use crate::util::text::{plural, quote_ident, thousands};

/// The outcome of one check in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The pipe whose output was checked; `None` for a SQL check.
    pub pipe: Option<String>,
    pub check: String,
    pub passed: bool,
    /// What was found: on failure, how many rows failed and up to 5 of them.
    pub detail: String,
}

/// How many offending values or rows a failure shows.
const SHOWN: usize = 5;
/// A SQL check's rows are counted up to this many.
const SQL_CHECK_ROW_CAP: usize = 10_000;
/// A shown row is cut after this many characters.
const ROW_WIDTH: usize = 160;

/// The pipes whose checks `check_environment` runs, as the environment runs them, and
/// those it leaves out with the reason.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    /// The definitions to check: in a protected environment, the deployed versions.
    pub pipes: Vec<Pipe>,
    /// Pipes of the project that are not checked, and why.
    pub skipped: Vec<(String, String)>,
    /// Whether `checks/*.sql` run too (only when no pipe was named).
    pub sql_checks: bool,
}

/// Which pipes' checks run in `session`'s environment: the `named` ones, else every pipe
/// of the project; in a protected environment each as deployed there, and a pipe with
/// no deployed version is skipped (named with the reason) unless it was named, which is
/// an error.
pub async fn plan_checks(session: &EnvSession, named: &[String]) -> Result<CheckPlan> {
    let mut plan = CheckPlan {
        pipes: Vec::new(),
        skipped: Vec::new(),
        sql_checks: named.is_empty(),
    };
    let env = session.environment();
    if !named.is_empty() {
        for name in named {
            plan.pipes.push(session.resolve_pipe(name, false).await?);
        }
        return Ok(plan);
    }
    let live = if env.protected {
        Some(session.deployments().live().await?)
    } else {
        None
    };
    for name in session.project().pipes.keys() {
        match &live {
            Some(live) if !live.contains_key(name) => plan.skipped.push((
                name.clone(),
                format!(
                    "not deployed in `{}` (it runs promoted versions only)",
                    env.name
                ),
            )),
            _ => plan.pipes.push(session.resolve_pipe(name, false).await?),
        }
    }
    // Pipes deployed here whose file was since removed from the project still run here.
    if let Some(live) = &live {
        for name in live.keys() {
            if !session.project().pipes.contains_key(name) {
                plan.pipes.push(session.resolve_pipe(name, true).await?);
            }
        }
    }
    Ok(plan)
}

/// Runs `pipe`'s declared checks on its output in `session` (params: defaults).
pub async fn run_pipe_checks(session: &EnvSession, pipe: &Pipe) -> Result<Vec<CheckResult>> {
    if pipe.checks.is_empty() {
        return Ok(Vec::new());
    }
    let out = session
        .run_pipe_def(pipe, &[], &RunOptions::default())
        .await?;
    let env = session.environment().name.clone();
    let schema = out
        .batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| out.schema.clone());
    check_columns(pipe, &schema).map_err(|message| SluiceError::Query {
        env: env.clone(),
        message,
        class: ErrorClass::Usage,
    })?;
    let rows = out.report.rows_out;
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema, vec![out.batches])?;
    ctx.register_table("output", Arc::new(table))?;
    let mut results = Vec::new();
    for check in &pipe.checks {
        let (passed, detail) =
            evaluate(&ctx, check, rows)
                .await
                .map_err(|e| SluiceError::Query {
                    env: env.clone(),
                    message: format!(
                        "pipe `{}`, check `{}`: {}",
                        pipe.name,
                        check.name,
                        df_message(&e)
                    ),
                    class: classify(&e),
                })?;
        results.push(CheckResult {
            pipe: Some(pipe.name.clone()),
            check: check.name.clone(),
            passed,
            detail,
        });
    }
    Ok(results)
}

/// Runs the project's SQL checks (checks/*.sql) in `session`.
pub async fn run_sql_checks(session: &EnvSession) -> Result<Vec<CheckResult>> {
    let mut results = Vec::new();
    for check in &session.project().sql_checks {
        let out = session
            .query(
                &check.sql,
                &RunOptions {
                    limit: Some(SQL_CHECK_ROW_CAP + 1),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                SluiceError::Query {
                    env,
                    message,
                    class,
                } => SluiceError::Query {
                    env,
                    message: format!("SQL check `{}`: {message}", check.name),
                    class,
                },
                other => other,
            })?;
        let n = out.report.rows_out as usize;
        let detail = if n == 0 {
            "no rows".to_string()
        } else {
            let count = if n > SQL_CHECK_ROW_CAP {
                format!("more than {}", thousands(SQL_CHECK_ROW_CAP as u64))
            } else {
                thousands(n as u64)
            };
            format!(
                "returned {count} row{} (a SQL check must return none); {}",
                plural(n as u64),
                shown_rows(&out.batches, SHOWN)
            )
        };
        results.push(CheckResult {
            pipe: None,
            check: check.name.clone(),
            passed: n == 0,
            detail,
        });
    }
    Ok(results)
}

/// Up to `SHOWN` output rows matching a check's failure predicate, to show.
async fn failing_rows(
    ctx: &SessionContext,
    predicate: &str,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    query(
        ctx,
        &format!("SELECT * FROM output WHERE {predicate} LIMIT {SHOWN}"),
    )
    .await
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

/// The one integer of a `SELECT count(*) …`.
async fn count(ctx: &SessionContext, sql: &str) -> Result<u64, DataFusionError> {
    let batches = query(ctx, sql).await?;
    let rows = render(&batches)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|c| c.text.parse().ok())
        .unwrap_or(0))
}

/// Evaluates one check over `output`: (passed, detail).
async fn evaluate(
    ctx: &SessionContext,
    check: &DataCheck,
    rows: u64,
) -> Result<(bool, String), DataFusionError> {
    let rows_text = format!("{} row{}", thousands(rows), plural(rows));
    match &check.kind {
        CheckKind::NotNull(cols) => {
            let predicate = cols
                .iter()
                .map(|c| format!("{} IS NULL", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let failed = count(
                ctx,
                &format!("SELECT count(*) FROM output WHERE {predicate}"),
            )
            .await?;
            if failed == 0 {
                return Ok((true, format!("no NULLs in {rows_text}")));
            }
            let mut per_column = Vec::new();
            for c in cols {
                let n = count(
                    ctx,
                    &format!(
                        "SELECT count(*) FROM output WHERE {} IS NULL",
                        quote_ident(c)
                    ),
                )
                .await?;
                if n > 0 {
                    per_column.push(format!("{c}: {}", thousands(n)));
                }
            }
            let shown = failing_rows(ctx, &predicate).await?;
            Ok((
                false,
                format!(
                    "{} of {rows_text} have a NULL ({}); {}",
                    thousands(failed),
                    per_column.join(", "),
                    shown_rows(&shown, SHOWN)
                ),
            ))
        }
        CheckKind::Unique(cols) => {
            let list = cols
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            let dups = format!(
                "SELECT {list}, count(*) AS sluice_n FROM output GROUP BY {list} HAVING count(*) > 1"
            );
            let groups = count(ctx, &format!("SELECT count(*) FROM ({dups})")).await?;
            if groups == 0 {
                return Ok((true, format!("({}) unique in {rows_text}", cols.join(", "))));
            }
            let dup_rows = count(
                ctx,
                &format!("SELECT coalesce(sum(sluice_n), 0) FROM ({dups})"),
            )
            .await?;
            let shown = query(
                ctx,
                &format!("{dups} ORDER BY sluice_n DESC, {list} LIMIT {SHOWN}"),
            )
            .await?;
            let values = shown_counts(&shown, cols.len())?;
            Ok((
                false,
                format!(
                    "{} value{} of ({}) repeated, in {} of {rows_text}; e.g. {values}",
                    thousands(groups),
                    plural(groups),
                    cols.join(", "),
                    thousands(dup_rows),
                ),
            ))
        }
        CheckKind::AcceptedValues { column, values } => {
            let col = quote_ident(column);
            let list = values
                .iter()
                .map(|v| v.sql())
                .collect::<Vec<_>>()
                .join(", ");
            let predicate = format!("{col} IS NOT NULL AND {col} NOT IN ({list})");
            let failed = count(
                ctx,
                &format!("SELECT count(*) FROM output WHERE {predicate}"),
            )
            .await?;
            if failed == 0 {
                return Ok((
                    true,
                    format!("every value of {column} accepted in {rows_text}"),
                ));
            }
            let shown = query(
                ctx,
                &format!(
                    "SELECT {col}, count(*) AS sluice_n FROM output WHERE {predicate} \
                     GROUP BY {col} ORDER BY sluice_n DESC, {col} LIMIT {SHOWN}"
                ),
            )
            .await?;
            Ok((
                false,
                format!(
                    "{} of {rows_text} have a {column} not accepted; e.g. {}",
                    thousands(failed),
                    shown_counts(&shown, 1)?
                ),
            ))
        }
        CheckKind::RowCount { min, max } => {
            let n = count(ctx, "SELECT count(*) FROM output").await?;
            if let Some(min) = min
                && n < *min
            {
                return Ok((
                    false,
                    format!("{rows_text}, below the minimum {}", thousands(*min)),
                ));
            }
            if let Some(max) = max
                && n > *max
            {
                return Ok((
                    false,
                    format!("{rows_text}, above the maximum {}", thousands(*max)),
                ));
            }
            Ok((true, rows_text))
        }
        CheckKind::Expression(expr) => {
            let predicate = format!("({expr}) IS NOT TRUE");
            let failed = count(
                ctx,
                &format!("SELECT count(*) FROM output WHERE {predicate}"),
            )
            .await?;
            if failed == 0 {
                return Ok((true, format!("true for all {rows_text}")));
            }
            let shown = failing_rows(ctx, &predicate).await?;
            Ok((
                false,
                format!(
                    "false or NULL for {} of {rows_text}; {}",
                    thousands(failed),
                    shown_rows(&shown, SHOWN)
                ),
            ))
        }
    }
}

/// Up to `limit` rows as `{col = value, …}`, for a failure's detail.
fn shown_rows(batches: &[RecordBatch], limit: usize) -> String {
    let Some(first) = batches.first() else {
        return String::new();
    };
    let schema = first.schema();
    let Ok(rows) = render(batches) else {
        return String::new();
    };
    let shown: Vec<String> = rows
        .iter()
        .take(limit)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(schema.fields())
                .map(|(cell, f)| {
                    let v = if cell.is_null {
                        "NULL".to_string()
                    } else {
                        cell.toml()
                    };
                    format!("{} = {v}", f.name())
                })
                .collect();
            cut(&format!("{{{}}}", cells.join(", ")), ROW_WIDTH)
        })
        .collect();
    format!("e.g. {}", shown.join("; "))
}

/// Rows of (value columns…, count) as `"a" ×3, "b" ×2`.
fn shown_counts(batches: &[RecordBatch], values: usize) -> Result<String, DataFusionError> {
    let rows = render(batches)?;
    Ok(rows
        .iter()
        .map(|row| {
            let vals: Vec<String> = row[..values]
                .iter()
                .map(|c| {
                    if c.is_null {
                        "NULL".to_string()
                    } else {
                        c.toml()
                    }
                })
                .collect();
            let v = if values == 1 {
                vals[0].clone()
            } else {
                format!("({})", vals.join(", "))
            };
            format!("{} ×{}", cut(&v, ROW_WIDTH), row[values].text)
        })
        .collect::<Vec<_>>()
        .join(", "))
}
