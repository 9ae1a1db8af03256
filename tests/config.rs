//! Loading a project: every problem in `sluice.toml` or a pipe file is reported as
//! `path:line:col: message`, by `Project::load` (as `SluiceError::Config { problems }`)
//! and by the binary (`sluice validate` exits 2), all problems at once.

use std::path::PathBuf;

use sluice_engine::{Problem, Project, SluiceError};

use crate::common::TestProject;

/// A valid `sluice.toml` with one environment.
const STAGING: &str = "[environments.staging]\ndata = \"data/staging\"\n";

/// A valid pipe.
const GOOD_PIPE: &str = "[[node]]\nname = \"one\"\nsql = \"SELECT 1 AS x\"\n";

fn file(p: &TestProject, rel: &str) -> PathBuf {
    p.path().canonicalize().expect("canonical path").join(rel)
}

/// The problems `Project::load` reports; fails if the project loads or fails otherwise.
fn load_problems(p: &TestProject) -> Vec<Problem> {
    match Project::load(p.path()) {
        Ok(project) => panic!("the project loaded: {project:#?}"),
        Err(e @ SluiceError::Config { .. }) => {
            assert_eq!(e.exit_code(), 2, "a configuration error is a usage error");
            let SluiceError::Config { problems } = e else {
                unreachable!()
            };
            problems
        }
        Err(other) => panic!("expected SluiceError::Config, got {other:?}"),
    }
}

/// Asserts one problem's file, line, column and message.
#[track_caller]
fn assert_problem(
    p: &TestProject,
    problem: &Problem,
    rel: &str,
    line: usize,
    col: usize,
    message: &str,
) {
    assert_eq!(problem.file, file(p, rel), "{problem}");
    assert_eq!((problem.line, problem.column), (line, col), "{problem}");
    assert!(
        problem.message.contains(message),
        "message {:?} does not contain {message:?}",
        problem.message
    );
    let shown = problem.to_string();
    assert!(
        shown.starts_with(&format!("{}:{line}:{col}: ", file(p, rel).display())),
        "{shown}"
    );
}

/// `sluice validate` exits 2 and prints each `path:line:col: message` on stderr.
#[track_caller]
fn assert_cli_reports(p: &TestProject, expected: &[(&str, usize, usize, &str)]) -> String {
    let out = p.sluice().arg("validate").output().expect("run sluice");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(out.stdout.is_empty(), "nothing is validated on stdout");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for (rel, line, col, message) in expected {
        let located = format!("{}:{line}:{col}: ", file(p, rel).display());
        let at = stderr
            .lines()
            .find(|l| l.contains(&located))
            .unwrap_or_else(|| panic!("no {located} in:\n{stderr}"));
        assert!(at.contains(message), "{at:?} does not contain {message:?}");
    }
    stderr
}

/// The one problem of a project, through the library and the binary.
#[track_caller]
fn assert_one_problem(p: &TestProject, rel: &str, line: usize, col: usize, message: &str) {
    let problems = load_problems(p);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_problem(p, &problems[0], rel, line, col, message);
    assert_cli_reports(p, &[(rel, line, col, message)]);
}

#[test]
fn the_example_and_a_minimal_project_load() {
    let p = TestProject::example(0.02);
    let project = Project::load(p.path()).expect("the example loads");
    assert_eq!(project.name, "sales_calls");
    assert_eq!(
        project.pipes.keys().collect::<Vec<_>>(),
        ["account_health", "daily_outcomes", "top_reps"]
    );
    assert!(project.pipes["top_reps"].endpoint);
    assert!(!project.pipes["daily_outcomes"].endpoint);
    assert!(project.environments["production"].protected);

    let p = TestProject::with_files(STAGING, &[("p", GOOD_PIPE)]);
    let project = Project::load(p.path()).expect("a minimal project loads");
    assert_eq!(project.pipes["p"].nodes.len(), 1);
    assert_eq!(
        project.environments["staging"].location,
        sluice_engine::store::StoreLocation::Local(file(&p, "data/staging"))
    );
}

#[test]
fn unknown_key_in_sluice_toml() {
    let p = TestProject::with_files(
        "[environments.staging]\ndata = \"data/staging\"\ncolour = \"red\"\n",
        &[],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        3,
        1,
        "unknown field `colour`, expected one of `data`",
    );
}

#[test]
fn unknown_top_level_key_in_sluice_toml() {
    let p = TestProject::with_files(
        &format!("{STAGING}\n[source.calls]\npath = \"calls\"\n"),
        &[],
    );
    assert_one_problem(&p, "sluice.toml", 4, 2, "unknown field `source`");
}

#[test]
fn unknown_key_in_a_pipe_file() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[[node]]\nname = \"a\"\nsql = \"SELECT 1\"\ncolour = \"red\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        4,
        1,
        "unknown field `colour`, expected one of `name`, `description`, `sql`",
    );
}

#[test]
fn duplicate_node_names() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[[node]]\nname = \"a\"\nsql = \"SELECT 1 AS x\"\n\n[[node]]\nname = \"a\"\nsql = \"SELECT 2 AS x\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        6,
        8,
        "pipe `p`: duplicate node name `a`",
    );
}

