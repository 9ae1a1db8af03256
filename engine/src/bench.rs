//! Benchmarks of pipes on one warm session: each pipe runs a few times unmeasured, then
//! `runs` times measured, end to end (parameters bound, nodes planned, sources listed
//! from the session's cached footers, executed, output collected), as a user's run is.

use std::time::{Duration, Instant};

use crate::error::{Result, SluiceError};
use crate::project::Pipe;
use crate::session::{EnvSession, RunOptions};
use crate::util::progress::{OnProgress, Progress, ProgressUnit};

/// How many times each pipe runs.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Measured runs (at least one).
    pub runs: usize,
    /// Unmeasured runs first, to warm the footer cache and the allocator.
    pub warmup: usize,
    /// Run with estimates (`RunOptions::estimate`).
    pub estimate: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            runs: 5,
            warmup: 1,
            estimate: false,
        }
    }
}

/// The measurements of one pipe.
#[derive(Debug, Clone)]
pub struct PipeBench {
    pub pipe: String,
    /// Wall-clock time of each measured run, in run order.
    pub latencies: Vec<Duration>,
    pub rows_out: u64,
    /// Rows and bytes the Parquet scans of one run read.
    pub rows_scanned: u64,
    pub bytes_scanned: u64,
    /// The process's peak resident memory while the pipe ran (Linux `VmHWM`, reset
    /// before the pipe's first run); `None` where the OS does not say.
    pub peak_rss: Option<u64>,
}

impl PipeBench {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.latencies.clone();
        v.sort();
        v
    }

    pub fn min(&self) -> Duration {
        self.sorted()[0]
    }

    /// The middle run (the mean of the two middle ones for an even count).
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        }
    }

    /// The 95th percentile, nearest rank: with fewer than 20 runs, the slowest.
    pub fn p95(&self) -> Duration {
        let v = self.sorted();
        let rank = ((v.len() as f64) * 0.95).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    /// Rows scanned per second at the median latency.
    pub fn rows_per_second(&self) -> f64 {
        per_second(self.rows_scanned, self.median())
    }

    /// Bytes scanned per second at the median latency.
    pub fn bytes_per_second(&self) -> f64 {
        per_second(self.bytes_scanned, self.median())
    }
}

fn per_second(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

/// The `given` parameters a pipe declares. With several pipes, a parameter applies to
/// the pipes that declare it; one no pipe declares is an error (see `check_params`).
pub fn params_for(pipe: &Pipe, given: &[(String, String)]) -> Vec<(String, String)> {
    given
        .iter()
        .filter(|(k, _)| pipe.params.contains_key(k))
        .cloned()
        .collect()
}

/// Fails on a parameter none of `pipes` declares, naming it.
pub fn check_params(pipes: &[Pipe], given: &[(String, String)]) -> Result<()> {
    for (k, _) in given {
        if !pipes.iter().any(|p| p.params.contains_key(k)) {
            let names: Vec<&str> = pipes.iter().map(|p| p.name.as_str()).collect();
            return Err(SluiceError::Usage(format!(
                "--param {k}: no pipe benchmarked ({}) declares a parameter `{k}`",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Runs `pipe` `options.warmup` times, then `options.runs` times measured.
pub async fn bench_pipe(
    session: &EnvSession,
    pipe: &Pipe,
    given: &[(String, String)],
    options: &BenchOptions,
    progress: OnProgress<'_>,
) -> Result<PipeBench> {
    if options.runs == 0 {
        return Err(SluiceError::Usage(
            "-n/--runs must be at least 1".to_string(),
        ));
    }
    let params = params_for(pipe, given);
    let run = RunOptions {
        estimate: options.estimate,
        ..RunOptions::default()
    };
    let total = (options.warmup + options.runs) as u64;
    let step = |i: usize, what: &str| {
        progress(&Progress::new(
            format!("{} {what}", pipe.name),
            i as u64,
            Some(total),
            ProgressUnit::Steps,
        ))
    };
    reset_peak_rss();
    for i in 0..options.warmup {
        step(i, "warm-up");
        session.run_pipe_def(pipe, &params, &run).await?;
    }
    let mut latencies = Vec::with_capacity(options.runs);
    let mut last = None;
    for i in 0..options.runs {
        step(options.warmup + i, "measured");
        let started = Instant::now();
        let out = session.run_pipe_def(pipe, &params, &run).await?;
        latencies.push(started.elapsed());
        last = Some(out.report);
    }
    let report = last.expect("at least one run");
    Ok(PipeBench {
        pipe: pipe.name.clone(),
        latencies,
        rows_out: report.rows_out,
        rows_scanned: report.rows_scanned(),
        bytes_scanned: report.bytes_scanned(),
        peak_rss: peak_rss(),
    })
}

/// Resets the process's peak resident set size (`VmHWM`) to its current size, so the
/// next reading is the peak of what runs from now on (Linux only; a no-op elsewhere).
fn reset_peak_rss() {
    // "5" resets the peak RSS counter (proc(5), /proc/pid/clear_refs).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size in bytes, from `/proc/self/status`.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(ms: &[u64]) -> PipeBench {
        PipeBench {
            pipe: "p".into(),
            latencies: ms.iter().map(|m| Duration::from_millis(*m)).collect(),
            rows_out: 0,
            rows_scanned: 1000,
            bytes_scanned: 0,
            peak_rss: None,
        }
    }

    #[test]
    fn order_statistics() {
        let b = bench(&[30, 10, 20]);
        assert_eq!(b.min(), Duration::from_millis(10));
        assert_eq!(b.median(), Duration::from_millis(20));
        assert_eq!(b.p95(), Duration::from_millis(30));
        assert_eq!(bench(&[10, 40, 20, 30]).median(), Duration::from_millis(25));
        let many: Vec<u64> = (1..=40).collect();
        assert_eq!(bench(&many).p95(), Duration::from_millis(38));
        assert_eq!(b.rows_per_second(), 50_000.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_rss_is_read() {
        reset_peak_rss();
        assert!(peak_rss().is_some_and(|b| b > 0));
    }
}
