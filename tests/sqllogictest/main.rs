//! DataFusion's own sqllogictest suite (the `.slt` files of the `datafusion-sqllogictest`
//! crate of the DataFusion release Sluice builds on) through a session built as Sluice
//! builds its sessions, against raw DataFusion on the same files.
//!
//! Each file runs twice: once in the session DataFusion's runner builds for it (its
//! tables, functions and settings), once in that session with Sluice's settings
//! (`SLUICE_DEFAULTS`), Sluice's versions of DataFusion functions
//! (`optimizer::settings::with_sluice_functions`) and every Sluice optimizer rule on
//! (`optimizer::settings::with_sluice_rules`). A record (statement or query) that raw
//! DataFusion answers as the file expects must be answered so by Sluice too; a record
//! that fails under raw DataFusion (a file that needs data or features the published
//! crate lacks) is not held against Sluice. A record that prints a plan (`EXPLAIN`) is
//! skipped in both runs: Sluice's rules change plans by design, and the rows are what
//! must not change. A query whose rows come back in another order that its `ORDER BY`
//! allows (the same rows and the same sequence of sort keys: tied rows reordered) is
//! listed as such, not failed. A failure is bisected: the file is run again with only Sluice's
//! settings, then with one Sluice rule (or function) at a time, and the report names it.
//!
//! `ClusteredAggregate` reads the files' footers from the run's `RunSnapshot`, which
//! these sessions have none of (they read in-memory tables and the files the `.slt`
//! files write): it does nothing here, and `tests/main.rs`'s differential tests cover
//! it on Parquet sources.
//!
//! Usage: `cargo test --test sqllogictest [-- SUBSTRING…]` runs the files whose path
//! holds one of the substrings (all without); `SLUICE_SLT_JOBS` files at a time (2).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;
use datafusion_sqllogictest::{
    DFColumnType, DataFusion, TestContext, df_value_validator, read_dir_recursive,
    setup_scratch_dir, value_normalizer,
};
use futures::StreamExt;
use indicatif::ProgressBar;
use sluice_engine::optimizer::settings::{
    RULE_SETTINGS, SLUICE_DEFAULTS, apply_sluice_defaults, sluice_rule_names,
    with_sluice_functions, with_sluice_rules,
};
use sqllogictest::{Record, parse_file, strict_column_validator};

/// Longest a file may take in one run before it counts as failed (a rule that loops).
const FILE_TIMEOUT: Duration = Duration::from_secs(300);

/// The session a file runs in.
#[derive(Clone, Debug)]
enum Session {
    /// DataFusion's runner's own.
    Raw,
    /// Sluice's settings and rules, but the named rules.
    Sluice { skipped: Vec<String> },
}

