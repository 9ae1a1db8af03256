//! Sampling on read: determinism, fractions, key joins that stay whole, and bytes read
//! that fall with the fraction (shown with the scan metrics).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_engine::fixtures::GenOptions;
use sluice_engine::{RunOptions, RunOutput, SampleOverride};

use crate::common::{TestProject, block_on};

/// A project whose staging store has every source sampled by the environment's policy
/// (no `full` dimension tables), for the key-join property.
const KEY_PROJECT: &str = r#"
[project]
name = "keyed"

[environments.staging]
data = "data/staging"
sample = { method = "key", key = "account_id", fraction = 0.1, seed = 11 }

[environments.production]
data = "data/production"

[sources.accounts]
sample_key = "account_id"

[sources.reps]
sample = "full"

[sources.calls]
sample_key = "account_id"
"#;

fn query(p: &TestProject, env: &str, sample: SampleOverride, sql: &str) -> RunOutput {
    let session = p.session(env, sample);
    block_on(session.query(sql, &RunOptions::default())).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn scalar_i64(out: &RunOutput) -> i64 {
    let b = &out.batches[0];
    b.column(0).as_primitive::<Int64Type>().value(0)
}

fn text(out: &RunOutput) -> String {
    pretty_format_batches(&out.batches).unwrap().to_string()
}

fn sample(method: &str, fraction: f64, seed: u64) -> SampleOverride {
    SampleOverride {
        method: Some(method.into()),
        fraction: Some(fraction),
        seed: Some(seed),
        ..Default::default()
    }
}

#[test]
fn system_sample_reads_bytes_in_proportion() {
    // 100,000 calls in 4 files of 25 row groups each: 100 row groups.
    let p = TestProject::example_with(GenOptions {
        scale: 1.0,
        row_group_rows: Some(1000),
        ..GenOptions::default()
    });
    let sql = "SELECT sum(amount), sum(duration_s), count(outcome), max(started_at) FROM calls";
    let full = query(&p, "production", SampleOverride::default(), sql);
    let one_pct = query(&p, "production", sample("system", 0.01, 5), sql);
    let full_bytes = full.report.bytes_scanned();
    let sample_bytes = one_pct.report.bytes_scanned();
    assert!(full_bytes > 0);
    let ratio = sample_bytes as f64 / full_bytes as f64;
    assert!(
        ratio <= 0.03,
        "a 1% system sample read {sample_bytes} of {full_bytes} bytes ({:.2}%)",
        ratio * 100.0
    );
    let calls = &one_pct.report.sources[0];
    assert_eq!(calls.source, "calls");
    assert_eq!(calls.rows_total, 100_000);
    assert!(
        calls.rows_scanned >= 1000 && calls.rows_scanned <= 2000,
        "{}",
        calls.rows_scanned
    );
    assert!((calls.fraction - 0.01).abs() < 0.006, "{}", calls.fraction);
}

#[test]
fn system_sample_splits_large_row_groups() {
    // One big row group per file: the sample must still read a fraction of the bytes.
    let p = TestProject::example_with(GenOptions {
        scale: 1.0,
        call_files: 1,
        row_group_rows: Some(200_000),
        ..GenOptions::default()
    });
    let sql = "SELECT sum(amount), sum(duration_s), max(started_at) FROM calls";
    let full = query(&p, "production", SampleOverride::default(), sql);
    let ten_pct = query(&p, "production", sample("system", 0.1, 5), sql);
    let ratio = ten_pct.report.bytes_scanned() as f64 / full.report.bytes_scanned() as f64;
    assert!(
        ratio < 0.2,
        "a 10% sample of one row group read {:.1}% of the bytes",
        ratio * 100.0
    );
    let f = ten_pct.report.sources[0].fraction;
    assert!((f - 0.1).abs() < 0.02, "{f}");
}

#[test]
fn every_method_is_deterministic_and_seeded() {
    let p = TestProject::example(0.1);
    let sql = "SELECT call_id FROM calls ORDER BY call_id";
    for method in ["system", "key", "bernoulli"] {
        let a = text(&query(&p, "production", sample(method, 0.2, 1), sql));
        let b = text(&query(&p, "production", sample(method, 0.2, 1), sql));
        let c = text(&query(&p, "production", sample(method, 0.2, 2), sql));
        assert_eq!(a, b, "{method}: same seed, same rows");
        assert_ne!(a, c, "{method}: another seed, other rows");
    }
    // The same files sample the same rows in another store.
    let staging = text(&query(&p, "staging", sample("bernoulli", 0.2, 1), sql));
    let production = text(&query(&p, "production", sample("bernoulli", 0.2, 1), sql));
    assert_eq!(staging, production);
}

#[test]
fn fractions_are_within_tolerance() {
    let p = TestProject::example(0.5); // 50,000 calls
    let count = "SELECT count(call_id) FROM calls";
    for (method, fraction, tolerance) in [
        // Systematic selection keeps each unit with probability 0.1: a file of 25 units
        // keeps 2 or 3, so the kept fraction varies by up to one unit per file.
        ("system", 0.1, 0.025),
        ("bernoulli", 0.2, 0.01),
        ("bernoulli", 0.05, 0.005),
    ] {
        let out = query(&p, "production", sample(method, fraction, 3), count);
        let got = scalar_i64(&out) as f64 / 50_000.0;
        assert!(
            (got - fraction).abs() <= tolerance,
            "{method} {fraction}: kept {got}"
        );
        let reported = out.report.sources[0].fraction;
        assert!(
            (reported - got).abs() < 1e-9,
            "{method}: reported {reported}, counted {got}"
        );
    }
    // Key sampling keeps a fraction of the keys (the rows follow the keys' skew).
    let keys = query(
        &p,
        "production",
        sample("key", 0.3, 3),
        "SELECT count(DISTINCT account_id) FROM calls",
    );
    let all = query(
        &p,
        "production",
        SampleOverride::default(),
        "SELECT count(DISTINCT account_id) FROM calls",
    );
    let got = scalar_i64(&keys) as f64 / scalar_i64(&all) as f64;
    assert!(
        (got - 0.3).abs() < 0.05,
        "key 0.3 kept {got} of the accounts"
    );
}

#[test]
fn rows_caps_each_source() {
    let p = TestProject::example(0.1);
    let out = query(
        &p,
        "production",
        SampleOverride {
            method: Some("rows".into()),
            fraction: Some(777.0),
            ..Default::default()
        },
        "SELECT count(call_id) FROM calls",
    );
    assert_eq!(scalar_i64(&out), 777);
}

#[test]
fn key_sampling_keeps_joins_whole() {
    let p = TestProject::example(0.2);
    p.write("sluice.toml", KEY_PROJECT);
    // Every sampled call finds its account, and no account lost a call.
    let orphans = query(
        &p,
        "staging",
        SampleOverride::default(),
        "SELECT count(*) FROM calls c LEFT JOIN accounts a ON c.account_id = a.account_id WHERE a.account_id IS NULL",
    );
    assert_eq!(scalar_i64(&orphans), 0);
    let per_account = "SELECT a.account_id, count(c.call_id) AS calls FROM accounts a JOIN calls c USING (account_id) GROUP BY 1 ORDER BY 1";
    let sampled = query(&p, "staging", SampleOverride::default(), per_account);
    let full = query(&p, "production", SampleOverride::default(), per_account);
    let sampled_rows = text(&sampled);
    let kept_accounts: Vec<i64> = sampled
        .batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert!(!kept_accounts.is_empty());
    // The full data's counts for the kept accounts are exactly the sample's.
    let list = kept_accounts
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let full_for_kept = query(
        &p,
        "production",
        SampleOverride::default(),
        &format!(
            "SELECT a.account_id, count(c.call_id) AS calls FROM accounts a JOIN calls c USING (account_id) WHERE a.account_id IN ({list}) GROUP BY 1 ORDER BY 1"
        ),
    );
    assert_eq!(sampled_rows, text(&full_for_kept));
    assert!(full.report.rows_out > sampled.report.rows_out);
    // Both sources report the key sample.
    let accounts = sampled
        .report
        .sources
        .iter()
        .find(|s| s.source == "accounts")
        .unwrap();
    assert!(
        accounts.sampling.starts_with("key"),
        "{}",
        accounts.sampling
    );
}

#[test]
fn staging_samples_and_production_reads_everything() {
    let p = TestProject::example(0.1);
    let session = p.session("production", SampleOverride::default());
    let prod = block_on(session.run_pipe("top_reps", &[], &RunOptions::default())).unwrap();
    assert!(prod.report.sample.is_none());
    let calls = prod
        .report
        .sources
        .iter()
        .find(|s| s.source == "calls")
        .unwrap();
    assert_eq!(calls.rows_scanned, 10_000);
    assert_eq!(calls.fraction, 1.0);

    let session = p.session("staging", SampleOverride::default());
    let staging = block_on(session.run_pipe("top_reps", &[], &RunOptions::default())).unwrap();
    assert!(staging.report.sample.is_some());
    let calls = staging
        .report
        .sources
        .iter()
        .find(|s| s.source == "calls")
        .unwrap();
    assert!(calls.rows_scanned < 2_000, "{}", calls.rows_scanned);
    // `reps` is declared `sample = "full"`.
    let reps = staging
        .report
        .sources
        .iter()
        .find(|s| s.source == "reps")
        .unwrap();
    assert_eq!(reps.fraction, 1.0);
    assert!(reps.sampling.starts_with("full"));

    // --full overrides the environment's policy once.
    let session = p.session(
        "staging",
        SampleOverride {
            full: true,
            ..Default::default()
        },
    );
    let full = block_on(session.run_pipe("top_reps", &[], &RunOptions::default())).unwrap();
    assert_eq!(text_of(&full), text_of(&prod));
}

fn text_of(out: &RunOutput) -> String {
    text(out)
}

#[test]
fn sampled_counts_are_not_answered_from_full_statistics() {
    let p = TestProject::example(0.1);
    let out = query(
        &p,
        "production",
        sample("system", 0.1, 1),
        "SELECT count(*) FROM calls",
    );
    let n = scalar_i64(&out);
    assert!(n < 2_000, "count(*) under a 10% sample returned {n}");
}

#[test]
fn hive_partitioned_sources_are_read_and_sampled() {
    let p = TestProject::example(0.05);
    // Re-lay calls as calls_by_channel/channel=…/part.parquet.
    let out = query(
        &p,
        "production",
        SampleOverride::default(),
        "SELECT * FROM calls",
    );
    let dir = p.store("production").join("calls_by_channel");
    for channel in ["phone", "video"] {
        let part = dir.join(format!("channel={channel}"));
        std::fs::create_dir_all(&part).unwrap();
        let batches: Vec<_> = out
            .batches
            .iter()
            .map(|b| {
                let idx = b.schema().index_of("channel").unwrap();
                // Strings come as views (DataFusion's `schema_force_view_types`).
                let mask = datafusion::arrow::compute::kernels::cmp::eq(
                    b.column(idx),
                    &datafusion::arrow::array::StringViewArray::new_scalar(channel),
                )
                .unwrap();
                let filtered = datafusion::arrow::compute::filter_record_batch(b, &mask).unwrap();
                filtered
                    .project(
                        &(0..b.num_columns())
                            .filter(|i| *i != idx)
                            .collect::<Vec<_>>(),
                    )
                    .unwrap()
            })
            .collect();
        let file = std::fs::File::create(part.join("part-0.parquet")).unwrap();
        let mut w =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None)
                .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    }
    let by_channel = query(
        &p,
        "production",
        SampleOverride::default(),
        "SELECT channel, count(*) AS n FROM calls_by_channel GROUP BY 1 ORDER BY 1",
    );
    let direct = query(
        &p,
        "production",
        SampleOverride::default(),
        "SELECT channel, count(*) AS n FROM calls GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(text(&by_channel), text(&direct));
    let sampled = query(
        &p,
        "production",
        sample("bernoulli", 0.5, 1),
        "SELECT count(*) FROM calls_by_channel WHERE channel = 'video'",
    );
    let n = scalar_i64(&sampled);
    assert!(n > 0 && (n as u64) < by_channel.batches[0].column(1).len() as u64 * 5_000);
    assert!(!by_channel.batches[0].column(0).is_empty());
}