#[test]
fn a_node_reading_a_later_node() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[[node]]\nname = \"a\"\nsql = \"SELECT * FROM b\"\n\n[[node]]\nname = \"b\"\nsql = \"SELECT 1 AS x\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        3,
        7,
        "pipe `p`, node `a` reads `b`, which comes later; a node reads only earlier nodes",
    );
}

#[test]
fn a_node_reading_itself() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[[node]]\nname = \"first\"\nsql = \"SELECT 1 AS x\"\n\n[[node]]\nname = \"loop\"\nsql = \"SELECT * FROM first JOIN loop USING (x)\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        7,
        7,
        "pipe `p`, node `loop` reads itself",
    );
}

#[test]
fn a_parameter_default_of_the_wrong_type() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[params.limit]\ntype = \"int\"\ndefault = \"ten\"\n\n[[node]]\nname = \"a\"\nsql = \"SELECT $limit AS l\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        3,
        11,
        "parameter `limit`: `default` \"ten\" is not an integer (the parameter's type is int)",
    );
}

#[test]
fn an_environment_without_data() {
    let p = TestProject::with_files(
        &format!("{STAGING}\n[environments.production]\nprotected = true\n"),
        &[],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        4,
        1,
        "environment `production` has no `data` (its store's root folder)",
    );
}

#[test]
fn a_sample_fraction_of_zero() {
    let p = TestProject::with_files(
        &format!("{STAGING}sample = {{ method = \"system\", fraction = 0 }}\n"),
        &[],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        3,
        10,
        "environment `staging`: sample fraction 0 is outside (0, 1]",
    );
}

#[test]
fn a_sample_fraction_above_one() {
    let p = TestProject::with_files(
        &format!("{STAGING}sample = {{ method = \"bernoulli\", fraction = 1.5, seed = 1 }}\n"),
        &[],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        3,
        10,
        "environment `staging`: sample fraction 1.5 is outside (0, 1]",
    );
}

#[test]
fn object_store_urls_load_and_unknown_schemes_are_named() {
    let p = TestProject::with_files(
        "[environments.staging]\ndata = \"s3://bucket/sales\"\nstorage = { region = \"eu-west-1\" }\n",
        &[],
    );
    let project = Project::load(p.path()).expect("an s3:// store loads");
    let staging = &project.environments["staging"];
    assert_eq!(staging.location.to_string(), "s3://bucket/sales");
    assert_eq!(staging.storage.options["region"], "eu-west-1");

    let p = TestProject::with_files("[environments.staging]\ndata = \"ftp://host/x\"\n", &[]);
    assert_one_problem(
        &p,
        "sluice.toml",
        2,
        8,
        "environment `staging`: `ftp://` is not a supported store (use a folder, file://, s3://, gs://, az:// or memory://)",
    );
}

#[test]
fn an_unknown_sample_method() {
    let p = TestProject::with_files(
        &format!("{STAGING}sample = {{ method = \"reservoir\", fraction = 0.1 }}\n"),
        &[],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        3,
        10,
        "environment `staging`: unknown sample method `reservoir` (expected one of: system, key, bernoulli, rows)",
    );
}

#[test]
fn a_node_using_an_undeclared_parameter() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "[params.limit]\ntype = \"int\"\ndefault = 3\n\n[[node]]\nname = \"a\"\nsql = \"SELECT '$notme' AS s, $limit AS l, $since AS d\"\n",
        )],
    );
    assert_one_problem(
        &p,
        "pipes/p.toml",
        7,
        7,
        "pipe `p`, node `a` uses `$since`, which is not a declared parameter (add [params.since])",
    );
}

#[test]
fn endpoint_written_after_a_node() {
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "description = \"d\"\n\n[[node]]\nname = \"a\"\nsql = \"SELECT 1 AS x\"\nendpoint = true\n",
        )],
    );
    assert_one_problem(&p, "pipes/p.toml", 6, 1, "unknown field `endpoint`");
    let problems = load_problems(&p);
    assert!(
        problems[0]
            .message
            .ends_with("put `endpoint = true` before the first `[[node]]`)"),
        "{}",
        problems[0].message
    );

    // Before the first node, it is the pipe's.
    let p = TestProject::with_files(
        STAGING,
        &[(
            "p",
            "description = \"d\"\nendpoint = true\n\n[[node]]\nname = \"a\"\nsql = \"SELECT 1 AS x\"\n",
        )],
    );
    assert!(Project::load(p.path()).unwrap().pipes["p"].endpoint);
}

