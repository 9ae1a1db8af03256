//! How Sluice's scans read Parquet: data bytes from the store, footers (with their page
//! index) from a cache shared by every run of a store. The page index lets a row
//! selection (a sample) fetch only the pages it needs, and the cache means a warm
//! session never re-reads a footer.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{ParquetFileMetrics, ParquetFileReaderFactory};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::store::snapshot::ScanSnapshot;

/// Parquet footers by (location, size, last modified): a rewritten file is a new entry.
/// It also keeps small facts derived from a set of files' data (a source's heavy keys),
/// by a key naming the files and the question, so a process does not read them twice.
#[derive(Debug, Default)]
pub struct FooterCache {
    entries: Mutex<HashMap<(String, u64, i64), Arc<ParquetMetaData>>>,
    derived: Mutex<HashMap<String, Arc<Vec<String>>>>,
    /// Footers read from the store (cache misses).
    fetches: std::sync::atomic::AtomicU64,
}

impl FooterCache {
    fn key(meta: &ObjectMeta) -> (String, u64, i64) {
        (
            meta.location.to_string(),
            meta.size,
            meta.last_modified.timestamp_nanos_opt().unwrap_or_default(),
        )
    }

    /// A fact derived from files' data, if it was recorded under `key`.
    pub fn derived(&self, key: &str) -> Option<Arc<Vec<String>>> {
        self.derived
            .lock()
            .expect("derived cache")
            .get(key)
            .cloned()
    }

    pub fn set_derived(&self, key: String, value: Arc<Vec<String>>) {
        let mut d = self.derived.lock().expect("derived cache");
        // Runs over changing data would add keys without end: start over past a bound.
        if d.len() >= 1024 {
            d.clear();
        }
        d.insert(key, value);
    }

    /// The cache key of a question about these files: their identity, then `what`.
    pub fn files_key<'a>(metas: impl Iterator<Item = &'a ObjectMeta>, what: &str) -> String {
        let mut key = String::from(what);
        for m in metas {
            let (path, size, modified) = Self::key(m);
            key.push_str(&format!("|{path}:{size}:{modified}"));
        }
        key
    }

    /// How many footers this cache has read from the store.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The footer of a file if this cache holds it already (no I/O).
    pub fn cached(&self, meta: &ObjectMeta) -> Option<Arc<ParquetMetaData>> {
        let key = Self::key(meta);
        self.entries
            .lock()
            .expect("footer cache")
            .get(&key)
            .cloned()
    }

    /// The footer of a file, with its page index when the file has one.
    pub async fn footer(
        &self,
        store: &dyn ObjectStore,
        meta: &ObjectMeta,
    ) -> datafusion::error::Result<Arc<ParquetMetaData>> {
        let key = Self::key(meta);
        if let Some(m) = self.entries.lock().expect("footer cache").get(&key) {
            return Ok(m.clone());
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let metadata = DFParquetMetadata::new(store, meta)
            .with_page_index_policy(Some(PageIndexPolicy::Optional))
            .fetch_metadata()
            .await?;
        self.entries
            .lock()
            .expect("footer cache")
            .insert(key, metadata.clone());
        Ok(metadata)
    }
}

/// Creates readers of a run's snapshot files: bytes from the store that owns each file,
/// footers from that store's `FooterCache`.
#[derive(Debug)]
pub struct CachedFooterReaderFactory {
    snapshot: Arc<ScanSnapshot>,
}

impl CachedFooterReaderFactory {
    pub fn new(snapshot: Arc<ScanSnapshot>) -> Self {
        CachedFooterReaderFactory { snapshot }
    }
}

impl ParquetFileReaderFactory for CachedFooterReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let metrics =
            ParquetFileMetrics::new(partition_index, file.object_meta.location.as_ref(), metrics);
        let (store, footers, meta) = self
            .snapshot
            .resolve(&file.object_meta.location)
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "{} is not a file of this run's snapshot",
                    file.object_meta.location
                ))
            })?;
        Ok(Box::new(CachedFooterReader {
            store,
            footers,
            meta,
            metrics,
        }))
    }
}

struct CachedFooterReader {
    store: Arc<dyn ObjectStore>,
    footers: Arc<FooterCache>,
    meta: ObjectMeta,
    metrics: ParquetFileMetrics,
}

impl AsyncFileReader for CachedFooterReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        self.metrics
            .bytes_scanned
            .add((range.end - range.start) as usize);
        let store = self.store.clone();
        let location = self.meta.location.clone();
        async move {
            store
                .get_range(&location, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        self.metrics.bytes_scanned.add(total as usize);
        let store = self.store.clone();
        let location = self.meta.location.clone();
        async move {
            store
                .get_ranges(&location, &ranges)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            self.footers
                .footer(self.store.as_ref(), &self.meta)
                .await
                .map_err(|e| {
                    ParquetError::General(format!(
                        "cannot read the footer of {}: {e}",
                        self.meta.location
                    ))
                })
        }
        .boxed()
    }
}
