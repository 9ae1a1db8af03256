//! Pipe tests (`tests/*.toml` on the fixture store `tests/data`) and data checks
//! (`[[check]]` of a pipe, `checks/*.sql`): their loading and its errors, every kind
//! passing and failing, and `sluice test` / `sluice check` with their exit codes.

use std::path::PathBuf;

use sluice_engine::fixtures::GenOptions;
use sluice_engine::quality::checks::{CheckResult, run_pipe_checks, run_sql_checks};
use sluice_engine::quality::pipe_tests::{CaseResult, run_pipe_tests, run_pipe_tests_for};
use sluice_engine::{Pipe, Problem, Project, RunOptions, SampleOverride, SluiceError};

use crate::common::{TestProject, block_on, sluice};

/// A valid `sluice.toml` with one environment.
const STAGING: &str = "[environments.staging]\ndata = \"data/staging\"\n";

/// A pipe over literal rows (no source): ids 1..3, team a/b/b, one NULL amount.
const ROWS: &str = r#"
[[node]]
name = "rows"
sql = "SELECT * FROM (VALUES (1, 'a', 10.5), (2, 'b', NULL), (3, 'b', 30.0)) AS t(id, team, amount)"
"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `sluice ARGS` in the project and requires exit `code`; returns (stdout, stderr).
fn sluice_in(p: &TestProject, args: &[&str], code: i32) -> (String, String) {
    p.expect_exit(args, code)
}

fn example() -> TestProject {
    TestProject::example_undeployed(GenOptions {
        scale: 0.02,
        ..GenOptions::default()
    })
}

/// A project whose pipe `rows` (literal rows) has these checks.
fn rows_with_checks(checks: &str) -> TestProject {
    TestProject::with_files(STAGING, &[("rows", &format!("{ROWS}\n{checks}"))])
}

fn pipe_checks(p: &TestProject, pipe: &str) -> Result<Vec<CheckResult>, SluiceError> {
    let project = p.project();
    let session = p.session("staging", SampleOverride::default());
    block_on(run_pipe_checks(&session, project.pipe(pipe).unwrap()))
}

fn problems(p: &TestProject) -> Vec<Problem> {
    match Project::load(p.path()) {
        Err(SluiceError::Config { problems }) => problems,
        Ok(_) => panic!("the project loaded"),
        Err(e) => panic!("expected a configuration error, got {e:?}"),
    }
}

fn file(p: &TestProject, rel: &str) -> PathBuf {
    p.path().canonicalize().unwrap().join(rel)
}

#[track_caller]
fn assert_one_problem(problems: &[Problem], path: &PathBuf, line: usize, col: usize, msg: &str) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(&p.file, path, "{p}");
    assert_eq!((p.line, p.column), (line, col), "{p}");
    assert!(p.message.contains(msg), "{:?} lacks {msg:?}", p.message);
}

/// The result called `check`.
#[track_caller]
fn result<'a>(results: &'a [CheckResult], check: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.check == check)
        .unwrap_or_else(|| panic!("no check `{check}` in {results:#?}"))
}

#[track_caller]
fn assert_passed(results: &[CheckResult], check: &str, detail: &str) {
    let r = result(results, check);
    assert!(r.passed, "{r:?}");
    assert!(r.detail.contains(detail), "{:?} lacks {detail:?}", r.detail);
}

#[track_caller]
fn assert_failed(results: &[CheckResult], check: &str, details: &[&str]) {
    let r = result(results, check);
    assert!(!r.passed, "{r:?}");
    for d in details {
        assert!(r.detail.contains(d), "{:?} lacks {d:?}", r.detail);
    }
}

// ---------------------------------------------------------------------------------------
// data checks of a pipe

