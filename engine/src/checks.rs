//! Data checks: assertions on a pipe's output (`[[check]]` tables of a pipe file) and
//! free SQL checks over an environment's sources (`checks/*.sql`, which must return no
//! rows). Both run in an environment, so in staging they see its sample and in
//! production the full set; promotion runs them as gates.
//!
//! A pipe's checks run on its output, computed once with each parameter's default: the
//! rows are held in memory as a table called `output`, and each check is one SQL query
//! over it.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{ErrorClass, Result, SluiceError, classify, df_message};
use crate::project::Pipe;
use crate::session::{EnvSession, RunOptions};

/// One `[[check]]` of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct DataCheck {
    /// Its `name`, or one made from its kind and columns, e.g. `not_null(name, won)`.
    pub name: String,
    pub kind: CheckKind,
}

/// What a check asserts about every row (or the number of rows) of a pipe's output.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// None of these columns is NULL.
    NotNull(Vec<String>),
    /// The combination of these columns is unique.
    Unique(Vec<String>),
    /// Every non-NULL value of the column is one of these.
    AcceptedValues {
        column: String,
        values: Vec<CheckValue>,
    },
    /// The output has at least `min` and at most `max` rows.
    RowCount { min: Option<u64>, max: Option<u64> },
    /// A SQL boolean that is TRUE for every row (FALSE or NULL fails).
    Expression(String),
}

/// A literal of an `accepted_values` list.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl CheckValue {
    /// The SQL literal of the value.
    pub fn sql(&self) -> String {
        match self {
            CheckValue::String(s) => format!("'{}'", s.replace('\'', "''")),
            CheckValue::Int(i) => i.to_string(),
            CheckValue::Float(f) => format!("{f:?}"),
            CheckValue::Bool(b) => b.to_string(),
        }
    }
}

impl DataCheck {
    /// The name of a check without a `name`: its kind and what it is about.
    pub fn default_name(kind: &CheckKind) -> String {
        match kind {
            CheckKind::NotNull(cols) => format!("not_null({})", cols.join(", ")),
            CheckKind::Unique(cols) => format!("unique({})", cols.join(", ")),
            CheckKind::AcceptedValues { column, .. } => format!("accepted_values({column})"),
            CheckKind::RowCount { min, max } => match (min, max) {
                (Some(a), Some(b)) => format!("row_count({a}..={b})"),
                (Some(a), None) => format!("row_count(>={a})"),
                (None, Some(b)) => format!("row_count(<={b})"),
                (None, None) => "row_count".to_string(),
            },
            CheckKind::Expression(e) => format!("expression({})", e.trim()),
        }
    }

    /// The output columns the check names (not those inside an expression, which
    /// DataFusion resolves when the check runs).
    pub fn columns(&self) -> Vec<&str> {
        match &self.kind {
            CheckKind::NotNull(cols) | CheckKind::Unique(cols) => {
                cols.iter().map(|c| c.as_str()).collect()
            }
            CheckKind::AcceptedValues { column, .. } => vec![column.as_str()],
            CheckKind::RowCount { .. } | CheckKind::Expression(_) => Vec::new(),
        }
    }
}

/// A free SQL check: `checks/NAME.sql`, one query over the environment's sources that
/// must return no rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCheck {
    /// The file's stem.
    pub name: String,
    /// The file, absolute.
    pub file: PathBuf,
    pub sql: String,
}

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

/// Parses a check's `expression`: one SQL expression, nothing after it.
pub(crate) fn parse_expression(expr: &str) -> std::result::Result<(), String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(expr)
        .map_err(|e| format!("expression does not parse: {e}"))?;
    parser
        .parse_expr()
        .map_err(|e| format!("expression does not parse: {e}"))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "expression does not parse: unexpected `{}` after the expression at Line: {}, Column: {}",
            next.token, next.span.start.line, next.span.start.column
        ));
    }
    Ok(())
}

/// Checks that every column a pipe's checks name is a column of its output `schema`.
/// The error names the pipe, the check and the column.
pub fn check_columns(pipe: &Pipe, schema: &Schema) -> std::result::Result<(), String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for check in &pipe.checks {
        for col in check.columns() {
            if names.contains(&col) {
                continue;
            }
            let hint = match names.iter().find(|n| n.eq_ignore_ascii_case(col)) {
                Some(n) => format!(" (did you mean `{n}`? column names are case-sensitive)"),
                None => String::new(),
            };
            return Err(format!(
                "pipe `{}`, check `{}`: the pipe's output has no column `{col}`{hint} (its columns: {})",
                pipe.name,
                check.name,
                names.join(", ")
            ));
        }
    }
    Ok(())
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

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

/// One cell rendered by arrow's display formatter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub text: String,
    pub is_null: bool,
    /// Whether the value is text-like (strings, dates, times), quoted when shown.
    pub quoted: bool,
}

impl Cell {
    /// The cell as a TOML literal: strings quoted, numbers and booleans bare, NULL as
    /// the string "null".
    pub fn toml(&self) -> String {
        if self.is_null {
            "\"null\"".to_string()
        } else if self.quoted {
            toml_string(&self.text)
        } else {
            self.text.clone()
        }
    }
}

pub(crate) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn is_unquoted(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Boolean | DataType::Null)
}

/// Renders every row of `batches`, cell by cell, with arrow's display formatter (NULL
/// as `null`).
pub(crate) fn render(batches: &[RecordBatch]) -> Result<Vec<Vec<Cell>>, DataFusionError> {
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(formatters.len());
            for (c, f) in formatters.iter().enumerate() {
                let col = batch.column(c);
                row.push(Cell {
                    text: f.value(r).to_string(),
                    is_null: col.is_null(r),
                    quoted: !is_unquoted(col.data_type()),
                });
            }
            rows.push(row);
        }
    }
    Ok(rows)
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

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// 12345 → "12,345".
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_whole() {
        assert!(parse_expression("won >= 0 AND name IS NOT NULL").is_ok());
        let err = parse_expression("won >= 0 extra").unwrap_err();
        assert!(err.contains("unexpected `extra`"), "{err}");
        assert!(parse_expression("won >=").is_err());
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(CheckValue::String("o'k".into()).sql(), "'o''k'");
        assert_eq!(CheckValue::Float(1.0).sql(), "1.0");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            DataCheck::default_name(&CheckKind::RowCount {
                min: Some(1),
                max: None
            }),
            "row_count(>=1)"
        );
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
