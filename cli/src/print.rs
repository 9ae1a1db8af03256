//! Printing results with arrow's own writers and pretty printer.

use std::io::{IsTerminal, Write};
use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use sluice_engine::{RunOutput, RunReport};

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
            // Missing folders are created, and removed again if the write fails.
            let made = create_missing_dirs(path.parent())?;
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
                for dir in made.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
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

/// Creates `dir` and its missing parents; returns the folders it created, outermost
/// first.
fn create_missing_dirs(dir: Option<&Path>) -> Result<Vec<std::path::PathBuf>> {
    let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    missing.reverse();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(missing)
}

/// A progress bar on standard error, drawn only when it is a terminal (never into a
/// file or a pipe).
pub fn progress_bar() -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Draws an engine progress report on `bar`: a bar when the total is known, a spinner
/// with a count when not.
pub fn show_progress(bar: &indicatif::ProgressBar, p: &sluice_engine::util::progress::Progress) {
    use sluice_engine::util::progress::ProgressUnit;
    let count = match (p.unit, p.total.is_some()) {
        (ProgressUnit::Bytes, true) => "{binary_bytes}/{binary_total_bytes}",
        (ProgressUnit::Bytes, false) => "{binary_bytes}",
        (ProgressUnit::Rows, true) => "{human_pos}/{human_len} rows",
        (ProgressUnit::Rows, false) => "{human_pos} rows",
        (ProgressUnit::Steps, true) => "{pos}/{len}",
        (ProgressUnit::Steps, false) => "{pos}",
    };
    if bar.is_hidden() {
        return;
    }
    let template = match p.total {
        Some(_) => format!("{{spinner}} {{msg}} [{{bar:30}}] {count} {{elapsed}}"),
        None => format!("{{spinner}} {{msg}} {count} {{elapsed}}"),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    if let Some(total) = p.total {
        bar.set_length(total);
    }
    bar.set_position(p.done);
    bar.set_message(p.message.clone());
}

pub use sluice_engine::util::text::{human_bytes, human_duration, thousands as human_count};

/// Prints rows of text as an aligned table with arrow's pretty printer.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    outln!("{}", table_string(headers, rows)?);
    Ok(())
}

/// Rows of text as an aligned table.
pub fn table_string(headers: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let fields: Vec<Field> = headers
        .iter()
        .map(|h| Field::new(*h, DataType::Utf8, false))
        .collect();
    let columns: Vec<ArrayRef> = (0..headers.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok(pretty_format_batches(&[batch])?.to_string())
}

/// The one-line summary of a run, for standard error.
pub fn summary_line(report: &RunReport) -> String {
    let what = match &report.pipe {
        Some(p) => format!("pipe {p}"),
        None => "query".to_string(),
    };
    let mut sample = match &report.sample {
        Some(p) => format!(
            "sample {p}, kept {:.1}% of rows",
            report.effective_fraction() * 100.0
        ),
        None => "full data".to_string(),
    };
    // A store filled by `sample build` is itself a sample: say how much of the data it
    // came from the run read.
    if let Some((from, f)) = report.origin_fraction() {
        sample.push_str(&format!(
            " ({:.1}% of {from}'s: the store is a sample build)",
            f * 100.0
        ));
    }
    format!(
        "{} · {} · {} rows in {} · scanned {} rows, {} · {}",
        report.env,
        what,
        human_count(report.rows_out),
        human_duration(report.elapsed),
        human_count(report.rows_scanned()),
        human_bytes(report.bytes_scanned()),
        sample
    )
}

/// The `-v` lines of a run: one per source it read.
pub fn source_lines(report: &RunReport) -> Vec<String> {
    report
        .sources
        .iter()
        .map(|s| {
            format!(
                "  {}: {} · scanned {} of {} rows, {} · kept {:.1}%{}",
                s.source,
                s.sampling,
                human_count(s.rows_scanned),
                human_count(s.rows_total),
                human_bytes(s.bytes_scanned),
                s.fraction * 100.0,
                match &s.built_from {
                    Some((from, _)) =>
                        format!(" ({:.1}% of {from}'s rows)", s.origin_fraction() * 100.0),
                    None => String::new(),
                }
            )
        })
        .collect()
}

pub fn print_output(out: &RunOutput, args: &crate::args::OutputArgs, verbose: u8) -> Result<()> {
    emit(
        args.output.as_deref(),
        args.format,
        &out.schema,
        &out.batches,
    )?;
    if !args.quiet {
        eprintln!("{}", summary_line(&out.report));
        if let Some(e) = &out.estimate {
            for line in estimate_lines(e) {
                eprintln!("{line}");
            }
        }
        if verbose > 0 {
            for line in source_lines(&out.report) {
                eprintln!("{line}");
            }
        }
        if let Some(path) = &args.output {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// What an estimated run says of its columns, for standard error: the design, the
/// estimated columns, and those not estimated with why.
pub fn estimate_lines(e: &sluice_engine::session::estimate::EstimateReport) -> Vec<String> {
    use sluice_engine::session::estimate::ColumnKind;
    let mut lines = Vec::new();
    if !e.design.is_empty() {
        lines.push(format!("estimates of the full data from {}", e.design));
    }
    let bounded: Vec<&str> = e
        .columns
        .iter()
        .filter(|(_, k)| k.has_bounds())
        .map(|(c, _)| c.as_str())
        .collect();
    if !bounded.is_empty() {
        lines.push(format!(
            "  estimated, with 95% intervals (_low, _high): {}",
            bounded.join(", ")
        ));
    }
    if e.columns.iter().any(|(_, k)| *k == ColumnKind::PerUnit) {
        lines.push(
            "  every row is exact for its sampled unit; production has the other units' rows too"
                .into(),
        );
    }
    match &e.note {
        Some(note) if bounded.is_empty() => lines.push(format!("  not estimated: {note}")),
        _ => {
            for (c, why) in e.not_estimated() {
                lines.push(format!("  not estimated: {c}: {why}"));
            }
        }
    }
    lines
}
