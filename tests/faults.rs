//! Fault tests: every change Sluice makes to a store, killed at each of its failpoints
//! (`SLUICE_FAILPOINT=NAME` aborts the process there, as `kill -9` would), made to fail
//! at each of its writes (`SLUICE_FAIL_WRITES_AFTER=N`, a full disk), and run by several
//! processes at once. After each, every store is compared with what it was before and
//! with what a completed run leaves (the same command without the fault, run in a copy
//! of the project), and the next command must work. docs/guarantees.md states the
//! promises these tests check.
//!
//! What a kill may leave, besides the state before or after: the killed process's lock
//! (taken over by the next writer), files under `_parts/` that no committed manifest
//! names, and `.pending` objects of a commit that never reached its commit point (both
//! removed by the next write of the dataset), and content-addressed version files a
//! deployment wrote before its commit (never read unless `live.json` names them).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use sluice_engine::store::deployments::DeploymentState;

use crate::common::{TestProject, block_on, tree};

type Tree = Vec<(String, Vec<u8>)>;

/// The example with its pipes deployed to staging and promoted, shared by every test
/// as a folder to copy (generating it takes longer than copying it).
fn base() -> &'static TestProject {
    static BASE: std::sync::OnceLock<TestProject> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let p = TestProject::example(0.02);
        // A file of new calls, and one with a row that does not fit (quarantined).
        p.write(
            "in/new.csv",
            "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n\
             9000001,1,1,2024-06-01T10:00:00,60,won,120.5,phone\n\
             9000002,2,2,2024-06-01T11:00:00,30,lost,,video\n\
             9000003,3,3,2024-06-01T12:00:00,45,no_answer,,phone\n",
        );
        p.write(
            "in/mixed.csv",
            "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n\
             9000011,4,1,2024-06-02T10:00:00,60,won,10.0,phone\n\
             9000012,not-a-number,2,2024-06-02T11:00:00,30,lost,,video\n\
             9000013,5,3,2024-06-02T12:00:00,45,won,7.5,video\n",
        );
        p.write(
            "in/more.csv",
            "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n\
             9000021,6,1,2024-06-03T10:00:00,60,won,1.0,phone\n",
        );
        p
    })
}

