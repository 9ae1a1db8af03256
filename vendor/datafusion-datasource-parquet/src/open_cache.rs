//! Sluice's change (vendor/README.md): what opening a file derives from its schema and the
//! scan's predicate, kept for the next file with the same schema.
//!
//! A scan of many files with one schema (daily folders, a writer's parts) opened each
//! file from scratch: it decoded the Arrow schema the writer embedded, converted the
//! Parquet schema twice, and built up to three pruning predicates from the same
//! predicate and schema (file statistics, row-group statistics, the inverted predicate of
//! the fully-matched check). On 92 one-row-group files that was more CPU than reading
//! them. Each entry here is keyed by everything its value is derived from, compared by
//! value (never by address alone), so a file whose schema, metadata or rewritten
//! predicate differs builds its own. Predicates holding a dynamic filter are never
//! cached: a pruning predicate snapshots the filter's value when built.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{SchemaRef, TimeUnit};
use datafusion_physical_expr::DynamicFilterTracking;
use datafusion_physical_expr_common::physical_expr::PhysicalExpr;
use datafusion_physical_plan::metrics::Count;
use datafusion_pruning::{PruningPredicate, PruningPredicateBuilder};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::schema::types::Type;

use crate::page_filter::PagePruningAccessPlanFilter;

/// Entries kept per kind: a scan has one predicate and a handful of file schemas.
const ENTRIES: usize = 16;

/// Shared by every clone of a `ParquetSource`, so by every partition of a scan and every
/// execution of a plan that is kept and run again.
#[derive(Debug, Default)]
pub(crate) struct OpenCache {
    schemas: Mutex<VecDeque<SchemaEntry>>,
    pruning: Mutex<VecDeque<PruningEntry>>,
    pages: Mutex<VecDeque<PageEntry>>,
    inverted: Mutex<VecDeque<InvertedEntry>>,
}

/// What a file's Arrow schema is derived from.
#[derive(Debug, PartialEq)]
pub(crate) struct SchemaKey {
    root: Arc<Type>,
    key_values: Option<Vec<KeyValue>>,
    supplied: Option<SchemaRef>,
    logical: SchemaRef,
    coerce_int96: Option<TimeUnit>,
    coerce_int96_tz: Option<Arc<str>>,
}

impl SchemaKey {
    pub(crate) fn new(
        metadata: &ParquetMetaData,
        supplied: Option<&SchemaRef>,
        logical: &SchemaRef,
        coerce_int96: Option<&TimeUnit>,
        coerce_int96_tz: Option<&Arc<str>>,
    ) -> Self {
        let file = metadata.file_metadata();
        Self {
            root: file.schema_descr().root_schema_ptr(),
            key_values: file.key_value_metadata().cloned(),
            supplied: supplied.cloned(),
            logical: Arc::clone(logical),
            coerce_int96: coerce_int96.cloned(),
            coerce_int96_tz: coerce_int96_tz.cloned(),
        }
    }
}

#[derive(Debug)]
struct SchemaEntry {
    key: SchemaKey,
    /// The file schema the reader is given, after the scan's type coercions.
    schema: SchemaRef,
}

/// Which pruning predicate: they differ in options or in the expression built from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PruningUse {
    /// Against a file's statistics, as `FilePruner` builds it (default options).
    File,
    /// Against row groups' statistics, with the scan's `IN` list limit.
    RowGroups { max_in_list_size: usize },
}

#[derive(Debug)]
struct PruningEntry {
    usage: PruningUse,
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
    built: Option<Arc<PruningPredicate>>,
    /// Whether building failed (counted as a creation error on every use, as before).
    failed: bool,
}

#[derive(Debug)]
struct PageEntry {
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
    built: Arc<PagePruningAccessPlanFilter>,
}

#[derive(Debug)]
struct InvertedEntry {
    /// Held, so its address names it while the entry lives.
    of: Arc<PruningPredicate>,
    schema: SchemaRef,
    built: Option<Arc<PruningPredicate>>,
}

fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

