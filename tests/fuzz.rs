//! Property tests with a fixed seed and a bounded number of cases (each test well under
//! 20 s in a debug build): mutated project files never panic `Project::load` and are
//! either a project or project problems naming a file and a line of it; random
//! parameter values never panic `params::resolve` and are either values within the
//! declaration's bounds or errors naming the parameter (and, through the binary, exit 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sluice_engine::project::params::{Param, ParamType, ParamValue, resolve};
use sluice_engine::{Project, SluiceError};

use crate::common::TestProject;

/// A runner that draws the same cases on every run, and records no failure files.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[25; 32]))
}

/// The example project's files (sluice.toml, pipes, pipe tests, SQL checks), as text.
fn example_files() -> Vec<(String, String)> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                visit(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sales_calls");
    let mut out = Vec::new();
    visit(&root, &root, &mut out);
    out.sort();
    out
}

/// One change of a file's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    /// The value after `=` on a line becomes this.
    ReplaceValue(Index, String),
    /// Characters inserted into the key of a line.
    GarbleKey(Index, String),
    InsertLine(Index, String),
    Truncate(Index),
    /// Raw bytes (not always UTF-8) inserted at a place.
    Bytes(Index, Vec<u8>),
}

/// Values of every TOML type and of the wrong ones: huge and negative numbers, NaN,
/// unicode, deep nesting, sizes, paths, SQL.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e400".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("0.0000001".to_string()),
        Just("true".to_string()),
        Just("\"\"".to_string()),
        "\\PC{0,24}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[a-z_]{1,10}".prop_map(|s| format!("\"{s}\"")),
        Just("[1, \"a\", 2.5]".to_string()),
        Just("{ method = \"key\", fraction = 2 }".to_string()),
        Just("{ method = \"rows\", rows = -5 }".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("\"99999999999TiB\"".to_string()),
        Just("\"-1GiB\"".to_string()),
        Just("\"../../../../etc\"".to_string()),
        Just("\"s3://\"".to_string()),
        Just("\"SELECT 1; DROP TABLE calls\"".to_string()),
        Just("\"SELECT $limit FROM calls WHERE\"".to_string()),
        (1usize..400).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        (1usize..400).prop_map(|d| format!("{}1{}", "{ a = ".repeat(d), " }".repeat(d))),
    ]
}

/// Lines a file may gain: tables and keys of the project's files, with any value.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[environments.extra]".to_string()),
        Just("[environments.staging]".to_string()),
        Just("[sources.calls]".to_string()),
        Just("[sources.\"we ird\"]".to_string()),
        Just("[[node]]".to_string()),
        Just("[[check]]".to_string()),
        Just("[params.p]".to_string()),
        Just("[project]".to_string()),
        Just("[[case]]".to_string()),
        (
            prop_oneof![
                Just("data"),
                Just("sample"),
                Just("protected"),
                Just("memory_limit"),
                Just("batch_size"),
                Just("target_partitions"),
                Just("sql"),
                Just("name"),
                Just("type"),
                Just("default"),
                Just("min"),
                Just("max"),
                Just("allowed"),
                Just("materialize"),
                Just("endpoint"),
                Just("sample_key"),
                Just("sort"),
                Just("expression"),
                Just("unique"),
            ],
            value()
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        "\\PC{0,40}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), value()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        (any::<Index>(), "[^\n]{1,4}").prop_map(|(i, s)| Mutation::GarbleKey(i, s)),
        (any::<Index>(), line()).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(i, b)| Mutation::Bytes(i, b)),
    ]
}

fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
    let text = String::from_utf8_lossy(text).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match m {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Mutation::DuplicateLine(i) => {
            let l = lines[i.index(n)].clone();
            lines.insert(i.index(n), l);
        }
        Mutation::ReplaceValue(i, v) => {
            let at = i.index(n);
            if let Some((k, _)) = lines[at].split_once('=') {
                lines[at] = format!("{k}= {v}");
            } else {
                lines[at] = format!("key = {v}");
            }
        }
        Mutation::GarbleKey(i, s) => {
            let at = i.index(n);
            let cut = lines[at]
                .char_indices()
                .nth(lines[at].chars().count() / 2)
                .map(|(b, _)| b)
                .unwrap_or(0);
            lines[at].insert_str(cut, s);
        }
        Mutation::InsertLine(i, l) => lines.insert(i.index(n + 1), l.clone()),
        Mutation::Truncate(i) => {
            let joined = lines.join("\n");
            let mut cut = i.index(joined.len() + 1);
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            return joined[..cut].as_bytes().to_vec();
        }
        Mutation::Bytes(i, b) => {
            let mut bytes = lines.join("\n").into_bytes();
            bytes.splice(
                i.index(bytes.len() + 1)..i.index(bytes.len() + 1),
                b.clone(),
            );
            return bytes;
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// Checks what `Project::load` says of a folder: a project, or problems each naming a
/// file of the folder and a line within it.
fn check_load(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<(), TestCaseError> {
    match Project::load(dir) {
        Ok(_) => Ok(()),
        Err(SluiceError::Config { problems }) => {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(!p.message.trim().is_empty(), "{p}");
                let bytes = files.get(&p.file);
                prop_assert!(
                    bytes.is_some(),
                    "a problem names a file of the project: {p}"
                );
                let lines = bytes.unwrap().split(|b| *b == b'\n').count();
                prop_assert!(
                    p.line >= 1 && p.line <= lines + 1 && p.column >= 1,
                    "line {} of a file of {lines} lines: {p}",
                    p.line
                );
            }
            Ok(())
        }
        Err(other) => {
            prop_assert!(false, "not a project problem: {other}");
            Ok(())
        }
    }
}

/// Mutated copies of the example's files: `Project::load` never panics, and says what
/// is wrong by file and line.
#[test]
fn mutated_project_files_load_or_name_a_file_and_line() {
    let base = example_files();
    let strategy = (
        prop::collection::vec((any::<Index>(), mutation()), 1..5),
        any::<Index>(),
    );
    runner(800)
        .run(&strategy, |(mutations, _)| {
            let dir = tempfile::tempdir().unwrap();
            let mut texts: Vec<(String, Vec<u8>)> = base
                .iter()
                .map(|(rel, text)| (rel.clone(), text.clone().into_bytes()))
                .collect();
            for (file, m) in &mutations {
                let i = file.index(texts.len());
                texts[i].1 = apply(&texts[i].1, m);
            }
            let mut files = BTreeMap::new();
            for (rel, bytes) in &texts {
                let path = dir.path().join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
                files.insert(path, bytes.clone());
            }
            check_load(dir.path(), &files)
        })
        .unwrap();
}

/// Every type, with and without bounds.
fn declarations() -> Vec<Param> {
    let d = |s: &str| ParamType::Date.parse_text(s).unwrap();
    let t = |s: &str| ParamType::Timestamp.parse_text(s).unwrap();
    let p = |ty, min, max, allowed: Vec<ParamValue>, default, required| Param {
        name: "p".into(),
        ty,
        description: None,
        default,
        required,
        min,
        max,
        allowed,
    };
    vec![
        p(ParamType::Int, None, None, vec![], None, false),
        p(
            ParamType::Int,
            Some(ParamValue::Int(1)),
            Some(ParamValue::Int(1000)),
            vec![],
            Some(ParamValue::Int(10)),
            false,
        ),
        p(ParamType::Float, None, None, vec![], None, true),
        p(
            ParamType::Float,
            Some(ParamValue::Float(0.0)),
            Some(ParamValue::Float(1.0)),
            vec![],
            None,
            false,
        ),
        p(ParamType::String, None, None, vec![], None, false),
        p(
            ParamType::String,
            None,
            None,
            vec![
                ParamValue::String("emea".into()),
                ParamValue::String("amer".into()),
            ],
            None,
            false,
        ),
        p(ParamType::Bool, None, None, vec![], None, false),
        p(ParamType::Date, None, None, vec![], None, false),
        p(
            ParamType::Date,
            Some(d("2020-01-01")),
            Some(d("2030-12-31")),
            vec![],
            None,
            false,
        ),
        p(ParamType::Timestamp, None, None, vec![], None, false),
        p(
            ParamType::Timestamp,
            Some(t("2024-01-01 00:00:00")),
            Some(t("2024-12-31 23:59:59")),
            vec![],
            None,
            false,
        ),
    ]
}

/// Texts a caller may send: anything, and near-misses of numbers, dates and words.
fn param_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        "[-+ ]?[0-9]{0,25}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})? ?",
        "[+-]?[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,3}([ T][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\\.[0-9]{0,12})?)?)?Z?",
        "(?i)(nan|-?inf|infinity|true|false|yes|no|null|none|1|0)",
        "0x[0-9a-f]{1,20}",
    ]
}

