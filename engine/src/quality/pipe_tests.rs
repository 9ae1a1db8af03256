//! Running pipe tests (defined in `project::pipe_tests`) on the project's fixture data
//! and judging each case: exact rows, a row count, or an error.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::project::pipe_tests::{
    Expectation, TestCase, load_cases, param_text, set_expected_rows, test_environment,
};
use crate::project::sampling::SampleOverride;
use crate::project::{Pipe, Project};
use crate::quality::cells::{Cell, render};
use crate::session::{EnvSession, RunOptions, RunOutput};

pub use crate::project::pipe_tests::{TEST_DATA_DIR, TEST_ENV, TESTS_DIR};

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The test file, relative to the project (`tests/top_reps.toml`).
    pub file: PathBuf,
    pub case: String,
    pub pipe: String,
    pub passed: bool,
    /// What was found; on failure, expected against actual.
    pub detail: String,
}

/// A session on the project's fixture store, read in full.
fn fixture_session(project: &Arc<Project>) -> Result<EnvSession> {
    EnvSession::open_with(
        project.clone(),
        test_environment(project),
        &SampleOverride::default(),
    )
}

/// Loads and runs every case (of `pipes`, or all when empty) against the project's fixture data.
pub async fn run_pipe_tests(project: Arc<Project>, pipes: &[String]) -> Result<Vec<CaseResult>> {
    for p in pipes {
        project.pipe(p)?;
    }
    let cases = load_cases(&project, true)?;
    let session = fixture_session(&project)?;
    let mut results = Vec::new();
    for case in &cases {
        if !pipes.is_empty() && !pipes.contains(&case.pipe) {
            continue;
        }
        let pipe = project.pipe(&case.pipe)?;
        results.push(run_case(&session, pipe, case).await);
    }
    Ok(results)
}

/// Runs the cases like `run_pipe_tests`, and writes the output of each case with
/// `expect_rows` that it does not match as its expected rows (as insta accepts a
/// snapshot): the rest of each file stays as written. A case whose pipe fails, or of
/// another expectation, is judged as usual.
pub async fn update_pipe_tests(project: Arc<Project>, pipes: &[String]) -> Result<Vec<CaseResult>> {
    for p in pipes {
        project.pipe(p)?;
    }
    let cases = load_cases(&project, true)?;
    let session = fixture_session(&project)?;
    let mut results = Vec::new();
    let mut updates: Vec<(PathBuf, String, Vec<Vec<toml::Value>>)> = Vec::new();
    for case in &cases {
        if !pipes.is_empty() && !pipes.contains(&case.pipe) {
            continue;
        }
        let pipe = project.pipe(&case.pipe)?;
        let Expectation::Rows { columns, rows } = &case.expect else {
            results.push(run_case(&session, pipe, case).await);
            continue;
        };
        let out = match run_case_output(&session, pipe, case).await {
            Ok(out) => out,
            Err(msg) => {
                results.push(CaseResult {
                    file: case.file.clone(),
                    case: case.name.clone(),
                    pipe: case.pipe.clone(),
                    passed: false,
                    detail: msg,
                });
                continue;
            }
        };
        let current = out
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|o| output_cells(columns.as_deref(), o));
        let (passed, detail) = match (current, out) {
            (Ok((_, cells)), Ok(out)) => match compare_rows(columns.as_deref(), rows, &out) {
                Ok(()) => (true, format!("{} as expected", rows_word(rows.len()))),
                Err(_) => {
                    let detail = format!(
                        "updated: {} (was {})",
                        rows_word(cells.len()),
                        rows_word(rows.len())
                    );
                    updates.push((
                        case.file.clone(),
                        case.name.clone(),
                        cells
                            .iter()
                            .map(|r| r.iter().map(toml_cell).collect())
                            .collect(),
                    ));
                    (true, detail)
                }
            },
            (_, Err(e)) => (false, format!("the pipe failed: {e}")),
            (Err(msg), Ok(_)) => (false, msg),
        };
        results.push(CaseResult {
            file: case.file.clone(),
            case: case.name.clone(),
            pipe: case.pipe.clone(),
            passed,
            detail,
        });
    }
    let mut files: Vec<&PathBuf> = updates.iter().map(|(f, _, _)| f).collect();
    files.sort();
    files.dedup();
    for file in files {
        let path = project.root.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| SluiceError::io(&path, e))?;
        let these: Vec<(String, Vec<Vec<toml::Value>>)> = updates
            .iter()
            .filter(|(f, _, _)| f == file)
            .map(|(_, name, rows)| (name.clone(), rows.clone()))
            .collect();
        let text = set_expected_rows(file, &text, &these)?;
        crate::util::fs::write_atomic(&path, text.as_bytes())?;
    }
    Ok(results)
}

