//! The web console (`/ui` of `sluice serve`, and `sluice ui`): access over HTTP (401,
//! 403, the cookie flow), escaping of what users write, and every page loaded in a real
//! browser (headless Chromium) on a served sales_calls project with promotions and
//! calls recorded: the DOM checked, a screenshot saved to `target/test-artifacts/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestProject, sluice_bin};

/// A `sluice serve` or `sluice ui` process on 127.0.0.1:0.
struct Running {
    child: Child,
    base: String,
    /// Follows no redirect, so a test sees each one.
    agent: ureq::Agent,
}

impl Running {
    fn start(p: &TestProject, args: &[&str]) -> Running {
        let mut child = Command::new(sluice_bin())
            .current_dir(p.path())
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_LOG")
            .args(args)
            .args(["--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let Some(addr) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .map(|a| a.trim_end_matches("/ui/").to_string())
        else {
            let out = child.wait_with_output().expect("wait");
            panic!(
                "sluice {args:?} did not start: {line:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Running {
            child,
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// GET `path` with these headers: (status, headers as lowercase `name: value`
    /// lines, body).
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.call().expect("the server answers");
        Self::read(resp)
    }

    fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_form(form.iter().copied())
            .expect("the server answers");
        Self::read(resp)
    }

    fn read(mut resp: ureq::http::Response<ureq::Body>) -> (u16, String, String) {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| format!("{}: {}", k.as_str(), v.to_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join("\n");
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (status, headers, body)
    }

    /// GET with a bearer token, requiring 200: the body.
    fn page(&self, path: &str, token: &str) -> String {
        let (status, _, body) = self.get(path, &[("Authorization", &format!("Bearer {token}"))]);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

impl Drop for Running {
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

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// The numeric attribute `attr` of every element whose markup starts with `start`, in
/// the chart `data-chart=CHART` of a page.
fn chart_positions(page: &str, chart: &str, start: &str, attr: &str) -> Vec<f64> {
    let from = page
        .find(&format!(r#"data-chart="{chart}""#))
        .unwrap_or_else(|| panic!("no chart {chart}: {page}"));
    let to = page[from..]
        .find("</figure>")
        .map_or(page.len(), |i| from + i);
    page[from..to]
        .match_indices(start)
        .map(|(i, _)| {
            let rest = &page[from + i..to];
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            let key = format!(r#" {attr}=""#);
            let v = &tag[tag
                .find(&key)
                .unwrap_or_else(|| panic!("no {attr} in {tag}"))
                + key.len()..];
            v[..v.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// The latency chart's p95 points spread over the time axis, the promotion and the
/// rollback drawn between them in that order: the times of calls and of changes are
/// placed on one axis.
fn check_latency_chart(page: &str) {
    let xs = chart_positions(
        page,
        "latency",
        r#"<circle class="point" data-series="p95""#,
        "cx",
    );
    let (min, max) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    assert!(xs.len() >= 3, "p95 points: {xs:?}");
    assert!(
        min >= 70.0 && max <= 880.0 && max - min > 300.0,
        "p95 points: {xs:?}"
    );
    let promote = chart_positions(
        page,
        "latency",
        r#"<line class="marker" data-action="promote""#,
        "x1",
    );
    let rollback = chart_positions(
        page,
        "latency",
        r#"<line class="marker" data-action="rollback""#,
        "x1",
    );
    // The first promotion (the project's setup) may fall in the first call's bucket.
    assert_eq!(rollback.len(), 1, "{page}");
    assert!(
        promote.iter().any(|p| min < *p && *p < rollback[0]) && rollback[0] < max,
        "points {xs:?}, promote {promote:?}, rollback {rollback:?}"
    );
}

/// A pipe whose description, SQL and output are markup, to see them escaped.
const HOSTILE: &str = r#"
description = "<script>alert('pipe')</script>"
[[node]]
name = "tagged"
sql = "SELECT '<b>bold</b>' AS tag"
"#;

/// Who promotes in the tests: markup too.
const HOSTILE_ACTOR: &str = "<img src=x onerror=alert(1)>";

/// The example with tokens in production, a hostile pipe, and `sluice serve --env
/// production` called before and after a promotion and a rollback of top_reps, its
/// run records written. Returns the project, the server and the admin token.
fn served_project() -> (TestProject, Running, String) {
    // 20,000 calls: enough row groups in staging's 10% sample for intervals.
    let p = TestProject::example(0.2);
    p.write("pipes/hostile.toml", HOSTILE);
    let admin = token(&p, &["admin", "--scope", "admin", "--env", "production"]);
    let s = Running::start(&p, &["serve", "--env", "production"]);
    let call = |n: usize| {
        for i in 0..n {
            s.page(
                &format!("/v0/pipes/top_reps.json?limit={}", 1 + i % 5),
                &admin,
            );
        }
    };
    call(8);
    // Buckets of a second: the changes fall between calls.
    std::thread::sleep(Duration::from_millis(1100));
    let text = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &text.replace(
            "description = \"Reps ranked by calls won since a date\"",
            "description = \"Reps ranked by won calls\"",
        ),
    );
    p.expect_exit(&["deploy", "top_reps"], 0);
    p.expect_exit(
        &["promote", "top_reps", "--yes", "--actor", HOSTILE_ACTOR],
        0,
    );
    std::thread::sleep(Duration::from_millis(1100));
    call(8);
    std::thread::sleep(Duration::from_millis(1100));
    p.expect_exit(&["rollback", "top_reps", "--env", "production", "--yes"], 0);
    std::thread::sleep(Duration::from_millis(1100));
    call(8);
    // The server writes its run records every 2 seconds: wait for all 24.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = s.page("/ui/monitor?env=production&pipe=top_reps", &admin);
        if body.contains("24 calls in buckets") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run records were not written: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (p, s, admin)
}

#[test]
fn the_console_needs_an_admin_token_of_its_environment() {
    let p = TestProject::example(0.05);
    let admin = token(&p, &["admin", "--scope", "admin", "--env", "production"]);
    let reader = token(&p, &["reader", "--env", "production"]);
    let staging = token(&p, &["boss", "--scope", "admin", "--env", "staging"]);
    let s = Running::start(&p, &["serve", "--env", "production"]);
    let bearer = |t: &str| format!("Bearer {t}");

    // No token: the sign-in page, for every page.
    for path in ["/ui/", "/ui/pipes/top_reps", "/ui/monitor", "/ui/fidelity"] {
        let (status, _, body) = s.get(path, &[]);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("needs an admin token"), "{body}");
        assert!(body.contains(r#"action="/ui/login""#), "{body}");
    }
    // A read token: refused, and told why.
    let (status, _, body) = s.get("/ui/", &[("Authorization", &bearer(&reader))]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("token `reader` is `read`"), "{body}");
    // Another environment's token.
    let (status, _, body) = s.get("/ui/", &[("Authorization", &bearer(&staging))]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("one of environment `staging`"), "{body}");
    // An admin token: the page.
    let (status, headers, body) = s.get("/ui/", &[("Authorization", &bearer(&admin))]);
    assert_eq!(status, 200, "{body}");
    assert!(
        header(&headers, "content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'"))
    );
    // The stylesheet is public (it tells nothing).
    let (status, headers, css) = s.get("/ui/console.css", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/css; charset=utf-8")
    );
    assert!(css.contains("circle.truth"));

    // ?token= sets the cookie and sends the browser on without it.
    let (status, headers, _) = s.get(&format!("/ui/pipes/top_reps?a=staging&token={admin}"), &[]);
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        Some("/ui/pipes/top_reps?a=staging")
    );
    let cookie = header(&headers, "set-cookie").expect("a cookie");
    assert!(
        cookie.starts_with(&format!("sluice_console_production={admin};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/ui"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let (status, _, body) = s.get("/ui/pipes/top_reps?a=staging", &[("Cookie", pair)]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Pipe top_reps"));
    // A bad token in the URL sets nothing.
    let (status, headers, _) = s.get(&format!("/ui/?token={reader}"), &[]);
    assert_eq!(status, 403);
    assert!(header(&headers, "set-cookie").is_none());
    // A revoked token's cookie no longer signs in, and is dropped.
    let (status, headers, _) = s.get(
        "/ui/",
        &[(
            "Cookie",
            "sluice_console_production=sluice_production_0000000000000000000000000000000000000000",
        )],
    );
    assert_eq!(status, 401);
    assert!(header(&headers, "set-cookie").is_some_and(|c| c.contains("Max-Age=0")));

    // The sign-in form: a cookie, then back where the user was, never off the site.
    let (status, headers, _) = s.post_form(
        "/ui/login",
        &[("token", &admin), ("next", "/ui/monitor?env=staging")],
    );
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        Some("/ui/monitor?env=staging")
    );
    assert!(header(&headers, "set-cookie").is_some());
    let (status, headers, _) = s.post_form(
        "/ui/login",
        &[("token", &admin), ("next", "//evil.example/")],
    );
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/ui/"));
    let (status, _, _) = s.post_form("/ui/login", &[("token", "nonsense"), ("next", "/ui/")]);
    assert_eq!(status, 401);

    // The endpoints are as they were.
    let (status, _, _) = s.get(
        "/v0/pipes/top_reps.json",
        &[("Authorization", &bearer(&reader))],
    );
    assert_eq!(status, 200);
    drop(s);

    // `sluice ui`: the console alone; anonymous where the environment allows it.
    let ui = Running::start(&p, &["ui", "--env", "production"]);
    let (status, headers, _) = ui.get("/", &[]);
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/ui/"));
    assert_eq!(ui.get("/ui/", &[]).0, 401);
    assert_eq!(ui.get("/ui/", &[("Authorization", &bearer(&admin))]).0, 200);
    assert_eq!(
        ui.get("/v0/pipes", &[("Authorization", &bearer(&admin))]).0,
        404
    );
    drop(ui);
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write(
        "sluice.toml",
        &toml.replace(
            "[environments.production]",
            "[environments.staging.serve]\nanonymous = true\n\n[environments.production]",
        ),
    );
    let ui = Running::start(&p, &["ui"]);
    let (status, _, body) = ui.get("/ui/", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("tokens of <strong>staging</strong>"),
        "{body}"
    );
    // A bad token is still refused where anonymous reads are allowed.
    assert_eq!(
        ui.get("/ui/", &[("Authorization", "Bearer nonsense")]).0,
        401
    );
    drop(ui);
    // A usage error: an unknown environment, exit 2.
    let (_, err) = p.expect_exit(&["ui", "--env", "nowhere", "--bind", "127.0.0.1:0"], 2);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn console_pages_show_the_project_and_escape_what_users_write() {
    let (p, s, admin) = served_project();

    let overview = s.page("/ui/", &admin);
    for want in [
        r#"data-env="staging""#,
        r#"data-env="production""#,
        "system 10% seed 7",
        r#"data-source="calls""#,
        "20,000",
        // hostile is only in the working copy; top_reps was rolled back in production.
        r#"<tr data-pipe="hostile" data-differs="false">"#,
        r#"<tr data-pipe="top_reps" data-differs="true">"#,
        "not deployed",
    ] {
        assert!(overview.contains(want), "overview lacks {want}: {overview}");
    }

    let pipe = s.page("/ui/pipes/top_reps", &admin);
    assert!(pipe.contains("ORDER BY w.won DESC, r.name"), "{pipe}");
    assert!(pipe.contains("<code>limit</code>"), "{pipe}");
    assert!(pipe.contains("won is positive"), "{pipe}");
    // Tests of the pipe from tests/top_reps.toml.
    assert!(pipe.contains("tests/top_reps.toml"), "{pipe}");
    // History of both environments, the newest first: the rollback, the promotion by
    // the hostile actor (escaped), the deploy, the first promotion and deploy.
    let events: Vec<&str> = pipe
        .match_indices(r#"<tr class="event""#)
        .map(|(i, _)| &pipe[i..i + 80])
        .collect();
    assert_eq!(events.len(), 5, "{pipe}");
    assert!(
        events[0].contains(r#"data-action="rollback""#),
        "{events:?}"
    );
    assert!(
        pipe.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{pipe}"
    );
    assert!(!pipe.contains("<img"), "{pipe}");
    // The diff: the working copy against production's (rolled back) live version.
    assert!(
        pipe.contains(r#"<span class="add">+description = &quot;Reps ranked by won calls&quot;"#),
        "{pipe}"
    );
    assert!(
        pipe.contains(
            r#"<span class="del">-description = &quot;Reps ranked by calls won since a date&quot;"#
        ),
        "{pipe}"
    );
    // Choosing the sides; an unknown side is a 400 naming it.
    let same = s.page("/ui/pipes/top_reps?a=staging&b=working+copy", &admin);
    assert!(same.contains("identical"), "{same}");
    let (status, _, body) = s.get(
        "/ui/pipes/top_reps?a=nowhere",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("`nowhere` is not a version of pipe `top_reps`"),
        "{body}"
    );
    let (status, _, body) = s.get(
        "/ui/pipes/nothing%3Cb%3E",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("nothing&lt;b&gt;") && !body.contains("nothing<b>"),
        "{body}"
    );

    // What users write is shown as text, never as markup.
    let hostile = s.page("/ui/pipes/hostile", &admin);
    assert!(
        hostile.contains("&lt;script&gt;alert('pipe')&lt;/script&gt;"),
        "{hostile}"
    );
    assert!(
        hostile.contains("SELECT '&lt;b&gt;bold&lt;/b&gt;' AS tag"),
        "{hostile}"
    );
    assert!(
        !hostile.contains("<script") && !hostile.contains("<b>"),
        "{hostile}"
    );

    // A broken test file is said on the page, which still shows the rest.
    p.write("tests/broken.toml", "[[case]]\nname = 1\n");
    let broken = s.page("/ui/pipes/top_reps", &admin);
    assert!(
        broken.contains(r#"<p class="error">"#) && broken.contains("broken.toml"),
        "{broken}"
    );
    assert!(broken.contains("ORDER BY w.won DESC"), "{broken}");
    std::fs::remove_file(p.path().join("tests/broken.toml")).unwrap();

    // Monitoring: 24 calls, latency points, the promotion and the rollback marked.
    let monitor = s.page("/ui/monitor?env=production&pipe=top_reps", &admin);
    assert!(
        monitor
            .matches(r#"<circle class="point" data-series="p95""#)
            .count()
            >= 3,
        "{monitor}"
    );
    assert!(
        monitor.contains(r#"<line class="marker" data-action="promote""#),
        "{monitor}"
    );
    assert!(
        monitor.contains(r#"<line class="marker" data-action="rollback""#),
        "{monitor}"
    );
    assert!(monitor.contains(r#"data-chart="bytes""#), "{monitor}");
    check_latency_chart(&monitor);
    assert!(!monitor.contains("<img"), "{monitor}");
    let (status, _, body) = s.get(
        "/ui/monitor?since=forever",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(status, 400);
    assert!(body.contains("parameter `since`"), "{body}");
    let staging = s.page("/ui/monitor?env=staging&pipe=top_reps", &admin);
    assert!(
        staging.contains("No runs of top_reps recorded in environment staging"),
        "{staging}"
    );

    // Staging against production: every group with its interval and production's dot.
    let fidelity = s.page("/ui/fidelity?pipe=top_reps&p.limit=100", &admin);
    assert!(fidelity.contains("present in staging"), "{fidelity}");
    assert!(
        fidelity.matches(r#"<circle class="truth""#).count() >= 10,
        "{fidelity}"
    );
    assert!(fidelity.contains(r#"<line class="interval""#), "{fidelity}");
    assert!(
        fidelity.contains(r#"<circle class="truth" data-v="#),
        "{fidelity}"
    );
    assert!(fidelity.contains(r#"data-inside="yes""#), "{fidelity}");
    // A run that fails: its error under the form, with its status.
    let (status, _, body) = s.get(
        "/ui/fidelity?pipe=top_reps&p.limit=0",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(r#"<p class="error">"#) && body.contains("limit"),
        "{body}"
    );
    assert!(body.contains(r#"<form class="pick""#), "{body}");
    // A pipe that is not in the project: 404, named.
    let (status, _, body) = s.get(
        "/ui/fidelity?pipe=nothing",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nothing"), "{body}");
    drop(s);
    drop(p);
}

/// Headless Chromium, if installed: `SLUICE_TEST_CHROMIUM`, else `chromium` or
/// `chromium-headless-shell` on PATH. Under CI its absence fails the test.
fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-headless-shell", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    if std::env::var("CI").is_ok() {
        panic!(
            "CI must run the browser tests: install chromium (.ci/run does) or set SLUICE_TEST_CHROMIUM"
        );
    }
    eprintln!(
        "warning: no chromium on PATH (or SLUICE_TEST_CHROMIUM): browser tests of the console skipped"
    );
    None
}

/// Loads `url` in a fresh headless browser profile: the DOM after loading and, into
/// `screenshot`, a picture of the page at 1280×900.
fn browse(chromium: &Path, url: &str, screenshot: &Path) -> String {
    let run = |extra: &[String]| {
        let profile = tempfile::tempdir().expect("profile dir");
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium {url}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".to_string()]);
    run(&[
        format!("--screenshot={}", screenshot.display()),
        "--window-size=1280,900".to_string(),
    ]);
    let png = std::fs::read(screenshot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG"),
        "not a PNG: {}",
        screenshot.display()
    );
    dom
}

#[test]
fn console_pages_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (_p, s, admin) = served_project();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    // The browser signs in with ?token= each time (a fresh profile): the cookie flow.
    let page = |name: &str, path: &str| {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}token={admin}", s.base);
        let dom = browse(
            &chromium,
            &url,
            &artifacts.join(format!("console-{name}.png")),
        );
        assert!(!dom.contains("Sign in"), "{name}: not signed in: {dom}");
        dom
    };

    let overview = page("overview", "/ui/");
    assert!(
        overview.contains(r#"data-env="staging""#) && overview.contains(r#"data-env="production""#),
        "{overview}"
    );
    assert!(overview.contains("What is live where"), "{overview}");

    let pipe = page("pipe", "/ui/pipes/top_reps");
    assert_eq!(pipe.matches(r#"<tr class="event""#).count(), 5, "{pipe}");
    // The hostile actor is text in the DOM, not an element.
    assert!(
        pipe.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{pipe}"
    );
    assert!(!pipe.contains("<img"), "{pipe}");

    let monitor = page("monitoring", "/ui/monitor?env=production&pipe=top_reps");
    assert!(
        monitor
            .matches(r#"<circle class="point" data-series="p95""#)
            .count()
            >= 3,
        "{monitor}"
    );
    assert!(monitor.contains(r#"data-action="promote""#), "{monitor}");
    assert!(monitor.contains(r#"data-action="rollback""#), "{monitor}");
    check_latency_chart(&monitor);

    let fidelity = page("fidelity", "/ui/fidelity?pipe=top_reps&p.limit=100");
    assert!(
        fidelity.matches(r#"<circle class="truth""#).count() >= 10,
        "{fidelity}"
    );
    assert!(fidelity.contains(r#"<line class="interval""#), "{fidelity}");
}