#[test]
fn every_check_kind_passes_and_fails() {
    let p = rows_with_checks(
        r#"
[[check]]
not_null = ["id", "team"]

[[check]]
not_null = ["id", "amount"]

[[check]]
unique = ["id"]

[[check]]
unique = ["team"]

[[check]]
name = "id and team"
unique = ["id", "team"]

[[check]]
accepted_values = { column = "team", values = ["a", "b"] }

[[check]]
name = "only a"
accepted_values = { column = "team", values = ["a"] }

[[check]]
row_count = { min = 1, max = 3 }

[[check]]
row_count = { min = 4 }

[[check]]
row_count = { max = 2 }

[[check]]
expression = "id BETWEEN 1 AND 3"

[[check]]
name = "amount above 5"
expression = "amount > 5"
"#,
    );
    let results = pipe_checks(&p, "rows").unwrap();
    assert_eq!(results.len(), 12, "{results:#?}");
    assert!(results.iter().all(|r| r.pipe.as_deref() == Some("rows")));

    assert_passed(&results, "not_null(id, team)", "no NULLs in 3 rows");
    assert_failed(
        &results,
        "not_null(id, amount)",
        &[
            "1 of 3 rows have a NULL (amount: 1)",
            "{id = 2, team = \"b\", amount = NULL}",
        ],
    );
    assert_passed(&results, "unique(id)", "unique in 3 rows");
    assert_failed(
        &results,
        "unique(team)",
        &["1 value of (team) repeated, in 2 of 3 rows", "\"b\" ×2"],
    );
    assert_passed(&results, "id and team", "unique");
    assert_passed(
        &results,
        "accepted_values(team)",
        "every value of team accepted",
    );
    assert_failed(
        &results,
        "only a",
        &["2 of 3 rows have a team not accepted", "\"b\" ×2"],
    );
    assert_passed(&results, "row_count(1..=3)", "3 rows");
    assert_failed(&results, "row_count(>=4)", &["3 rows, below the minimum 4"]);
    assert_failed(&results, "row_count(<=2)", &["3 rows, above the maximum 2"]);
    assert_passed(
        &results,
        "expression(id BETWEEN 1 AND 3)",
        "true for all 3 rows",
    );
    // NULL is not true: the row with no amount fails.
    assert_failed(
        &results,
        "amount above 5",
        &[
            "false or NULL for 1 of 3 rows",
            "{id = 2, team = \"b\", amount = NULL}",
        ],
    );
}

#[test]
fn a_failure_shows_at_most_five_offending_values() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "many",
            r#"
[[node]]
name = "n"
sql = "SELECT v % 7 AS k, v FROM (SELECT unnest(range(0, 70)) AS v)"

[[check]]
unique = ["k"]

[[check]]
expression = "v < 10"
"#,
        )],
    );
    let results = pipe_checks(&p, "many").unwrap();
    let unique = result(&results, "unique(k)");
    assert!(!unique.passed);
    assert!(
        unique
            .detail
            .starts_with("7 values of (k) repeated, in 70 of 70 rows"),
        "{}",
        unique.detail
    );
    assert_eq!(
        unique.detail.matches(" ×10").count(),
        5,
        "{}",
        unique.detail
    );
    let expr = result(&results, "expression(v < 10)");
    assert!(
        expr.detail.contains("false or NULL for 60 of 70 rows"),
        "{}",
        expr.detail
    );
    assert_eq!(expr.detail.matches("{k = ").count(), 5, "{}", expr.detail);
}

#[test]
fn a_check_naming_an_unknown_column_is_an_error_naming_pipe_check_and_column() {
    let p = rows_with_checks("[[check]]\nname = \"teams\"\nnot_null = [\"id\", \"teams\"]\n");
    let err = pipe_checks(&p, "rows").unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "pipe `rows`, check `teams`: the pipe's output has no column `teams` (its columns: id, team, amount)"
        ),
        "{msg}"
    );

    // Case matters, and the message says so.
    let p = rows_with_checks("[[check]]\nunique = [\"Team\"]\n");
    let msg = pipe_checks(&p, "rows").unwrap_err().to_string();
    assert!(
        msg.contains("no column `Team` (did you mean `team`?"),
        "{msg}"
    );

    // A column inside an expression is DataFusion's to resolve: an error naming the check.
    let p = rows_with_checks("[[check]]\nexpression = \"colour = 'red'\"\n");
    let err = pipe_checks(&p, "rows").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pipe `rows`, check `expression(colour = 'red')`") && msg.contains("colour"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 2, "{msg}");
}

#[test]
fn checks_are_declared_between_or_after_nodes() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            r#"
[[node]]
name = "a"
sql = "SELECT 1 AS x"

[[check]]
row_count = { min = 1 }

