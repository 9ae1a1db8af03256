//! Sampling on read: turns a source's `SourceSampling` into the table a session scans.
//!
//! - `system`, `bernoulli`, `rows`: a `SampledTable` that attaches a Parquet access plan
//!   to every file of the scan, so skipped rows are never fetched.
//! - `key`: a view filtering the source on `sluice_key_sample(key, seed, fraction)`.
//! - full: the listing table as it is.
//!
//! Every scan reads footers through the store's cache (`crate::store::footers`).

pub mod access;
pub mod build;
pub mod hash;
pub mod key;
pub mod statistics;
mod units;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::error::Result as DfResult;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileStatisticsCache};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, ident};
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;

use crate::error::{Result, SluiceError};
use crate::project::SourceDef;
use crate::project::sampling::{SamplePolicy, SourceSampling};
use crate::scan::statistics::SourceStatistics;
use crate::store::SourceListing;
use crate::store::footers::CachedFooterReaderFactory;
use crate::store::snapshot::{SNAPSHOT_URL, ScanSnapshot};
use access::FileLayout;
use key::{KeySample, KeySampleCounters};

/// How one source is read in one session, and what its sample kept.
#[derive(Debug, Clone)]
pub struct SourceScan {
    pub source: String,
    /// The store folder's path as DataFusion sees it (to attribute scan metrics).
    pub location_prefix: String,
    /// What the source reads: `full`, or the policy in effect.
    pub sampling: SourceSampling,
    /// Why a sampled environment reads this source in full, if it does.
    pub full_reason: Option<String>,
    /// What else the report must say of a sampled read (e.g. that it reads a build).
    pub note: Option<String>,
    pub rows_total: u64,
    /// Rows the access plans keep (system, bernoulli, rows).
    pub rows_selected: Option<u64>,
    /// Rows the key filter looked at and kept during the run (key).
    pub key_counters: Option<Arc<KeySampleCounters>>,
    /// The sample build the source's files are, if a build wrote them: the store holds
    /// that fraction of the environment it was built from.
    pub built: Option<crate::store::dataset::BuiltSample>,
    /// The column a `key` sample hashes.
    pub key_column: Option<String>,
    /// The keys a `key` sample keeps whole (heavy keys), when it has any.
    pub heavy_keys: Option<Arc<key::HeavyKeys>>,
    /// The rows of each unit a `system` sample read with its unit column keeps, by the
    /// unit's number (its value in that column): known from the footers, so estimates
    /// calibrate on them without reading the sample a second time.
    pub unit_rows: Option<Arc<[u64]>>,
}

impl SourceScan {
    /// The fraction of the source's rows the sample keeps (1.0 for a full read).
    pub fn fraction(&self) -> f64 {
        if let Some(sel) = self.rows_selected {
            return if self.rows_total == 0 {
                1.0
            } else {
                sel as f64 / self.rows_total as f64
            };
        }
        if let Some(c) = &self.key_counters {
            let seen = c.rows_in.load(std::sync::atomic::Ordering::Relaxed);
            let kept = c.rows_kept.load(std::sync::atomic::Ordering::Relaxed);
            return if seen == 0 {
                0.0
            } else {
                kept as f64 / seen as f64
            };
        }
        1.0
    }

    pub fn describe(&self) -> String {
        match (&self.sampling, &self.full_reason) {
            (SourceSampling::Full, Some(why)) => format!("full ({why})"),
            (SourceSampling::Full, None) => "full".into(),
            (SourceSampling::Sampled(p), _) => match &self.note {
                Some(note) => format!("{p} {note}"),
                None => p.to_string(),
            },
        }
    }
}

/// The column a `key` sample reads in a source: its own `sample_key`, else the policy's
/// `key` if the source has that column.
pub fn key_column(
    def: &SourceDef,
    key: Option<&str>,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Option<String> {
    match (&def.sample_key, key) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(k)) if schema.field_with_name(k).is_ok() => Some(k.to_string()),
        _ => None,
    }
}

