//! Run statistics: one record per run of a pipe (from the command line or over HTTP),
//! written in batches as Parquet files under the environment's own store
//! (`_sluice/stats/`), and readable in any query of that environment as the table
//! `sluice.pipe_stats`.
//!
//! Recording never blocks a run: records go through a bounded channel to a background
//! writer that flushes every few seconds or every few thousand records; when the
//! channel is full a record is dropped and counted, rather than slowing the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::project::Pipe;
pub use crate::project::system_tables::{STATS_DIR, STATS_SCHEMA, STATS_TABLE, stats_schema};
use crate::session::report::RunReport;
use crate::session::{EnvSession, RunOptions, RunOutput};
use crate::store::Store;

/// One run of a pipe.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub started_at: SystemTime,
    pub env: String,
    pub pipe: String,
    /// The content version of the pipe definition that ran.
    pub version: String,
    /// `cli` or `http`.
    pub origin: &'static str,
    pub duration: Duration,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub rows_out: u64,
    /// The fraction of the sources' rows the sample kept (1.0: full set).
    pub sample_fraction: f64,
    /// `ok`, or the kind of failure (`error`, `timeout`, `rejected`).
    pub status: String,
    pub error: Option<String>,
    /// The name of the token of an HTTP request.
    pub token: Option<String>,
    /// SHA-256 of the parameters as given (name=value, sorted), to group calls.
    pub params_hash: String,
}

impl RunRecord {
    /// A record of a run that produced `report`.
    pub fn finished(
        pipe: &crate::project::Pipe,
        origin: &'static str,
        started_at: SystemTime,
        given: &[(String, String)],
        report: &RunReport,
    ) -> RunRecord {
        RunRecord {
            started_at,
            env: report.env.clone(),
            pipe: pipe.name.clone(),
            version: pipe_version(pipe),
            origin,
            duration: report.elapsed,
            rows_read: report.rows_scanned(),
            bytes_read: report.bytes_scanned(),
            rows_out: report.rows_out,
            sample_fraction: report.effective_fraction(),
            status: "ok".into(),
            error: None,
            token: None,
            params_hash: params_hash(given),
        }
    }