[[node]]
name = "b"
sql = "SELECT x, 'y' AS y FROM a"

[[check]]
not_null = ["y"]
"#,
        )],
    );
    let project = p.project();
    let pipe = project.pipe("p").unwrap();
    assert_eq!(pipe.output().name, "b");
    let names: Vec<&str> = pipe.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["row_count(>=1)", "not_null(y)"]);
    let results = pipe_checks(&p, "p").unwrap();
    assert!(results.iter().all(|r| r.passed), "{results:#?}");
}

#[test]
fn check_declarations_are_validated_at_load_with_their_position() {
    let rel = "pipes/rows.toml";
    // ROWS is 5 lines (a blank first line); the checks start on line 6.
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[[check]]\nnot_null = [\"id\"]\nunique = [\"id\"]\n",
            6,
            1,
            "a [[check]] has exactly one of not_null, unique, accepted_values, row_count, expression (found: not_null, unique)",
        ),
        ("[[check]]\nname = \"nothing\"\n", 6, 1, "(found: none)"),
        (
            "[[check]]\nnot_nul = [\"id\"]\n",
            7,
            1,
            "unknown field `not_nul`, expected one of `name`, `not_null`, `unique`",
        ),
        (
            "[[check]]\nunique = []\n",
            7,
            10,
            "check `unique` needs at least one column",
        ),
        (
            "[[check]]\nrow_count = { min = 5, max = 2 }\n",
            7,
            13,
            "`min` 5 is above `max` 2",
        ),
        (
            "[[check]]\nrow_count = { at_least = 5 }\n",
            7,
            15,
            "unknown field `at_least`, expected `min` or `max`",
        ),
        (
            "[[check]]\nexpression = \"won >= \"\n",
            7,
            14,
            "expression does not parse",
        ),
        (
            "[[check]]\nexpression = \"won >= 0 0\"\n",
            7,
            14,
            "unexpected `0` after the expression",
        ),
        (
            "[[check]]\nexpression = \"won >= $min\"\n",
            7,
            14,
            "a check takes no parameters",
        ),
        (
            "[[check]]\naccepted_values = { column = \"team\", values = [] }\n",
            7,
            47,
            "needs at least one value",
        ),
        (
            "[[check]]\nunique = [\"id\"]\n\n[[check]]\nunique = [\"id\"]\n",
            9,
            1,
            "two checks are called `unique(id)`; give one a `name`",
        ),
    ];
    for (checks, line, col, msg) in cases {
        let p = rows_with_checks(checks);
        assert_one_problem(&problems(&p), &file(&p, rel), *line, *col, msg);
    }

    // A pipe with checks runs them with its parameters' defaults: a required one is refused.
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[params.n]\ntype = \"int\"\nrequired = true\n\n[[node]]\nname = \"a\"\nsql = \"SELECT $n AS n\"\n\n[[check]]\nnot_null = [\"n\"]\n",
        )],
    );
    assert_one_problem(
        &problems(&p),
        &file(&p, "pipes/p.toml"),
        9,
        1,
        "checks run the pipe with each parameter's default, and parameter `n` is required",
    );

    // Through the binary: a configuration error, exit 2, with the position.
    let p = rows_with_checks("[[check]]\nnot_nul = [\"id\"]\n");
    let (_, err) = sluice_in(&p, &["check"], 2);
    assert!(
        err.contains(&format!(
            "{}:7:1: unknown field `not_nul`",
            file(&p, rel).display()
        )),
        "{err}"
    );
}

#[test]
fn checks_run_the_given_definition_of_a_pipe() {
    // The working copy passes its check; a version about to be promoted does not.
    let p = rows_with_checks("[[check]]\nrow_count = { max = 3 }\n");
    let project = p.project();
    let candidate_text = format!(
        "{}\n[[check]]\nrow_count = {{ max = 3 }}\n",
        ROWS.replace("(3, 'b', 30.0)", "(3, 'b', 30.0), (4, 'c', 1.0)")
    );
    let candidate = Pipe::from_text(
        &project,
        std::path::Path::new("deployed/rows.toml"),
        "rows",
        &candidate_text,
    )
    .unwrap();
    let session = p.session("staging", SampleOverride::default());
    let working = block_on(run_pipe_checks(&session, project.pipe("rows").unwrap())).unwrap();
    assert!(working[0].passed, "{working:?}");
    let other = block_on(run_pipe_checks(&session, &candidate)).unwrap();
    assert!(!other[0].passed, "{other:?}");
    assert_eq!(other[0].detail, "4 rows, above the maximum 3");
}