#[test]
fn every_problem_of_a_project_is_reported() {
    let toml = "\
[environments.production]
protected = true

[environments.staging]
data = \"data/staging\"
sample = { method = \"system\", fraction = 2 }

[sources.calls]
sample = { method = \"nope\", fraction = 0.1 }
";
    let p = TestProject::with_files(
        toml,
        &[
            ("a", "[[node]]\nname = \"a\"\nsql = \"SELECT * FROM a\"\n"),
            (
                "b",
                "[[node]]\nname = \"b\"\nsql = \"SELECT 1\"\ncolour = 1\n",
            ),
            ("c", GOOD_PIPE),
        ],
    );
    let expected: &[(&str, usize, usize, &str)] = &[
        (
            "sluice.toml",
            1,
            1,
            "environment `production` has no `data`",
        ),
        (
            "sluice.toml",
            6,
            10,
            "environment `staging`: sample fraction 2 is outside (0, 1]",
        ),
        (
            "sluice.toml",
            9,
            10,
            "source `calls`: unknown sample method `nope`",
        ),
        ("pipes/a.toml", 3, 7, "pipe `a`, node `a` reads itself"),
        ("pipes/b.toml", 4, 1, "unknown field `colour`"),
    ];
    let problems = load_problems(&p);
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, (rel, line, col, message)) in problems.iter().zip(expected) {
        assert_problem(&p, problem, rel, *line, *col, message);
    }
    let stderr = assert_cli_reports(&p, expected);
    assert!(
        stderr.starts_with("error: 5 problems in the project:\n"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("c.toml"),
        "the good pipe is not reported:\n{stderr}"
    );
}

/// `engine = …` of an environment: each mistake is a `sluice.toml:line:col` problem
/// naming the environment.
#[test]
fn engine_mistakes_name_the_environment() {
    let p = TestProject::with_files(
        concat!(
            "[environments.a]\ndata = \"data/a\"\nengine = { kind = \"spark\" }\n",
            "[environments.b]\ndata = \"data/b\"\nengine = { kind = \"ballista\", url = \"http://sched:50050\" }\n",
            "[environments.c]\ndata = \"gs://bucket/c\"\nengine = { kind = \"ballista\", url = \"df://sched\" }\n",
            "[environments.d]\ndata = \"data/d\"\nengine = { kind = \"ballista\" }\n",
            "[environments.e]\ndata = \"data/e\"\nengine = { kind = \"ballista\", url = \"df://s\", timeout = \"soon\" }\n",
        ),
        &[],
    );
    let problems = load_problems(&p);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert_problem(
        &p,
        &problems[0],
        "sluice.toml",
        3,
        10,
        "environment `a`: unknown engine kind `spark`",
    );
    assert_problem(
        &p,
        &problems[1],
        "sluice.toml",
        6,
        10,
        "environment `b`: engine `url = \"http://sched:50050\"`",
    );
    assert_problem(
        &p,
        &problems[2],
        "sluice.toml",
        9,
        10,
        "environment `c`: a `ballista` engine reads",
    );
    assert!(problems[2].message.contains("`gs://`"), "{}", problems[2]);
    assert_problem(
        &p,
        &problems[3],
        "sluice.toml",
        12,
        10,
        "environment `d`: a `ballista` engine needs `url",
    );
    assert_problem(
        &p,
        &problems[4],
        "sluice.toml",
        15,
        10,
        "environment `e`: engine `timeout`",
    );
    assert_cli_reports(&p, &[("sluice.toml", 3, 10, "unknown engine kind")]);
}

/// Without the `ballista` feature, an environment on a Ballista cluster is a
/// configuration error saying how to rebuild — never a silent embedded run.
#[cfg(not(feature = "ballista"))]
#[test]
fn a_ballista_engine_needs_the_feature() {
    let p = TestProject::with_files(
        concat!(
            "[environments.staging]\ndata = \"data/staging\"\n",
            "[environments.production]\ndata = \"data/production\"\nengine = { kind = \"ballista\", url = \"df://sched:50050\" }\n",
        ),
        &[("p", GOOD_PIPE)],
    );
    assert_one_problem(
        &p,
        "sluice.toml",
        5,
        10,
        "environment `production`: `engine.kind = \"ballista\"` needs a sluice built with Ballista support: rebuild with `--features ballista`",
    );
}

/// With the feature, the engine loads with its defaults (port 50050, 5 s to connect,
/// 30 min per job); `embedded` is the default and may be written out.
#[cfg(feature = "ballista")]
#[test]
fn a_ballista_engine_loads() {
    use sluice_engine::RunEngine;
    let p = TestProject::with_files(
        concat!(
            "[environments.staging]\ndata = \"data/staging\"\nengine = \"embedded\"\n",
            "[environments.production]\ndata = \"data/production\"\n",
            "engine = { kind = \"ballista\", url = \"df://sched\", connect_timeout = \"2s\" }\n",
        ),
        &[],
    );
    let project = Project::load(p.path()).expect("loads");
    assert_eq!(project.environments["staging"].engine, RunEngine::Embedded);
    let RunEngine::Ballista(b) = &project.environments["production"].engine else {
        panic!(
            "not ballista: {:?}",
            project.environments["production"].engine
        );
    };
    assert_eq!((b.host.as_str(), b.port), ("sched", 50050));
    assert_eq!(b.connect_timeout.as_secs(), 2);
    assert_eq!(b.job_timeout.as_secs(), 30 * 60);
}
