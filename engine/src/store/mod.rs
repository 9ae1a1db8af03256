//! An environment's store: `<root>/<source>/…parquet` datasets and Sluice's own state
//! under `<root>/_sluice/`, on a local folder or an object store (`location`), read and
//! written through the object-store API so both work alike.
//!
//! A source is either a plain folder of Parquet files, or a dataset Sluice writes
//! (`dataset`): a committed manifest naming its files, so a write is seen whole or not
//! at all. A branch's store overlays its parent's: a source the branch has not written
//! is read from the parent. Parquet footers (with page index) are cached for the life
//! of the `Store`, and scans read them from that cache.

pub mod dataset;
pub mod deployments;
pub mod footers;
pub mod local;
pub mod lock;
pub mod open;
pub mod snapshot;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions};

use crate::error::{Result, SluiceError};
pub use crate::project::location::{StorageSettings, StoreLocation};
pub use crate::project::system_tables::STATE_DIR;
use crate::project::{Environment, SourceDef};
use crate::store::footers::FooterCache;

/// One Parquet file of a source, with its footer.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The store the file is in (a branch's parent's, maybe) and its footer cache.
    pub store: Arc<dyn ObjectStore>,
    pub footers: Arc<FooterCache>,
    pub meta: ObjectMeta,
    /// Path relative to the source folder (`region=emea/part-0.parquet`).
    pub relative_path: String,
    /// The file as a user knows it, for errors: its store's path or URL (a branch's
    /// parent's for a file the branch reads from its parent).
    pub shown: String,
    pub metadata: Arc<ParquetMetaData>,
    /// Hive partition values from the path, in the order of `SourceListing::partitions`.
    pub partition_values: Vec<String>,
}

/// Everything a scan of one source needs: its files, footers, schema and partitions.
#[derive(Debug, Clone)]
pub struct SourceListing {
    pub source: String,
    /// The environment whose store holds the files (a branch's parent, maybe).
    pub env: String,
    /// The source's folder as a user knows it: a local path or a URL.
    pub location: String,
    /// Whether the files are a dataset's committed manifest (else a plain folder).
    pub managed: bool,
    pub files: Vec<SourceFile>,
    /// Columns of the files (without partition columns).
    pub file_schema: SchemaRef,
    /// Hive partition columns (`k=v/` folders), read as strings.
    pub partitions: Vec<String>,
    /// The key sample the files are, when a sample build wrote them.
    pub built_sample: Option<dataset::BuiltSample>,
}

impl SourceListing {
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.metadata.file_metadata().num_rows() as u64)
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.meta.size).sum()
    }

    pub fn row_groups(&self) -> usize {
        self.files.iter().map(|f| f.metadata.num_row_groups()).sum()
    }

    /// The table's schema: file columns, then partition columns.
    pub fn table_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for p in &self.partitions {
            fields.push(Field::new(p, DataType::Utf8, true));
        }
        Arc::new(Schema::new(fields))
    }
}

/// An environment's store (see the module docs).
#[derive(Debug)]
pub struct Store {
    env: String,
    location: StoreLocation,
    object_store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    footers: Arc<FooterCache>,
    /// A branch's parent: sources the branch has not written are read there.
    parent: Option<Arc<Store>>,
    /// Requests for objects and listings made through this store (not the data pages
    /// scans read): what a server counts to show it does not re-read unchanged state.
    state_reads: AtomicU64,
}

impl Store {
    /// Opens an environment's store (and its parent's, for a branch). Fails if its
    /// settings are incomplete, e.g. a credential variable is not set.
    pub fn open(env: &Environment) -> Result<Store> {
        let opened = open::open(&env.location, &env.storage).map_err(|message| {
            SluiceError::StorageConfig {
                env: env.name.clone(),
                url: env.location.to_string(),
                message,
            }
        })?;
        let parent = match &env.parent {
            Some(p) => Some(Arc::new(Store::open(p)?)),
            None => None,
        };
        Ok(Store {
            env: env.name.clone(),
            location: env.location.clone(),
            object_store: opened.object_store,
            root: opened.root,
            footers: Arc::new(FooterCache::default()),
            parent,
            state_reads: AtomicU64::new(0),
        })
    }

    /// How many reads of objects, listings and footers this store (and a branch's
    /// parent) has made: `get`, `list`, folder listings and footer fetches.
    pub fn state_reads(&self) -> u64 {
        self.state_reads.load(Ordering::Relaxed)
            + self.footers.fetches()
            + self.parent.as_ref().map_or(0, |p| p.state_reads())
    }

