//! A newcomer's first hour, through the binary: `sluice new` on one's own data (ingest
//! a CSV, sample build, a pipe, fixture data, tests written by `--update`, deploy,
//! promote), every next step an error suggests run from the state that produced it,
//! the shell (as a script and on a pseudo-terminal), SQL from standard input and files,
//! `--output` folders, log levels, the actor without `$USER`, completions, progress.

use std::path::Path;
use std::time::Duration;

use crate::common::{TestProject, sluice, tree};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The commands between backticks in an error message that start with `sluice `, as
/// argument lists (double quotes group words; `\"` is a quote), `sluice` left out.
fn suggestions(err: &str) -> Vec<Vec<String>> {
    err.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("sluice "))
        .map(|s| shell_words(&s["sluice ".len()..]))
        .collect()
}

fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => word.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// Runs a suggested command (with `FILE` standing for `file`), which must succeed.
fn follow(p: &TestProject, args: &[String], file: Option<&Path>) -> (String, String) {
    let args: Vec<String> = args
        .iter()
        .map(|a| match (a.as_str(), file) {
            ("FILE", Some(f)) => f.display().to_string(),
            _ => a.clone(),
        })
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    p.expect_exit(&refs, 0)
}

/// The one suggestion of `err` that starts with `verb`.
fn suggested(err: &str, verb: &str) -> Vec<String> {
    let all = suggestions(err);
    all.iter()
        .find(|s| s.first().map(String::as_str) == Some(verb))
        .unwrap_or_else(|| panic!("no `sluice {verb} …` suggested in: {err}"))
        .clone()
}