/// What one run of a file gave.
#[derive(Debug, Default)]
struct Outcome {
    /// The runner has no session for the file (a feature this build lacks).
    unsupported: bool,
    /// Statements and queries run.
    records: usize,
    /// Records skipped because they print a plan.
    plans: usize,
    /// Failed records by location (`file:line`, through any `include`), with the
    /// runner's message.
    failures: BTreeMap<String, String>,
    /// The file as a whole failed: it did not parse, it panicked, or it timed out.
    error: Option<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.failures.is_empty() && self.error.is_none()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sqllogictest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, String> {
    check_reorders_only_ties()?;
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let jobs: usize = match std::env::var("SLUICE_SLT_JOBS") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("SLUICE_SLT_JOBS={v}: not a positive number"))?,
        Err(_) => 2,
    };
    let crate_dir = sqllogictest_crate_dir()?;
    // The runner resolves the files' relative paths (their data, the scratch folders
    // they write) against the working folder: a copy of the crate's files, so the
    // registry's copy is never written to.
    let work = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
    for dir in ["test_files", "data"] {
        copy_dir(&crate_dir.join(dir), &work.path().join(dir))?;
    }
    std::env::set_current_dir(work.path())
        .map_err(|e| format!("{}: {e}", work.path().display()))?;
    let mut files: Vec<PathBuf> = read_dir_recursive("test_files")
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter_map(|p| p.strip_prefix("test_files").ok().map(Path::to_path_buf))
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.to_string_lossy().contains(f)))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .slt file matches {filters:?}"));
    }
    eprintln!(
        "sqllogictest: {} files of datafusion-sqllogictest 55.2.0, raw DataFusion and Sluice's session, {jobs} at a time",
        files.len()
    );
    let start = Instant::now();
    let results: Vec<(PathBuf, Outcome, Outcome)> = futures::stream::iter(files)
        .map(|file| async move {
            let raw = run_file(&file, Session::Raw).await;
            let sluice = run_file(
                &file,
                Session::Sluice {
                    skipped: Vec::new(),
                },
            )
            .await;
            (file, raw, sluice)
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    let mut results = results;
    results.sort_by(|a, b| a.0.cmp(&b.0));

    let (mut raw_passed, mut sluice_passed, mut unsupported) = (0, 0, 0);
    let (mut records, mut plans) = (0, 0);
    let mut regressions = Vec::new();
    let mut settings_listed: Vec<String> = Vec::new();
    let mut ties_reordered: Vec<String> = Vec::new();
    for (file, raw, sluice) in &results {
        if raw.unsupported {
            unsupported += 1;
            continue;
        }
        records += raw.records;
        plans += raw.plans;
        raw_passed += usize::from(raw.passed());
        if let Some(mut regression) = regression(raw, sluice) {
            // A record that lists the session's settings shows Sluice's where they differ
            // from DataFusion's: the one difference the two sessions are meant to have.
            // And a query whose ORDER BY ties rows may return the tied rows in another
            // order: SQL leaves it open (a rule that groups in another order changes it).
            regression.retain(|at, message| {
                let listed = lists_sluices_settings(message);
                if listed {
                    settings_listed.push(format!("{}: {at}", file.display()));
                }
                let tied = reorders_only_ties(message);
                if tied {
                    ties_reordered.push(format!("{}: {at}", file.display()));
                }
                !listed && !tied
            });
            if !regression.is_empty() {
                regressions.push((file.clone(), regression));
            }
        }
        // A file passes in Sluice's session when nothing failed but listings of its
        // settings.
        sluice_passed += usize::from(
            sluice.error.is_none()
                && sluice
                    .failures
                    .values()
                    .all(|message| lists_sluices_settings(message) || reorders_only_ties(message)),
        );
    }
    let run = results.len() - unsupported;
    println!(
        "sqllogictest: {run} files run ({unsupported} need features this build lacks), {records} records \
         ({plans} printing plans skipped) in {:.0?}",
        start.elapsed()
    );
    println!("  raw DataFusion:   {raw_passed} files pass");
    println!(
        "  Sluice's session: {sluice_passed} files pass ({} record(s) differ only in listing \
         Sluice's settings: {}; {} only in the order of rows their ORDER BY ties: {})",
        settings_listed.len(),
        settings_listed.join(", "),
        ties_reordered.len(),
        ties_reordered.join(", ")
    );
    for (file, lines) in &regressions {
        let culprit = bisect(file, lines).await;
        println!(
            "FAILED {}: {} record(s) raw DataFusion answers and Sluice does not; {culprit}",
            file.display(),
            lines.len()
        );
        for (at, message) in lines.iter().take(5) {
            // The statement and the lines that differ, not the whole result.
            let message: String = message
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    !t.starts_with(char::is_alphanumeric) || t.starts_with("[SQL]")
                })
                .take(16)
                .collect::<Vec<_>>()
                .join("\n    ");
            println!("  {at}:\n    {message}");
        }
    }
    let failed = regressions.len();
    println!("{} passed, {failed} failed", run - failed);
    Ok(failed == 0)
}

/// The key of a failure of the whole file.
const WHOLE_FILE: &str = "the whole file";

/// The records Sluice fails that raw DataFusion passes, if any.
fn regression(raw: &Outcome, sluice: &Outcome) -> Option<BTreeMap<String, String>> {
    let mut lines: BTreeMap<String, String> = sluice
        .failures
        .iter()
        .filter(|(at, _)| !raw.failures.contains_key(*at))
        .map(|(l, m)| (l.clone(), m.clone()))
        .collect();
    if let (Some(error), None) = (&sluice.error, &raw.error) {
        lines.insert(WHOLE_FILE.to_string(), error.clone());
    }
    (!lines.is_empty()).then_some(lines)
}