#[test]
fn checks_see_the_environment_s_sample() {
    let p = example();
    p.write(
        "pipes/calls_count.toml",
        "[[node]]\nname = \"n\"\nsql = \"SELECT count(*) AS calls FROM calls\"\n\n[[check]]\nname = \"all calls\"\nexpression = \"calls = 2000\"\n",
    );
    let project = p.project();
    let pipe = project.pipe("calls_count").unwrap();
    let full = p.session(
        "staging",
        SampleOverride {
            full: true,
            ..SampleOverride::default()
        },
    );
    let r = block_on(run_pipe_checks(&full, pipe)).unwrap();
    assert!(r[0].passed, "{r:?}");
    // Staging samples 10% of calls: the same check fails there.
    let sampled = p.session("staging", SampleOverride::default());
    let r = block_on(run_pipe_checks(&sampled, pipe)).unwrap();
    assert!(!r[0].passed, "{r:?}");
    assert!(
        r[0].detail.contains("false or NULL for 1 of 1 row"),
        "{}",
        r[0].detail
    );
}

// ---------------------------------------------------------------------------------------
// SQL checks

#[test]
fn sql_checks_pass_when_they_return_no_rows() {
    let p = example();
    // The example ships one, and the generated data meets it.
    let project = p.project();
    assert_eq!(
        project
            .sql_checks
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["won_calls_have_amounts"]
    );
    p.write(
        "checks/lost_calls_without_amounts.sql",
        "SELECT call_id FROM calls WHERE outcome = 'won' ORDER BY call_id",
    );
    let session = p.session("production", SampleOverride::default());
    let results = block_on(run_sql_checks(&session)).unwrap();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results.iter().all(|r| r.pipe.is_none()));
    assert_passed(&results, "won_calls_have_amounts", "no rows");

    // The failing one says how many rows it returned, and shows the first five.
    let won = block_on(session.query(
        "SELECT count(*) FROM calls WHERE outcome = 'won'",
        &RunOptions::default(),
    ))
    .unwrap();
    let won: i64 = datafusion::arrow::array::cast::as_primitive_array::<
        datafusion::arrow::datatypes::Int64Type,
    >(won.batches[0].column(0))
    .value(0);
    assert!(won > 5);
    let r = result(&results, "lost_calls_without_amounts");
    assert!(!r.passed);
    assert!(
        r.detail.starts_with(&format!(
            "returned {won} rows (a SQL check must return none); e.g. {{call_id = "
        )),
        "{}",
        r.detail
    );
    assert_eq!(r.detail.matches("{call_id = ").count(), 5, "{}", r.detail);

    // An error in a SQL check names it.
    p.write("checks/zz_broken.sql", "SELECT nope FROM calls");
    let session = p.session("production", SampleOverride::default());
    let err = block_on(run_sql_checks(&session)).unwrap_err().to_string();
    assert!(
        err.contains("SQL check `zz_broken`") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn sql_checks_are_validated_at_load() {
    let p = example();
    p.write(
        "checks/bad.sql",
        "SELECT call_id\nFROM calls\nWHERE WHERE outcome = 'won'",
    );
    let probs = problems(&p);
    assert_eq!(probs.len(), 1, "{probs:#?}");
    assert_eq!(probs[0].file, file(&p, "checks/bad.sql"));
    assert_eq!(probs[0].line, 3, "{}", probs[0]);
    assert!(probs[0].column > 1, "{}", probs[0]);
    assert!(
        probs[0]
            .message
            .starts_with("SQL check `bad`: SQL does not parse"),
        "{}",
        probs[0]
    );

    let p = example();
    p.write("checks/drop.sql", "DROP TABLE calls");
    assert_one_problem(
        &problems(&p),
        &file(&p, "checks/drop.sql"),
        1,
        1,
        "only queries",
    );

    let p = example();
    p.write(
        "checks/of_a_pipe.sql",
        "SELECT * FROM top_reps WHERE won < 0",
    );
    assert_one_problem(
        &problems(&p),
        &file(&p, "checks/of_a_pipe.sql"),
        1,
        1,
        "reads `top_reps`, which is a pipe: SQL checks read sources only",
    );

    let p = example();
    p.write(
        "checks/param.sql",
        "SELECT * FROM calls WHERE amount < $min",
    );
    assert_one_problem(
        &problems(&p),
        &file(&p, "checks/param.sql"),
        1,
        1,
        "SQL checks take no parameters",
    );
}

// ---------------------------------------------------------------------------------------
// pipe tests

fn run_tests(p: &TestProject, pipes: &[&str]) -> Result<Vec<CaseResult>, SluiceError> {
    let pipes: Vec<String> = pipes.iter().map(|s| s.to_string()).collect();
    block_on(run_pipe_tests(p.project(), &pipes))
}

#[track_caller]
fn case<'a>(results: &'a [CaseResult], name: &str) -> &'a CaseResult {
    results
        .iter()
        .find(|r| r.case == name)
        .unwrap_or_else(|| panic!("no case `{name}` in {results:#?}"))
}

