//! Pipe tests: `tests/*.toml` files of a project, each a list of `[[case]]`s that run a
//! pipe with given parameters against the fixture data the project ships (the store
//! `tests/data/`, read in full) and state what must come out: exact rows, a row count,
//! or an error.
//!
//! ```toml
//! [[case]]
//! name = "top three reps"
//! pipe = "top_reps"
//! params = { limit = 3, since = "2024-06-01" }
//! expect_rows = [["Gia Jones", "north", 20, 261003.0]]
//! ```
//!
//! With `columns = ["name", "won"]`, only those output columns are compared (in that
//! order), so adding a column to a pipe does not break its cases.
//!
//! Cells are compared as arrow displays them: a TOML string with the text (a NULL
//! displays as `null`), an integer or float with the number (floats within a relative
//! 1e-9), a boolean, a date or time with its text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::checks::{Cell, render};
use crate::error::{Problem, Result, SluiceError};
use crate::params::ParamValue;
use crate::project::{
    EngineSettings, Environment, Pipe, Project, SourceText, files_with_extension,
};
use crate::sample::SampleOverride;
use crate::session::{EnvSession, RunOptions, RunOutput};

/// The folder of the project holding its test files.
pub const TESTS_DIR: &str = "tests";
/// The store of fixture data pipe tests read, relative to the project.
pub const TEST_DATA_DIR: &str = "tests/data";
/// The name of the environment pipe tests run in.
pub const TEST_ENV: &str = "test";

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

/// One `[[case]]` of a test file.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The test file, relative to the project.
    pub file: PathBuf,
    pub name: String,
    pub pipe: String,
    /// Parameter values as written (TOML scalars), converted with each parameter's type
    /// when the case runs.
    pub params: Vec<(String, toml::Value)>,
    pub expect: Expectation,
}

/// What a case expects of its run.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// Exactly these rows, in this order; of these output columns only, when given.
    Rows {
        columns: Option<Vec<String>>,
        rows: Vec<Vec<toml::Value>>,
    },
    /// This many rows.
    RowCount(u64),
    /// An error whose message contains this text.
    Error(String),
    /// No expectation: the pipe runs without an error.
    Runs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

type RawRow = Vec<Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    pipe: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    columns: Option<Spanned<Vec<Spanned<String>>>>,
    expect_rows: Option<Spanned<Vec<Spanned<RawRow>>>>,
    expect_row_count: Option<Spanned<i64>>,
    expect_error: Option<Spanned<String>>,
}

/// The environment pipe tests run in: the project's `tests/data` store, read in full.
pub fn test_environment(project: &Project) -> Environment {
    Environment {
        name: TEST_ENV.to_string(),
        data: TEST_DATA_DIR.to_string(),
        location: crate::store::StoreLocation::Local(project.root.join(TEST_DATA_DIR)),
        storage: Default::default(),
        sample: None,
        protected: false,
        settings: EngineSettings::default(),
        // Fixture data lives in the project folder: pipe tests always run embedded.
        engine: Default::default(),
        serve: Default::default(),
        parent: None,
    }
}

/// Loads every case of the project's `tests/*.toml`, checking each file: unknown keys,
/// unknown pipes, unknown parameter names and values of the wrong type are reported as
/// `file:line:column: message`, all at once.
pub fn load_pipe_tests(project: &Project) -> Result<Vec<TestCase>> {
    load_cases(project, true)
}

/// Loads the cases; with `strict`, also checks each case's pipe and parameters against
/// the project's pipes (else only the files' shape is checked).
fn load_cases(project: &Project, strict: bool) -> Result<Vec<TestCase>> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for path in files_with_extension(&project.root.join(TESTS_DIR), "toml")? {
        let text = std::fs::read_to_string(&path).map_err(|e| SluiceError::io(&path, e))?;
        let file = SourceText {
            path: &path,
            text: &text,
        };
        let rel = path
            .strip_prefix(&project.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.clone());
        load_file(project, &file, &rel, strict, &mut cases, &mut problems);
    }
    if !problems.is_empty() {
        return Err(SluiceError::Config { problems });
    }
    Ok(cases)
}

