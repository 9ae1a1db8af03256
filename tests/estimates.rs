//! Estimates with intervals (issue 24): a sampled run's estimates of production's answer
//! are checked against production's own answer on data whose truth is known — the
//! sales_calls example and a generated event log (skewed users, skewed amounts, rows
//! sorted by time, NULL keys) — under `system`, `key` and `bernoulli` at 10% and 1%,
//! over fixed seeds. Coverage is asserted, not time.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use sluice_engine::fidelity::{FidelityReport, compare};
use sluice_engine::session::estimate::ColumnKind;
use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride};

use crate::common::{TestProject, block_on};

/// A tiny seeded generator, so the data is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const DAY_US: i64 = 86_400_000_000;
const START_US: i64 = 1_704_067_200_000_000; // 2024-01-01

/// An event log: `rows` events over 120 days in time order, by 8,000 users whose
/// activity is skewed (a few heavy users), 4 plans, amounts skewed (lognormal-like), 5%
/// of events anonymous (NULL user). Written as 4 files (one per month), pages of 256
/// rows with a page index, row groups of 32 K rows, as `data/<env>/events/`.
fn write_events(store: &Path, rows: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("user_id", DataType::Int64, true),
        Field::new("plan", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, true),
    ]));
    let mut rng = Rng(20_241_205);
    let users = 8_000u64;
    let plans = ["free", "basic", "pro", "team"];
    let mut times: Vec<i64> = (0..rows)
        .map(|_| START_US + (rng.unit() * 120.0 * DAY_US as f64) as i64)
        .collect();
    times.sort_unstable();
    let dir = store.join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let files = 4;
    let per_file = rows.div_ceil(files);
    for f in 0..files {
        let chunk = &times[(f * per_file).min(rows)..((f + 1) * per_file).min(rows)];
        let mut ts = TimestampMicrosecondBuilder::with_capacity(chunk.len());
        let mut user = Int64Builder::with_capacity(chunk.len());
        let mut plan = StringBuilder::new();
        let mut amount = Float64Builder::with_capacity(chunk.len());
        for &t in chunk {
            ts.append_value(t);
            if rng.unit() < 0.05 {
                user.append_null();
                plan.append_value("free");
            } else {
                // Skewed activity: a power of a uniform draw concentrates on low ids.
                let u = ((rng.unit().powf(2.0)) * users as f64) as u64;
                user.append_value(u as i64);
                plan.append_value(plans[(u % 4) as usize]);
            }
            if rng.unit() < 0.1 {
                amount.append_null();
            } else {
                // exp of a sum of uniforms: a long right tail.
                let z: f64 = (0..4).map(|_| rng.unit()).sum::<f64>() - 2.0;
                amount.append_value((3.0 + 1.2 * z * 1.7).exp());
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(user.finish()),
            Arc::new(plan.finish()),
            Arc::new(amount.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(256)
            .set_write_batch_size(128)
            .set_max_row_group_row_count(Some(32 * 1024))
            .build();
        let file = std::fs::File::create(dir.join(format!("part-{f}.parquet"))).unwrap();
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
}

fn events_project(rows: usize) -> TestProject {
    let p = TestProject::with_files(
        r#"
[environments.production]
data = "data/production"

[sources.events]
sample_key = "user_id"
sort = ["ts"]
"#,
        &[],
    );
    write_events(&p.path().join("data/production"), rows);
    p
}

/// Run options that ask for estimates.
fn estimating() -> RunOptions {
    RunOptions {
        estimate: true,
        ..RunOptions::default()
    }
}

/// Production's own answer to `sql`, read in full.
fn production(project: &Arc<Project>, sql: &str) -> sluice_engine::RunOutput {
    block_on(
        EnvSession::open(project.clone(), "production", &SampleOverride::default())
            .unwrap()
            .query(sql, &RunOptions::default()),
    )
    .unwrap()
}

/// `sql` with estimates, in production read through `sample`.
fn estimated(
    project: &Arc<Project>,
    sample: &SampleOverride,
    sql: &str,
) -> sluice_engine::RunOutput {
    block_on(
        EnvSession::open(project.clone(), "production", sample)
            .unwrap()
            .query(sql, &estimating()),
    )
    .unwrap()
}

/// Production's answer and a sampled run's estimates of it, compared.
fn fidelity(
    project: &Arc<Project>,
    sql: &str,
    method: &str,
    fraction: f64,
    seed: u64,
) -> FidelityReport {
    let full = production(project, sql);
    let sample = SampleOverride {
        method: Some(method.into()),
        fraction: Some(fraction),
        seed: Some(seed),
        ..Default::default()
    };
    let sampled = estimated(project, &sample, sql);
    compare("query", "sample", &sampled, "production", &full, &[], None).unwrap()
}

/// The seeds coverage is measured over: 1 to 32 (`SLUICE_COVERAGE_SEEDS=N` for others;
/// the figures of BENCHMARKS.md are these). Not fewer: a seed's draw errs alike in many
/// groups at once (the users a `key` sample drew are the same in every week of a plan),
/// so 8 seeds of 4 plans measure a coverage of 95% give or take 4 points.
fn seeds() -> Vec<u64> {
    let n = std::env::var("SLUICE_COVERAGE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32u64);
    (1..=n).collect()
}

/// Inside and bounded counts, pooled over the reports' columns of these kinds.
fn pooled(reports: &[FidelityReport]) -> (usize, usize) {
    let mut inside = 0.0;
    let mut bounded = 0;
    for r in reports {
        for c in &r.columns {
            if let Some(w) = c.within_interval {
                inside += w * c.bounded as f64;
                bounded += c.bounded;
            }
        }
    }
    (inside.round() as usize, bounded)
}

const EVENT_QUERIES: &[&str] = &[
    // A few large groups: counts, sums, averages, distinct users.
    "SELECT plan, count(*) AS events, sum(amount) AS revenue, avg(amount) AS avg_amount FROM events GROUP BY plan",
    // Many groups along the sort column (a `system` sample's weak spot).
    "SELECT date_trunc('day', ts) AS day, count(*) AS events, avg(amount) AS avg_amount FROM events GROUP BY 1",
    // Medium groups and a ratio of two estimates.
    "SELECT date_trunc('week', ts) AS week, plan, count(*) AS events, count(amount) AS paid, count(amount) * 1.0 / count(*) AS paid_share FROM events GROUP BY 1, 2",
    // The same share as an average of 0s and 1s, by day (smaller groups).
    "SELECT date_trunc('day', ts) AS day, avg(CASE WHEN amount IS NULL THEN 0 ELSE 1 END) AS paid_rate FROM events GROUP BY 1",
];

/// Coverage of every configuration: (method, fraction) → (inside, bounded), with a
/// line per query and column for the report.
fn coverage_matrix(
    project: &Arc<Project>,
    queries: &[&str],
) -> Vec<(String, f64, usize, usize, Vec<String>)> {
    let mut out = Vec::new();
    for method in ["system", "key", "bernoulli"] {
        for fraction in [0.1, 0.01] {
            let mut reports = Vec::new();
            let mut lines = Vec::new();
            for (qi, sql) in queries.iter().enumerate() {
                let mut per_query = Vec::new();
                for seed in seeds() {
                    per_query.push(fidelity(project, sql, method, fraction, seed));
                }
                for c in &per_query[0].columns {
                    let of_column: Vec<FidelityReport> = per_query
                        .iter()
                        .map(|r| FidelityReport {
                            columns: r
                                .columns
                                .iter()
                                .filter(|x| x.column == c.column)
                                .cloned()
                                .collect(),
                            ..r.clone()
                        })
                        .collect();
                    let (i, b) = pooled(&of_column);
                    if b > 0 {
                        lines.push(format!(
                            "  q{} {}: {i} of {b} ({:.1}%)",
                            qi + 1,
                            c.column,
                            100.0 * i as f64 / b as f64
                        ));
                    }
                }
                reports.extend(per_query);
            }
            let (inside, bounded) = pooled(&reports);
            out.push((method.to_string(), fraction, inside, bounded, lines));
        }
    }
    out
}

/// Checks a coverage matrix: at least 93% of the intervals of every configuration with
/// enough of them cover production's value (the target of BENCHMARKS.md, "Estimates").
fn check_matrix(
    name: &str,
    matrix: &[(String, f64, usize, usize, Vec<String>)],
    min_intervals: usize,
) {
    const TARGET: f64 = 0.93;
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (method, fraction, inside, bounded, lines) in matrix {
        let coverage = *inside as f64 / (*bounded).max(1) as f64;
        report.push(format!(
            "{name} {method} {}: {inside} of {bounded} intervals cover production ({:.1}%)",
            crate::common::percent(*fraction),
            coverage * 100.0
        ));
        report.extend(lines.iter().cloned());
        if *bounded < min_intervals {
            continue;
        }
        if coverage < TARGET {
            failures.push(format!(
                "{method} {fraction}: {:.1}% below {:.0}%",
                coverage * 100.0,
                TARGET * 100.0
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        report.join("\n")
    );
}

#[test]
fn intervals_cover_production_on_generated_events() {
    let p = events_project(200_000);
    let matrix = coverage_matrix(&p.project(), EVENT_QUERIES);
    // The weak spots were averages and shares over small groups (a few dozen rows or
    // users): a t interval is symmetric, and the average of a heavy-tailed amount over
    // ~16 rows, or a share near 0.9 over ~30 (often all 1 in the sample), is not. The
    // averages' intervals lean with their skewness and shares are score intervals
    // (`interval::skewed_interval`, `interval::proportion_interval`).
    check_matrix("events", &matrix, 20);
}

#[test]
fn intervals_cover_production_on_the_sales_calls_example() {
    let p = TestProject::example(1.0);
    let queries = [
        "SELECT rep_id, count(*) FILTER (WHERE outcome = 'won') AS won, sum(amount) AS revenue FROM calls GROUP BY rep_id",
        "SELECT outcome, count(*) AS calls, avg(duration_s) AS avg_duration_s FROM calls GROUP BY outcome",
        "SELECT date_trunc('month', started_at) AS month, outcome, count(*) AS calls, avg(duration_s) AS avg_duration_s FROM calls GROUP BY 1, 2",
    ];
    let matrix = coverage_matrix(&p.project(), &queries);
    // 1% of the example's 100 row groups is one group: every output group lies in that
    // one unit, and no interval is claimed.
    let system_1 = matrix
        .iter()
        .find(|(m, f, ..)| m == "system" && *f == 0.01)
        .unwrap();
    assert_eq!(system_1.3, 0, "one unit, no interval");
    // A 1% `key` sample draws ~20 of the example's 2,000 accounts besides the three heavy
    // ones kept whole, and every rep calls every account: most reps' won calls lie in
    // the heavy accounts and one drawn account or none. Those get no interval
    // (`an_interval_needs_two_drawn_units_that_hold_the_value`); the rest must cover.
    check_matrix("sales_calls", &matrix, 20);
}

#[test]
fn what_cannot_be_estimated_is_named() {
    let p = events_project(20_000);
    let project = p.project();
    let run = |sql: &str, method: &str| {
        let sample = SampleOverride {
            method: Some(method.into()),
            fraction: Some(0.2),
            ..Default::default()
        };
        estimated(&project, &sample, sql).estimate.unwrap()
    };
    let kind = |r: &sluice_engine::session::estimate::EstimateReport, c: &str| {
        r.columns
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, k)| k.clone())
            .unwrap_or_else(|| panic!("no column {c} in {r:?}"))
    };
    // A minimum is the sample's own, named as such; the count beside it is estimated.
    let r = run(
        "SELECT plan, count(*) AS n, min(amount) AS least FROM events GROUP BY plan",
        "bernoulli",
    );
    assert_eq!(kind(&r, "n"), ColumnKind::Scaled);
    assert!(matches!(kind(&r, "least"), ColumnKind::NotEstimated(w) if w.contains("min")));
    assert_eq!(kind(&r, "plan"), ColumnKind::Exact);
    // A HAVING on an estimate: nothing is estimated, and the reason says why.
    let r = run(
        "SELECT plan, count(*) AS n FROM events GROUP BY plan HAVING count(*) > 100",
        "bernoulli",
    );
    assert!(
        r.note
            .as_deref()
            .unwrap_or("")
            .contains("condition on an estimate"),
        "{r:?}"
    );
    // count(DISTINCT user) scales under key sampling on the user, not under others.
    let sql = "SELECT plan, count(DISTINCT user_id) AS users FROM events GROUP BY plan";
    assert_eq!(kind(&run(sql, "key"), "users"), ColumnKind::Scaled);
    let r = run(sql, "bernoulli");
    assert!(
        r.note.as_deref().unwrap_or("").contains("DISTINCT"),
        "{r:?}"
    );
    // A ratio of two estimates is bounded as a ratio.
    let r = run(
        "SELECT plan, count(amount) * 1.0 / count(*) AS paid_share FROM events GROUP BY plan",
        "system",
    );
    assert_eq!(kind(&r, "paid_share"), ColumnKind::Ratio);
}

#[test]
fn estimate_errors_and_outputs_through_the_binary() {
    let p = TestProject::example(0.2);
    // An unsampled environment has nothing to estimate: a usage error naming it.
    let (_, err) = p.expect_exit(&["run", "top_reps", "--env", "production", "--estimate"], 2);
    assert!(
        err.contains("environment `production` reads its sources in full"),
        "{err}"
    );
    // A pipe without an aggregate is run as it is, and the summary says why.
    p.write(
        "pipes/raw.toml",
        "[[node]]\nname = \"r\"\nsql = \"SELECT call_id, amount FROM calls\"\n",
    );
    let (_, err) = p.expect_exit(&["run", "raw", "--estimate", "-f", "csv"], 0);
    assert!(err.contains("no aggregate over the sampled rows"), "{err}");
    // Estimates come with their bounds in every format.
    let (out, err) = p.expect_exit(&["run", "top_reps", "--estimate", "-f", "csv"], 0);
    assert!(
        out.starts_with("name,team,won,won_low,won_high,revenue,revenue_low,revenue_high\n"),
        "{out}"
    );
    assert!(
        err.contains("estimated, with 95% intervals (_low, _high): won, revenue"),
        "{err}"
    );
    let (out, _) = p.expect_exit(&["run", "top_reps", "--estimate", "-f", "json", "-q"], 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = &rows[0];
    let (won, lo, hi) = (
        first["won"].as_i64().unwrap(),
        first["won_low"].as_i64().unwrap(),
        first["won_high"].as_i64().unwrap(),
    );
    assert!(lo <= won && won <= hi, "{first}");
    // The query command too, and the fidelity report as JSON.
    let (out, _) = p.expect_exit(
        &[
            "query",
            "SELECT outcome, count(*) AS n FROM calls GROUP BY 1",
            "--estimate",
            "--sample-method",
            "key",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert!(out.starts_with("outcome,n,n_low,n_high\n"), "{out}");
    let (out, _) = p.expect_exit(
        &[
            "fidelity",
            "top_reps",
            "--param",
            "limit=100",
            "--format",
            "json",
        ],
        0,
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["keys"], serde_json::json!(["name", "team"]));
    assert!(report["present_share"].as_f64().unwrap() > 0.5, "{report}");
    let won = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "won")
        .unwrap();
    assert!(won["within_interval"].as_f64().unwrap() > 0.7, "{report}");
    // diff --scaled judges the estimates by their intervals (or a tolerance).
    let out = p
        .sluice()
        .args([
            "diff",
            "top_reps",
            "--scaled",
            "--tolerance",
            "0%",
            "--param",
            "limit=100",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("different"));
}

/// A `system` sample's calibration computed from its footers (each unit's rows looked up
/// by unit number, the totals constants of the plan), and a `bernoulli` sample's (from
/// the count of rows its access plans select), answer as the plan a Ballista cluster
/// gets, which reads the sample a second time and writes its bounds as plain SQL
/// (`SLUICE_ESTIMATE_PORTABLE`); and they read the sample only once.
#[test]
fn calibration_from_the_footers_answers_as_a_second_read() {
    let p = TestProject::example(0.2);
    let run =
        |args: &[&str], sample: &[&str], portable: bool| -> (Vec<serde_json::Value>, String) {
            let mut cmd = p.sluice();
            cmd.args(args)
                .args(sample)
                .args(["--estimate", "-f", "json", "-v"]);
            if portable {
                cmd.env("SLUICE_ESTIMATE_PORTABLE", "1");
            }
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(0), "{args:?} {sample:?}: {err}");
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (rows.as_array().unwrap().clone(), err)
        };
    let scanned = |summary: &str| -> String {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with("calls:"))
            .unwrap_or_else(|| panic!("a line for calls in {summary}"));
        line.split(" · ").nth(1).unwrap().to_string()
    };
    // Staging's `system` sample (the units' rows from the footers), and a `bernoulli`
    // one (the sampled rows' count from its access plans).
    let samplings = [
        &[][..],
        &["--sample-method", "bernoulli", "--sample", "0.1"][..],
    ];
    for (args, sample) in [
        &["run", "top_reps", "--param", "limit=100"][..],
        &["run", "daily_outcomes"][..],
        &[
            "query",
            "SELECT outcome, count(*) AS n, sum(amount) AS s, avg(duration_s) AS d FROM calls GROUP BY 1 ORDER BY 1",
        ][..],
    ]
    .into_iter()
    .flat_map(|args| samplings.iter().map(move |sample| (args, *sample)))
    {
        // Rows in one order (an ORDER BY may tie, and two reps share a name): by their
        // text, then their numbers to 4 digits (both plans agree far closer).
        let by_group = |mut rows: Vec<serde_json::Value>| {
            let key = |r: &serde_json::Value| -> String {
                let o = r.as_object().unwrap();
                let text = o.values().filter(|v| !v.is_number()).map(|v| v.to_string());
                let numbers = o
                    .values()
                    .filter_map(|v| v.as_f64())
                    .map(|x| format!("{x:.3e}"));
                text.chain(numbers).collect::<Vec<_>>().join("|")
            };
            rows.sort_by_key(key);
            rows
        };
        let (local, local_err) = run(args, sample, false);
        let (portable, portable_err) = run(args, sample, true);
        let (local, portable) = (by_group(local), by_group(portable));
        assert!(local.len() > 1, "{args:?} {sample:?}: {local:?}");
        assert_eq!(local.len(), portable.len(), "{args:?} {sample:?}");
        for (a, b) in local.iter().zip(&portable) {
            let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{args:?}"
            );
            for (k, x) in a {
                let y = &b[k];
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                        "{args:?} {sample:?} `{k}`: {x} here, {y} as a cluster plans it"
                    ),
                    _ => assert_eq!(x, y, "{args:?} {sample:?} `{k}`"),
                }
            }
        }
        // Read once here; the second read shows in the rows a cluster's plan scans.
        let (once, twice) = (scanned(&local_err), scanned(&portable_err));
        let rows = |s: &str| -> u64 {
            s.split(" of ")
                .next()
                .unwrap()
                .trim_start_matches("scanned ")
                .replace(',', "")
                .parse()
                .unwrap()
        };
        assert_eq!(rows(&twice), 2 * rows(&once), "{once} / {twice}");
    }
}

/// A `system` sample's estimates read each unit of the files on its own; the columns
/// are read as a plain run reads them (strings as views, whatever type the files
/// record), so the estimate's group columns have the plain run's types.
#[test]
fn an_estimated_run_reads_the_columns_as_a_plain_run_does() {
    let p = TestProject::example(0.2);
    let session = p.session("staging", SampleOverride::default());
    let sql = "SELECT outcome, count(*) AS n FROM calls GROUP BY outcome ORDER BY outcome";
    let plain = block_on(session.query(sql, &RunOptions::default())).expect("plain run");
    let estimated = block_on(session.query(sql, &estimating())).expect("estimated run");
    let outcome = |out: &sluice_engine::RunOutput| {
        out.schema
            .field_with_name("outcome")
            .expect("an outcome column")
            .data_type()
            .clone()
    };
    assert_eq!(outcome(&estimated), outcome(&plain));
    assert_eq!(outcome(&plain), DataType::Utf8View);
    assert_eq!(estimated.report.rows_out, plain.report.rows_out);
}

/// A `system` sample read with its units (`scan::units`) tells each row's unit from the
/// row's file and position: every unit is one contiguous stretch of a file. The events
/// are in time order, in 4 files of 32 K-row groups cut into page ranges, so the units'
/// time spans must not overlap, and together they hold exactly the rows a plain run of
/// the same sample reads.
#[test]
fn each_sampled_row_is_counted_in_its_own_unit() {
    let p = events_project(150_000);
    let project = Arc::new(Project::load(p.path()).unwrap());
    for (fraction, seed) in [(0.1, 1), (0.02, 5)] {
        let sample = SampleOverride {
            method: Some("system".into()),
            fraction: Some(fraction),
            seed: Some(seed),
            ..Default::default()
        };
        let session = EnvSession::open(project.clone(), "production", &sample).unwrap();
        let plain =
            block_on(session.query("SELECT count(*) AS n FROM events", &RunOptions::default()))
                .unwrap();
        let sampled_rows = plain.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        let per_unit = block_on(session.query(
            "SELECT sluice_sample_unit AS u, count(*) AS n, \
             CAST(min(ts) AS BIGINT) AS lo, CAST(max(ts) AS BIGINT) AS hi \
             FROM events GROUP BY sluice_sample_unit",
            &estimating(),
        ))
        .unwrap();
        let mut units: Vec<(i64, i64, i64)> = Vec::new();
        for batch in &per_unit.batches {
            let col = |name: &str| {
                datafusion::arrow::compute::cast(
                    batch.column_by_name(name).unwrap(),
                    &DataType::Int64,
                )
                .unwrap()
            };
            let (n, lo, hi) = (col("n"), col("lo"), col("hi"));
            let int = |a: &ArrayRef, i: usize| {
                a.as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .unwrap()
                    .value(i)
            };
            for i in 0..batch.num_rows() {
                units.push((int(&lo, i), int(&hi, i), int(&n, i)));
            }
        }
        units.sort();
        assert!(units.len() > 8, "{fraction}: {} units", units.len());
        assert_eq!(
            units.iter().map(|u| u.2).sum::<i64>(),
            sampled_rows,
            "{fraction}: the units hold the sample's rows"
        );
        for w in units.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "{fraction}: units overlap in time: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }
    // Files without a row keep no unit: the estimate answers no rows, not an error.
    let empty = events_project(0);
    let session = EnvSession::open(
        Arc::new(Project::load(empty.path()).unwrap()),
        "production",
        &SampleOverride {
            method: Some("system".into()),
            fraction: Some(0.1),
            seed: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let out = block_on(session.query(
        "SELECT plan, count(*) AS n FROM events GROUP BY plan",
        &estimating(),
    ))
    .expect("an estimate over files without rows");
    assert_eq!(out.report.rows_out, 0);
}

/// A column of a result as numbers by row (NULL as None), for checks by hand.
fn numbers(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let col = datafusion::arrow::compute::cast(col, &DataType::Float64).unwrap();
        let col = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .unwrap();
        out.extend(col.iter());
    }
    out
}

#[test]
fn an_interval_needs_two_drawn_units_that_hold_the_value() {
    // The example's calls are made by 60 reps to 2,000 accounts, every account called by
    // every rep; the three biggest accounts are heavy keys, kept whole. At 1% a rep's
    // won calls in the sample are mostly the heavy accounts' (weight 1, no variance)
    // and those of one or two drawn accounts, often none: an interval would then only
    // reflect the calibration and miss production by far (rep 14, seed 1: [19, 50]
    // against 277 before this rule). A group gets an interval only when at least two
    // drawn accounts hold its value.
    let p = TestProject::example(1.0);
    let project = p.project();
    let full = EnvSession::open(project.clone(), "production", &SampleOverride::default()).unwrap();
    // The heavy keys, by the rule of `scan::key`: 1% of the rows and 20 times an
    // average account's.
    let heavy = block_on(full.query(
        "SELECT account_id FROM calls GROUP BY account_id \
         HAVING count(*) >= 0.01 * (SELECT count(*) FROM calls) \
         AND count(*) >= 20.0 * (SELECT count(*) FROM calls) / (SELECT count(DISTINCT account_id) FROM calls)",
        &RunOptions::default(),
    ))
    .unwrap();
    let heavy: Vec<String> = numbers(&heavy.batches, "account_id")
        .into_iter()
        .map(|v| format!("{}", v.unwrap() as i64))
        .collect();
    assert!(!heavy.is_empty(), "the example has heavy accounts");
    let heavy = heavy.join(", ");
    let mut bounded = 0;
    let mut withheld = 0;
    for seed in 1..=4 {
        let session = EnvSession::open(
            project.clone(),
            "production",
            &SampleOverride {
                method: Some("key".into()),
                fraction: Some(0.01),
                seed: Some(seed),
                ..Default::default()
            },
        )
        .unwrap();
        let drawn = block_on(session.query(
            &format!(
                "SELECT rep_id, count(DISTINCT account_id) FILTER \
                 (WHERE outcome = 'won' AND account_id NOT IN ({heavy})) AS drawn \
                 FROM calls GROUP BY rep_id ORDER BY rep_id"
            ),
            &RunOptions::default(),
        ))
        .unwrap();
        let estimated = block_on(session.query(
            "SELECT rep_id, count(*) FILTER (WHERE outcome = 'won') AS won \
             FROM calls GROUP BY rep_id ORDER BY rep_id",
            &estimating(),
        ))
        .unwrap();
        let (reps, drawn) = (
            numbers(&drawn.batches, "rep_id"),
            numbers(&drawn.batches, "drawn"),
        );
        let (reps2, low) = (
            numbers(&estimated.batches, "rep_id"),
            numbers(&estimated.batches, "won_low"),
        );
        assert_eq!(reps, reps2, "seed {seed}: the same reps");
        for ((rep, d), lo) in reps.iter().zip(&drawn).zip(&low) {
            let d = d.unwrap();
            assert_eq!(
                lo.is_some(),
                d >= 2.0,
                "seed {seed}, rep {rep:?}: {d} drawn account(s) with won calls, low bound {lo:?}"
            );
            if lo.is_some() {
                bounded += 1;
            } else {
                withheld += 1;
            }
        }
    }
    // Both kinds of group occur, so the rule is exercised both ways.
    assert!(
        bounded > 10 && withheld > 10,
        "{bounded} bounded, {withheld} withheld"
    );
}

#[test]
fn a_sample_of_everything_is_exact() {
    // At a fraction of 1 nothing is drawn by chance: every estimate is production's
    // answer and its interval is that answer alone, under every method (the rule that
    // intervals count only units drawn by chance must not take them away here).
    let p = TestProject::example(0.2);
    let project = p.project();
    let sql = "SELECT rep_id, count(*) FILTER (WHERE outcome = 'won') AS won, \
               sum(amount) AS revenue FROM calls GROUP BY rep_id ORDER BY rep_id";
    let full = production(&project, sql);
    for method in ["system", "key", "bernoulli"] {
        let sample = SampleOverride {
            method: Some(method.into()),
            fraction: Some(1.0),
            ..Default::default()
        };
        let out = estimated(&project, &sample, sql);
        for column in ["won", "revenue"] {
            let truth = numbers(&full.batches, column);
            let estimate = numbers(&out.batches, column);
            let low = numbers(&out.batches, &format!("{column}_low"));
            let high = numbers(&out.batches, &format!("{column}_high"));
            assert_eq!(truth.len(), estimate.len(), "{method}");
            for i in 0..truth.len() {
                let (t, e) = (truth[i].unwrap(), estimate[i].unwrap());
                assert!(
                    (t - e).abs() <= 1e-6 * t.abs().max(1.0),
                    "{method} {column} row {i}: {e} vs {t}"
                );
                let (lo, hi) = (low[i], high[i]);
                assert!(
                    lo.is_some_and(|lo| (lo - t).abs() <= 1e-6 * t.abs().max(1.0))
                        && hi.is_some_and(|hi| (hi - t).abs() <= 1e-6 * t.abs().max(1.0)),
                    "{method} {column} row {i}: [{lo:?}, {hi:?}] around {t}"
                );
            }
        }
    }
}