/// Registers a source in a session as it must be read under `sampling`. With `units`, a
/// `system` sample exposes the unit each row was sampled in as the partition column
/// `sluice_sample_unit` (estimates group by it).
pub async fn register_source(
    ctx: &SessionContext,
    env: &str,
    def: &SourceDef,
    listing: &SourceListing,
    sampling: SourceSampling,
    snapshot: &Arc<ScanSnapshot>,
    units: bool,
    heavy: Option<Arc<key::HeavyKeys>>,
) -> Result<SourceScan> {
    if units && let SourceSampling::Sampled(policy @ SamplePolicy::System { .. }) = &sampling {
        return register_system_units(ctx, env, def, listing, policy, snapshot).await;
    }
    let (folder, seen) = snapshot.add(&listing.files, &|f| file_name(def, f));
    share_footers(ctx, listing.files.iter().zip(&seen));
    let url = ListingTableUrl::parse(format!("{SNAPSHOT_URL}/{folder}/"))?;
    let reader = Arc::new(CachedFooterReaderFactory::new(snapshot.clone()));
    let scan_options = ScanOptions::of(ctx);
    let read_as = read_types(listing, &scan_options.parquet);
    let listing = read_as.as_ref().unwrap_or(listing);
    let location_prefix = folder.clone();
    let rows_total = listing.rows();
    let schema = listing.table_schema();
    let err = |message: String| SluiceError::Source {
        env: env.to_string(),
        source_name: def.name.clone(),
        message,
    };
    let mut scan = SourceScan {
        source: def.name.clone(),
        location_prefix,
        sampling: sampling.clone(),
        full_reason: None,
        note: None,
        rows_total,
        rows_selected: None,
        key_counters: None,
        built: listing.built_sample.clone(),
        key_column: None,
        heavy_keys: None,
        unit_rows: None,
    };

    let policy = match sampling {
        SourceSampling::Full => {
            if def.sample == Some(SourceSampling::Full) {
                scan.full_reason = Some("source setting".into());
            }
            let table = source_table(
                def,
                &url,
                listing,
                &schema,
                &scan_options,
                reader.clone(),
                None,
            )
            .map_err(|e| err(e.to_string()))?;
            ctx.register_table(def.name.as_str(), table)?;
            return Ok(scan);
        }
        SourceSampling::Sampled(p) => p,
    };

    if let SamplePolicy::Key {
        fraction,
        seed,
        key,
    } = &policy
    {
        let Some(column) = key_column(def, key.as_deref(), &schema) else {
            scan.sampling = SourceSampling::Full;
            scan.full_reason = Some(match key {
                Some(k) => format!("no `{k}` column and no sample_key"),
                None => "no sample_key".into(),
            });
            let table = source_table(
                def,
                &url,
                listing,
                &schema,
                &scan_options,
                reader.clone(),
                None,
            )
            .map_err(|e| err(e.to_string()))?;
            ctx.register_table(def.name.as_str(), table)?;
            return Ok(scan);
        };
        if schema.field_with_name(&column).is_err() {
            return Err(err(format!(
                "sample_key `{column}` is not a column of the source"
            )));
        }
        let counters = Arc::new(KeySampleCounters::default());
        let table = source_table(
            def,
            &url,
            listing,
            &schema,
            &scan_options,
            reader.clone(),
            None,
        )
        .map_err(|e| err(e.to_string()))?;
        // The keys kept whole: a build's own heavy keys when reading a build on its key,
        // else those given (the same in every source sampled on this key), else this
        // source's own.
        let heavy = match (&listing.built_sample, heavy) {
            (Some(b), _) if b.key == column => {
                Arc::new(key::HeavyKeys::from_strings(&b.heavy_keys))
            }
            (_, Some(h)) => h,
            (_, None) => Arc::new(
                find_heavy_keys(ctx, table.clone(), listing, &column)
                    .await
                    .map_err(|e| err(format!("finding heavy keys of `{column}`: {e}")))?,
            ),
        };
        let plan = LogicalPlanBuilder::scan(def.name.as_str(), provider_as_source(table), None)?
            .filter(KeySample::predicate(
                ident(column.as_str()),
                other_columns(&schema, &column),
                *seed,
                *fraction,
                counters.clone(),
                heavy.clone(),
            ))?
            .build()?;
        let view = datafusion::catalog::view::ViewTable::new(plan, None);
        ctx.register_table(def.name.as_str(), Arc::new(view))?;
        scan.key_counters = Some(counters);
        scan.key_column = Some(column);
        scan.heavy_keys = Some(heavy);
        return Ok(scan);
    }

    let layouts = file_layouts(listing);
    let plan = access::plan(&policy, &layouts).expect("access-plan policies");
    scan.rows_selected = Some(plan.rows_selected);
    let plans: HashMap<String, Arc<ParquetAccessPlan>> = listing
        .files
        .iter()
        .zip(plan.files)
        .zip(&seen)
        .map(|((_, p), seen)| (seen.clone(), Arc::new(p)))
        .collect();
    let table = source_table(
        def,
        &url,
        listing,
        &schema,
        &scan_options,
        reader,
        Some((Arc::new(plans), plan.rows_selected)),
    )
    .map_err(|e| err(e.to_string()))?;
    ctx.register_table(def.name.as_str(), table)?;
    Ok(scan)
}

