//! Sluice's own tables, readable in any query of an environment under the `sluice`
//! schema: the run statistics (`sluice.pipe_stats`) and each source's quarantine of
//! rows ingestion kept out (`sluice.SOURCE_errors`). Their names, places in a store and
//! columns are defined here; `stats` and `ingest` write them, `session` registers them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The folder under every store root where Sluice keeps its own state.
pub const STATE_DIR: &str = "_sluice";

/// The access tokens of an environment's endpoints (hashes only), in its store.
pub const TOKENS_FILE: &str = "_sluice/tokens.json";

/// The folder of the store holding the records.
pub const STATS_DIR: &str = "_sluice/stats";
/// The schema and table name the records are read under.
pub const STATS_SCHEMA: &str = "sluice";
pub const STATS_TABLE: &str = "pipe_stats";

/// The schema of `sluice.pipe_stats`.
pub fn stats_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "started_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("env", DataType::Utf8, false),
        Field::new("pipe", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("origin", DataType::Utf8, false),
        Field::new("duration_ms", DataType::Float64, false),
        Field::new("rows_read", DataType::UInt64, false),
        Field::new("bytes_read", DataType::UInt64, false),
        Field::new("rows_out", DataType::UInt64, false),
        Field::new("sample_fraction", DataType::Float64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("token", DataType::Utf8, true),
        Field::new("params_hash", DataType::Utf8, false),
    ]))
}

/// Where rejected rows of a source go, in its environment's store.
pub fn errors_dataset(source: &str) -> String {
    format!("{STATE_DIR}/errors/{source}")
}

/// The suffix of the table a source's quarantine is queried as: `sluice.calls_errors`.
pub const ERRORS_TABLE_SUFFIX: &str = "_errors";

/// The table a source's quarantine is queried as, in the `sluice` schema.
pub fn errors_table(source: &str) -> String {
    format!("{}.{source}{ERRORS_TABLE_SUFFIX}", STATS_SCHEMA)
}

/// The columns of a quarantine dataset.
pub fn errors_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ingest_id", DataType::Utf8, false),
        Field::new("ingested_at", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]))
}
