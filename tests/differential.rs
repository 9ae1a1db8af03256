//! Every query of the suites (TPC-H's 22, the web-analytics suite's 15, TPC-DS's 99 in
//! 103 statements) returns the same rows with every Sluice optimizer rule on and with all
//! of them skipped (`SLUICE_SKIP_RULES` naming each: DataFusion's planner with Sluice's
//! settings), at a small scale: the `sluice` binary runs each pipe both ways.
//!
//! The data: TPC-H SF 0.01 as `sluice fixtures tpch` writes it (sorted keys and page
//! indexes, which `ClusteredAggregate` needs); the web-analytics events as pyarrow
//! writes them (`benches/compare/webanalytics/generate.py`: daily hive folders, small
//! row groups, snappy, no page index, nulls, skewed users), made here in Rust; TPC-DS
//! SF 0.01 from the `tpcdsgen` crate (the generator `tpcgen-cli` runs), one snappy file
//! per table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::common::sluice;
use crate::tpch::{first_difference, rows_of};

/// `benches/compare/NAME`: a suite's project files.
fn suite_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/compare")
        .join(name)
}

/// Copies a suite's `sluice.toml` and `pipes/` into `dir`.
fn copy_project(suite: &str, dir: &Path) {
    let from = suite_dir(suite);
    std::fs::copy(from.join("sluice.toml"), dir.join("sluice.toml")).expect("sluice.toml");
    std::fs::create_dir_all(dir.join("pipes")).expect("pipes/");
    for entry in std::fs::read_dir(from.join("pipes")).expect("pipes/") {
        let entry = entry.expect("a pipe");
        std::fs::copy(entry.path(), dir.join("pipes").join(entry.file_name())).expect("copy");
    }
}

fn pipe_names(project: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.join("pipes"))
        .expect("pipes/")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// What one run of a pipe gave: its rows as text, or its error.
#[derive(Debug)]
enum Answer {
    Rows(Vec<Vec<String>>),
    Failed(String),
}