fn load_file(
    project: &Project,
    file: &SourceText<'_>,
    rel: &Path,
    strict: bool,
    cases: &mut Vec<TestCase>,
    problems: &mut Vec<Problem>,
) {
    let raw: RawTestFile = match toml::from_str(file.text) {
        Ok(r) => r,
        Err(e) => {
            problems.push(file.parse_error(e));
            return;
        }
    };
    if raw.case.is_empty() {
        problems.push(file.problem(
            0,
            "a test file needs at least one [[case]] (with `name`, `pipe` and an expectation)",
        ));
        return;
    }
    let mut names: Vec<String> = Vec::new();
    for raw_case in raw.case {
        let before = problems.len();
        let case_at = raw_case.span().start;
        let rc = raw_case.into_inner();
        let name = rc.name.get_ref().trim().to_string();
        if name.is_empty() {
            problems.push(file.problem(rc.name.span().start, "a case's `name` is empty"));
        } else if names.contains(&name) {
            problems.push(file.problem(
                rc.name.span().start,
                format!("two cases are called `{name}` in this file"),
            ));
        }
        names.push(name.clone());

        let pipe_name = rc.pipe.get_ref().clone();
        let pipe = project.pipes.get(&pipe_name);
        if strict && pipe.is_none() {
            let known: Vec<&str> = project.pipes.keys().map(|s| s.as_str()).collect();
            problems.push(file.problem(
                rc.pipe.span().start,
                format!(
                    "case `{name}`: unknown pipe `{pipe_name}` (known: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }

        let mut params = Vec::new();
        for (key, value) in rc.params {
            let pname = key.get_ref().clone();
            if !is_scalar(value.get_ref()) {
                problems.push(file.problem(
                    value.span().start,
                    format!(
                        "case `{name}`: parameter `{pname}`: a value is a string, number, boolean or date"
                    ),
                ));
                continue;
            }
            if strict
                && let Some(pipe) = pipe
                && let Err(msg) = param_text(pipe, &pname, value.get_ref())
            {
                let at = if pipe.params.contains_key(&pname) {
                    value.span().start
                } else {
                    key.span().start
                };
                problems.push(file.problem(at, format!("case `{name}`: {msg}")));
                continue;
            }
            params.push((pname, value.into_inner()));
        }

        let given: Vec<&str> = [
            ("expect_rows", rc.expect_rows.is_some()),
            ("expect_row_count", rc.expect_row_count.is_some()),
            ("expect_error", rc.expect_error.is_some()),
        ]
        .into_iter()
        .filter(|(_, g)| *g)
        .map(|(k, _)| k)
        .collect();
        if given.len() > 1 {
            problems.push(file.problem(
                case_at,
                format!(
                    "case `{name}`: choose one of expect_rows, expect_row_count, expect_error (found: {})",
                    given.join(", ")
                ),
            ));
        }
        let mut columns = None;
        if let Some(cols) = &rc.columns {
            if rc.expect_rows.is_none() {
                problems.push(file.problem(
                    cols.span().start,
                    format!("case `{name}`: `columns` applies to `expect_rows`, which is missing"),
                ));
            } else if cols.get_ref().is_empty() {
                problems.push(file.problem(
                    cols.span().start,
                    format!("case `{name}`: `columns` is empty"),
                ));
            }
            let mut list: Vec<String> = Vec::new();
            for c in cols.get_ref() {
                if list.contains(c.get_ref()) {
                    problems.push(file.problem(
                        c.span().start,
                        format!("case `{name}`: column `{}` is listed twice", c.get_ref()),
                    ));
                }
                list.push(c.get_ref().clone());
            }
            columns = Some(list);
        }
        let mut expect = Expectation::Runs;
        if let Some(rows) = rc.expect_rows {
            let mut out = Vec::new();
            for row in rows.into_inner() {
                let mut cells = Vec::new();
                for cell in row.into_inner() {
                    if !is_scalar(cell.get_ref()) {
                        problems.push(file.problem(
                            cell.span().start,
                            format!(
                                "case `{name}`: a cell of `expect_rows` is a string, number, boolean or date (NULL is the string \"null\")"
                            ),
                        ));
                    }
                    cells.push(cell.into_inner());
                }
                out.push(cells);
            }
            expect = Expectation::Rows { columns, rows: out };
        } else if let Some(n) = rc.expect_row_count {
            if *n.get_ref() < 0 {
                problems.push(file.problem(
                    n.span().start,
                    format!("case `{name}`: `expect_row_count` must be 0 or more"),
                ));
            }
            expect = Expectation::RowCount((*n.get_ref()).max(0) as u64);
        } else if let Some(e) = rc.expect_error {
            if e.get_ref().trim().is_empty() {
                problems.push(file.problem(
                    e.span().start,
                    format!(
                        "case `{name}`: `expect_error` is empty; give a part of the expected message"
                    ),
                ));
            }
            expect = Expectation::Error(e.into_inner());
        }
        if problems.len() == before {
            cases.push(TestCase {
                file: rel.to_path_buf(),
                name,
                pipe: pipe_name,
                params,
                expect,
            });
        }
    }
}

fn is_scalar(v: &toml::Value) -> bool {
    !matches!(v, toml::Value::Array(_) | toml::Value::Table(_))
}

/// A parameter value written in TOML, converted with the parameter's type and given as
/// text, as a run takes it.
fn param_text(pipe: &Pipe, name: &str, value: &toml::Value) -> std::result::Result<String, String> {
    let param = pipe.params.get(name).ok_or_else(|| {
        let known: Vec<&str> = pipe.params.keys().map(|s| s.as_str()).collect();
        format!(
            "pipe `{}` has no parameter `{name}` (declared: {})",
            pipe.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })?;
    let typed = param.ty.from_toml(value).map_err(|m| {
        format!(
            "parameter `{name}`: {m} (the parameter's type is {})",
            param.ty
        )
    })?;
    Ok(match typed {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::String(s) => s,
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Date(d) => d.format("%Y-%m-%d").to_string(),
        ParamValue::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        ParamValue::Null(_) => String::new(),
    })
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
