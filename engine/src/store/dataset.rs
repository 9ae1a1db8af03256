//! Datasets Sluice writes (materialized pipes, ingested parts, sample builds), atomic on
//! any store:
//!
//! ```text
//! <source>/_parts/<write id>/[k=v/]part-N.parquet   files of each write, never changed
//! <source>/_sluice_dataset.json                     the manifest: the committed files
//! ```
//!
//! A write puts its files under a new write id, then replaces the manifest in one put:
//! the commit point. Readers take the manifest's files, so they see the old dataset or
//! the new one. A write killed before its commit leaves files no manifest names; the
//! next write of the dataset deletes them. Files of the previous manifest are kept one
//! more write, so a run that listed them just before a commit still finds them. One
//! write at a time per dataset, under a lock in `_sluice/locks/`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};
use crate::store::lock::StoreLock;
use crate::store::{STATE_DIR, Store, is_data_file};

/// The manifest of a dataset, in the dataset's folder.
pub const MANIFEST: &str = "_sluice_dataset.json";
/// Where each write puts its files, in the dataset's folder.
pub const PARTS_DIR: &str = "_parts";
/// The value written for a null partition key, as Hive and Spark do.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Rows per row group: small enough that a `system` sample can pick row groups, large
/// enough that statistics and compression pay.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Row groups per file before a write starts the next one.
pub const FILE_ROW_GROUPS: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Increases by one with each commit.
    pub version: u64,
    pub write_id: String,
    pub committed_at: String,
    /// `replace`, `append`.
    pub mode: String,
    /// What wrote it: `materialize top_reps@1a2b3c`, `ingest`, `sample build`.
    pub origin: String,
    /// A branch's dataset that appended to its parent's: the parent's files come first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_parent: bool,
    /// The key sample this commit wrote, if a sample build did (see `sample::over_build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<BuiltSample>,
    pub files: Vec<ManifestFile>,
}

/// What a sample build kept of a source: the rows whose `key` hash with `seed` falls
/// under `fraction`, of environment `from`'s data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuiltSample {
    pub from: String,
    pub key: String,
    pub fraction: f64,
    pub seed: u64,
    /// The heavy keys the build kept whole (each with at least 1% of the source's rows
    /// in `from`), as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heavy_keys: Vec<String>,
    /// The rows the source had in `from` when the build read it: the total estimates of
    /// `from` are calibrated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_rows: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    /// Relative to the dataset's folder.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

impl Manifest {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

pub use crate::project::WriteMode;

fn manifest_path(dataset: &str) -> String {
    format!("{dataset}/{MANIFEST}")
}

/// The committed manifest of a dataset, if it is one.
pub async fn read_manifest(store: &Store, dataset: &str) -> Result<Option<Manifest>> {
    let path = manifest_path(dataset);
    let Some(bytes) = store.get(&path).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SluiceError::State {
            env: store.env().to_string(),
            message: format!(
                "{} is corrupted: {e}; restore it from a backup",
                store.describe(&path)
            ),
        })
}

/// The properties of every Parquet file Sluice writes: zstd, page-level statistics
/// (and so a page index), row groups a sample can pick from.
pub fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("zstd level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build()
}

/// One write of a dataset: files first, then the commit. Holds the dataset's lock
/// from start to end, so no other write's cleanup can take its files.
pub struct DatasetWriter<'a> {
    store: &'a Store,
    dataset: String,
    write_id: String,
    partition_by: Vec<String>,
    /// The schema of the files (without partition columns).
    file_schema: Option<SchemaRef>,
    open: BTreeMap<Vec<String>, OpenFile>,
    written: Vec<ManifestFile>,
    next_file: usize,
    row_group_rows: usize,
    sample: Option<BuiltSample>,
    _lock: StoreLock,
}

struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
}