/// Runs `pipe` in `env` (full data), with every Sluice rule skipped or none.
fn run(project: &Path, env: &str, pipe: &str, params: &[String], skip_rules: bool) -> Answer {
    let out_file = project.join(format!(
        "{pipe}-{}.csv",
        if skip_rules { "off" } else { "on" }
    ));
    let mut cmd = sluice();
    cmd.current_dir(project)
        .args([
            "run", pipe, "--env", env, "--full", "--format", "csv", "-q", "-o",
        ])
        .arg(&out_file);
    for p in params {
        cmd.args(["--param", p]);
    }
    if skip_rules {
        let names = sluice_engine::optimizer::settings::sluice_rule_names();
        cmd.env("SLUICE_SKIP_RULES", names.join(","));
    }
    let out = cmd.output().expect("run sluice");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The run's error without its timing or log lines.
        let error = stderr
            .lines()
            .filter(|l| l.contains("rror"))
            .collect::<Vec<_>>()
            .join("\n");
        return Answer::Failed(if error.is_empty() {
            stderr.into_owned()
        } else {
            error
        });
    }
    let text = std::fs::read_to_string(&out_file).expect("the csv output");
    // The header's fields, quoted ones (`"sum(a, b)"`) read as CSV reads them.
    let (header, _) = Format::default()
        .with_header(true)
        .infer_schema(std::io::Cursor::new(text.as_bytes()), Some(0))
        .expect("a csv header");
    let columns = header.fields().len().max(1);
    let schema = Arc::new(Schema::new(
        (0..columns)
            .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let batches: Vec<RecordBatch> = ReaderBuilder::new(schema)
        .with_header(true)
        .build(std::io::Cursor::new(text))
        .expect("csv reader")
        .map(|b| b.expect("csv batch"))
        .collect();
    Answer::Rows(rows_of(&batches))
}

/// What running a suite both ways found.
#[derive(Debug, Default)]
struct Comparison {
    /// The pipes whose rows (or errors) differ, with the difference.
    differences: Vec<String>,
    /// The pipes that failed alike both ways, with the error.
    failed: Vec<(String, String)>,
    /// Rows returned with the rules on, over all pipes.
    rows: usize,
}

/// Runs every pipe of `project` both ways and compares them.
fn compare(project: &Path, env: &str, params: impl Fn(&str) -> Vec<String>) -> Comparison {
    let mut out = Comparison::default();
    for pipe in pipe_names(project) {
        let params = params(&pipe);
        let on = run(project, env, &pipe, &params, false);
        let off = run(project, env, &pipe, &params, true);
        match (&on, &off) {
            (Answer::Rows(on), Answer::Rows(off)) => {
                out.rows += on.len();
                // A different plan may list rows an ORDER BY leaves tied in another
                // order: compared sorted, the rows are the same.
                if let Some(diff) = first_difference(off, on, false) {
                    out.differences
                        .push(format!("{pipe}: {diff} (rules off, then on)"));
                }
            }
            (Answer::Failed(a), Answer::Failed(b)) if a == b => {
                out.failed.push((pipe.clone(), a.clone()));
            }
            _ => out
                .differences
                .push(format!("{pipe}: rules on {on:?}\n  rules off {off:?}")),
        }
    }
    out
}

/// Runs every pipe of `project` in `env` three times on a session that keeps its plans
/// (`EnvSession::prepare_plans`: the later runs from the kept plan where one is kept)
/// and compares each run with a run planned anew; the differences, and how many runs
/// reused a plan.
fn compare_prepared(
    project: &Path,
    env: &str,
    params: impl Fn(&str) -> Vec<String>,
) -> (Vec<String>, u64) {
    use sluice_engine::{EnvSession, Project, RunOptions, SampleOverride};
    let loaded = Arc::new(Project::load(project).expect("the project loads"));
    let full = SampleOverride {
        full: true,
        ..SampleOverride::default()
    };
    let open = || EnvSession::open(loaded.clone(), env, &full).expect("session");
    let fresh = open();
    let kept = open().prepare_plans();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let answer = |session: &EnvSession, pipe: &str, given: &[(String, String)]| {
        let def = loaded.pipe(pipe).expect("a pipe");
        match runtime.block_on(session.run_pipe_def(def, given, &RunOptions::default())) {
            Ok(out) => Answer::Rows(rows_of(&out.batches)),
            Err(e) => Answer::Failed(e.to_string()),
        }
    };
    let mut differences = Vec::new();
    for pipe in pipe_names(project) {
        let given: Vec<(String, String)> = params(&pipe)
            .iter()
            .map(|p| {
                let (k, v) = p.split_once('=').expect("name=value");
                (k.to_string(), v.to_string())
            })
            .collect();
        let expected = answer(&fresh, &pipe, &given);
        for run in 1..=3 {
            let got = answer(&kept, &pipe, &given);
            let differs = match (&expected, &got) {
                (Answer::Rows(e), Answer::Rows(g)) => first_difference(e, g, false),
                (Answer::Failed(e), Answer::Failed(g)) if e == g => None,
                _ => Some(format!("planned anew {expected:?}\n  prepared {got:?}")),
            };
            if let Some(d) = differs {
                differences.push(format!("{pipe}, prepared run {run}: {d}"));
            }
        }
    }
    (differences, kept.prepared_runs())
}

#[test]
fn tpch_returns_the_same_rows_with_and_without_sluices_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("tpch");
    let out = sluice()
        .args(["fixtures", "tpch", "--sf", "0.01", "--init"])
        .arg(&project)
        .output()
        .expect("run sluice");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = compare(&project, "production", |pipe| {
        // q11's fraction is 0.0001 / SF.
        if pipe == "q11" {
            vec!["fraction=0.01".into()]
        } else {
            Vec::new()
        }
    });
    assert!(
        found.differences.is_empty(),
        "{}",
        found.differences.join("\n")
    );
    assert!(found.failed.is_empty(), "{:?}", found.failed);
    assert!(found.rows > 100, "{found:?}");
    let (differences, reused) = compare_prepared(&project, "production", |pipe| {
        if pipe == "q11" {
            vec!["fraction=0.01".into()]
        } else {
            Vec::new()
        }
    });
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Every query, q15 too (it computes its revenue view ahead of the output).
    assert!(reused >= 2 * 22, "{reused} runs reused a plan");
}

#[test]
fn web_analytics_returns_the_same_rows_with_and_without_sluices_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_project("webanalytics", dir.path());
    write_web_analytics(&dir.path().join("data/production"), 40_000, 2_000);
    let found = compare(dir.path(), "production", |_| Vec::new());
    assert!(
        found.differences.is_empty(),
        "{}",
        found.differences.join("\n")
    );
    assert!(found.failed.is_empty(), "{:?}", found.failed);
    assert!(found.rows > 100, "{found:?}");
    let (differences, reused) = compare_prepared(dir.path(), "production", |_| Vec::new());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(reused >= 2 * 15, "{reused} runs reused a plan");
}

