//! `sluice shell`: an interactive SQL shell on an environment's sources, with the output
//! formats and run summary of `query`. Statements end with `;` and may span lines; dot
//! (or backslash) commands list and describe sources, run pipes, and switch the
//! environment, the sampling and the format. On a terminal, rustyline edits the line,
//! keeps the history in the project's `.sluice/shell_history` and completes commands,
//! sources, columns, pipes and parameters; from a pipe or a file, lines are read as they
//! come (a script), and any failed statement makes the exit status 1.
//!
//! `Shell::line` does everything a line asks and writes to the writers it is given, so
//! it is tested without a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride, SluiceError};

use super::Failed;
use crate::args::{ShellArgs, parse_param};
use crate::print::{
    PrintFormat, human_bytes, human_count, source_lines, summary_line, table_string, write_batches,
};
use crate::settings::Settings;

/// The shell's commands, with their arguments and what they do (`.help`).
const COMMANDS: &[(&str, &str, &str)] = &[
    (".sources", "", "the sources: files, rows, bytes, sampling"),
    (".describe", "SOURCE", "a source's columns and types"),
    (".pipes", "", "the pipes and their parameters"),
    (
        ".run",
        "PIPE [name=value …]",
        "run a pipe (the deployed version in a protected environment)",
    ),
    (".env", "[NAME]", "show or switch the environment"),
    (
        ".sample",
        "[FRACTION [METHOD [KEY]] | off]",
        "show or override the sampling (off: the environment's own)",
    ),
    (".full", "", "read the full set"),
    (
        ".format",
        "[table|csv|json|ndjson]",
        "show or set the output format",
    ),
    (".verbose", "[on|off]", "a line per source after each run"),
    (".help", "", "this list"),
    (".quit", "", "leave (also .exit, \\q, Ctrl-D)"),
];

/// SQL words offered by completion, after sources and columns.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "INNER JOIN",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS NULL",
    "IS NOT NULL",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "UNION ALL",
    "EXPLAIN",
    "DESC",
    "ASC",
    "BETWEEN",
    "LIKE",
    "date_trunc",
];

const TEXT_FORMATS: &[&str] = &["table", "csv", "json", "ndjson"];
const METHODS: &[&str] = &["system", "key", "bernoulli", "rows"];

/// What completion offers: refreshed when the shell opens or switches environment.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub sources: Vec<String>,
    pub columns: Vec<String>,
    /// Each pipe with its parameters.
    pub pipes: Vec<(String, Vec<String>)>,
    pub envs: Vec<String>,
}

/// Whether the shell goes on after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Quit,
}

pub struct Shell {
    project: Arc<Project>,
    env: String,
    sample: SampleOverride,
    format: PrintFormat,
    verbose: bool,
    session: EnvSession,
    /// The lines of a statement not ended yet.
    pending: String,
    vocabulary: Arc<Mutex<Vocabulary>>,
    /// Statements and commands that failed.
    pub failures: usize,
    /// Whether Ctrl-C cancels a running statement (on a terminal).
    interruptible: bool,
}

impl Shell {
    /// Opens the shell on `env` (default: staging; a protected one only when named).
    pub async fn open(
        project: Arc<Project>,
        env: Option<&str>,
        sample: SampleOverride,
        format: PrintFormat,
    ) -> Result<Shell> {
        check_text_format(format)?;
        let env = project.select_environment(env)?.name.clone();
        let session = EnvSession::open(project.clone(), &env, &sample)?;
        let mut shell = Shell {
            project,
            env,
            sample,
            format,
            verbose: false,
            session,
            pending: String::new(),
            vocabulary: Arc::new(Mutex::new(Vocabulary::default())),
            failures: 0,
            interruptible: false,
        };
        shell.refresh().await;
        Ok(shell)
    }

    pub fn set_verbose(&mut self, verbose: bool) {
        self.verbose = verbose;
    }

    /// What completion reads (shared with the line editor).
    pub fn vocabulary(&self) -> Arc<Mutex<Vocabulary>> {
        self.vocabulary.clone()
    }

    /// `staging> `, or `staging..> ` inside a statement.
    pub fn prompt(&self) -> String {
        if self.pending.is_empty() {
            format!("{}> ", self.env)
        } else {
            format!("{}..> ", self.env)
        }
    }