    fn count_read(&self) {
        self.state_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    pub fn parent(&self) -> Option<&Arc<Store>> {
        self.parent.as_ref()
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.object_store.clone()
    }

    pub fn footers(&self) -> Arc<FooterCache> {
        self.footers.clone()
    }

    /// The object path of `relative` (`/`-separated, under the store's root).
    pub fn path(&self, relative: &str) -> ObjectPath {
        ObjectPath::from_iter(
            self.root.parts().chain(
                relative
                    .split('/')
                    .filter(|p| !p.is_empty())
                    .map(Into::into),
            ),
        )
    }

    /// The file of `relative` in a local store (the object path's parts as they are
    /// named on disk, escapes included), `None` in an object store.
    pub fn local_file(&self, relative: &str) -> Option<std::path::PathBuf> {
        self.location.local_dir()?;
        Some(std::path::Path::new("/").join(self.path(relative).as_ref()))
    }

    /// `relative` as a user knows it: a local path or a URL.
    pub fn describe(&self, relative: &str) -> String {
        let base = self.location.to_string();
        if relative.is_empty() {
            base
        } else {
            format!("{}/{relative}", base.trim_end_matches('/'))
        }
    }

    /// The error of a failed store request, naming the environment and the URL.
    pub fn storage_error(&self, relative: &str, err: object_store::Error) -> SluiceError {
        SluiceError::Storage {
            env: self.env.clone(),
            url: self.describe(relative),
            message: storage_message(&err),
        }
    }

    /// Checks the store answers: lists its root once. A missing bucket, refused
    /// credentials or an unreachable endpoint fail here, within the request timeout.
    pub async fn check(&self) -> Result<()> {
        self.object_store
            .list_with_delimiter(Some(&self.root))
            .await
            .map_err(|e| self.storage_error("", e))?;
        Ok(())
    }

    /// Reads one object, `None` if there is none.
    pub async fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        self.count_read();
        match self.object_store.get(&self.path(relative)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| self.storage_error(relative, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error(relative, e)),
        }
    }

    /// Writes one object in one step: readers see the old object or the whole new one.
    pub async fn put(&self, relative: &str, bytes: Bytes) -> Result<()> {
        self.refuse_if_full(relative)?;
        self.object_store
            .put(&self.path(relative), bytes.into())
            .await
            .map_err(|e| self.storage_error(relative, e))?;
        Ok(())
    }