#[test]
fn tpcds_returns_the_same_rows_with_and_without_sluices_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_project("tpcds", dir.path());
    write_tpcds(&dir.path().join("data/production"), 0.01);
    assert_eq!(pipe_names(dir.path()).len(), 103);
    let found = compare(dir.path(), "production", |_| Vec::new());
    assert!(
        found.differences.is_empty(),
        "{}",
        found.differences.join("\n")
    );
    // At SF 0.01, two queries divide by a sum or count that is zero, both ways; every
    // other one runs.
    let failed: Vec<&str> = found.failed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(failed, ["q12", "q90"], "{:?}", found.failed);
    assert!(found.rows > 1000, "{found:?}");
    let (differences, reused) = compare_prepared(dir.path(), "production", |_| Vec::new());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(reused >= 2 * 103, "{reused} runs reused a plan");
}

/// Parquet as pyarrow writes it by default (snappy, statistics per row group, no page
/// index), in row groups of `rows`.
fn pyarrow_like(rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(rows))
        .build()
}

fn write_parquet(path: &Path, batches: &[RecordBatch], props: WriterProperties) {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        ArrowWriter::try_new(file, batches[0].schema(), Some(props)).expect("parquet writer");
    for b in batches {
        writer.write(b).expect("write");
    }
    writer.close().expect("close");
}

/// A small xorshift generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// The web-analytics data of `generate.py` at a small scale: `events` over 92 daily
/// hive folders, `users` users, row groups of 512 rows.
fn write_web_analytics(store: &Path, events: usize, users: i64) {
    const DAYS: i64 = 92;
    const COUNTRIES: &[&str] = &["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "ES", "NL"];
    const REFERRERS: &[&str] = &["google.com", "bing.com", "t.co", "reddit.com", "newsletter"];
    const PLANS: &[&str] = &["free", "free", "free", "pro", "team", "enterprise"];
    const TERMS: &[&str] = &["Red Shoes", "bag", "winter coat", "socks", "Hat", "sale"];
    const CATEGORIES: &[&str] = &["shoes", "bags", "hats", "coats"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let day0 = 20_089; // 2025-01-01 in days since the epoch

    let user_schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
    ]));
    let ids: Vec<i64> = (1..=users).collect();
    let signups: Vec<i32> = ids.iter().map(|_| day0 - rng.below(365) as i32).collect();
    let plans: Vec<&str> = ids.iter().map(|_| rng.pick(PLANS)).collect();
    let countries: Vec<&str> = ids.iter().map(|_| rng.pick(COUNTRIES)).collect();
    let batch = RecordBatch::try_new(
        user_schema,
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Date32Array::from(signups)),
            Arc::new(StringArray::from(plans)),
            Arc::new(StringArray::from(countries)),
        ],
    )
    .expect("users");
    write_parquet(
        &store.join("users/users.parquet"),
        &[batch],
        pyarrow_like(512),
    );

    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("user_id", DataType::Int64, true),
        Field::new("session_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("referrer", DataType::Utf8, true),
        Field::new("device", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("duration_ms", DataType::Int32, true),
        Field::new("revenue", DataType::Decimal128(10, 2), true),
    ]));
    let per_day = events / DAYS as usize;
    let (mut event_id, mut session) = (1i64, 1i64);
    for d in 0..DAYS {
        let sessions = (per_day / 6).max(1);
        // Per session: a user (skewed: a cube of a uniform draw; a twelfth anonymous), a
        // device, a referrer and a country (some null), a start in the day.
        let s: Vec<(Option<i64>, &str, Option<&str>, Option<&str>, i64)> = (0..sessions)
            .map(|_| {
                let user = (rng.unit() >= 1.0 / 12.0)
                    .then(|| (rng.unit().powi(3) * users as f64) as i64 + 1);
                let device = rng.pick(&["desktop", "desktop", "mobile", "mobile", "tablet"]);
                let referrer = (rng.unit() >= 0.4).then(|| rng.pick(REFERRERS));
                let country = (rng.unit() >= 0.03).then(|| rng.pick(COUNTRIES));
                (user, device, referrer, country, rng.below(82_800) as i64)
            })
            .collect();
        let mut picks: Vec<usize> = (0..per_day)
            .map(|_| rng.below(sessions as u64) as usize)
            .collect();
        picks.sort_unstable();
        let mut cols: (
            Vec<i64>,
            Vec<i64>,
            Vec<Option<i64>>,
            Vec<String>,
            Vec<&str>,
            Vec<String>,
        ) = Default::default();
        let (mut referrer, mut device, mut country, mut duration, mut revenue) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0i64;
        for &p in &picks {
            let (user, dev, refr, ctry, start) = s[p];
            offset = (offset + rng.below(240) as i64 + 1) % 3_600;
            let seconds = (d + i64::from(day0)) * 86_400 + start + offset;
            let kind = match rng.below(100) {
                0..70 => "page_view",
                70..86 => "click",
                86..95 => "add_to_cart",
                95..98 => "purchase",
                _ => "signup",
            };
            let path = match rng.below(6) {
                0 => "/".to_string(),
                1 | 2 => format!("/products/{}", (rng.unit().powi(2) * 300.0) as u64),
                3 => format!("/category/{}", rng.pick(CATEGORIES)),
                4 => format!("/search?q={}", rng.pick(TERMS)),
                _ => "/cart".to_string(),
            };
            cols.0.push(event_id);
            cols.1.push(seconds * 1_000_000);
            cols.2.push(user);
            cols.3.push(format!("s{}", session + p as i64));
            cols.4.push(kind);
            cols.5.push(path);
            referrer.push(refr);
            device.push(dev);
            country.push(ctry);
            duration.push((rng.unit() >= 0.15).then(|| rng.below(120_000) as i32 + 100));
            revenue.push((kind == "purchase").then(|| rng.below(49_500) as i128 + 500));
            event_id += 1;
        }
        session += sessions as i64;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(cols.0)) as ArrayRef,
                Arc::new(TimestampMicrosecondArray::from(cols.1)),
                Arc::new(Int64Array::from(cols.2)),
                Arc::new(StringArray::from(cols.3)),
                Arc::new(StringArray::from(cols.4)),
                Arc::new(StringArray::from(cols.5)),
                Arc::new(StringArray::from(referrer)),
                Arc::new(StringArray::from(device)),
                Arc::new(StringArray::from(country)),
                Arc::new(Int32Array::from(duration)),
                Arc::new(
                    Decimal128Array::from(revenue)
                        .with_precision_and_scale(10, 2)
                        .expect("decimal(10, 2)"),
                ),
            ],
        )
        .expect("events");
        let date = chrono_date(day0 + d as i32);
        write_parquet(
            &store.join(format!("events/day={date}/part-0.parquet")),
            &[batch],
            pyarrow_like(512),
        );
    }
}

