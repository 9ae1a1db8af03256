//! Parameters are parsed into their declared types and bound as placeholders: a value is
//! never SQL text.

use datafusion::arrow::util::pretty::pretty_format_batches;
use sluice_engine::{RunOptions, SampleOverride, SluiceError};

use crate::common::{TestProject, block_on};

const TYPED_PIPE: &str = r#"
description = "every parameter type, bound"

[params.n]
type = "int"
default = 3
min = 1
max = 100

[params.f]
type = "float"
default = 0.5

[params.s]
type = "string"
default = "won"

[params.b]
type = "bool"
default = true

[params.d]
type = "date"
default = "2024-03-01"

[params.t]
type = "timestamp"
default = "2024-03-01 12:30:00"

[[node]]
name = "values"
sql = "SELECT $n AS n, $f AS f, $s AS s, $b AS b, $d AS d, $t AS t"

[[node]]
name = "filtered"
sql = "SELECT outcome, count(*) AS calls FROM calls WHERE outcome = $s AND started_at >= $t AND started_at >= $d GROUP BY outcome LIMIT $n"
"#;

fn run(p: &TestProject, pipe: &str, params: &[(&str, &str)]) -> Result<String, SluiceError> {
    // Staging runs the working copy; `full` reads all of its data.
    let session = p.session(
        "staging",
        SampleOverride {
            full: true,
            ..Default::default()
        },
    );
    let given: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = block_on(session.run_pipe(pipe, &given, &RunOptions::default()))?;
    Ok(pretty_format_batches(&out.batches).unwrap().to_string())
}

#[test]
fn every_type_binds_as_a_typed_value() {
    let p = TestProject::example(0.05);
    p.write(
        "pipes/typed_values.toml",
        &TYPED_PIPE
            .replace(
                "[[node]]\nname = \"filtered\"",
                "[[unused]]\nname = \"filtered\"",
            )
            .split("[[unused]]")
            .next()
            .unwrap()
            .to_string(),
    );
    let out = run(
        &p,
        "typed_values",
        &[("n", "7"), ("b", "false"), ("d", "2024-12-31")],
    )
    .unwrap();
    assert!(
        out.contains("| 7 | 0.5 | won | false | 2024-12-31 | 2024-03-01T12:30:00 |"),
        "{out}"
    );
}

#[test]
fn placeholders_bind_in_filters_and_limit() {
    let p = TestProject::example(0.05);
    p.write("pipes/typed.toml", &TYPED_PIPE.replace("[[node]]\nname = \"values\"\nsql = \"SELECT $n AS n, $f AS f, $s AS s, $b AS b, $d AS d, $t AS t\"\n", ""));
    let out = run(&p, "typed", &[("s", "lost")]).unwrap();
    assert!(out.contains("| lost    |"), "{out}");
}

#[test]
fn hostile_strings_are_plain_values() {
    let p = TestProject::example(0.05);
    p.write(
        "pipes/by_outcome.toml",
        r#"
[params.outcome]
type = "string"
required = true

[[node]]
name = "calls_with_outcome"
sql = "SELECT count(*) AS calls FROM calls WHERE outcome = $outcome"
"#,
    );
    for hostile in [
        "won' OR '1'='1",
        "x'; DROP TABLE calls; --",
        "$outcome",
        "\\' OR 1=1 --",
    ] {
        let out = run(&p, "by_outcome", &[("outcome", hostile)]).unwrap();
        assert!(out.contains("| 0     |"), "{hostile}: {out}");
    }
    let out = run(&p, "by_outcome", &[("outcome", "won")]).unwrap();
    assert!(!out.contains("| 0     |"), "{out}");
}

#[test]
fn bad_values_name_the_parameter() {
    let p = TestProject::example(0.05);
    let cases: &[(&[(&str, &str)], &str, &str)] = &[
        (&[("limit", "ten")], "limit", "int"),
        (&[("limit", "0")], "limit", "minimum"),
        (&[("since", "2024-02-30")], "since", "date"),
        (&[("nope", "1")], "nope", "unknown parameter"),
    ];
    for (given, param, words) in cases {
        let err = run(&p, "top_reps", given).unwrap_err();
        match &err {
            SluiceError::Param {
                param: got,
                message,
                ..
            } => {
                assert_eq!(got, param);
                assert!(message.contains(words), "{message}");
            }
            other => panic!("expected a parameter error, got {other}"),
        }
        assert_eq!(err.exit_code(), 2);
    }
}
