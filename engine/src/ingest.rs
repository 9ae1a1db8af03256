//! Ingestion: CSV, NDJSON or Parquet files appended to a source as new Parquet parts,
//! checked against the source's schema. Rows that fail to parse or cast are kept out of
//! the source and written, with the reason, file and line, to the quarantine dataset
//! `_sluice/errors/<source>/` (like Airfold's `_errors`); with `strict` the whole batch
//! is refused instead. One commit for all the files and their quarantine (both datasets
//! in one `commit_together`): nothing is half-appended, no reject is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, StringBuilder, UInt64Array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Result, SluiceError};
use crate::project::SourceDef;
use crate::session::EnvSession;
use crate::store::dataset::{DatasetWriter, WriteMode, commit_together};
use crate::util::progress::{OnProgress, Progress, ProgressUnit};

pub use crate::project::system_tables::{
    ERRORS_TABLE_SUFFIX, errors_dataset, errors_schema, errors_table,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    NdJson,
    Parquet,
}

impl InputFormat {
    /// The format a file's extension says (`.csv`, `.ndjson`/`.jsonl`/`.json`, `.parquet`).
    pub fn of(path: &Path) -> Option<InputFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(InputFormat::Csv),
            "ndjson" | "jsonl" | "json" => Some(InputFormat::NdJson),
            "parquet" => Some(InputFormat::Parquet),
            _ => None,
        }
    }
}

/// A row kept out of the source.
#[derive(Debug, Clone)]
pub struct RejectedRow {
    pub file: String,
    /// 1-based line of the file (CSV, NDJSON) or row number (Parquet).
    pub line: u64,
    pub reason: String,
    /// The row as it was read.
    pub raw: String,
}

#[derive(Debug)]
pub struct IngestReport {
    pub source: String,
    pub files: usize,
    pub rows_ingested: u64,
    pub rows_rejected: u64,
    /// The first rejected rows (all of them are in the quarantine dataset).
    pub rejected_sample: Vec<RejectedRow>,
    /// The quarantine dataset, if rows were rejected.
    pub errors_location: Option<String>,
}

/// One input file turned into rows of the source's schema, and the rows refused.
struct Parsed {
    batch: Option<RecordBatch>,
    rejected: Vec<RejectedRow>,
}

