//! Reading `sluice.toml` and `pipes/*.toml`: serde gives the shape (unknown keys are
//! refused with their position), then every semantic rule is checked and each problem is
//! collected with its file, line and column, so one `validate` shows them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::WriteMode;
use super::checks::{CheckKind, CheckValue, DataCheck, SqlCheck};
use super::location::{StorageSettings, StoreLocation, validate_settings};
use super::sql::{node_references, placeholders, query_references};
use super::{
    BallistaEngine, EngineSettings, Environment, Materialize, Node, Pipe, Project, RunEngine,
    ServeSettings, SortKey, SourceDef,
};
use crate::error::{Problem, Result, SluiceError};
use crate::project::params::{Param, ParamType, TYPES};
use crate::project::sampling::{SamplePolicy, SourceSampling};

pub const PROJECT_FILE: &str = "sluice.toml";

/// Reads a project file as text. One that is not UTF-8, or cannot be read, is a
/// problem of the project (exit 2) naming the file, not a failed run.
pub(crate) fn read_project_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::InvalidData {
            "the file is not UTF-8 text".to_string()
        } else {
            format!("cannot read the file: {e}")
        };
        SluiceError::Config {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message,
            }],
        }
    })
}

/// The nearest folder at or above `dir` holding a `sluice.toml`.
pub fn find_project_root(dir: &Path) -> Result<PathBuf> {
    let start = dir.canonicalize().map_err(|e| SluiceError::io(dir, e))?;
    let mut cur = Some(start.as_path());
    while let Some(d) = cur {
        if d.join(PROJECT_FILE).is_file() {
            return Ok(d.to_path_buf());
        }
        cur = d.parent();
    }
    Err(SluiceError::NoProject { dir: start })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjectFile {
    project: Option<RawProjectSection>,
    #[serde(default)]
    environments: BTreeMap<String, Spanned<RawEnvironment>>,
    #[serde(default)]
    sources: BTreeMap<String, Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjectSection {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    data: Option<Spanned<String>>,
    sample: Option<Spanned<toml::Value>>,
    #[serde(default)]
    protected: bool,
    target_partitions: Option<Spanned<i64>>,
    batch_size: Option<Spanned<i64>>,
    memory_limit: Option<Spanned<toml::Value>>,
    storage: Option<Spanned<toml::Table>>,
    engine: Option<Spanned<toml::Value>>,
    serve: Option<Spanned<RawServe>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    anonymous: Option<bool>,
    timeout: Option<Spanned<String>>,
    max_rows: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<toml::Value>>,
    max_concurrent: Option<Spanned<i64>>,
    sql: Option<bool>,
    header_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    max_body: Option<Spanned<toml::Value>>,
    refresh: Option<Spanned<String>>,
    cache_bytes: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    path: Option<Spanned<String>>,
    sample_key: Option<String>,
    sample: Option<Spanned<toml::Value>>,
    #[serde(default)]
    sort: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipe {
    description: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<RawParam>>,
    #[serde(default)]
    node: Vec<Spanned<RawNode>>,
    #[serde(default)]
    endpoint: bool,
    materialize: Option<Spanned<RawMaterialize>>,
    cache: Option<Spanned<String>>,
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

/// `materialize = { to = "NAME", mode = "replace" | "append", partition_by = [...] }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaterialize {
    to: Spanned<String>,
    mode: Option<Spanned<String>>,
    #[serde(default)]
    partition_by: Vec<Spanned<String>>,
    #[serde(default)]
    replace_source: bool,
}

/// A `[[check]]`: exactly one kind, and an optional name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Option<Spanned<String>>,
    not_null: Option<Spanned<Vec<Spanned<String>>>>,
    unique: Option<Spanned<Vec<Spanned<String>>>>,
    accepted_values: Option<Spanned<RawAcceptedValues>>,
    row_count: Option<Spanned<RawRowCount>>,
    expression: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcceptedValues {
    column: Spanned<String>,
    values: Spanned<Vec<Spanned<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRowCount {
    min: Option<Spanned<i64>>,
    max: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type")]
    ty: Spanned<String>,
    description: Option<String>,
    default: Option<Spanned<toml::Value>>,
    #[serde(default)]
    required: bool,
    min: Option<Spanned<toml::Value>>,
    max: Option<Spanned<toml::Value>>,
    #[serde(default)]
    allowed: Vec<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    description: Option<String>,
    sql: Spanned<String>,
}

/// A file's text, to turn byte offsets into line and column.
pub(crate) struct SourceText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl SourceText<'_> {
    pub fn problem(&self, offset: usize, message: impl Into<String>) -> Problem {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        Problem {
            file: self.path.to_path_buf(),
            line,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }

    pub fn parse_error(&self, err: toml::de::Error) -> Problem {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        self.problem(offset, err.message().trim().to_string())
    }
}

pub(super) fn load_project(root: &Path) -> Result<Project> {
    let root = root.canonicalize().map_err(|e| SluiceError::io(root, e))?;
    let project_path = root.join(PROJECT_FILE);
    let text = read_project_file(&project_path)?;
    let file = SourceText {
        path: &project_path,
        text: &text,
    };
    let mut problems = Vec::new();

    let raw: RawProjectFile = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(SluiceError::Config {
                problems: vec![file.parse_error(e)],
            });
        }
    };

    let name = raw.project.and_then(|p| p.name).unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into())
    });

    let mut environments = BTreeMap::new();
    // Where each environment's `data` is written, to point at it.
    let mut data_at: BTreeMap<String, usize> = BTreeMap::new();
    for (env_name, raw_env) in raw.environments {
        let span = raw_env.span();
        let raw_env = raw_env.into_inner();
        if !is_identifier(&env_name) {
            problems.push(file.problem(
                span.start,
                format!("environment name `{env_name}` must be letters, digits, `_` or `-`"),
            ));
        }
        let Some(data) = raw_env.data else {
            problems.push(file.problem(
                span.start,
                format!("environment `{env_name}` has no `data` (its store's root folder)"),
            ));
            continue;
        };
        data_at.insert(env_name.clone(), data.span().start);
        let location = match StoreLocation::parse(data.get_ref(), &root) {
            Ok(d) => d,
            Err(msg) => {
                problems.push(file.problem(
                    data.span().start,
                    format!("environment `{env_name}`: {msg}"),
                ));
                continue;
            }
        };
        let sample = match &raw_env.sample {
            None => None,
            Some(v) => match parse_policy(v.get_ref()) {
                Ok(Some(p)) => Some(p),
                Ok(None) => None,
                Err(msg) => {
                    problems.push(
                        file.problem(v.span().start, format!("environment `{env_name}`: {msg}")),
                    );
                    None
                }
            },
        };
        let mut settings = EngineSettings::default();
        for (key, value, slot, max) in [
            (
                "target_partitions",
                &raw_env.target_partitions,
                &mut settings.target_partitions,
                MAX_TARGET_PARTITIONS,
            ),
            (
                "batch_size",
                &raw_env.batch_size,
                &mut settings.batch_size,
                MAX_BATCH_SIZE,
            ),
        ] {
            if let Some(v) = value {
                match bounded(*v.get_ref(), 1, max as i64) {
                    Ok(n) => *slot = Some(n as usize),
                    Err(m) => problems.push(file.problem(
                        v.span().start,
                        format!("environment `{env_name}`: `{key}` {m}"),
                    )),
                }
            }
        }
        if let Some(v) = &raw_env.memory_limit {
            match parse_bytes(v.get_ref())
                .and_then(|b| bounded_bytes(b, MIN_MEMORY_LIMIT, MAX_MEMORY_LIMIT))
            {
                Ok(b) => settings.memory_limit = Some(b),
                Err(msg) => problems.push(file.problem(
                    v.span().start,
                    format!("environment `{env_name}`: `memory_limit`: {msg}"),
                )),
            }
        }
        let storage = match &raw_env.storage {
            None => StorageSettings::default(),
            Some(table) => match parse_storage(table.get_ref())
                .and_then(|st| validate_settings(&location, &st).map(|()| st))
            {
                Ok(st) => st,
                Err(msg) => {
                    problems.push(file.problem(
                        table.span().start,
                        format!("environment `{env_name}`: {msg}"),
                    ));
                    StorageSettings::default()
                }
            },
        };
        let engine = match &raw_env.engine {
            None => RunEngine::Embedded,
            Some(v) => match parse_engine(v.get_ref(), &location) {
                Ok(e) => e,
                Err(msg) => {
                    problems.push(
                        file.problem(v.span().start, format!("environment `{env_name}`: {msg}")),
                    );
                    RunEngine::Embedded
                }
            },
        };
        let mut serve = ServeSettings::default();
        if let Some(raw_serve) = &raw_env.serve {
            let raw_serve = raw_serve.get_ref();
            let mut problem = |offset: usize, msg: String| {
                problems
                    .push(file.problem(offset, format!("environment `{env_name}`: `serve.{msg}")))
            };
            serve.anonymous = raw_serve.anonymous.unwrap_or(false);
            serve.sql = raw_serve.sql.unwrap_or(false);
            if let Some(t) = &raw_serve.timeout {
                match parse_duration(t.get_ref()).and_then(|d| {
                    if d > MAX_SERVE_TIMEOUT {
                        Err(format!(
                            "`{}` is more than the allowed {}",
                            t.get_ref(),
                            humantime::format_duration(MAX_SERVE_TIMEOUT)
                        ))
                    } else {
                        Ok(d)
                    }
                }) {
                    Ok(d) => serve.timeout = d,
                    Err(m) => problem(t.span().start, format!("timeout`: {m}")),
                }
            }
            if let Some(v) = &raw_serve.max_rows {
                match bounded(*v.get_ref(), 1, MAX_SERVE_ROWS) {
                    Ok(n) => serve.max_rows = n as u64,
                    Err(m) => problem(v.span().start, format!("max_rows` {m}")),
                }
            }
            if let Some(v) = &raw_serve.max_concurrent {
                match bounded(*v.get_ref(), 1, MAX_SERVE_CONCURRENT) {
                    Ok(n) => serve.max_concurrent = n as usize,
                    Err(m) => problem(v.span().start, format!("max_concurrent` {m}")),
                }
            }
            if let Some(v) = &raw_serve.max_bytes {
                match parse_bytes(v.get_ref())
                    .and_then(|b| bounded_bytes(b, 1 << 10, MAX_SERVE_BYTES))
                {
                    Ok(b) => serve.max_bytes = b,
                    Err(m) => problem(v.span().start, format!("max_bytes`: {m}")),
                }
            }
            let duration = |t: &Spanned<String>, min: std::time::Duration| {
                parse_duration(t.get_ref()).and_then(|d| {
                    if d < min || d > MAX_SERVE_TIMEOUT {
                        Err(format!(
                            "`{}` is not from {} to {}",
                            t.get_ref(),
                            humantime::format_duration(min),
                            humantime::format_duration(MAX_SERVE_TIMEOUT)
                        ))
                    } else {
                        Ok(d)
                    }
                })
            };
            let ms = std::time::Duration::from_millis;
            for (key, raw, slot, min) in [
                (
                    "header_timeout",
                    &raw_serve.header_timeout,
                    &mut serve.header_timeout,
                    ms(100),
                ),
                (
                    "idle_timeout",
                    &raw_serve.idle_timeout,
                    &mut serve.idle_timeout,
                    ms(100),
                ),
                ("refresh", &raw_serve.refresh, &mut serve.refresh, ms(50)),
            ] {
                if let Some(t) = raw {
                    match duration(t, min) {
                        Ok(d) => *slot = d,
                        Err(m) => problem(t.span().start, format!("{key}`: {m}")),
                    }
                }
            }
            if let Some(v) = &raw_serve.max_connections {
                match bounded(*v.get_ref(), 1, MAX_SERVE_CONNECTIONS) {
                    Ok(n) => serve.max_connections = n as usize,
                    Err(m) => problem(v.span().start, format!("max_connections` {m}")),
                }
            }
            if let Some(v) = &raw_serve.max_body {
                match parse_bytes(v.get_ref())
                    .and_then(|b| bounded_bytes(b, 1 << 10, MAX_SERVE_BYTES))
                {
                    Ok(b) => serve.max_body = b,
                    Err(m) => problem(v.span().start, format!("max_body`: {m}")),
                }
            }
            if let Some(v) = &raw_serve.cache_bytes {
                match parse_bytes(v.get_ref())
                    .and_then(|b| bounded_bytes(b, 0, MAX_SERVE_BYTES * 16))
                {
                    Ok(b) => serve.cache_bytes = b,
                    Err(m) => problem(v.span().start, format!("cache_bytes`: {m}")),
                }
            }
        }
        environments.insert(
            env_name.clone(),
            Environment {
                name: env_name,
                data: data.into_inner(),
                location,
                storage,
                sample,
                protected: raw_env.protected,
                settings,
                engine,
                serve,
                parent: None,
            },
        );
    }

    let mut sources = BTreeMap::new();
    for (src_name, raw_src) in raw.sources {
        let span = raw_src.span();
        let raw_src = raw_src.into_inner();
        if !is_identifier(&src_name) || src_name.contains('-') {
            problems.push(file.problem(
                span.start,
                format!("source name `{src_name}` must be letters, digits or `_`"),
            ));
        }
        let path = match raw_src.path {
            None => src_name.clone(),
            Some(p) => {
                let s = p.get_ref().trim_matches('/').to_string();
                if s.is_empty() || s.split('/').any(|part| part == ".." || part == "_sluice") {
                    problems.push(file.problem(
                        p.span().start,
                        format!("source `{src_name}`: `path` must be a folder inside the store (no `..`, not `_sluice`)"),
                    ));
                }
                s
            }
        };
        let sample = match &raw_src.sample {
            None => None,
            Some(v) => match parse_policy(v.get_ref()) {
                Ok(Some(p)) => Some(SourceSampling::Sampled(p)),
                Ok(None) => Some(SourceSampling::Full),
                Err(msg) => {
                    problems
                        .push(file.problem(v.span().start, format!("source `{src_name}`: {msg}")));
                    None
                }
            },
        };
        let mut sort = Vec::new();
        for s in &raw_src.sort {
            match parse_sort_key(s.get_ref()) {
                Ok(k) => sort.push(k),
                Err(msg) => problems
                    .push(file.problem(s.span().start, format!("source `{src_name}`: {msg}"))),
            }
        }
        sources.insert(
            src_name.clone(),
            SourceDef {
                name: src_name,
                path,
                sample_key: raw_src.sample_key,
                sample,
                sort,
            },
        );
    }

    let mut deleting_branches = BTreeMap::new();
    for branch in super::branch::load_branches(&root, &environments, &mut problems) {
        match branch.deleting {
            Some(since) => {
                deleting_branches.insert(branch.env.name.clone(), (branch.env, since));
            }
            None => {
                environments.insert(branch.env.name.clone(), branch.env);
            }
        }
    }
    // A branch being deleted still has a store no other may overlap.
    let mut all_stores = environments.clone();
    for (name, (env, _)) in &deleting_branches {
        all_stores.insert(name.clone(), env.clone());
    }
    check_store_isolation(&file, &root, &all_stores, &data_at, &mut problems);
    let pipes = load_pipes(&root, &sources, &mut problems)?;
    let sql_checks = load_sql_checks(&root, &sources, &pipes, &mut problems)?;

    if !problems.is_empty() {
        return Err(SluiceError::Config { problems });
    }
    Ok(Project {
        root,
        name,
        environments,
        deleting_branches,
        sources,
        pipes,
        sql_checks,
    })
}

