//! The server's counters, exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct PipeCounters {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    /// Cumulative counts per bucket, then +Inf.
    buckets: Vec<u64>,
    sum_seconds: f64,
    count: u64,
    rows_read: u64,
    bytes_read: u64,
}

#[derive(Default)]
pub struct Metrics {
    pipes: Mutex<BTreeMap<String, PipeCounters>>,
    /// Requests that are not pipe calls (lists, OpenAPI, SQL, errors before routing).
    other: Mutex<BTreeMap<(String, u16), u64>>,
    pub in_flight: AtomicI64,
    pub rejected_capacity: AtomicU64,
    pub timeouts: AtomicU64,
}

impl Metrics {
    pub fn pipe_request(
        &self,
        pipe: &str,
        status: u16,
        elapsed: Duration,
        rows_read: u64,
        bytes_read: u64,
    ) {
        let mut pipes = self.pipes.lock().expect("metrics");
        let c = pipes.entry(pipe.to_string()).or_default();
        if c.buckets.is_empty() {
            c.buckets = vec![0; BUCKETS.len() + 1];
        }
        *c.by_status.entry(status).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                c.buckets[i] += 1;
            }
        }
        c.buckets[BUCKETS.len()] += 1;
        c.sum_seconds += secs;
        c.count += 1;
        c.rows_read += rows_read;
        c.bytes_read += bytes_read;
    }

    pub fn other_request(&self, route: &str, status: u16) {
        *self
            .other
            .lock()
            .expect("metrics")
            .entry((route.to_string(), status))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, env: &str, stats_dropped: u64, stats_written: (u64, u64)) -> String {
        let mut out = String::new();
        let env = escape(env);
        let pipes = self.pipes.lock().expect("metrics");
        out.push_str("# HELP sluice_requests_total Endpoint requests by pipe and status code.\n# TYPE sluice_requests_total counter\n");
        for (pipe, c) in pipes.iter() {
            for (status, n) in &c.by_status {
                let _ = writeln!(
                    out,
                    "sluice_requests_total{{env=\"{env}\",pipe=\"{}\",status=\"{status}\"}} {n}",
                    escape(pipe)
                );
            }
        }
        out.push_str("# HELP sluice_request_duration_seconds Endpoint request latency.\n# TYPE sluice_request_duration_seconds histogram\n");
        for (pipe, c) in pipes.iter() {
            let pipe = escape(pipe);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "sluice_request_duration_seconds_bucket{{env=\"{env}\",pipe=\"{pipe}\",le=\"{le}\"}} {}",
                    c.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "sluice_request_duration_seconds_bucket{{env=\"{env}\",pipe=\"{pipe}\",le=\"+Inf\"}} {}",
                c.buckets[BUCKETS.len()]
            );
            let _ = writeln!(
                out,
                "sluice_request_duration_seconds_sum{{env=\"{env}\",pipe=\"{pipe}\"}} {}",
                c.sum_seconds
            );
            let _ = writeln!(
                out,
                "sluice_request_duration_seconds_count{{env=\"{env}\",pipe=\"{pipe}\"}} {}",
                c.count
            );
        }
        out.push_str("# HELP sluice_rows_read_total Rows the endpoint runs scanned.\n# TYPE sluice_rows_read_total counter\n");
        for (pipe, c) in pipes.iter() {
            let _ = writeln!(
                out,
                "sluice_rows_read_total{{env=\"{env}\",pipe=\"{}\"}} {}",
                escape(pipe),
                c.rows_read
            );
        }
        out.push_str("# HELP sluice_bytes_read_total Bytes the endpoint runs fetched from the store.\n# TYPE sluice_bytes_read_total counter\n");
        for (pipe, c) in pipes.iter() {
            let _ = writeln!(
                out,
                "sluice_bytes_read_total{{env=\"{env}\",pipe=\"{}\"}} {}",
                escape(pipe),
                c.bytes_read
            );
        }
        drop(pipes);
        out.push_str("# HELP sluice_other_requests_total Requests that are not pipe calls.\n# TYPE sluice_other_requests_total counter\n");
        for ((route, status), n) in self.other.lock().expect("metrics").iter() {
            let _ = writeln!(
                out,
                "sluice_other_requests_total{{env=\"{env}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let gauges: [(&str, &str, &str, i64); 5] = [
            (
                "sluice_queries_in_flight",
                "gauge",
                "Queries running now.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "sluice_rejected_over_capacity_total",
                "counter",
                "Requests refused with 429 because max_concurrent queries were running.",
                self.rejected_capacity.load(Ordering::Relaxed) as i64,
            ),
            (
                "sluice_timeouts_total",
                "counter",
                "Requests cancelled at the environment's timeout.",
                self.timeouts.load(Ordering::Relaxed) as i64,
            ),
            (
                "sluice_stats_records_written_total",
                "counter",
                "Run records written to the store (sluice.pipe_stats).",
                stats_written.0 as i64,
            ),
            (
                "sluice_stats_records_dropped_total",
                "counter",
                "Run records dropped or not written (writer behind or store failing).",
                (stats_dropped + stats_written.1) as i64,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{env=\"{env}\"}} {v}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