/// A cell as the TOML value `expect_rows` holds: text quoted, numbers and booleans
/// bare, NULL as the string "null".
fn toml_cell(cell: &Cell) -> toml::Value {
    if cell.is_null {
        return toml::Value::String("null".into());
    }
    if cell.quoted {
        return toml::Value::String(cell.text.clone());
    }
    if let Ok(i) = cell.text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = cell.text.parse::<f64>() {
        return toml::Value::Float(f);
    }
    match cell.text.as_str() {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        other => toml::Value::String(other.to_string()),
    }
}

/// The same for one given definition of a pipe (a version about to be promoted), for the cases that name it.
pub async fn run_pipe_tests_for(project: Arc<Project>, pipe: &Pipe) -> Result<Vec<CaseResult>> {
    // The files are checked for their shape only: their parameters are checked against
    // this definition when its cases run (a case this version cannot run fails).
    let cases = load_cases(&project, false)?;
    let session = fixture_session(&project)?;
    let mut results = Vec::new();
    for case in cases.iter().filter(|c| c.pipe == pipe.name) {
        results.push(run_case(&session, pipe, case).await);
    }
    Ok(results)
}

async fn run_case(session: &EnvSession, pipe: &Pipe, case: &TestCase) -> CaseResult {
    let (passed, detail) = match run_case_output(session, pipe, case).await {
        Ok(out) => judge(&case.expect, out),
        Err(msg) => (false, msg),
    };
    CaseResult {
        file: case.file.clone(),
        case: case.name.clone(),
        pipe: case.pipe.clone(),
        passed,
        detail,
    }
}

/// The case's run: its parameters converted with the pipe's types (a value the type
/// refuses is the run's error), then the pipe on the fixture data. A parameter the pipe
/// does not declare means the case cannot run (`Err`: why).
async fn run_case_output(
    session: &EnvSession,
    pipe: &Pipe,
    case: &TestCase,
) -> std::result::Result<Result<RunOutput>, String> {
    let mut params = Vec::with_capacity(case.params.len());
    for (k, v) in &case.params {
        match param_text(pipe, k, v) {
            Ok(text) => params.push((k.clone(), text)),
            Err(msg) if pipe.params.contains_key(k) => {
                return Ok(Err(SluiceError::Usage(format!(
                    "pipe `{}`: {msg}",
                    pipe.name
                ))));
            }
            Err(msg) => return Err(msg),
        }
    }
    Ok(session
        .run_pipe_def(pipe, &params, &RunOptions::default())
        .await)
}