/// A fresh copy of the base project.
fn project() -> TestProject {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(base().path(), dir.path());
    TestProject { dir }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(p: &TestProject, args: &[&str]) -> Output {
    p.sluice()
        .env_remove("SLUICE_FAILPOINT")
        .env_remove("SLUICE_FAIL_WRITES_AFTER")
        .args(args)
        .output()
        .expect("run sluice")
}

fn ok(p: &TestProject, args: &[&str]) -> String {
    let out = run(p, args);
    assert!(
        out.status.success(),
        "sluice {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Starts `sluice ARGS` in the project, its output captured.
fn spawn(p: &TestProject, args: &[&str]) -> std::process::Child {
    std::process::Command::new(crate::common::sluice_bin())
        .current_dir(p.path())
        .env_remove("SLUICE_PROJECT")
        .env_remove("SLUICE_FAILPOINT")
        .env_remove("SLUICE_FAIL_WRITES_AFTER")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sluice")
}

/// Runs `sluice ARGS` with the failpoint set and requires that it was killed there.
fn killed(p: &TestProject, args: &[&str], failpoint: &str) {
    let out = p
        .sluice()
        .env("SLUICE_FAILPOINT", failpoint)
        .args(args)
        .output()
        .expect("run sluice");
    assert!(
        out.status.code().is_none(),
        "sluice {args:?} with SLUICE_FAILPOINT={failpoint} must be killed there; it exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// How two sets of stores differ: the paths added, removed or changed.
fn differences(before: &BTreeMap<String, Tree>, after: &BTreeMap<String, Tree>) -> Vec<String> {
    let flat = |s: &BTreeMap<String, Tree>| -> BTreeMap<String, Vec<u8>> {
        s.iter()
            .flat_map(|(store, t)| {
                t.iter()
                    .map(move |(p, c)| (format!("{store}/{p}"), c.clone()))
            })
            .collect()
    };
    let (b, a) = (flat(before), flat(after));
    let mut out = Vec::new();
    for (path, bytes) in &b {
        match a.get(path) {
            None => out.push(format!("removed {path}")),
            Some(x) if x != bytes => out.push(format!("changed {path}")),
            _ => {}
        }
    }
    for path in a.keys() {
        if !b.contains_key(path) {
            out.push(format!("added {path}"));
        }
    }
    out
}

fn assert_same_stores(before: &BTreeMap<String, Tree>, after: &BTreeMap<String, Tree>, case: &str) {
    let d = differences(before, after);
    assert!(d.is_empty(), "{case}: {d:#?}");
}

/// The stores without the records runs keep of themselves (`_sluice/stats/`, a failed
/// run's too): not part of any dataset or deployment.
fn without_stats(s: BTreeMap<String, Tree>) -> BTreeMap<String, Tree> {
    s.into_iter()
        .map(|(k, t)| {
            let t = t
                .into_iter()
                .filter(|(p, _)| !p.starts_with("_sluice/stats/"))
                .collect();
            (k, t)
        })
        .collect()
}

/// Every store of the project (the environments' and the branches'), by folder.
fn stores(p: &TestProject) -> BTreeMap<String, Tree> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(p.path().join("data")).unwrap().flatten() {
        out.insert(
            format!("data/{}", e.file_name().to_string_lossy()),
            tree(&e.path()),
        );
    }
    out
}

/// What the readers of staging see: a fingerprint of every source, read in full, and
/// of the quarantine of `calls`. (Production is compared file by file: no change here
/// but a promotion writes it.)
fn reads(p: &TestProject) -> String {
    ok(
        p,
        &[
            "query",
            "SELECT (SELECT count(*) FROM calls) AS calls, \
                    (SELECT sum(call_id) FROM calls) AS call_ids, \
                    (SELECT sum(coalesce(amount, 0)) FROM calls) AS amounts, \
                    (SELECT count(*) FROM accounts) AS accounts, \
                    (SELECT sum(account_id) FROM accounts) AS account_ids, \
                    (SELECT count(*) FROM reps) AS reps, \
                    (SELECT string_agg(concat(file, ':', line, ':', reason), '|' ORDER BY file, line) \
                     FROM sluice.calls_errors) AS quarantine",
            "--full",
            "-f",
            "csv",
            "-q",
        ],
    )
}

/// The write ids of a tree's `_parts/` folders.
fn write_ids(t: &Tree) -> std::collections::BTreeSet<String> {
    t.iter()
        .filter_map(|(p, _)| {
            let (_, rest) = p.split_once("_parts/")?;
            Some(rest.split('/').next()?.to_string())
        })
        .collect()
}

/// Whether `path` is something a killed change may leave beside the state before it
/// (see the module docs).
fn leftover(path: &str, before_ids: &std::collections::BTreeSet<String>) -> bool {
    let lock =
        path.starts_with("_sluice/locks/") || path == "_sluice/lock" || path.contains(".takeover-");
    let uncommitted_part = path
        .split_once("_parts/")
        .and_then(|(_, rest)| rest.split('/').next())
        .is_some_and(|id| !before_ids.contains(id));
    let pending = path.ends_with(".pending") || path.starts_with("_sluice/commits/");
    let version = path.starts_with("_sluice/versions/");
    lock || uncommitted_part || pending || version
}

/// Every file of `before` is in `after`, unchanged, and every other file of `after` is
/// a leftover of a killed change.
fn assert_before_with_leftovers(
    before: &BTreeMap<String, Tree>,
    after: &BTreeMap<String, Tree>,
    case: &str,
) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{case}: the same stores"
    );
    for (store, b) in before {
        let a: BTreeMap<&String, &Vec<u8>> = after[store].iter().map(|(p, c)| (p, c)).collect();
        for (path, bytes) in b {
            assert!(
                a.get(path) == Some(&bytes),
                "{case}: {store}/{path} was changed or removed"
            );
        }
        let ids = write_ids(b);
        let known: std::collections::BTreeSet<&String> = b.iter().map(|(p, _)| p).collect();
        for path in a.keys() {
            assert!(
                known.contains(path) || leftover(path, &ids),
                "{case}: {store}/{path} is new and not a leftover of the killed change"
            );
        }
    }
}

/// After the next successful write, nothing a killed change left is there: no lock,
/// no take-over marker, no pending object or commit file.
fn assert_no_leftovers(p: &TestProject, case: &str) {
    for (store, t) in stores(p) {
        for (path, _) in &t {
            let stray = path.starts_with("_sluice/locks/")
                || path == "_sluice/lock"
                || path.contains(".takeover-")
                || path.ends_with(".pending")
                || path.starts_with("_sluice/commits/");
            assert!(!stray, "{case}: {store}/{path} left behind");
        }
    }
}

/// The state after a kill: the state before, or the state a completed run leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Allowed {
    /// Killed before the commit point: readers see the stores as they were, and the
    /// files are those of before plus leftovers.
    Before,
    /// Killed after the commit point: readers see what a completed run leaves.
    After,
}

/// Runs `args` killed at `failpoint` in a copy of the base project, and checks the
/// stores against the state `allowed` says; then runs `next` (a write of the same
/// data) in it and in a copy where `args` completed (or did not run, for `Before`), and
/// checks both read the same and nothing was left behind.
fn kill_case(
    setup: &dyn Fn(&TestProject),
    args: &[&str],
    failpoint: &str,
    allowed: Allowed,
    next: &[&str],
) {
    let case = format!("{args:?} killed at {failpoint}");
    let p = project();
    setup(&p);
    // The twin: the same project, the command completed (or not run: killed before).
    let twin = project();
    setup(&twin);
    if allowed == Allowed::After {
        ok(&twin, args);
    }
    let before = stores(&p);
    let reads_before = reads(&p);
    killed(&p, args, failpoint);
    let reads_after = reads(&p);
    match allowed {
        Allowed::Before => {
            assert_eq!(
                reads_after, reads_before,
                "{case}: readers see the stores as before"
            );
            assert_before_with_leftovers(&before, &stores(&p), &case);
        }
        Allowed::After => {
            assert_eq!(
                reads_after,
                reads(&twin),
                "{case}: readers see the completed change"
            );
        }
    }
    // None of these changes writes production.
    assert_eq!(
        stores(&p)["data/production"],
        before["data/production"],
        "{case}: production untouched"
    );
    // The next write takes over the dead process's lock and finishes or drops what it
    // left; then the copy that never crashed and this one read alike.
    ok(&p, next);
    ok(&twin, next);
    assert_eq!(reads(&p), reads(&twin), "{case}: after the next write");
    assert_no_leftovers(&p, &case);
}

fn no_setup(_: &TestProject) {}

#[test]
fn an_ingest_killed_at_each_failpoint_lands_whole_or_not_at_all() {
    let ingest = ["ingest", "calls", "in/new.csv"];
    let next = ["ingest", "calls", "in/more.csv"];
    kill_case(
        &no_setup,
        &ingest,
        "dataset:before_commit",
        Allowed::Before,
        &next,
    );
    kill_case(
        &no_setup,
        &ingest,
        "dataset:after_commit",
        Allowed::After,
        &next,
    );
}

/// An ingest with rejected rows commits the rows and their quarantine together.
#[test]
fn an_ingest_and_its_quarantine_killed_at_each_failpoint_land_together() {
    let ingest = ["ingest", "calls", "in/mixed.csv"];
    let next = ["ingest", "calls", "in/more.csv"];
    for (failpoint, allowed) in [
        ("together:pending", Allowed::Before),
        ("together:committed", Allowed::After),
        // The rows' manifest is in place, the quarantine's still pending.
        ("together:between", Allowed::After),
        ("together:applied", Allowed::After),
    ] {
        kill_case(&no_setup, &ingest, failpoint, allowed, &next);
    }
}

/// top_reps materialized once (5 rows) in staging.
fn materializing(p: &TestProject) {
    materialize_pipe(p);
    ok(p, &["materialize", "top_reps", "-p", "limit=5"]);
}

/// top_reps writes the dataset `top_reps_mat`.
fn materialize_pipe(p: &TestProject) {
    let path = p.path().join("pipes/top_reps.toml");
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
}

fn materialized(p: &TestProject) -> String {
    ok(
        p,
        &[
            "query",
            "SELECT * FROM top_reps_mat ORDER BY name",
            "--full",
            "-f",
            "csv",
            "-q",
        ],
    )
}

#[test]
fn a_materialization_killed_at_each_failpoint_replaces_whole_or_not_at_all() {
    for (failpoint, allowed) in [
        ("dataset:before_commit", Allowed::Before),
        ("dataset:after_commit", Allowed::After),
    ] {
        let case = format!("materialize killed at {failpoint}");
        let p = project();
        materializing(&p);
        let twin = project();
        materializing(&twin);
        let args = ["materialize", "top_reps", "-p", "limit=7"];
        ok(&twin, &args);
        let before_rows = materialized(&p);
        let before = stores(&p);
        killed(&p, &args, failpoint);
        match allowed {
            Allowed::Before => {
                assert_eq!(materialized(&p), before_rows, "{case}");
                assert_before_with_leftovers(
                    &without_stats(before),
                    &without_stats(stores(&p)),
                    &case,
                );
            }
            Allowed::After => assert_eq!(materialized(&p), materialized(&twin), "{case}"),
        }
        assert_eq!(
            materialized(&p).lines().count(),
            if allowed == Allowed::Before { 6 } else { 8 }
        );
        ok(&p, &args);
        assert_eq!(
            materialized(&p),
            materialized(&twin),
            "{case}: the next write"
        );
        assert_no_leftovers(&p, &case);
    }
}

/// A sample build writes every source of staging and a record of itself, in one commit:
/// staging reads all of the old data or all of the new build, whatever point it was
/// killed at; production, which it only reads, is never changed.
#[test]
fn a_sample_build_killed_at_each_failpoint_replaces_staging_whole_or_not_at_all() {
    let build = ["sample", "build", "--fraction", "0.2", "--seed", "3"];
    for (failpoint, allowed) in [
        // After the first source's files, before the next source is read.
        ("sample_build:between_sources", Allowed::Before),
        ("together:pending", Allowed::Before),
        ("together:committed", Allowed::After),
        // The first source's manifest applied, the others pending.
        ("together:between", Allowed::After),
        // Every source applied, the build's record still pending.
        ("together:before_last", Allowed::After),
        ("together:applied", Allowed::After),
    ] {
        kill_case(&no_setup, &build, failpoint, allowed, &build);
        // The build's record is part of the commit.
        let p = project();
        killed(&p, &build, failpoint);
        let record = committed_record(&p);
        match allowed {
            Allowed::Before => assert!(record.is_none(), "{failpoint}: {record:?}"),
            Allowed::After => {
                let r = record.expect("the build's record");
                assert_eq!(r["from"], "production", "{r}");
                assert_eq!(r["seed"], 3, "{r}");
            }
        }
    }
}

/// `_sluice/sample_build.json` of staging as committed (through a pending version).
fn committed_record(p: &TestProject) -> Option<serde_json::Value> {
    let project = p.project();
    let store = sluice_engine::Store::open(project.environment("staging").unwrap()).unwrap();
    let bytes = block_on(sluice_engine::store::dataset::read_committed(
        &store,
        "_sluice/sample_build.json",
        None,
    ))
    .unwrap()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// The live version of each pipe in `env`.
fn live(p: &TestProject, env: &str) -> Vec<(String, String)> {
    let project = p.project();
    block_on(
        DeploymentState::open(project.environment(env).unwrap())
            .unwrap()
            .live(),
    )
    .unwrap()
    .into_iter()
    .map(|(k, v)| (k, v.version))
    .collect()
}

/// The changes recorded in `env` (history files, and an event a killed change left in
/// live.json only).
fn history(p: &TestProject, env: &str) -> Vec<(String, String, String)> {
    let project = p.project();
    block_on(
        DeploymentState::open(project.environment(env).unwrap())
            .unwrap()
            .history(None),
    )
    .unwrap()
    .into_iter()
    .map(|e| (e.action, e.pipe, e.version))
    .collect()
}

/// A change of a pipe's definition (a new version: comments do not make one).
fn edit(p: &TestProject, pipe: &str, mark: &str) {
    let path = p.path().join(format!("pipes/{pipe}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("description = \"", &format!("description = \"{mark} "), 1),
    )
    .unwrap();
}

/// A deployment and a promotion change `live.json` in one put: killed before it, the
/// previous versions stay live; killed after it, the change is whole and its history
/// event (kept in live.json) is written by the next change.
#[test]
fn a_deployment_or_promotion_killed_at_each_failpoint_is_whole_or_not_made() {
    let changed = |p: &TestProject| edit(p, "top_reps", "v2");
    let deployed = |p: &TestProject| {
        edit(p, "top_reps", "v2");
        ok(p, &["deploy", "top_reps"]);
    };
    type Case<'a> = (
        &'a dyn Fn(&TestProject),
        &'a [&'a str],
        &'a str,
        &'a [&'a str],
    );
    let cases: [Case; 2] = [
        (
            &changed,
            &["deploy", "top_reps"],
            "staging",
            &["deploy", "account_health"],
        ),
        (
            &deployed,
            &["promote", "top_reps", "--yes"],
            "production",
            &["rollback", "top_reps", "--env", "production", "--yes"],
        ),
    ];
    for (setup, args, env, next) in cases {
        for (failpoint, allowed) in [
            ("commit:after_versions", Allowed::Before),
            ("commit:after_live", Allowed::After),
        ] {
            let case = format!("{args:?} killed at {failpoint}");
            let p = project();
            setup(&p);
            let twin = project();
            setup(&twin);
            if allowed == Allowed::After {
                ok(&twin, args);
            }
            let before = stores(&p);
            killed(&p, args, failpoint);
            assert_eq!(live(&p, env), live(&twin, env), "{case}: live versions");
            assert_eq!(history(&p, env), history(&twin, env), "{case}: history");
            if allowed == Allowed::Before {
                assert_before_with_leftovers(&before, &stores(&p), &case);
                // Made again, in both.
                ok(&p, args);
                ok(&twin, args);
            }
            // The next change takes over the lock and writes what history is missing.
            if env == "staging" {
                edit(&p, "account_health", "v2");
                edit(&twin, "account_health", "v2");
            }
            ok(&p, next);
            ok(&twin, next);
            assert_eq!(
                live(&p, env),
                live(&twin, env),
                "{case}: after the next change"
            );
            assert_eq!(
                history(&p, env),
                history(&twin, env),
                "{case}: after the next change"
            );
            let files = |p: &TestProject| {
                std::fs::read_dir(p.store(env).join("_sluice/history"))
                    .map(|d| d.count())
                    .unwrap_or(0)
            };
            assert_eq!(files(&p), files(&twin), "{case}: every event has its file");
            assert_no_leftovers(&p, &case);
        }
    }
}