#[test]
fn the_example_s_pipe_tests_pass_on_its_fixture_data() {
    let p = example();
    let results = run_tests(&p, &[]).unwrap();
    assert_eq!(results.len(), 7, "{results:#?}");
    for r in &results {
        assert!(r.passed, "{r:#?}");
    }
    let top = case(&results, "top three reps since June");
    assert_eq!(top.file, PathBuf::from("tests/top_reps.toml"));
    assert_eq!(top.pipe, "top_reps");
    assert_eq!(top.detail, "3 rows as expected");
    assert!(
        case(&results, "a limit of zero is refused")
            .detail
            .contains("0 is below the minimum 1"),
        "{results:#?}"
    );

    // Only one pipe's cases.
    let only = run_tests(&p, &["account_health"]).unwrap();
    assert_eq!(only.len(), 4);
    assert!(only.iter().all(|r| r.pipe == "account_health"));
    let err = run_tests(&p, &["nope"]).unwrap_err();
    assert!(err.to_string().contains("unknown pipe `nope`"), "{err}");
}

#[test]
fn pipe_tests_read_the_fixture_store_not_the_environments() {
    // tests/data is its own, small store: the environments' data does not matter.
    let p = TestProject::example_undeployed(GenOptions {
        scale: 0.03,
        seed: 99,
        ..GenOptions::default()
    });
    let results = run_tests(&p, &["top_reps"]).unwrap();
    assert!(results.iter().all(|r| r.passed), "{results:#?}");
    // Without it, the cases fail, naming the missing source.
    std::fs::remove_dir_all(p.path().join("tests/data")).unwrap();
    let results = run_tests(&p, &["top_reps"]).unwrap();
    let top = case(&results, "top three reps since June");
    assert!(!top.passed);
    assert!(
        top.detail.contains("the pipe failed") && top.detail.contains("tests/data"),
        "{}",
        top.detail
    );
}

const CASES: &str = r#"
[[case]]
name = "rows pass"
pipe = "rows"
expect_rows = [[1, "a", 10.5], [2, "b", "null"], [3, "b", 30.0]]

[[case]]
name = "a wrong value"
pipe = "rows"
expect_rows = [[1, "a", 10.5], [2, "c", "null"], [3, "b", 30.0]]

[[case]]
name = "a missing row"
pipe = "rows"
expect_rows = [[1, "a", 10.5], [2, "b", "null"]]

[[case]]
name = "some columns"
pipe = "rows"
columns = ["team", "id"]
expect_rows = [["a", 1], ["b", 2], ["b", 3]]

[[case]]
name = "a column that is not there"
pipe = "rows"
columns = ["colour"]
expect_rows = [["red"]]

[[case]]
name = "count passes"
pipe = "rows"
expect_row_count = 3

[[case]]
name = "count fails"
pipe = "rows"
expect_row_count = 4

[[case]]
name = "runs"
pipe = "rows"

[[case]]
name = "error passes"
pipe = "limited"
params = { n = 0 }
expect_error = "below the minimum"