/// Every environment and branch has a store of its own: no two roots may be the same
/// or one inside the other (two environments sharing objects would deploy, ingest and
/// sample-build over each other's data, and deleting a branch would delete the other's).
fn check_store_isolation(
    file: &SourceText<'_>,
    root: &Path,
    environments: &BTreeMap<String, Environment>,
    data_at: &BTreeMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    let envs: Vec<&Environment> = environments.values().collect();
    for (i, a) in envs.iter().enumerate() {
        for b in &envs[i + 1..] {
            if !a.location.overlaps(&b.location) {
                continue;
            }
            let message = format!(
                "environments `{}` ({}) and `{}` ({}) share a store: every environment needs a store of its own, neither inside the other",
                a.name, a.location, b.name, b.location
            );
            // A branch's own file is the place to fix it; else sluice.toml.
            match [a, b].iter().find(|e| e.is_branch()) {
                Some(branch) => {
                    let path = root
                        .join(super::branch::BRANCHES_DIR)
                        .join(format!("{}.toml", branch.name));
                    problems.push(Problem {
                        file: path,
                        line: 1,
                        column: 1,
                        message: format!(
                            "{message} (delete this file to forget branch `{}`; its store is left as it is)",
                            branch.name
                        ),
                    });
                }
                None => {
                    let at = data_at.get(&b.name).copied().unwrap_or(0);
                    problems.push(file.problem(at, message));
                }
            }
        }
    }
}

