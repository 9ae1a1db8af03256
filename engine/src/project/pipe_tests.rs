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

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Problem, Result, SluiceError};
use crate::project::load::{SourceText, files_with_extension};
use crate::project::params::ParamValue;
use crate::project::{EngineSettings, Environment, Pipe, Project};

/// The folder of the project holding its test files.
pub const TESTS_DIR: &str = "tests";
/// The store of fixture data pipe tests read, relative to the project.
pub const TEST_DATA_DIR: &str = "tests/data";
/// The name of the environment pipe tests run in.
pub const TEST_ENV: &str = "test";

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
        location: crate::project::location::StoreLocation::Local(project.root.join(TEST_DATA_DIR)),
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
pub fn load_cases(project: &Project, strict: bool) -> Result<Vec<TestCase>> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for path in files_with_extension(&project.root.join(TESTS_DIR), "toml")? {
        let text = crate::project::load::read_project_file(&path)?;
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
            // A case that expects an error may give a value its parameter's type
            // refuses: the value's error is then the run's error.
            let refused_on_purpose =
                rc.expect_error.is_some() && pipe.is_some_and(|p| p.params.contains_key(&pname));
            if strict
                && !refused_on_purpose
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

/// Rewrites the `expect_rows` of the named cases in a test file's text, keeping
/// everything else (other cases, keys, comments) as written: one row per line.
pub fn set_expected_rows(
    file: &Path,
    text: &str,
    updates: &[(String, Vec<Vec<toml::Value>>)],
) -> Result<String> {
    let config = |message: String| SluiceError::Config {
        problems: vec![Problem {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message,
        }],
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| config(e.to_string()))?;
    let cases = doc
        .get_mut("case")
        .and_then(|c| c.as_array_of_tables_mut())
        .ok_or_else(|| config("no [[case]] tables".into()))?;
    for (name, rows) in updates {
        let table = cases
            .iter_mut()
            .find(|t| t.get("name").and_then(|n| n.as_str()).map(str::trim) == Some(name.trim()))
            .ok_or_else(|| config(format!("no case named `{name}`")))?;
        let mut outer = toml_edit::Array::new();
        for row in rows {
            let mut inner = toml_edit::Array::new();
            for cell in row {
                inner.push(edit_value(cell));
            }
            let mut v = toml_edit::Value::Array(inner);
            v.decor_mut().set_prefix("\n    ");
            outer.push_formatted(v);
        }
        if !rows.is_empty() {
            outer.set_trailing_comma(true);
            outer.set_trailing("\n");
        }
        table.insert("expect_rows", toml_edit::value(outer));
    }
    Ok(doc.to_string())
}

/// A TOML scalar as toml_edit writes it.
fn edit_value(v: &toml::Value) -> toml_edit::Value {
    match v {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        other => other.to_string().into(),
    }
}

/// A parameter value written in TOML, converted with the parameter's type and given as
/// text, as a run takes it.
pub fn param_text(
    pipe: &Pipe,
    name: &str,
    value: &toml::Value,
) -> std::result::Result<String, String> {
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