/// Each file's layout as sampling sees it: row groups and, with a page index, where
/// each page of the first column starts.
fn file_layouts(listing: &SourceListing) -> Vec<FileLayout> {
    listing
        .files
        .iter()
        .map(|f| FileLayout {
            relative_path: f.relative_path.clone(),
            row_groups: f
                .metadata
                .row_groups()
                .iter()
                .map(|rg| rg.num_rows() as u64)
                .collect(),
            page_starts: f
                .metadata
                .offset_index()
                .map(|groups| {
                    groups
                        .iter()
                        .map(|columns| {
                            columns
                                .first()
                                .map(|c| {
                                    c.page_locations()
                                        .iter()
                                        .map(|p| p.first_row_index as u64)
                                        .collect()
                                })
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// A `system` sample read with the unit of every row (`units.rs`): each file that keeps
/// a unit is an entry of the run's snapshot under the partition folder
/// `sluice_sample_file=<n>`, read by the access plan of all its units (as a plain
/// sampled run reads it); the table shows the unit of each row in place of `n`.
async fn register_system_units(
    ctx: &SessionContext,
    env: &str,
    def: &SourceDef,
    listing: &SourceListing,
    policy: &SamplePolicy,
    snapshot: &Arc<ScanSnapshot>,
) -> Result<SourceScan> {
    let err = |message: String| SluiceError::Source {
        env: env.to_string(),
        source_name: def.name.clone(),
        message,
    };
    let scan_options = ScanOptions::of(ctx);
    // The column types DataFusion reads the files as, as a plain scan reads them.
    let read_as = read_types(listing, &scan_options.parquet);
    let listing = read_as.as_ref().unwrap_or(listing);
    let layouts = file_layouts(listing);
    let plan = access::plan(policy, &layouts).expect("system is an access-plan policy");
    let mut entries = Vec::new();
    let mut file_plans = Vec::new();
    let mut unit_rows = Vec::new();
    let mut index = units::UnitIndex::default();
    for (fi, kept) in plan.units.iter().enumerate() {
        if kept.is_empty() {
            continue;
        }
        let mut numbered = Vec::with_capacity(kept.len());
        for u in kept {
            let unit_plan = u.access_plan(&layouts[fi].row_groups);
            numbered.push((*u, unit_rows.len() as u64));
            unit_rows.push(access::selected_rows(&unit_plan, &layouts[fi].row_groups));
        }
        let file_number = index.add_file(&layouts[fi].row_groups, &numbered);
        entries.push((&listing.files[fi], Some(file_number)));
        file_plans.push(Arc::new(plan.files[fi].clone()));
    }
    let (folder, seen) = snapshot.add_parts(entries.iter().copied(), &|f| file_name(def, f));
    share_footers(ctx, entries.iter().map(|(f, _)| *f).zip(&seen));
    let url = ListingTableUrl::parse(format!("{SNAPSHOT_URL}/{folder}/"))?;
    let reader = Arc::new(CachedFooterReaderFactory::new(snapshot.clone()));
    let mut with_file = listing.clone();
    with_file
        .partitions
        .push(crate::store::snapshot::UNIT_FILE_COLUMN.to_string());
    let schema = with_file.table_schema();
    let plans: HashMap<String, Arc<ParquetAccessPlan>> =
        seen.iter().cloned().zip(file_plans).collect();
    let table = source_table(
        def,
        &url,
        &with_file,
        &schema,
        &scan_options,
        reader,
        Some((Arc::new(plans), plan.rows_selected)),
    )
    .map_err(|e| err(e.to_string()))?;
    ctx.register_table(
        def.name.as_str(),
        Arc::new(units::UnitsTable::new(table, index)),
    )?;
    Ok(SourceScan {
        source: def.name.clone(),
        location_prefix: folder,
        sampling: SourceSampling::Sampled(policy.clone()),
        full_reason: None,
        note: None,
        rows_total: listing.rows(),
        rows_selected: Some(plan.rows_selected),
        key_counters: None,
        built: listing.built_sample.clone(),
        key_column: None,
        heavy_keys: None,
        unit_rows: Some(unit_rows.into()),
    })
}

/// The heavy keys of a source read whole by `table`: each holding at least
/// `HEAVY_SHARE` of its rows (at most 100 of them). Read once per process for a set of
/// files (the store's footer cache keeps the answer).
pub async fn find_heavy_keys(
    ctx: &SessionContext,
    table: Arc<dyn TableProvider>,
    listing: &SourceListing,
    column: &str,
) -> Result<key::HeavyKeys> {
    let rows = listing.rows();
    // Below a few hundred rows a 1% key is a handful of rows: no stratum worth making.
    if rows < 500 {
        return Ok(key::HeavyKeys::default());
    }
    let cache = listing.files.first().map(|f| f.footers.clone());
    let cache_key = crate::store::footers::FooterCache::files_key(
        listing.files.iter().map(|f| &f.meta),
        &format!("heavy keys of {column} at {}", key::HEAVY_SHARE),
    );
    if let Some(keys) = cache.as_ref().and_then(|c| c.derived(&cache_key)) {
        return Ok(key::HeavyKeys::from_strings(&keys));
    }
    // Heavy: at least HEAVY_SHARE of the rows, and at least HEAVY_TIMES the rows of an
    // average key (with few keys every key holds 1%: none is heavy then).
    let name = format!(
        "__sluice_heavy_{}",
        NEXT_HEAVY.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    ctx.register_table(name.as_str(), table)?;
    let sql = format!(
        "SELECT CAST(k AS VARCHAR) AS k FROM (SELECT {col} AS k, count(*) AS n, count(*) OVER () AS keys FROM {name} WHERE {col} IS NOT NULL GROUP BY 1) WHERE n >= {share} * {rows} AND n >= {times} * {rows} / keys",
        col = crate::util::text::quote_ident(column),
        share = key::HEAVY_SHARE,
        times = key::HEAVY_TIMES,
    );
    let counts = ctx.sql(&sql).await;
    let counts = match counts {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    ctx.deregister_table(name.as_str())?;
    let counts = counts?;
    let mut keys = Vec::new();
    for b in &counts {
        let arr = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let arr = datafusion::arrow::array::AsArray::as_string::<i32>(&arr);
        keys.extend(arr.iter().flatten().map(str::to_string));
    }
    keys.sort();
    if let Some(c) = cache {
        c.set_derived(cache_key, Arc::new(keys.clone()));
    }
    Ok(key::HeavyKeys::from_strings(&keys))
}

static NEXT_HEAVY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Every column of a source but its key: they decide the rows whose key is NULL.
pub fn other_columns(schema: &datafusion::arrow::datatypes::Schema, key: &str) -> Vec<Expr> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != key)
        .map(|f| ident(f.name()))
        .collect()
}

/// The listing with the column types DataFusion reads its files as, if they differ from
/// the files' own: strings and binaries as views (`schema_force_view_types`, on by
/// default) and binaries as strings (`binary_as_string`), as DataFusion's
/// `ParquetFormat::infer_schema` does for a table it lists itself. The store lists a
/// source's schema from its footers, where pyarrow, DuckDB, Spark and tpchgen-cli
/// record `Utf8`; read as such, their strings were copied into offset buffers and
/// compared row by row, while Sluice's own files, which record views, were not (and
/// `optimizer::view_equality` compared only those).
fn read_types(listing: &SourceListing, options: &TableParquetOptions) -> Option<SourceListing> {
    use datafusion::datasource::file_format::parquet::{
        transform_binary_to_string, transform_schema_to_view,
    };
    let mut schema = listing.file_schema.as_ref().clone();
    if options.global.binary_as_string {
        schema = transform_binary_to_string(&schema);
    }
    if options.global.schema_force_view_types {
        schema = transform_schema_to_view(&schema);
    }
    (schema != *listing.file_schema).then(|| SourceListing {
        file_schema: Arc::new(schema),
        ..listing.clone()
    })
}

/// A source's file as errors name it: `source `calls`: /data/production/calls/p.parquet`.
fn file_name(def: &SourceDef, file: &crate::store::SourceFile) -> String {
    format!("source `{}`: {}", def.name, file.shown)
}

/// Hands the listing's footers to the run's DataFusion metadata cache under the paths the
/// run sees the files at: DataFusion derives each file's statistics from its footer when
/// it plans a scan, and would otherwise read and parse every footer again in every run
/// (a new run sees the files at new paths, and has a new cache).
fn share_footers<'a>(
    ctx: &SessionContext,
    files: impl Iterator<Item = (&'a crate::store::SourceFile, &'a String)>,
) {
    let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
    for (file, seen) in files {
        let meta = ObjectMeta {
            location: ObjectPath::from(seen.as_str()),
            ..file.meta.clone()
        };
        cache.put(
            &meta.location,
            CachedFileMetadataEntry::new(
                meta.clone(),
                Arc::new(CachedParquetMetaData::new(Arc::clone(&file.metadata))),
            ),
        );
    }
}

/// What a session's scans take from its configuration, as DataFusion's own
/// `register_parquet` takes it: the Parquet reading options (`datafusion.execution.parquet.*`:
/// filter pushdown, page index, bloom filters…) and the session's file statistics cache.
struct ScanOptions {
    parquet: TableParquetOptions,
    statistics_cache: Option<Arc<FileStatisticsCache>>,
}

impl ScanOptions {
    fn of(ctx: &SessionContext) -> ScanOptions {
        ScanOptions {
            parquet: ctx.copied_table_options().parquet,
            statistics_cache: ctx.runtime_env().cache_manager.get_file_statistic_cache(),
        }
    }
}

/// How DataFusion lists and reads a source's files: Parquet in `format`, its hive
/// partition columns, and its declared sort order (each sort column checked).
pub(crate) fn listing_options(
    def: &SourceDef,
    listing: &SourceListing,
    table_schema: &SchemaRef,
    format: ParquetFormat,
) -> DfResult<ListingOptions> {
    let mut options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_table_partition_cols(
            listing
                .partitions
                .iter()
                .map(|p| (p.clone(), DataType::Utf8))
                .collect(),
        );
    if !def.sort.is_empty() {
        for k in &def.sort {
            if table_schema.field_with_name(&k.column).is_err() {
                return datafusion::common::plan_err!(
                    "sort column `{}` is not a column of the source",
                    k.column
                );
            }
        }
        let order = def
            .sort
            .iter()
            .map(|k| ident(k.column.as_str()).sort(!k.descending, k.nulls_first))
            .collect();
        options = options.with_file_sort_order(vec![order]);
    }
    Ok(options)
}

/// The table a session scans for a source: DataFusion's listing table (pruning, file
/// groups, ordering), whose scans read through the store's footer cache and, for an
/// access-plan sample, only the planned row groups and rows.
fn source_table(
    def: &SourceDef,
    url: &ListingTableUrl,
    listing: &SourceListing,
    table_schema: &SchemaRef,
    scan_options: &ScanOptions,
    reader: Arc<CachedFooterReaderFactory>,
    sample: Option<(Arc<HashMap<String, Arc<ParquetAccessPlan>>>, u64)>,
) -> DfResult<Arc<dyn TableProvider>> {
    let format = ParquetFormat::default().with_options(scan_options.parquet.clone());
    let options = listing_options(def, listing, table_schema, format)?;
    let config = ListingTableConfig::new(url.clone())
        .with_listing_options(options)
        .with_schema(listing.file_schema.clone());
    let (plans, rows_selected) = match sample {
        Some((plans, rows)) => (Some(plans), Some(rows)),
        None => (None, None),
    };
    Ok(Arc::new(SourceTable {
        inner: Arc::new(
            ListingTable::try_new(config)?.with_cache(scan_options.statistics_cache.clone()),
        ),
        reader,
        plans,
        statistics: SourceStatistics::new(
            listing.files.iter().map(|f| f.metadata.clone()).collect(),
            listing.file_schema.clone(),
            table_schema.clone(),
            rows_selected,
        ),
    }))
}

/// A source as scanned by Sluice (see `source_table`).
#[derive(Debug)]
struct SourceTable {
    inner: Arc<dyn TableProvider>,
    reader: Arc<CachedFooterReaderFactory>,
    /// Access plan of each file, by its object-store location; `None`: every row.
    plans: Option<Arc<HashMap<String, Arc<ParquetAccessPlan>>>>,
    statistics: SourceStatistics,
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn statistics(&self) -> Option<Statistics> {
        self.statistics.get()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        let plans = self.plans.clone();
        let reader = self.reader.clone();
        let schema = self.inner.schema();
        plan.transform_down(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let source = parquet
                .clone()
                .with_parquet_file_reader_factory(reader.clone());
            let mut builder =
                FileScanConfigBuilder::from(config.clone()).with_source(Arc::new(source));
            if let Some(plans) = &plans {
                let groups: Vec<FileGroup> = config
                    .file_groups
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            // A file that appeared after the sample was planned is not
                            // read: the sample stays the one that was planned.
                            .filter_map(|file| {
                                let plan = plans.get(file.object_meta.location.as_ref())?;
                                let mut file = file.clone();
                                file.statistics = None;
                                file.extensions.insert_arc(plan.clone());
                                Some(file)
                            })
                            .collect()
                    })
                    .collect();
                // The files' statistics describe the full set, not the sample: drop
                // them so no query is answered from them.
                builder = builder
                    .with_file_groups(groups)
                    .with_statistics(Statistics::new_unknown(&schema));
            }
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(builder.build()) as Arc<dyn ExecutionPlan>,
            ))
        })
        .map(|t| t.data)
    }
}