/// The `Line: L, Column: C` sqlparser puts in its messages, if any.
fn sql_error_position(message: &str) -> Option<(usize, usize)> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// Loads `checks/*.sql`: each one read-only query over the sources, named by its file.
fn load_sql_checks(
    root: &Path,
    sources: &BTreeMap<String, SourceDef>,
    pipes: &BTreeMap<String, Pipe>,
    problems: &mut Vec<Problem>,
) -> Result<Vec<SqlCheck>> {
    let mut checks = Vec::new();
    for path in files_with_extension(&root.join("checks"), "sql")? {
        let text = read_project_file(&path)?;
        let file = SourceText {
            path: &path,
            text: &text,
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let before = problems.len();
        match query_references(&text) {
            Err(msg) => {
                let mut p = file.problem(0, format!("SQL check `{name}`: {msg}"));
                if let Some((line, column)) = sql_error_position(&msg) {
                    p.line = line;
                    p.column = column;
                }
                problems.push(p);
            }
            Ok(tables) => {
                for t in tables {
                    if pipes.contains_key(&t) && !sources.contains_key(&t) {
                        problems.push(file.problem(
                            0,
                            format!(
                                "SQL check `{name}` reads `{t}`, which is a pipe: SQL checks read sources only (to check a pipe's output, add a [[check]] to pipes/{t}.toml)"
                            ),
                        ));
                    }
                }
            }
        }
        match placeholders(&text) {
            Ok(names) if !names.is_empty() => problems.push(file.problem(
                0,
                format!(
                    "SQL check `{name}` uses `${}`: SQL checks take no parameters",
                    names.into_iter().next().unwrap_or_default()
                ),
            )),
            Ok(_) => {}
            // A tokenizer error is reported by the parse above.
            Err(_) => {}
        }
        if problems.len() == before {
            checks.push(SqlCheck {
                name,
                file: path.clone(),
                sql: text.clone(),
            });
        }
    }
    Ok(checks)
}

/// The files of a project folder with this extension, in name order (none when the
/// folder does not exist).
pub(crate) fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SluiceError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn load_pipes(
    root: &Path,
    sources: &BTreeMap<String, SourceDef>,
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<String, Pipe>> {
    let mut pipes = BTreeMap::new();
    for path in files_with_extension(&root.join("pipes"), "toml")? {
        let text = read_project_file(&path)?;
        let file = SourceText {
            path: &path,
            text: &text,
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_identifier(&name) || name.contains('-') {
            problems.push(file.problem(
                0,
                format!("pipe name `{name}` (the file name) must be letters, digits or `_`"),
            ));
        }
        if let Some(pipe) = load_pipe(&file, name.clone(), sources, problems) {
            pipes.insert(name, pipe);
        }
    }
    Ok(pipes)
}

/// Loads one pipe from its TOML text (a working-copy file or a deployed version kept in
/// a store); `path` names it in messages.
pub(crate) fn pipe_from_text(
    path: &Path,
    name: &str,
    text: &str,
    sources: &BTreeMap<String, SourceDef>,
) -> Result<Pipe> {
    let file = SourceText { path, text };
    let mut problems = Vec::new();
    match load_pipe(&file, name.to_string(), sources, &mut problems) {
        Some(pipe) if problems.is_empty() => Ok(pipe),
        _ => Err(SluiceError::Config { problems }),
    }
}

fn load_pipe(
    file: &SourceText<'_>,
    name: String,
    sources: &BTreeMap<String, SourceDef>,
    problems: &mut Vec<Problem>,
) -> Option<Pipe> {
    let raw: RawPipe = match toml::from_str(file.text) {
        Ok(r) => r,
        Err(e) => {
            let mut p = file.parse_error(e);
            if p.message.contains("unknown field `endpoint`") {
                p.message.push_str(" (a key written after a `[[node]]` or `[[check]]` belongs to that table: put `endpoint = true` before the first `[[node]]`)");
            }
            problems.push(p);
            return None;
        }
    };
    let before = problems.len();

    let declared: Vec<String> = raw.params.keys().cloned().collect();
    let mut params = BTreeMap::new();
    for (pname, raw_param) in raw.params {
        let pspan = raw_param.span();
        let rp = raw_param.into_inner();
        if !is_identifier(&pname) || pname.contains('-') {
            problems.push(file.problem(
                pspan.start,
                format!("parameter name `{pname}` must be letters, digits or `_`"),
            ));
        }
        let Some(ty) = ParamType::parse(rp.ty.get_ref()) else {
            problems.push(file.problem(
                rp.ty.span().start,
                format!(
                    "parameter `{pname}`: unknown type `{}` (expected one of: {})",
                    rp.ty.get_ref(),
                    TYPES.join(", ")
                ),
            ));
            continue;
        };
        let mut typed = |what: &str, v: &Spanned<toml::Value>| match ty.from_toml(v.get_ref()) {
            Ok(val) => Some(val),
            Err(msg) => {
                problems.push(file.problem(
                    v.span().start,
                    format!("parameter `{pname}`: `{what}` {msg} (the parameter's type is {ty})"),
                ));
                None
            }
        };
        let default = rp.default.as_ref().and_then(|v| typed("default", v));
        let min = rp.min.as_ref().and_then(|v| typed("min", v));
        let max = rp.max.as_ref().and_then(|v| typed("max", v));
        let allowed: Vec<_> = rp
            .allowed
            .iter()
            .filter_map(|v| typed("allowed", v))
            .collect();
        let param = Param {
            name: pname.clone(),
            ty,
            description: rp.description,
            default,
            required: rp.required,
            min,
            max,
            allowed,
        };
        if let (Some(d), Some(span)) = (&param.default, rp.default.as_ref().map(|d| d.span())) {
            if rp.required {
                problems.push(file.problem(
                    span.start,
                    format!("parameter `{pname}` is `required` and has a `default`: choose one"),
                ));
            }
            if let Err(msg) = param.check(d) {
                problems
                    .push(file.problem(span.start, format!("parameter `{pname}`: default {msg}")));
            }
        }
        params.insert(pname, param);
    }

    if raw.node.is_empty() {
        problems.push(file.problem(
            0,
            format!("pipe `{name}` has no `[[node]]`: a pipe needs at least one SQL node"),
        ));
    }
    if raw.node.len() > super::sql::MAX_PIPE_NODES {
        problems.push(file.problem(
            raw.node[super::sql::MAX_PIPE_NODES].span().start,
            format!(
                "pipe `{name}` has {} nodes, more than the limit of {}: nodes read each other as nested views, and a plan that deep is refused",
                raw.node.len(),
                super::sql::MAX_PIPE_NODES
            ),
        ));
    }
    let queries: usize = raw
        .node
        .iter()
        .map(|n| super::sql::select_count(n.get_ref().sql.get_ref()))
        .sum();
    if queries > super::sql::MAX_PIPE_QUERIES {
        problems.push(file.problem(
            0,
            format!(
                "pipe `{name}` has {queries} SELECTs in its nodes, more than the limit of {}: each nests the plan a level deeper",
                super::sql::MAX_PIPE_QUERIES
            ),
        ));
    }
    let node_names: Vec<String> = raw
        .node
        .iter()
        .map(|n| n.get_ref().name.get_ref().to_ascii_lowercase())
        .collect();
    let mut nodes = Vec::new();
    for (idx, raw_node) in raw.node.iter().enumerate() {
        let rn = raw_node.get_ref();
        let node_name = rn.name.get_ref().clone();
        let name_at = rn.name.span().start;
        if !is_identifier(&node_name) || node_name.contains('-') {
            problems.push(file.problem(
                name_at,
                format!("node name `{node_name}` must be letters, digits or `_`"),
            ));
        }
        let lower = node_name.to_ascii_lowercase();
        if node_names[..idx].contains(&lower) {
            problems.push(file.problem(
                name_at,
                format!("pipe `{name}`: duplicate node name `{node_name}`"),
            ));
        }
        if sources.contains_key(&lower) {
            problems.push(file.problem(
                name_at,
                format!(
                    "pipe `{name}`: node `{node_name}` has the name of a source; rename the node"
                ),
            ));
        }
        let sql_at = rn.sql.span().start;
        match node_references(rn.sql.get_ref()) {
            Err(msg) => problems
                .push(file.problem(sql_at, format!("pipe `{name}`, node `{node_name}`: {msg}"))),
            Ok(refs) => {
                for r in refs {
                    if let Some(pos) = node_names.iter().position(|n| *n == r) {
                        if pos == idx {
                            problems.push(file.problem(
                                sql_at,
                                format!("pipe `{name}`, node `{node_name}` reads itself"),
                            ));
                        } else if pos > idx {
                            problems.push(file.problem(sql_at, format!(
                                "pipe `{name}`, node `{node_name}` reads `{}`, which comes later; a node reads only earlier nodes",
                                raw.node[pos].get_ref().name.get_ref()
                            )));
                        }
                    }
                }
            }
        }
        match placeholders(rn.sql.get_ref()) {
            Ok(names) => {
                for p in names {
                    if !declared.contains(&p) {
                        problems.push(file.problem(sql_at, format!(
                            "pipe `{name}`, node `{node_name}` uses `${p}`, which is not a declared parameter (add [params.{p}])"
                        )));
                    }
                }
            }
            Err(msg) => problems
                .push(file.problem(sql_at, format!("pipe `{name}`, node `{node_name}`: {msg}"))),
        }
        nodes.push(Node {
            name: node_name,
            description: rn.description.clone(),
            sql: rn.sql.get_ref().clone(),
        });
    }

    let mut checks: Vec<DataCheck> = Vec::new();
    for raw_check in &raw.check {
        if let Some(c) = load_check(file, &name, raw_check, problems) {
            if checks.iter().any(|earlier| earlier.name == c.name) {
                problems.push(file.problem(
                    raw_check.span().start,
                    format!(
                        "pipe `{name}`: two checks are called `{}`; give one a `name`",
                        c.name
                    ),
                ));
            }
            checks.push(c);
        }
    }
    if !checks.is_empty() {
        let at = raw.check.first().map(|c| c.span().start).unwrap_or(0);
        for (pname, p) in &params {
            if p.required && p.default.is_none() {
                problems.push(file.problem(
                    at,
                    format!(
                        "pipe `{name}`: checks run the pipe with each parameter's default, and parameter `{pname}` is required; give it a default"
                    ),
                ));
            }
        }
    }

    let materialize = raw.materialize.and_then(|m| {
        let m = m.into_inner();
        let mut ok = true;
        let to = m.to.get_ref().clone();
        if !is_identifier(&to) || to.contains('-') {
            problems.push(file.problem(
                m.to.span().start,
                format!("pipe `{name}`: materialize `to = \"{to}\"` must be a dataset name: letters, digits or `_`"),
            ));
            ok = false;
        }
        let mode = match m.mode.as_ref().map(|v| v.get_ref().as_str()) {
            None | Some("replace") => WriteMode::Replace,
            Some("append") => WriteMode::Append,
            Some(other) => {
                problems.push(file.problem(
                    m.mode.as_ref().expect("given").span().start,
                    format!("pipe `{name}`: materialize mode `{other}` must be \"replace\" or \"append\""),
                ));
                ok = false;
                WriteMode::Replace
            }
        };
        let mut partition_by = Vec::new();
        for p in &m.partition_by {
            if p.get_ref().trim().is_empty() || partition_by.contains(p.get_ref()) {
                problems.push(file.problem(
                    p.span().start,
                    format!("pipe `{name}`: materialize partition_by has an empty or repeated column"),
                ));
                ok = false;
            }
            partition_by.push(p.get_ref().clone());
        }
        // A declared source is data the project reads from elsewhere: a pipe writing
        // over it must say so.
        if let Some(source) = sources
            .values()
            .find(|s| s.name == to || s.path.trim_matches('/') == to)
            && !m.replace_source
        {
            problems.push(file.problem(
                m.to.span().start,
                format!(
                    "pipe `{name}`: materialize `to = \"{to}\"` is the declared source `{}`: a run would replace its data; write to a dataset of its own, or set `replace_source = true` in `materialize` if it is meant to (its output must then have the source's columns)",
                    source.name
                ),
            ));
            ok = false;
        }
        ok.then_some(Materialize {
            to,
            mode,
            partition_by,
            replace_source: m.replace_source,
        })
    });

    let cache = raw
        .cache
        .as_ref()
        .and_then(|c| match parse_duration(c.get_ref()) {
            Ok(d) if d.is_zero() => None,
            Ok(d) if d <= MAX_SERVE_TIMEOUT => Some(d),
            Ok(_) => {
                problems.push(file.problem(
                    c.span().start,
                    format!(
                        "pipe `{name}`: `cache = \"{}\"` is more than the allowed {}",
                        c.get_ref(),
                        humantime::format_duration(MAX_SERVE_TIMEOUT)
                    ),
                ));
                None
            }
            Err(m) => {
                problems.push(file.problem(c.span().start, format!("pipe `{name}`: `cache`: {m}")));
                None
            }
        });
    if problems.len() > before {
        return None;
    }
    Some(Pipe {
        name,
        file: file.path.to_path_buf(),
        description: raw.description,
        params,
        nodes,
        endpoint: raw.endpoint,
        materialize,
        cache,
        checks,
        text: file.text.to_string(),
    })
}

/// A list of column names of a check: not empty, no empty names.
fn check_column_list(
    file: &SourceText<'_>,
    pipe: &str,
    kind: &str,
    list: &Spanned<Vec<Spanned<String>>>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    if list.get_ref().is_empty() {
        problems.push(file.problem(
            list.span().start,
            format!("pipe `{pipe}`: check `{kind}` needs at least one column"),
        ));
        return None;
    }
    let mut cols = Vec::new();
    for c in list.get_ref() {
        if c.get_ref().trim().is_empty() {
            problems.push(file.problem(
                c.span().start,
                format!("pipe `{pipe}`: check `{kind}`: empty column name"),
            ));
            return None;
        }
        cols.push(c.get_ref().clone());
    }
    Some(cols)
}

fn load_check(
    file: &SourceText<'_>,
    pipe: &str,
    raw: &Spanned<RawCheck>,
    problems: &mut Vec<Problem>,
) -> Option<DataCheck> {
    let at = raw.span().start;
    let rc = raw.get_ref();
    let kinds: Vec<&str> = [
        ("not_null", rc.not_null.is_some()),
        ("unique", rc.unique.is_some()),
        ("accepted_values", rc.accepted_values.is_some()),
        ("row_count", rc.row_count.is_some()),
        ("expression", rc.expression.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(k, _)| k)
    .collect();
    if kinds.len() != 1 {
        let found = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        };
        problems.push(file.problem(
            at,
            format!(
                "pipe `{pipe}`: a [[check]] has exactly one of not_null, unique, accepted_values, row_count, expression (found: {found})"
            ),
        ));
        return None;
    }
    let kind = if let Some(list) = &rc.not_null {
        CheckKind::NotNull(check_column_list(file, pipe, "not_null", list, problems)?)
    } else if let Some(list) = &rc.unique {
        CheckKind::Unique(check_column_list(file, pipe, "unique", list, problems)?)
    } else if let Some(av) = &rc.accepted_values {
        let av = av.get_ref();
        if av.column.get_ref().trim().is_empty() {
            problems.push(file.problem(
                av.column.span().start,
                format!("pipe `{pipe}`: check `accepted_values`: empty column name"),
            ));
            return None;
        }
        if av.values.get_ref().is_empty() {
            problems.push(file.problem(
                av.values.span().start,
                format!("pipe `{pipe}`: check `accepted_values` needs at least one value"),
            ));
            return None;
        }
        let mut values = Vec::new();
        for v in av.values.get_ref() {
            let value = match v.get_ref() {
                toml::Value::String(s) => CheckValue::String(s.clone()),
                toml::Value::Integer(i) => CheckValue::Int(*i),
                toml::Value::Float(f) if f.is_finite() => CheckValue::Float(*f),
                toml::Value::Boolean(b) => CheckValue::Bool(*b),
                other => {
                    problems.push(file.problem(
                        v.span().start,
                        format!(
                            "pipe `{pipe}`: check `accepted_values`: {other} is not a string, integer, finite number or boolean"
                        ),
                    ));
                    return None;
                }
            };
            values.push(value);
        }
        CheckKind::AcceptedValues {
            column: av.column.get_ref().clone(),
            values,
        }
    } else if let Some(rc_span) = &rc.row_count {
        let r = rc_span.get_ref();
        let mut bound = |b: &Option<Spanned<i64>>, what: &str| -> Option<Option<u64>> {
            match b {
                None => Some(None),
                Some(v) if *v.get_ref() < 0 => {
                    problems.push(file.problem(
                        v.span().start,
                        format!("pipe `{pipe}`: check `row_count`: `{what}` must be 0 or more"),
                    ));
                    None
                }
                Some(v) => Some(Some(*v.get_ref() as u64)),
            }
        };
        let min = bound(&r.min, "min")?;
        let max = bound(&r.max, "max")?;
        match (min, max) {
            (None, None) => {
                problems.push(file.problem(
                    rc_span.span().start,
                    format!("pipe `{pipe}`: check `row_count` needs a `min`, a `max` or both"),
                ));
                return None;
            }
            (Some(a), Some(b)) if a > b => {
                problems.push(file.problem(
                    rc_span.span().start,
                    format!("pipe `{pipe}`: check `row_count`: `min` {a} is above `max` {b}"),
                ));
                return None;
            }
            _ => {}
        }
        CheckKind::RowCount { min, max }
    } else {
        let expr = rc.expression.as_ref().expect("one kind is present");
        let text = expr.get_ref();
        if let Err(msg) = super::checks::parse_expression(text) {
            problems.push(file.problem(
                expr.span().start,
                format!("pipe `{pipe}`, check `expression`: {msg}"),
            ));
            return None;
        }
        match placeholders(text) {
            Ok(names) if names.is_empty() => {}
            _ => {
                problems.push(file.problem(
                    expr.span().start,
                    format!(
                        "pipe `{pipe}`, check `expression`: a check takes no parameters (no `$name`)"
                    ),
                ));
                return None;
            }
        }
        CheckKind::Expression(text.clone())
    };
    let name = match &rc.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            problems.push(file.problem(
                n.span().start,
                format!("pipe `{pipe}`: a check's `name` is empty"),
            ));
            return None;
        }
        Some(n) => n.get_ref().clone(),
        None => DataCheck::default_name(&kind),
    };
    Some(DataCheck { name, kind })
}

pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Resolves an environment's `data` to a local folder. Object-store URLs are refused
/// until object stores are supported.
/// `[environments.NAME.storage]`: object-store settings, and `from_env`, the variables
/// secrets are read from.
fn parse_storage(table: &toml::Table) -> Result<StorageSettings, String> {
    let mut settings = StorageSettings::default();
    for (key, value) in table {
        if key == "from_env" {
            let toml::Value::Table(vars) = value else {
                return Err("storage `from_env` must be a table of setting = \"VARIABLE\"".into());
            };
            for (k, v) in vars {
                let toml::Value::String(var) = v else {
                    return Err(format!(
                        "storage `from_env.{k}` must name an environment variable (a string)"
                    ));
                };
                settings.from_env.insert(k.clone(), var.clone());
            }
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                return Err(format!(
                    "storage setting `{key}` must be a string, number or boolean"
                ));
            }
        };
        settings.options.insert(key.clone(), text);
    }
    Ok(settings)
}

