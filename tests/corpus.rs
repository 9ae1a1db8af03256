//! The bad-input corpus: each folder of `tests/corpus/` is one input Sluice must refuse
//! cleanly, run through the binary in a copy of the example project (with data):
//!
//! ```text
//! tests/corpus/<case>/cmd      the arguments, one a line
//! tests/corpus/<case>/expect   `exit N`, then `stderr TEXT` (and `stdout TEXT`) lines the
//!                              output must contain, and `pending WHY` for a case another
//!                              branch fixes
//! tests/corpus/<case>/files/   files put into the project first (over the example's)
//! tests/corpus/<case>/setup    optional commands run first, one a line, that must succeed
//! ```
//!
//! In `cmd` and in the files, `${repeat:N:TEXT}` stands for TEXT repeated N times (deep
//! expressions stay small on disk). Every case must exit with its code, say what it
//! names, never panic, and leave every store as it was (a refused run's record in
//! `_sluice/stats/` aside). A `pending` case is run and reported, not failed, until the
//! fix it waits for lands (then its `pending` line is removed).

use std::path::{Path, PathBuf};

use crate::common::{TestProject, tree};

type Stores = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// `${repeat:N:TEXT}` expanded.
fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${repeat:") {
        out.push_str(&rest[..start]);
        let body = &rest[start + "${repeat:".len()..];
        let (n, after) = body.split_once(':').expect("${repeat:N:TEXT}");
        let end = after.find('}').expect("${repeat:N:TEXT} closed");
        let n: usize = n.parse().expect("a count");
        out.push_str(&after[..end].repeat(n));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn copy_into(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_into(&e.path(), &target);
        } else {
            let bytes = std::fs::read(e.path()).unwrap();
            // Text is expanded; other bytes (a file that is not UTF-8) are kept as they are.
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => expand(&text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&target, bytes).unwrap();
        }
    }
}

/// Every store under the project's `data/` and `.sluice/`, without run records.
fn stores(root: &Path) -> Stores {
    let mut out = Vec::new();
    for dir in ["data", ".sluice"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let files = tree(&e.path())
                .into_iter()
                .filter(|(p, _)| !p.starts_with("_sluice/stats/"))
                .collect();
            out.push((format!("{dir}/{}", e.file_name().to_string_lossy()), files));
        }
    }
    out.sort();
    out
}

struct Expect {
    exit: i32,
    stderr: Vec<String>,
    stdout: Vec<String>,
    pending: Option<String>,
}

fn parse_expect(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).unwrap();
    let mut expect = Expect {
        exit: -1,
        stderr: Vec::new(),
        stdout: Vec::new(),
        pending: None,
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        match line.split_once(' ') {
            Some(("exit", n)) => expect.exit = n.trim().parse().unwrap(),
            Some(("stderr", s)) => expect.stderr.push(s.to_string()),
            Some(("stdout", s)) => expect.stdout.push(s.to_string()),
            Some(("pending", s)) => expect.pending = Some(s.to_string()),
            _ => panic!("{}: unknown line {line:?}", path.display()),
        }
    }
    assert!(expect.exit >= 0, "{}: no `exit N`", path.display());
    expect
}

/// What is wrong with one case's run, if anything.
fn run_case(base: &TestProject, case: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    copy_into(base.path(), dir.path());
    let p = TestProject { dir };
    if case.join("files").is_dir() {
        copy_into(&case.join("files"), p.path());
    }
    if let Ok(setup) = std::fs::read_to_string(case.join("setup")) {
        for line in setup.lines().filter(|l| !l.trim().is_empty()) {
            let args: Vec<&str> = line.split_whitespace().collect();
            p.expect_exit(&args, 0);
        }
    }
    let expect = parse_expect(&case.join("expect"));
    let args: Vec<String> = std::fs::read_to_string(case.join("cmd"))
        .unwrap()
        .lines()
        .map(expand)
        .collect();
    let before = stores(p.path());
    let out = p.sluice().args(&args).output().expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut wrong = Vec::new();
    if out.status.code() != Some(expect.exit) {
        wrong.push(format!(
            "exit {:?}, expected {}",
            out.status.code(),
            expect.exit
        ));
    }
    for needle in &expect.stderr {
        if !stderr.contains(needle.as_str()) {
            wrong.push(format!("stderr lacks {needle:?}"));
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in &expect.stdout {
        if !stdout.contains(needle.as_str()) {
            wrong.push(format!("stdout lacks {needle:?}"));
        }
    }
    if stderr.contains("panicked") {
        wrong.push("it panicked".into());
    }
    if stores(p.path()) != before {
        wrong.push("a store changed".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        let shown: String = stderr.chars().take(600).collect();
        Err(format!("{}\n    stderr: {shown}", wrong.join("; ")))
    }
}

#[test]
fn every_bad_input_of_the_corpus_is_refused_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the corpus has {} cases", cases.len());
    let base = TestProject::example(0.02);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let pending = parse_expect(&case.join("expect")).pending;
        match (run_case(&base, case), pending) {
            (Ok(()), None) => {}
            (Ok(()), Some(why)) => {
                eprintln!("corpus {name}: passes now; remove its `pending` line ({why})")
            }
            (Err(e), Some(why)) => eprintln!("corpus {name}: pending ({why}): {e}"),
            (Err(e), None) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) of tests/corpus failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