    /// What the environment reads, for the banner and `.sample`.
    fn describe_sampling(&self) -> String {
        match self.session.policy() {
            Some(p) => format!("sample {p}"),
            None => "full data".into(),
        }
    }

    pub fn banner(&self) -> String {
        format!(
            "sluice shell · environment {} ({}) · statements end with ; · .help for commands, .quit to leave",
            self.env,
            self.describe_sampling()
        )
    }

    /// Handles one line: a command, or part of a statement (run once a `;` ends it).
    /// Results go to `out`, summaries and errors to `err`; a failure is reported and
    /// counted, and the shell goes on.
    pub async fn line(&mut self, line: &str, out: &mut dyn Write, err: &mut dyn Write) -> Next {
        let trimmed = line.trim();
        if self.pending.trim().is_empty() && (trimmed.starts_with('.') || trimmed.starts_with('\\'))
        {
            self.pending.clear();
            return match self.command(trimmed, out, err).await {
                Ok(next) => next,
                Err(e) => {
                    self.report(err, &e);
                    Next::Continue
                }
            };
        }
        self.pending.push_str(line);
        self.pending.push('\n');
        let (statements, rest) = split_statements(&self.pending);
        self.pending = rest;
        if self.pending.trim().is_empty() {
            self.pending.clear();
        }
        for sql in statements {
            if let Err(e) = self.statement(&sql, out, err).await {
                self.report(err, &e);
            }
        }
        Next::Continue
    }

    /// Runs what is left of a statement not ended with `;` (the end of a script).
    pub async fn finish(&mut self, out: &mut dyn Write, err: &mut dyn Write) {
        let rest = std::mem::take(&mut self.pending);
        if !rest.trim().is_empty()
            && let Err(e) = self.statement(rest.trim(), out, err).await
        {
            self.report(err, &e);
        }
    }

    /// Drops a statement being typed (Ctrl-C at the prompt).
    pub fn cancel_pending(&mut self) {
        self.pending.clear();
    }

    fn report(&mut self, err: &mut dyn Write, e: &anyhow::Error) {
        self.failures += 1;
        let text = match e.downcast_ref::<SluiceError>() {
            Some(s) => s.to_string(),
            None => format!("{e:#}"),
        };
        let _ = writeln!(err, "error: {text}");
    }

    async fn statement(
        &mut self,
        sql: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        let options = RunOptions::default();
        let run = self.session.query(sql, &options);
        let result = if self.interruptible {
            tokio::select! {
                r = run => r,
                _ = tokio::signal::ctrl_c() => {
                    writeln!(err, "cancelled")?;
                    return Ok(());
                }
            }
        } else {
            run.await
        };
        let output = result?;
        self.print(&output, out, err)
    }

    fn print(
        &self,
        output: &sluice_engine::RunOutput,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        write_batches(out, self.format, &output.schema, &output.batches)?;
        writeln!(err, "{}", summary_line(&output.report))?;
        if self.verbose {
            for line in source_lines(&output.report) {
                writeln!(err, "{line}")?;
            }
        }
        Ok(())
    }

