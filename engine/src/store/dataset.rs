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
//! next write of the dataset deletes them. A write that fails (an error, not a kill)
//! deletes its own files, so the store is left exactly as it was. Files of the previous
//! manifest are kept one more write, so a run that listed them just before a commit
//! still finds them. One write at a time per dataset, under a lock in `_sluice/locks/`.
//!
//! Writes that must land together (a sample build's sources, an ingest and its
//! quarantine) are committed by `commit_together`, with one commit point for all:
//!
//! ```text
//! <object>.pending                 each new manifest (or record), naming its commit
//! _sluice/commits/<commit id>.json the commit point: created once every pending is in place
//! ```
//!
//! then each pending content is put in place and its `.pending` removed, then the commit
//! file. A reader that finds a `.pending` reads it when its commit file exists, else the
//! object; so a kill before the commit point leaves the old state for every reader, and
//! one after it the new state, whatever was applied. The next write of any dataset of a
//! killed commit settles it: applies what is pending if the commit file exists, drops it
//! if not, then deletes the commit file (`resolve_pending`, `settle_killed_commits`).
//! After the commit point nothing fails the change: a step that fails then is logged and
//! left to the next write.

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
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};
use crate::store::lock::StoreLock;
use crate::store::{STATE_DIR, Store, is_data_file};

/// The manifest of a dataset, in the dataset's folder.
pub const MANIFEST: &str = "_sluice_dataset.json";
/// A manifest waiting for the commit point of a commit of several datasets.
pub const MANIFEST_PENDING: &str = "_sluice_dataset.json.pending";
/// Where each write puts its files, in the dataset's folder.
pub const PARTS_DIR: &str = "_parts";
/// Next to an object, its new content in a commit of several objects (`commit_together`).
pub const PENDING_SUFFIX: &str = ".pending";
/// The commit points of commits of several objects, one file each.
pub const COMMITS_DIR: &str = "_sluice/commits";
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
    read_manifest_listed(store, dataset, None).await
}

