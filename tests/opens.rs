//! Opening the files of a source one by one: what opening one file derives (its Arrow
//! schema after the scan's coercions, the pruning predicates of the scan's predicate) is
//! taken for the next file only when that file is the same in every respect it was
//! derived from (vendor/README.md, `open_cache.rs`). A source whose files differ in
//! columns, column order and key-value metadata answers as each file read on its own
//! would, with a plan made anew and with a plan kept and run again; and files are still
//! pruned by their statistics.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use sluice_engine::{EnvSession, RunOptions, SampleOverride};

use crate::common::{TestProject, block_on, write_parquet};
use crate::tpch::rows_of;

const PROJECT: &str =
    "[project]\nname = \"opens\"\n\n[environments.production]\ndata = \"data/production\"\n";

const FILES: i64 = 40;
const ROWS: i64 = 100;

/// The three kinds of file of `events`, by file number.
enum Kind {
    /// `k, s, v`.
    Plain,
    /// `k, s`: no `v`, read as NULL.
    WithoutV,
    /// `v, s, k` with a key-value entry of its own.
    Reordered,
}

fn kind(file: i64) -> Kind {
    match file {
        // First, so that each partition of a scan opens such a file first.
        0..10 => Kind::WithoutV,
        10..30 => Kind::Plain,
        _ => Kind::Reordered,
    }
}

/// Row `k` of the source: its `s` (the same in every row of a reordered file, so that a
/// predicate on it is folded to a constant there), its `v` (NULL where the file lacks it
/// or every 13th).
fn row(k: i64) -> (String, Option<i64>) {
    let file = k / ROWS;
    let s = match kind(file) {
        Kind::Reordered => format!("s{}", file % 9),
        _ => format!("s{}", k % 9),
    };
    let v = match kind(file) {
        Kind::WithoutV => None,
        _ => (k % 13 != 0).then_some(k * 3 % 101),
    };
    (s, v)
}

/// File `file` holds `k` from `file * ROWS`, one row group, under `g=even` or `g=odd`.
fn write_file(store: &Path, file: i64) {
    let ks: Vec<i64> = (file * ROWS..(file + 1) * ROWS).collect();
    let k: ArrayRef = Arc::new(Int64Array::from(ks.clone()));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(ks.iter().map(|&k| row(k).0)));
    let v: ArrayRef = Arc::new(Int64Array::from_iter(ks.iter().map(|&k| row(k).1)));
    let mut props = WriterProperties::builder();
    let batch = match kind(file) {
        Kind::Plain => RecordBatch::try_from_iter([("k", k), ("s", s), ("v", v)]),
        Kind::WithoutV => RecordBatch::try_from_iter([("k", k), ("s", s)]),
        Kind::Reordered => {
            props = props.set_key_value_metadata(Some(vec![KeyValue::new(
                "writer".to_string(),
                format!("file {file}"),
            )]));
            RecordBatch::try_from_iter([("v", v), ("s", s), ("k", k)])
        }
    }
    .unwrap();
    let group = if file % 2 == 0 { "even" } else { "odd" };
    let path = store.join(format!("events/g={group}/f{file:03}.parquet"));
    write_parquet(&path, &batch, Some(props.build()));
}

/// `picks`: the keys a join keeps (every 37th), the build side of its dynamic filter.
fn picked(k: i64) -> bool {
    k % 37 == 0 && k < 3_000
}

fn project() -> TestProject {
    let p = TestProject::with_files(PROJECT, &[]);
    let store = p.path().join("data/production");
    for file in 0..FILES {
        write_file(&store, file);
    }
    let k: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..FILES * ROWS).filter(|k| picked(*k)),
    ));
    let batch = RecordBatch::try_from_iter([("k", k)]).unwrap();
    write_parquet(&store.join("picks/part-0.parquet"), &batch, None);
    p
}

/// Every row of the source as (k, s, v, g).
fn rows() -> impl Iterator<Item = (i64, String, Option<i64>, &'static str)> {
    (0..FILES * ROWS).map(|k| {
        let (s, v) = row(k);
        let g = if (k / ROWS) % 2 == 0 { "even" } else { "odd" };
        (k, s, v, g)
    })
}