/// Appends `files` to `source` in `session`'s environment. `partition` gives values of
/// the source's partition columns (`k=v/` folders) for files that do not have them.
pub async fn ingest(
    session: &EnvSession,
    source: &str,
    files: &[PathBuf],
    strict: bool,
    actor: &str,
    partition: &[(String, String)],
    progress: OnProgress<'_>,
) -> Result<IngestReport> {
    let env = session.environment().name.clone();
    let def: SourceDef = session.source_def(source).await?.ok_or_else(|| {
        SluiceError::Usage(format!(
            "unknown source `{source}` in environment `{env}`: declare it in sluice.toml ([sources.{source}])"
        ))
    })?;
    if files.is_empty() {
        return Err(SluiceError::Usage("no files to ingest".into()));
    }
    // A file named on the command line that is not there is a usage error, found before
    // anything is read or written.
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(SluiceError::Usage(format!(
            "{}: no such file to ingest",
            missing.display()
        )));
    }
    let store = session.store();
    // The source's schema: its files in this environment (a branch's parent's too).
    let (schema, partitions) = match store.list_source(&def).await {
        Ok(listing) => (listing.table_schema(), listing.partitions.clone()),
        // A source's first data: its schema is the first file's (a Parquet file's own,
        // or inferred from a CSV or NDJSON file's values).
        Err(SluiceError::MissingSource { .. }) => (infer_schema(&files[0])?, Vec::new()),
        Err(e) => return Err(e),
    };

    // Every format follows one rule for partition columns: the file has them, or
    // `--partition` gives them; a row without a value is kept out (it would land in no
    // folder of its own, where every filter on the column misses it).
    for (k, _) in partition {
        if !partitions.contains(k) {
            return Err(SluiceError::Usage(format!(
                "--partition {k}: `{k}` is not a partition column of source `{source}` ({})",
                if partitions.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("its partition columns: {}", partitions.join(", "))
                }
            )));
        }
    }
    let rules = PartitionRules {
        source: source.to_string(),
        columns: partitions.clone(),
        given: partition.iter().cloned().collect(),
    };
    let mut batches = Vec::new();
    let mut rejected = Vec::new();
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut done = 0;
    for (file, size) in files.iter().zip(&sizes) {
        progress(&Progress::new(
            format!("reading {}", file.display()),
            done,
            Some(total),
            ProgressUnit::Bytes,
        ));
        done += size;
        let format = InputFormat::of(file).ok_or_else(|| {
            SluiceError::Usage(format!(
                "{}: unknown format (expected .csv, .ndjson, .jsonl, .json or .parquet)",
                file.display()
            ))
        })?;
        let parsed = match format {
            InputFormat::Csv => parse_csv(file, &schema, &rules)?,
            InputFormat::NdJson => parse_ndjson(file, &schema, &rules)?,
            InputFormat::Parquet => parse_parquet(file, &schema, &rules)?,
        };
        batches.extend(parsed.batch);
        rejected.extend(parsed.rejected);
    }
    let rows_rejected = rejected.len() as u64;
    if strict && !rejected.is_empty() {
        let shown: Vec<String> = rejected
            .iter()
            .take(5)
            .map(|r| format!("  {}:{}: {}", r.file, r.line, r.reason))
            .collect();
        return Err(SluiceError::Source {
            env,
            source_name: source.to_string(),
            message: format!(
                "--strict: {rows_rejected} row(s) do not fit the source's schema; nothing was ingested:\n{}{}",
                shown.join("\n"),
                if rejected.len() > 5 { "\n  …" } else { "" }
            ),
        });
    }

    progress(&Progress::new(
        format!("writing {source}"),
        done,
        Some(total),
        ProgressUnit::Bytes,
    ));
    let mut rows_ingested = 0;
    let mut writer = DatasetWriter::begin(store, &def.path, &partitions, actor).await?;
    for batch in &batches {
        rows_ingested += batch.num_rows() as u64;
        writer.write(batch).await?;
    }
    let write_id = writer.write_id().to_string();
    let origin = format!("ingest {}", describe_files(files));
    let data = writer.prepare(WriteMode::Append, &origin).await?;
    // The rows and the quarantine of the rows kept out land together or not at all: a
    // kill between two commits would leave rows ingested whose rejects are recorded
    // nowhere (and a second ingest of the same files would add the rows twice).
    let errors_location = if rejected.is_empty() {
        data.commit().await?;
        None
    } else {
        let dataset = errors_dataset(source);
        let mut errors = DatasetWriter::begin(store, &dataset, &[], actor).await?;
        errors.write(&rejected_batch(&write_id, &rejected)?).await?;
        let errors = errors
            .prepare(WriteMode::Append, "ingest quarantine")
            .await?;
        commit_together(store, vec![data, errors], Vec::new(), &origin).await?;
        Some(store.describe(&dataset))
    };
    Ok(IngestReport {
        source: source.to_string(),
        files: files.len(),
        rows_ingested,
        rows_rejected,
        rejected_sample: rejected.into_iter().take(10).collect(),
        errors_location,
    })
}

/// The source's partition columns and the values `--partition` gives them.
struct PartitionRules {
    source: String,
    columns: Vec<String>,
    given: std::collections::HashMap<String, String>,
}