/// Whether a failed query's rows are the expected ones in another order that its
/// `ORDER BY` allows: the same rows, and the same sequence of sort keys (the keys must be
/// output columns, by name or position, and the rows' values split into as many words
/// as the query has output columns; otherwise it is a failure).
fn reorders_only_ties(message: &str) -> bool {
    use datafusion::sql::sqlparser::ast::{
        Expr, OrderByKind, SelectItem, SetExpr, Statement, Value,
    };
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let (Some(sql_at), Some(diff_at)) = (message.find("[SQL]"), message.find("[Diff]")) else {
        return false;
    };
    let sql = message[sql_at + "[SQL]".len()..diff_at].trim();
    let Ok(statements) = Parser::parse_sql(&GenericDialect {}, sql) else {
        return false;
    };
    let [Statement::Query(query)] = statements.as_slice() else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let Some(order_by) = &query.order_by else {
        return false;
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return false;
    };
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|i| i.value.to_lowercase())
            }
            _ => None,
        })
        .collect();
    if select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return false;
    }
    let mut positions = Vec::with_capacity(keys.len());
    for key in keys {
        let position = match &key.expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)),
                _ => None,
            },
            Expr::Identifier(i) => {
                let name = i.value.to_lowercase();
                names
                    .iter()
                    .position(|n| n.as_deref() == Some(name.as_str()))
            }
            _ => None,
        };
        match position {
            Some(p) if p < names.len() => positions.push(p),
            _ => return false,
        }
    }
    // The diff's rows: `-   ` expected only, `+   ` actual only, `    ` both (the lines
    // after them, `at FILE:LINE`, are not rows).
    let mut expected: Vec<&str> = Vec::new();
    let mut actual: Vec<&str> = Vec::new();
    for line in message[diff_at..].lines().skip(1) {
        if let Some(row) = line.strip_prefix("-   ") {
            expected.push(row.trim());
        } else if let Some(row) = line.strip_prefix("+   ") {
            actual.push(row.trim());
        } else if let Some(row) = line.strip_prefix("    ") {
            expected.push(row.trim());
            actual.push(row.trim());
        }
    }
    let keys_of = |rows: &[&str]| -> Option<Vec<Vec<String>>> {
        rows.iter()
            .map(|row| {
                let words: Vec<&str> = row.split_whitespace().collect();
                (words.len() == names.len())
                    .then(|| positions.iter().map(|&p| words[p].to_string()).collect())
            })
            .collect()
    };
    let (Some(expected_keys), Some(actual_keys)) = (keys_of(&expected), keys_of(&actual)) else {
        return false;
    };
    let mut sorted_expected = expected.clone();
    let mut sorted_actual = actual.clone();
    sorted_expected.sort_unstable();
    sorted_actual.sort_unstable();
    expected != actual && sorted_expected == sorted_actual && expected_keys == actual_keys
}

/// `reorders_only_ties` on made-up mismatches, checked before every run: tied rows
/// swapped pass; rows whose sort keys come in another order, or other rows, fail.
fn check_reorders_only_ties() -> Result<(), String> {
    let mismatch = |sql: &str, expected: &[&str], actual: &[&str]| {
        let mut m = format!("query result mismatch:\n[SQL] {sql}\n[Diff] (-expected|+actual)\n");
        m.push_str("    0 x 1\n");
        for row in expected {
            m.push_str(&format!("-   {row}\n"));
        }
        for row in actual {
            m.push_str(&format!("+   {row}\n"));
        }
        m.push_str("at test_files/made_up.slt:1\n");
        m
    };
    let sql = "select a, b, count(*) from t group by a, b order by a";
    let cases = [
        (
            mismatch(sql, &["1 p 2", "1 q 3"], &["1 q 3", "1 p 2"]),
            true,
        ),
        (
            mismatch(sql, &["1 p 2", "2 q 3"], &["2 q 3", "1 p 2"]),
            false,
        ),
        (
            mismatch(sql, &["1 p 2", "1 q 3"], &["1 q 3", "1 p 4"]),
            false,
        ),
        (
            mismatch(
                "select a, b, count(*) from t group by a, b",
                &["1 p 2", "1 q 3"],
                &["1 q 3", "1 p 2"],
            ),
            false,
        ),
    ];
    for (i, (message, tied)) in cases.iter().enumerate() {
        if reorders_only_ties(message) != *tied {
            return Err(format!(
                "reorders_only_ties is wrong on made-up case {i}: {message}"
            ));
        }
    }
    Ok(())
}

