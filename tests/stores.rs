//! Stores, end to end through the binary: every body runs against a temp folder and
//! against an S3-compatible server on 127.0.0.1 (moto, started by `.ci/run`, or by the
//! tests when `moto_server` is on PATH): reading sources, sampling, the deployment
//! workflow, materializing, ingesting, sample builds, branches, and writes killed midway.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sluice_engine::fixtures::{
    GenOptions, generate_example_test_data, generate_sales_calls, write_example_project,
};
use tempfile::TempDir;

use crate::common::sluice_bin;

const BUCKET: &str = "sluice-test";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Local,
    S3,
}

/// The S3 endpoint the tests use: `SLUICE_TEST_S3_ENDPOINT`, or a moto server the tests
/// start. `None` (and the S3 half of each test skipped, loudly) only outside CI.
fn s3_endpoint() -> Option<&'static str> {
    static ENDPOINT: OnceLock<Option<String>> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("SLUICE_TEST_S3_ENDPOINT") {
                create_bucket(&e, BUCKET);
                return Some(e);
            }
            match start_moto() {
                Some(e) => {
                    create_bucket(&e, BUCKET);
                    Some(e)
                }
                None if std::env::var("CI").is_ok() => {
                    panic!("CI must run the S3 store tests: set SLUICE_TEST_S3_ENDPOINT or put moto_server on PATH")
                }
                None => {
                    eprintln!("warning: no S3 server (SLUICE_TEST_S3_ENDPOINT unset, no moto_server on PATH): S3 store tests skipped");
                    None
                }
            }
        })
        .as_deref()
}

/// An S3 server that checks credentials and knows none: every request is refused as a
/// bad access key. `SLUICE_TEST_S3_AUTH_ENDPOINT`, or a moto server started here with
/// authentication on.
fn s3_auth_endpoint() -> Option<&'static str> {
    static ENDPOINT: OnceLock<Option<String>> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("SLUICE_TEST_S3_AUTH_ENDPOINT") {
                return Some(e);
            }
            match start_moto_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) {
                Some(e) => Some(e),
                None if std::env::var("CI").is_ok() => panic!(
                    "CI must run the bad-credentials test: set SLUICE_TEST_S3_AUTH_ENDPOINT or put moto_server on PATH"
                ),
                None => {
                    eprintln!("warning: no S3 server that checks credentials: test skipped");
                    None
                }
            }
        })
        .as_deref()
}

fn start_moto() -> Option<String> {
    start_moto_with(&[])
}

fn start_moto_with(vars: &[(&str, &str)]) -> Option<String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // `timeout` ends the server even if this test process dies first.
    std::process::Command::new("timeout")
        .args([
            "1800",
            "moto_server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// `PUT /bucket` (moto does not check signatures); an existing bucket is fine.
fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connect to the S3 server");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.contains("BucketAlreadyOwnedByYou"),
        "cannot create bucket {bucket}: {response}"
    );
}

/// A project whose stores are on `backend`, with the sales_calls pipes, and the demo
/// data generated (locally) for ingestion into its stores.
struct StoreCase {
    backend: Backend,
    dir: TempDir,
    /// Generated Parquet files to ingest: `<gen>/<source>/…parquet`.
    generated: PathBuf,
    endpoint: String,
}

impl StoreCase {
    fn new(backend: Backend) -> Option<StoreCase> {
        let endpoint = match backend {
            Backend::Local => String::new(),
            Backend::S3 => s3_endpoint()?.to_string(),
        };
        let dir = tempfile::tempdir().unwrap();
        write_example_project(dir.path()).unwrap();
        generate_example_test_data(dir.path()).unwrap();
        let generated = dir.path().join("generated");
        generate_sales_calls(
            &generated,
            &GenOptions {
                scale: 0.05,
                ..GenOptions::default()
            },
        )
        .unwrap();
        let case = StoreCase {
            backend,
            dir,
            generated,
            endpoint,
        };
        case.write_config("");
        Some(case)
    }

    fn prefix(&self) -> String {
        // Unique per test, so tests share the bucket without meeting.
        self.dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('.')
            .to_string()
    }

    /// The `data` of an environment on this backend.
    fn data(&self, env: &str) -> String {
        match self.backend {
            Backend::Local => format!("data/{env}"),
            Backend::S3 => format!("s3://{BUCKET}/{}/{env}", self.prefix()),
        }
    }

