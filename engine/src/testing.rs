//! What the engine's unit tests share: answers compared as sorted lines, and the table
//! the grouping tests aggregate.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

/// `batches` as the lines of arrow's pretty table, sorted: equal answers in any row
/// order give equal lines (a rollup's subtotal row and a group whose keys are NULL tie
/// in any `ORDER BY` of the keys).
pub fn sorted_lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut lines: Vec<String> = pretty_format_batches(batches)
        .expect("printable batches")
        .to_string()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// A table `t` of 3,000 rows to group: NULLs in every key (`a` a string, `b` and `c`
/// integers), `q` an integer with NULLs, `f` a float, `d` a decimal.
pub const GROUPING_TABLE: &str = "CREATE TABLE t AS SELECT \
     CASE WHEN v % 11 = 0 THEN NULL ELSE 'a' || (v % 3) END AS a, \
     CASE WHEN v % 7 = 0 THEN NULL ELSE v % 4 END AS b, \
     v % 5 AS c, \
     CASE WHEN v % 4 = 0 THEN NULL ELSE CAST(v * 37 % 1000 AS INT) END AS q, \
     CAST(v AS DOUBLE) / 3 AS f, CAST(v AS DECIMAL(10, 2)) / 7 AS d \
     FROM generate_series(1, 3000) AS s(v)";