    async fn command(
        &mut self,
        text: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<Next> {
        let words = split_words(text)?;
        let Some((name, args)) = words.split_first() else {
            return Ok(Next::Continue);
        };
        // `\x` is `.x`; psql's `\q`, `\d`, `\?` too.
        let name = match name.as_str() {
            "\\q" => ".quit".to_string(),
            "\\?" => ".help".to_string(),
            "\\d" if args.is_empty() => ".sources".to_string(),
            "\\d" => ".describe".to_string(),
            n => format!(".{}", &n[1..]),
        };
        match name.as_str() {
            ".quit" | ".exit" => return Ok(Next::Quit),
            ".help" => {
                let rows: Vec<Vec<String>> = COMMANDS
                    .iter()
                    .map(|(c, a, what)| {
                        vec![format!("{c} {a}").trim().to_string(), what.to_string()]
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    table_string(&["command", "what it does"], &rows)?
                )?;
                writeln!(
                    out,
                    "SQL statements (SELECT, WITH, VALUES, EXPLAIN) end with ; and may span lines."
                )?;
            }
            ".sources" => self.sources(out).await?,
            ".describe" => {
                let [source] = args else {
                    anyhow::bail!(SluiceError::Usage("usage: .describe SOURCE".into()));
                };
                let listing = self.session.list_source(source).await?;
                let schema = listing.table_schema();
                let rows: Vec<Vec<String>> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        vec![
                            f.name().clone(),
                            f.data_type().to_string(),
                            if f.is_nullable() { "yes" } else { "no" }.into(),
                        ]
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    table_string(&["column", "type", "nullable"], &rows)?
                )?;
            }
            ".pipes" => {
                let rows: Vec<Vec<String>> = self
                    .project
                    .pipes
                    .values()
                    .map(|p| {
                        let params: Vec<String> = p
                            .params
                            .iter()
                            .map(|(n, param)| format!("{n} ({})", param.ty))
                            .collect();
                        vec![
                            p.name.clone(),
                            params.join(", "),
                            p.description.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    table_string(&["pipe", "parameters", "description"], &rows)?
                )?;
            }
            ".run" => {
                let Some((pipe, params)) = args.split_first() else {
                    anyhow::bail!(SluiceError::Usage("usage: .run PIPE [name=value …]".into()));
                };
                let params = params
                    .iter()
                    .map(|p| parse_param(p).map_err(SluiceError::Usage))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let def = self.session.resolve_pipe(pipe, false).await?;
                let output = sluice_engine::stats::run_pipe_recorded(
                    &self.session,
                    &def,
                    &params,
                    &RunOptions::default(),
                    "shell",
                )
                .await?;
                self.print(&output, out, err)?;
            }
            ".env" => match args {
                [] => writeln!(
                    out,
                    "environment {} ({})",
                    self.env,
                    self.describe_sampling()
                )?,
                [env] => {
                    self.reopen(Some(env.clone()), self.sample.clone()).await?;
                    writeln!(
                        out,
                        "environment {} ({})",
                        self.env,
                        self.describe_sampling()
                    )?;
                }
                _ => anyhow::bail!(SluiceError::Usage("usage: .env [NAME]".into())),
            },
            ".sample" => {
                let sample = match args {
                    [] => None,
                    [off] if off == "off" => Some(SampleOverride::default()),
                    [fraction, rest @ ..] if rest.len() <= 2 => {
                        let fraction: f64 = fraction.parse().map_err(|_| {
                            SluiceError::Usage(format!(
                                ".sample: `{fraction}` is not a number (a fraction; for rows, a count)"
                            ))
                        })?;
                        Some(SampleOverride {
                            fraction: Some(fraction),
                            method: rest.first().cloned(),
                            key: rest.get(1).cloned(),
                            ..SampleOverride::default()
                        })
                    }
                    _ => anyhow::bail!(SluiceError::Usage(
                        "usage: .sample [FRACTION [METHOD [KEY]] | off]".into()
                    )),
                };
                if let Some(sample) = sample {
                    self.reopen(None, sample).await?;
                }
                writeln!(out, "{}", self.describe_sampling())?;
            }
            ".full" => {
                if !args.is_empty() {
                    anyhow::bail!(SluiceError::Usage("usage: .full".into()));
                }
                self.reopen(
                    None,
                    SampleOverride {
                        full: true,
                        ..SampleOverride::default()
                    },
                )
                .await?;
                writeln!(out, "{}", self.describe_sampling())?;
            }
            ".format" => match args {
                [] => writeln!(out, "{}", format_name(self.format))?,
                [f] => {
                    let format =
                        <PrintFormat as clap::ValueEnum>::from_str(f, true).map_err(|_| {
                            SluiceError::Usage(format!(
                                ".format: `{f}` is not one of {}",
                                TEXT_FORMATS.join(", ")
                            ))
                        })?;
                    check_text_format(format)?;
                    self.format = format;
                    writeln!(out, "{}", format_name(self.format))?;
                }
                _ => anyhow::bail!(SluiceError::Usage("usage: .format [NAME]".into())),
            },
            ".verbose" => {
                self.verbose = match args {
                    [] => !self.verbose,
                    [v] if v == "on" => true,
                    [v] if v == "off" => false,
                    _ => anyhow::bail!(SluiceError::Usage("usage: .verbose [on|off]".into())),
                };
                writeln!(out, "verbose {}", if self.verbose { "on" } else { "off" })?;
            }
            other => anyhow::bail!(SluiceError::Usage(format!(
                "unknown command `{other}`: .help lists them"
            ))),
        }
        Ok(Next::Continue)
    }

    async fn sources(&self, out: &mut dyn Write) -> Result<()> {
        let mut rows = Vec::new();
        for name in self.session.source_names().await? {
            let def = self.session.source_def(&name).await?;
            let sampling = match def
                .as_ref()
                .map(|d| self.project.source_sampling(d, self.session.policy()))
            {
                Some(sluice_engine::SourceSampling::Sampled(p)) => p.to_string(),
                _ => "full".to_string(),
            };
            match self.session.list_source(&name).await {
                Ok(l) => rows.push(vec![
                    name,
                    l.files.len().to_string(),
                    human_count(l.rows()),
                    human_bytes(l.bytes()),
                    sampling,
                ]),
                Err(_) => rows.push(vec![
                    name,
                    "0".into(),
                    "no data".into(),
                    "-".into(),
                    sampling,
                ]),
            }
        }
        writeln!(
            out,
            "{}",
            table_string(&["source", "files", "rows", "bytes", "sample"], &rows)?
        )?;
        Ok(())
    }

    /// Opens the session again on another environment or sampling; on failure the
    /// shell stays as it was.
    async fn reopen(&mut self, env: Option<String>, sample: SampleOverride) -> Result<()> {
        let env = match env {
            Some(e) => self.project.environment(&e)?.name.clone(),
            None => self.env.clone(),
        };
        let session = EnvSession::open(self.project.clone(), &env, &sample)?;
        self.session = session;
        self.env = env;
        self.sample = sample;
        self.refresh().await;
        Ok(())
    }

    /// Reads the sources' columns for completion (a source without data has none).
    async fn refresh(&mut self) {
        let mut v = Vocabulary {
            envs: self.project.environments.keys().cloned().collect(),
            pipes: self
                .project
                .pipes
                .values()
                .map(|p| (p.name.clone(), p.params.keys().cloned().collect()))
                .collect(),
            ..Vocabulary::default()
        };
        if let Ok(names) = self.session.source_names().await {
            for name in names {
                if let Ok(listing) = self.session.list_source(&name).await {
                    v.columns.extend(
                        listing
                            .table_schema()
                            .fields()
                            .iter()
                            .map(|f| f.name().clone()),
                    );
                }
                v.sources.push(name);
            }
        }
        v.columns.sort();
        v.columns.dedup();
        if let Ok(mut shared) = self.vocabulary.lock() {
            *shared = v;
        }
    }
}

fn format_name(format: PrintFormat) -> String {
    clap::ValueEnum::to_possible_value(&format)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Binary formats would write bytes into the terminal.
fn check_text_format(format: PrintFormat) -> Result<()> {
    if !TEXT_FORMATS.contains(&format_name(format).as_str()) {
        anyhow::bail!(SluiceError::Usage(format!(
            "the shell prints text: format {} is not one of {} (use `sluice query -f {0} -o FILE`)",
            format_name(format),
            TEXT_FORMATS.join(", ")
        )));
    }
    Ok(())
}

/// Splits text into the statements a `;` ends (outside strings, quoted names and
/// comments), and what follows the last one.
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut statements = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        // A doubled quote is the quote itself.
                        if bytes.get(i + 1) == Some(&q) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                let sql = text[start..i].trim();
                if !sql.is_empty() && !only_comments(sql) {
                    statements.push(sql.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (statements, text.get(start..).unwrap_or("").to_string())
}

/// Whether SQL text holds nothing but comments.
fn only_comments(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("--"))
}

/// A command line's words: split on spaces, with "…" or '…' keeping spaces in one.
fn split_words(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        anyhow::bail!(SluiceError::Usage(format!("unclosed quote in `{text}`")));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The completions of the word before `pos` in `line`: where it starts, and the
/// candidates (commands; then by command, sources, pipes, parameters, environments,
/// formats, methods; in SQL, sources, columns and keywords).
pub fn complete(v: &Vocabulary, line: &str, pos: usize) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let head = &line[..pos];
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '\\')))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let word = &head[start..];
    let before: Vec<&str> = head[..start].split_whitespace().collect();
    let matching = |options: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let lower = word.to_lowercase();
        let mut out: Vec<String> = options
            .filter(|o| o.to_lowercase().starts_with(&lower))
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let command = before
        .first()
        .copied()
        .or(if word.starts_with(['.', '\\']) {
            Some("")
        } else {
            None
        });
    match (command, before.len()) {
        (Some(""), 0) => (
            start,
            matching(&mut COMMANDS.iter().map(|c| c.0.to_string())),
        ),
        (Some(".describe" | "\\d"), 1) => (start, matching(&mut v.sources.iter().cloned())),
        (Some(".run"), 1) => (start, matching(&mut v.pipes.iter().map(|p| p.0.clone()))),
        (Some(".run"), _) => {
            let params = v
                .pipes
                .iter()
                .find(|p| Some(p.0.as_str()) == before.get(1).copied())
                .map(|p| p.1.clone())
                .unwrap_or_default();
            (
                start,
                matching(&mut params.into_iter().map(|p| format!("{p}="))),
            )
        }
        (Some(".env"), 1) => (start, matching(&mut v.envs.iter().cloned())),
        (Some(".format"), 1) => (
            start,
            matching(&mut TEXT_FORMATS.iter().map(|f| f.to_string())),
        ),
        (Some(".sample"), 1) => (start, matching(&mut std::iter::once("off".to_string()))),
        (Some(".sample"), 2) => (start, matching(&mut METHODS.iter().map(|m| m.to_string()))),
        (Some(".verbose"), 1) => (
            start,
            matching(&mut ["on", "off"].iter().map(|s| s.to_string())),
        ),
        (Some(c), _) if c.starts_with(['.', '\\']) => (start, Vec::new()),
        _ => {
            if word.is_empty() {
                return (start, Vec::new());
            }
            // Keywords in the case the word is typed in.
            let lower = word.chars().all(|c| !c.is_uppercase());
            let keywords = KEYWORDS.iter().map(|k| {
                if lower {
                    k.to_lowercase()
                } else {
                    k.to_string()
                }
            });
            let mut all = v
                .sources
                .iter()
                .cloned()
                .chain(v.columns.iter().cloned())
                .chain(keywords);
            (start, matching(&mut all))
        }
    }
}

/// rustyline's side: completion from the shell's vocabulary.
struct ShellHelper {
    vocabulary: Arc<Mutex<Vocabulary>>,
}

impl rustyline::completion::Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let v = self
            .vocabulary
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        Ok(complete(&v, line, pos))
    }
}