    /// Writes an object only if there is none yet; `false` if one exists.
    pub async fn put_new(&self, relative: &str, bytes: Bytes) -> Result<bool> {
        self.refuse_if_full(relative)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .object_store
            .put_opts(&self.path(relative), bytes.into(), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.storage_error(relative, e)),
        }
    }

    /// A write failed by fault injection (`util::failpoint::write_refused`), as a full
    /// disk fails it.
    fn refuse_if_full(&self, relative: &str) -> Result<()> {
        match crate::util::failpoint::write_refused() {
            Some(e) => Err(self.storage_error(
                relative,
                object_store::Error::Generic {
                    store: "store",
                    source: Box::new(e),
                },
            )),
            None => Ok(()),
        }
    }

    /// Deletes one object; a missing one is not an error.
    pub async fn delete(&self, relative: &str) -> Result<()> {
        match self.object_store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage_error(relative, e)),
        }
    }

    /// Every object under `relative`, with its path relative to it, sorted.
    pub async fn list(&self, relative: &str) -> Result<Vec<(String, ObjectMeta)>> {
        self.count_read();
        let prefix = self.path(relative);
        let mut metas: Vec<ObjectMeta> = self
            .object_store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.storage_error(relative, e))?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas
            .into_iter()
            .map(|m| (relative_path(&prefix, &m.location), m))
            .collect())
    }

    /// Deletes every object under `relative`; returns how many.
    pub async fn delete_all(&self, relative: &str) -> Result<usize> {
        let objects = self.list(relative).await?;
        for (_, meta) in &objects {
            match self.object_store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.storage_error(relative, e)),
            }
        }
        if let Some(dir) = self.location.local_dir() {
            // Local stores keep empty folders behind; remove them (best effort).
            let _ = std::fs::remove_dir_all(dir.join(relative));
        }
        Ok(objects.len())
    }

    fn source_error(&self, source: &SourceDef, message: impl Into<String>) -> SluiceError {
        SluiceError::Source {
            env: self.env.clone(),
            source_name: source.name.clone(),
            message: message.into(),
        }
    }

    /// Whether this store itself (not a branch's parent) holds data for `source_path`.
    pub async fn owns(&self, source_path: &str) -> Result<bool> {
        let objects = self.list(source_path).await?;
        self.owns_listed(source_path, &objects).await
    }

    /// Whether these objects of `source_path` make it a source of this store: data
    /// files, a manifest, or a pending manifest whose commit took place (one that never
    /// took place is not there for readers).
    async fn owns_listed(
        &self,
        source_path: &str,
        objects: &[(String, ObjectMeta)],
    ) -> Result<bool> {
        if objects
            .iter()
            .any(|(rel, _)| rel == dataset::MANIFEST || is_data_file(rel))
        {
            return Ok(true);
        }
        if objects
            .iter()
            .any(|(rel, _)| rel == dataset::MANIFEST_PENDING)
        {
            return Ok(dataset::read_manifest_listed(self, source_path, Some(true))
                .await?
                .is_some());
        }
        Ok(false)
    }

    /// Lists a source's Parquet files and reads their footers: a dataset's committed
    /// files, or a plain folder's. In a branch, a source the branch has not written is
    /// the parent's. A missing folder, an empty one, a file that is not Parquet or files
    /// whose schemas cannot be merged are errors naming the environment, the source and
    /// the path.
    pub fn list_source<'a>(
        &'a self,
        source: &'a SourceDef,
    ) -> futures::future::BoxFuture<'a, Result<SourceListing>> {
        Box::pin(async move {
            let objects = self.list(&source.path).await?;
            let owned = self.owns_listed(&source.path, &objects).await?;
            if !owned && let Some(parent) = &self.parent {
                return parent.list_source(source).await;
            }
            if !owned {
                // Nothing readers may see: no folder, or only the leftovers of writes
                // that never committed.
                let only_leftovers = objects.iter().all(|(rel, _)| {
                    rel.starts_with(&format!("{}/", dataset::PARTS_DIR))
                        || rel == dataset::MANIFEST_PENDING
                });
                if only_leftovers {
                    return Err(SluiceError::MissingSource {
                        env: self.env.clone(),
                        source_name: source.name.clone(),
                        path: self.describe(&source.path),
                        hint: String::new(),
                    });
                }
            }
            self.list_own_source(source, objects).await
        })
    }

    async fn list_own_source(
        &self,
        source: &SourceDef,
        objects: Vec<(String, ObjectMeta)>,
    ) -> Result<SourceListing> {
        let location = self.describe(&source.path);
        if objects.is_empty() {
            // The session that asked knows the project, and so how to fill it.
            return Err(SluiceError::MissingSource {
                env: self.env.clone(),
                source_name: source.name.clone(),
                path: location,
                hint: String::new(),
            });
        }
        // The manifest is read after the listing: a commit in between can name files the
        // listing has not seen (they were put after it), so list again until the listing
        // holds every file of the manifest read after it.
        let mut objects = objects;
        let mut tries = 0;
        let manifest = loop {
            let pending = objects
                .iter()
                .any(|(rel, _)| rel == dataset::MANIFEST_PENDING);
            let manifest = dataset::read_manifest_listed(self, &source.path, Some(pending)).await?;
            let complete = manifest.as_ref().is_none_or(|m| {
                let listed: std::collections::HashSet<&str> =
                    objects.iter().map(|(rel, _)| rel.as_str()).collect();
                m.files.iter().all(|f| listed.contains(f.path.as_str()))
            });
            if complete || tries == 3 {
                break manifest;
            }
            tries += 1;
            objects = self.list(&source.path).await?;
        };
        let objects: Vec<(String, ObjectMeta)> = match &manifest {
            Some(m) => {
                let mut by_path: std::collections::HashMap<String, ObjectMeta> =
                    objects.into_iter().collect();
                let mut files = Vec::with_capacity(m.files.len());
                for f in &m.files {
                    let meta = by_path.remove(&f.path).ok_or_else(|| {
                        self.source_error(
                            source,
                            format!(
                                "{location}/{} is listed in the dataset's manifest but missing",
                                f.path
                            ),
                        )
                    })?;
                    files.push((f.path.clone(), meta));
                }
                files
            }
            None => objects
                .into_iter()
                .filter(|(rel, _)| is_data_file(rel))
                .collect(),
        };
        // A branch's dataset that appended to its parent's data reads the parent's files
        // first: what the parent adds later falls through too.
        let inherited = match (&manifest, &self.parent) {
            (Some(m), Some(parent)) if m.include_parent => match parent.list_source(source).await {
                Ok(l) => Some(l),
                Err(SluiceError::MissingSource { .. }) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        if objects.is_empty() && inherited.is_none() {
            return Err(self.source_error(source, format!("no Parquet files in {location}")));
        }

        let mut files = Vec::with_capacity(objects.len());
        let mut partition_keys: Option<Vec<String>> = None;
        let mut schema: Option<Schema> = None;
        if let Some(parent) = inherited {
            partition_keys = Some(parent.partitions.clone());
            schema = Some(parent.file_schema.as_ref().clone());
            files.extend(parent.files);
        }
        for (rel, meta) in objects {
            let shown = format!("{location}/{rel}");
            let metadata =
                self.footer(&meta)
                    .await
                    .map_err(|message| SluiceError::InvalidParquet {
                        env: self.env.clone(),
                        source_name: source.name.clone(),
                        file: shown.clone(),
                        message,
                    })?;
            let (keys, values) = hive_partitions(&rel);
            match &partition_keys {
                None => partition_keys = Some(keys),
                Some(k) if *k != keys => {
                    return Err(self.source_error(
                        source,
                        format!(
                            "{shown} is partitioned by [{}] but other files by [{}]",
                            keys.join(", "),
                            k.join(", ")
                        ),
                    ));
                }
                Some(_) => {}
            }
            let file_schema = parquet_to_arrow_schema(
                metadata.file_metadata().schema_descr(),
                metadata.file_metadata().key_value_metadata(),
            )
            .map_err(|e| SluiceError::InvalidParquet {
                env: self.env.clone(),
                source_name: source.name.clone(),
                file: shown.clone(),
                message: e.to_string(),
            })?;
            // Drop metadata (e.g. the embedded arrow schema) so files written by
            // different tools merge on their columns alone.
            let file_schema = Schema::new(file_schema.fields().clone());
            schema = Some(match schema {
                None => file_schema,
                Some(s) => Schema::try_merge([s, file_schema]).map_err(|e| {
                    self.source_error(
                        source,
                        format!("{shown} does not match the other files' schema: {e}"),
                    )
                })?,
            });
            files.push(SourceFile {
                store: self.object_store.clone(),
                footers: self.footers.clone(),
                meta,
                relative_path: rel,
                shown,
                metadata,
                partition_values: values,
            });
        }
        let partitions = partition_keys.unwrap_or_default();
        let file_schema = schema.expect("at least one file");
        if let Some(clash) = partitions
            .iter()
            .find(|p| file_schema.field_with_name(p).is_ok())
        {
            return Err(self.source_error(
                source,
                format!("partition folder key `{clash}` is also a column of the files"),
            ));
        }
        Ok(SourceListing {
            source: source.name.clone(),
            env: self.env.clone(),
            location,
            managed: manifest.is_some(),
            files,
            file_schema: Arc::new(file_schema),
            partitions,
            built_sample: manifest.and_then(|m| m.sample),
        })
    }

    pub(crate) async fn footer(
        &self,
        meta: &ObjectMeta,
    ) -> std::result::Result<Arc<ParquetMetaData>, String> {
        self.footers
            .footer(self.object_store.as_ref(), meta)
            .await
            .map_err(|e| e.strip_backtrace().replace("Parquet error: ", ""))
    }

    /// Names of the top-level folders that look like sources (a branch's and its
    /// parent's).
    pub fn folders(&self) -> futures::future::BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.count_read();
            let listed = self
                .object_store
                .list_with_delimiter(Some(&self.root))
                .await
                .map_err(|e| self.storage_error("", e))?;
            let mut out: BTreeSet<String> = listed
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .filter(|name| !name.starts_with(['_', '.']))
                .collect();
            if let Some(parent) = &self.parent {
                out.extend(parent.folders().await?);
            }
            Ok(out.into_iter().collect())
        })
    }
}