/// The committed manifest of a dataset; `pending` says whether a listing of its folder
/// showed a pending manifest (`None`: look for one), so a reader that listed the folder
/// pays no extra request.
pub async fn read_manifest_listed(
    store: &Store,
    dataset: &str,
    pending: Option<bool>,
) -> Result<Option<Manifest>> {
    let path = manifest_path(dataset);
    let Some(bytes) = read_committed(store, &path, pending).await? else {
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

/// A pending new content of an object, written by `commit_together`.
#[derive(Debug, Serialize, Deserialize)]
struct PendingObject {
    commit: String,
    content: String,
    /// Every object of the commit, this one included.
    #[serde(default)]
    objects: Vec<String>,
}

/// The commit point of a commit of several objects.
#[derive(Debug, Serialize, Deserialize)]
struct CommitRecord {
    origin: String,
    at: String,
    /// The objects it replaces (each has, until applied, a `.pending` next to it).
    objects: Vec<String>,
}

fn pending_path(relative: &str) -> String {
    format!("{relative}{PENDING_SUFFIX}")
}

fn commit_path(id: &str) -> String {
    format!("{COMMITS_DIR}/{id}.json")
}

async fn read_pending(store: &Store, relative: &str) -> Result<Option<PendingObject>> {
    let path = pending_path(relative);
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

/// The content of `relative` as committed: its pending content when the commit that
/// wrote it has taken place, else the object itself. `pending`: whether a listing showed
/// a pending version (`None`: look for one).
pub async fn read_committed(
    store: &Store,
    relative: &str,
    pending: Option<bool>,
) -> Result<Option<Bytes>> {
    if pending != Some(false)
        && let Some(p) = read_pending(store, relative).await?
        && store.get(&commit_path(&p.commit)).await?.is_some()
    {
        return Ok(Some(Bytes::from(p.content)));
    }
    // No pending, or one of a commit that has not taken place (yet, or ever): the object.
    // A pending applied and removed since it was read has put the same content here.
    store.get(relative).await
}

/// Applies what a killed `commit_together` left pending for `relative`, and for the
/// other objects of the same commit: their contents when the commit took place, nothing
/// when it did not. Called under the lock of `relative`'s dataset (or of one dataset of
/// the commit), so the commit that left it is dead; another dataset of the commit is
/// settled under its own lock when that can be taken now, else by its next writer.
pub async fn resolve_pending(store: &Store, relative: &str, actor: &str) -> Result<()> {
    let Some(p) = read_pending(store, relative).await? else {
        return Ok(());
    };
    let commit = commit_path(&p.commit);
    let record = store.get(&commit).await?;
    let committed = record.is_some();
    settle(store, relative, &p.commit, committed).await?;
    for other in p.objects.iter().filter(|o| o.as_str() != relative) {
        let _lock = match other.strip_suffix(&format!("/{MANIFEST}")) {
            Some(dataset) => match StoreLock::acquire(store, &lock_path(dataset), actor).await? {
                Ok(lock) => Some(lock),
                Err(_) => continue,
            },
            // A state record (a sample build's): written only under its commit's dataset
            // locks, one of which the caller holds.
            None => None,
        };
        settle(store, other, &p.commit, committed).await?;
    }
    if let Some(record) = record {
        forget_commit_if_applied(store, &commit, &record).await?;
    }
    Ok(())
}

/// Applies (committed) or drops (not) the pending version of `relative` if it is of
/// commit `id`.
async fn settle(store: &Store, relative: &str, id: &str, committed: bool) -> Result<()> {
    let Some(p) = read_pending(store, relative).await? else {
        return Ok(());
    };
    if p.commit != id {
        return Ok(());
    }
    if committed {
        store.put(relative, Bytes::from(p.content)).await?;
    }
    // Applied, or of a commit that never took place (its files are garbage the next
    // commit of the dataset deletes).
    store.delete(&pending_path(relative)).await
}

/// The lock held by each write of a dataset.
fn lock_path(dataset: &str) -> String {
    format!("{STATE_DIR}/locks/{}.lock", dataset.replace('/', "~"))
}

/// Deletes a commit file once none of its objects has a pending version left. Pending
/// versions are only ever created before their commit file, so none can appear after
/// this check and find its commit gone.
async fn forget_commit_if_applied(store: &Store, commit: &str, record: &[u8]) -> Result<()> {
    let Ok(record) = serde_json::from_slice::<CommitRecord>(record) else {
        return Ok(());
    };
    for object in &record.objects {
        if store.get(&pending_path(object)).await?.is_some() {
            return Ok(());
        }
    }
    store.delete(commit).await
}

/// Settles the commits of several objects that were killed after their commit point:
/// each commit file names its objects; those still pending are applied, each under its
/// dataset's lock when that can be taken now (`own`, the caller's dataset, is already
/// settled under the caller's lock), and a commit file with nothing pending left is
/// deleted. A state record is applied only by a writer of one of its commit's datasets:
/// the locks it holds are what keeps a newer commit from replacing the record meanwhile.
async fn settle_killed_commits(store: &Store, own: &str, actor: &str) -> Result<()> {
    for (rel, _) in store.list(COMMITS_DIR).await? {
        let Some(id) = rel.strip_suffix(".json") else {
            continue;
        };
        let path = format!("{COMMITS_DIR}/{rel}");
        let Some(bytes) = store.get(&path).await? else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<CommitRecord>(&bytes) else {
            continue;
        };
        let ours = record.objects.iter().any(|o| o == own);
        for object in record.objects.iter().filter(|o| o.as_str() != own) {
            let _lock = match object.strip_suffix(&format!("/{MANIFEST}")) {
                Some(dataset) => match StoreLock::acquire(store, &lock_path(dataset), actor).await?
                {
                    Ok(lock) => Some(lock),
                    Err(_) => continue,
                },
                None if ours => None,
                None => continue,
            };
            settle(store, object, id, true).await?;
        }
        forget_commit_if_applied(store, &path, &bytes).await?;
    }
    Ok(())
}

/// Commits several prepared dataset writes, and state records (`(path, content)`), as
/// one: every reader sees all of them or none, a kill at any point included (see the
/// module docs). All writes are of `store`, each holding its dataset's lock; the records
/// are objects only writers holding those locks replace.
pub async fn commit_together<'a>(
    store: &'a Store,
    mut writes: Vec<PreparedWrite<'a>>,
    records: Vec<(String, String)>,
    origin: &str,
) -> Result<Vec<Manifest>> {
    let mut objects: Vec<(String, String)> = Vec::new();
    for w in &writes {
        objects.push((
            manifest_path(&w.writer.dataset),
            serde_json::to_string_pretty(&w.manifest).expect("manifest serializes"),
        ));
    }
    objects.extend(records);
    let id = format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        rand_u32()
    );
    let staged = async {
        for (path, content) in &objects {
            let pending = PendingObject {
                commit: id.clone(),
                content: content.clone(),
                objects: objects.iter().map(|(p, _)| p.clone()).collect(),
            };
            store
                .put(
                    &pending_path(path),
                    Bytes::from(serde_json::to_vec(&pending).expect("pending serializes")),
                )
                .await?;
        }
        crate::util::failpoint::hit("together:pending");
        let record = CommitRecord {
            origin: origin.to_string(),
            at: crate::util::clock::now(),
            objects: objects.iter().map(|(p, _)| p.clone()).collect(),
        };
        // The commit point.
        store
            .put(
                &commit_path(&id),
                Bytes::from(serde_json::to_vec_pretty(&record).expect("record serializes")),
            )
            .await
    };
    if let Err(e) = staged.await {
        // A commit file an object store reported failed may have landed all the same:
        // only when it is known absent is the commit taken back.
        match store.get(&commit_path(&id)).await {
            Ok(None) => {
                // Not committed: take the pending versions back (the writers' files go
                // when they are dropped), so the store is as it was.
                for (path, _) in &objects {
                    let _ = store.delete(&pending_path(path)).await;
                }
                return Err(e);
            }
            Ok(Some(_)) => {}
            Err(_) => {
                // Unknown: leave everything; readers and the next writes decide by the
                // commit file, whichever way it went.
                for w in &mut writes {
                    w.writer.committed = true;
                }
                return Err(e);
            }
        }
    }
    // From here the writes are committed whatever happens: their files must stay.
    for w in &mut writes {
        w.writer.committed = true;
    }
    crate::util::failpoint::hit("together:committed");
    // After the commit point nothing fails the change: what is not applied now is read
    // through the pending versions and applied by the next write of each dataset.
    let applied = async {
        let last = objects.len().saturating_sub(1);
        for (i, (path, content)) in objects.iter().enumerate() {
            if i == 1 {
                crate::util::failpoint::hit("together:between");
            }
            if i == last {
                crate::util::failpoint::hit("together:before_last");
            }
            store.put(path, Bytes::from(content.clone())).await?;
            store.delete(&pending_path(path)).await?;
        }
        crate::util::failpoint::hit("together:applied");
        store.delete(&commit_path(&id)).await?;
        for w in &writes {
            w.writer
                .collect_garbage(&w.manifest, w.previous.as_ref())
                .await?;
        }
        Ok::<_, SluiceError>(())
    };
    if let Err(e) = applied.await {
        tracing::warn!(env = %store.env(), "{origin}: committed; finishing it failed ({e}): the next write of each dataset finishes it");
    }
    Ok(writes.into_iter().map(|w| w.manifest.clone()).collect())
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
    /// Set at the commit point: from then on the written files are the dataset's.
    committed: bool,
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
        let lock = StoreLock::acquire(store, &lock_path(dataset), actor)
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
        let writer = DatasetWriter {
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
            committed: false,
            _lock: lock,
        };
        // What a killed commit of several objects left for this dataset is applied (or
        // dropped) before anything builds on the manifest.
        resolve_pending(store, &manifest_path(dataset), actor).await?;
        settle_killed_commits(store, &manifest_path(dataset), actor).await?;
        Ok(writer)
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
    pub async fn commit(self, mode: WriteMode, origin: &str) -> Result<Manifest> {
        self.prepare(mode, origin).await?.commit().await
    }

    /// Puts the last files and makes the manifest that commits them, without committing
    /// it: `PreparedWrite::commit` does, or `commit_together` with other writes.
    pub async fn prepare(mut self, mode: WriteMode, origin: &str) -> Result<PreparedWrite<'a>> {
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
        Ok(PreparedWrite {
            writer: self,
            manifest,
            previous,
        })
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

impl Drop for DatasetWriter<'_> {
    /// A write that failed before its commit (an error, not a kill) takes back the files
    /// it put, so the store is exactly as it was. Runs before the lock is released.
    fn drop(&mut self) {
        if self.committed || self.written.is_empty() {
            return;
        }
        let paths: Vec<String> = self
            .written
            .iter()
            .map(|f| format!("{}/{}", self.dataset, f.path))
            .collect();
        if let Some(root) = self.store.local_file("") {
            for p in &paths {
                if let Some(file) = self.store.local_file(p) {
                    let _ = std::fs::remove_file(file);
                }
            }
            // The write's own folder, then the folders above it that are left empty.
            let Some(own) = self
                .store
                .local_file(&format!("{}/{PARTS_DIR}/{}", self.dataset, self.write_id))
            else {
                return;
            };
            let _ = std::fs::remove_dir_all(&own);
            let mut dir = own.parent().map(std::path::Path::to_path_buf);
            while let Some(d) = dir {
                if d == root || !d.starts_with(&root) || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(std::path::Path::to_path_buf);
            }
            return;
        }
        // Drop cannot await: delete on a thread of its own, and wait for it.
        let store = self.store.object_store();
        let paths: Vec<object_store::path::Path> =
            paths.iter().map(|p| self.store.path(p)).collect();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    for p in &paths {
                        let _ = store.delete(p).await;
                    }
                });
            }
        })
        .join();
    }
}