impl<'a> DatasetWriter<'a> {
    /// Starts a write of `dataset` (the folder under the store's root), partitioned
    /// into `k=v/` folders by `partition_by`.
    pub async fn begin(
        store: &'a Store,
        dataset: &str,
        partition_by: &[String],
        actor: &str,
    ) -> Result<DatasetWriter<'a>> {
        let lock_path = format!("{STATE_DIR}/locks/{}.lock", dataset.replace('/', "~"));
        let lock = StoreLock::acquire(store, &lock_path, actor)
            .await?
            .map_err(|h| SluiceError::DatasetLocked {
                env: store.env().to_string(),
                dataset: dataset.to_string(),
                holder: h.description,
                path: h.location,
            })?;
        let write_id = format!(
            "{}-{:08x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            rand_u32()
        );
        Ok(DatasetWriter {
            store,
            dataset: dataset.to_string(),
            write_id,
            partition_by: partition_by.to_vec(),
            file_schema: None,
            open: BTreeMap::new(),
            written: Vec::new(),
            next_file: 0,
            row_group_rows: ROW_GROUP_ROWS,
            sample: None,
            _lock: lock,
        })
    }

    /// Records in the commit that its rows are a key sample (a replace only: rows
    /// appended later make the dataset something else).
    pub fn built_sample(mut self, sample: BuiltSample) -> Self {
        self.sample = Some(sample);
        self
    }

    /// Writes row groups of `rows` rows (and files of 8 of them).
    pub fn row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    pub fn write_id(&self) -> &str {
        &self.write_id
    }

    fn error(&self, message: impl Into<String>) -> SluiceError {
        SluiceError::Source {
            env: self.store.env().to_string(),
            source_name: self.dataset.clone(),
            message: message.into(),
        }
    }

    /// Adds rows; files are put in the store as they fill up.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            self.ensure_schema(batch.schema())?;
            return Ok(());
        }
        if self.partition_by.is_empty() {
            self.ensure_schema(batch.schema())?;
            return self.write_part(Vec::new(), batch.clone()).await;
        }
        let schema = batch.schema();
        let mut keys: Vec<ArrayRef> = Vec::new();
        for column in &self.partition_by {
            let i = schema.index_of(column).map_err(|_| {
                self.error(format!(
                    "partition column `{column}` is not a column of the output"
                ))
            })?;
            let text = cast(batch.column(i), &DataType::Utf8)
                .map_err(|e| self.error(format!("partition column `{column}`: {e}")))?;
            keys.push(text);
        }
        let data_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !self.partition_by.contains(schema.field(*i).name()))
            .collect();
        let data_schema = Arc::new(schema.project(&data_columns)?);
        self.ensure_schema(data_schema.clone())?;
        let mut groups: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let key = keys
                .iter()
                .map(|k| {
                    let k = k.as_any().downcast_ref::<StringArray>().expect("utf8");
                    if k.is_null(row) {
                        NULL_PARTITION.to_string()
                    } else {
                        k.value(row).to_string()
                    }
                })
                .collect();
            groups.entry(key).or_default().push(row as u32);
        }
        let data = batch.project(&data_columns)?;
        for (key, rows) in groups {
            let indices = UInt32Array::from(rows);
            let columns = data
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let part = RecordBatch::try_new(data_schema.clone(), columns)?;
            self.write_part(key, part).await?;
        }
        Ok(())
    }

    fn ensure_schema(&mut self, schema: SchemaRef) -> Result<()> {
        match &self.file_schema {
            None => {
                self.file_schema = Some(schema);
                Ok(())
            }
            Some(s) if s.fields() == schema.fields() => Ok(()),
            Some(s) => Err(self.error(format!(
                "rows of a different schema in one write: {s:?} then {schema:?}"
            ))),
        }
    }

    async fn write_part(&mut self, key: Vec<String>, batch: RecordBatch) -> Result<()> {
        if !self.open.contains_key(&key) {
            let props = writer_properties(self.row_group_rows);
            let writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
            self.open.insert(key.clone(), OpenFile { writer, rows: 0 });
        }
        let file = self.open.get_mut(&key).expect("opened");
        file.writer.write(&batch)?;
        file.rows += batch.num_rows();
        if file.rows >= FILE_ROW_GROUPS * self.row_group_rows {
            let file = self.open.remove(&key).expect("opened");
            self.put_file(key, file).await?;
        }
        Ok(())
    }

    async fn put_file(&mut self, key: Vec<String>, file: OpenFile) -> Result<()> {
        let bytes = file.writer.into_inner()?;
        let mut path = format!("{PARTS_DIR}/{}", self.write_id);
        for (column, value) in self.partition_by.iter().zip(&key) {
            path.push_str(&format!("/{column}={}", encode_value(value)));
        }
        path.push_str(&format!("/part-{:05}.parquet", self.next_file));
        self.next_file += 1;
        let size = bytes.len() as u64;
        self.store
            .put(&format!("{}/{path}", self.dataset), Bytes::from(bytes))
            .await?;
        self.written.push(ManifestFile {
            path,
            rows: file.rows as u64,
            bytes: size,
        });
        Ok(())
    }

    /// Puts the last files and commits them: replacing the dataset, or added to it. A
    /// write of no rows commits one empty file, so the dataset reads as empty.
    pub async fn commit(mut self, mode: WriteMode, origin: &str) -> Result<Manifest> {
        for (key, file) in std::mem::take(&mut self.open) {
            self.put_file(key, file).await?;
        }
        if self.written.is_empty() {
            let schema = self
                .file_schema
                .clone()
                .unwrap_or_else(|| Arc::new(Schema::empty()));
            let props = writer_properties(self.row_group_rows);
            let writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
            self.put_file(Vec::new(), OpenFile { writer, rows: 0 })
                .await?;
        }
        let previous = read_manifest(self.store, &self.dataset).await?;
        let mut files = Vec::new();
        let mut include_parent = false;
        if mode == WriteMode::Append {
            match &previous {
                Some(m) => {
                    include_parent = m.include_parent;
                    files.extend(m.files.iter().cloned());
                }
                // A plain folder becomes a dataset: its files stay, listed.
                None => {
                    // In a branch, a source it has not written yet is its parent's.
                    if let Some(parent) = self.store.parent() {
                        include_parent = !self.store.owns(&self.dataset).await?
                            && parent.owns(&self.dataset).await?;
                    }
                    for (rel, meta) in self.store.list(&self.dataset).await? {
                        if is_data_file(&rel) {
                            let rows = match self.store.footer(&meta).await {
                                Ok(m) => m.file_metadata().num_rows() as u64,
                                Err(e) => {
                                    return Err(self.error(format!(
                                        "{} is not a valid Parquet file: {e}",
                                        self.store.describe(&format!("{}/{rel}", self.dataset))
                                    )));
                                }
                            };
                            files.push(ManifestFile {
                                path: rel,
                                rows,
                                bytes: meta.size,
                            });
                        }
                    }
                }
            }
        }
        files.extend(self.written.iter().cloned());
        let manifest = Manifest {
            version: previous.as_ref().map(|m| m.version).unwrap_or(0) + 1,
            write_id: self.write_id.clone(),
            committed_at: crate::util::clock::now(),
            mode: mode.as_str().into(),
            origin: origin.into(),
            include_parent,
            sample: self.sample.take().filter(|_| mode == WriteMode::Replace),
            files,
        };
        crate::util::failpoint::hit("dataset:before_commit");
        self.store
            .put(
                &manifest_path(&self.dataset),
                Bytes::from(serde_json::to_vec_pretty(&manifest).expect("manifest serializes")),
            )
            .await?;
        crate::util::failpoint::hit("dataset:after_commit");
        self.collect_garbage(&manifest, previous.as_ref()).await?;
        Ok(manifest)
    }

    /// Deletes files of earlier writes that neither this manifest nor the previous one
    /// names: writes killed before their commit, and data two writes old.
    async fn collect_garbage(&self, current: &Manifest, previous: Option<&Manifest>) -> Result<()> {
        let keep: BTreeSet<&str> = current
            .files
            .iter()
            .chain(previous.into_iter().flat_map(|m| m.files.iter()))
            .map(|f| f.path.as_str())
            .collect();
        let parts = format!("{}/{PARTS_DIR}", self.dataset);
        for (rel, _) in self.store.list(&parts).await? {
            let path = format!("{PARTS_DIR}/{rel}");
            if !keep.contains(path.as_str()) {
                self.store
                    .delete(&format!("{}/{path}", self.dataset))
                    .await?;
            }
        }
        Ok(())
    }
}

/// A partition value as a folder name: `/` and `%` escaped so it stays one folder.
fn encode_value(value: &str) -> String {
    value.replace('%', "%25").replace('/', "%2F")
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}