/// An object-store error as one line: its message and the causes under it (the
/// connection refused, the bucket missing), without repeating itself.
pub(crate) fn storage_message(err: &object_store::Error) -> String {
    let mut message = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

fn relative_path(prefix: &ObjectPath, location: &ObjectPath) -> String {
    match location.prefix_match(prefix) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => location.to_string(),
    }
}

/// A data file: a `.parquet` file whose path has no hidden (`.`) or private (`_`) part,
/// so temporary and state files are never read as data.
pub(crate) fn is_data_file(relative: &str) -> bool {
    relative.ends_with(".parquet")
        && relative
            .split('/')
            .all(|part| !part.starts_with('.') && !part.starts_with('_'))
}

/// The `k=v` folders of a relative path, in order.
fn hive_partitions(relative: &str) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let parts: Vec<&str> = relative.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if let Some((k, v)) = part.split_once('=') {
            keys.push(k.to_string());
            values.push(v.to_string());
        }
    }
    (keys, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_skip_hidden_and_state() {
        assert!(is_data_file("part-0.parquet"));
        assert!(is_data_file("region=emea/part-0.parquet"));
        assert!(!is_data_file("_tmp/part-0.parquet"));
        assert!(!is_data_file(".part-0.parquet"));
        assert!(!is_data_file("notes.txt"));
    }

    #[test]
    fn hive_keys() {
        let (k, v) = hive_partitions("region=emea/year=2024/part.parquet");
        assert_eq!(k, vec!["region", "year"]);
        assert_eq!(v, vec!["emea", "2024"]);
    }
}
