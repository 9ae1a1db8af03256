//! Sample builds: fill one environment's store (staging) with a key sample of another's
//! (production). Every source that declares a `sample_key` keeps the same set of key
//! values, so every join on the key still finds its match, and its rows whose key is
//! NULL are sampled row by row at the same fraction; sources without a key (or
//! read `"full"`) are copied whole. Output is sorted by the key's sample hash, so rows
//! of one key sit together and a later `system` read of the build picks whole keys.

use std::sync::Arc;

use datafusion::prelude::ident;
use futures::StreamExt;

use crate::error::{Result, SluiceError};
use crate::project::Project;
use crate::project::sampling::{SampleOverride, SamplePolicy, SourceSampling, check_fraction};
use crate::scan::key::{KeyHash, KeySample, KeySampleCounters};
use crate::session::EnvSession;
use crate::store::dataset::{
    BuiltSample, DatasetWriter, WriteMode, commit_together, resolve_pending,
};
use crate::store::{STATE_DIR, Store};

/// Rows per row group of a key-sampled source in a build: small, so a `system` sample
/// of it has groups to pick, each a run of whole keys.
const BUILD_ROW_GROUP_ROWS: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct SampleBuildOptions {
    pub fraction: f64,
    /// The key column; by default each source's `sample_key`.
    pub key: Option<String>,
    pub seed: u64,
}

impl SampleBuildOptions {
    /// The options of a build into `to`: what is given, else the target's own sample
    /// policy (so a build matches what the target reads), else 10% with seed 0.
    pub fn for_target(
        project: &Project,
        to: &str,
        fraction: Option<f64>,
        key: Option<String>,
        seed: Option<u64>,
    ) -> Result<SampleBuildOptions> {
        let policy = project.environment(to)?.sample.as_ref();
        Ok(SampleBuildOptions {
            fraction: fraction
                .or_else(|| policy.and_then(SamplePolicy::fraction))
                .unwrap_or(0.1),
            key,
            seed: seed.or_else(|| policy.map(SamplePolicy::seed)).unwrap_or(0),
        })
    }
}

/// What happened to one source.
#[derive(Debug, Clone)]
pub struct SourceBuild {
    pub source: String,
    /// `key account_id`, or `whole` with why.
    pub method: String,
    pub rows_in: u64,
    pub bytes_in: u64,
    pub rows_out: u64,
    pub bytes_out: u64,
    /// Rows whose key is NULL, and those of them kept: a stratum of their own, sampled
    /// row by row at the same fraction.
    pub null_keys_in: u64,
    pub null_keys_kept: u64,
}

#[derive(Debug, Clone)]
pub struct SampleBuildReport {
    pub from: String,
    pub to: String,
    pub options: SampleBuildOptions,
    pub sources: Vec<SourceBuild>,
}

impl SampleBuildReport {
    /// Rows kept over rows read, across the key-sampled sources.
    pub fn effective_fraction(&self) -> Option<f64> {
        let (inp, out) = self
            .sources
            .iter()
            .filter(|s| s.method.starts_with("key"))
            .fold((0u64, 0u64), |(i, o), s| (i + s.rows_in, o + s.rows_out));
        (inp > 0).then(|| out as f64 / inp as f64)
    }
}

