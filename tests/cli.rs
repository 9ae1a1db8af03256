//! The `sluice` binary, end to end: every command on the generated sales_calls example,
//! its outputs, its exit codes (0 ok, 1 a run failed, 2 usage or configuration) and its
//! error messages.

use std::io::Read;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{TestProject, sluice, sluice_bin};

// ---------------------------------------------------------------------------------------
// helpers

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Runs `sluice ARGS` in the project and requires exit 0; returns (stdout, stderr).
fn ok(p: &TestProject, args: &[&str]) -> (String, String) {
    p.expect_exit(args, 0)
}

/// Runs `sluice ARGS` in the project and requires exit `code`; returns (stdout, stderr).
fn fails(p: &TestProject, args: &[&str], code: i32) -> (String, String) {
    p.expect_exit(args, code)
}

/// The data lines of CSV output (without the header).
fn csv_rows(csv: &str) -> Vec<&str> {
    let mut lines = csv.lines();
    lines.next().expect("a CSV header line");
    lines.collect()
}

/// The cells of each data row of a pretty table (`| a | b |` lines, header excluded).
fn table_rows(out: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = out
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "no table in:\n{out}");
    rows.remove(0); // header
    rows
}

/// `select count(*)` of a source in an environment, through `sluice query -f csv`.
fn count(p: &TestProject, source: &str, env: &str) -> u64 {
    let sql = format!("select count(*) as n from {source}");
    let (out, _) = ok(p, &["query", &sql, "--env", env, "-f", "csv", "-q"]);
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    rows[0].parse().expect("a count")
}

fn canonical(p: &TestProject) -> std::path::PathBuf {
    p.path().canonicalize().expect("canonical project path")
}

/// The example project with one more pipe: calls of one outcome, a required string
/// parameter bound in a WHERE.
fn with_by_outcome(scale: f64) -> TestProject {
    let p = TestProject::example(scale);
    p.write(
        "pipes/by_outcome.toml",
        r#"description = "Calls of one outcome"

[params.outcome]
type = "string"
required = true

[[node]]
name = "matching"
sql = "SELECT call_id, outcome FROM calls WHERE outcome = $outcome ORDER BY call_id"
"#,
    );
    // Production runs promoted versions only.
    p.deploy_and_promote_all();
    p
}

// ---------------------------------------------------------------------------------------
// init and quickstart

fn parquet_files(dir: &Path) -> usize {
    parquet_paths(dir).len()
}

/// The Parquet files of a folder, sorted.
fn parquet_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
}