[[case]]
name = "error expected but none"
pipe = "limited"
params = { n = 2 }
expect_error = "below the minimum"

[[case]]
name = "another error"
pipe = "limited"
params = { n = 5000 }
expect_error = "below the minimum"

[[case]]
name = "floats within 1e-9"
pipe = "floats"
expect_rows = [[0.3, 100]]

[[case]]
name = "floats beyond 1e-9"
pipe = "floats"
expect_rows = [[0.3000001, 100]]

[[case]]
name = "typed params"
pipe = "typed"
params = { d = "2024-06-01", t = 2024-06-01T10:30:00, b = true, f = 2 }
expect_rows = [["2024-06-01", "2024-06-01T10:30:00", true, 2.0]]
"#;

fn case_project() -> TestProject {
    let p = TestProject::with_files(
        STAGING,
        &[
            ("rows", ROWS),
            (
                "limited",
                "[params.n]\ntype = \"int\"\ndefault = 1\nmin = 1\nmax = 10\n\n[[node]]\nname = \"a\"\nsql = \"SELECT * FROM (VALUES (1), (2), (3)) AS t(x) LIMIT $n\"\n",
            ),
            (
                "floats",
                "[[node]]\nname = \"a\"\nsql = \"SELECT 0.1 + 0.2 AS x, 100 AS y\"\n",
            ),
            (
                "typed",
                "[params.d]\ntype = \"date\"\n[params.t]\ntype = \"timestamp\"\n[params.b]\ntype = \"bool\"\n[params.f]\ntype = \"float\"\n\n[[node]]\nname = \"a\"\nsql = \"SELECT $d AS d, $t AS t, $b AS b, $f AS f\"\n",
            ),
        ],
    );
    p.write("tests/cases.toml", CASES);
    p
}

#[test]
fn pipe_tests_pass_and_fail_with_expected_against_actual() {
    let p = case_project();
    let results = run_tests(&p, &[]).unwrap();
    assert_eq!(results.len(), 14, "{results:#?}");
    let passed: Vec<&str> = results
        .iter()
        .filter(|r| r.passed)
        .map(|r| r.case.as_str())
        .collect();
    assert_eq!(
        passed,
        [
            "rows pass",
            "some columns",
            "count passes",
            "runs",
            "error passes",
            "floats within 1e-9",
            "typed params"
        ],
        "{results:#?}"
    );
    assert_eq!(
        case(&results, "a wrong value").detail,
        "1 difference (expected 3 rows, got 3 rows):\n  row 2: expected [2, \"c\", \"null\"], got [2, \"b\", \"null\"] (column `team`)"
    );
    assert_eq!(
        case(&results, "a missing row").detail,
        "1 difference (expected 2 rows, got 3 rows):\n  row 3: [3, \"b\", 30.0] was not expected"
    );
    assert_eq!(
        case(&results, "a column that is not there").detail,
        "the output has no column `colour` (its columns: id, team, amount)"
    );
    assert_eq!(case(&results, "count passes").detail, "3 rows");
    assert_eq!(
        case(&results, "count fails").detail,
        "expected 4 rows, got 3"
    );
    assert_eq!(case(&results, "runs").detail, "ran: 3 rows");
    assert!(
        case(&results, "error passes").detail.starts_with(
            "failed as expected: pipe `limited`: parameter `n`: 0 is below the minimum 1"
        ),
        "{results:#?}"
    );
    assert_eq!(
        case(&results, "error expected but none").detail,
        "expected an error containing \"below the minimum\", but the pipe returned 2 rows"
    );
    assert!(
        case(&results, "another error")
            .detail
            .contains("got: pipe `limited`: parameter `n`: 5000 is above the maximum 10"),
        "{results:#?}"
    );
    assert!(
        case(&results, "floats beyond 1e-9")
            .detail
            .contains("\n  row 1: expected [0.3000001, 100], got [0.30000000000000004, 100]"),
        "{results:#?}"
    );
}

