//! A run's output as an HTTP body, in each format endpoints serve.

use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use serde_json::json;

use sluice_engine::error::Result;
use sluice_engine::session::report::RunReport;

/// The formats of `/v0/pipes/{name}.{format}`.
pub const FORMATS: &[&str] = &["json", "ndjson", "csv", "parquet", "arrow"];

pub fn content_type(format: &str) -> &'static str {
    match format {
        "json" => "application/json",
        "ndjson" => "application/x-ndjson",
        "csv" => "text/csv; charset=utf-8",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/vnd.apache.arrow.stream",
    }
}

fn json_rows(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buf);
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    if buf.is_empty() {
        buf.extend_from_slice(b"[]");
    }
    Ok(buf)
}

/// Encodes the output; JSON carries `meta`, `data`, `rows` and `statistics` (elapsed
/// seconds, rows and bytes read), the shape Tinybird's API returns.
pub fn encode(
    format: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    report: &RunReport,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        "json" => {
            let meta: Vec<serde_json::Value> = schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            let statistics = json!({
                "elapsed": report.elapsed.as_secs_f64(),
                "rows_read": report.rows_scanned(),
                "bytes_read": report.bytes_scanned(),
            });
            out.extend_from_slice(b"{\"meta\":");
            out.extend_from_slice(serde_json::to_string(&meta).expect("json").as_bytes());
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(&json_rows(batches)?);
            out.extend_from_slice(
                format!(",\"rows\":{},\"statistics\":", report.rows_out).as_bytes(),
            );
            out.extend_from_slice(statistics.to_string().as_bytes());
            out.extend_from_slice(b"}");
        }
        "ndjson" => {
            let mut w = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        "csv" => {
            let mut w = CsvWriterBuilder::new().with_header(true).build(&mut out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        "parquet" => {
            let mut w = ArrowWriter::try_new(&mut out, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
        _ => {
            let mut w = StreamWriter::try_new(&mut out, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(out)
}