fn same_expr(a: &Arc<dyn PhysicalExpr>, b: &Arc<dyn PhysicalExpr>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Whether a predicate's pruning predicates may be kept: none holds a dynamic filter.
pub(crate) fn cacheable(expr: &Arc<dyn PhysicalExpr>) -> bool {
    !DynamicFilterTracking::classify(expr).contains_dynamic_filter()
}

fn push_bounded<T>(entries: &mut VecDeque<T>, entry: T) {
    if entries.len() == ENTRIES {
        entries.pop_front();
    }
    entries.push_back(entry);
}

impl OpenCache {
    pub(crate) fn schema(&self, key: &SchemaKey) -> Option<SchemaRef> {
        let entries = self.schemas.lock().unwrap();
        entries
            .iter()
            .find(|e| e.key == *key)
            .map(|e| Arc::clone(&e.schema))
    }

    pub(crate) fn keep_schema(&self, key: SchemaKey, schema: SchemaRef) {
        let mut entries = self.schemas.lock().unwrap();
        if !entries.iter().any(|e| e.key == key) {
            push_bounded(&mut entries, SchemaEntry { key, schema });
        }
    }

    /// The pruning predicate of `expr` over `schema`, as `PruningPredicateBuilder::build`
    /// makes it (`None` when it cannot prune or failed to build; a failure adds one to
    /// `errors` each time, as building it anew would).
    pub(crate) fn pruning_predicate(
        &self,
        usage: PruningUse,
        expr: &Arc<dyn PhysicalExpr>,
        schema: &SchemaRef,
        errors: &Count,
    ) -> Option<Arc<PruningPredicate>> {
        if !cacheable(expr) {
            return build(usage, expr, schema, errors).0;
        }
        let found = {
            let entries = self.pruning.lock().unwrap();
            entries
                .iter()
                .find(|e| {
                    e.usage == usage
                        && same_schema(&e.schema, schema)
                        && same_expr(&e.expr, expr)
                })
                .map(|e| (e.built.clone(), e.failed))
        };
        if let Some((built, failed)) = found {
            if failed {
                errors.add(1);
            }
            return built;
        }
        let (built, failed) = build(usage, expr, schema, errors);
        let mut entries = self.pruning.lock().unwrap();
        push_bounded(
            &mut entries,
            PruningEntry {
                usage,
                expr: Arc::clone(expr),
                schema: Arc::clone(schema),
                built: built.clone(),
                failed,
            },
        );
        built
    }

    /// The page pruning filter of `expr` over `schema`.
    pub(crate) fn page_pruning(
        &self,
        expr: &Arc<dyn PhysicalExpr>,
        schema: &SchemaRef,
    ) -> Arc<PagePruningAccessPlanFilter> {
        let make =
            || Arc::new(PagePruningAccessPlanFilter::new(expr, Arc::clone(schema)));
        if !cacheable(expr) {
            return make();
        }
        let found = {
            let entries = self.pages.lock().unwrap();
            entries
                .iter()
                .find(|e| same_schema(&e.schema, schema) && same_expr(&e.expr, expr))
                .map(|e| Arc::clone(&e.built))
        };
        if let Some(built) = found {
            return built;
        }
        let built = make();
        let mut entries = self.pages.lock().unwrap();
        push_bounded(
            &mut entries,
            PageEntry {
                expr: Arc::clone(expr),
                schema: Arc::clone(schema),
                built: Arc::clone(&built),
            },
        );
        built
    }
}

impl OpenCache {
    /// The inverted predicate of the fully-matched check for `of` (a predicate this cache
    /// built) over `schema`, made by `make` the first time.
    pub(crate) fn inverted(
        &self,
        of: &Arc<PruningPredicate>,
        schema: &SchemaRef,
        make: impl FnOnce() -> Option<PruningPredicate>,
    ) -> Option<Arc<PruningPredicate>> {
        let found = {
            let entries = self.inverted.lock().unwrap();
            entries
                .iter()
                .find(|e| Arc::ptr_eq(&e.of, of) && same_schema(&e.schema, schema))
                .map(|e| e.built.clone())
        };
        if let Some(built) = found {
            return built;
        }
        let built = make().map(Arc::new);
        let mut entries = self.inverted.lock().unwrap();
        push_bounded(
            &mut entries,
            InvertedEntry {
                of: Arc::clone(of),
                schema: Arc::clone(schema),
                built: built.clone(),
            },
        );
        built
    }
}

/// `PruningPredicateBuilder::build`, saying whether it failed.
fn build(
    usage: PruningUse,
    expr: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    errors: &Count,
) -> (Option<Arc<PruningPredicate>>, bool) {
    let mut builder = PruningPredicateBuilder::new().with_file_schema(Arc::clone(schema));
    if let PruningUse::RowGroups { max_in_list_size } = usage {
        builder = builder.with_max_in_list_size(max_in_list_size);
    }
    match builder.try_build(Arc::clone(expr)) {
        Ok(built) if built.always_true() => (None, false),
        Ok(built) => (Some(Arc::new(built)), false),
        Err(e) => {
            log::debug!("Could not create pruning predicate for: {e}");
            errors.add(1);
            (None, true)
        }
    }
}