/// A branch in a store of its own (not the default folder), with data and deployments.
fn branched(p: &TestProject) {
    ok(
        p,
        &[
            "branch", "create", "br", "--from", "staging", "--data", "data/br",
        ],
    );
    ok(p, &["deploy", "--all", "--env", "br"]);
    ok(p, &["ingest", "calls", "in/new.csv", "--env", "br"]);
}

/// A branch delete cannot remove every object in one step: killed at any point, the
/// branch is marked as being deleted (refused to every other command, so nothing reads
/// half a store), its marker is the last object to go, the parent's store is never
/// touched, and running the delete again finishes it.
#[test]
fn a_branch_delete_killed_at_each_failpoint_is_finished_by_the_next_delete() {
    for failpoint in [
        "branch_delete:midway",
        "branch_delete:after_objects",
        "branch_delete:before_file",
    ] {
        let p = project();
        branched(&p);
        let before = stores(&p);
        killed(&p, &["branch", "delete", "br"], failpoint);
        let after = stores(&p);
        for parent in ["data/staging", "data/production"] {
            assert_eq!(
                after[parent], before[parent],
                "{failpoint}: {parent} untouched"
            );
        }
        // What is left of the branch's store is part of what it was.
        let was: BTreeMap<&String, &Vec<u8>> =
            before["data/br"].iter().map(|(p, c)| (p, c)).collect();
        let left = after.get("data/br").cloned().unwrap_or_default();
        for (path, bytes) in &left {
            assert_eq!(was.get(path), Some(&bytes), "{failpoint}: data/br/{path}");
        }
        if failpoint != "branch_delete:before_file" {
            assert!(
                left.iter().any(|(p, _)| p == "_sluice/branch.json"),
                "{failpoint}: the marker goes last"
            );
        }
        // Nothing else uses a branch half deleted.
        let (_, err) = p.expect_exit(&["run", "top_reps", "--env", "br"], 2);
        assert!(
            err.contains("branch `br` is being deleted"),
            "{failpoint}: {err}"
        );
        let (_, err) = p.expect_exit(&["branch", "create", "br", "--from", "staging"], 2);
        assert!(err.contains("already exists"), "{failpoint}: {err}");
        let list = ok(&p, &["branch", "list"]);
        assert!(list.contains("being deleted"), "{failpoint}: {list}");
        // Running the delete again finishes it.
        ok(&p, &["branch", "delete", "br"]);
        let done = stores(&p);
        assert!(
            !done.contains_key("data/br"),
            "{failpoint}: the store is gone"
        );
        assert!(!p.path().join(".sluice/branches/br.toml").exists());
        for parent in ["data/staging", "data/production"] {
            assert_eq!(
                done[parent], before[parent],
                "{failpoint}: {parent} untouched"
            );
        }
        ok(
            &p,
            &[
                "branch", "create", "br", "--from", "staging", "--data", "data/br",
            ],
        );
    }
}