impl rustyline::hint::Hinter for ShellHelper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for ShellHelper {}
impl rustyline::validate::Validator for ShellHelper {}
impl rustyline::Helper for ShellHelper {}

/// `sluice shell`.
pub async fn shell(settings: &Settings, args: ShellArgs) -> Result<()> {
    let project = settings.project()?;
    let mut shell = Shell::open(
        project.clone(),
        args.env.env.as_deref(),
        args.sample.to_override(),
        args.format,
    )
    .await?;
    shell.set_verbose(settings.verbose > 0);
    if std::io::stdin().is_terminal() {
        interactive(&mut shell, &project).await?;
        return Ok(());
    }
    // A script: every line in turn, then what is left of the last statement.
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line =
            line.map_err(|e| SluiceError::Usage(format!("cannot read standard input: {e}")))?;
        let next = shell
            .line(&line, &mut std::io::stdout().lock(), &mut std::io::stderr())
            .await;
        if next == Next::Quit {
            break;
        }
    }
    shell
        .finish(&mut std::io::stdout().lock(), &mut std::io::stderr())
        .await;
    if shell.failures > 0 {
        eprintln!("{} statement(s) or command(s) failed", shell.failures);
        return Err(Failed.into());
    }
    Ok(())
}

async fn interactive(shell: &mut Shell, project: &Project) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor: rustyline::Editor<ShellHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    editor.set_helper(Some(ShellHelper {
        vocabulary: shell.vocabulary(),
    }));
    let history = project.root.join(".sluice").join("shell_history");
    // No history yet is the usual first start.
    let _ = editor.load_history(&history);
    shell.interruptible = true;
    eprintln!("{}", shell.banner());
    let mut statement = String::new();
    loop {
        match editor.readline(shell.prompt().as_str()) {
            Ok(line) => {
                if !statement.is_empty() {
                    statement.push('\n');
                }
                statement.push_str(&line);
                let next = shell
                    .line(&line, &mut std::io::stdout().lock(), &mut std::io::stderr())
                    .await;
                // One history entry per statement or command, however many lines.
                if shell.pending.is_empty() {
                    if !statement.trim().is_empty() {
                        let _ = editor.add_history_entry(statement.as_str());
                    }
                    statement.clear();
                }
                if next == Next::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                shell.cancel_pending();
                statement.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.save_history(&history) {
        eprintln!(
            "note: cannot save the history to {}: {e}",
            history.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_with_a_semicolon_outside_quotes_and_comments() {
        let (s, rest) = split_statements("SELECT 1;\nSELECT ';' AS x; SELECT 2");
        assert_eq!(s, vec!["SELECT 1", "SELECT ';' AS x"]);
        assert_eq!(rest.trim(), "SELECT 2");
        let (s, rest) = split_statements("SELECT 1 -- not the end;\n");
        assert!(s.is_empty());
        assert_eq!(rest, "SELECT 1 -- not the end;\n");
        let (s, _) = split_statements("-- a comment\nSELECT \"a;b\" /* ; */ FROM t;");
        assert_eq!(s, vec!["-- a comment\nSELECT \"a;b\" /* ; */ FROM t"]);
        let (s, rest) = split_statements("SELECT 'it''s;' ;");
        assert_eq!(s, vec!["SELECT 'it''s;'"]);
        assert_eq!(rest, "");
        let (s, _) = split_statements(";; -- nothing\n;");
        assert!(s.is_empty());
    }

    #[test]
    fn words_keep_quoted_spaces() {
        assert_eq!(
            split_words(".run p name=\"a b\" x=1").unwrap(),
            vec![".run", "p", "name=a b", "x=1"]
        );
        assert!(split_words(".run p x=\"open").is_err());
    }

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            sources: vec!["calls".into(), "reps".into()],
            columns: vec!["call_id".into(), "rep_id".into(), "started_at".into()],
            pipes: vec![("top_reps".into(), vec!["limit".into(), "since".into()])],
            envs: vec!["production".into(), "staging".into()],
        }
    }

    #[test]
    fn completes_commands_sources_columns_pipes_and_parameters() {
        let v = vocabulary();
        assert_eq!(complete(&v, ".de", 3), (0, vec![".describe".to_string()]));
        assert_eq!(
            complete(&v, ".describe ca", 12),
            (10, vec!["calls".to_string()])
        );
        assert_eq!(
            complete(&v, ".run to", 7),
            (5, vec!["top_reps".to_string()])
        );
        assert_eq!(
            complete(&v, ".run top_reps l", 15),
            (14, vec!["limit=".to_string()])
        );
        assert_eq!(
            complete(&v, ".env p", 6),
            (5, vec!["production".to_string()])
        );
        assert_eq!(complete(&v, ".format cs", 10), (8, vec!["csv".to_string()]));
        assert_eq!(
            complete(&v, ".sample 0.1 be", 14),
            (12, vec!["bernoulli".to_string()])
        );
        // SQL: sources and columns, keywords in the case typed.
        assert_eq!(
            complete(&v, "SELECT * FROM ca", 16),
            (
                14,
                vec![
                    "call_id".to_string(),
                    "calls".to_string(),
                    "case".to_string()
                ]
            )
        );
        assert_eq!(
            complete(&v, "SELECT st", 9),
            (7, vec!["started_at".to_string()])
        );
        assert_eq!(complete(&v, "sel", 3), (0, vec!["select".to_string()]));
        assert_eq!(complete(&v, "SEL", 3), (0, vec!["SELECT".to_string()]));
        assert_eq!(complete(&v, "SELECT ", 7), (7, Vec::<String>::new()));
    }
}
