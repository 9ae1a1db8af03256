//! Printing results with arrow's own writers and pretty printer.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

/// `println!` that returns the write error (a closed pipe) instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrintFormat {
    /// An aligned table for people
    Table,
    /// CSV with a header row
    Csv,
    /// One JSON array of objects
    Json,
    /// One JSON object per line
    Ndjson,
    /// A Parquet file (binary: use --output or a pipe)
    Parquet,
    /// An Arrow IPC stream (binary: use --output or a pipe)
    Arrow,
}

impl PrintFormat {
    fn is_binary(self) -> bool {
        matches!(self, PrintFormat::Parquet | PrintFormat::Arrow)
    }
}

/// Writes batches in `format` to `out`.
pub fn write_batches(
    out: &mut dyn Write,
    format: PrintFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    match format {
        PrintFormat::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                // Show the header even for no rows.
                let empty = RecordBatch::new_empty(schema.clone());
                writeln!(out, "{}", pretty_format_batches(&[empty])?)?;
            } else {
                writeln!(out, "{}", pretty_format_batches(batches)?)?;
            }
        }
        PrintFormat::Csv => {
            let mut w = CsvWriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        PrintFormat::Json => {
            let mut w = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            writeln!(out)?;
        }
        PrintFormat::Ndjson => {
            let mut w = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        PrintFormat::Parquet => {
            // Parquet's writer needs a `Send` sink; the footer comes last anyway.
            let mut buf = Vec::new();
            let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
            out.write_all(&buf)?;
        }
        PrintFormat::Arrow => {
            let mut w = StreamWriter::try_new(&mut *out, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes to `path` (through a temporary file renamed into place, so a failed write
/// leaves no half file) or to standard output.
pub fn emit(
    path: Option<&Path>,
    format: PrintFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    match path {
        Some(path) => {
            let name = path
                .file_name()
                .with_context(|| format!("{} is not a file path", path.display()))?;
            let tmp = path.with_file_name(format!(".{}.sluice-tmp", name.to_string_lossy()));
            let result = (|| -> Result<()> {
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let mut w = std::io::BufWriter::new(file);
                write_batches(&mut w, format, schema, batches)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        }
        None => {
            let stdout = std::io::stdout();
            if format.is_binary() && stdout.is_terminal() {
                bail!(
                    "refusing to write {format:?} (binary) to a terminal: use --output FILE or a pipe"
                );
            }
            let mut lock = stdout.lock();
            write_batches(&mut lock, format, schema, batches)
        }
    }
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `1,234,567` style counts.
pub fn human_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}
