//! Deployments and promotion through the binary: develop in staging, promote through the
//! gates, roll back; production never runs an edit that was not promoted, and a failed,
//! refused, locked or interrupted change leaves every store as it was.

use std::path::Path;

use sluice_engine::deploy::DeploymentState;
use sluice_engine::fixtures::GenOptions;

use crate::common::{TestProject, block_on};

fn example() -> TestProject {
    TestProject::example_undeployed(GenOptions {
        scale: 0.05,
        ..GenOptions::default()
    })
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run(p: &TestProject, args: &[&str]) -> std::process::Output {
    p.sluice().args(args).output().expect("run sluice")
}

fn ok(p: &TestProject, args: &[&str]) -> String {
    p.expect_exit(args, 0).0
}

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

/// Every file under the store's `_sluice/` with its content, to show nothing changed.
fn snapshot_state(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let dir = store.join("_sluice");
    if dir.exists() {
        visit(&dir, &dir, &mut files);
    }
    files.sort();
    files
}

fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            visit(root, &path, out);
        } else {
            out.push((
                path.strip_prefix(root).unwrap().display().to_string(),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
}

const EDITED_TOP_REPS: &str = r#"
description = "Reps ranked by calls won since a date (with lost calls)"
endpoint = true

[params.since]
type = "date"
default = "2024-01-01"

[params.limit]
type = "int"
default = 10
min = 1
max = 1000

[[node]]
name = "won"
sql = """
SELECT rep_id, count(*) FILTER (WHERE outcome = 'won') AS won, count(*) FILTER (WHERE outcome = 'lost') AS lost,
       sum(amount) AS revenue
FROM calls
WHERE started_at >= $since
GROUP BY rep_id
"""

[[node]]
name = "top"
sql = """
SELECT r.name, r.team, w.won, w.revenue, w.lost
FROM won w JOIN reps r USING (rep_id)
ORDER BY w.won DESC, r.name
LIMIT $limit
"""
"#;

#[test]
fn develop_in_staging_promote_run_in_production_roll_back() {
    let p = example();

    // Nothing deployed: production refuses to run the working copy.
    let out = run(&p, &["run", "top_reps", "--env", "production"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no deployed version"),
        "{}",
        stderr(&out)
    );
    // A name the project does not know is named as such, not sent to `promote`.
    let out = run(&p, &["run", "top_repz", "--env", "production"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown pipe `top_repz` (known: ")
            && stderr(&out).contains("top_reps"),
        "{}",
        stderr(&out)
    );

    let deployed = ok(&p, &["deploy", "--all"]);
    assert!(deployed.contains("deployed  top_reps"), "{deployed}");
    assert!(ok(&p, &["deploy", "--all"]).contains("unchanged top_reps"));

    let plan = ok(&p, &["plan", "--from", "staging", "--to", "production"]);
    assert!(plan.contains("+ top_reps added"), "{plan}");

    let promoted = ok(&p, &["promote", "--all", "--yes"]);
    assert!(
        promoted.contains("promoted 3 pipe(s) from staging to production"),
        "{promoted}"
    );
    assert!(promoted.contains("pass plans"), "{promoted}");
    let v1 = live(&p, "production");
    assert_eq!(v1, live(&p, "staging"));
    let before = ok(
        &p,
        &["run", "top_reps", "--env", "production", "-f", "csv", "-q"],
    );
    assert!(before.starts_with("name,team,won,revenue\n"), "{before}");

    // An edit of the working copy changes nothing in production...
    p.write("pipes/top_reps.toml", EDITED_TOP_REPS);
    assert_eq!(
        ok(
            &p,
            &["run", "top_reps", "--env", "production", "-f", "csv", "-q"]
        ),
        before
    );
    // ...while staging runs the working copy, and `--deployed` runs staging's version.
    assert!(
        ok(&p, &["run", "top_reps", "-f", "csv", "-q"]).starts_with("name,team,won,revenue,lost\n")
    );
    assert!(
        ok(&p, &["run", "top_reps", "--deployed", "-f", "csv", "-q"])
            .starts_with("name,team,won,revenue\n")
    );
    let status = ok(&p, &["status"]);
    assert!(status.contains("(differs)"), "{status}");

    ok(&p, &["deploy", "top_reps"]);
    let plan = ok(&p, &["plan"]);
    assert!(plan.contains("~ top_reps changed"), "{plan}");
    assert!(
        plan.contains("schema: + lost Int64 (non-breaking)"),
        "{plan}"
    );
    assert!(
        plan.contains("+SELECT r.name, r.team, w.won, w.revenue, w.lost"),
        "{plan}"
    );
    assert!(plan.contains("= account_health"), "{plan}");

    ok(&p, &["promote", "top_reps", "--yes", "--actor", "alice"]);
    assert!(
        ok(
            &p,
            &["run", "top_reps", "--env", "production", "-f", "csv", "-q"]
        )
        .starts_with("name,team,won,revenue,lost\n")
    );
    let history = ok(&p, &["history", "top_reps", "--env", "production"]);
    assert!(
        history.contains("alice") && history.contains("promote"),
        "{history}"
    );
    assert!(
        history.contains("5 passed, 0 failed") || history.contains("passed, 0 failed"),
        "{history}"
    );

    // One command rolls back; production runs the first version again.
    let rolled = ok(
        &p,
        &["rollback", "top_reps", "--env", "production", "--yes"],
    );
    assert!(
        rolled.contains("rolled back top_reps in production"),
        "{rolled}"
    );
    assert_eq!(
        ok(
            &p,
            &["run", "top_reps", "--env", "production", "-f", "csv", "-q"]
        ),
        before
    );
    // A second rollback never moves forward again to the version rolled back from
    // (that would skip its gates): before the first version there is nothing.
    let state = snapshot_state(&p.store("production"));
    let out = run(
        &p,
        &["rollback", "top_reps", "--env", "production", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("first version"), "{}", stderr(&out));
    assert_eq!(snapshot_state(&p.store("production")), state);
    // Forward is a promotion, through the gates.
    ok(&p, &["promote", "top_reps", "--yes"]);
    assert!(
        ok(
            &p,
            &["run", "top_reps", "--env", "production", "-f", "csv", "-q"]
        )
        .starts_with("name,team,won,revenue,lost\n")
    );
    let out = run(
        &p,
        &[
            "rollback",
            "top_reps",
            "--env",
            "staging",
            "--to",
            "000000000000",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`000000000000` of `top_reps` was not live in `staging` before"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rollback_past_the_first_version_is_refused() {
    let p = example();
    ok(&p, &["deploy", "daily_outcomes"]);
    let before = snapshot_state(&p.store("staging"));
    let out = run(&p, &["rollback", "daily_outcomes", "--env", "staging"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("first version"), "{}", stderr(&out));
    assert_eq!(snapshot_state(&p.store("staging")), before);
}

#[test]
fn refused_promotions_change_nothing() {
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    let before = snapshot_state(&p.store("production"));

    // A protected target needs --yes without a terminal.
    let out = run(&p, &["promote", "top_reps"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    // A pipe never deployed in the source, an unknown environment, a protected deploy.
    let out = run(&p, &["promote", "account_health", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never deployed in `staging`"),
        "{}",
        stderr(&out)
    );
    let out = run(&p, &["promote", "top_reps", "--to", "nowhere", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown environment `nowhere`"),
        "{}",
        stderr(&out)
    );
    let out = run(&p, &["deploy", "top_reps", "--env", "production"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("protected"), "{}", stderr(&out));

    // A dry run runs the gates and changes nothing.
    let dry = ok(&p, &["promote", "top_reps", "--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
    assert_eq!(snapshot_state(&p.store("production")), before);
}

#[test]
fn a_version_that_does_not_plan_on_the_target_is_blocked() {
    let p = example();
    // A source that exists in staging only.
    let staging_calls = p.store("staging").join("calls");
    let extra = p.store("staging").join("calls_extra");
    std::fs::create_dir_all(&extra).unwrap();
    for f in std::fs::read_dir(&staging_calls).unwrap().flatten() {
        std::fs::copy(f.path(), extra.join(f.file_name())).unwrap();
    }
    p.write(
        "pipes/extra_calls.toml",
        "[[node]]\nname = \"n\"\nsql = \"SELECT count(*) AS calls FROM calls_extra\"\n",
    );
    ok(&p, &["deploy", "extra_calls"]);
    ok(&p, &["run", "extra_calls"]);
    let before = snapshot_state(&p.store("production"));
    let out = run(&p, &["promote", "extra_calls", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("FAIL plans"), "{}", stdout(&out));
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(snapshot_state(&p.store("production")), before);
}

#[test]
fn breaking_changes_need_allow_breaking() {
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    ok(&p, &["promote", "top_reps", "--yes"]);
    // Drop the `team` column from the output.
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &original.replace("SELECT r.name, r.team, w.won", "SELECT r.name, w.won"),
    );
    ok(&p, &["deploy", "top_reps"]);
    let plan = ok(&p, &["plan"]);
    assert!(
        plan.contains("BREAKING") && plan.contains("- team Utf8"),
        "{plan}"
    );
    let before = snapshot_state(&p.store("production"));
    let out = run(&p, &["promote", "top_reps", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("FAIL schema: breaking change"),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot_state(&p.store("production")), before);
    let out = ok(&p, &["promote", "top_reps", "--yes", "--allow-breaking"]);
    assert!(out.contains("breaking change allowed"), "{out}");
}

#[test]
fn a_held_lock_refuses_a_second_change() {
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    let state = p.store("production").join("_sluice");
    std::fs::create_dir_all(&state).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // Held by this (live) test process.
    std::fs::write(
        state.join("lock"),
        format!(
            r#"{{"pid":{},"host":"{}","actor":"bob","at":"now"}}"#,
            std::process::id(),
            host.trim()
        ),
    )
    .unwrap();
    let out = run(&p, &["promote", "top_reps", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is locked by bob"),
        "{}",
        stderr(&out)
    );
    assert!(live(&p, "production").is_empty());
    assert!(
        state.join("lock").exists(),
        "someone else's lock is left alone"
    );
}

#[test]
fn concurrent_promotions_do_not_both_win() {
    let p = example();
    ok(&p, &["deploy", "--all"]);
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(crate::common::sluice_bin())
                .current_dir(p.path())
                .env_remove("SLUICE_PROJECT")
                .args(["promote", "--all", "--yes"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs
        .iter()
        .filter(|o| stdout(o).contains("promoted 3 pipe(s)"))
        .count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        outs.iter()
            .map(|o| (stdout(o), stderr(o)))
            .collect::<Vec<_>>()
    );
    for o in &outs {
        assert!(
            o.status.success() || stderr(o).contains("is locked by"),
            "{}{}",
            stdout(o),
            stderr(o)
        );
    }
    let project = p.project();
    let history = block_on(
        DeploymentState::open(project.environment("production").unwrap())
            .unwrap()
            .history(None),
    )
    .unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
}

#[test]
fn a_promotion_killed_midway_leaves_the_previous_version_live() {
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    ok(&p, &["promote", "top_reps", "--yes"]);
    let v1 = live(&p, "production");
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();
    p.write(
        "pipes/top_reps.toml",
        &original.replace("LIMIT $limit", "LIMIT $limit OFFSET 0"),
    );
    ok(&p, &["deploy", "top_reps"]);

    let out = p
        .sluice()
        .args(["promote", "top_reps", "--yes"])
        .env("SLUICE_FAILPOINT", "commit:after_versions")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint aborts the process");
    assert_eq!(
        live(&p, "production"),
        v1,
        "the previous version is still live"
    );
    assert!(
        p.store("production").join("_sluice/lock").exists(),
        "a killed process leaves its lock"
    );

    // The next promotion takes over the dead process's lock and completes.
    let out = run(&p, &["promote", "top_reps", "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("stale lock"), "{}", stderr(&out));
    assert_ne!(live(&p, "production"), v1);
}

#[test]
fn a_change_killed_after_its_commit_keeps_its_history() {
    let p = example();
    let out = p
        .sluice()
        .args(["deploy", "top_reps"])
        .env("SLUICE_FAILPOINT", "commit:after_live")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(live(&p, "staging").len(), 1);
    let history = ok(&p, &["history", "--env", "staging"]);
    assert!(
        history.contains("deploy") && history.contains("top_reps"),
        "{history}"
    );
    // The next change writes the missing history file.
    ok(&p, &["deploy", "account_health"]);
    assert_eq!(
        std::fs::read_dir(p.store("staging").join("_sluice/history"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn a_corrupted_state_file_is_a_clear_error_and_changes_nothing() {
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    let live_file = p.store("staging").join("_sluice/live.json");
    std::fs::write(&live_file, "{ not json").unwrap();
    let before = snapshot_state(&p.store("staging"));
    for args in [
        &["status"][..],
        &["deploy", "account_health"],
        &["run", "top_reps", "--deployed"],
    ] {
        let out = run(&p, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("live.json is corrupted"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(snapshot_state(&p.store("staging")), before);

    // A tampered version file is refused too.
    let p = example();
    ok(&p, &["deploy", "top_reps"]);
    let versions = p.store("staging").join("_sluice/versions/top_reps");
    let file = std::fs::read_dir(&versions)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, "[[node]]\nname = \"x\"\nsql = \"SELECT 1\"\n").unwrap();
    let out = run(&p, &["run", "top_reps", "--deployed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not match its version"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_shows_the_code_change_on_the_same_data() {
    let p = example();
    ok(&p, &["deploy", "account_health"]);
    let v1 = live(&p, "staging")[0].1.clone();
    // Same versions: equal, exit 0.
    let same = ok(
        &p,
        &[
            "diff",
            "account_health",
            "--env",
            "staging",
            "--versions",
            &format!("{v1}..working"),
            "--key",
            "account_id",
        ],
    );
    assert!(same.trim_end().ends_with("equal"), "{same}");

    // Change how win_rate is computed and drop the tier column.
    let original = std::fs::read_to_string(p.path().join("pipes/account_health.toml")).unwrap();
    p.write(
        "pipes/account_health.toml",
        &original
            .replace(
                "round(p.won * 1.0 / p.calls, 3)",
                "round(p.won * 1.0 / p.calls, 1)",
            )
            .replace("a.region, a.tier, p.calls", "a.region, p.calls"),
    );
    let out = run(
        &p,
        &[
            "diff",
            "account_health",
            "--env",
            "staging",
            "--versions",
            &format!("{v1}..working"),
            "--key",
            "account_id",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    // Strings read as views, as DataFusion reads Parquet's (`schema_force_view_types`).
    assert!(
        text.contains("schema: - tier Utf8View (breaking)"),
        "{text}"
    );
    assert!(
        text.contains("rows only in base: 0, only in head: 0"),
        "{text}"
    );
    assert!(text.contains("| win_rate"), "{text}");
    assert!(text.contains("| calls    | 100.00%"), "{text}");
    assert!(text.contains("differing rows in base:"), "{text}");

    let out = run(
        &p,
        &[
            "diff",
            "account_health",
            "--env",
            "staging",
            "--versions",
            &format!("{v1}..working"),
            "--key",
            "account_id",
            "-f",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["equal"], false);
    assert_eq!(json["only_in_head"], 0);
    let win_rate = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "win_rate")
        .unwrap();
    assert!(win_rate["match_percent"].as_f64().unwrap() < 100.0);

    // Environments: staging (a sample) against production (the full set).
    ok(
        &p,
        &["promote", "account_health", "--yes", "--allow-breaking"],
    );
    let out = run(
        &p,
        &[
            "diff",
            "account_health",
            "--base",
            "production",
            "--head",
            "staging",
            "--key",
            "account_id",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("base production"), "{}", stdout(&out));
}

#[test]
fn failing_pipe_tests_and_data_checks_block_a_promotion() {
    let p = example();
    ok(&p, &["deploy", "--all"]);
    ok(&p, &["promote", "--all", "--yes"]);
    let original = std::fs::read_to_string(p.path().join("pipes/top_reps.toml")).unwrap();

    // Gate 2: a version whose pipe tests fail (it now counts lost calls as won).
    p.write(
        "pipes/top_reps.toml",
        &original.replace(
            "WHERE outcome = 'won' AND",
            "WHERE outcome IN ('won', 'lost') AND",
        ),
    );
    ok(&p, &["deploy", "top_reps"]);
    let before = snapshot_state(&p.store("production"));
    let out = run(&p, &["promote", "top_reps", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAIL tests"), "{}", stdout(&out));
    assert_eq!(snapshot_state(&p.store("production")), before);

    // Gate 3: a version whose data check fails on the data (no rep may have won calls).
    p.write(
        "pipes/top_reps.toml",
        &format!("{original}\n[[check]]\nname = \"nobody wins\"\nexpression = \"won = 0\"\n"),
    );
    ok(&p, &["deploy", "top_reps"]);
    let out = run(&p, &["promote", "top_reps", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // Every gate runs and says how it read: the checks fail on staging's sample and on
    // production's, read by a key sample (production has no policy of its own).
    let text = stdout(&out);
    assert!(
        text.contains("FAIL checks on staging: 1 of 4 check(s) failed (read as sample system 10% seed 7): nobody wins"),
        "{text}"
    );
    assert!(
        text.contains("FAIL checks on production: 1 of 4 check(s) failed (read as sample key 10% seed 0): nobody wins"),
        "{text}"
    );
    assert!(text.contains("pass schema:"), "{text}");
    // --sample changes the fraction the target is read at.
    let out = run(&p, &["promote", "top_reps", "--yes", "--sample", "0.5"]);
    assert!(
        stdout(&out).contains("(read as sample key 50% seed 0)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot_state(&p.store("production")), before);
    // A pipe without tests says so.
    p.write(
        "pipes/untested.toml",
        "[[node]]\nname = \"n\"\nsql = \"SELECT count(*) AS calls FROM calls\"\n",
    );
    ok(&p, &["deploy", "untested"]);
    let out = run(&p, &["promote", "untested", "--yes", "--dry-run"]);
    assert!(
        stdout(&out).contains("pass tests: no pipe tests: tests/*.toml has no case for `untested`"),
        "{}",
        stdout(&out)
    );

    // A check naming a column the output does not have fails validation and gate 1.
    p.write(
        "pipes/top_reps.toml",
        &format!("{original}\n[[check]]\nnot_null = [\"no_such_column\"]\n"),
    );
    let out = run(&p, &["validate", "--env", "staging"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("no_such_column"), "{}", stdout(&out));
}