/// A process killed while taking over a dead process's lock leaves the lock and its
/// take-over marker: the next writer takes both over.
#[test]
fn a_lock_take_over_killed_midway_is_taken_over() {
    let p = project();
    killed(
        &p,
        &["ingest", "calls", "in/new.csv"],
        "dataset:before_commit",
    );
    killed(
        &p,
        &["ingest", "calls", "in/new.csv"],
        "lock:takeover_marker",
    );
    let markers: Vec<String> = tree(&p.store("staging"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".takeover-"))
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    let out = run(&p, &["ingest", "calls", "in/new.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("stale lock"),
        "{}",
        text(&out.stderr)
    );
    assert_no_leftovers(&p, "take-over killed");
    let count = ok(
        &p,
        &[
            "query",
            "SELECT count(*) FROM calls WHERE call_id >= 9000000",
            "--full",
            "-f",
            "csv",
            "-q",
        ],
    );
    assert_eq!(
        count.lines().nth(1),
        Some("3"),
        "one ingest landed: {count}"
    );
}

/// Several ingests into one source started together: each lands whole, or fails at
/// once naming the process that holds the source's lock; no part is lost, and every
/// read after succeeds. One round starts over a lock left by a dead process.
#[test]
fn concurrent_ingests_land_whole_or_are_refused_naming_the_holder() {
    let p = project();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    const WRITERS: usize = 6;
    let mut expected: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        if round == 1 {
            p.write(
                "data/staging/_sluice/locks/calls.lock",
                &format!(
                    "{{\"pid\":4194304999,\"host\":\"{host}\",\"actor\":\"crashed\",\"at\":\"2026-01-01T00:00:00Z\"}}"
                ),
            );
        }
        let mut children = Vec::new();
        for w in 0..WRITERS as u64 {
            let ids: Vec<u64> = (0..5)
                .map(|i| 8_000_000 + round * 1_000 + w * 10 + i)
                .collect();
            let mut csv = String::from(
                "call_id,account_id,rep_id,started_at,duration_s,outcome,amount,channel\n",
            );
            for id in &ids {
                csv.push_str(&format!("{id},1,1,2024-07-01T10:00:00,10,won,1.0,phone\n"));
            }
            let file = format!("in/c{round}-{w}.csv");
            p.write(&file, &csv);
            let child = spawn(&p, &["ingest", "calls", &file]);
            children.push((ids, child));
        }
        let mut landed = 0;
        for (ids, child) in children {
            let out = child.wait_with_output().unwrap();
            match out.status.code() {
                Some(0) => {
                    landed += 1;
                    expected.extend(ids);
                }
                Some(1) => {
                    let err = text(&out.stderr);
                    assert!(
                        err.contains("dataset `calls` is being written by") && err.contains("pid"),
                        "round {round}: a refused ingest names the holder: {err}"
                    );
                }
                other => panic!("round {round}: exit {other:?}: {}", text(&out.stderr)),
            }
        }
        assert!(landed >= 1, "round {round}: at least one ingest lands");
        let got = ok(
            &p,
            &[
                "query",
                "SELECT call_id FROM calls WHERE call_id >= 8000000 AND call_id < 9000000 ORDER BY call_id",
                "--full",
                "-f",
                "csv",
                "-q",
            ],
        );
        let got: Vec<u64> = got
            .lines()
            .skip(1)
            .map(|l| l.trim().parse().unwrap())
            .collect();
        expected.sort();
        assert_eq!(
            got, expected,
            "round {round}: exactly the landed ingests' rows"
        );
    }
    assert_no_leftovers(&p, "concurrent ingests");
}