impl PartitionRules {
    /// Checks a file's columns against the partition columns: each must be in the file
    /// or given, not both. Returns the given values of those the file lacks.
    fn check(&self, file: &Path, has: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>> {
        let mut fill = Vec::new();
        for c in &self.columns {
            match (has(c), self.given.get(c)) {
                (true, None) => {}
                (false, Some(v)) => fill.push((c.clone(), v.clone())),
                (true, Some(_)) => {
                    return Err(SluiceError::Usage(format!(
                        "{}: has the partition column `{c}` and --partition gives it too: give one",
                        file.display()
                    )));
                }
                (false, None) => {
                    return Err(SluiceError::Usage(format!(
                        "{}: has no column `{c}`, a partition column of source `{}` (its `{c}=` folders): add it to the file, or give its value with --partition {c}=VALUE",
                        file.display(),
                        self.source
                    )));
                }
            }
        }
        Ok(fill)
    }

    /// Why a row is kept out: a partition column without a value.
    fn null_reason(&self, schema: &SchemaRef, values: &[Option<String>]) -> Option<String> {
        schema
            .fields()
            .iter()
            .zip(values)
            .find(|(f, v)| v.is_none() && self.columns.contains(f.name()))
            .map(|(f, _)| {
                format!(
                    "column `{}`: no value for a partition column (the row would land in no folder of its own)",
                    f.name()
                )
            })
    }
}

fn describe_files(files: &[PathBuf]) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    names.join(", ")
}