    /// A record of a run that failed (or never started: a bad parameter, a timeout).
    #[allow(clippy::too_many_arguments)]
    pub fn failed(
        env: &str,
        pipe: &str,
        version: Option<String>,
        origin: &'static str,
        started_at: SystemTime,
        given: &[(String, String)],
        status: &str,
        error: String,
    ) -> RunRecord {
        RunRecord {
            started_at,
            env: env.to_string(),
            pipe: pipe.to_string(),
            version: version.unwrap_or_default(),
            origin,
            duration: started_at.elapsed().unwrap_or_default(),
            rows_read: 0,
            bytes_read: 0,
            rows_out: 0,
            sample_fraction: 1.0,
            status: status.to_string(),
            error: Some(error),
            token: None,
            params_hash: params_hash(given),
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> RunRecord {
        self.token = token;
        self
    }
}

/// Runs a pipe like `EnvSession::run_pipe_def` and appends its run record (finished or failed)
/// to the environment's `_sluice/stats/`. A record that cannot be written is
/// logged; it never fails the run.
pub async fn run_pipe_recorded(
    session: &EnvSession,
    pipe: &Pipe,
    given: &[(String, String)],
    options: &RunOptions,
    origin: &'static str,
) -> Result<RunOutput> {
    let started_at = std::time::SystemTime::now();
    let result = session.run_pipe_def(pipe, given, options).await;
    let record = match &result {
        Ok(out) => RunRecord::finished(pipe, origin, started_at, given, &out.report),
        Err(e) => RunRecord::failed(
            &session.environment().name,
            &pipe.name,
            Some(pipe_version(pipe)),
            origin,
            started_at,
            given,
            "error",
            e.to_string(),
        ),
    };
    if let Err(e) = write_records(session.store(), &[record]).await {
        tracing::warn!(env = %session.environment().name, pipe = %pipe.name, "run statistics not written: {e}");
    }
    result
}

/// The short content version of a pipe definition (as deployments name it).
pub fn pipe_version(pipe: &crate::project::Pipe) -> String {
    crate::project::version_of(&pipe.text).unwrap_or_default()
}

/// SHA-256 (hex, 16 characters) of the parameters as given, in name order.
pub fn params_hash(given: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = given.iter().collect();
    pairs.sort();
    let mut h = Sha256::new();
    for (k, v) in pairs {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn to_batch(records: &[RunRecord]) -> Result<RecordBatch> {
    let n = records.len();
    let mut started = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let s = |f: fn(&RunRecord) -> Option<&str>| {
        let mut b = StringBuilder::new();
        for r in records {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let env = s(|r| Some(&r.env));
    let pipe = s(|r| Some(&r.pipe));
    let version = s(|r| Some(&r.version));
    let origin = s(|r| Some(r.origin));
    let status = s(|r| Some(&r.status));
    let error = s(|r| r.error.as_deref());
    let token = s(|r| r.token.as_deref());
    let params = s(|r| Some(&r.params_hash));
    let u = |f: fn(&RunRecord) -> u64| {
        let mut b = UInt64Builder::with_capacity(n);
        for r in records {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let f = |f: fn(&RunRecord) -> f64| {
        let mut b = Float64Builder::with_capacity(n);
        for r in records {
            b.append_value(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    for r in records {
        let micros = r
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        started.append_value(micros);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(started.finish()),
        env,
        pipe,
        version,
        origin,
        f(|r| r.duration.as_secs_f64() * 1000.0),
        u(|r| r.rows_read),
        u(|r| r.bytes_read),
        u(|r| r.rows_out),
        f(|r| r.sample_fraction),
        status,
        error,
        token,
        params,
    ];
    Ok(RecordBatch::try_new(stats_schema(), columns)?)
}

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// Writes `records` as one new Parquet file of `_sluice/stats/` (a new name each
/// time: writers in several processes never overwrite each other).
pub async fn write_records(store: &Store, records: &[RunRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    // A store that is not there (a folder never made) gets no records: writing them
    // would create it, and a later run would take it for a store.
    if let Some(dir) = store.location().local_dir()
        && !dir.is_dir()
    {
        tracing::debug!(store = %dir.display(), "no run records: the store does not exist");
        return Ok(());
    }
    let batch = to_batch(records)?;
    let mut buf = Vec::new();
    let props = crate::store::dataset::writer_properties(records.len().max(1));
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    let now = chrono::Utc::now();
    let name = format!(
        "{STATS_DIR}/{}-{}-{:06}.parquet",
        now.format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    );
    store.put(&name, Bytes::from(buf)).await
}

/// The background writer of one process's records.
pub struct StatsWriter {
    tx: mpsc::Sender<Msg>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

enum Msg {
    Record(Box<RunRecord>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Records buffered before a flush, and the channel's capacity beyond which records
/// are dropped.
const FLUSH_RECORDS: usize = 4096;
const CHANNEL: usize = 16 * 1024;

impl StatsWriter {
    /// Starts a writer into `store` that flushes at least every `every`.
    pub fn start(store: Arc<Store>, every: Duration) -> Arc<StatsWriter> {
        let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL);
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (w, f) = (written.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut pending: Vec<RunRecord> = Vec::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let flush = |pending: Vec<RunRecord>| {
                let (store, w, f) = (store.clone(), w.clone(), f.clone());
                async move {
                    match write_records(&store, &pending).await {
                        Ok(()) => {
                            w.fetch_add(pending.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            f.fetch_add(pending.len() as u64, Ordering::Relaxed);
                            tracing::warn!("run statistics not written: {e}");
                        }
                    }
                }
            };
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(Msg::Record(r)) => {
                            pending.push(*r);
                            if pending.len() >= FLUSH_RECORDS {
                                flush(std::mem::take(&mut pending)).await;
                            }
                        }
                        Some(Msg::Flush(done)) => {
                            flush(std::mem::take(&mut pending)).await;
                            let _ = done.send(());
                        }
                        None => {
                            flush(std::mem::take(&mut pending)).await;
                            break;
                        }
                    },
                    _ = tick.tick() => {
                        if !pending.is_empty() {
                            flush(std::mem::take(&mut pending)).await;
                        }
                    }
                }
            }
        });
        Arc::new(StatsWriter {
            tx,
            task: tokio::sync::Mutex::new(Some(task)),
            dropped: AtomicU64::new(0),
            written,
            failed,
        })
    }

    /// Queues a record; never waits.
    pub fn record(&self, record: RunRecord) {
        if self.tx.try_send(Msg::Record(Box::new(record))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes what is queued now.
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records written, and records whose write failed.
    pub fn written(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Flushes and stops the writer.
    pub async fn close(&self) {
        self.flush().await;
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The `WHERE` clause of a pipe (all, when `None`) and a window back from now.
fn stats_filter(pipe: Option<&str>, since: Option<Duration>) -> String {
    let mut filters = Vec::new();
    if let Some(p) = pipe {
        filters.push(format!("pipe = '{}'", p.replace('\'', "''")));
    }
    if let Some(d) = since {
        filters.push(format!(
            "started_at >= now() - INTERVAL '{} milliseconds'",
            d.as_millis()
        ));
    }
    if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    }
}

/// The SQL `sluice stats` runs over `sluice.pipe_stats`.
pub fn summary_sql(pipe: Option<&str>, since: Option<Duration>) -> String {
    let filter = stats_filter(pipe, since);
    format!(
        "SELECT pipe, \
           count(*) AS calls, \
           sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) AS errors, \
           round(100.0 * sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) / count(*), 2) AS error_pct, \
           round(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), 2) AS p50_ms, \
           round(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms), 2) AS p95_ms, \
           round(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms), 2) AS p99_ms, \
           CAST(sum(rows_read) / greatest(sum(duration_ms) / 1000.0, 0.000001) AS BIGINT) AS rows_read_per_s, \
           CAST(sum(bytes_read) / greatest(sum(duration_ms) / 1000.0, 0.000001) AS BIGINT) AS bytes_read_per_s \
         FROM {STATS_SCHEMA}.{STATS_TABLE} {filter} GROUP BY pipe ORDER BY pipe"
    )
}

/// One bucket of a pipe's calls over time.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The bucket's start, microseconds since the Unix epoch (UTC).
    pub start_us: i64,
    pub calls: u64,
    /// Calls whose status is not `ok` (errors, timeouts, rejections).
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Rows and bytes read by the bucket's calls, per second of the bucket.
    pub rows_read_per_s: f64,
    pub bytes_read_per_s: f64,
}

/// A pipe's calls bucketed over time (`Series::points` oldest first), from
/// `sluice.pipe_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub pipe: String,
    pub bucket: Duration,
    /// The first and last recorded call in the window, microseconds since the epoch.
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
    pub points: Vec<SeriesPoint>,
}

/// Bucket widths a series uses: the smallest that makes at most `max_buckets` of `span`.
const BUCKET_WIDTHS: &[u64] = &[
    1,
    5,
    10,
    30,
    60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
];

/// The bucket width for a span of time: a round width (1 s, 5 s, … 1 h, … 30 days)
/// giving at most `max_buckets` buckets (the widest width past that).
pub fn bucket_width(span: Duration, max_buckets: u32) -> Duration {
    let max_buckets = u64::from(max_buckets.max(1));
    let secs = BUCKET_WIDTHS
        .iter()
        .copied()
        .find(|w| span.as_secs_f64() / (*w as f64) <= max_buckets as f64)
        .unwrap_or(BUCKET_WIDTHS[BUCKET_WIDTHS.len() - 1]);
    Duration::from_secs(secs)
}

/// The SQL of a pipe's series: calls per bucket of `bucket` (whole seconds).
pub fn series_sql(pipe: &str, bucket: Duration, since: Option<Duration>) -> String {
    let filter = stats_filter(Some(pipe), since);
    let secs = bucket.as_secs().max(1);
    format!(
        "SELECT date_bin(INTERVAL '{secs} seconds', started_at) AS bucket, \
           count(*) AS calls, \
           sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) AS errors, \
           approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms, \
           approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms, \
           approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99_ms, \
           CAST(sum(rows_read) AS DOUBLE) / {secs} AS rows_read_per_s, \
           CAST(sum(bytes_read) AS DOUBLE) / {secs} AS bytes_read_per_s \
         FROM {STATS_SCHEMA}.{STATS_TABLE} {filter} GROUP BY 1 ORDER BY 1"
    )
}

/// A pipe's calls in `session`'s environment bucketed over time: at most about
/// `max_buckets` buckets of a round width over the window's recorded calls (all of them,
/// or those of the last `since`).
pub async fn series(
    session: &EnvSession,
    pipe: &str,
    since: Option<Duration>,
    max_buckets: u32,
) -> Result<Series> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};

    // Times as microseconds since the epoch, whatever unit a function returns them in
    // (`date_bin` gives nanoseconds).
    let micros = |a: &ArrayRef| -> Result<ArrayRef> {
        let us = cast(
            a,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?;
        Ok(cast(&us, &DataType::Int64)?)
    };

    let filter = stats_filter(Some(pipe), since);
    let range = session
        .query(
            &format!(
                "SELECT min(started_at) AS first, max(started_at) AS last \
                 FROM {STATS_SCHEMA}.{STATS_TABLE} {filter}"
            ),
            &RunOptions::default(),
        )
        .await?;
    let int_at = |batches: &[RecordBatch], col: &str, row: usize| -> Result<Option<i64>> {
        let mut seen = 0;
        for b in batches {
            if row < seen + b.num_rows() {
                let a = micros(b.column_by_name(col).expect("selected"))?;
                let a = a.as_primitive::<Int64Type>();
                let r = row - seen;
                return Ok((!a.is_null(r)).then(|| a.value(r)));
            }
            seen += b.num_rows();
        }
        Ok(None)
    };
    let first_us = int_at(&range.batches, "first", 0)?;
    let last_us = int_at(&range.batches, "last", 0)?;
    let (Some(first), Some(last)) = (first_us, last_us) else {
        return Ok(Series {
            pipe: pipe.to_string(),
            bucket: Duration::from_secs(1),
            first_us,
            last_us,
            points: Vec::new(),
        });
    };
    let span = Duration::from_micros(last.saturating_sub(first).max(0) as u64);
    let bucket = bucket_width(span, max_buckets);
    let out = session
        .query(&series_sql(pipe, bucket, since), &RunOptions::default())
        .await?;
    let mut points = Vec::new();
    for b in &out.batches {
        let col = |name: &str| -> Result<ArrayRef> {
            Ok(cast(
                b.column_by_name(name).expect("selected"),
                &DataType::Float64,
            )?)
        };
        let bucket_col = micros(b.column_by_name("bucket").expect("selected"))?;
        let bucket_col = bucket_col.as_primitive::<Int64Type>();
        let cols: Vec<ArrayRef> = [
            "calls",
            "errors",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "rows_read_per_s",
            "bytes_read_per_s",
        ]
        .iter()
        .map(|c| col(c))
        .collect::<Result<_>>()?;
        let v = |i: usize, r: usize| -> f64 {
            let a = cols[i].as_primitive::<Float64Type>();
            if a.is_null(r) { 0.0 } else { a.value(r) }
        };
        for r in 0..b.num_rows() {
            if bucket_col.is_null(r) {
                continue;
            }
            points.push(SeriesPoint {
                start_us: bucket_col.value(r),
                calls: v(0, r) as u64,
                errors: v(1, r) as u64,
                p50_ms: v(2, r),
                p95_ms: v(3, r),
                p99_ms: v(4, r),
                rows_read_per_s: v(5, r),
                bytes_read_per_s: v(6, r),
            });
        }
    }
    Ok(Series {
        pipe: pipe.to_string(),
        bucket,
        first_us,
        last_us,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_widths_are_round_and_bounded() {
        assert_eq!(bucket_width(Duration::ZERO, 60), Duration::from_secs(1));
        assert_eq!(
            bucket_width(Duration::from_secs(60), 60),
            Duration::from_secs(1)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(61), 60),
            Duration::from_secs(5)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(3600), 60),
            Duration::from_secs(60)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(86_400), 60),
            Duration::from_secs(1800)
        );
        // Past the widest width, the widest.
        assert_eq!(
            bucket_width(Duration::from_secs(100 * 365 * 86_400), 60),
            Duration::from_secs(30 * 86_400)
        );
    }

    #[test]
    fn series_sql_escapes_the_pipe_name() {
        let sql = series_sql("o'brien", Duration::from_secs(60), None);
        assert!(sql.contains("pipe = 'o''brien'"), "{sql}");
        assert!(sql.contains("INTERVAL '60 seconds'"), "{sql}");
    }
}