/// Parses `engine`: `"embedded"`, `{ kind = "embedded" }` or
/// `{ kind = "ballista", url = "df://host:port", connect_timeout = "5s", timeout = "30m" }`.
fn parse_engine(value: &toml::Value, store: &StoreLocation) -> Result<RunEngine, String> {
    const SHAPE: &str =
        "expected `engine = { kind = \"ballista\", url = \"df://host:50050\" }` or \"embedded\"";
    let table = match value {
        toml::Value::String(s) if s == "embedded" => return Ok(RunEngine::Embedded),
        toml::Value::Table(t) => t,
        other => return Err(format!("`engine = {other}`: {SHAPE}")),
    };
    let mut kind = None;
    let mut url = None;
    let mut connect_timeout = std::time::Duration::from_secs(5);
    let mut job_timeout = std::time::Duration::from_secs(30 * 60);
    for (k, v) in table {
        match (k.as_str(), v) {
            ("kind", toml::Value::String(s)) => kind = Some(s.as_str()),
            ("url", toml::Value::String(s)) => url = Some(s.as_str()),
            ("connect_timeout", toml::Value::String(s)) => {
                connect_timeout = parse_duration(s).map_err(|e| format!("engine `{k}`: {e}"))?
            }
            ("timeout", toml::Value::String(s)) => {
                job_timeout = parse_duration(s).map_err(|e| format!("engine `{k}`: {e}"))?
            }
            ("kind" | "url", _) => return Err(format!("engine `{k}` must be a string")),
            ("connect_timeout" | "timeout", _) => {
                return Err(format!("engine `{k}` must be a duration like \"30s\""));
            }
            (other, _) => {
                return Err(format!(
                    "unknown key `{other}` in engine (expected kind, url, connect_timeout, timeout)"
                ));
            }
        }
    }
    match kind {
        Some("embedded") => {
            if table.len() > 1 {
                return Err("an `embedded` engine takes no other keys".into());
            }
            Ok(RunEngine::Embedded)
        }
        Some("ballista") => {
            let url =
                url.ok_or("a `ballista` engine needs `url = \"df://host:50050\"` (its scheduler)")?;
            let (host, port) = parse_scheduler_url(url)?;
            match store {
                StoreLocation::Local(_) => {}
                StoreLocation::Url(u) if matches!(u.scheme(), "s3" | "s3a") => {}
                StoreLocation::Url(u) => {
                    return Err(format!(
                        "a `ballista` engine reads local or shared folders (file://) and s3:// stores, the object stores Ballista's scheduler and executors have; `{}://` is not one of them",
                        u.scheme()
                    ));
                }
            }
            if !cfg!(feature = "ballista") {
                return Err(
                    "`engine.kind = \"ballista\"` needs a sluice built with Ballista support: rebuild with `--features ballista` (e.g. `cargo install --path cli --features ballista`)"
                        .into(),
                );
            }
            Ok(RunEngine::Ballista(BallistaEngine {
                url: url.to_string(),
                host,
                port,
                connect_timeout,
                job_timeout,
            }))
        }
        Some(other) => Err(format!(
            "unknown engine kind `{other}` (expected `embedded` or `ballista`)"
        )),
        None => Err(format!("engine has no `kind`: {SHAPE}")),
    }
}