/// Several deployments to one environment started together: each is made whole or
/// refused naming the holder of the environment's lock; live versions and history
/// agree after.
#[test]
fn concurrent_deployments_are_made_whole_or_refused() {
    let p = project();
    let pipes = ["top_reps", "account_health", "daily_outcomes"];
    let history_before = history(&p, "staging").len();
    for round in 0..3 {
        for pipe in pipes {
            edit(&p, pipe, &format!("r{round}"));
        }
        let children: Vec<_> = pipes
            .iter()
            .map(|pipe| (*pipe, spawn(&p, &["deploy", pipe])))
            .collect();
        // All of them finished before a refused one is tried again (else the retry can
        // meet a deployment still under way).
        let outputs: Vec<_> = children
            .into_iter()
            .map(|(pipe, child)| (pipe, child.wait_with_output().unwrap()))
            .collect();
        for (pipe, out) in outputs {
            match out.status.code() {
                Some(0) => {}
                Some(1) => {
                    let err = text(&out.stderr);
                    assert!(err.contains("is locked by"), "{pipe}: {err}");
                    ok(&p, &["deploy", pipe]);
                }
                other => panic!("{pipe}: exit {other:?}: {}", text(&out.stderr)),
            }
        }
        // Every pipe is now live at its working copy's version.
        let project = p.project();
        for (pipe, version) in live(&p, "staging") {
            let working =
                sluice_engine::project::version_of(&project.pipe(&pipe).unwrap().text).unwrap();
            assert_eq!(version, working, "round {round}: {pipe}");
        }
    }
    // Each change recorded once.
    assert_eq!(history(&p, "staging").len(), history_before + 3 * 3);
    assert_no_leftovers(&p, "concurrent deployments");
}