/// Progress of a build, for a progress bar.
#[derive(Debug, Clone)]
pub struct BuildProgress {
    pub source: String,
    pub index: usize,
    pub total: usize,
    /// Bytes of the sources read so far (whole sources).
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Builds `to`'s store from `from`'s data. Refuses a protected target: a sample never
/// overwrites what production reads.
pub async fn build(
    project: Arc<Project>,
    from: &str,
    to: &str,
    options: &SampleBuildOptions,
    actor: &str,
    progress: &(dyn Fn(&BuildProgress) + Sync),
) -> Result<SampleBuildReport> {
    check_fraction(options.fraction).map_err(|m| SluiceError::Usage(format!("--fraction: {m}")))?;
    if from == to {
        return Err(SluiceError::Usage(
            "a sample build needs two environments (--from and --to are the same)".into(),
        ));
    }
    let target_env = project.environment(to)?.clone();
    if target_env.protected {
        return Err(SluiceError::Usage(format!(
            "environment `{to}` is protected: a sample build never writes into it"
        )));
    }
    let full = SampleOverride {
        full: true,
        ..Default::default()
    };
    let source_session = EnvSession::open(project.clone(), from, &full)?;
    let target = Store::open(&target_env)?;
    target.check().await?;

    let names = source_session.source_names().await?;
    let mut listings = Vec::new();
    for name in &names {
        let (df, listing) = source_session.source_frame(name).await?;
        listings.push((name.clone(), df, listing));
    }
    let bytes_total: u64 = listings.iter().map(|(_, _, l)| l.bytes()).sum();
    let mut bytes_done = 0;
    let mut sources = Vec::new();
    // Every source is written first and committed with the others at the end, in one
    // commit: a build that fails or is killed part-way leaves the target as it was, never
    // some sources of the new build beside others of the old one.
    let mut prepared = Vec::new();
    for (index, (name, df, listing)) in listings.into_iter().enumerate() {
        progress(&BuildProgress {
            source: name.clone(),
            index,
            total: names.len(),
            bytes_done,
            bytes_total,
        });
        let def = source_session
            .source_def(&name)
            .await?
            .expect("a listed source");
        let schema = listing.table_schema();
        let key = match (&def.sample, &options.key, &def.sample_key) {
            (Some(SourceSampling::Full), _, _) => Err("whole (sample = \"full\")".to_string()),
            (_, Some(k), _) if schema.field_with_name(k).is_ok() => Ok(k.clone()),
            (_, _, Some(k)) => Ok(k.clone()),
            _ => Err("whole (no sample_key)".to_string()),
        };
        let counters = Arc::new(KeySampleCounters::default());
        // Heavy keys (each with 1% of the source's rows or more) are kept whole.
        let heavy = match &key {
            Ok(k) => {
                source_session
                    .shared_heavy_keys(k, options.key.as_deref())
                    .await?
            }
            Err(_) => Arc::new(crate::scan::key::HeavyKeys::default()),
        };
        let (df, method) = match &key {
            Ok(k) => {
                let key_col = ident(k.as_str());
                let df = df
                    .filter(KeySample::predicate(
                        key_col.clone(),
                        crate::scan::other_columns(&schema, k),
                        options.seed,
                        options.fraction,
                        counters.clone(),
                        heavy.clone(),
                    ))?
                    .sort(vec![KeyHash::expr(key_col, options.seed).sort(true, false)])?;
                (df, format!("key {k}"))
            }
            Err(why) => (df, why.clone()),
        };
        let mut stream = df.execute_stream().await?;
        let mut writer =
            DatasetWriter::begin(&target, &def.path, &listing.partitions, actor).await?;
        // Small row groups only where rows sit in key-hash order; a source copied whole
        // keeps the writer's usual layout (16K-row groups made q02, which reads
        // `partsupp` whole, 1.5× slower at SF 10).
        if let Ok(k) = &key {
            writer = writer
                .row_group_rows(BUILD_ROW_GROUP_ROWS)
                .built_sample(BuiltSample {
                    from: from.to_string(),
                    key: k.clone(),
                    fraction: options.fraction,
                    seed: options.seed,
                    heavy_keys: heavy.to_strings(),
                    origin_rows: Some(listing.rows()),
                });
        }
        let mut rows_out = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows_out += batch.num_rows() as u64;
            writer.write(&batch).await?;
        }
        let origin = format!(
            "sample build from {from}: {method}, fraction {}, seed {}",
            options.fraction, options.seed
        );
        let write = writer.prepare(WriteMode::Replace, &origin).await?;
        let manifest = write.manifest().clone();
        prepared.push(write);
        if index == 0 {
            crate::util::failpoint::hit("sample_build:between_sources");
        }
        bytes_done += listing.bytes();
        sources.push(SourceBuild {
            source: name.clone(),
            method,
            rows_in: listing.rows(),
            bytes_in: listing.bytes(),
            rows_out,
            bytes_out: manifest.files.iter().map(|f| f.bytes).sum(),
            null_keys_in: counters
                .null_keys_in
                .load(std::sync::atomic::Ordering::Relaxed),
            null_keys_kept: counters
                .null_keys_kept
                .load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    let report = SampleBuildReport {
        from: from.to_string(),
        to: to.to_string(),
        options: options.clone(),
        sources,
    };
    let record = serde_json::json!({
        "from": from,
        "fraction": options.fraction,
        "key": options.key,
        "seed": options.seed,
        "built_at": crate::util::clock::now(),
        "actor": actor,
        "effective_fraction": report.effective_fraction(),
        "sources": report.sources.iter().map(|s| serde_json::json!({
            "source": s.source, "method": s.method, "rows_in": s.rows_in, "rows_out": s.rows_out,
            "null_keys_in": s.null_keys_in, "null_keys_kept": s.null_keys_kept,
        })).collect::<Vec<_>>(),
    });
    // The record is part of the commit; what a killed build left pending for it is
    // settled first (the build holds every source's lock, as any build of this store).
    let record_path = format!("{STATE_DIR}/sample_build.json");
    resolve_pending(&target, &record_path, actor).await?;
    commit_together(
        &target,
        prepared,
        vec![(
            record_path,
            serde_json::to_string_pretty(&record).expect("json"),
        )],
        &format!("sample build from {from}"),
    )
    .await?;
    Ok(report)
}
