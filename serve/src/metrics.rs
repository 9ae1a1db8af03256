//! The server's metrics, exposed at `/metrics` (admin tokens only) in the Prometheus
//! text format by `prometheus-client`.
//!
//! Labels are bounded: `pipe` is a pipe the environment serves, or `_unknown` for any
//! other name a request gave (so made-up names cannot grow the series), `status` an
//! HTTP status the server sends, `route` one of the server's routes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The label of requests for names the environment does not serve.
pub const UNKNOWN_PIPE: &str = "_unknown";

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipeStatus {
    pipe: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipeLabel {
    pipe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Values read when `/metrics` is scraped, from the parts of the server that own them.
pub trait Sampled: Send + Sync + std::fmt::Debug + 'static {
    /// Run records written to the store, and dropped (writer behind or store failing).
    fn stats_records(&self) -> (u64, u64);
    /// Reads of the store's state (listings, manifests, footers, deployments, tokens).
    fn store_reads(&self) -> u64;
    /// Runs that reused a plan prepared by an earlier call.
    fn prepared_runs(&self) -> u64;
}

#[derive(Debug)]
struct SampledCollector(Arc<dyn Sampled>);

impl Collector for SampledCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (written, dropped) = self.0.stats_records();
        for (name, help, value) in [
            (
                "sluice_stats_records_written",
                "Run records written to the store (sluice.pipe_stats)",
                written,
            ),
            (
                "sluice_stats_records_dropped",
                "Run records dropped or not written (writer behind or store failing)",
                dropped,
            ),
            (
                "sluice_store_state_reads",
                "Reads of the store's state (listings, manifests, footers, deployments, tokens): by the refresh, never by requests when nothing changed",
                self.0.store_reads(),
            ),
            (
                "sluice_prepared_runs",
                "Calls that ran a plan prepared by an earlier call (planned once per pipe version, parameter values and store state)",
                self.0.prepared_runs(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<PipeStatus, Counter>,
    latency: Family<PipeLabel, Histogram, fn() -> Histogram>,
    rows_read: Family<PipeLabel, Counter>,
    bytes_read: Family<PipeLabel, Counter>,
    other: Family<RouteStatus, Counter>,
    cache: Family<CacheLabel, Counter>,
    pub in_flight: Gauge,
    pub connections: Gauge,
    pub rejected_capacity: Counter,
    pub timeouts: Counter,
    /// Connections closed for not finishing a request head in time.
    pub header_timeouts: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new(env: &str, sampled: Arc<dyn Sampled>) -> Metrics {
        let mut registry =
            Registry::with_labels([("env".into(), env.to_string().into())].into_iter());
        let requests = Family::<PipeStatus, Counter>::default();
        let latency = Family::<PipeLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let rows_read = Family::<PipeLabel, Counter>::default();
        let bytes_read = Family::<PipeLabel, Counter>::default();
        let other = Family::<RouteStatus, Counter>::default();
        let cache = Family::<CacheLabel, Counter>::default();
        let in_flight = Gauge::default();
        let connections = Gauge::default();
        let rejected_capacity = Counter::default();
        let timeouts = Counter::default();
        let header_timeouts = Counter::default();
        registry.register(
            "sluice_requests",
            "Endpoint requests by pipe and status code (`_unknown`: a name the environment does not serve)",
            requests.clone(),
        );
        registry.register(
            "sluice_request_duration_seconds",
            "Endpoint request latency",
            latency.clone(),
        );
        registry.register(
            "sluice_rows_read",
            "Rows the endpoint runs scanned",
            rows_read.clone(),
        );
        registry.register(
            "sluice_bytes_read",
            "Bytes the endpoint runs fetched from the store",
            bytes_read.clone(),
        );
        registry.register(
            "sluice_other_requests",
            "Requests that are not pipe calls, by route and status code",
            other.clone(),
        );
        registry.register(
            "sluice_result_cache",
            "Calls of pipes that set `cache`, answered from a kept result (hit) or run (miss)",
            cache.clone(),
        );
        registry.register(
            "sluice_queries_in_flight",
            "Queries running now",
            in_flight.clone(),
        );
        registry.register(
            "sluice_connections_open",
            "HTTP connections open now",
            connections.clone(),
        );
        registry.register(
            "sluice_rejected_over_capacity",
            "Requests refused with 429 because max_concurrent queries were running",
            rejected_capacity.clone(),
        );
        registry.register(
            "sluice_timeouts",
            "Requests cancelled at the environment's timeout",
            timeouts.clone(),
        );
        registry.register(
            "sluice_header_timeouts",
            "Connections closed because a request head was not complete within serve.header_timeout",
            header_timeouts.clone(),
        );
        registry.register_collector(Box::new(SampledCollector(sampled)));
        Metrics {
            registry,
            requests,
            latency,
            rows_read,
            bytes_read,
            other,
            cache,
            in_flight,
            connections,
            rejected_capacity,
            timeouts,
            header_timeouts,
        }
    }

    /// Counts a pipe call; `pipe` must be a name the environment serves or `UNKNOWN_PIPE`.
    pub fn pipe_request(
        &self,
        pipe: &str,
        status: u16,
        elapsed: Duration,
        rows_read: u64,
        bytes_read: u64,
    ) {
        self.requests
            .get_or_create(&PipeStatus {
                pipe: pipe.to_string(),
                status,
            })
            .inc();
        let label = PipeLabel {
            pipe: pipe.to_string(),
        };
        self.latency
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if rows_read > 0 {
            self.rows_read.get_or_create(&label).inc_by(rows_read);
        }
        if bytes_read > 0 {
            self.bytes_read.get_or_create(&label).inc_by(bytes_read);
        }
    }

    pub fn other_request(&self, route: &'static str, status: u16) {
        self.other
            .get_or_create(&RouteStatus {
                route: route.to_string(),
                status,
            })
            .inc();
    }

    pub fn cache_result(&self, hit: bool) {
        self.cache
            .get_or_create(&CacheLabel {
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