/// What staging's readers see, and its live versions.
fn state(p: &TestProject) -> String {
    format!("{}{:?}", reads(p), live(p, "staging"))
}

/// A store that fails writes part-way (a full disk, `SLUICE_FAIL_WRITES_AFTER=N`: the
/// N+1th object write fails and every one after): for every N until the change needs
/// no more, the change fails with a clear error (exit 1) and every store is exactly as
/// it was (the files it wrote taken back, its lock released), or, failing after its
/// commit point, succeeds with the change whole.
#[test]
fn a_full_disk_at_each_write_fails_cleanly_or_the_change_is_whole() {
    let cases: Vec<(&str, Box<dyn Fn(&TestProject)>, Vec<&str>)> = vec![
        (
            "ingest",
            Box::new(no_setup),
            vec!["ingest", "calls", "in/new.csv"],
        ),
        (
            "ingest with rejects",
            Box::new(no_setup),
            vec!["ingest", "calls", "in/mixed.csv"],
        ),
        (
            "materialize",
            Box::new(materializing),
            vec!["materialize", "top_reps", "-p", "limit=7"],
        ),
        (
            "sample build",
            Box::new(no_setup),
            vec!["sample", "build", "--fraction", "0.2"],
        ),
        (
            "deploy",
            Box::new(|p: &TestProject| edit(p, "top_reps", "v2")),
            vec!["deploy", "top_reps"],
        ),
    ];
    for (name, setup, args) in cases {
        let p = project();
        setup(&p);
        let twin = project();
        setup(&twin);
        ok(&twin, &args);
        let mut succeeded = false;
        // A failed attempt leaves the stores as they were, so every attempt starts from
        // the same state.
        let before = without_stats(stores(&p));
        for n in 0..64 {
            let out = p
                .sluice()
                .env("SLUICE_FAIL_WRITES_AFTER", n.to_string())
                .args(&args)
                .output()
                .unwrap();
            let err = text(&out.stderr);
            match out.status.code() {
                Some(0) => {
                    succeeded = true;
                    assert_eq!(
                        state(&p),
                        state(&twin),
                        "{name}: succeeded after {n} writes"
                    );
                    break;
                }
                Some(1) => {
                    assert!(
                        err.contains("No space left on device"),
                        "{name}, {n} writes: {err}"
                    );
                    assert!(
                        err.contains("environment `"),
                        "{name}, {n} writes: names the environment: {err}"
                    );
                    assert_same_stores(
                        &before,
                        &without_stats(stores(&p)),
                        &format!("{name}: failed at write {n}: the stores are as they were"),
                    );
                }
                other => panic!("{name}, {n} writes: exit {other:?}: {err}"),
            }
        }
        assert!(
            !differences(&before, &without_stats(stores(&p))).is_empty(),
            "{name}: the change was made in the end"
        );
        assert!(succeeded, "{name} needs fewer than 64 writes");
    }
}

/// A write whose target cannot be created (a file where its folder must go): a real
/// error of the file system, reported naming the environment and the path; nothing is
/// changed.
#[test]
fn a_write_the_file_system_refuses_changes_nothing() {
    let p = project();
    materialize_pipe(&p);
    // The dataset's folder for parts is a file: creating `_parts/<id>/` fails (as root
    // too, unlike a read-only folder).
    p.write("data/staging/top_reps_mat/_parts", "not a folder");
    let before = stores(&p);
    let out = run(&p, &["materialize", "top_reps", "-p", "limit=7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("environment `staging`") && err.contains("top_reps_mat/_parts"),
        "{err}"
    );
    assert_same_stores(
        &without_stats(before),
        &without_stats(stores(&p)),
        "a refused write",
    );
}
