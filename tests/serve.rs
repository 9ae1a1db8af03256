//! `sluice serve`, `sluice token`, `sluice stats`: the server started on 127.0.0.1:0 as
//! the binary, called with a real HTTP client.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestProject, sluice_bin};

/// A `sluice serve` process of a test project; its standard output (the access log)
/// and standard error are read as it writes them, so it never blocks on a full pipe.
struct Served {
    child: Child,
    base: String,
    agent: ureq::Agent,
    /// An admin token, for `/metrics`.
    admin: Option<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn drain(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let into = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl Served {
    fn start(p: &TestProject, args: &[&str]) -> Served {
        let mut child = Command::new(sluice_bin())
            .current_dir(p.path())
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_LOG")
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice serve");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read the first line");
        let Some((_, addr)) = line.trim().rsplit_once("http://") else {
            let out = child.wait_with_output().expect("wait");
            panic!(
                "sluice serve did not start: {line:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let stderr = drain(child.stderr.take().expect("stderr"));
        Served {
            child,
            base: format!("http://{addr}"),
            agent,
            admin: None,
            stdout: drain(out),
            stderr,
        }
    }

    /// With an admin token for `/metrics`.
    fn with_admin(mut self, token: &str) -> Served {
        self.admin = Some(token.to_string());
        self
    }

    /// GET `path`, with a bearer token if given: (status, body as text).
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, body) = self.get_bytes(path, token);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_bytes(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let (status, _, body) = self.get_full(path, token);
        (status, body)
    }

    /// GET `path`: status, headers and body.
    fn get_full(&self, path: &str, token: Option<&str>) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body");
        (status, headers, body)
    }

    /// GET a JSON body, requiring `status`.
    fn json(&self, path: &str, token: Option<&str>, status: u16) -> Value {
        let (got, body) = self.get(path, token);
        assert_eq!(got, status, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// GET until the answer has `status` and `pred` holds of its body (the server sees
    /// changes in its store within `serve.refresh`): the last body.
    fn json_eventually(
        &self,
        path: &str,
        token: Option<&str>,
        status: u16,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (got, body) = self.get(path, token);
            if got == status {
                let v: Value = serde_json::from_str(&body).expect("JSON");
                if pred(&v) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "GET {path}: still {got} {body} after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The metrics text (with the admin token).
    fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics", self.admin.as_deref());
        assert_eq!(status, 200, "/metrics: {text}");
        text
    }

    /// Waits until `n` queries are running (the server's own gauge).
    fn wait_in_flight(&self, n: i64) {
        let line = format!("sluice_queries_in_flight{{env=\"staging\"}} {n}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.metrics().contains(&line) {
            assert!(Instant::now() < deadline, "no query in flight");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The access log so far.
    fn access_log(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status and standard error.
    fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s.code();
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers see the end of the pipes once the process is gone.
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        (code, err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(p: &TestProject, args: &[&str]) -> String {
    let mut full = vec!["token", "create"];
    full.extend_from_slice(args);
    let (out, _) = p.expect_exit(&full, 0);
    out.trim().to_string()
}

/// A pipe with a string parameter, to bind hostile text.
const BY_OUTCOME: &str = r#"
description = "Calls of one outcome"
endpoint = true
params.outcome = { type = "string", required = true }
[[node]]
name = "calls_of"
sql = "SELECT count(*) AS calls FROM calls WHERE outcome = $outcome"
"#;

/// A pipe that runs as long as asked: `n` rows generated and counted.
const SLOW: &str = r#"
endpoint = true
params.m = { type = "int", default = 7 }
[[node]]
name = "spin"
sql = "SELECT count(*) AS n FROM generate_series(1, 100000000000) WHERE value % $m = 3"
"#;

#[test]
fn endpoints_answer_in_every_format_with_typed_parameters() {
    let p = TestProject::example(0.05);
    p.write("pipes/by_outcome.toml", BY_OUTCOME);
    let t = token(&p, &["app", "--env", "staging"]);
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let s = Served::start(&p, &["--env", "staging"]).with_admin(&admin);
    let t = Some(t.as_str());

    let v = s.json("/v0/pipes/top_reps.json?limit=3", t, 200);
    assert_eq!(v["rows"], 3, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    let meta: Vec<&str> = v["meta"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(meta, ["name", "team", "won", "revenue"]);
    assert!(v["data"][0]["name"].is_string());
    let stats = &v["statistics"];
    assert!(stats["elapsed"].as_f64().unwrap() > 0.0, "{v}");
    assert!(stats["rows_read"].as_u64().unwrap() > 0, "{v}");
    assert!(stats["bytes_read"].as_u64().unwrap() > 0, "{v}");

    let (st, nd) = s.get("/v0/pipes/top_reps.ndjson?limit=4", t);
    assert_eq!(st, 200);
    assert_eq!(nd.lines().count(), 4, "{nd}");
    let (st, csv) = s.get("/v0/pipes/top_reps.csv?limit=2", t);
    assert_eq!(st, 200);
    assert_eq!(csv.lines().next(), Some("name,team,won,revenue"));
    assert_eq!(csv.lines().count(), 3);
    let (st, pq) = s.get_bytes("/v0/pipes/top_reps.parquet?limit=5", t);
    assert_eq!(st, 200);
    assert!(pq.starts_with(b"PAR1") && pq.ends_with(b"PAR1"));
    let (st, arrow) = s.get_bytes("/v0/pipes/top_reps.arrow?limit=5", t);
    assert_eq!(st, 200);
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(&arrow[..], None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 5);

    // Parameters are parsed and checked as on the command line, and bound as values.
    for (query, param, needle) in [
        ("limit=abc", "limit", "expected type int"),
        ("limit=0", "limit", "below the minimum 1"),
        ("limit=5;DROP%20TABLE%20calls", "limit", "expected type int"),
        (
            "since=2024-01-01'%20OR%20'1'='1",
            "since",
            "expected type date",
        ),
        ("nope=1", "nope", "unknown parameter"),
    ] {
        let v = s.json(&format!("/v0/pipes/top_reps.json?{query}"), t, 400);
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains(&format!("parameter `{param}`")) && msg.contains(needle),
            "{query}: {msg}"
        );
        assert_eq!(v["status"], 400);
    }
    let hostile = "won'%20OR%20'1'='1";
    let v = s.json(
        &format!("/v0/pipes/by_outcome.json?outcome={hostile}"),
        t,
        200,
    );
    assert_eq!(v["data"][0]["calls"], 0, "a hostile string is a value: {v}");
    let v = s.json("/v0/pipes/by_outcome.json?outcome=won", t, 200);
    assert!(v["data"][0]["calls"].as_u64().unwrap() > 0);
    let v = s.json("/v0/pipes/by_outcome.json", t, 400);
    assert!(v["error"].as_str().unwrap().contains("`outcome`"), "{v}");

    // Unknown pipes, pipes that are not endpoints, unknown formats and routes: 404.
    let v = s.json("/v0/pipes/nope.json", t, 404);
    assert!(v["error"].as_str().unwrap().contains("`nope`"));
    let v = s.json("/v0/pipes/daily_outcomes.json", t, 404);
    assert!(
        v["error"].as_str().unwrap().contains("not an endpoint"),
        "{v}"
    );
    let v = s.json("/v0/pipes/top_reps.xml", t, 404);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown format `xml`")
    );
    s.json("/v1/whatever", t, 404);

    // The list, the OpenAPI document, health and metrics.
    let v = s.json("/v0/pipes", t, 200);
    let names: Vec<&str> = v["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["account_health", "by_outcome", "top_reps"]);
    let doc = s.json("/v0/openapi.json", t, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let params = doc["paths"]["/v0/pipes/top_reps.json"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["type"], "integer");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["default"], 10);
    let region = doc["paths"]["/v0/pipes/account_health.csv"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "region")
        .unwrap();
    assert_eq!(region["schema"]["enum"][0], "emea", "{region}");
    assert_eq!(s.json("/health", None, 200)["status"], "ok");
    let metrics = s.metrics();
    assert!(
        metrics.contains(r#"sluice_requests_total{env="staging",pipe="top_reps",status="200"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_requests_total{env="staging",pipe="top_reps",status="400"} 5"#)
    );
    assert!(metrics.contains("sluice_request_duration_seconds_bucket"));
}

#[test]
fn tokens_have_scopes_and_are_valid_only_in_their_environment() {
    let p = TestProject::example(0.05);
    let reader = token(&p, &["dash", "--env", "staging", "--pipes", "top_reps"]);
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let prod = token(&p, &["prod-app", "--env", "production"]);
    assert!(reader.starts_with("sluice_staging_") && prod.starts_with("sluice_production_"));

    // Only hashes are stored; listing never shows a token.
    let file = std::fs::read_to_string(p.store("staging").join("_sluice/tokens.json")).unwrap();
    assert!(!file.contains(&reader) && !file.contains(&admin));
    let (list, _) = p.expect_exit(&["token", "list", "--env", "staging"], 0);
    assert!(list.contains("dash") && list.contains("ops") && !list.contains(&reader));
    let (_, err) = p.expect_exit(&["token", "create", "dash", "--env", "staging"], 2);
    assert!(err.contains("already has a token named `dash`"), "{err}");
    let (_, err) = p.expect_exit(
        &[
            "token",
            "create",
            "x",
            "--env",
            "staging",
            "--pipes",
            "daily_outcomes",
        ],
        2,
    );
    assert!(err.contains("`daily_outcomes` is not an endpoint"), "{err}");

    let s = Served::start(&p, &["--env", "staging", "--sql"]);
    let v = s.json("/v0/pipes/top_reps.json", None, 401);
    assert!(
        v["error"].as_str().unwrap().contains("needs a token"),
        "{v}"
    );
    let v = s.json("/v0/pipes/top_reps.json", Some("sluice_staging_0000"), 401);
    assert!(
        v["error"].as_str().unwrap().contains("unknown or revoked"),
        "{v}"
    );
    let v = s.json("/v0/pipes/top_reps.json", Some(&prod), 401);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("one of environment `production`"),
        "{v}"
    );
    s.json("/v0/pipes/top_reps.json", Some(&reader), 200);
    s.json(
        &format!("/v0/pipes/top_reps.json?token={reader}"),
        None,
        200,
    );
    let v = s.json("/v0/pipes/account_health.json", Some(&reader), 403);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("may not call pipe `account_health`")
    );
    s.json("/v0/pipes/account_health.json", Some(&admin), 200);
    // A token lists only what it may call.
    let v = s.json("/v0/pipes", Some(&reader), 200);
    assert_eq!(v["pipes"].as_array().unwrap().len(), 1);

    // /v0/sql: admin tokens only, read-only.
    let q = "/v0/sql?q=SELECT%20count(*)%20AS%20n%20FROM%20calls";
    s.json(q, Some(&reader), 403);
    let v = s.json(q, Some(&admin), 200);
    assert!(v["data"][0]["n"].as_u64().unwrap() > 0, "{v}");
    for bad in [
        "DROP%20TABLE%20calls",
        "CREATE%20TABLE%20t%20AS%20SELECT%201",
        "COPY%20calls%20TO%20'/tmp/x.parquet'",
        "INSERT%20INTO%20calls%20VALUES%20(1)",
    ] {
        let v = s.json(&format!("/v0/sql?q={bad}"), Some(&admin), 400);
        assert!(
            v["error"].as_str().unwrap().contains("only queries"),
            "{bad}: {v}"
        );
    }

    // Revoked: refused within the server's refresh (1 s), without a restart.
    p.expect_exit(&["token", "revoke", "dash", "--env", "staging"], 0);
    s.json_eventually("/v0/pipes/top_reps.json", Some(&reader), 401, |_| true);
    let (_, err) = p.expect_exit(&["token", "revoke", "dash", "--env", "staging"], 2);
    assert!(err.contains("no token named `dash`"), "{err}");
    drop(s);

    // /v0/sql is off unless enabled; anonymous reads only where the environment says.
    let s = Served::start(&p, &["--env", "staging"]);
    s.json(q, Some(&admin), 404);
    drop(s);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write(
        "sluice.toml",
        &toml.replace(
            "[environments.production]",
            "[environments.staging.serve]\nanonymous = true\n\n[environments.production]",
        ),
    );
    let s = Served::start(&p, &["--env", "staging", "--sql"]);
    s.json("/v0/pipes/top_reps.json", None, 200);
    s.json(q, None, 401);
    let s2 = Served::start(&p, &["--env", "production"]);
    s2.json("/v0/pipes/top_reps.json", None, 401);
    s2.json("/v0/pipes/top_reps.json", Some(&prod), 200);
    s2.json("/v0/pipes/top_reps.json", Some(&admin), 401);
}

#[test]
fn limits_timeouts_and_capacity_answer_at_once() {
    let p = TestProject::example(0.05);
    p.write("pipes/slow.toml", SLOW);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write(
        "sluice.toml",
        &toml.replace(
            "[environments.production]",
            "[environments.staging.serve]\nanonymous = true\ntimeout = \"3s\"\nmax_concurrent = 1\nmax_rows = 5\nmax_bytes = \"2KiB\"\n\n[environments.production]",
        ),
    );
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let s = Served::start(&p, &["--env", "staging"]).with_admin(&admin);

    let v = s.json("/v0/pipes/top_reps.json?limit=10", None, 400);
    assert!(
        v["error"].as_str().unwrap().contains("more than 5 rows"),
        "{v}"
    );
    s.json("/v0/pipes/top_reps.json?limit=5", None, 200);
    let v = s.json("/v0/pipes/account_health.json?min_calls=0", None, 400);
    assert!(
        v["error"].as_str().unwrap().contains("serve.max_rows"),
        "{v}"
    );

    // A query over the timeout is cancelled with 408; meanwhile the one slot is taken
    // and another query is refused at once with 429.
    let base = s.base.clone();
    let agent = s.agent.clone();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let mut resp = agent
            .get(format!("{base}/v0/pipes/slow.json"))
            .call()
            .expect("answer");
        let body = resp.body_mut().read_to_string().unwrap();
        (resp.status().as_u16(), body, started.elapsed())
    });
    s.wait_in_flight(1);
    let started = Instant::now();
    let v = s.json("/v0/pipes/top_reps.json?limit=1", None, 429);
    assert!(
        v["error"].as_str().unwrap().contains("max_concurrent"),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "429 is immediate"
    );
    let (status, body, elapsed) = slow.join().unwrap();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("timeout"), "{body}");
    assert!(
        elapsed < Duration::from_secs(30),
        "cancelled at the timeout: {elapsed:?}"
    );
    // The server keeps serving, and the slot is free again.
    s.json("/v0/pipes/top_reps.json?limit=1", None, 200);
    let metrics = s.metrics();
    assert!(
        metrics.contains("sluice_timeouts_total{env=\"staging\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_rejected_over_capacity_total{env=\"staging\"} 1"));

    // Graceful shutdown: a request in flight at SIGTERM still gets its answer.
    let base = s.base.clone();
    let agent = s.agent.clone();
    let in_flight = std::thread::spawn(move || {
        agent
            .get(format!("{base}/v0/pipes/slow.json"))
            .call()
            .map(|r| r.status().as_u16())
    });
    s.wait_in_flight(1);
    let (code, err) = s.stop();
    assert_eq!(in_flight.join().unwrap().expect("answered"), 408);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("requests in flight finished"), "{err}");
}

#[test]
fn promotions_are_served_without_a_restart_and_runs_are_recorded() {
    let p = TestProject::example(0.05);
    let prod = token(&p, &["web", "--env", "production"]);
    let s = Served::start(&p, &["--env", "production"]);
    let v = s.json("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200);
    assert_eq!(v["meta"].as_array().unwrap().len(), 4);

    // A new version: deployed to staging, promoted, served at the next request.
    let file = p.path().join("pipes/top_reps.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &text.replace(
            "SELECT r.name, r.team, w.won, w.revenue",
            "SELECT r.name, r.team, w.won, w.revenue, w.revenue / w.won AS revenue_per_win",
        ),
    );
    // The working copy is not served in production until it is promoted.
    let v = s.json("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200);
    assert_eq!(v["meta"].as_array().unwrap().len(), 4);
    p.expect_exit(&["deploy", "top_reps", "--env", "staging"], 0);
    p.expect_exit(
        &[
            "promote",
            "top_reps",
            "--from",
            "staging",
            "--to",
            "production",
            "--yes",
        ],
        0,
    );
    // Served within the server's refresh (1 s), without a restart.
    s.json_eventually("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200, |v| {
        v["meta"][4]["name"] == "revenue_per_win"
    });
    p.expect_exit(&["rollback", "top_reps", "--env", "production", "--yes"], 0);
    s.json_eventually("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200, |v| {
        v["meta"].as_array().unwrap().len() == 4
    });
    s.json("/v0/pipes/top_reps.json?limit=0", Some(&prod), 400);
    let (code, err) = s.stop();
    assert_eq!(code, Some(0), "{err}");

    // Each call is a record of production's store: `sluice.pipe_stats`.
    let (out, _) = p.expect_exit(
        &[
            "query",
            "--env",
            "production",
            "-f",
            "json",
            "SELECT pipe, env, origin, status, token, rows_out, version FROM sluice.pipe_stats ORDER BY started_at",
        ],
        0,
    );
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(rows.len() >= 5, "{out}");
    assert!(
        rows.iter()
            .all(|r| r["pipe"] == "top_reps" && r["env"] == "production")
    );
    assert!(
        rows.iter()
            .all(|r| r["origin"] == "http" && r["token"] == "web")
    );
    assert_eq!(rows[0]["rows_out"], 2);
    let versions: Vec<&Value> = rows.iter().map(|r| &r["version"]).collect();
    let first = versions[0];
    let promoted = versions
        .iter()
        .position(|v| *v != first)
        .expect("the promoted version ran");
    let last_ok = &rows[rows.len() - 2];
    assert_eq!(
        &last_ok["version"], first,
        "the rollback ran the old one (after {promoted} calls of it)"
    );
    assert_eq!(rows[rows.len() - 1]["status"], "error");

    // Command-line runs are recorded too, in their own environment only.
    p.expect_exit(&["run", "top_reps", "--env", "staging", "-q"], 0);
    p.expect_exit(
        &["run", "top_reps", "--env", "staging", "-p", "limit=0", "-q"],
        2,
    );
    let (out, _) = p.expect_exit(&["stats", "--env", "staging", "-f", "json"], 0);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["pipe"], "top_reps");
    assert_eq!(rows[0]["calls"], 2);
    assert_eq!(rows[0]["errors"], 1);
    let (table, _) = p.expect_exit(&["stats", "--env", "production", "--since", "1h"], 0);
    for col in [
        "calls",
        "error_pct",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "rows_read_per_s",
    ] {
        assert!(table.contains(col), "{table}");
    }
    let (none, _) = p.expect_exit(
        &["stats", "--env", "production", "--pipe", "account_health"],
        0,
    );
    assert!(none.contains("no runs recorded"), "{none}");
    let (_, err) = p.expect_exit(&["stats", "--env", "production", "--since", "soon"], 2);
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn serve_settings_are_checked_at_load() {
    let p = TestProject::example(0.02);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    for (bad, needle) in [
        ("timeout = \"fast\"", "`serve.timeout`"),
        (
            "max_concurrent = 0",
            "`serve.max_concurrent` is 0: it must be from 1 to",
        ),
        ("max_bytes = \"lots\"", "`serve.max_bytes`"),
        ("anonymus = true", "anonymus"),
    ] {
        p.write(
            "sluice.toml",
            &toml.replace(
                "[environments.production]",
                &format!("[environments.staging.serve]\n{bad}\n\n[environments.production]"),
            ),
        );
        let (_, err) = p.expect_exit(&["serve", "--env", "staging", "--bind", "127.0.0.1:0"], 2);
        assert!(
            err.contains("sluice.toml:") && err.contains(needle),
            "{bad}: {err}"
        );
    }
    p.write("sluice.toml", &toml);
    let s = Served::start(&p, &["--env", "staging"]);
    let addr = s.base.trim_start_matches("http://").to_string();
    let (_, err) = p.expect_exit(&["serve", "--env", "staging", "--bind", &addr], 2);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

/// The environment `staging` of `p` with these `[serve]` settings.
fn serve_settings(p: &TestProject, settings: &str) {
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write(
        "sluice.toml",
        &toml.replace(
            "[environments.production]",
            &format!("[environments.staging.serve]\n{settings}\n\n[environments.production]"),
        ),
    );
}

/// The value of one sample of the metrics text (`name{labels}` as written).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_need_an_admin_token_and_made_up_names_add_no_series() {
    let p = TestProject::example(0.02);
    let reader = token(&p, &["app", "--env", "staging"]);
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let s = Served::start(&p, &["--env", "staging"]).with_admin(&admin);

    let v = s.json("/metrics", None, 401);
    assert!(v["error"].as_str().unwrap().contains("admin token"), "{v}");
    let v = s.json("/metrics", Some(&reader), 403);
    assert!(v["error"].as_str().unwrap().contains("admin token"), "{v}");
    s.json("/v0/pipes/top_reps.json?limit=1", Some(&reader), 200);
    let before = s.metrics();
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();

    // 5,000 calls of made-up names, refused with 401 (no token) or 404 (a token).
    for i in 0..5000 {
        let path = format!("/v0/pipes/rand{i}.json");
        let (status, _) = s.get(&path, (i % 2 == 1).then_some(reader.as_str()));
        assert_eq!(status, if i % 2 == 1 { 404 } else { 401 }, "{path}");
    }
    let after = s.metrics();
    assert!(!after.contains("rand"), "{after}");
    assert_eq!(
        metric(
            &after,
            r#"sluice_requests_total{env="staging",pipe="_unknown",status="401"}"#
        ),
        2500.0
    );
    assert_eq!(
        metric(
            &after,
            r#"sluice_requests_total{env="staging",pipe="_unknown",status="404"}"#
        ),
        2500.0
    );
    // One series per status of `_unknown`, plus its latency histogram, added once.
    assert!(
        series(&after) <= series(&before) + 2 + 18,
        "{} series before, {} after:\n{after}",
        series(&before),
        series(&after)
    );
    // Every one of them has its access line (read from the server's output by another
    // thread: wait for it, on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.access_log().lines().count() < 5000 {
        assert!(
            Instant::now() < deadline,
            "{} access lines",
            s.access_log().lines().count()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn access_log_has_one_line_per_request() {
    let p = TestProject::example(0.02);
    let reader = token(&p, &["app", "--env", "staging"]);
    let s = Served::start(&p, &["--env", "staging"]);
    s.json(
        &format!("/v0/pipes/top_reps.json?limit=2&token={reader}"),
        None,
        200,
    );
    s.json("/v0/pipes/nope.json", Some(&reader), 404);
    s.json("/v0/pipes/top_reps.json", None, 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.access_log().lines().count() < 3 {
        assert!(Instant::now() < deadline, "{}", s.access_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = s.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(!log.contains(&reader), "the token is never logged: {log}");
    assert!(
        lines[0].contains(
            "GET /v0/pipes/top_reps.json status=200 token=app pipe=top_reps rows=2 bytes="
        ),
        "{log}"
    );
    assert!(lines[0].contains(" ms="), "{log}");
    assert!(
        lines[1].contains("status=404 token=app pipe=nope rows=-"),
        "{log}"
    );
    assert!(
        lines[2].contains("status=401 token=- pipe=top_reps"),
        "{log}"
    );
    drop(s);

    let s = Served::start(&p, &["--env", "staging", "--log-format", "json"]);
    s.json("/v0/pipes/top_reps.json?limit=3", Some(&reader), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.access_log().lines().count() < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let line: Value = serde_json::from_str(s.access_log().lines().next().unwrap()).unwrap();
    assert_eq!(line["token"], "app");
    assert_eq!(line["pipe"], "top_reps");
    assert_eq!(line["status"], 200);
    assert_eq!(line["rows"], 3);
    assert!(line["bytes"].as_u64().unwrap() > 0, "{line}");
    assert!(line["ms"].as_f64().unwrap() > 0.0, "{line}");
    assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
}

/// Sends `request` on a new connection and reads until the server closes it: what it
/// answered (possibly nothing) and how long it took.
fn raw_exchange(base: &str, request: &[u8]) -> (String, Duration) {
    use std::io::Write;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn slow_idle_and_oversized_requests_are_cut_off() {
    let p = TestProject::example(0.02);
    serve_settings(
        &p,
        "anonymous = true\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"\nmax_body = \"1KiB\"\nsql = true",
    );
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let s = Served::start(&p, &["--env", "staging"]).with_admin(&admin);

    // A head that never ends is cut off after header_timeout, not held open.
    let (answer, took) = raw_exchange(&s.base, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1");
    assert!(answer.is_empty(), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    // An idle keep-alive connection is closed after idle_timeout.
    let (answer, took) = raw_exchange(&s.base, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );

    // Oversized requests: a long target 414, large headers 431, a large body 413.
    let long = format!("/v0/pipes/top_reps.json?limit=1&pad={}", "x".repeat(9000));
    let v = s.json(&long, None, 414);
    assert!(v["error"].as_str().unwrap().contains("8192"), "{v}");
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(20_000)
    );
    let (answer, _) = raw_exchange(&s.base, big_header.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(100_000)
    );
    let (answer, _) = raw_exchange(&s.base, huge_header.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    let resp = s
        .agent
        .post(format!("{}/v0/sql", s.base))
        .header("Authorization", format!("Bearer {admin}"))
        .send(format!("SELECT 1 AS x -- {}", "z".repeat(2000)))
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 413);
    let resp = s
        .agent
        .post(format!("{}/v0/sql", s.base))
        .header("Authorization", format!("Bearer {admin}"))
        .send("SELECT 1 AS x")
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 200);

    // The server keeps serving, and counted the connection it cut off.
    assert_eq!(s.json("/health", None, 200)["status"], "ok");
    assert_eq!(
        metric(
            &s.metrics(),
            r#"sluice_header_timeouts_total{env="staging"}"#
        ),
        1.0
    );
}

#[test]
fn server_errors_carry_an_id_and_no_path() {
    let p = TestProject::example(0.02);
    serve_settings(&p, "anonymous = true");
    // A data file that is not Parquet: listing the source fails, naming the file.
    let calls = p.store("staging").join("calls");
    let file = std::fs::read_dir(&calls)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.extension().is_some_and(|e| e == "parquet"))
        .expect("a data file");
    std::fs::write(&file, b"not parquet at all").unwrap();
    let s = Served::start(&p, &["--env", "staging"]);
    let v = s.json("/v0/pipes/top_reps.json", None, 500);
    let id = v["id"].as_str().expect("an error id").to_string();
    let body = v.to_string();
    assert!(body.contains(&id));
    let root = p.path().to_string_lossy().to_string();
    assert!(!body.contains(&root) && !body.contains("/tmp"), "{body}");
    assert!(!body.contains(".parquet"), "{body}");
    let (_, err) = s.stop();
    // The server's log has the whole error under that id.
    let logged = err
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no {id} in {err}"));
    assert!(
        logged.contains(&file.file_name().unwrap().to_string_lossy().to_string()),
        "{logged}"
    );
}

#[test]
fn dates_beyond_the_engines_range_are_bad_parameters() {
    let p = TestProject::example(0.02);
    serve_settings(&p, "anonymous = true");
    let s = Served::start(&p, &["--env", "staging"]);
    for since in ["%2B10000-01-01", "1500-01-01"] {
        let v = s.json(&format!("/v0/pipes/top_reps.json?since={since}"), None, 400);
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains("parameter `since`") && msg.contains("outside the range"),
            "{msg}"
        );
    }
    s.json("/v0/pipes/top_reps.json?since=2262-04-11", None, 200);
    drop(s);
    let (_, err) = p.expect_exit(&["run", "top_reps", "-p", "since=+10000-01-01"], 2);
    assert!(err.contains("outside the range"), "{err}");
    // NaN never passes bounds: not from the query string, not as a default.
    p.write(
        "pipes/ratio.toml",
        "endpoint = true\nparams.r = { type = \"float\", default = 0.5, min = 0.0, max = 1.0 }\n[[node]]\nname = \"n\"\nsql = \"SELECT $r AS r\"\n",
    );
    let (_, err) = p.expect_exit(&["run", "ratio", "-p", "r=nan"], 2);
    assert!(err.contains("parameter `r`"), "{err}");
    p.write(
        "pipes/ratio.toml",
        "endpoint = true\nparams.r = { type = \"float\", default = nan, min = 0.0, max = 1.0 }\n[[node]]\nname = \"n\"\nsql = \"SELECT $r AS r\"\n",
    );
    let (_, err) = p.expect_exit(&["run", "ratio"], 2);
    assert!(
        err.contains("ratio.toml:") && err.contains("not a finite number"),
        "{err}"
    );
}

/// A pipe the cache test materializes, and an endpoint that reads what it wrote.
const WON_BY_REP: &str = r#"
materialize = { to = "won_by_rep" }
[[node]]
name = "won"
sql = "SELECT rep_id, count(*) AS won FROM calls WHERE outcome = 'won' GROUP BY rep_id"
"#;
const FROM_MAT: &str = r#"
endpoint = true
cache = "1h"
[[node]]
name = "total"
sql = "SELECT sum(won) AS won, count(*) AS reps FROM won_by_rep"
"#;

/// GET `path` until the answer says `x-sluice-cache: miss` (a change in the store
/// emptied the cache): the body.
fn until_miss(s: &Served, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, headers, body) = s.get_full(path, None);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        if headers.get("x-sluice-cache").unwrap() == "miss" {
            return serde_json::from_slice(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still answered from the cache"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cache_header(s: &Served, path: &str) -> String {
    let (status, headers, _) = s.get_full(path, None);
    assert_eq!(status, 200);
    headers
        .get("x-sluice-cache")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn requests_read_no_state_and_cached_results_follow_the_store() {
    let p = TestProject::example(0.02);
    // Staging read whole: the materialized total must count every rep to see the new call.
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    let policy = "sample = { method = \"system\", fraction = 0.1, seed = 7 }";
    assert!(toml.contains(policy));
    p.write("sluice.toml", &toml.replace(policy, "sample = \"full\""));
    let top = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write("pipes/top_reps.toml", &format!("cache = \"1h\"\n{top}"));
    p.write("pipes/won_by_rep.toml", WON_BY_REP);
    p.write("pipes/from_mat.toml", FROM_MAT);
    p.expect_exit(&["materialize", "won_by_rep", "--full"], 0);

    // A server that never looks at its store again: requests read none of its state.
    let original = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    serve_settings(&p, "anonymous = true\nrefresh = \"1h\"");
    let admin = token(&p, &["ops", "--env", "staging", "--scope", "admin"]);
    let s = Served::start(&p, &["--env", "staging"]).with_admin(&admin);
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=3"), "miss");
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=3"), "hit");
    // The same bound values, given differently: the same result.
    assert_eq!(
        cache_header(&s, "/v0/pipes/top_reps.json?limit=3&since=2024-01-01"),
        "hit"
    );
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=4"), "miss");
    s.json("/v0/pipes/account_health.json", None, 200);
    s.json("/v0/pipes/from_mat.json", None, 200);
    let reads = metric(
        &s.metrics(),
        r#"sluice_store_state_reads_total{env="staging"}"#,
    );
    for i in 0..20 {
        s.json(
            &format!("/v0/pipes/account_health.json?min_calls={i}"),
            None,
            200,
        );
        s.json(
            &format!("/v0/pipes/top_reps.json?limit={}", 1 + i),
            None,
            200,
        );
        s.json("/v0/pipes/from_mat.json", None, 200);
        s.json("/v0/pipes/account_health.json", None, 200);
        s.json("/v0/pipes/nope.json", None, 404);
    }
    s.json("/v0/pipes", None, 200);
    let after = metric(
        &s.metrics(),
        r#"sluice_store_state_reads_total{env="staging"}"#,
    );
    assert_eq!(after, reads, "requests read the store's state");
    // The same call again runs the plan the first one prepared.
    let reused = metric(&s.metrics(), r#"sluice_prepared_runs_total{env="staging"}"#);
    assert!(
        reused >= 20.0,
        "account_health's plan was prepared once: {reused}"
    );
    drop(s);

    // With a short refresh, an ingest and a materialization empty the cache.
    p.write("sluice.toml", &original);
    serve_settings(&p, "anonymous = true\nrefresh = \"100ms\"");
    let s = Served::start(&p, &["--env", "staging"]);
    let first = until_miss(&s, "/v0/pipes/from_mat.json");
    assert_eq!(cache_header(&s, "/v0/pipes/from_mat.json"), "hit");
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=3"), "miss");
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=3"), "hit");
    let csv = p.path().join("more_calls.csv");
    std::fs::write(
        &csv,
        "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n\
         990001,101,3,2024-06-01T10:00:00,60,won,120.5,phone\n",
    )
    .unwrap();
    p.expect_exit(&["ingest", "calls", csv.to_str().unwrap()], 0);
    until_miss(&s, "/v0/pipes/top_reps.json?limit=3");
    assert_eq!(cache_header(&s, "/v0/pipes/top_reps.json?limit=3"), "hit");
    // Kept again (the ingest emptied the cache), until the materialization.
    cache_header(&s, "/v0/pipes/from_mat.json");
    assert_eq!(cache_header(&s, "/v0/pipes/from_mat.json"), "hit");
    p.expect_exit(&["materialize", "won_by_rep", "--full"], 0);
    let second = until_miss(&s, "/v0/pipes/from_mat.json");
    let won = |v: &serde_json::Value| {
        v["data"][0]["won"]
            .as_u64()
            .unwrap_or_else(|| panic!("no count of won calls in {v}"))
    };
    assert_eq!(
        won(&second),
        won(&first) + 1,
        "the new call is counted: {first} {second}"
    );
    drop(s);

    // In production: a promotion and a rollback empty it too.
    p.expect_exit(&["deploy", "top_reps", "--env", "staging"], 0);
    p.expect_exit(
        &[
            "promote",
            "top_reps",
            "--from",
            "staging",
            "--to",
            "production",
            "--yes",
        ],
        0,
    );
    p.write(
        "sluice.toml",
        &original.replace(
            "[environments.production]\n",
            "[environments.production.serve]\nanonymous = true\nrefresh = \"100ms\"\n\n[environments.production]\n",
        ),
    );
    let s = Served::start(&p, &["--env", "production"]);
    let path = "/v0/pipes/top_reps.json?limit=2";
    assert_eq!(cache_header(&s, path), "miss");
    assert_eq!(cache_header(&s, path), "hit");
    let text = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &text.replace(
            "SELECT r.name, r.team, w.won, w.revenue",
            "SELECT r.name, r.team, w.won, w.revenue, w.revenue / w.won AS revenue_per_win",
        ),
    );
    p.expect_exit(&["deploy", "top_reps", "--env", "staging"], 0);
    p.expect_exit(
        &[
            "promote",
            "top_reps",
            "--from",
            "staging",
            "--to",
            "production",
            "--yes",
        ],
        0,
    );
    let v = until_miss(&s, path);
    assert_eq!(v["meta"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(cache_header(&s, path), "hit");
    p.expect_exit(&["rollback", "top_reps", "--env", "production", "--yes"], 0);
    let v = until_miss(&s, path);
    assert_eq!(v["meta"].as_array().unwrap().len(), 4, "{v}");
}

#[test]
fn openapi_and_the_list_describe_output_columns_and_constraints() {
    let p = TestProject::example(0.02);
    serve_settings(&p, "anonymous = true");
    let s = Served::start(&p, &["--env", "staging"]);
    let doc = s.json("/v0/openapi.json", None, 200);
    let ok = &doc["paths"]["/v0/pipes/top_reps.json"]["get"]["responses"]["200"];
    let result_ref = ok["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    assert_eq!(result_ref, "#/components/schemas/top_reps_result");
    let row = &doc["components"]["schemas"]["top_reps_row"];
    assert_eq!(row["properties"]["name"]["type"], "string", "{row}");
    assert_eq!(row["properties"]["won"]["type"], "integer", "{row}");
    assert_eq!(row["properties"]["revenue"]["type"], "number", "{row}");
    let params = doc["paths"]["/v0/pipes/top_reps.json"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["maximum"], 1000);

    let v = s.json("/v0/pipes", None, 200);
    let top = v["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "top_reps")
        .unwrap();
    let cols: Vec<(&str, &str)> = top["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            ("name", "Utf8"),
            ("team", "Utf8"),
            ("won", "Int64"),
            ("revenue", "Float64")
        ]
    );
    let limit = top["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (limit["min"].clone(), limit["max"].clone()),
        (1.into(), 1000.into())
    );
    let region = v["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "account_health")
        .unwrap()["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "region")
        .unwrap()
        .clone();
    assert_eq!(region["allowed"][1], "amer", "{region}");
}