    fn storage(&self, env: &str) -> String {
        match self.backend {
            Backend::Local => String::new(),
            Backend::S3 => format!(
                "\n[environments.{env}.storage]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n[environments.{env}.storage.from_env]\naccess_key_id = \"SLUICE_TEST_KEY_{env}\"\nsecret_access_key = \"SLUICE_TEST_SECRET_{env}\"\n",
                self.endpoint
            ),
        }
    }

    /// Writes sluice.toml: staging samples 10%, production is protected; `extra` is
    /// appended.
    fn write_config(&self, extra: &str) {
        let text = format!(
            r#"[project]
name = "stores"

[environments.staging]
data = "{}"
sample = {{ method = "system", fraction = 0.1, seed = 7 }}
{}
[environments.production]
data = "{}"
protected = true
{}
[sources.accounts]
sample_key = "account_id"
sample = "full"

[sources.reps]
sample = "full"

[sources.calls]
sample_key = "account_id"
sort = ["started_at"]
{extra}"#,
            self.data("staging"),
            self.storage("staging"),
            self.data("production"),
            self.storage("production"),
        );
        std::fs::write(self.dir.path().join("sluice.toml"), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(sluice_bin());
        cmd.current_dir(self.dir.path())
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_LOG")
            .env_remove("SLUICE_FAILPOINT")
            .args(args);
        for env in ["staging", "production"] {
            cmd.env(format!("SLUICE_TEST_KEY_{env}"), format!("key-{env}"))
                .env(format!("SLUICE_TEST_SECRET_{env}"), format!("secret-{env}"));
        }
        cmd.output().expect("run sluice")
    }

    fn expect(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "[{:?}] sluice {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.backend,
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    }

    fn ok(&self, args: &[&str]) -> String {
        self.expect(args, 0).0
    }

    /// The generated Parquet files of a source.
    fn generated_files(&self, source: &str) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.generated.join(source))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".parquet"))
            .collect();
        files.sort();
        files
    }

    /// Ingests the generated data into an environment's (empty) store.
    fn load(&self, env: &str) {
        for source in ["accounts", "reps", "calls"] {
            let mut args = vec!["ingest", source];
            let files = self.generated_files(source);
            args.extend(files.iter().map(String::as_str));
            args.extend(["--env", env]);
            let out = self.ok(&args);
            assert!(out.contains("ingested"), "{out}");
        }
    }

    /// One number from a query's CSV output.
    fn number(&self, sql: &str, env: &str, extra: &[&str]) -> f64 {
        let mut args = vec!["query", sql, "--env", env, "-f", "csv", "-q"];
        args.extend(extra);
        let out = self.ok(&args);
        out.lines()
            .nth(1)
            .unwrap_or_else(|| panic!("no row from {sql}: {out}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{sql}: {e}: {out}"))
    }

    fn rows(&self, source: &str, env: &str) -> u64 {
        self.number(&format!("SELECT count(*) FROM {source}"), env, &["--full"]) as u64
    }

    /// Every object of an environment's store (path → bytes), to show a failed command
    /// left it exactly as it was.
    fn snapshot(&self, env: &str) -> Vec<(String, u64)> {
        match self.backend {
            Backend::Local => {
                let root = self.dir.path().join("data").join(env);
                let mut out = Vec::new();
                walk(&root, &root, &mut out);
                out.sort();
                out
            }
            Backend::S3 => {
                let project = sluice_engine::Project::load(self.dir.path()).unwrap();
                let _vars = self.store_vars();
                let store = sluice_engine::Store::open(project.environment(env).unwrap()).unwrap();
                crate::common::block_on(async {
                    store
                        .list("")
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|(p, m)| (p, m.size))
                        .collect()
                })
            }
        }
    }

    /// Runs `sluice ARGS` with a failpoint set and requires that it was killed there.
    fn killed(&self, args: &[&str], failpoint: &str) {
        let mut cmd = std::process::Command::new(sluice_bin());
        cmd.current_dir(self.dir.path())
            .env_remove("SLUICE_PROJECT")
            .env("SLUICE_FAILPOINT", failpoint)
            .args(args);
        for env in ["staging", "production"] {
            cmd.env(format!("SLUICE_TEST_KEY_{env}"), format!("key-{env}"))
                .env(format!("SLUICE_TEST_SECRET_{env}"), format!("secret-{env}"));
        }
        let out = cmd.output().expect("run sluice");
        assert!(
            out.status.code().is_none(),
            "[{:?}] {args:?} at {failpoint}: exit {:?}: {}",
            self.backend,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Library access to S3 stores reads the same credential variables as the binary.
    fn store_vars(&self) {
        for env in ["staging", "production"] {
            // SAFETY: tests set these fixed values only, before opening stores; every
            // thread that reads them reads the same values.
            unsafe {
                std::env::set_var(format!("SLUICE_TEST_KEY_{env}"), format!("key-{env}"));
                std::env::set_var(format!("SLUICE_TEST_SECRET_{env}"), format!("secret-{env}"));
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.push((rel, std::fs::metadata(&p).unwrap().len()));
        }
    }
}

/// Runs a test body against a local folder and against S3.
macro_rules! on_every_store {
    ($($name:ident => $body:ident;)*) => {
        mod local {
            $(#[test] fn $name() { super::$body(super::StoreCase::new(super::Backend::Local).unwrap()); })*
        }
        mod s3 {
            $(#[test] fn $name() {
                if let Some(case) = super::StoreCase::new(super::Backend::S3) { super::$body(case); }
            })*
        }
    };
}

on_every_store! {
    workflow_reads_samples_and_promotes => workflow;
    materialize_replaces_and_appends_atomically => materialize;
    materialize_killed_midway_keeps_previous_data => materialize_killed;
    ingest_and_quarantine_killed_land_together => ingest_killed_together;
    ingest_quarantines_bad_rows => ingest_quarantine;
    sample_build_keeps_joins_whole => sample_build;
    branches_overlay_their_parent => branches;
}

/// Sources ingested into both stores are read, sampled, and the deployment workflow
/// (state in the store) runs through promotion.
fn workflow(case: StoreCase) {
    case.load("production");
    case.load("staging");
    assert_eq!(case.rows("calls", "production"), 5_000);
    // Staging samples 10% of the calls on read.
    let sampled = case.number("SELECT count(*) FROM calls", "staging", &[]);
    assert!(sampled > 0.0 && sampled < 2_000.0, "{sampled}");
    case.ok(&["deploy", "--all", "--env", "staging"]);
    let out = case.ok(&[
        "promote",
        "--all",
        "--from",
        "staging",
        "--to",
        "production",
        "--yes",
    ]);
    assert!(out.contains("top_reps"), "{out}");
    let history = case.ok(&["history", "--env", "production"]);
    assert!(history.contains("promote"), "{history}");
    let out = case.ok(&["run", "top_reps", "--env", "production", "-f", "csv", "-q"]);
    assert_eq!(out.lines().count(), 11, "{out}");
}

fn materialize(case: StoreCase) {
    case.load("staging");
    let pipe = std::fs::read_to_string(case.dir.path().join("pipes/daily_outcomes.toml")).unwrap();
    // A top-level key: before the file's first table.
    let with = format!(
        "materialize = {{ to = \"daily_outcomes_mat\", mode = \"replace\", partition_by = [\"outcome\"] }}\n{pipe}"
    );
    std::fs::write(case.dir.path().join("pipes/daily_outcomes.toml"), &with).unwrap();
    let out = case.ok(&["materialize", "daily_outcomes", "--full"]);
    assert!(out.contains("materialized pipe daily_outcomes"), "{out}");
    let first = case.rows("daily_outcomes_mat", "staging");
    assert!(first > 0);
    // Partition folders are columns again.
    let outcomes = case.number(
        "SELECT count(DISTINCT outcome) FROM daily_outcomes_mat",
        "staging",
        &["--full"],
    );
    assert!(outcomes >= 2.0, "{outcomes}");
    // Replace: the same rows again, not twice as many.
    case.ok(&["materialize", "daily_outcomes", "--full"]);
    assert_eq!(case.rows("daily_outcomes_mat", "staging"), first);
    // Append: twice as many.
    std::fs::write(
        case.dir.path().join("pipes/daily_outcomes.toml"),
        with.replace("mode = \"replace\"", "mode = \"append\""),
    )
    .unwrap();
    case.ok(&["materialize", "daily_outcomes", "--full"]);
    assert_eq!(case.rows("daily_outcomes_mat", "staging"), 2 * first);
    // The materialized dataset is sampled like any other source.
    let sampled = case.number("SELECT count(*) FROM daily_outcomes_mat", "staging", &[]);
    assert!(sampled < (2 * first) as f64, "{sampled} of {}", 2 * first);
}

fn materialize_killed(case: StoreCase) {
    case.load("staging");
    let path = case.dir.path().join("pipes/top_reps.toml");
    let pipe = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        pipe.replacen(
            "endpoint = true",
            "endpoint = true\nmaterialize = { to = \"top_reps_mat\" }",
            1,
        ),
    )
    .unwrap();
    case.ok(&["materialize", "top_reps", "--full", "-p", "limit=5"]);
    assert_eq!(case.rows("top_reps_mat", "staging"), 5);
    let before = case.snapshot("staging");
    // Killed after writing its files, before its commit.
    let mut cmd = std::process::Command::new(sluice_bin());
    cmd.current_dir(case.dir.path())
        .args(["materialize", "top_reps", "--full", "-p", "limit=7"])
        .env("SLUICE_FAILPOINT", "dataset:before_commit");
    for env in ["staging", "production"] {
        cmd.env(format!("SLUICE_TEST_KEY_{env}"), "k")
            .env(format!("SLUICE_TEST_SECRET_{env}"), "s");
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the failpoint must kill the run");
    // The previous data is what readers see; the killed write left only files no
    // manifest names.
    assert_eq!(case.rows("top_reps_mat", "staging"), 5);
    let after = case.snapshot("staging");
    let manifest = |s: &[(String, u64)]| {
        s.iter()
            .find(|(p, _)| p.ends_with("top_reps_mat/_sluice_dataset.json"))
            .cloned()
    };
    assert_eq!(manifest(&before), manifest(&after));
    assert!(
        after.len() > before.len(),
        "the killed write's files are there, unreferenced"
    );
    // The lock the killed run held is taken over; its files are cleaned up.
    case.ok(&["materialize", "top_reps", "--full", "-p", "limit=7"]);
    assert_eq!(case.rows("top_reps_mat", "staging"), 7);
    let cleaned = case.snapshot("staging");
    let parts = |s: &[(String, u64)]| {
        s.iter()
            .filter(|(p, _)| p.contains("top_reps_mat/_parts/"))
            .count()
    };
    // The current write and the previous one are kept; the killed one is gone.
    assert_eq!(parts(&cleaned), 2, "{cleaned:?}");
}

/// An ingest with rejected rows commits the rows and their quarantine with one commit
/// file (see docs/guarantees.md), on an object store as on a folder: killed before it,
/// neither is read; killed after it with only the rows' manifest in place, both are; the
/// next ingest leaves nothing pending behind.
fn ingest_killed_together(case: StoreCase) {
    case.load("staging");
    let rows_before = case.rows("calls", "staging");
    let errors = "SELECT count(*) FROM sluice.calls_errors";
    let header = "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n";
    let file = |name: &str, first_id: u64| {
        let path = case.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "{header}{a},101,3,2024-06-01T10:00:00,60,won,1.5,phone\n\
                 {b},not-a-number,3,2024-06-01T11:00:00,60,won,1.0,phone\n\
                 {c},102,4,2024-06-01T12:00:00,30,lost,,video\n",
                a = first_id,
                b = first_id + 1,
                c = first_id + 2
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let first = file("first.csv", 910_000);
    case.killed(&["ingest", "calls", &first], "together:pending");
    assert_eq!(case.rows("calls", "staging"), rows_before);
    assert_eq!(case.number(errors, "staging", &[]), 0.0);
    case.killed(&["ingest", "calls", &first], "together:between");
    assert_eq!(case.rows("calls", "staging"), rows_before + 2);
    assert_eq!(case.number(errors, "staging", &[]), 1.0);
    let second = file("second.csv", 920_000);
    case.ok(&["ingest", "calls", &second]);
    assert_eq!(case.rows("calls", "staging"), rows_before + 4);
    assert_eq!(case.number(errors, "staging", &[]), 2.0);
    let stray: Vec<String> = case
        .snapshot("staging")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.ends_with(".pending")
                || p.starts_with("_sluice/commits/")
                || p.starts_with("_sluice/locks/")
        })
        .collect();
    assert!(
        stray.is_empty(),
        "[{:?}] left behind: {stray:?}",
        case.backend
    );
}

fn ingest_quarantine(case: StoreCase) {
    case.load("staging");
    let csv = case.dir.path().join("new_calls.csv");
    std::fs::write(
        &csv,
        "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n\
         900001,101,3,2024-06-01T10:00:00,60,won,120.5,phone\n\
         900002,not-a-number,3,2024-06-01T11:00:00,60,won,1.0,phone\n\
         900003,102,4,2024-06-01T12:00:00,,no_answer,,video\n\
         900004,103,4,yesterday,30,lost,,video\n",
    )
    .unwrap();
    let ndjson = case.dir.path().join("more.ndjson");
    std::fs::write(
        &ndjson,
        "{\"call_id\":900010,\"account_id\":104,\"rep_id\":2,\"started_at\":\"2024-06-02T09:00:00\",\"outcome\":\"won\",\"amount\":10,\"channel\":\"phone\"}\n\
         {not json\n",
    )
    .unwrap();
    let before = case.snapshot("staging");
    let rows_before = case.rows("calls", "staging");
    // The quarantine is a table before anything is rejected: an empty one.
    let errors = "SELECT count(*) FROM sluice.calls_errors";
    assert_eq!(case.number(errors, "staging", &[]), 0.0);
    // --strict: the whole batch is refused, the store untouched.
    let (_, err) = case.expect(
        &[
            "ingest",
            "calls",
            csv.to_str().unwrap(),
            ndjson.to_str().unwrap(),
            "--strict",
        ],
        1,
    );
    assert!(err.contains("new_calls.csv:3"), "{err}");
    assert!(err.contains("account_id"), "{err}");
    assert!(err.contains("nothing was ingested"), "{err}");
    assert_eq!(case.snapshot("staging"), before);
    // Default: good rows appended, bad ones quarantined with file, line and reason.
    let out = case.ok(&[
        "ingest",
        "calls",
        csv.to_str().unwrap(),
        ndjson.to_str().unwrap(),
    ]);
    assert!(out.contains("ingested 3 rows"), "{out}");
    assert!(out.contains("rejected 3 rows"), "{out}");
    assert!(
        out.contains("new_calls.csv:5: column `started_at`"),
        "{out}"
    );
    assert!(out.contains("more.ndjson:2: not valid JSON"), "{out}");
    assert_eq!(case.rows("calls", "staging"), rows_before + 3);
    let amount = case.number(
        "SELECT amount FROM calls WHERE call_id = 900001",
        "staging",
        &["--full"],
    );
    assert_eq!(amount, 120.5);
    let quarantined = case
        .snapshot("staging")
        .iter()
        .filter(|(p, _)| p.starts_with("_sluice/errors/calls/"))
        .count();
    assert!(quarantined >= 2, "manifest and a part");
    // ... and queryable by name, with file, line and reason.
    assert_eq!(case.number(errors, "staging", &[]), 3.0);
    let line = case.number(
        "SELECT line FROM sluice.calls_errors WHERE file LIKE '%more.ndjson' AND reason LIKE 'not valid JSON%'",
        "staging",
        &[],
    );
    assert_eq!(line, 2.0);
    assert!(out.contains("sluice.calls_errors"), "{out}");
    // A file that is not there is a usage error naming it; nothing is written.
    let before_missing = case.snapshot("staging");
    let (_, err) = case.expect(
        &["ingest", "calls", csv.to_str().unwrap(), "no-such-file.csv"],
        2,
    );
    assert!(err.contains("no-such-file.csv: no such file"), "{err}");
    assert_eq!(case.snapshot("staging"), before_missing);
    // A header that does not match the source is refused whole, naming the column.
    let bad = case.dir.path().join("bad.csv");
    std::fs::write(&bad, "call_id,acount_id\n1,2\n").unwrap();
    let (_, err) = case.expect(&["ingest", "calls", bad.to_str().unwrap()], 2);
    assert!(err.contains("bad.csv:1"), "{err}");
}

fn sample_build(case: StoreCase) {
    case.load("production");
    let (out, _) = case.expect(
        &[
            "sample",
            "build",
            "--from",
            "production",
            "--to",
            "staging",
            "--fraction",
            "0.2",
            "--seed",
            "3",
        ],
        0,
    );
    assert!(out.contains("effective fraction"), "{out}");
    assert!(out.contains("key account_id"), "{out}");
    let prod_calls = case.rows("calls", "production");
    let calls = case.rows("calls", "staging");
    let f = calls as f64 / prod_calls as f64;
    assert!((0.1..0.3).contains(&f), "{calls} of {prod_calls}");
    // Dimension tables read "full" are kept whole, so every call finds its account.
    assert_eq!(
        case.rows("accounts", "staging"),
        case.rows("accounts", "production")
    );
    let orphans = case.number(
        "SELECT count(*) FROM calls c LEFT JOIN accounts a ON c.account_id = a.account_id WHERE a.account_id IS NULL",
        "staging",
        &["--full"],
    );
    assert_eq!(orphans, 0.0);
    // Whole accounts: every kept account has all of its production calls.
    let per_account = |env: &str| {
        case.number(
            "SELECT count(*) FROM calls WHERE account_id = (SELECT min(account_id) FROM calls)",
            env,
            &["--full"],
        )
    };
    let staging_min = case.number("SELECT min(account_id) FROM calls", "staging", &["--full"]);
    let prod_count = case.number(
        &format!("SELECT count(*) FROM calls WHERE account_id = {staging_min}"),
        "production",
        &["--full"],
    );
    assert_eq!(per_account("staging"), prod_count);
    // A policy's fraction is of production's data, not of the build: a 20% `system` read
    // of this 20% build reads all of it (not 4% of production), a `key` read with the
    // build's seed keeps the build's keys, a 10% `bernoulli` read keeps about half, and
    // the report says the source is a build.
    let count = |extra: &[&str]| case.number("SELECT count(*) FROM calls", "staging", extra);
    assert_eq!(count(&["--sample", "0.2"]) as u64, calls);
    assert_eq!(
        count(&["--sample", "0.2", "--sample-method", "key", "--seed", "3"]) as u64,
        calls
    );
    let half = count(&["--sample", "0.1", "--sample-method", "bernoulli"]) / calls as f64;
    assert!((0.35..0.65).contains(&half), "{half}");
    let (_, err) = case.expect(
        &[
            "query",
            "SELECT count(*) FROM calls",
            "--env",
            "staging",
            "-v",
        ],
        0,
    );
    assert!(
        err.contains("system 50% seed 7 over a 20% sample build of production"),
        "{err}"
    );
    // Never into a protected environment.
    let (_, err) = case.expect(
        &["sample", "build", "--from", "staging", "--to", "production"],
        2,
    );
    assert!(err.contains("protected"), "{err}");
}

fn branches(case: StoreCase) {
    case.load("production");
    let before = case.snapshot("production");
    let out = case.ok(&["branch", "create", "try-fix", "--from", "production"]);
    assert!(out.contains("created branch try-fix"), "{out}");
    let envs = case.ok(&["envs"]);
    assert!(envs.contains("branch over production"), "{envs}");
    // The branch reads production's data without a copy.
    assert_eq!(case.rows("calls", "try-fix"), 5_000);
    // What the branch ingests is its own; production does not see it.
    let csv = case.dir.path().join("reps.csv");
    std::fs::write(
        &csv,
        "rep_id,name,team,hired_on\n999,Test Rep,QA,2024-01-01\n",
    )
    .unwrap();
    let out = case.ok(&["ingest", "reps", csv.to_str().unwrap(), "--env", "try-fix"]);
    assert!(out.contains("ingested 1 rows"), "{out}");
    let prod_reps = case.rows("reps", "production");
    assert_eq!(case.rows("reps", "try-fix"), prod_reps + 1);
    // Its own deployments: deploy and run the working copy there.
    case.ok(&["deploy", "--all", "--env", "try-fix"]);
    let out = case.ok(&[
        "run",
        "top_reps",
        "--env",
        "try-fix",
        "--deployed",
        "-f",
        "csv",
        "-q",
    ]);
    assert_eq!(out.lines().count(), 11, "{out}");
    assert_eq!(case.snapshot("production"), before, "production untouched");
    // Deleting the branch removes what it wrote, not its parent's data.
    let out = case.ok(&["branch", "delete", "try-fix"]);
    assert!(out.contains("deleted branch try-fix"), "{out}");
    assert_eq!(case.snapshot("production"), before);
    let (_, err) = case.expect(&["run", "top_reps", "--env", "try-fix"], 2);
    assert!(err.contains("unknown environment `try-fix`"), "{err}");
    let (_, err) = case.expect(&["branch", "delete", "production"], 2);
    assert!(err.contains("not a branch"), "{err}");
}

/// A missing bucket and an unreachable endpoint are errors naming the environment and
/// the URL, within a bounded time; a credential variable not set is a usage error.
#[test]
fn bad_stores_are_named() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let case = StoreCase::new(Backend::S3).unwrap();
    let config = std::fs::read_to_string(case.dir.path().join("sluice.toml")).unwrap();
    std::fs::write(
        case.dir.path().join("sluice.toml"),
        config.replace(&format!("s3://{BUCKET}/"), "s3://no-such-bucket/"),
    )
    .unwrap();
    let (_, err) = case.expect(&["query", "SELECT 1 FROM calls"], 1);
    assert!(err.contains("environment `staging`"), "{err}");
    assert!(err.contains("s3://no-such-bucket/"), "{err}");

    // Nothing listens on this port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        case.dir.path().join("sluice.toml"),
        config.replace(endpoint, &format!("http://127.0.0.1:{closed}")),
    )
    .unwrap();
    let started = Instant::now();
    let (_, err) = case.expect(&["query", "SELECT 1 FROM calls"], 1);
    assert!(
        err.contains("environment `staging`") && err.contains("s3://"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

    std::fs::write(case.dir.path().join("sluice.toml"), &config).unwrap();
    let out = std::process::Command::new(sluice_bin())
        .current_dir(case.dir.path())
        .args(["query", "SELECT 1 FROM calls"])
        .env_remove("SLUICE_TEST_KEY_staging")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SLUICE_TEST_KEY_staging"), "{err}");
}

/// Credentials the server refuses: an error naming the environment, the URL and the
/// refusal, exit 1, within a bounded time.
#[test]
fn refused_credentials_are_named() {
    let Some(auth_endpoint) = s3_auth_endpoint() else {
        return;
    };
    let Some(case) = StoreCase::new(Backend::S3) else {
        return;
    };
    let config = std::fs::read_to_string(case.dir.path().join("sluice.toml")).unwrap();
    std::fs::write(
        case.dir.path().join("sluice.toml"),
        config.replace(&case.endpoint, auth_endpoint),
    )
    .unwrap();
    let started = Instant::now();
    let (_, err) = case.expect(&["query", "SELECT count(*) FROM calls"], 1);
    assert!(err.contains("environment `staging`"), "{err}");
    assert!(err.contains(&format!("s3://{BUCKET}/")), "{err}");
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    // A write is refused the same way, and leaves nothing behind to clean up.
    let csv = case.dir.path().join("reps.csv");
    std::fs::write(&csv, "rep_id,name,team,hired_on\n1,A,B,2024-01-01\n").unwrap();
    let (_, err) = case.expect(&["ingest", "reps", csv.to_str().unwrap()], 1);
    assert!(
        err.contains("environment `staging`") && err.contains("InvalidAccessKeyId"),
        "{err}"
    );
}

/// Storage settings are checked when the project loads, with the line at fault.
#[test]
fn storage_settings_are_checked_at_load() {
    let case = StoreCase::new(Backend::Local).unwrap();
    case.write_config("");
    let config = std::fs::read_to_string(case.dir.path().join("sluice.toml")).unwrap();
    std::fs::write(
        case.dir.path().join("sluice.toml"),
        config.replace(
            "data = \"data/production\"",
            "data = \"s3://bucket/prod\"\nstorage = { endpont = \"http://x\" }",
        ),
    )
    .unwrap();
    let (_, err) = case.expect(&["envs"], 2);
    assert!(err.contains("sluice.toml:"), "{err}");
    assert!(err.contains("endpont"), "{err}");
    std::fs::write(
        case.dir.path().join("sluice.toml"),
        config.replace("data = \"data/production\"", "data = \"ftp://x/y\""),
    )
    .unwrap();
    let (_, err) = case.expect(&["envs"], 2);
    assert!(err.contains("ftp://"), "{err}");
}
