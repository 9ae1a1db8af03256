//! Prepared plans (`EnvSession::prepare_plans`, `session/prepared.rs`): a session that
//! keeps its plans answers every run as a session that plans each run anew, whatever
//! state a plan's operators keep (dynamic filters of joins, TopK and global min/max,
//! build sides, scan metrics), and never keeps a plan of another store state, of the
//! clock, or of other parameter values.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::parquet::file::properties::WriterProperties;
use sluice_engine::{EnvSession, RunOptions, RunOutput, SampleOverride};

use crate::common::{TestProject, block_on, write_parquet};
use crate::tpch::{first_difference, rows_of};

const PROJECT: &str =
    "[project]\nname = \"prepared\"\n\n[environments.production]\ndata = \"data/production\"\n";

/// Pipes whose plans hold per-run state: a global min/max (the aggregate's dynamic
/// filter), a TopK (its threshold), a join (its build side and bounds), a parameter.
const PIPES: [(&str, &str); 10] = [
    (
        "counted",
        "[[node]]\nname = \"out\"\nsql = \"SELECT count(*) AS n, sum(v) AS total FROM facts\"\n",
    ),
    (
        "extremes",
        "[[node]]\nname = \"out\"\nsql = \"SELECT min(v) AS lo, max(v) AS hi FROM facts WHERE k < 40\"\n",
    ),
    (
        "top",
        "[[node]]\nname = \"out\"\nsql = \"SELECT k, v FROM facts ORDER BY v DESC NULLS LAST, k LIMIT 5\"\n",
    ),
    (
        "joined",
        "[[node]]\nname = \"out\"\nsql = \"SELECT d.name, count(*) AS n, sum(f.v) AS total FROM facts f JOIN dims d ON f.k = d.k WHERE d.flag GROUP BY d.name ORDER BY d.name\"\n",
    ),
    (
        "above",
        "[params.min]\ntype = \"int\"\ndefault = 0\n\n[[node]]\nname = \"kept\"\nsql = \"SELECT k, v FROM facts WHERE v > $min\"\n\n[[node]]\nname = \"out\"\nsql = \"SELECT count(*) AS n, min(v) AS lo FROM kept\"\n",
    ),
    (
        "clock",
        "[[node]]\nname = \"out\"\nsql = \"SELECT count(*) AS n, now() >= TIMESTAMP '2000-01-01' AS later FROM facts\"\n",
    ),
    (
        "stats",
        "[[node]]\nname = \"out\"\nsql = \"SELECT count(*) AS runs FROM sluice.pipe_stats\"\n",
    ),
    // Nodes read more than once, computed ahead of the output on each run: `per_k`
    // (read by `tops` twice and by the output), `tops` (read twice by the output).
    (
        "shared",
        "[[node]]\nname = \"per_k\"\nsql = \"SELECT k, sum(v) AS s, count(*) AS n FROM facts GROUP BY k\"\n\n[[node]]\nname = \"tops\"\nsql = \"SELECT k, s FROM per_k WHERE s >= (SELECT avg(s) FROM per_k)\"\n\n[[node]]\nname = \"out\"\nsql = \"SELECT t.k, t.s, p.n, (SELECT count(*) FROM tops) AS how_many FROM tops t JOIN per_k p ON t.k = p.k ORDER BY t.s DESC, t.k LIMIT 10\"\n",
    ),
    // A `WITH` query read twice, computed ahead.
    (
        "with_twice",
        "[[node]]\nname = \"out\"\nsql = \"WITH d AS (SELECT k % 7 AS b, count(DISTINCT v) AS n FROM facts GROUP BY k % 7) SELECT x.b, x.n, y.n AS m FROM d x JOIN d y ON x.b = (y.b + 1) % 7 ORDER BY x.b\"\n",
    ),
    // A node computed ahead that reads the clock.
    (
        "shared_clock",
        "[[node]]\nname = \"recent\"\nsql = \"SELECT k, count(*) AS n FROM facts WHERE now() > TIMESTAMP '2000-01-01' GROUP BY k\"\n\n[[node]]\nname = \"out\"\nsql = \"SELECT count(*) AS groups, (SELECT sum(n) FROM recent) AS total FROM recent\"\n",
    ),
];

fn write(path: &Path, batch: RecordBatch, rows_per_group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    write_parquet(path, &batch, Some(props));
}

/// `facts` (k, v) in a file of `rows` rows from `first`, and `dims` (k, name, flag).
fn write_facts(store: &Path, file: &str, first: i64, rows: i64) {
    let k: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (first..first + rows).map(|i| i % 50),
    ));
    let v: ArrayRef = Arc::new(Int64Array::from_iter(
        (first..first + rows).map(|i| (i % 97 != 0).then_some((i * 7919) % 10_007)),
    ));
    let batch = RecordBatch::try_from_iter([("k", k), ("v", v)]).unwrap();
    write(&store.join("facts").join(file), batch, 500);
}