/// A write whose files are all in the store and whose manifest is made, not committed
/// yet; dropped uncommitted, it deletes its files.
pub struct PreparedWrite<'a> {
    writer: DatasetWriter<'a>,
    manifest: Manifest,
    previous: Option<Manifest>,
}

impl<'a> PreparedWrite<'a> {
    /// The manifest the commit puts.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn dataset(&self) -> &str {
        &self.writer.dataset
    }

    /// Commits this write alone: the manifest's put is the commit point.
    pub async fn commit(mut self) -> Result<Manifest> {
        crate::util::failpoint::hit("dataset:before_commit");
        let path = manifest_path(&self.writer.dataset);
        let body =
            Bytes::from(serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes"));
        if let Err(e) = self.writer.store.put(&path, body.clone()).await {
            // A put an object store reported failed may have landed all the same: the
            // files stay unless the manifest is known not to name them.
            let landed = self.writer.store.get(&path).await;
            if !matches!(landed, Ok(ref m) if m.as_ref() != Some(&body)) {
                self.writer.committed = true;
            }
            return Err(e);
        }
        self.writer.committed = true;
        crate::util::failpoint::hit("dataset:after_commit");
        // Committed: files left behind are deleted by the next write.
        if let Err(e) = self
            .writer
            .collect_garbage(&self.manifest, self.previous.as_ref())
            .await
        {
            tracing::warn!(env = %self.writer.store.env(), dataset = %self.writer.dataset, "committed; deleting old files failed ({e}): the next write deletes them");
        }
        Ok(self.manifest)
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
