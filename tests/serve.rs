//! `sluice serve`, `sluice token`, `sluice stats`: the server started on 127.0.0.1:0 as
//! the binary, called with a real HTTP client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestProject, sluice_bin};

/// A `sluice serve` process of a test project.
struct Served {
    child: Child,
    base: String,
    agent: ureq::Agent,
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
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
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
        Served {
            child,
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// GET `path`, with a bearer token if given: (status, body as text).
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, body) = self.get_bytes(path, token);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_bytes(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("the server answers");
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body");
        (status, body)
    }

    /// GET a JSON body, requiring `status`.
    fn json(&self, path: &str, token: Option<&str>, status: u16) -> Value {
        let (got, body) = self.get(path, token);
        assert_eq!(got, status, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// Waits until `n` queries are running (the server's own gauge).
    fn wait_in_flight(&self, n: i64) {
        let line = format!("sluice_queries_in_flight{{env=\"staging\"}} {n}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.get("/metrics", None).1.contains(&line) {
            assert!(Instant::now() < deadline, "no query in flight");
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
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
    let s = Served::start(&p, &["--env", "staging"]);
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
    let (st, metrics) = s.get("/metrics", None);
    assert_eq!(st, 200);
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

    // Revoked: refused at once, without a restart.
    p.expect_exit(&["token", "revoke", "dash", "--env", "staging"], 0);
    s.json("/v0/pipes/top_reps.json", Some(&reader), 401);
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
    let s = Served::start(&p, &["--env", "staging"]);

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
    let (_, metrics) = s.get("/metrics", None);
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
    let v = s.json("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200);
    assert_eq!(v["meta"][4]["name"], "revenue_per_win", "{v}");
    p.expect_exit(&["rollback", "top_reps", "--env", "production", "--yes"], 0);
    let v = s.json("/v0/pipes/top_reps.json?limit=2", Some(&prod), 200);
    assert_eq!(v["meta"].as_array().unwrap().len(), 4, "{v}");
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
    assert_eq!(rows.len(), 5, "{out}");
    assert!(
        rows.iter()
            .all(|r| r["pipe"] == "top_reps" && r["env"] == "production")
    );
    assert!(
        rows.iter()
            .all(|r| r["origin"] == "http" && r["token"] == "web")
    );
    assert_eq!(rows[0]["rows_out"], 2);
    assert_ne!(
        rows[0]["version"], rows[2]["version"],
        "the promoted version ran"
    );
    assert_eq!(
        rows[0]["version"], rows[3]["version"],
        "the rollback ran the old one"
    );
    assert_eq!(rows[4]["status"], "error");

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