/// `df://host[:port]`: a Ballista scheduler (port 50050 unless given).
fn parse_scheduler_url(url: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("engine `url = \"{url}\"`: {why} (expected df://host:50050)");
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "df" {
        return Err(bad(&format!(
            "`{}://` is not a Ballista scheduler URL",
            parsed.scheme()
        )));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    if !(parsed.path().is_empty() || parsed.path() == "/") || parsed.query().is_some() {
        return Err(bad("a scheduler URL has no path or query"));
    }
    Ok((host.to_string(), parsed.port().unwrap_or(50050)))
}

/// Parses a `sample` value: the string `"full"` (no sampling) or a policy table.
pub(crate) fn parse_policy(value: &toml::Value) -> Result<Option<SamplePolicy>, String> {
    let table = match value {
        toml::Value::String(s) if s == "full" => return Ok(None),
        toml::Value::String(s) => {
            return Err(format!(
                "`sample = \"{s}\"`: expected \"full\" or a table like {{ method = \"system\", fraction = 0.05 }}"
            ));
        }
        toml::Value::Table(t) => t,
        other => {
            return Err(format!(
                "`sample = {other}`: expected \"full\" or a table like {{ method = \"system\", fraction = 0.05 }}"
            ));
        }
    };
    let mut method = None;
    let mut fraction = None;
    let mut rows = None;
    let mut seed = None;
    let mut key = None;
    for (k, v) in table {
        match (k.as_str(), v) {
            ("method", toml::Value::String(s)) => method = Some(s.clone()),
            ("fraction", toml::Value::Float(f)) => fraction = Some(*f),
            ("fraction", toml::Value::Integer(i)) => fraction = Some(*i as f64),
            ("rows", toml::Value::Integer(i)) if *i >= 0 => rows = Some(*i as u64),
            ("seed", toml::Value::Integer(i)) if *i >= 0 => seed = Some(*i as u64),
            ("key", toml::Value::String(s)) => key = Some(s.clone()),
            ("method" | "key", _) => return Err(format!("sample `{k}` must be a string")),
            ("fraction", _) => return Err("sample `fraction` must be a number in (0, 1]".into()),
            ("rows" | "seed", _) => {
                return Err(format!("sample `{k}` must be a non-negative integer"));
            }
            (other, _) => {
                return Err(format!(
                    "unknown key `{other}` in sample policy (expected method, fraction, rows, seed, key)"
                ));
            }
        }
    }
    let method = method.ok_or("sample policy needs a `method` (system, key, bernoulli or rows)")?;
    SamplePolicy::build(&method, fraction, rows, seed, key).map(Some)
}

/// The bounds of an environment's settings: past them a value cannot help and can
/// hurt (a `target_partitions` of 100,000 plans 100,000 partitions per scan; a
/// `batch_size` near 2^62 overflows an allocation).
pub const MAX_TARGET_PARTITIONS: usize = 1024;
pub const MAX_BATCH_SIZE: usize = 1 << 20;
pub const MIN_MEMORY_LIMIT: u64 = 1 << 20;
pub const MAX_MEMORY_LIMIT: u64 = 1 << 50;
pub const MAX_SERVE_ROWS: i64 = 100_000_000;
pub const MAX_SERVE_CONCURRENT: i64 = 4096;
pub const MAX_SERVE_BYTES: u64 = 16 << 30;
pub const MAX_SERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The most connections `serve.max_connections` may allow.
pub const MAX_SERVE_CONNECTIONS: i64 = 65_536;

/// `n` if it is within `min..=max`, else a message giving the allowed range.
fn bounded(n: i64, min: i64, max: i64) -> Result<i64, String> {
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "is {n}: it must be from {} to {}",
            crate::util::text::thousands(min as u64),
            crate::util::text::thousands(max as u64)
        ))
    }
}