/// Whether a failed record's difference is only lines naming settings `SLUICE_DEFAULTS`
/// or Sluice's rules (`RULE_SETTINGS`) change (`SHOW ALL`, `information_schema.df_settings`).
fn lists_sluices_settings(message: &str) -> bool {
    let changed: Vec<&str> = message
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .collect();
    !changed.is_empty()
        && changed.iter().all(|l| {
            SLUICE_DEFAULTS.iter().any(|(key, _)| l.contains(key))
                || RULE_SETTINGS.iter().any(|key| l.contains(key))
        })
}

/// Which of Sluice's changes makes `file` fail the records in `lines`: its settings (the
/// file fails with every rule skipped), or the rules that fail it alone.
async fn bisect(file: &Path, lines: &BTreeMap<String, String>) -> String {
    let rules = sluice_rule_names();
    let fails = |outcome: &Outcome| {
        lines.keys().any(|l| {
            outcome.failures.contains_key(l) || (l == WHOLE_FILE && outcome.error.is_some())
        })
    };
    let settings_only = run_file(
        file,
        Session::Sluice {
            skipped: rules.clone(),
        },
    )
    .await;
    if fails(&settings_only) {
        return "it fails with every Sluice rule skipped: Sluice's settings (SLUICE_DEFAULTS)"
            .to_string();
    }
    let mut culprits = Vec::new();
    for rule in &rules {
        let skipped = rules.iter().filter(|r| *r != rule).cloned().collect();
        if fails(&run_file(file, Session::Sluice { skipped }).await) {
            culprits.push(rule.clone());
        }
    }
    if culprits.is_empty() {
        "no rule fails it alone: a combination of rules (bisect with SLUICE_SKIP_RULES)".to_string()
    } else {
        format!("the rule(s) failing it alone: {}", culprits.join(", "))
    }
}

/// Runs one file (its path under `test_files/`) in `session`, in a task of its own so a
/// panic or a hang fails the file, not the harness.
async fn run_file(relative: &Path, session: Session) -> Outcome {
    let relative = relative.to_path_buf();
    let task = tokio::spawn(run_records(relative, session));
    match tokio::time::timeout(FILE_TIMEOUT, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome {
            error: Some(format!("panicked: {e}")),
            ..Outcome::default()
        },
        Err(_) => Outcome {
            error: Some(format!("took over {FILE_TIMEOUT:?}")),
            ..Outcome::default()
        },
    }
}

async fn run_records(relative: PathBuf, session: Session) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(test_context) = TestContext::try_new_for_test_file(&relative).await else {
        outcome.unsupported = true;
        return outcome;
    };
    let ctx = match &session {
        Session::Raw => test_context.session_ctx().clone(),
        Session::Sluice { skipped } => {
            // The runner's session (its tables, functions, target partitions, dialect)
            // with Sluice's settings and rules, as `optimizer::settings::session_state`
            // builds a run's.
            let state = test_context.session_ctx().state();
            let create_default_catalog = state
                .config()
                .options()
                .catalog
                .create_default_catalog_and_schema;
            let functions = registry_in_order(&state);
            let mut builder = SessionStateBuilder::new_from_existing(state)
                .with_scalar_functions(functions.0)
                .with_aggregate_functions(functions.1)
                .with_window_functions(functions.2);
            if let Some(config) = builder.config() {
                apply_sluice_defaults(config.options_mut());
            }
            let builder = with_sluice_functions(builder, skipped);
            let mut state = with_sluice_rules(builder, skipped).build();
            // `new_from_existing` turns this off so as not to replace the catalog the
            // session has (with its tables); the session's own value is back once built.
            state
                .config_mut()
                .options_mut()
                .catalog
                .create_default_catalog_and_schema = create_default_catalog;
            SessionContext::new_with_state(state)
        }
    };
    if let Err(e) = setup_scratch_dir(&relative) {
        outcome.error = Some(format!("scratch folder: {e}"));
        return outcome;
    }
    let path = Path::new("test_files").join(&relative);
    let records = match parse_file::<DFColumnType>(&path) {
        Ok(records) => records,
        Err(e) => {
            outcome.error = Some(format!("does not parse: {e}"));
            return outcome;
        }
    };
    let make = {
        let relative = relative.clone();
        move || {
            let ctx = ctx.clone();
            let relative = relative.clone();
            async move { Ok(DataFusion::new(ctx, relative, ProgressBar::hidden())) }
        }
    };
    let mut runner = sqllogictest::Runner::new(make);
    runner.add_label("Datafusion");
    runner.with_column_validator(strict_column_validator);
    runner.with_normalizer(value_normalizer);
    runner.with_validator(df_value_validator);
    for record in records {
        let sql = match &record {
            Record::Halt { .. } => break,
            Record::Statement { sql, .. } | Record::Query { sql, .. } => Some(sql.clone()),
            _ => None,
        };
        if let Some(sql) = &sql {
            if prints_a_plan(sql) {
                outcome.plans += 1;
                continue;
            }
            outcome.records += 1;
        }
        if let Err(e) = runner.run_async(record).await {
            outcome
                .failures
                .insert(e.location().to_string(), e.to_string());
        }
    }
    runner.shutdown_async().await;
    drop(test_context);
    outcome
}

