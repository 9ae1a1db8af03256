//! The files one run scans, frozen when the run plans.
//!
//! DataFusion's listing table lists its files through an object store. Sluice gives it
//! this one: each source of the run is a folder (`s1/`, `s2/`, …) holding exactly the
//! files Sluice listed for it — a dataset's committed manifest, a branch's or its
//! parent's files, from a local folder or a bucket — so a write that commits while the
//! run goes on is not half-seen, and every source reads from the store that owns it.
//! Reads are passed to the owning store under the file's real path.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::store::footers::FooterCache;

/// The column a `system` sample's unit is read as, for estimates (`scan::units`).
pub const UNIT_COLUMN: &str = "sluice_sample_unit";

/// The partition column a `system` sample read with its units numbers its files by.
pub const UNIT_FILE_COLUMN: &str = "sluice_sample_file";

/// The URL a run's snapshot is registered under in its session.
pub const SNAPSHOT_URL: &str = "sluice://scan";

/// One file of a snapshot: where the run sees it and where it really is.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub seen: ObjectMeta,
    pub real: ObjectMeta,
    pub store: Arc<dyn ObjectStore>,
    pub footers: Arc<FooterCache>,
}

#[derive(Debug)]
struct Folder {
    files: Vec<SnapshotFile>,
    by_location: HashMap<String, usize>,
}

/// The files of one run's sources (see the module docs).
#[derive(Debug, Default)]
pub struct ScanSnapshot {
    folders: RwLock<HashMap<String, Arc<Folder>>>,
}

impl Drop for ScanSnapshot {
    fn drop(&mut self) {
        let folders = self.folders.get_mut().unwrap_or_else(|e| e.into_inner());
        for folder in folders.values() {
            crate::error::scan_files::remove(folder.by_location.keys().map(String::as_str));
        }
    }
}

/// Folder names are unique in the process, so scan metrics name their source.
static NEXT_FOLDER: AtomicU64 = AtomicU64::new(1);

/// A run's snapshot carried in its session's configuration, so a physical optimizer
/// rule (which sees only the plan and the `ConfigOptions`) can read the footers of the
/// files a scan reads by the paths the run sees them at (`ScanSnapshot::cached_footer`).
#[derive(Debug, Clone, Default)]
pub struct RunSnapshot(pub Option<Arc<ScanSnapshot>>);

impl ConfigExtension for RunSnapshot {
    const PREFIX: &'static str = "sluice_run_snapshot";
}

impl ExtensionOptions for RunSnapshot {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> datafusion::error::Result<()> {
        Err(datafusion::error::DataFusionError::Configuration(format!(
            "`{}.{key}` cannot be set: the run's snapshot is Sluice's own",
            Self::PREFIX
        )))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

impl RunSnapshot {
    /// The footer of a file a run's scan reads, from the run's snapshot in `config`.
    pub fn footer(
        config: &ConfigOptions,
        location: &ObjectPath,
    ) -> Option<Arc<datafusion::parquet::file::metadata::ParquetMetaData>> {
        config
            .extensions
            .get::<RunSnapshot>()?
            .0
            .as_ref()?
            .cached_footer(location)
    }
}

impl ScanSnapshot {
    /// Adds a source's files (real metas, with their path relative to the source) and
    /// returns the folder the run sees them in, and where it sees each file. A file is
    /// seen as `<folder>/[k=v/…]f<N>.parquet`: its hive partitions kept, and no `_`
    /// folder (a dataset's `_parts/`) that DataFusion would take for a hidden one.
    /// `name`: each file as a user knows it, for errors (`error::scan_files`).
    pub fn add<'a>(
        &self,
        files: impl IntoIterator<Item = &'a crate::store::SourceFile>,
        name: &dyn Fn(&crate::store::SourceFile) -> String,
    ) -> (String, Vec<String>) {
        self.add_parts(files.into_iter().map(|f| (f, None)), name)
    }