/// A size within `min..=max` bytes, else a message giving the allowed range.
fn bounded_bytes(b: u64, min: u64, max: u64) -> Result<u64, String> {
    if (min..=max).contains(&b) {
        Ok(b)
    } else {
        Err(format!(
            "{} is outside the allowed range, {} to {}",
            crate::util::text::human_bytes(b),
            crate::util::text::human_bytes(min),
            crate::util::text::human_bytes(max)
        ))
    }
}

/// Parses `"4GiB"`, `"512 MiB"`, `"1.5G"` or a plain integer of bytes.
pub(crate) fn parse_bytes(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(i) if *i > 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_byte_size(s),
        other => Err(format!("expected a size like \"4GiB\", got {other}")),
    }
}

/// Parses a span of time such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` or
/// `"1h 30m"` (humantime's format); it must be more than zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like \"30s\", \"5m\" or \"1h\" ({e})"))?;
    // Every duration Sluice reads (timeouts, `--since`) is a span of time, never none.
    if d.is_zero() {
        return Err(format!("`{s}` must be more than 0"));
    }
    Ok(d)
}

/// Parses a size such as `"4GiB"`, `"512 MiB"`, `"500MB"` (decimal units: 10^6) or
/// `"1.5 GiB"` (bytesize's format); it must be more than zero bytes.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("`{s}` is not a size like \"4GiB\" or \"512MiB\" ({e})"))?;
    if size.as_u64() == 0 {
        return Err(format!("`{s}` must be more than 0 bytes"));
    }
    Ok(size.as_u64())
}

