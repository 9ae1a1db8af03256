//! Materialized pipes: a pipe's output written as a dataset of the store it ran in
//! (`materialize = { to, mode, partition_by }`), committed atomically (see
//! `store::dataset`). The dataset is then a source like any other, sampled like any
//! other.

use futures::StreamExt;

use crate::error::{Result, SluiceError};
use crate::session::EnvSession;
use crate::session::report::RunReport;
use crate::store::dataset::{DatasetWriter, Manifest, WriteMode};
use crate::util::progress::{OnProgress, Progress, ProgressUnit};

/// What a materialization wrote.
#[derive(Debug)]
pub struct MaterializeReport {
    pub pipe: String,
    pub dataset: String,
    pub mode: WriteMode,
    /// The dataset as a user knows it: a local path or a URL.
    pub location: String,
    pub manifest: Manifest,
    /// Rows and bytes this write added.
    pub rows_written: u64,
    pub bytes_written: u64,
    /// Rows and files readers now see: the manifest's, plus a branch parent's files an
    /// append builds on.
    pub dataset_rows: u64,
    pub dataset_files: usize,
    pub run: RunReport,
}

/// Runs `pipe` as `session`'s environment runs it (deployed versions in a protected
/// environment) and writes its output as the pipe's dataset. A failed run leaves the
/// dataset as it was.
pub async fn materialize(
    session: &EnvSession,
    pipe: &str,
    params: &[(String, String)],
    deployed: bool,
    actor: &str,
    progress: OnProgress<'_>,
) -> Result<MaterializeReport> {
    let def = session.resolve_pipe(pipe, deployed).await?;
    let env = &session.environment().name;
    let target = def.materialize.clone().ok_or_else(|| {
        SluiceError::Usage(format!(
            "pipe `{pipe}` has no `materialize = {{ to = \"NAME\" }}` in {} (as {env} runs it)",
            def.file.display()
        ))
    })?;
    let store = session.store();
    let mut run = session.stream_pipe_def(&def, params).await?;
    let schema = run.stream.schema();
    for column in &target.partition_by {
        if schema.field_with_name(column).is_err() {
            return Err(SluiceError::Usage(format!(
                "pipe `{pipe}`: materialize partition_by column `{column}` is not a column of its output"
            )));
        }
    }
    if store.owns(&target.to).await? {
        // A folder of Parquet files Sluice did not write (no dataset manifest) is data
        // brought from elsewhere, like a declared source: replaced only when the pipe
        // says so.
        let managed = crate::store::dataset::read_manifest(store, &target.to)
            .await?
            .is_some();
        if !managed && !target.replace_source {
            return Err(SluiceError::Usage(format!(
                "pipe `{pipe}`: materialize `to = \"{}\"` names {}, a folder of files Sluice did not write: a run would replace them; write to a dataset of its own, or set `replace_source = true` in `materialize` if it is meant to",
                target.to,
                store.describe(&target.to)
            )));
        }
        if target.mode == WriteMode::Append || target.replace_source {
            check_same_columns(session, pipe, &target.to, &target.partition_by, &schema).await?;
        }
    }
    let mut writer = DatasetWriter::begin(store, &target.to, &target.partition_by, actor).await?;
    let mut rows = 0u64;
    while let Some(batch) = run.stream.next().await {
        let batch = batch.map_err(|e| run.error(e))?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).await?;
        progress(&Progress::new(
            format!("writing {}", target.to),
            rows,
            None,
            ProgressUnit::Rows,
        ));
    }
    let write_id = writer.write_id().to_string();
    let version = crate::project::version_of(&def.text).unwrap_or_default();
    let manifest = writer
        .commit(target.mode, &format!("materialize {pipe}@{version}"))
        .await?;
    let bytes_written = manifest
        .files
        .iter()
        .filter(|f| f.path.contains(&write_id))
        .map(|f| f.bytes)
        .sum();
    let (dataset_rows, dataset_files) = if manifest.include_parent {
        let listing = session.list_source(&target.to).await?;
        (listing.rows(), listing.files.len())
    } else {
        (manifest.rows(), manifest.files.len())
    };
    Ok(MaterializeReport {
        dataset_rows,
        dataset_files,
        pipe: pipe.to_string(),
        location: store.describe(&target.to),
        dataset: target.to,
        mode: target.mode,
        manifest,
        rows_written: rows,
        bytes_written,
        run: run.report(rows),
    })
}

/// An append, or a write over a source, must bring the columns the dataset has, of the
/// same types.
async fn check_same_columns(
    session: &EnvSession,
    pipe: &str,
    dataset: &str,
    partition_by: &[String],
    output: &datafusion::arrow::datatypes::Schema,
) -> Result<()> {
    let def = crate::project::SourceDef {
        name: dataset.to_string(),
        path: dataset.to_string(),
        sample_key: None,
        sample: None,
        sort: Vec::new(),
    };
    let existing = session.store().list_source(&def).await?;
    let out: Vec<(&String, &datafusion::arrow::datatypes::DataType)> = output
        .fields()
        .iter()
        .filter(|f| !partition_by.contains(f.name()))
        .map(|f| (f.name(), f.data_type()))
        .collect();
    let have: Vec<(&String, &datafusion::arrow::datatypes::DataType)> = existing
        .file_schema
        .fields()
        .iter()
        .map(|f| (f.name(), f.data_type()))
        .collect();
    if out != have {
        let show = |cols: &[(&String, &datafusion::arrow::datatypes::DataType)]| {
            cols.iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(SluiceError::Usage(format!(
            "pipe `{pipe}` cannot write to dataset `{dataset}` in environment `{}`: its output has columns ({}) but the dataset has ({}); an append or a write over a source must keep its columns (change the pipe, or use mode = \"replace\" on a dataset of its own)",
            session.environment().name,
            show(&out),
            show(&have)
        )));
    }
    Ok(())
}
