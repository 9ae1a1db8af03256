//! Running pipe tests (defined in `project::pipe_tests`) on the project's fixture data
//! and judging each case: exact rows, a row count, or an error.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::project::pipe_tests::{Expectation, TestCase, load_cases, param_text, test_environment};
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
    let (passed, detail) = match case_params(pipe, case) {
        Err(msg) => (false, msg),
        Ok(params) => {
            let out = session
                .run_pipe_def(pipe, &params, &RunOptions::default())
                .await;
            judge(&case.expect, out)
        }
    };
    CaseResult {
        file: case.file.clone(),
        case: case.name.clone(),
        pipe: case.pipe.clone(),
        passed,
        detail,
    }
}

fn case_params(pipe: &Pipe, case: &TestCase) -> std::result::Result<Vec<(String, String)>, String> {
    case.params
        .iter()
        .map(|(k, v)| param_text(pipe, k, v).map(|t| (k.clone(), t)))
        .collect()
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

/// Compares the output (or the given columns of it) with the expected rows; the error
/// shows the first differing row.
fn compare_rows(
    only: Option<&[String]>,
    expected: &[Vec<toml::Value>],
    out: &RunOutput,
) -> std::result::Result<(), String> {
    let mut actual = render(&out.batches).map_err(|e| format!("cannot display the output: {e}"))?;
    let all: Vec<&str> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let columns: Vec<&str> = match only {
        None => all,
        Some(only) => {
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
            actual = actual
                .into_iter()
                .map(|row| picked.iter().map(|&i| row[i].clone()).collect())
                .collect();
            only.iter().map(|s| s.as_str()).collect()
        }
    };
    let counts = if expected.len() == actual.len() {
        String::new()
    } else {
        format!(
            " (expected {}, got {})",
            rows_word(expected.len()),
            actual.len()
        )
    };
    for i in 0..expected.len().max(actual.len()) {
        let n = i + 1;
        match (expected.get(i), actual.get(i)) {
            (Some(e), None) => {
                return Err(format!(
                    "row {n}: expected {}, got no row{counts}",
                    toml_row(e)
                ));
            }
            (None, Some(a)) => {
                return Err(format!(
                    "row {n}: expected no row, got {}{counts}",
                    actual_row(a)
                ));
            }
            (Some(e), Some(a)) => {
                if e.len() != a.len() {
                    return Err(format!(
                        "row {n}: expected {} values, the output has {} columns ({}); got {}{counts}",
                        e.len(),
                        a.len(),
                        columns.join(", "),
                        actual_row(a)
                    ));
                }
                if let Some(c) = (0..e.len()).find(|&c| !cell_matches(&e[c], &a[c])) {
                    return Err(format!(
                        "row {n}: expected {}, got {} (column `{}`){counts}",
                        toml_row(e),
                        actual_row(a),
                        columns.get(c).copied().unwrap_or("?")
                    ));
                }
            }
            (None, None) => unreachable!("i is below one of the lengths"),
        }
    }
    Ok(())
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