fn rows_word(n: usize) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// Whether a run meets the expectation, and what was found.
fn judge(expect: &Expectation, out: Result<RunOutput>) -> (bool, String) {
    match (expect, out) {
        (Expectation::Error(want), Ok(out)) => (
            false,
            format!(
                "expected an error containing {:?}, but the pipe returned {}",
                want,
                rows_word(out.report.rows_out as usize)
            ),
        ),
        (Expectation::Error(want), Err(e)) => {
            let msg = e.to_string();
            if msg.contains(want.as_str()) {
                (true, format!("failed as expected: {msg}"))
            } else {
                (
                    false,
                    format!("expected an error containing {want:?}, got: {msg}"),
                )
            }
        }
        (_, Err(e)) => (false, format!("the pipe failed: {e}")),
        (Expectation::Runs, Ok(out)) => (
            true,
            format!("ran: {}", rows_word(out.report.rows_out as usize)),
        ),
        (Expectation::RowCount(n), Ok(out)) => {
            let got = out.report.rows_out;
            if got == *n {
                (true, rows_word(got as usize))
            } else {
                (
                    false,
                    format!("expected {}, got {}", rows_word(*n as usize), got),
                )
            }
        }
        (Expectation::Rows { columns, rows }, Ok(out)) => {
            match compare_rows(columns.as_deref(), rows, &out) {
                Ok(()) => (true, format!("{} as expected", rows_word(rows.len()))),
                Err(msg) => (false, msg),
            }
        }
    }
}

fn toml_row(row: &[toml::Value]) -> String {
    toml::Value::Array(row.to_vec()).to_string()
}

fn actual_row(row: &[Cell]) -> String {
    format!(
        "[{}]",
        row.iter().map(Cell::toml).collect::<Vec<_>>().join(", ")
    )
}

/// How many differing rows a failing case shows.
pub const MAX_SHOWN_DIFFERENCES: usize = 20;

/// The output's rows as cells, of the given columns only (in that order) when given,
/// with the column names.
pub fn output_cells(
    only: Option<&[String]>,
    out: &RunOutput,
) -> std::result::Result<(Vec<String>, Vec<Vec<Cell>>), String> {
    let actual = render(&out.batches).map_err(|e| format!("cannot display the output: {e}"))?;
    let all: Vec<String> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let Some(only) = only else {
        return Ok((all, actual));
    };
    let mut picked = Vec::new();
    for c in only {
        let i = all.iter().position(|a| a == c).ok_or_else(|| {
            format!(
                "the output has no column `{c}` (its columns: {})",
                all.join(", ")
            )
        })?;
        picked.push(i);
    }
    let rows = actual
        .into_iter()
        .map(|row| picked.iter().map(|&i| row[i].clone()).collect())
        .collect();
    Ok((only.to_vec(), rows))
}

/// An expected row and an actual one, equal when every cell matches (for the diff).
struct Expected<'a>(&'a [toml::Value]);
struct Actual<'a>(&'a [Cell]);

impl PartialEq<Expected<'_>> for Actual<'_> {
    fn eq(&self, other: &Expected<'_>) -> bool {
        self.0.len() == other.0.len() && other.0.iter().zip(self.0).all(|(e, a)| cell_matches(e, a))
    }
}