/// The session's functions in an order that registers them as the session has them.
/// `SessionStateBuilder::new_from_existing` hands them over in a hash map's order, and
/// a function that claims another's name (DataFusion's `array_has` has the alias
/// `array_contains`, Spark's `array_contains` is its own) won or lost that name by
/// chance. Here each name's owner is registered after every other function claiming it
/// (a topological order; the few functions left in a cycle, if any, go last as found).
#[allow(clippy::type_complexity)]
fn registry_in_order(
    state: &datafusion::execution::SessionState,
) -> (
    Vec<Arc<ScalarUDF>>,
    Vec<Arc<AggregateUDF>>,
    Vec<Arc<WindowUDF>>,
) {
    fn ordered<T: ?Sized>(
        map: &HashMap<String, Arc<T>>,
        names: impl Fn(&T) -> Vec<String>,
    ) -> Vec<Arc<T>> {
        // The distinct functions, by address, in a stable order.
        let mut functions: Vec<Arc<T>> = Vec::new();
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in &keys {
            let f = &map[*key];
            if !functions.iter().any(|g| Arc::ptr_eq(g, f)) {
                functions.push(Arc::clone(f));
            }
        }
        let index = |f: &Arc<T>| functions.iter().position(|g| Arc::ptr_eq(g, f));
        // before[i]: the functions that must be registered before function i.
        let mut before: Vec<Vec<usize>> = vec![Vec::new(); functions.len()];
        for (i, f) in functions.iter().enumerate() {
            for name in names(f) {
                if let Some(owner) = map.get(&name).and_then(index)
                    && owner != i
                {
                    before[owner].push(i);
                }
            }
        }
        let mut done = vec![false; functions.len()];
        let mut order = Vec::new();
        while order.len() < functions.len() {
            let ready: Vec<usize> = (0..functions.len())
                .filter(|&i| !done[i] && before[i].iter().all(|&j| done[j]))
                .collect();
            let next = if ready.is_empty() {
                (0..functions.len()).filter(|&i| !done[i]).collect()
            } else {
                ready
            };
            for i in next {
                done[i] = true;
                order.push(Arc::clone(&functions[i]));
            }
        }
        order
    }
    let all = |name: &str, aliases: &[String]| {
        std::iter::once(name.to_string())
            .chain(aliases.iter().cloned())
            .collect::<Vec<_>>()
    };
    (
        ordered(state.scalar_functions(), |f: &ScalarUDF| {
            all(f.name(), f.aliases())
        }),
        ordered(state.aggregate_functions(), |f: &AggregateUDF| {
            all(f.name(), f.aliases())
        }),
        ordered(state.window_functions(), |f: &WindowUDF| {
            all(f.name(), f.aliases())
        }),
    )
}

/// Whether a statement's output is a plan (`EXPLAIN …`), which Sluice's rules change.
fn prints_a_plan(sql: &str) -> bool {
    let code = sql
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--"))
        .unwrap_or("");
    code.get(..7)
        .is_some_and(|w| w.eq_ignore_ascii_case("explain"))
}

/// The folder of the `datafusion-sqllogictest` crate this build uses, by `cargo metadata`.
/// Offline and for this host only: without `--filter-platform`, cargo needs the manifest
/// of every package of every platform (`android_system_properties`, say), which a build
/// for this one never downloaded.
fn sqllogictest_crate_dir() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = host_triple()?;
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "datafusion-sqllogictest")
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("cargo metadata lists no datafusion-sqllogictest package")?;
    Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{manifest}: no folder"))
}

/// The host's target triple, as `rustc -vV` prints it (the tests run on the host).
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| "rustc -vV printed no host".to_string())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}