fn write_dims(store: &Path) {
    let k: ArrayRef = Arc::new(Int64Array::from_iter_values(0..50));
    let name: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..50).map(|i| format!("d{}", i % 7)),
    ));
    let flag: ArrayRef = Arc::new(BooleanArray::from_iter((0..50).map(|i| Some(i % 3 != 0))));
    let batch = RecordBatch::try_from_iter([("k", k), ("name", name), ("flag", flag)]).unwrap();
    write(&store.join("dims").join("part-0.parquet"), batch, 50);
}

fn project() -> TestProject {
    let p = TestProject::with_files(PROJECT, &PIPES);
    let store = p.path().join("data/production");
    write_facts(&store, "part-0.parquet", 0, 3_000);
    write_facts(&store, "part-1.parquet", 3_000, 2_000);
    write_dims(&store);
    p
}

/// A third file of 1,000 facts (5,000 to 6,000), which `session` sees once its listings
/// are refreshed (as the server refreshes them on every change).
fn add_facts_file(p: &TestProject, session: &EnvSession) {
    write_facts(
        &p.path().join("data/production"),
        "part-2.parquet",
        5_000,
        1_000,
    );
    assert!(block_on(session.refresh_listings()).expect("refresh"));
}

/// A session of production that keeps its plans.
fn prepared(p: &TestProject, sample: SampleOverride) -> EnvSession {
    p.session("production", sample).prepare_plans()
}

/// A session of production that plans every run, and one that keeps its plans.
fn sessions(p: &TestProject, sample: SampleOverride) -> (EnvSession, EnvSession) {
    (p.session("production", sample.clone()), prepared(p, sample))
}

fn run(session: &EnvSession, pipe: &str, params: &[(String, String)]) -> RunOutput {
    block_on(session.run_pipe(pipe, params, &RunOptions::default()))
        .unwrap_or_else(|e| panic!("pipe {pipe}: {e}"))
}

fn same_rows(pipe: &str, expected: &RunOutput, got: &RunOutput) {
    if let Some(diff) = first_difference(&rows_of(&expected.batches), &rows_of(&got.batches), true)
    {
        panic!("pipe {pipe}: a prepared run differs from a new plan: {diff}");
    }
}

#[test]
fn prepared_plans_answer_as_new_plans_run_after_run() {
    let p = project();
    let (fresh, kept) = sessions(&p, SampleOverride::default());
    for pipe in ["extremes", "top", "joined"] {
        let expected = run(&fresh, pipe, &[]);
        assert!(expected.report.rows_out > 0, "{pipe}");
        let before = kept.prepared_runs();
        for _ in 0..3 {
            let got = run(&kept, pipe, &[]);
            same_rows(pipe, &expected, &got);
            // Each run reports what it read itself, not the runs before it too (how
            // much a dynamic filter prunes depends on how the partitions race).
            assert!(
                got.report.rows_scanned() <= 5_050,
                "{pipe}: {:?}",
                got.report
            );
            if pipe == "joined" {
                assert_eq!(got.report.rows_scanned(), 5_050);
            }
        }
        assert_eq!(
            kept.prepared_runs() - before,
            2,
            "{pipe}: runs 2 and 3 reuse the plan"
        );
    }
}

#[test]
fn plans_that_compute_nodes_ahead_are_kept_and_compute_them_on_every_run() {
    let p = project();
    let (fresh, kept) = sessions(&p, SampleOverride::default());
    for pipe in ["shared", "with_twice"] {
        let expected = run(&fresh, pipe, &[]);
        assert!(expected.report.rows_out > 0, "{pipe}");
        // Each shared node is computed once: the facts are scanned once.
        assert_eq!(expected.report.rows_scanned(), 5_000, "{pipe}");
        let before = kept.prepared_runs();
        for _ in 0..3 {
            let got = run(&kept, pipe, &[]);
            same_rows(pipe, &expected, &got);
            assert_eq!(
                got.report.rows_scanned(),
                5_000,
                "{pipe}: each run computes its nodes once, and reports it: {:?}",
                got.report
            );
        }
        assert_eq!(
            kept.prepared_runs() - before,
            2,
            "{pipe}: runs 2 and 3 reuse the plan"
        );
    }
    // The kept plan holds no rows of its nodes: with another file, the next run
    // (once the listings are refreshed) computes them from the new files.
    add_facts_file(&p, &kept);
    let fresh = p.session("production", SampleOverride::default());
    for pipe in ["shared", "with_twice"] {
        let expected = run(&fresh, pipe, &[]);
        for _ in 0..2 {
            let got = run(&kept, pipe, &[]);
            same_rows(pipe, &expected, &got);
            assert_eq!(got.report.rows_scanned(), 6_000, "{pipe}");
        }
    }
    // A node of the clock is not kept, nor is the plan that reads it.
    let before = kept.prepared_runs();
    for _ in 0..2 {
        let out = run(&kept, "shared_clock", &[]);
        assert_eq!(rows_of(&out.batches), [["50", "6000"]]);
    }
    assert_eq!(
        kept.prepared_runs(),
        before,
        "now() is evaluated when planned"
    );
}