/// `YYYY-MM-DD` of a day since the epoch.
fn chrono_date(days: i32) -> String {
    let array = Date32Array::from(vec![days]);
    datafusion::arrow::util::display::array_value_to_string(&array, 0).expect("a date")
}

/// TPC-DS at `sf` from the tpcdsgen crate: one snappy file per table, as `tpcgen-cli
/// tpcds parquet` writes them, each in a folder of its name (a source).
fn write_tpcds(store: &Path, sf: f64) {
    use tpcdsgen::config::SessionBuilder;
    use tpcdsgen_arrow::*;
    let session = || {
        SessionBuilder::new()
            .with_scale_factor(sf)
            .build()
            .expect("a tpcdsgen session")
    };
    macro_rules! tables {
        ($($name:literal => $generator:ident),* $(,)?) => {$(
            let batches: Vec<RecordBatch> = $generator::new(session())
                .with_batch_size(8192)
                .map(|b| b.expect("a batch"))
                .collect();
            if !batches.is_empty() {
                write_parquet(
                    &store.join(format!("{}/{}.parquet", $name, $name)),
                    &batches,
                    WriterProperties::builder().set_compression(Compression::SNAPPY).build(),
                );
            }
        )*};
    }
    tables!(
        "call_center" => CallCenterArrow,
        "catalog_page" => CatalogPageArrow,
        "catalog_returns" => CatalogReturnsArrow,
        "catalog_sales" => CatalogSalesArrow,
        "customer" => CustomerArrow,
        "customer_address" => CustomerAddressArrow,
        "customer_demographics" => CustomerDemographicsArrow,
        "date_dim" => DateDimArrow,
        "household_demographics" => HouseholdDemographicsArrow,
        "income_band" => IncomeBandArrow,
        "inventory" => InventoryArrow,
        "item" => ItemArrow,
        "promotion" => PromotionArrow,
        "reason" => ReasonArrow,
        "ship_mode" => ShipModeArrow,
        "store" => StoreArrow,
        "store_returns" => StoreReturnsArrow,
        "store_sales" => StoreSalesArrow,
        "time_dim" => TimeDimArrow,
        "warehouse" => WarehouseArrow,
        "web_page" => WebPageArrow,
        "web_returns" => WebReturnsArrow,
        "web_sales" => WebSalesArrow,
        "web_site" => WebSiteArrow,
    );
}