/// Compares the output (or the given columns of it) with the expected rows; the error
/// lists every differing row (up to `MAX_SHOWN_DIFFERENCES`), aligned by a diff so a
/// missing or extra row shows as one.
fn compare_rows(
    only: Option<&[String]>,
    expected: &[Vec<toml::Value>],
    out: &RunOutput,
) -> std::result::Result<(), String> {
    let (columns, actual) = output_cells(only, out)?;
    // A row of the wrong width is a mistake in the case: say so first.
    if let Some((i, e)) = expected
        .iter()
        .enumerate()
        .find(|(_, e)| e.len() != columns.len())
    {
        return Err(format!(
            "row {}: expected {} values, the output has {} columns ({}); got {}",
            i + 1,
            e.len(),
            columns.len(),
            columns.join(", "),
            actual
                .get(i)
                .map(|a| actual_row(a))
                .unwrap_or_else(|| "no row".into())
        ));
    }
    let old: Vec<Expected> = expected.iter().map(|r| Expected(r)).collect();
    let new: Vec<Actual> = actual.iter().map(|r| Actual(r)).collect();
    let mut hook = similar::algorithms::Replace::new(similar::algorithms::Capture::new());
    similar::algorithms::myers::diff(&mut hook, &old, 0..old.len(), &new, 0..new.len())
        .map_err(|e| format!("cannot compare the rows: {e:?}"))?;
    let mut lines = Vec::new();
    let mut differing = 0usize;
    let mut push = |line: String| {
        differing += 1;
        if lines.len() < MAX_SHOWN_DIFFERENCES {
            lines.push(line);
        }
    };
    for op in hook.into_inner().into_ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        let pairs = old_range.len().min(new_range.len());
        for k in 0..old_range.len().max(new_range.len()) {
            match (
                (k < old_range.len()).then(|| old_range.start + k),
                (k < new_range.len()).then(|| new_range.start + k),
            ) {
                (Some(o), Some(n)) if k < pairs => {
                    let (e, a) = (&expected[o], &actual[n]);
                    let bad: Vec<&str> = (0..e.len())
                        .filter(|&c| !cell_matches(&e[c], &a[c]))
                        .map(|c| columns[c].as_str())
                        .collect();
                    push(format!(
                        "  row {}: expected {}, got {} (column{} `{}`)",
                        n + 1,
                        toml_row(e),
                        actual_row(a),
                        if bad.len() == 1 { "" } else { "s" },
                        bad.join("`, `")
                    ));
                }
                (Some(o), _) => push(format!(
                    "  expected row {}: {} is missing",
                    o + 1,
                    toml_row(&expected[o])
                )),
                (None, Some(n)) => push(format!(
                    "  row {}: {} was not expected",
                    n + 1,
                    actual_row(&actual[n])
                )),
                (None, None) => {}
            }
        }
    }
    if differing == 0 {
        return Ok(());
    }
    let mut msg = format!(
        "{differing} difference{} (expected {}, got {}):\n{}",
        if differing == 1 { "" } else { "s" },
        rows_word(expected.len()),
        rows_word(actual.len()),
        lines.join("\n")
    );
    if differing > lines.len() {
        msg.push_str(&format!("\n  … and {} more", differing - lines.len()));
    }
    Err(msg)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Whether an actual cell (as arrow displays it) is the expected TOML value.
fn cell_matches(expected: &toml::Value, cell: &Cell) -> bool {
    let text = cell.text.as_str();
    match expected {
        toml::Value::String(s) => text == s,
        _ if cell.is_null => false,
        toml::Value::Integer(i) => match text.parse::<i64>() {
            Ok(v) => v == *i,
            Err(_) => text.parse::<f64>().is_ok_and(|v| close(v, *i as f64)),
        },
        toml::Value::Float(f) => text.parse::<f64>().is_ok_and(|v| close(v, *f)),
        toml::Value::Boolean(b) => text == b.to_string(),
        toml::Value::Datetime(d) => {
            let d = d.to_string();
            text == d || text == d.replace('T', " ")
        }
        toml::Value::Array(_) | toml::Value::Table(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(text: &str, is_null: bool) -> Cell {
        Cell {
            text: text.into(),
            is_null,
            quoted: false,
        }
    }

    #[test]
    fn cells_compare_as_displayed() {
        assert!(cell_matches(&toml::Value::Integer(54), &cell("54", false)));
        assert!(!cell_matches(&toml::Value::Integer(54), &cell("55", false)));
        assert!(cell_matches(
            &toml::Value::Float(677517.0),
            &cell("677517.0000000001", false)
        ));
        assert!(!cell_matches(
            &toml::Value::Float(677517.0),
            &cell("677517.01", false)
        ));
        assert!(cell_matches(
            &toml::Value::String("null".into()),
            &cell("null", true)
        ));
        assert!(!cell_matches(&toml::Value::Integer(0), &cell("null", true)));
        assert!(cell_matches(
            &toml::Value::Boolean(true),
            &cell("true", false)
        ));
    }
}