    /// Like `add`, with each entry seen under one more partition folder when it has a
    /// number: `<folder>/[k=v/…]sluice_sample_file=<n>/f<N>.parquet`. Estimates find a
    /// `system` sample's unit of every row by the file's number (`scan::units`).
    pub fn add_parts<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a crate::store::SourceFile, Option<u64>)>,
        name: &dyn Fn(&crate::store::SourceFile) -> String,
    ) -> (String, Vec<String>) {
        let folder = format!("s{}", NEXT_FOLDER.fetch_add(1, Ordering::Relaxed));
        let mut snapshot_files = Vec::new();
        let mut by_location = HashMap::new();
        let mut seen_paths = Vec::new();
        for (i, (f, unit)) in files.into_iter().enumerate() {
            let (relative, real) = (&f.relative_path, &f.meta);
            let parts: Vec<&str> = relative.split('/').collect();
            let partitions = parts[..parts.len().saturating_sub(1)]
                .iter()
                .filter(|p| p.contains('=') && !p.starts_with(['_', '.']))
                .map(|p| p.to_string());
            let unit_folder = unit.map(|u| format!("{UNIT_FILE_COLUMN}={u}"));
            let file = format!("f{i:06}.parquet");
            let seen = ObjectMeta {
                location: ObjectPath::from_iter(
                    std::iter::once(folder.clone())
                        .chain(partitions)
                        .chain(unit_folder)
                        .chain(std::iter::once(file)),
                ),
                ..real.clone()
            };
            let seen_path = seen.location.to_string();
            crate::error::scan_files::add(seen_path.clone(), name(f));
            by_location.insert(seen_path.clone(), snapshot_files.len());
            seen_paths.push(seen_path);
            snapshot_files.push(SnapshotFile {
                seen,
                real: real.clone(),
                store: f.store.clone(),
                footers: f.footers.clone(),
            });
        }
        let added = Arc::new(Folder {
            files: snapshot_files,
            by_location,
        });
        self.folders
            .write()
            .expect("snapshot")
            .insert(folder.clone(), added);
        (folder, seen_paths)
    }

    /// The footer of a file of this snapshot, by the path its run sees it at, if its
    /// store's cache holds it (the listing read it): no I/O.
    pub fn cached_footer(
        &self,
        location: &ObjectPath,
    ) -> Option<Arc<datafusion::parquet::file::metadata::ParquetMetaData>> {
        let folder = self.folder_of(location)?;
        let f = &folder.files[*folder.by_location.get(location.as_ref())?];
        f.footers.cached(&f.real)
    }

    /// The store, footer cache and real file behind a location of the snapshot.
    pub fn resolve(
        &self,
        location: &ObjectPath,
    ) -> Option<(Arc<dyn ObjectStore>, Arc<FooterCache>, ObjectMeta)> {
        let folder = self.folder_of(location)?;
        let f = &folder.files[*folder.by_location.get(location.as_ref())?];
        Some((f.store.clone(), f.footers.clone(), f.real.clone()))
    }

    fn folder_of(&self, location: &ObjectPath) -> Option<Arc<Folder>> {
        let first = location.parts().next()?;
        self.folders
            .read()
            .expect("snapshot")
            .get(first.as_ref())
            .cloned()
    }

    fn not_found(location: &ObjectPath) -> object_store::Error {
        object_store::Error::NotFound {
            path: location.to_string(),
            source: "not a file of this run's snapshot".into(),
        }
    }

    fn files_under(&self, prefix: Option<&ObjectPath>) -> Vec<ObjectMeta> {
        let folders: Vec<Arc<Folder>> = match prefix.and_then(|p| self.folder_of(p)) {
            Some(f) => vec![f],
            None if prefix.is_none_or(|p| p.as_ref().is_empty()) => self
                .folders
                .read()
                .expect("snapshot")
                .values()
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        folders
            .iter()
            .flat_map(|f| f.files.iter().map(|x| x.seen.clone()))
            .filter(|m| prefix.is_none_or(|p| m.location.prefix_matches(p)))
            .collect()
    }
}

impl fmt::Display for ScanSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanSnapshot")
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "a run's snapshot of its sources is read-only".into(),
    }
}

#[async_trait]
impl ObjectStore for ScanSnapshot {
    async fn put_opts(
        &self,
        _location: &ObjectPath,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _location: &ObjectPath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let (store, _, real) = self
            .resolve(location)
            .ok_or_else(|| Self::not_found(location))?;
        let mut result = store.get_opts(&real.location, options).await?;
        result.meta.location = location.clone();
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let (store, _, real) = self
            .resolve(location)
            .ok_or_else(|| Self::not_found(location))?;
        store.get_ranges(&real.location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        stream::iter(self.files_under(prefix).into_iter().map(Ok)).boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let depth = prefix.map(|p| p.parts().count()).unwrap_or(0);
        let mut objects = Vec::new();
        let mut common = BTreeSet::new();
        for meta in self.files_under(prefix) {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta);
            } else if parts.len() > depth + 1 {
                common.insert(ObjectPath::from_iter(parts[..=depth].iter().cloned()));
            }
        }
        Ok(ListResult {
            common_prefixes: common.into_iter().collect(),
            objects,
        })
    }

    async fn copy_opts(
        &self,
        _from: &ObjectPath,
        _to: &ObjectPath,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(read_only())
    }
}