/// The quarantine's rows: which ingest, file, line, why, and the row as read.
fn rejected_batch(write_id: &str, rejected: &[RejectedRow]) -> Result<RecordBatch> {
    let schema = errors_schema();
    let now = crate::util::clock::now();
    let n = rejected.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![write_id; n])),
        Arc::new(StringArray::from(vec![now.as_str(); n])),
        Arc::new(StringArray::from_iter_values(
            rejected.iter().map(|r| r.file.as_str()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rejected.iter().map(|r| r.line),
        )),
        Arc::new(StringArray::from_iter_values(
            rejected.iter().map(|r| r.reason.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rejected.iter().map(|r| r.raw.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn io_error(file: &Path, e: impl std::fmt::Display) -> SluiceError {
    SluiceError::io(file, std::io::Error::other(e.to_string()))
}

/// Rows read to infer the schema of a CSV or NDJSON file that starts a source.
const INFER_ROWS: usize = 10_000;

/// The schema a source's first file gives it: a Parquet file's own; for CSV (header
/// names) and NDJSON (keys), the types arrow infers from the first rows' values
/// (integers, floats, booleans, dates, timestamps, else strings), every column nullable.
fn infer_schema(file: &Path) -> Result<SchemaRef> {
    let format = InputFormat::of(file).ok_or_else(|| {
        SluiceError::Usage(format!(
            "{}: unknown format (expected .csv, .ndjson, .jsonl, .json or .parquet)",
            file.display()
        ))
    })?;
    let open = || std::fs::File::open(file).map_err(|e| SluiceError::io(file, e));
    let inferred = match format {
        InputFormat::Parquet => return parquet_schema(file),
        InputFormat::Csv => {
            datafusion::arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(open()?, Some(INFER_ROWS))
                .map_err(|e| io_error(file, format!("cannot infer its columns: {e}")))?
                .0
        }
        InputFormat::NdJson => {
            let reader = std::io::BufReader::new(open()?);
            datafusion::arrow::json::reader::infer_json_schema(reader, Some(INFER_ROWS))
                .map_err(|e| io_error(file, format!("cannot infer its columns: {e}")))?
                .0
        }
    };
    let mut fields = Vec::with_capacity(inferred.fields().len());
    for f in inferred.fields() {
        let name = f.name().trim();
        if name.is_empty() {
            return Err(SluiceError::Usage(format!(
                "{}:1: a column has no name",
                file.display()
            )));
        }
        if fields
            .iter()
            .any(|g: &datafusion::arrow::datatypes::Field| g.name() == name)
        {
            return Err(SluiceError::Usage(format!(
                "{}:1: column `{name}` appears twice",
                file.display()
            )));
        }
        // Columns of no value yet, and nested values, are kept as text.
        let ty = match f.data_type() {
            t if t.is_primitive() || matches!(t, DataType::Boolean | DataType::Utf8) => t.clone(),
            _ => DataType::Utf8,
        };
        fields.push(datafusion::arrow::datatypes::Field::new(name, ty, true));
    }
    if fields.is_empty() {
        return Err(SluiceError::Usage(format!(
            "{}: has no columns",
            file.display()
        )));
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn parquet_schema(file: &Path) -> Result<SchemaRef> {
    let f = std::fs::File::open(file).map_err(|e| SluiceError::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| io_error(file, e))?;
    Ok(Arc::new(Schema::new(builder.schema().fields().clone())))
}

/// Rows read as text, one column per field of the schema (`None`: null), with the line
/// each came from and its raw text; cast to the schema together.
struct TextRows {
    columns: Vec<StringBuilder>,
    lines: Vec<u64>,
    raws: Vec<String>,
}

impl TextRows {
    fn new(width: usize) -> TextRows {
        TextRows {
            columns: (0..width).map(|_| StringBuilder::new()).collect(),
            lines: Vec::new(),
            raws: Vec::new(),
        }
    }

    fn push(&mut self, values: Vec<Option<String>>, line: u64, raw: String) {
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.append_option(v);
        }
        self.lines.push(line);
        self.raws.push(raw);
    }

    /// Casts every column to the schema; a row with a value that does not cast (or a
    /// null in a column that takes none) is rejected.
    fn finish(
        mut self,
        file: &Path,
        schema: &SchemaRef,
        mut rejected: Vec<RejectedRow>,
    ) -> Result<Parsed> {
        let text: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let cast_rows = |arrays: &[ArrayRef]| -> Result<(Vec<ArrayRef>, Vec<Option<String>>)> {
            cast_checked(arrays, schema)
        };
        let (columns, reasons) = cast_rows(&text)?;
        let keep: Vec<bool> = reasons.iter().map(Option::is_none).collect();
        for (i, reason) in reasons.into_iter().enumerate() {
            if let Some(reason) = reason {
                rejected.push(RejectedRow {
                    file: file.display().to_string(),
                    line: self.lines[i],
                    reason,
                    raw: std::mem::take(&mut self.raws[i]),
                });
            }
        }
        Ok(Parsed {
            batch: filter_rows(schema, columns, &keep)?,
            rejected,
        })
    }
}

/// Casts columns to the schema's types and says, per row, why it does not fit (if not).
fn cast_checked(
    arrays: &[ArrayRef],
    schema: &SchemaRef,
) -> Result<(Vec<ArrayRef>, Vec<Option<String>>)> {
    let rows = arrays.first().map(|a| a.len()).unwrap_or(0);
    let mut reasons: Vec<Option<String>> = vec![None; rows];
    let mut out = Vec::with_capacity(arrays.len());
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let fmt = FormatOptions::default();
    for (array, field) in arrays.iter().zip(schema.fields()) {
        let cast = cast_with_options(array, field.data_type(), &safe)?;
        let shown = ArrayFormatter::try_new(array.as_ref(), &fmt)?;
        for row in 0..rows {
            if reasons[row].is_some() {
                continue;
            }
            if cast.is_null(row) && !array.is_null(row) {
                reasons[row] = Some(format!(
                    "column `{}`: `{}` is not a valid {}",
                    field.name(),
                    shown.value(row),
                    field.data_type()
                ));
            } else if cast.is_null(row) && !field.is_nullable() {
                reasons[row] = Some(format!(
                    "column `{}`: null in a column that takes none",
                    field.name()
                ));
            }
        }
        out.push(cast);
    }
    Ok((out, reasons))
}

fn filter_rows(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    keep: &[bool],
) -> Result<Option<RecordBatch>> {
    if !keep.iter().any(|k| *k) {
        return Ok(None);
    }
    let mask = datafusion::arrow::array::BooleanArray::from(keep.to_vec());
    let columns = columns
        .iter()
        .map(|c| datafusion::arrow::compute::filter(c.as_ref(), &mask))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ));
    Ok(Some(RecordBatch::try_new(schema, columns)?))
}

/// The header must name the schema's columns (in any order, no others).
fn parse_csv(file: &Path, schema: &SchemaRef, rules: &PartitionRules) -> Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .map_err(|e| io_error(file, e))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| io_error(file, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let fill = rules.check(file, |c| header.iter().any(|h| h == c))?;
    // Each column's place in a record, or the value `--partition` gives it.
    let mut positions: Vec<Result<usize, String>> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        if let Some((_, v)) = fill.iter().find(|(c, _)| c == field.name()) {
            positions.push(Err(v.clone()));
            continue;
        }
        let pos = header
            .iter()
            .position(|h| h == field.name())
            .ok_or_else(|| {
                SluiceError::Usage(format!(
                    "{}:1: the header has no column `{}` (the source's columns: {})",
                    file.display(),
                    field.name(),
                    column_list(schema)
                ))
            })?;
        positions.push(Ok(pos));
    }
    if let Some(extra) = header.iter().find(|h| schema.field_with_name(h).is_err()) {
        return Err(SluiceError::Usage(format!(
            "{}:1: column `{extra}` is not a column of the source (its columns: {})",
            file.display(),
            column_list(schema)
        )));
    }
    let mut rows = TextRows::new(schema.fields().len());
    let mut rejected = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                rejected.push(RejectedRow {
                    file: file.display().to_string(),
                    line,
                    reason: e.to_string(),
                    raw: String::new(),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let raw = record.iter().collect::<Vec<_>>().join(",");
        if record.len() != header.len() {
            rejected.push(RejectedRow {
                file: file.display().to_string(),
                line,
                reason: format!("{} fields, the header has {}", record.len(), header.len()),
                raw,
            });
            continue;
        }
        // An empty field is null, as most CSV writers mean it.
        let values: Vec<Option<String>> = positions
            .iter()
            .map(|p| match p {
                Ok(p) => Some(record[*p].to_string()).filter(|v| !v.is_empty()),
                Err(given) => Some(given.clone()),
            })
            .collect();
        if let Some(reason) = rules.null_reason(schema, &values) {
            rejected.push(RejectedRow {
                file: file.display().to_string(),
                line,
                reason,
                raw,
            });
            continue;
        }
        rows.push(values, line, raw);
    }
    rows.finish(file, schema, rejected)
}

/// One JSON object per line; keys not in the schema are ignored, missing keys are null.
fn parse_ndjson(file: &Path, schema: &SchemaRef, rules: &PartitionRules) -> Result<Parsed> {
    let text = std::fs::read_to_string(file).map_err(|e| SluiceError::io(file, e))?;
    // A partition column is in the file when some line has its key.
    let fill = rules.check(file, |c| {
        let needle = format!("\"{c}\"");
        text.lines().any(|l| {
            l.contains(&needle)
                && serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .is_some_and(|v| v.get(c).is_some())
        })
    })?;
    let mut rows = TextRows::new(schema.fields().len());
    let mut rejected = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let reject = |reason: String| RejectedRow {
            file: file.display().to_string(),
            line: line_no,
            reason,
            raw: line.to_string(),
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                rejected.push(reject(format!("not valid JSON: {e}")));
                continue;
            }
        };
        let Some(object) = value.as_object() else {
            rejected.push(reject("not a JSON object".into()));
            continue;
        };
        let mut values = Vec::with_capacity(schema.fields().len());
        let mut bad = None;
        for field in schema.fields() {
            if let Some((_, v)) = fill.iter().find(|(c, _)| c == field.name()) {
                values.push(Some(v.clone()));
                continue;
            }
            match object.get(field.name()) {
                None | Some(serde_json::Value::Null) => values.push(None),
                Some(serde_json::Value::String(s)) => values.push(Some(s.clone())),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    values.push(Some(v.to_string()))
                }
                Some(v) if field.data_type() == &DataType::Utf8 => values.push(Some(v.to_string())),
                Some(_) => {
                    bad = Some(format!(
                        "column `{}`: a nested value where a {} is expected",
                        field.name(),
                        field.data_type()
                    ));
                    break;
                }
            }
        }
        match bad.or_else(|| rules.null_reason(schema, &values)) {
            Some(reason) => rejected.push(reject(reason)),
            None => rows.push(values, line_no, line.to_string()),
        }
    }
    rows.finish(file, schema, rejected)
}

/// A Parquet file's columns must be the source's (by name); values are cast to the
/// source's types, and rows whose values do not cast are rejected.
fn parse_parquet(file: &Path, schema: &SchemaRef, rules: &PartitionRules) -> Result<Parsed> {
    let f = std::fs::File::open(file).map_err(|e| SluiceError::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| io_error(file, format!("not a valid Parquet file: {e}")))?;
    let file_schema = builder.schema().clone();
    let fill = rules.check(file, |c| file_schema.field_with_name(c).is_ok())?;
    let reader = builder.build().map_err(|e| io_error(file, e))?;
    let mut batches = Vec::new();
    let mut rejected = Vec::new();
    let mut row_base = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| io_error(file, e))?;
        let mut arrays = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            if let Some((_, v)) = fill.iter().find(|(c, _)| c == field.name()) {
                arrays.push(
                    Arc::new(StringArray::from(vec![v.as_str(); batch.num_rows()])) as ArrayRef,
                );
                continue;
            }
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                SluiceError::Usage(format!(
                    "{}: has no column `{}` (the source's columns: {})",
                    file.display(),
                    field.name(),
                    column_list(schema)
                ))
            })?;
            arrays.push(column.clone());
        }
        if let Some(extra) = batch
            .schema()
            .fields()
            .iter()
            .find(|f| schema.field_with_name(f.name()).is_err())
        {
            return Err(SluiceError::Usage(format!(
                "{}: column `{}` is not a column of the source (its columns: {})",
                file.display(),
                extra.name(),
                column_list(schema)
            )));
        }
        let (columns, mut reasons) = cast_checked(&arrays, schema)?;
        // A partition column's nulls are kept out, as in every format.
        for (field, column) in schema.fields().iter().zip(&columns) {
            if rules.columns.contains(field.name()) {
                for (row, reason) in reasons.iter_mut().enumerate() {
                    if reason.is_none() && column.is_null(row) {
                        *reason = Some(format!(
                            "column `{}`: no value for a partition column (the row would land in no folder of its own)",
                            field.name()
                        ));
                    }
                }
            }
        }
        let keep: Vec<bool> = reasons.iter().map(Option::is_none).collect();
        for (i, reason) in reasons.into_iter().enumerate() {
            if let Some(reason) = reason {
                rejected.push(RejectedRow {
                    file: file.display().to_string(),
                    line: row_base + i as u64 + 1,
                    reason,
                    raw: row_text(&batch, i),
                });
            }
        }
        row_base += batch.num_rows() as u64;
        batches.extend(filter_rows(schema, columns, &keep)?);
    }
    let batch = if batches.is_empty() {
        None
    } else {
        Some(datafusion::arrow::compute::concat_batches(
            &batches[0].schema(),
            &batches,
        )?)
    };
    Ok(Parsed { batch, rejected })
}

fn row_text(batch: &RecordBatch, row: usize) -> String {
    let fmt = FormatOptions::default();
    batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(c, f)| {
            let v = ArrayFormatter::try_new(c.as_ref(), &fmt)
                .map(|x| x.value(row).to_string())
                .unwrap_or_default();
            format!("{}={v}", f.name())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