#[test]
fn test_files_are_validated_with_their_position() {
    let bad: &[(&str, usize, usize, &str)] = &[
        (
            "[[case]]\nname = \"a\"\npipe = \"rows\"\nexpect_rowz = 3\n",
            4,
            1,
            "unknown field `expect_rowz`, expected one of `name`, `pipe`, `params`",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"nope\"\n",
            3,
            8,
            "case `a`: unknown pipe `nope` (known: floats, limited, rows, typed)",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"limited\"\nparams = { n = 1, m = 2 }\n",
            4,
            19,
            "case `a`: pipe `limited` has no parameter `m` (declared: n)",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"limited\"\nparams = { n = \"three\" }\n",
            4,
            16,
            "parameter `n`: \"three\" is not an integer",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"rows\"\nexpect_row_count = 3\nexpect_error = \"x\"\n",
            1,
            1,
            "choose one of expect_rows, expect_row_count, expect_error",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"rows\"\n\n[[case]]\nname = \"a\"\npipe = \"rows\"\n",
            6,
            8,
            "two cases are called `a`",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"rows\"\nexpect_rows = [[1, [2]]]\n",
            4,
            20,
            "a cell of `expect_rows` is a string, number, boolean or date",
        ),
        (
            "[[case]]\nname = \"a\"\npipe = \"rows\"\ncolumns = [\"id\"]\n",
            4,
            11,
            "`columns` applies to `expect_rows`",
        ),
        (
            "name = \"a\"\n",
            1,
            1,
            "unknown field `name`, expected `case`",
        ),
    ];
    for (toml, line, col, msg) in bad {
        let p = case_project();
        p.write("tests/cases.toml", toml);
        let err = run_tests(&p, &[]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let SluiceError::Config { problems } = err else {
            panic!("expected a configuration error, got {err:?}")
        };
        assert_one_problem(&problems, &file(&p, "tests/cases.toml"), *line, *col, msg);
    }
}

#[test]
fn pipe_tests_of_a_given_definition() {
    let p = case_project();
    let project = p.project();
    // A version of `limited` whose minimum is 0: its expect_error case now fails.
    let text = std::fs::read_to_string(p.path().join("pipes/limited.toml"))
        .unwrap()
        .replace("min = 1", "min = 0");
    let candidate =
        Pipe::from_text(&project, std::path::Path::new("v2"), "limited", &text).unwrap();
    let results = block_on(run_pipe_tests_for(project.clone(), &candidate)).unwrap();
    assert_eq!(
        results.len(),
        3,
        "only the cases of `limited`: {results:#?}"
    );
    assert!(!case(&results, "error passes").passed);
    assert!(
        case(&results, "error expected but none")
            .detail
            .contains("2 rows")
    );

    // A version without the parameter a case gives: that case fails, it is not an error.
    let text = "[[node]]\nname = \"a\"\nsql = \"SELECT 1 AS x\"\n";
    let candidate = Pipe::from_text(&project, std::path::Path::new("v3"), "limited", text).unwrap();
    let results = block_on(run_pipe_tests_for(project, &candidate)).unwrap();
    let r = case(&results, "error passes");
    assert!(!r.passed);
    assert_eq!(
        r.detail,
        "pipe `limited` has no parameter `n` (declared: none)"
    );
}

// ---------------------------------------------------------------------------------------
// the commands

#[test]
fn sluice_test_prints_a_line_per_case_and_exits_by_the_outcome() {
    let p = example();
    let (out, _) = sluice_in(&p, &["test"], 0);
    assert!(
        out.contains(
            "ok   tests/top_reps.toml: top three reps since June (top_reps): 3 rows as expected\n"
        ),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok   ")).count(),
        7,
        "{out}"
    );
    assert!(out.ends_with("7 passed, 0 failed\n"), "{out}");

    let (out, _) = sluice_in(&p, &["test", "top_reps"], 0);
    assert!(out.ends_with("3 passed, 0 failed\n"), "{out}");

    // A changed pipe fails its case: exit 1, with expected against actual.
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &original.replace("ORDER BY w.won DESC, r.name", "ORDER BY w.won ASC, r.name"),
    );
    let (out, err) = sluice_in(&p, &["test", "top_reps"], 1);
    assert!(
        out.contains("FAIL tests/top_reps.toml: top three reps since June (top_reps): 3 differences (expected 3 rows, got 3 rows):\n  row 1: expected [\"Gia Jones\", 20, 261003.0], got ["),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 1 failed\n"), "{out}");
    assert!(err.contains("1 case(s) failed"), "{err}");

    // A broken test file is a configuration error: exit 2.
    p.write(
        "tests/broken.toml",
        "[[case]]\nname = \"x\"\npipe = \"top_reps\"\nexpect = 1\n",
    );
    let (_, err) = sluice_in(&p, &["test"], 2);
    assert!(
        err.contains("tests/broken.toml:4:1: unknown field `expect`"),
        "{err}"
    );
    let (_, err) = sluice_in(&p, &["test", "nope"], 2);
    assert!(err.contains("unknown pipe `nope`"), "{err}");
}

#[test]
fn sluice_check_prints_a_line_per_check_and_exits_by_the_outcome() {
    let p = example();
    let (out, _) = sluice_in(&p, &["check"], 0);
    assert!(
        out.starts_with("environment staging (sample system 10% seed 7)\n"),
        "{out}"
    );
    assert!(
        out.contains("ok   top_reps: not_null(name, won): no NULLs in "),
        "{out}"
    );
    assert!(
        out.contains("ok   account_health: unique(account_id): "),
        "{out}"
    );
    assert!(
        out.contains("ok   checks/won_calls_have_amounts.sql: no rows\n"),
        "{out}"
    );
    assert!(out.ends_with("7 passed, 0 failed\n"), "{out}");

    // Named pipes: their checks only, with the sampling flags of `run`.
    let (out, _) = sluice_in(&p, &["check", "top_reps", "--full"], 0);
    assert!(
        out.starts_with("environment staging (full data)\n"),
        "{out}"
    );
    assert!(!out.contains("checks/"), "{out}");
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");

    // A failing check: exit 1.
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &format!("{original}\n[[check]]\nrow_count = {{ max = 2 }}\n"),
    );
    let (out, err) = sluice_in(&p, &["check", "top_reps", "--full"], 1);
    assert!(
        out.contains("FAIL top_reps: row_count(<=2): 8 rows, above the maximum 2\n"),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 1 failed\n"), "{out}");
    assert!(err.contains("1 check(s) failed"), "{err}");

    // A check naming a column the output lacks: exit 2.
    p.write(
        "pipes/top_reps.toml",
        &format!("{original}\n[[check]]\nunique = [\"rep\"]\n"),
    );
    let (_, err) = sluice_in(&p, &["check", "top_reps"], 2);
    assert!(
        err.contains("pipe `top_reps`, check `unique(rep)`: the pipe's output has no column `rep`"),
        "{err}"
    );
    let (_, err) = sluice_in(&p, &["check", "--env", "nowhere"], 2);
    assert!(err.contains("unknown environment `nowhere`"), "{err}");
}

#[test]
fn sluice_check_in_production_checks_the_deployed_versions() {
    let p = TestProject::example(0.02);
    // The working copy's new check is not what production runs.
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &format!("{original}\n[[check]]\nrow_count = {{ max = 2 }}\n"),
    );
    let (out, _) = sluice_in(&p, &["check", "--env", "production"], 0);
    assert!(
        out.starts_with("environment production (full data, deployed versions)\n"),
        "{out}"
    );
    assert!(out.ends_with("7 passed, 0 failed\n"), "{out}");
    // Staging runs the working copy, with the new check.
    let (out, _) = sluice_in(&p, &["check", "top_reps"], 1);
    assert!(out.contains("FAIL top_reps: row_count(<=2)"), "{out}");
}

#[test]
fn init_ships_fixture_data_and_pipe_tests_that_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .current_dir(tmp.path())
        .args(["init", "proj", "--scale", "0.02", "--seed", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tmp.path().join("proj");
    assert!(
        text(&out.stderr).contains("tests: wrote 1,000 calls, 50 accounts, 8 reps into"),
        "{}",
        text(&out.stderr)
    );
    for f in [
        "tests/top_reps.toml",
        "tests/account_health.toml",
        "checks/won_calls_have_amounts.sql",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(dir.join("tests/data/calls").is_dir());
    // The environments' stores are ignored by git, the fixture store is not.
    assert_eq!(
        std::fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/data/\n/.sluice/\n"
    );

    let out = sluice().current_dir(&dir).arg("test").output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).ends_with("7 passed, 0 failed\n"),
        "{}",
        text(&out.stdout)
    );
}
