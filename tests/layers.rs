//! The layer order of the workspace, checked from the sources: each module of
//! `sluice-engine` uses only modules of its own layer or the layers below it (README,
//! "Architecture"; `engine/src/lib.rs` lists the layers), and the binary knows no store
//! layout. A `crate::` path to a module above is a failure naming the file and line.

use std::path::{Path, PathBuf};

/// The engine's top-level modules, by layer (0 is the bottom).
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("testing", 0),
    ("util", 0),
    ("project", 1),
    ("store", 2),
    ("scan", 3),
    ("optimizer", 4),
    ("session", 5),
    ("deploy", 6),
    ("quality", 6),
    ("fidelity", 6),
    ("ingest", 6),
    ("materialize", 6),
    ("sample_store", 6),
    ("stats", 6),
    ("branch", 6),
    ("bench", 6),
    ("fixtures", 6),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level module a file of `engine/src` belongs to (`lib.rs` has none).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib").then_some(name)
}

/// The modules a line names through `crate::NAME`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `sluice_engine::…` in doc comments is another crate; `crate::` only.
        if !rest[..i].ends_with('_') && !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out
}

#[test]
fn engine_modules_use_only_their_layer_and_those_below() {
    let src = workspace().join("engine/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            unknown.push(file.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for used in crate_paths(code) {
                match layer_of(&used) {
                    Some(l) if l > own => violations.push(format!(
                        "{}:{}: `{module}` (layer {own}) uses `crate::{used}` (layer {l}): {}",
                        file.strip_prefix(workspace()).unwrap().display(),
                        n + 1,
                        code
                    )),
                    Some(_) => {}
                    None => unknown.push(format!(
                        "{}:{}: `crate::{used}` is no module of the layer table",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from the layer table (tests/layers.rs, engine/src/lib.rs, README):\n{}",
        unknown.join("\n")
    );
    assert!(
        violations.is_empty(),
        "imports that point up a layer:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_checker_sees_an_upward_import() {
    assert_eq!(crate_paths("use crate::session::EnvSession;"), ["session"]);
    assert_eq!(
        crate_paths("let x = crate::store::open(crate::project::y);"),
        ["store", "project"]
    );
    assert!(crate_paths("use sluice_engine::crate_x;").is_empty());
    assert!(layer_of("session") > layer_of("store"));
}

#[test]
fn the_binary_knows_no_store_layout() {
    let mut files = Vec::new();
    rust_files(&workspace().join("cli/src"), &mut files);
    rust_files(&workspace().join("serve/src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if line.contains("\"_sluice") || line.contains("_sluice/") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the store layout belongs to the engine (store/, project/system_tables.rs):\n{}",
        found.join("\n")
    );
}
