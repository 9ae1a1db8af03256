//! TPC-H: the tpch project's 22 pipes on SF 0.1 data generated into a store, each
//! checked against DuckDB's answer on the same files (fixtures/tpch/answers, written by
//! benches/compare/answers.py); and the `fixtures tpch` and `bench` commands end to end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use sluice_engine::fixtures::tpch::{generate_tpch, write_tpch_project};
use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride};

use crate::common::{block_on, sluice};

/// The scale factor of the checked-in answers.
pub(crate) const SF: f64 = 0.1;

fn answers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tpch/answers")
}

/// The parameters a TPC-H pipe runs with at `SF`: the defaults, and Q11's FRACTION,
/// which is 0.0001 / SF.
pub(crate) fn params_at_sf(name: &str) -> Vec<(String, String)> {
    if name == "q11" {
        vec![("fraction".into(), (0.0001 / SF).to_string())]
    } else {
        Vec::new()
    }
}

/// Rows of a batch list as display strings (NULL as `null`).
pub(crate) fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for i in 0..b.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    rows
}

/// A reference answer: its header and rows, every cell as text.
pub(crate) fn read_answer(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = answers_dir().join(format!("{name}.csv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let header: Vec<String> = text
        .lines()
        .next()
        .expect("a header")
        .split(',')
        .map(String::from)
        .collect();
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .map(|h| Field::new(h, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = ReaderBuilder::new(schema)
        .with_header(true)
        .build(std::io::Cursor::new(text.clone()))
        .expect("csv reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("csv batch")).collect();
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let s = c
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::StringArray>()
                            .expect("utf8");
                        if s.is_null(i) {
                            String::new()
                        } else {
                            s.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    (header, rows)
}

/// Cells match as text, or as numbers within a relative 1e-6 (DuckDB averages decimals
/// as doubles, DataFusion as decimals of scale 6).
fn cell_matches(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    match (expected.parse::<f64>(), actual.parse::<f64>()) {
        (Ok(e), Ok(a)) => (e - a).abs() <= 1e-6 * e.abs().max(a.abs()).max(1.0),
        _ => false,
    }
}

/// The first difference between expected and actual rows, if any.
pub(crate) fn first_difference(
    expected: &[Vec<String>],
    actual: &[Vec<String>],
    ordered: bool,
) -> Option<String> {
    let (mut e, mut a) = (expected.to_vec(), actual.to_vec());
    if !ordered {
        e.sort();
        a.sort();
    }
    if e.len() != a.len() {
        return Some(format!("{} rows expected, {} returned", e.len(), a.len()));
    }
    e.iter().zip(&a).enumerate().find_map(|(i, (er, ar))| {
        let same = er.len() == ar.len() && er.iter().zip(ar).all(|(x, y)| cell_matches(x, y));
        (!same).then(|| format!("row {i}: expected {er:?}, got {ar:?}"))
    })
}

#[test]
fn matches_reference_answers_at_sf_0_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tpch_project(dir.path()).expect("tpch project");
    let project = Arc::new(Project::load(dir.path()).expect("project loads"));
    assert_eq!(project.pipes.len(), 22);
    // The full set of the production store; the working copy of each pipe (nothing is
    // deployed in this temporary project).
    let session = EnvSession::open(project.clone(), "production", &SampleOverride::default())
        .expect("session");
    let failures: Vec<String> = block_on(async {
        let summary = generate_tpch(session.store(), SF).await.expect("generate");
        assert_eq!(summary.rows("orders"), 150_000);
        assert_eq!(summary.rows("lineitem"), 600_572);
        let mut failures = Vec::new();
        for (name, pipe) in &project.pipes {
            let params = params_at_sf(name);
            let out = match session
                .run_pipe_def(pipe, &params, &RunOptions::default())
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let (header, expected) = read_answer(name);
            let columns: Vec<String> = out
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            if columns != header {
                failures.push(format!("{name}: columns {columns:?}, expected {header:?}"));
                continue;
            }
            let ordered = pipe.output().sql.to_ascii_uppercase().contains("ORDER BY");
            if let Some(diff) = first_difference(&expected, &rows_of(&out.batches), ordered) {
                failures.push(format!("{name}: {diff}"));
            }
        }
        failures
    });
    assert!(
        failures.is_empty(),
        "{} of 22 queries differ from the reference answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn comparison_finds_differences() {
    let e = vec![vec!["a".to_string(), "1.50".to_string()]];
    assert!(first_difference(&e, &e, true).is_none());
    assert!(first_difference(&e, &[vec!["a".into(), "1.5000000001".into()]], true).is_none());
    assert!(first_difference(&e, &[vec!["a".into(), "1.51".into()]], true).is_some());
    assert!(first_difference(&e, &[vec!["b".into(), "1.50".into()]], true).is_some());
    assert!(first_difference(&e, &[], true).is_some());
    let two = vec![vec!["a".to_string()], vec!["b".to_string()]];
    let swapped = vec![vec!["b".to_string()], vec!["a".to_string()]];
    assert!(first_difference(&two, &swapped, true).is_some());
    assert!(first_difference(&two, &swapped, false).is_none());
}

#[test]
fn fixtures_and_bench_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project_dir = dir.path().join("tpch");
    let out = sluice()
        .args(["fixtures", "tpch", "--sf", "0.01", "--init"])
        .arg(&project_dir)
        .output()
        .expect("run sluice");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_with_env = |args: &[&str], code: i32, env: &[(&str, &str)]| {
        let out = sluice()
            .current_dir(&project_dir)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run sluice");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "sluice {args:?}\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    };
    let run = |args: &[&str], code: i32| run_with_env(args, code, &[]);

    // Production runs the promoted versions.
    let (stdout, _) = run(
        &[
            "bench",
            "q06",
            "q14",
            "--env",
            "production",
            "-n",
            "2",
            "--warmup",
            "0",
            "--json",
        ],
        0,
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let pipes = json["pipes"].as_array().expect("pipes");
    assert_eq!(pipes.len(), 2);
    let by_name: HashMap<&str, &serde_json::Value> = pipes
        .iter()
        .map(|p| (p["pipe"].as_str().unwrap(), p))
        .collect();
    let q06 = by_name["q06"];
    assert_eq!(q06["runs_ms"].as_array().unwrap().len(), 2);
    assert_eq!(q06["rows_out"], 1);
    assert!(q06["rows_scanned"].as_u64().unwrap() > 50_000);
    assert!(q06["min_ms"].as_f64().unwrap() <= q06["p95_ms"].as_f64().unwrap());

    // The session's Parquet options reach Sluice's scans (set here the way `tuning.rs`
    // reads any DataFusion setting): with the page index turned off, q06's scan prunes
    // no page; with it on (the default), its predicate is checked against every page.
    let explain = |page_index: Option<&str>| {
        let mut cmd = sluice();
        cmd.current_dir(&project_dir)
            .args(["explain", "q06", "--env", "production", "--analyze"]);
        if let Some(v) = page_index {
            cmd.env("DATAFUSION_EXECUTION_PARQUET_ENABLE_PAGE_INDEX", v);
        }
        let out = cmd.output().expect("run sluice");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pages: u64 = text
            .split("page_index_pages_pruned=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no page index metric in:\n{text}"));
        pages
    };
    assert!(explain(None) > 0);
    assert_eq!(explain(Some("false")), 0);

    // Rows are filtered inside the scan only where an aggregate's few groups reach it
    // through a join: q18's `orders` scan (the orders of the `IN (… HAVING …)`) as
    // DataFusion places that semi join, above the joins, the one scan `-v` logs as
    // filtering rows (`sluice_semi_join_pushdown` moves it onto `orders`, whose scan its
    // dynamic filter then prunes). A plain join's dynamic filter (q19's selected parts
    // for `lineitem`) and a static range filter (q06's) stay filters after the decode
    // (optimizer/mod.rs, `SelectiveRowFilters`).
    let row_filtering_scans = |pipe: &str, skip: &str| {
        let args = ["explain", pipe, "--env", "production", "-vv"];
        let (_, stderr) = run_with_env(&args, 0, &[("SLUICE_SKIP_RULES", skip)]);
        stderr.matches("a Parquet scan filters rows").count()
    };
    assert_eq!(row_filtering_scans("q18", "sluice_semi_join_pushdown"), 1);
    assert_eq!(row_filtering_scans("q18", ""), 0);
    assert_eq!(row_filtering_scans("q19", ""), 0);
    assert_eq!(row_filtering_scans("q13", ""), 0);
    let rows_pruned = |pipe: &str, extra: &[&str]| -> Vec<f64> {
        let mut args = vec!["explain", pipe, "--env", "production", "--analyze"];
        args.extend(extra);
        let (stdout, _) = run(&args, 0);
        stdout
            .split("pushdown_rows_pruned=")
            .skip(1)
            .map(|rest| {
                // `0`, `97`, `60.17 K`, `1.2 M`
                let n = rest.split([',', ']']).next().unwrap().trim();
                let (digits, scale) = match n.split_once(' ') {
                    Some((d, "K")) => (d, 1e3),
                    Some((d, "M")) => (d, 1e6),
                    _ => (n, 1.0),
                };
                digits.parse::<f64>().unwrap_or_else(|e| panic!("{n}: {e}")) * scale
            })
            .collect()
    };
    let q19 = rows_pruned("q19", &[]);
    assert!(!q19.is_empty() && q19.iter().all(|&n| n == 0.0), "{q19:?}");
    let q06 = rows_pruned("q06", &[]);
    assert!(!q06.is_empty() && q06.iter().all(|&n| n == 0.0), "{q06:?}");
    // A `key` sample is selective too: its filter drops rows inside the scan.
    let q06 = rows_pruned("q06", &["--sample", "0.1", "--sample-method", "key"]);
    assert!(q06.iter().any(|&n| n > 1_000.0), "{q06:?}");

    // q15 reads its `revenue0` node twice (a join and a scalar subquery): a run computes
    // it once (shared_nodes.rs), the output plan scans its rows instead of `lineitem`,
    // and the report counts the one `lineitem` scan that computed it.
    let (plan, _) = run(&["explain", "q15", "--env", "production"], 0);
    assert!(
        plan.contains("== Node `revenue0`: read 2 times; a run computes it once"),
        "{plan}"
    );
    let (plan, _) = run(&["explain", "q15", "--env", "production", "--analyze"], 0);
    assert!(
        plan.contains("== Node `revenue0`: read 2 times, computed once"),
        "{plan}"
    );
    let executed = plan
        .split("== Executed plan")
        .nth(1)
        .expect("executed plan");
    assert!(!executed.contains("l_shipdate"), "{executed}");
    let (stdout, _) = run(
        &[
            "bench",
            "q15",
            "--env",
            "production",
            "-n",
            "1",
            "--warmup",
            "0",
            "--json",
        ],
        0,
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let scanned = json["pipes"][0]["rows_scanned"].as_u64().unwrap();
    let (count, _) = run(
        &[
            "query",
            "SELECT count(*) FROM lineitem",
            "--env",
            "production",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    let lineitem: u64 = count.lines().last().unwrap().trim().parse().unwrap();
    assert!(
        scanned > 1_000 && scanned <= lineitem + 1_000,
        "q15 scanned {scanned} rows; lineitem has {lineitem}"
    );

    // q21's anti join builds its hash table on the side estimated at fewer rows (the
    // suppliers' late line items), not on every late line item (optimizer.rs).
    let (plan, _) = run(&["explain", "q21", "--env", "production"], 0);
    assert!(plan.contains("join_type=LeftAnti"), "{plan}");
    assert!(!plan.contains("join_type=RightAnti"), "{plan}");

    // q05 lists its region last; its joins start from it (optimizer/join_order.rs), and
    // customers join the region's nations directly, through `c_nationkey = s_nationkey`
    // and `s_nationkey = n_nationkey`, before their orders and line items.
    let (plan, _) = run(&["explain", "q05", "--env", "production"], 0);
    let joins: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Inner Join: "))
        .collect();
    assert_eq!(
        joins.last(),
        Some(&"region.r_regionkey = nation.n_regionkey"),
        "{plan}"
    );
    assert!(
        joins.contains(&"nation.n_nationkey = customer.c_nationkey"),
        "{plan}"
    );

    // q12's filter on `lineitem` starts with the one year of `l_receiptdate` (a seventh of
    // the rows), so its string and column-to-column comparisons run on those rows only
    // (optimizer/filter_order.rs).
    let (plan, _) = run(&["explain", "q12", "--env", "production"], 0);
    assert!(
        plan.contains(
            "FilterExec: l_receiptdate@3 >= 1994-01-01 AND l_receiptdate@3 < 1995-01-01 AND"
        ),
        "{plan}"
    );

    // q02's and q17's subqueries aggregate only the parts their outer query keeps
    // (optimizer/aggregate_keys.rs); `matches_reference_answers_at_sf_0_1` checks the
    // answers with it.
    for q in ["q02", "q17"] {
        let (plan, _) = run(&["explain", q, "--env", "production"], 0);
        assert!(
            plan.contains("SubqueryAlias: __sluice_aggregate_keys"),
            "{q}: {plan}"
        );
    }

    // q01's money arithmetic runs without a check per value where the values cannot
    // overflow (optimizer/decimal_arithmetic.rs), shown in parentheses;
    // `matches_reference_answers_at_sf_0_1` checks the answers with it.
    let (plan, _) = run(&["explain", "q01", "--env", "production"], 0);
    assert!(
        plan.contains("(l_extendedprice@0 * (1 - l_discount@1)) as __common_expr_1"),
        "{plan}"
    );

    // q18's `GROUP BY l_orderkey` reads `lineitem`'s keys clustered (the files hold them
    // in order): its partial aggregate is DataFusion's ordered one, over a
    // `ClusteredInput` (optimizer/clustered_aggregate.rs). SLUICE_SKIP_RULES leaves the
    // rule out.
    let (plan, _) = run(&["explain", "q18", "--env", "production"], 0);
    assert!(
        plan.contains("ClusteredInput: by=[l_orderkey@0 ASC]"),
        "{plan}"
    );
    let mut skipped = sluice();
    skipped
        .current_dir(&project_dir)
        .env("SLUICE_SKIP_RULES", "sluice_clustered_aggregate")
        .args(["explain", "q18", "--env", "production"]);
    let out = skipped.output().expect("sluice runs");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && plan.contains("AggregateExec"),
        "{plan}"
    );
    assert!(!plan.contains("ClusteredInput"), "{plan}");

    // q20's join of the selected parts' suppliers with the aggregate of their line items
    // also filters `lineitem` right above its scan, so the aggregate sees only the
    // joined pairs' rows (optimizer/early_dynamic_filters.rs).
    let (plan, _) = run(&["explain", "q20", "--env", "production", "--analyze"], 0);
    let early = plan
        .lines()
        .find(|l| l.contains("FilterExec: l_shipdate") && l.contains("DynamicFilter"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        early.contains("hash_lookup") || early.contains("IN (SET)"),
        "{early}"
    );

    // The table form, in staging on its 1% sample.
    let (stdout, _) = run(&["bench", "q01", "-n", "1"], 0);
    assert!(
        stdout.contains("median") && stdout.contains("q01"),
        "{stdout}"
    );

    // Usage errors name what is wrong.
    let (_, stderr) = run(&["bench", "q99"], 2);
    assert!(stderr.contains("q99"), "{stderr}");
    let (_, stderr) = run(&["bench", "q01", "--param", "nope=1"], 2);
    assert!(stderr.contains("nope"), "{stderr}");
    let (_, stderr) = run(&["bench", "q01", "-n", "0"], 2);
    assert!(stderr.contains("-n"), "{stderr}");
    let (_, stderr) = run(&["fixtures", "tpch", "--sf", "0"], 2);
    assert!(stderr.contains("--sf"), "{stderr}");
    let (_, stderr) = run(&["fixtures", "tpch", "--compression", "gzip"], 2);
    assert!(stderr.contains("--compression"), "{stderr}");

    // Another codec: the staging store rewritten with LZ4, read by the same pipes.
    run(
        &[
            "fixtures",
            "tpch",
            "--sf",
            "0.01",
            "--env",
            "staging",
            "--compression",
            "lz4",
        ],
        0,
    );
    let file = std::fs::File::open(project_dir.join("data/staging/lineitem/part-0.parquet"))
        .expect("lineitem file");
    let reader = SerializedFileReader::new(file).expect("parquet");
    let column = reader.metadata().row_group(0).column(0);
    assert_eq!(column.compression(), Compression::LZ4_RAW);
    let (stdout, _) = run(
        &["bench", "q06", "--env", "staging", "--full", "-n", "1"],
        0,
    );
    assert!(stdout.contains("q06"), "{stdout}");
}
