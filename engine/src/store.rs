//! An environment's store: `<root>/<source>/…parquet` datasets, read through the
//! object-store API so local folders and, later, object-store URLs work alike.
//! Parquet footers (with page index) are cached for the life of the `Store`, and its
//! scans read them from that cache, so a warm session does not re-read them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::error::{Result, SluiceError};
use crate::parquet_reader::{CachedFooterReaderFactory, FooterCache};
use crate::project::{Environment, SourceDef};

/// The folder under every store root where Sluice keeps its own state.
pub const STATE_DIR: &str = "_sluice";

/// One Parquet file of a source, with its footer.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub meta: ObjectMeta,
    /// Path relative to the source folder (`region=emea/part-0.parquet`).
    pub relative_path: String,
    pub metadata: Arc<ParquetMetaData>,
    /// Hive partition values from the path, in the order of `SourceListing::partitions`.
    pub partition_values: Vec<String>,
}

/// Everything a scan of one source needs: its files, footers, schema and partitions.
#[derive(Debug, Clone)]
pub struct SourceListing {
    pub source: String,
    pub url: ListingTableUrl,
    pub files: Vec<SourceFile>,
    /// Columns of the files (without partition columns).
    pub file_schema: SchemaRef,
    /// Hive partition columns (`k=v/` folders), read as strings.
    pub partitions: Vec<String>,
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

#[derive(Debug)]
pub struct Store {
    env: String,
    root: PathBuf,
    object_store: Arc<dyn ObjectStore>,
    footers: Arc<FooterCache>,
}

impl Store {
    pub fn open(env: &Environment) -> Store {
        Store {
            env: env.name.clone(),
            root: env.data_dir.clone(),
            object_store: Arc::new(LocalFileSystem::new()),
            footers: Arc::new(FooterCache::default()),
        }
    }

    pub fn env(&self) -> &str {
        &self.env
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.object_store.clone()
    }

    /// The reader factory scans of this store use: footers come from its cache.
    pub fn reader_factory(&self) -> Arc<CachedFooterReaderFactory> {
        Arc::new(CachedFooterReaderFactory::new(
            self.object_store.clone(),
            self.footers.clone(),
        ))
    }

    /// The object-store URL DataFusion resolves this store's files with.
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::local_filesystem()
    }

    /// The local folder of a source.
    pub fn source_dir(&self, source: &SourceDef) -> PathBuf {
        self.root.join(&source.path)
    }

    fn source_error(&self, source: &SourceDef, message: impl Into<String>) -> SluiceError {
        SluiceError::Source {
            env: self.env.clone(),
            source_name: source.name.clone(),
            message: message.into(),
        }
    }

    /// Lists a source's Parquet files and reads their footers. A missing folder, an empty
    /// one, a file that is not Parquet or files whose schemas cannot be merged are errors
    /// naming the environment, the source and the path.
    pub async fn list_source(&self, source: &SourceDef) -> Result<SourceListing> {
        let dir = self.source_dir(source);
        if !dir.is_dir() {
            return Err(SluiceError::MissingSource {
                env: self.env.clone(),
                source_name: source.name.clone(),
                path: dir.display().to_string(),
            });
        }
        let prefix = ObjectPath::from_filesystem_path(&dir)
            .map_err(|e| self.source_error(source, format!("{}: {e}", dir.display())))?;
        let url = ListingTableUrl::parse(format!("{}/", dir.display()))
            .map_err(|e| self.source_error(source, format!("{}: {e}", dir.display())))?;

        let mut metas: Vec<ObjectMeta> = self
            .object_store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| {
                self.source_error(source, format!("cannot list {}: {e}", dir.display()))
            })?;
        metas.retain(|m| {
            let rel = relative(&prefix, &m.location);
            is_data_file(&rel)
        });
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        if metas.is_empty() {
            return Err(self.source_error(source, format!("no Parquet files in {}", dir.display())));
        }

        let mut files = Vec::with_capacity(metas.len());
        let mut partition_keys: Option<Vec<String>> = None;
        let mut schema: Option<Schema> = None;
        for meta in metas {
            let rel = relative(&prefix, &meta.location);
            let local = dir.join(&rel);
            let metadata =
                self.footer(&meta)
                    .await
                    .map_err(|message| SluiceError::InvalidParquet {
                        env: self.env.clone(),
                        source_name: source.name.clone(),
                        file: local.display().to_string(),
                        message,
                    })?;
            let (keys, values) = hive_partitions(&rel);
            match &partition_keys {
                None => partition_keys = Some(keys),
                Some(k) if *k != keys => {
                    return Err(self.source_error(
                        source,
                        format!(
                            "{} is partitioned by [{}] but other files by [{}]",
                            local.display(),
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
                file: local.display().to_string(),
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
                        format!(
                            "{} does not match the other files' schema: {e}",
                            local.display()
                        ),
                    )
                })?,
            });
            files.push(SourceFile {
                meta,
                relative_path: rel,
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
            url,
            files,
            file_schema: Arc::new(file_schema),
            partitions,
        })
    }

    async fn footer(&self, meta: &ObjectMeta) -> std::result::Result<Arc<ParquetMetaData>, String> {
        self.footers
            .footer(self.object_store.as_ref(), meta)
            .await
            .map_err(|e| e.strip_backtrace().replace("Parquet error: ", ""))
    }

    /// Writes one object at `relative` (a `/`-separated path under the store's root) in
    /// one step: readers see the old object or the whole new one.
    pub async fn put(&self, relative: &str, bytes: bytes::Bytes) -> Result<()> {
        let local = self.root.join(relative);
        if let Some(dir) = local.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SluiceError::io(dir, e))?;
        }
        let path = ObjectPath::from_filesystem_path(&local)
            .map_err(|e| SluiceError::io(&local, std::io::Error::other(e)))?;
        self.object_store
            .put(&path, bytes.into())
            .await
            .map_err(|e| SluiceError::io(&local, std::io::Error::other(e)))?;
        Ok(())
    }

    /// Names of the top-level folders in the store that look like sources.
    pub fn folders(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && !name.starts_with(['_', '.']) {
                    out.insert(name);
                }
            }
        }
        out.into_iter().collect()
    }
}

fn relative(prefix: &ObjectPath, location: &ObjectPath) -> String {
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
fn is_data_file(relative: &str) -> bool {
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