/// Random values for every type of parameter: `resolve` never panics; a value it
/// accepts is within the declaration's bounds and binds as a literal; one it refuses is
/// an error naming the parameter.
#[test]
fn random_parameter_values_resolve_within_bounds_or_name_the_parameter() {
    let params = declarations();
    let strategy = (any::<Index>(), param_text(), any::<bool>());
    runner(20000)
        .run(&strategy, |(which, text, unknown_name)| {
            let param = &params[which.index(params.len())];
            let declared: BTreeMap<String, Param> =
                [("p".to_string(), param.clone())].into_iter().collect();
            let name = if unknown_name { "q" } else { "p" };
            match resolve(&declared, &[(name.to_string(), text.clone())]) {
                Ok(values) => {
                    prop_assert!(!unknown_name, "an unknown parameter is refused");
                    let v = &values["p"];
                    prop_assert!(param.check(v).is_ok(), "{text:?} -> {v} out of bounds");
                    if let ParamValue::Float(f) = v {
                        prop_assert!(f.is_finite(), "{text:?} -> {f}");
                    }
                    let _ = v.to_scalar();
                }
                Err((named, message)) => {
                    prop_assert_eq!(named, name);
                    prop_assert!(!message.trim().is_empty());
                }
            }
            // What is plainly valid is accepted.
            if !unknown_name
                && param.ty == ParamType::Int
                && let Ok(i) = text.trim().parse::<i64>()
                && param.check(&ParamValue::Int(i)).is_ok()
            {
                prop_assert!(resolve(&declared, &[("p".into(), text.clone())]).is_ok());
            }
            Ok(())
        })
        .unwrap();
}

/// A handful of bad values through the binary: exit 2, the parameter named, the stores
/// as they were.
#[test]
fn bad_parameter_values_through_the_binary_are_usage_errors() {
    let p = TestProject::example(0.02);
    // A refused run is recorded in `_sluice/stats/` like any other: not data.
    let stores = |p: &TestProject| -> Vec<Vec<(String, Vec<u8>)>> {
        ["staging", "production"]
            .iter()
            .map(|e| {
                crate::common::tree(&p.store(e))
                    .into_iter()
                    .filter(|(path, _)| !path.starts_with("_sluice/stats/"))
                    .collect()
            })
            .collect()
    };
    let before = stores(&p);
    let long = "9".repeat(10_000);
    for (pipe, param, value) in [
        ("top_reps", "limit", "0"),
        ("top_reps", "limit", "1001"),
        ("top_reps", "limit", "99999999999999999999"),
        ("top_reps", "limit", "1.5"),
        ("top_reps", "limit", "0x10"),
        ("top_reps", "limit", "nan"),
        ("top_reps", "limit", ""),
        ("top_reps", "limit", long.as_str()),
        ("top_reps", "since", "2024-13-01"),
        ("top_reps", "since", "2024-02-30"),
        ("top_reps", "since", "yesterday"),
        ("top_reps", "since", "🙂"),
        ("account_health", "region", "emea' OR 1=1 --"),
        ("account_health", "min_calls", "-1"),
        ("daily_outcomes", "channel", "PHONE"),
    ] {
        let arg = format!("{param}={value}");
        let (_, err) = p.expect_exit(&["run", pipe, "--param", &arg], 2);
        assert!(
            err.contains(&format!("parameter `{param}`")),
            "{pipe} {param}={value:.40}: {err}"
        );
    }
    assert!(stores(&p) == before, "the stores are as they were");
}