#[test]
fn init_creates_a_project_with_data_and_refuses_to_run_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .current_dir(tmp.path())
        .args(["init", "proj", "--scale", "0.02"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created the sales_calls project in proj"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("staging: wrote 2,000 calls, 50 accounts, 8 reps"),
        "{stderr}"
    );
    assert!(stderr.contains("production: wrote 2,000 calls"), "{stderr}");

    let dir = tmp.path().join("proj");
    assert!(dir.join("sluice.toml").is_file());
    for pipe in ["top_reps", "account_health", "daily_outcomes"] {
        assert!(
            dir.join("pipes").join(format!("{pipe}.toml")).is_file(),
            "{pipe}"
        );
    }
    for env in ["staging", "production"] {
        for source in ["accounts", "reps"] {
            assert_eq!(parquet_files(&dir.join("data").join(env).join(source)), 1);
        }
        assert_eq!(parquet_files(&dir.join("data").join(env).join("calls")), 4);
    }
    let before = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();

    // The new project works.
    let out = sluice()
        .current_dir(&dir)
        .args([
            "query",
            "select count(*) as n from calls",
            "--env",
            "production",
            "-f",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "n\n2000\n");

    // A second init in the same folder is a usage error and changes nothing.
    let out = sluice()
        .current_dir(tmp.path())
        .args(["init", "proj", "--scale", "0.02"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: proj already holds a project (sluice.toml exists)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sluice.toml")).unwrap(),
        before
    );
}

#[test]
fn a_failed_init_leaves_no_half_project() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .current_dir(tmp.path())
        .args(["init", "proj", "--scale", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("scale 0 must be a positive number"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !tmp.path().join("proj/sluice.toml").exists(),
        "a failed init left a project without data behind"
    );
    let out = sluice()
        .current_dir(tmp.path())
        .args(["init", "proj", "--scale", "0.02"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn quickstart_prints_the_contrast_of_both_environments_for_every_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .current_dir(tmp.path())
        .args(["quickstart", "qs", "--scale", "0.02"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tmp.path().join("qs/sluice.toml").is_file());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("top_reps in staging: estimates of production's answer"),
        "{stdout}"
    );
    let after = stdout
        .split("staging vs production, every pipe of qs:")
        .nth(1)
        .unwrap_or_else(|| panic!("no contrast table in:\n{stdout}"));
    let (contrast, fidelity) = after
        .split_once("how far staging's estimates are from production")
        .unwrap_or_else(|| panic!("no fidelity table in:\n{stdout}"));
    // Every pipe's estimates are judged against production.
    let judged = table_rows(fidelity);
    let mut judged_pipes: Vec<&str> = judged.iter().map(|r| r[0].as_str()).collect();
    judged_pipes.sort();
    assert_eq!(
        judged_pipes,
        ["account_health", "daily_outcomes", "top_reps"],
        "{fidelity}"
    );
    let rows = table_rows(contrast);
    let mut seen: Vec<(String, String)> =
        rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    seen.sort();
    let mut expected = Vec::new();
    for pipe in ["account_health", "daily_outcomes", "top_reps"] {
        for env in ["production", "staging"] {
            expected.push((pipe.to_string(), env.to_string()));
        }
    }
    assert_eq!(seen, expected, "{contrast}");
    for r in &rows {
        let want = if r[1] == "production" {
            "full"
        } else {
            "system 10% seed 7"
        };
        assert_eq!(r[2], want, "sample column of {r:?}");
        if r[1] == "production" {
            assert_eq!(r[6], "100.0%", "kept column of {r:?}");
        } else {
            // The sample keeps some rows, and far fewer than the full set.
            assert_ne!(r[3], "0", "rows out of {r:?}");
            let kept: f64 = r[6].trim_end_matches('%').parse().unwrap();
            assert!(kept > 0.0 && kept < 50.0, "kept column of {r:?}");
        }
    }
    // Production reads everything: top_reps ranks all 8 reps (limit 10).
    let top_prod = rows
        .iter()
        .find(|r| r[0] == "top_reps" && r[1] == "production")
        .unwrap();
    assert_eq!(top_prod[3], "8");
    assert_eq!(top_prod[4], "2,008", "2,000 calls + 8 reps scanned");
}

// ---------------------------------------------------------------------------------------
// envs and sources

#[test]
fn envs_lists_both_environments_and_which_is_protected() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(&p, &["envs"]);
    let rows = table_rows(&out);
    let protected: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(protected, vec![("production", "yes"), ("staging", "no")]);
    insta::assert_snapshot!(out.trim_end(), @r"
    +-------------+-----------------+-------------------+-----------+----------------------+
    | environment | data            | sample            | protected | settings             |
    +-------------+-----------------+-------------------+-----------+----------------------+
    | production  | data/production | full              | yes       | memory_limit=4.0 GiB |
    | staging     | data/staging    | system 10% seed 7 | no        |                      |
    +-------------+-----------------+-------------------+-----------+----------------------+
    ");
}

#[test]
fn sources_lists_files_and_rows_of_staging_by_default() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(&p, &["sources"]);
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("environment staging ("), "{first}");
    assert!(first.contains("data/staging"), "{first}");
    let rows = table_rows(out.split("\n\n").next().unwrap());
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, vec!["accounts", "calls", "reps"]);
    // source | path | files | row_groups | rows | bytes | sample | declared
    let calls = &rows[1];
    assert_eq!((calls[2].as_str(), calls[4].as_str()), ("4", "2,000"));
    assert_eq!(calls[6], "system 10% seed 7");
    assert_eq!((rows[0][2].as_str(), rows[0][4].as_str()), ("1", "50"));
    assert_eq!(rows[0][6], "full");
    assert_eq!((rows[2][2].as_str(), rows[2][4].as_str()), ("1", "8"));
    // One schema table per source.
    assert!(out.contains("\ncalls\n"), "{out}");
    assert!(out.contains("| started_at "), "{out}");
}

#[test]
fn sources_in_production_match_the_queried_row_count() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(&p, &["sources", "--env", "production"]);
    assert!(out.starts_with("environment production ("), "{out}");
    let rows = table_rows(out.split("\n\n").next().unwrap());
    let calls = rows.iter().find(|r| r[0] == "calls").expect("a calls row");
    assert_eq!(calls[2], "4");
    assert_eq!(calls[6], "full");
    let listed: u64 = calls[4].replace(',', "").parse().unwrap();
    assert_eq!(listed, 2_000, "scale 0.02 is 2,000 calls");
    assert_eq!(count(&p, "calls", "production"), listed);
    let accounts = rows.iter().find(|r| r[0] == "accounts").unwrap();
    assert_eq!(
        count(&p, "accounts", "production"),
        accounts[4].parse::<u64>().unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// query

const OUTCOMES_SQL: &str =
    "select outcome, count(*) as n from calls group by outcome order by outcome";

#[test]
fn query_csv_in_production_is_exact() {
    let p = TestProject::example(0.02);
    let (out, err) = ok(
        &p,
        &["query", OUTCOMES_SQL, "--env", "production", "-f", "csv"],
    );
    let total: u64 = csv_rows(&out)
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 2_000);
    insta::assert_snapshot!(out.trim_end(), @r"
    outcome,n
    follow_up,488
    lost,475
    no_answer,444
    voicemail,288
    won,251
    ,54
    ");
    // The summary on stderr starts with the environment.
    let summary = err.lines().next().unwrap();
    assert!(
        summary.starts_with("production · query · 6 rows in "),
        "{summary}"
    );
    assert!(summary.ends_with("full data"), "{summary}");
}

#[test]
fn query_json_and_ndjson_parse() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(
        &p,
        &[
            "query",
            OUTCOMES_SQL,
            "--env",
            "production",
            "-f",
            "json",
            "-q",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let items = v.as_array().expect("a JSON array");
    assert_eq!(items.len(), 6);
    assert_eq!(items[0]["outcome"], "follow_up");
    assert_eq!(items[0]["n"], 488);
    let total: u64 = items.iter().map(|o| o["n"].as_u64().unwrap()).sum();
    assert_eq!(total, 2_000);

    let (out, _) = ok(
        &p,
        &[
            "query",
            "select call_id, channel from calls order by call_id limit 5",
            "--env",
            "production",
            "-f",
            "ndjson",
            "-q",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for (i, line) in lines.iter().enumerate() {
        let o: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(o["call_id"], i as u64 + 1);
        assert!(
            matches!(o["channel"].as_str(), Some("phone" | "video")),
            "{line}"
        );
    }
}

#[test]
fn query_writes_readable_parquet_and_arrow_files() {
    use datafusion::arrow::ipc::reader::StreamReader;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let p = TestProject::example(0.02);
    let out_dir = tempfile::tempdir().unwrap();
    let pq = out_dir.path().join("calls.parquet");
    let (_, err) = ok(
        &p,
        &[
            "query",
            "select * from calls",
            "--env",
            "production",
            "-f",
            "parquet",
            "-o",
            pq.to_str().unwrap(),
        ],
    );
    assert!(err.contains(&format!("wrote {}", pq.display())), "{err}");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&pq).unwrap())
        .expect("a parquet file")
        .build()
        .unwrap();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap();
        assert_eq!(batch.num_columns(), 8);
        rows += batch.num_rows();
    }
    assert_eq!(rows, 2_000);

    let arrow = out_dir.path().join("calls.arrow");
    ok(
        &p,
        &[
            "query",
            "select call_id, outcome from calls",
            "--env",
            "production",
            "-f",
            "arrow",
            "-o",
            arrow.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(std::fs::metadata(&arrow).unwrap().len() > 0);
    let reader = StreamReader::try_new(std::fs::File::open(&arrow).unwrap(), None).unwrap();
    assert_eq!(reader.schema().fields().len(), 2);
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2_000);
    // No temporary files are left next to the outputs.
    let names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn query_limit_keeps_that_many_rows() {
    let p = TestProject::example(0.02);
    let (out, err) = ok(
        &p,
        &[
            "query",
            "select call_id from calls order by call_id",
            "--env",
            "production",
            "-f",
            "csv",
            "--limit",
            "3",
        ],
    );
    assert_eq!(out, "call_id\n1\n2\n3\n");
    assert!(err.starts_with("production · query · 3 rows in "), "{err}");
}

#[test]
fn query_refuses_statements_that_write() {
    let p = TestProject::example(0.02);
    let (_, err) = fails(&p, &["query", "CREATE TABLE x AS SELECT 1"], 2);
    assert!(err.contains("environment `staging`"), "{err}");
    assert!(err.contains("`sluice query` never writes"), "{err}");

    let target = p.path().join("copied.csv");
    let sql = format!("COPY (SELECT * FROM calls) TO '{}'", target.display());
    let (_, err) = fails(&p, &["query", &sql, "--env", "production"], 2);
    assert!(err.contains("never writes"), "{err}");
    assert!(!target.exists(), "COPY wrote {}", target.display());

    for sql in [
        "INSERT INTO calls SELECT * FROM calls",
        "DROP TABLE calls",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/tmp/x'",
    ] {
        let (_, err) = fails(&p, &["query", sql, "--env", "production"], 2);
        assert!(err.contains("never writes"), "{sql}: {err}");
    }
    assert_eq!(count(&p, "calls", "production"), 2_000);

    let (_, err) = fails(&p, &["query", "select 1 as a; select 2 as b"], 2);
    assert!(err.contains("expected one SQL statement, found 2"), "{err}");
}

#[test]
fn query_errors_name_the_environment() {
    let p = TestProject::example(0.02);
    let (out, err) = fails(
        &p,
        &[
            "query",
            "select no_such_column from calls",
            "--env",
            "production",
        ],
        2,
    );
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: environment `production`: "),
        "{err}"
    );
    assert!(err.contains("no_such_column"), "{err}");

    let (_, err) = fails(&p, &["query", "select * from no_such_table"], 2);
    assert!(err.starts_with("error: environment `staging`: "), "{err}");
    assert!(err.contains("no_such_table"), "{err}");
}

// ---------------------------------------------------------------------------------------
// run

#[test]
fn run_top_reps_in_staging_and_production() {
    // Scale 0.1: the staging sample keeps whole row groups (the next test covers files
    // whose few row groups the sample must cut into ranges).
    let p = TestProject::example(0.1);
    let (staging, err) = ok(&p, &["run", "top_reps", "-f", "csv"]);
    let rows = csv_rows(&staging);
    assert_eq!(rows.len(), 10, "default limit 10:\n{staging}");
    assert!(staging.starts_with("name,team,won,revenue\n"), "{staging}");
    assert!(
        err.starts_with("staging · pipe top_reps · 10 rows in "),
        "{err}"
    );
    assert!(err.contains("sample system 10% seed 7"), "{err}");

    let (production, err) = ok(&p, &["run", "top_reps", "--env", "production", "-f", "csv"]);
    assert_eq!(csv_rows(&production).len(), 10);
    assert!(
        err.starts_with("production · pipe top_reps · 10 rows in "),
        "{err}"
    );
    assert!(err.contains("full data"), "{err}");
    // The sample counts fewer wins than the full set.
    let won = |csv: &str| -> u64 {
        csv_rows(csv)
            .iter()
            .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert!(won(&staging) < won(&production), "{staging}\n{production}");

    let (three, _) = ok(&p, &["run", "top_reps", "--param", "limit=3", "-f", "csv"]);
    assert_eq!(csv_rows(&three), rows[..3].to_vec());
}

#[test]
fn staging_sample_of_files_with_few_row_groups_keeps_rows() {
    // At scale 0.02 each calls file is one row group of 500 rows: a 10% sample must
    // select row ranges inside the groups.
    let p = TestProject::example(0.02);
    let staging = count(&p, "calls", "staging");
    assert!(
        (100..=400).contains(&staging),
        "10% of 2,000 calls kept {staging}"
    );
    let (out, _) = ok(
        &p,
        &[
            "query",
            "select count(*) as n from calls",
            "--sample",
            "100",
            "--sample-method",
            "rows",
            "-f",
            "csv",
            "-q",
        ],
    );
    assert_eq!(out, "n\n100\n");
    let (out, _) = ok(
        &p,
        &[
            "query",
            "select count(*) as n from calls",
            "--sample",
            "0.2",
            "--sample-method",
            "bernoulli",
            "-f",
            "csv",
            "-q",
        ],
    );
    let n: u64 = csv_rows(&out)[0].parse().unwrap();
    assert!((250..=550).contains(&n), "bernoulli 20% of 2,000 kept {n}");
    let (out, _) = ok(&p, &["run", "top_reps", "-f", "csv"]);
    let rows = csv_rows(&out).len();
    assert!(
        (1..=10).contains(&rows),
        "top_reps in staging gave {rows} rows"
    );
}

#[test]
fn run_full_in_staging_equals_production() {
    let p = TestProject::example(0.02);
    let (full, err) = ok(&p, &["run", "top_reps", "--full", "-f", "csv"]);
    let (production, _) = ok(&p, &["run", "top_reps", "--env", "production", "-f", "csv"]);
    assert_eq!(full, production);
    assert_eq!(csv_rows(&full).len(), 8, "all 8 reps rank");
    assert!(err.starts_with("staging · pipe top_reps · 8 rows"), "{err}");
    assert!(err.contains("full data"), "{err}");
}

#[test]
fn run_with_a_sample_override_is_deterministic() {
    let p = TestProject::example(0.02);
    let args = [
        "run", "top_reps", "--sample", "0.5", "--seed", "3", "-f", "csv",
    ];
    let (a, err) = ok(&p, &args);
    let (b, _) = ok(&p, &args);
    assert_eq!(a, b);
    assert!(!csv_rows(&a).is_empty(), "the sample kept no rows:\n{a}");
    assert!(err.contains("sample system 50% seed 3"), "{err}");
    // And it is a sample: fewer wins than the full set.
    let (full, _) = ok(&p, &["run", "top_reps", "--full", "-f", "csv"]);
    assert_ne!(a, full);
}

#[test]
fn run_verbose_prints_each_source() {
    let p = TestProject::example(0.1);
    let (_, err) = ok(&p, &["run", "top_reps", "-v", "-f", "csv"]);
    // Sluice's own lines only: no log records, no colours into a file.
    assert!(!err.contains("DEBUG") && !err.contains('\x1b'), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let summary = lines
        .iter()
        .position(|l| l.starts_with("staging · pipe top_reps"))
        .unwrap_or_else(|| panic!("no summary in:\n{err}"));
    let sources: Vec<&str> = lines[summary + 1..]
        .iter()
        .copied()
        .filter(|l| l.starts_with("  "))
        .collect();
    assert_eq!(sources.len(), 2, "{err}");
    assert!(
        sources[0].starts_with("  calls: system 10% seed 7 · scanned "),
        "{err}"
    );
    let scanned: u64 = sources[0]
        .split(" · scanned ")
        .nth(1)
        .and_then(|s| s.split(" of 10,000 rows").next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((500..=1_500).contains(&scanned), "{err}");
    assert!(
        sources[1].starts_with("  reps: full (source setting) · scanned 18 of 18 rows"),
        "{err}"
    );
    // Without -v, only the summary.
    let (_, err) = ok(&p, &["run", "top_reps", "-f", "csv"]);
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---------------------------------------------------------------------------------------
// parameters

#[test]
fn parameter_errors_name_the_parameter() {
    let p = with_by_outcome(0.02);
    let (_, err) = fails(&p, &["run", "by_outcome", "--env", "production"], 2);
    assert!(
        err.contains("pipe `by_outcome`: parameter `outcome`: is required (type string)"),
        "{err}"
    );

    let (_, err) = fails(&p, &["run", "top_reps", "--param", "nope=1"], 2);
    assert!(err.contains("parameter `nope`: unknown parameter"), "{err}");
    assert!(err.contains("declared: limit, since"), "{err}");

    let (_, err) = fails(&p, &["run", "top_reps", "--param", "limit=abc"], 2);
    assert!(err.contains("parameter `limit`"), "{err}");
    assert!(
        err.contains("`abc` is not an integer (expected type int)"),
        "{err}"
    );

    let (_, err) = fails(&p, &["run", "top_reps", "--param", "limit=0"], 2);
    assert!(
        err.contains("parameter `limit`: 0 is below the minimum 1"),
        "{err}"
    );

    let (_, err) = fails(&p, &["run", "top_reps", "--param", "limit=1001"], 2);
    assert!(
        err.contains("parameter `limit`: 1001 is above the maximum 1000"),
        "{err}"
    );

    let (_, err) = fails(&p, &["run", "account_health", "--param", "region=mars"], 2);
    assert!(err.contains("parameter `region`"), "{err}");
    assert!(
        err.contains("\"mars\" is not one of the allowed values"),
        "{err}"
    );

    let (_, err) = fails(
        &p,
        &["run", "top_reps", "-p", "limit=2", "-p", "limit=3"],
        2,
    );
    assert!(
        err.contains("parameter `limit`: given more than once"),
        "{err}"
    );

    // Not NAME=VALUE: refused by the argument parser.
    let (_, err) = fails(&p, &["run", "top_reps", "--param", "limit"], 2);
    assert!(err.contains("`limit` is not NAME=VALUE"), "{err}");
}

#[test]
fn a_hostile_string_parameter_is_a_plain_value() {
    let p = with_by_outcome(0.02);
    let (won, _) = ok(
        &p,
        &[
            "run",
            "by_outcome",
            "--env",
            "production",
            "-p",
            "outcome=won",
            "-f",
            "csv",
            "-q",
        ],
    );
    assert_eq!(
        csv_rows(&won).len(),
        251,
        "the pipe works with a real value"
    );

    for hostile in ["x'; DROP TABLE calls; --", "won' OR '1'='1"] {
        let param = format!("outcome={hostile}");
        let (out, err) = ok(
            &p,
            &[
                "run",
                "by_outcome",
                "--env",
                "production",
                "-p",
                &param,
                "-f",
                "csv",
            ],
        );
        assert_eq!(out, "call_id,outcome\n", "{hostile}: rows were returned");
        assert!(err.contains("· 0 rows in"), "{err}");
    }
    assert_eq!(count(&p, "calls", "production"), 2_000);
    assert!(
        p.store("production")
            .join("calls/part-000.parquet")
            .is_file()
    );
}

// ---------------------------------------------------------------------------------------
// explain and validate

#[test]
fn explain_prints_the_plans() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(&p, &["explain", "top_reps"]);
    assert!(
        out.starts_with("-- pipe top_reps in staging (sample system 10% seed 7)"),
        "{out}"
    );
    assert!(out.contains("== Logical plan =="), "{out}");
    assert!(out.contains("== Physical plan =="), "{out}");
    assert!(out.contains("DataSourceExec"), "{out}");
    assert!(
        out.contains("fetch=10"),
        "the default limit is bound: {out}"
    );

    let (out, _) = ok(
        &p,
        &[
            "explain",
            "top_reps",
            "--env",
            "production",
            "-p",
            "limit=4",
        ],
    );
    assert!(
        out.starts_with("-- pipe top_reps in production (full data)"),
        "{out}"
    );
    assert!(out.contains("fetch=4"), "{out}");

    let (out, _) = ok(
        &p,
        &["explain", "top_reps", "--analyze", "--env", "production"],
    );
    assert!(out.contains("== Executed plan (with metrics) =="), "{out}");
    assert!(out.contains("DataSourceExec"), "{out}");

    fails(&p, &["explain", "nope"], 2);
    fails(&p, &["explain", "top_reps", "-p", "limit=0"], 2);
}

#[test]
fn explain_analyze_shows_metrics() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(
        &p,
        &["explain", "top_reps", "--analyze", "--env", "production"],
    );
    let executed = out
        .split("== Executed plan (with metrics) ==")
        .nth(1)
        .unwrap_or_else(|| panic!("no executed plan in:\n{out}"));
    assert!(executed.contains("metrics=["), "{executed}");
    assert!(executed.contains("output_rows=8"), "{executed}");
}

#[test]
fn validate_passes_on_the_example_and_names_pipe_and_node_of_a_failure() {
    let p = TestProject::example(0.02);
    let (out, _) = ok(&p, &["validate"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ok   production: 3 pipes plan", "{out}");
    assert_eq!(lines[1], "ok   staging: 3 pipes plan", "{out}");
    // How staging reads its sample for each pipe: a warning, not a failure.
    assert!(
        lines[2].starts_with("warn staging: pipe `daily_outcomes`, node `daily`: groups by `started_at`, the declared sort order of `calls`, under `system` sampling"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");

    p.write(
        "pipes/broken.toml",
        r#"[[node]]
name = "base"
sql = "SELECT rep_id, outcome FROM calls"

[[node]]
name = "bad"
sql = "SELECT rep_id, no_such_column FROM base"
"#,
    );
    let (out, err) = fails(&p, &["validate"], 1);
    for env in ["production", "staging"] {
        let line = format!("FAIL {env}: pipe `broken`, node `bad`: ");
        assert!(out.contains(&line), "{line} missing in:\n{out}");
    }
    assert!(out.contains("no_such_column"), "{out}");
    assert!(
        !out.contains("pipe `top_reps`"),
        "only the broken pipe fails:\n{out}"
    );
    assert!(err.contains("2 failing pipe plan(s)"), "{err}");

    let (out, _) = fails(&p, &["validate", "--env", "staging"], 1);
    assert!(
        out.contains("FAIL staging: pipe `broken`, node `bad`"),
        "{out}"
    );
    assert!(!out.contains("production"), "{out}");
    fails(&p, &["validate", "--env", "nope"], 2);
}

// ---------------------------------------------------------------------------------------
// environments and errors

#[test]
fn a_protected_default_environment_must_be_named() {
    let p = TestProject::example(0.02);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    let toml = toml.replacen(
        "[environments.staging]\n",
        "[environments.staging]\nprotected = true\n",
        1,
    );
    assert!(toml.contains("protected = true\ndata = \"data/staging\""));
    p.write("sluice.toml", &toml);

    let (out, err) = fails(&p, &["run", "top_reps"], 2);
    assert!(out.is_empty());
    assert!(
        err.contains("environment `staging` is protected: name it explicitly with `--env staging`"),
        "{err}"
    );
    fails(&p, &["query", "select 1"], 2);
    fails(&p, &["sources"], 2);
    // Named, it runs.
    ok(
        &p,
        &["run", "top_reps", "--env", "staging", "--full", "-f", "csv"],
    );
}

#[test]
fn unknown_pipe_environment_or_project_are_usage_errors() {
    let p = TestProject::example(0.02);
    let (_, err) = fails(&p, &["run", "nope"], 2);
    assert!(
        err.contains("unknown pipe `nope` (known: account_health, daily_outcomes, top_reps)"),
        "{err}"
    );
    let (_, err) = fails(&p, &["run", "top_reps", "--env", "nope"], 2);
    assert!(
        err.contains("unknown environment `nope` (known: production, staging)"),
        "{err}"
    );
    let (_, err) = fails(&p, &["sources", "nope"], 2);
    assert!(err.contains("unknown source `nope`"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    for args in [&["envs"][..], &["run", "top_reps"], &["validate"]] {
        let out = sluice()
            .current_dir(empty.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("no sluice.toml in "), "{err}");
        assert!(err.contains("`sluice new DIR`"), "{err}");
    }
    // The suggestion works from there.
    let out = sluice()
        .current_dir(empty.path())
        .args(["new", "proj"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sluice()
        .current_dir(empty.path().join("proj"))
        .args(["envs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // -C points at a project from anywhere.
    let out = sluice()
        .current_dir(empty.path())
        .args(["-C", p.path().to_str().unwrap(), "envs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("production"));
    // So does SLUICE_PROJECT.
    let out = sluice()
        .current_dir(empty.path())
        .env("SLUICE_PROJECT", p.path())
        .args(["envs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("staging"));
}

#[test]
fn a_missing_source_folder_is_a_run_error_naming_env_source_and_path() {
    let p = TestProject::example(0.02);
    std::fs::remove_dir_all(p.store("staging").join("reps")).unwrap();
    let (out, err) = fails(&p, &["run", "top_reps"], 1);
    assert!(out.is_empty(), "{out}");
    let path = canonical(&p).join("data/staging/reps");
    assert!(
        err.contains(&format!(
            "environment `staging`: source `reps` has no data at {}",
            path.display()
        )),
        "{err}"
    );
    // Production is untouched.
    ok(&p, &["run", "top_reps", "--env", "production"]);
}

#[test]
fn a_corrupt_parquet_file_is_a_run_error_naming_the_file() {
    let p = TestProject::example(0.02);
    let bad = p.store("staging").join("calls/part-999.parquet");
    std::fs::write(&bad, b"this is not parquet at all, just garbage bytes").unwrap();
    let (_, err) = fails(&p, &["run", "top_reps"], 1);
    let file = canonical(&p).join("data/staging/calls/part-999.parquet");
    assert!(
        err.contains("environment `staging`: source `calls`: "),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} is not a valid Parquet file", file.display())),
        "{err}"
    );
    let (_, err) = fails(&p, &["query", "select count(*) from calls"], 1);
    assert!(err.contains("part-999.parquet"), "{err}");
}

#[test]
fn a_corrupt_page_in_the_middle_of_a_file_is_a_run_error_naming_the_file() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let p = TestProject::example(0.02);
    let files = parquet_paths(&p.store("production").join("calls"));
    let bad = &files[0];
    // The middle row group's: the footer is intact, so the listing reads the file and
    // the scan fails on it.
    let meta = SerializedFileReader::new(std::fs::File::open(bad).unwrap())
        .unwrap()
        .metadata()
        .clone();
    corrupt_first_page(bad, meta.num_row_groups() / 2, "rep_id");
    let before = std::fs::read(bad).unwrap();

    let file = canonical(&p)
        .join("data/production/calls")
        .join(bad.file_name().unwrap());
    let (out, err) = fails(
        &p,
        &[
            "query",
            "select sum(rep_id) from calls",
            "--env",
            "production",
        ],
        1,
    );
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "environment `production`: source `calls`: {}: ",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (_, err) = fails(&p, &["run", "top_reps", "--env", "production"], 1);
    assert!(
        err.contains(&format!(
            "pipe `top_reps`: source `calls`: {}: ",
            file.display()
        )),
        "{err}"
    );
    // Reading a column the page is not in still works, and the file is as it was.
    ok(
        &p,
        &["query", "select count(*) from calls", "--env", "production"],
    );
    assert_eq!(std::fs::read(bad).unwrap(), before);
}

/// Overwrites the first page header of `column`'s chunk in row group `group` of `file`
/// (its dictionary page's, if it has one); the footer stays intact.
fn corrupt_first_page(file: &Path, group: usize, column: &str) {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let meta = SerializedFileReader::new(std::fs::File::open(file).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let group = meta.row_group(group);
    let index = (0..group.num_columns())
        .find(|&i| group.column(i).column_path().string() == column)
        .unwrap_or_else(|| panic!("{} has no column {column}", file.display()));
    let (start, _) = group.column(index).byte_range();
    let mut bytes = std::fs::read(file).unwrap();
    for b in &mut bytes[start as usize..start as usize + 24] {
        *b = 0xff;
    }
    std::fs::write(file, &bytes).unwrap();
}

#[test]
fn a_corrupt_page_a_branch_reads_from_its_parent_names_the_parents_file() {
    let p = TestProject::example(0.02);
    ok(&p, &["branch", "create", "try-fix", "--from", "production"]);
    // The branch's `reps` is its own row appended to production's files.
    let csv = p.path().join("reps.csv");
    std::fs::write(
        &csv,
        "rep_id,name,team,hired_on\n999,Test Rep,QA,2024-01-01\n",
    )
    .unwrap();
    ok(
        &p,
        &["ingest", "reps", csv.to_str().unwrap(), "--env", "try-fix"],
    );
    let files = parquet_paths(&p.store("production").join("reps"));
    corrupt_first_page(&files[0], 0, "name");
    let file = canonical(&p)
        .join("data/production/reps")
        .join(files[0].file_name().unwrap());
    let (_, err) = fails(
        &p,
        &[
            "query",
            "select count(distinct name) from reps",
            "--env",
            "try-fix",
        ],
        1,
    );
    assert!(
        err.contains(&format!(
            "environment `try-fix`: source `reps`: {}: ",
            file.display()
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// a reader that closes early

#[test]
fn a_reader_closing_early_is_a_normal_exit() {
    let p = TestProject::example(0.02);
    // The table of 2,000 calls is far more than a pipe buffers.
    let mut child = std::process::Command::new(sluice_bin())
        .current_dir(p.path())
        .args(["query", "select * from calls", "--env", "production"])
        .env_remove("SLUICE_PROJECT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 64];
    stdout.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"+-"), "{:?}", text(&head));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("panicked"));
}

/// Runs `sluice ARGS` with a standard output whose reader is already gone.
fn with_closed_stdout(p: &TestProject, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(sluice_bin())
        .current_dir(p.path())
        .args(args)
        .env_remove("SLUICE_PROJECT")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn query_output_to_a_closed_pipe_is_a_normal_exit() {
    let p = TestProject::example(0.02);
    for format in ["table", "csv", "json", "ndjson", "arrow", "parquet"] {
        let out = with_closed_stdout(
            &p,
            &[
                "query",
                "select * from calls",
                "--env",
                "production",
                "-f",
                format,
            ],
        );
        assert!(
            out.status.success(),
            "{format}: exit {:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
    }
}

#[test]
fn text_commands_to_a_closed_pipe_are_a_normal_exit() {
    let p = TestProject::example(0.02);
    for args in [
        &["envs"][..],
        &["sources"],
        &["validate"],
        &["explain", "top_reps"],
    ] {
        let out = with_closed_stdout(&p, args);
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
}