fn parse_sort_key(s: &str) -> Result<SortKey, String> {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let original: Vec<&str> = s.split_whitespace().collect();
    let bad = || format!("sort key `{s}`: expected `column [ASC|DESC] [NULLS FIRST|NULLS LAST]`");
    let column = original.first().ok_or_else(bad)?.to_string();
    let mut descending = false;
    let mut rest = &words[1..];
    if let Some(first) = rest.first() {
        match first.as_str() {
            "ASC" => rest = &rest[1..],
            "DESC" => {
                descending = true;
                rest = &rest[1..];
            }
            _ => {}
        }
    }
    // DataFusion's default: nulls first for descending, last for ascending.
    let nulls_first = match rest {
        [] => descending,
        [n, f] if n == "NULLS" && f == "FIRST" => true,
        [n, l] if n == "NULLS" && l == "LAST" => false,
        _ => return Err(bad()),
    };
    Ok(SortKey {
        column,
        descending,
        nulls_first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_byte_size("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("500MB").unwrap(), 500_000_000);
        assert!(parse_byte_size("0B").is_err());
        assert!(
            bounded_bytes(
                parse_byte_size("99999999999TiB").unwrap_or(u64::MAX),
                MIN_MEMORY_LIMIT,
                MAX_MEMORY_LIMIT
            )
            .is_err()
        );
        assert!(parse_byte_size("4 parsecs").is_err());
    }

    #[test]
    fn durations_and_scheduler_urls() {
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(
            parse_scheduler_url("df://sched:50051").unwrap(),
            ("sched".to_string(), 50051)
        );
        assert_eq!(parse_scheduler_url("df://sched").unwrap().1, 50050);
        assert!(parse_scheduler_url("http://sched:50050").is_err());
        assert!(parse_scheduler_url("df://sched:50050/x").is_err());
    }

    #[test]
    fn sort_keys() {
        let k = parse_sort_key("started_at desc").unwrap();
        assert!(k.descending && k.nulls_first);
        assert!(parse_sort_key("a sideways").is_err());
    }
}