/// A CSV of page views: integers, floats, text, dates and timestamps, and empty cells.
fn page_views_csv(dir: &Path, rows: usize) -> std::path::PathBuf {
    let mut csv = String::from("view_id,user_id,url,day,ts,load_ms\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "{i},{},/page/{},2024-03-{:02},2024-03-{:02} 10:{:02}:00,{}\n",
            i % 17,
            i % 5,
            i % 28 + 1,
            i % 28 + 1,
            i % 60,
            if i % 10 == 3 {
                String::new()
            } else {
                format!("{}.5", 100 + i)
            }
        ));
    }
    let path = dir.join("views.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// An empty project made by `sluice new` in a fresh folder.
fn new_project(source: &str) -> (TestProject, String) {
    let p = TestProject {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = sluice()
        .args(["new", p.path().to_str().unwrap(), "--source", source])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (p, text(&out.stdout))
}

#[test]
fn a_first_session_on_ones_own_data() {
    let (p, created) = new_project("page_views");
    for f in [
        "sluice.toml",
        "pipes/page_views_preview.toml",
        "tests/README.md",
        "checks/README.md",
    ] {
        assert!(p.path().join(f).is_file(), "{f} missing:\n{created}");
    }
    let ignore = std::fs::read_to_string(p.path().join(".gitignore")).unwrap();
    assert!(ignore.contains("/data/"), "{ignore}");
    let (envs, _) = p.expect_exit(&["envs"], 0);
    assert!(
        envs.contains("staging") && envs.contains("production"),
        "{envs}"
    );
    p.expect_exit(&["validate", "--env", "staging"], 1);

    // `sources` lists an empty source and says how to fill it.
    let (out, err) = p.expect_exit(&["sources"], 0);
    assert!(
        out.contains("| page_views ") && out.contains("no data"),
        "{out}"
    );
    assert!(
        err.contains("sluice ingest page_views FILE --env staging"),
        "{err}"
    );

    // An empty store says how to fill it, and the suggestion works.
    let (_, err) = p.expect_exit(&["run", "page_views_preview"], 1);
    assert!(err.contains("source `page_views` has no data at"), "{err}");
    assert_eq!(
        suggested(&err, "ingest"),
        ["ingest", "page_views", "FILE", "--env", "staging"]
    );

    // The next steps `sluice new` printed, in order: production's data, a sample build
    // for staging, the example pipe.
    let csv = page_views_csv(p.path(), 300);
    let steps: Vec<Vec<String>> = created
        .lines()
        .filter_map(|l| l.split_once("sluice "))
        .map(|(_, cmd)| shell_words(cmd.split('#').next().unwrap()))
        .collect();
    assert_eq!(steps.len(), 3, "{created}");
    let before = tree(&p.path().join("data"));
    for step in &steps {
        follow(&p, step, Some(&csv));
    }
    assert_ne!(tree(&p.path().join("data")), before);
    // The CSV's types were inferred.
    let (sources, _) = p.expect_exit(&["sources", "page_views", "--env", "production"], 0);
    for ty in ["Int64", "Float64", "Date32", "Timestamp", "Utf8"] {
        assert!(sources.contains(ty), "{ty}:\n{sources}");
    }
    let (n, _) = p.expect_exit(
        &[
            "query",
            "SELECT count(*) AS n, count(load_ms) AS timed FROM page_views",
            "--env",
            "production",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert_eq!(n.trim(), "n,timed\n300,270");

    // A source production has no data for: the hint is an ingest, and it works.
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write("sluice.toml", &format!("{toml}\n[sources.signups]\n"));
    let (_, err) = p.expect_exit(&["query", "SELECT count(*) FROM signups"], 1);
    let ingest = suggested(&err, "ingest");
    assert_eq!(ingest, ["ingest", "signups", "FILE", "--env", "staging"]);
    let signups = p.path().join("signups.ndjson");
    std::fs::write(
        &signups,
        "{\"user_id\": 1, \"plan\": \"free\"}\n{\"user_id\": 2, \"plan\": \"pro\", \"extra\": {\"a\": 1}}\n",
    )
    .unwrap();
    follow(&p, &ingest, Some(&signups));
    let (n, _) = p.expect_exit(
        &[
            "query",
            "SELECT count(*) AS n FROM signups",
            "--full",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    // `--full`: two rows are less than one unit of staging's 10% sample.
    assert_eq!(n.trim(), "n\n2");
    // In staging with production filled, the hint is a sample build from production.
    std::fs::remove_dir_all(p.store("staging").join("page_views")).unwrap();
    let (_, err) = p.expect_exit(&["run", "page_views_preview"], 1);
    assert!(
        !err.contains("sample build"),
        "production lacks signups, so no sample build: {err}"
    );
    std::fs::remove_dir_all(p.store("staging").join("signups")).unwrap();
    p.write("sluice.toml", &toml);
    let (_, err) = p.expect_exit(&["run", "page_views_preview"], 1);
    let build = suggested(&err, "sample");
    assert_eq!(
        build,
        ["sample", "build", "--from", "production", "--to", "staging"]
    );
    follow(&p, &build, None);
    p.expect_exit(&["run", "page_views_preview"], 0);

    // Pipe tests: the fixture store is empty, and the error says how to fill it.
    p.write(
        "tests/page_views_preview.toml",
        "# The preview's first rows, on tests/data.\n\n[[case]]\nname = \"three rows\"\npipe = \"page_views_preview\"\nparams = { limit = 3 }\ncolumns = [\"view_id\", \"url\", \"load_ms\"]\nexpect_rows = []   # filled by sluice test --update\n\n[[case]]\nname = \"a word is not a limit\"\npipe = \"page_views_preview\"\nparams = { limit = \"many\" }\nexpect_error = \"is not an integer\"\n",
    );
    let (out, _) = p.expect_exit(&["test"], 1);
    assert!(out.contains("has no data at"), "{out}");
    let write = suggested(&out, "query");
    follow(&p, &write, None);
    assert!(
        p.path()
            .join("tests/data/page_views/part-0.parquet")
            .is_file()
    );
    // Now the case runs and shows every differing row.
    let (out, _) = p.expect_exit(&["test"], 1);
    assert!(
        out.contains("3 differences (expected 0 rows, got 3 rows)"),
        "{out}"
    );
    assert!(
        out.contains("ok   tests/page_views_preview.toml: a word is not a limit"),
        "{out}"
    );
    // --update writes the output as the expected rows and keeps the rest of the file.
    let (out, _) = p.expect_exit(&["test", "--update"], 0);
    assert!(out.contains("updated: 3 rows (was 0 rows)"), "{out}");
    let file = std::fs::read_to_string(p.path().join("tests/page_views_preview.toml")).unwrap();
    assert!(
        file.starts_with("# The preview's first rows, on tests/data."),
        "{file}"
    );
    assert!(
        file.contains("expect_error = \"is not an integer\""),
        "{file}"
    );
    assert_eq!(
        file.matches("\n    [").count(),
        3,
        "one row per line:\n{file}"
    );
    let (out, _) = p.expect_exit(&["test"], 0);
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    // What the case sees, run by hand on the fixtures.
    let (rows, _) = p.expect_exit(
        &[
            "run",
            "page_views_preview",
            "--fixtures",
            "-p",
            "limit=3",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert_eq!(rows.lines().count(), 4, "{rows}");

    // Production runs promoted versions only; the error says how to get there.
    let (_, err) = p.expect_exit(&["run", "page_views_preview", "--env", "production"], 2);
    let deploy = suggested(&err, "deploy");
    let promote = suggested(&err, "promote");
    follow(&p, &deploy, None);
    // The confirmation a terminal would ask for.
    let mut promote = promote.clone();
    promote.push("--yes".into());
    follow(&p, &promote, None);
    let (out, _) = p.expect_exit(
        &[
            "run",
            "page_views_preview",
            "--env",
            "production",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert_eq!(out.lines().count(), 11, "{out}");
}

#[test]
fn new_refuses_what_it_would_overwrite_and_bad_names() {
    let (p, _) = new_project("events");
    let before = tree(p.path());
    let (_, err) = p.expect_exit(&["new", "."], 2);
    assert!(err.contains("already holds a project"), "{err}");
    let (_, err) = p.expect_exit(&["new", "other", "--source", "Page-Views"], 2);
    assert!(err.contains("--source `Page-Views`"), "{err}");
    assert!(!p.path().join("other").exists());
    // A folder holding one of its files is refused whole.
    p.write("x/pipes/events_preview.toml", "# mine\n");
    let (_, err) = p.expect_exit(&["new", "x"], 2);
    assert!(err.contains("events_preview.toml exists"), "{err}");
    assert!(!p.path().join("x/sluice.toml").exists());
    std::fs::remove_dir_all(p.path().join("x")).unwrap();
    assert_eq!(tree(p.path()), before);
}

/// A real change to top_reps (a comment would not change its version).
fn edit_top_reps(p: &TestProject) {
    let text = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    assert!(text.contains("default = 10"));
    p.write(
        "pipes/top_reps.toml",
        &text.replacen("default = 10", "default = 9", 1),
    );
}

#[test]
fn promotion_and_deploy_suggestions_work() {
    let p = TestProject::example(0.02);
    // A deploy into a protected environment says how a pipe gets there.
    edit_top_reps(&p);
    let (_, err) = p.expect_exit(&["deploy", "top_reps", "--env", "production"], 2);
    follow(&p, &suggested(&err, "deploy"), None);
    let mut promote = suggested(&err, "promote");
    promote.push("--yes".into());
    let (out, _) = follow(&p, &promote, None);
    assert!(out.contains("promoted 1 pipe(s)"), "{out}");
    // A new pipe: `--deployed` and a promotion each say to deploy it first.
    p.write(
        "pipes/rep_count.toml",
        "[[node]]\nname = \"n\"\nsql = \"SELECT count(*) AS reps FROM reps\"\n",
    );
    let (_, err) = p.expect_exit(&["run", "rep_count", "--deployed"], 2);
    follow(&p, &suggested(&err, "deploy"), None);
    p.expect_exit(&["run", "rep_count", "--deployed"], 0);
    p.write(
        "pipes/rep_count2.toml",
        "[[node]]\nname = \"n\"\nsql = \"SELECT count(*) AS reps FROM reps\"\n",
    );
    let (_, err) = p.expect_exit(&["promote", "rep_count2", "--yes"], 2);
    follow(&p, &suggested(&err, "deploy"), None);
    p.expect_exit(&["promote", "rep_count2", "--yes"], 0);
    // A token name taken: the suggested revoke frees it.
    p.expect_exit(&["token", "create", "ci"], 0);
    let (_, err) = p.expect_exit(&["token", "create", "ci"], 2);
    follow(&p, &suggested(&err, "token"), None);
    p.expect_exit(&["token", "create", "ci"], 0);
    // A version that is not there points at the history, which lists them.
    let (_, err) = p.expect_exit(
        &[
            "diff",
            "top_reps",
            "--versions",
            "nope..live",
            "--env",
            "staging",
        ],
        2,
    );
    let (out, _) = follow(&p, &suggested(&err, "history"), None);
    assert!(out.contains("top_reps"), "{out}");
}

#[test]
fn pipe_test_failures_show_every_differing_row_bounded() {
    let p = TestProject::example(0.02);
    // The example's cases, then one whose rows --update fills.
    let original = std::fs::read_to_string(p.path().join("tests/top_reps.toml")).unwrap();
    p.write(
        "tests/top_reps.toml",
        &format!(
            "{original}\n[[case]]\nname = \"all reps\"\npipe = \"top_reps\"\ncolumns = [\"name\", \"won\"]\nexpect_rows = [[\"nobody\", 1]]\n"
        ),
    );
    let (out, _) = p.expect_exit(&["test", "top_reps"], 1);
    assert!(
        out.contains("8 differences (expected 1 row, got 8 rows)"),
        "{out}"
    );
    let (out, _) = p.expect_exit(&["test", "top_reps", "--update"], 0);
    assert!(out.contains("updated: 8 rows (was 1 row)"), "{out}");
    let updated = std::fs::read_to_string(p.path().join("tests/top_reps.toml")).unwrap();
    assert!(
        updated.starts_with(&original),
        "the other cases are kept:\n{updated}"
    );
    p.expect_exit(&["test", "top_reps"], 0);
    // One row missing in the middle shows as that one row, not as a shifted tail.
    let rows: Vec<&str> = updated
        .lines()
        .skip_while(|l| !l.starts_with("name = \"all reps\""))
        .filter(|l| l.starts_with("    ["))
        .collect();
    assert_eq!(rows.len(), 8, "{updated}");
    p.write(
        "tests/top_reps.toml",
        &updated.replacen(&format!("{}\n", rows[3]), "", 1),
    );
    let (out, _) = p.expect_exit(&["test", "top_reps"], 1);
    assert!(
        out.contains("1 difference (expected 7 rows, got 8 rows)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "row 4: {} was not expected",
            rows[3].trim().trim_end_matches(',')
        )),
        "{out}"
    );
    // Thirty wrong rows: twenty shown, and how many more.
    let many: Vec<String> = (0..30).map(|i| format!("[\"x{i}\", {i}]")).collect();
    p.write(
        "tests/top_reps.toml",
        &format!(
            "{original}\n[[case]]\nname = \"all reps\"\npipe = \"top_reps\"\ncolumns = [\"name\", \"won\"]\nexpect_rows = [{}]\n",
            many.join(", ")
        ),
    );
    let (out, _) = p.expect_exit(&["test", "top_reps"], 1);
    assert!(
        out.contains("30 differences (expected 30 rows, got 8 rows)"),
        "{out}"
    );
    assert!(out.contains("… and 10 more"), "{out}");
    assert_eq!(
        out.matches("\n  row ").count() + out.matches("\n  expected row ").count(),
        20,
        "{out}"
    );
    // A wrong-typed value is refused at load unless the case expects an error.
    p.write(
        "tests/top_reps.toml",
        "[[case]]\nname = \"words\"\npipe = \"top_reps\"\nparams = { limit = \"many\" }\nexpect_row_count = 1\n",
    );
    let (_, err) = p.expect_exit(&["test"], 2);
    assert!(err.contains("tests/top_reps.toml:4:"), "{err}");
}

#[test]
fn sql_from_standard_input_files_and_leading_comments() {
    let p = TestProject::example(0.02);
    let out = p
        .sluice()
        .args(["query", "-", "-f", "csv", "-q"])
        .write_stdin("-- how many reps\nSELECT count(*) AS n FROM reps\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "n\n8");
    let (out, _) = p.expect_exit(
        &[
            "query",
            "-- a comment first\nSELECT 7 AS x",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert_eq!(out.trim(), "x\n7");
    p.write("q.sql", "/* reps */ SELECT count(*) AS n FROM reps");
    let (out, _) = p.expect_exit(&["query", "--file", "q.sql", "-f", "csv", "-q"], 0);
    assert_eq!(out.trim(), "n\n8");
    let (_, err) = p.expect_exit(&["query", "--file", "missing.sql"], 2);
    assert!(err.contains("--file missing.sql"), "{err}");
}

#[test]
fn output_creates_missing_folders() {
    let p = TestProject::example(0.02);
    let (_, err) = p.expect_exit(
        &[
            "query",
            "SELECT * FROM reps",
            "-f",
            "parquet",
            "-o",
            "tests/data/r/nested/part-0.parquet",
        ],
        0,
    );
    assert!(
        err.contains("wrote tests/data/r/nested/part-0.parquet"),
        "{err}"
    );
    assert!(
        p.path()
            .join("tests/data/r/nested/part-0.parquet")
            .is_file()
    );
    // Under a file, nothing is created and the error names the folder.
    p.write("plain.txt", "x");
    let (_, err) = p.expect_exit(&["query", "SELECT 1", "-o", "plain.txt/a/b.csv"], 1);
    assert!(err.contains("cannot create plain.txt/a"), "{err}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("plain.txt")).unwrap(),
        "x"
    );
}

#[test]
fn log_levels_and_verbosity() {
    let p = TestProject::example(0.02);
    let (_, err) = p.expect_exit(&["run", "top_reps", "-f", "csv", "--log-level", "debug"], 0);
    assert!(err.contains("DEBUG"), "{err}");
    assert!(!err.contains('\x1b'), "no colours into a file: {err}");
    let (_, err) = p.expect_exit(&["run", "top_reps", "-f", "csv", "-vv"], 0);
    assert!(err.contains("DEBUG") && err.contains("  calls: "), "{err}");
    let out = p
        .sluice()
        .args(["run", "top_reps", "-f", "csv", "-v"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("DEBUG"), "RUST_LOG is read");
    let (_, err) = p.expect_exit(&["envs", "--log-level", "sluice_engine=loud"], 2);
    assert!(err.contains("--log-level"), "{err}");
}

#[test]
fn the_actor_is_the_os_account_without_user() {
    let p = TestProject::example(0.02);
    let account = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let account = text(&account.stdout).trim().to_string();
    assert!(!account.is_empty());
    edit_top_reps(&p);
    let out = p
        .sluice()
        .args(["deploy", "top_reps"])
        .env_remove("USER")
        .env_remove("USERNAME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (history, _) = p.expect_exit(&["history", "top_reps"], 0);
    let last = history
        .lines()
        .rev()
        .find(|l| l.contains("deploy"))
        .unwrap();
    assert!(
        last.contains(&format!(" {account} ")),
        "{account}: {history}"
    );
    assert!(!last.contains("unknown"), "{history}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let p = TestProject::example(0.02);
    let (bash, _) = p.expect_exit(&["completions", "bash"], 0);
    assert!(
        bash.contains("_sluice()") && bash.contains("shell"),
        "{bash}"
    );
    let script = p.path().join("sluice.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    let (zsh, _) = p.expect_exit(&["completions", "zsh"], 0);
    assert!(zsh.starts_with("#compdef sluice"), "{zsh}");
    let (fish, _) = p.expect_exit(&["completions", "fish"], 0);
    // The commands and their descriptions, as fish offers them after `sluice `.
    let commands: Vec<&str> = fish
        .lines()
        .filter(|l| l.contains("__fish_sluice_needs_command") && l.contains(" -a "))
        .collect();
    insta::assert_snapshot!("fish_commands", commands.join("\n"));
    p.expect_exit(&["completions", "tcsh"], 2);
}

const SCRIPT: &str = "\
.env
.sources
.describe reps
SELECT count(*) AS n
FROM reps;
.format csv
SELECT 1 AS a; SELECT 'x;y' AS b;
.run top_reps limit=2
.sample 0.5 bernoulli
.full
.env production
SELECT count(*) AS calls FROM calls;
.nope
SELECT nope FROM reps;
\\q
SELECT 99 AS after_quit;
";

#[test]
fn the_shell_runs_a_script_from_standard_input() {
    let p = TestProject::example(0.02);
    let out = p
        .sluice()
        .arg("shell")
        .write_stdin(SCRIPT)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // Two lines failed: exit 1, after every other line ran.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("environment staging (sample system 10% seed 7)"),
        "{stdout}"
    );
    assert!(stdout.contains("| reps "), "{stdout}");
    assert!(stdout.contains("| rep_id "), "{stdout}");
    assert!(
        stdout.contains("| 8 |"),
        "a statement over two lines: {stdout}"
    );
    assert!(
        stdout.contains("a\n1\n") && stdout.contains("b\nx;y\n"),
        "{stdout}"
    );
    assert!(stdout.contains("name,team,won,revenue"), "{stdout}");
    assert!(stdout.contains("sample bernoulli 50% seed 7"), "{stdout}");
    assert!(stdout.contains("full data"), "{stdout}");
    assert!(
        stdout.contains("environment production (full data)"),
        "{stdout}"
    );
    assert!(stdout.contains("calls\n2000\n"), "{stdout}");
    assert!(!stdout.contains("after_quit"), "{stdout}");
    // Summaries as `query` prints them, errors named, and the shell went on.
    assert!(stderr.contains("staging · query · 1 rows"), "{stderr}");
    assert!(
        stderr.contains("staging · pipe top_reps · 2 rows"),
        "{stderr}"
    );
    assert!(stderr.contains("production · query · 1 rows"), "{stderr}");
    assert!(
        stderr.contains("error: unknown command `.nope`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: environment `production`: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 statement(s) or command(s) failed"),
        "{stderr}"
    );
    // A statement without its `;` at the end of a script still runs.
    let out = p
        .sluice()
        .args(["shell", "-f", "csv"])
        .write_stdin("SELECT 5 AS five")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "five\n5\n");
    p.expect_exit(&["shell", "-f", "parquet"], 2);
}

#[test]
fn the_shell_on_a_terminal_keeps_its_history() {
    let p = TestProject::example(0.02);
    // `script` gives the shell a pseudo-terminal: rustyline edits the lines.
    let cmd = format!("{} shell", crate::common::sluice_bin().display());
    // `timeout`: a shell that never quits fails the test instead of hanging it.
    let out = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &cmd, "/dev/null"])
        .current_dir(p.path())
        .env_remove("SLUICE_PROJECT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // A line at a time, as typed: the line editor reads one line per prompt.
            for line in ["SELECT 41 + 1\n", "  AS answer;\n", ".quit\n"] {
                std::thread::sleep(Duration::from_millis(1500));
                stdin.write_all(line.as_bytes())?;
                stdin.flush()?;
            }
            // Leave the input open until the shell is done with it.
            let out = child.wait_with_output();
            drop(stdin);
            out
        })
        .unwrap();
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}\n{}", text(&out.stderr));
    assert!(
        screen.contains("sluice shell · environment staging"),
        "{screen}"
    );
    assert!(
        screen.contains("staging..> "),
        "the continuation prompt: {screen}"
    );
    assert!(screen.contains("| 42 "), "{screen}");
    let history = std::fs::read_to_string(p.path().join(".sluice/shell_history")).unwrap();
    assert!(history.contains("SELECT 41 + 1"), "{history}");
    assert!(history.contains("AS answer;"), "{history}");
}

#[test]
fn progress_is_hidden_when_not_a_terminal() {
    let p = TestProject::example(0.02);
    let csv = p.path().join("reps.csv");
    std::fs::write(
        &csv,
        "rep_id,name,team,hired_on\n99,Ada Lane,north,2024-01-02\n",
    )
    .unwrap();
    for args in [
        &["ingest", "reps", csv.to_str().unwrap()][..],
        &["bench", "top_reps", "-n", "2"][..],
        &["fixtures", "tpch", "--sf", "0.001", "--env", "staging"][..],
    ] {
        let (_, err) = p.expect_exit(args, 0);
        assert!(
            !err.contains('\r') && !err.contains('\x1b'),
            "{args:?}: {err:?}"
        );
    }
    // On a terminal, a bench draws one.
    let cmd = format!(
        "{} bench top_reps -n 200 --warmup 0",
        crate::common::sluice_bin().display()
    );
    let out = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &cmd, "/dev/null"])
        .current_dir(p.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("top_reps measured") && screen.contains("/200"),
        "{screen}"
    );
}