#[test]
fn a_prepared_plan_is_kept_per_parameter_values() {
    let p = project();
    let (fresh, kept) = sessions(&p, SampleOverride::default());
    let params = |min: i64| vec![("min".to_string(), min.to_string())];
    for round in 0..2 {
        for min in [0, 5_000, 9_000] {
            let expected = run(&fresh, "above", &params(min));
            let got = run(&kept, "above", &params(min));
            same_rows("above", &expected, &got);
        }
        assert_eq!(kept.prepared_runs(), 3 * round);
    }
}

#[test]
fn plans_of_the_clock_or_of_run_tables_are_not_kept() {
    let p = project();
    let kept = prepared(&p, SampleOverride::default());
    for _ in 0..3 {
        let out = run(&kept, "clock", &[]);
        assert_eq!(rows_of(&out.batches), [["5000", "true"]]);
    }
    assert_eq!(kept.prepared_runs(), 0, "now() is evaluated when planned");
    for _ in 0..2 {
        run(&kept, "stats", &[]);
    }
    assert_eq!(
        kept.prepared_runs(),
        0,
        "the run tables change with every run"
    );
}

#[test]
fn a_changed_store_drops_the_prepared_plans() {
    let p = project();
    let kept = prepared(&p, SampleOverride::default());
    let n = |out: &RunOutput| rows_of(&out.batches)[0][0].clone();
    assert_eq!(n(&run(&kept, "counted", &[])), "5000");
    assert_eq!(n(&run(&kept, "counted", &[])), "5000");
    assert_eq!(kept.prepared_runs(), 1);
    // A new file: the session sees it once its listings are refreshed (as the server
    // does on every change), and the plan of the old files is not run again.
    add_facts_file(&p, &kept);
    let out = run(&kept, "counted", &[]);
    assert_eq!(n(&out), "6000");
    assert_eq!(kept.prepared_runs(), 1);
    let fresh = p.session("production", SampleOverride::default());
    same_rows("counted", &run(&fresh, "counted", &[]), &out);
    assert_eq!(n(&run(&kept, "counted", &[])), "6000");
    assert_eq!(kept.prepared_runs(), 2);
}

#[test]
fn queries_are_prepared_too() {
    let p = project();
    let (fresh, kept) = sessions(&p, SampleOverride::default());
    let sql = "SELECT k, max(v) AS top FROM facts WHERE v IS NOT NULL GROUP BY k ORDER BY top DESC, k LIMIT 3";
    let expected = block_on(fresh.query(sql, &RunOptions::default())).expect("query");
    for _ in 0..3 {
        let got = block_on(kept.query(sql, &RunOptions::default())).expect("query");
        same_rows("query", &expected, &got);
    }
    assert_eq!(kept.prepared_runs(), 2);
}

#[test]
fn estimated_runs_are_prepared_with_their_report() {
    let p = project();
    let sample = SampleOverride {
        fraction: Some(0.5),
        method: Some("system".into()),
        seed: Some(3),
        ..SampleOverride::default()
    };
    let (fresh, kept) = sessions(&p, sample);
    let options = RunOptions {
        estimate: true,
        ..RunOptions::default()
    };
    let sql = "SELECT k % 5 AS bucket, count(*) AS n, sum(v) AS total, avg(v) AS mean FROM facts GROUP BY k % 5 ORDER BY bucket";
    let expected = block_on(fresh.query(sql, &options)).expect("estimated query");
    let report = expected.estimate.clone().expect("an estimate report");
    assert!(
        report
            .columns
            .iter()
            .any(|(c, k)| c == "n" && k.has_bounds()),
        "{report:?}"
    );
    // A plain run of the same query is another plan, kept apart.
    let plain = block_on(kept.query(sql, &RunOptions::default())).expect("query");
    assert!(plain.estimate.is_none());
    for _ in 0..3 {
        let got = block_on(kept.query(sql, &options)).expect("estimated query");
        same_rows("estimated query", &expected, &got);
        assert_eq!(got.estimate.as_ref(), Some(&report));
    }
    assert_eq!(
        kept.prepared_runs(),
        2,
        "runs 2 and 3 reuse the estimated plan"
    );
    let expected = block_on(fresh.run_pipe("counted", &[], &options)).expect("estimated pipe");
    for _ in 0..2 {
        let got = block_on(kept.run_pipe("counted", &[], &options)).expect("estimated pipe");
        same_rows("counted", &expected, &got);
        assert_eq!(got.estimate, expected.estimate);
    }
    assert_eq!(kept.prepared_runs(), 3);
}