fn query(session: &EnvSession, sql: &str) -> Vec<Vec<String>> {
    let out = block_on(session.query(sql, &RunOptions::default()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows_of(&out.batches)
}

/// The queries, each with its answer computed here from the rows written.
fn cases() -> Vec<(&'static str, Vec<Vec<String>>)> {
    let text = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
    // A range over `v`-less, plain and reordered files (files 5 to 32).
    let in_range: Vec<_> = rows().filter(|r| (550..3250).contains(&r.0)).collect();
    let counted = vec![vec![
        in_range.len().to_string(),
        text(in_range.iter().filter_map(|r| r.2).reduce(|a, b| a + b)),
        in_range
            .iter()
            .filter(|r| r.2.is_some())
            .count()
            .to_string(),
    ]];
    // A predicate on the column some files lack.
    let mut nulls = BTreeMap::<String, i64>::new();
    for r in rows().filter(|r| r.2.is_none()) {
        *nulls.entry(r.1).or_default() += 1;
    }
    let nulls = nulls
        .into_iter()
        .map(|(s, n)| vec![s, n.to_string()])
        .collect();
    // A predicate on the partition column and on a string.
    let odd = vec![vec![
        rows()
            .filter(|r| r.3 == "odd" && r.0 < 2_000 && r.1 == "s4")
            .count()
            .to_string(),
    ]];
    // A predicate on the column some files lack, which their scans fold to false.
    let above: Vec<i64> = rows().filter_map(|r| r.2).filter(|v| *v > 50).collect();
    let above = vec![vec![
        above.len().to_string(),
        text(above.iter().copied().reduce(|a, b| a + b)),
    ]];
    // A predicate on a column that is constant in some files (folded to true or false).
    let s4 = vec![vec![rows().filter(|r| r.1 == "s4").count().to_string()]];
    // A predicate on the partition column that the scan of each file folds: to
    // `v > 1000` (pruning every row group) in the even files, to true in the odd ones.
    let odd_or = vec![vec![rows().filter(|r| r.3 == "odd").count().to_string()]];
    // A join whose build side becomes a dynamic filter on the files' scan, and a TopK
    // whose threshold tightens as files are read: predicates whose pruning predicates
    // are built for each file from the filters' values then, never kept.
    let joined: Vec<_> = rows().filter(|r| picked(r.0)).collect();
    let joined = vec![vec![
        joined.len().to_string(),
        text(joined.iter().filter_map(|r| r.2).reduce(|a, b| a + b)),
    ]];
    let mut top: Vec<(i64, i64)> = rows().filter_map(|r| r.2.map(|v| (v, r.0))).collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let top = top
        .into_iter()
        .take(5)
        .map(|(v, k)| vec![k.to_string(), v.to_string()])
        .collect();
    // No predicate at all.
    let every = vec![vec![
        (FILES * ROWS).to_string(),
        text(rows().filter_map(|r| r.2).max()),
    ]];
    vec![
        (
            "SELECT count(*) AS n, sum(v) AS total, count(v) AS with_v FROM events \
             WHERE k >= 550 AND k < 3250",
            counted,
        ),
        (
            "SELECT s, count(*) AS n FROM events WHERE v IS NULL GROUP BY s ORDER BY s",
            nulls,
        ),
        (
            "SELECT count(*) AS n FROM events WHERE g = 'odd' AND k < 2000 AND s = 's4'",
            odd,
        ),
        (
            "SELECT count(*) AS n, sum(v) AS total FROM events WHERE v > 50",
            above,
        ),
        ("SELECT count(*) AS n FROM events WHERE s = 's4'", s4),
        (
            "SELECT count(*) AS n FROM events WHERE g = 'odd' OR v > 1000",
            odd_or,
        ),
        (
            "SELECT count(*) AS n, sum(e.v) AS total FROM events e JOIN picks p ON e.k = p.k",
            joined,
        ),
        (
            "SELECT k, v FROM events WHERE v IS NOT NULL ORDER BY v DESC, k LIMIT 5",
            top,
        ),
        ("SELECT count(*) AS n, max(v) AS top FROM events", every),
    ]
}

#[test]
fn files_of_other_columns_order_and_metadata_answer_as_read_on_their_own() {
    let p = project();
    let fresh = p.session("production", SampleOverride::default());
    let kept = p
        .session("production", SampleOverride::default())
        .prepare_plans();
    for (sql, expected) in cases() {
        assert_eq!(query(&fresh, sql), expected, "{sql}");
        // Run after run, in one plan kept: later runs open every file after the first
        // run has cached what it derived.
        for run in 0..3 {
            assert_eq!(query(&kept, sql), expected, "{sql} (kept plan, run {run})");
        }
    }
    // Every query again in the same session, in another order: what one query derived
    // is never another's.
    for (sql, expected) in cases().into_iter().rev() {
        assert_eq!(query(&kept, sql), expected, "{sql} (again)");
    }
}

#[test]
fn files_are_still_pruned_by_their_statistics() {
    let p = project();
    let (out, _) = p.expect_exit(
        &[
            "query",
            "EXPLAIN ANALYZE SELECT count(*) AS n FROM events WHERE k >= 550 AND k < 3250",
            "--env",
            "production",
        ],
        0,
    );
    // Files 5 to 32 hold the range: 28 of the 40 are opened, the others pruned by the
    // statistics of their footers.
    assert!(
        out.contains("files_ranges_pruned_statistics=40 total → 28 matched"),
        "{out}"
    );
}
