//! Branch environments as the project defines them: an environment that reads its parent's store without copying
//! it. Its own store overlays the parent's — sources it writes or ingests are its own,
//! the rest fall through — and it has its own deployments and sampling policy. This is
//! how a change is tried on production data without touching production.
//!
//! A branch is a file `.sluice/branches/NAME.toml` in the project (local state, like a
//! git branch that was not pushed); its store defaults to `.sluice/branches/NAME/data`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Problem;
use crate::project::Environment;
use crate::project::load::{SourceText, files_with_extension, parse_policy};
use crate::project::location::{StorageSettings, StoreLocation};
use crate::project::sampling::SamplePolicy;

/// Where branch definitions live, under the project root.
pub const BRANCHES_DIR: &str = ".sluice/branches";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchFile {
    pub parent: String,
    pub data: String,
    /// `"full"` or a policy table, as in `sluice.toml`.
    pub sample: toml::Value,
    pub created_at: String,
    pub created_by: String,
    /// Set when `sluice branch delete` starts (the time): a delete that was interrupted
    /// leaves the branch unusable until it is run again and finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<String>,
}

/// A branch as loaded: its environment, and when its deletion started if it is being
/// deleted.
pub struct LoadedBranch {
    pub env: Environment,
    pub deleting: Option<String>,
}

/// The definition file of branch `name`.
pub fn branch_file(root: &Path, name: &str) -> PathBuf {
    root.join(BRANCHES_DIR).join(format!("{name}.toml"))
}

/// The branches of a project, as environments. Problems are reported like those of
/// `sluice.toml`, with the branch file's line.
pub fn load_branches(
    root: &Path,
    environments: &BTreeMap<String, Environment>,
    problems: &mut Vec<Problem>,
) -> Vec<LoadedBranch> {
    let dir = root.join(BRANCHES_DIR);
    let Ok(files) = files_with_extension(&dir, "toml") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    file: path.clone(),
                    line: 1,
                    column: 1,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let file = SourceText {
            path: &path,
            text: &text,
        };
        let raw: BranchFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                problems.push(file.parse_error(e));
                continue;
            }
        };
        let at = |message: String| file.problem(0, message);
        if environments.contains_key(&name) {
            problems.push(at(format!(
                "branch `{name}` has the name of an environment of sluice.toml"
            )));
            continue;
        }
        let Some(parent) = environments.get(&raw.parent) else {
            problems.push(at(format!(
                "branch `{name}`: its parent environment `{}` is not in sluice.toml",
                raw.parent
            )));
            continue;
        };
        let location = match StoreLocation::parse(&raw.data, root) {
            Ok(l) => l,
            Err(m) => {
                problems.push(at(format!("branch `{name}`: {m}")));
                continue;
            }
        };
        let sample = match parse_policy(&raw.sample) {
            Ok(p) => p,
            Err(m) => {
                problems.push(at(format!("branch `{name}`: {m}")));
                continue;
            }
        };
        out.push(LoadedBranch {
            env: branch_environment(&name, parent, location, raw.data, sample),
            deleting: raw.deleting,
        });
    }
    out
}

/// The environment of a branch of `parent` whose store is at `location`.
pub fn branch_environment(
    name: &str,
    parent: &Environment,
    location: StoreLocation,
    data: String,
    sample: Option<SamplePolicy>,
) -> Environment {
    // A branch store on the parent's service uses the parent's credentials.
    let storage = if location.scheme() == parent.location.scheme() {
        parent.storage.clone()
    } else {
        StorageSettings::default()
    };
    Environment {
        name: name.to_string(),
        data,
        location,
        storage,
        sample,
        protected: false,
        settings: parent.settings.clone(),
        engine: parent.engine.clone(),
        serve: parent.serve.clone(),
        parent: Some(Box::new(parent.clone())),
    }
}

/// A policy as it is written in `sluice.toml`.
pub fn policy_value(policy: Option<&SamplePolicy>) -> toml::Value {
    let Some(p) = policy else {
        return toml::Value::String("full".into());
    };
    let mut t = toml::Table::new();
    t.insert("method".into(), p.method().into());
    match p {
        SamplePolicy::Rows { rows, .. } => {
            t.insert("rows".into(), (*rows as i64).into());
        }
        _ => {
            t.insert("fraction".into(), p.fraction().unwrap_or(1.0).into());
        }
    }
    t.insert("seed".into(), (p.seed() as i64).into());
    if let SamplePolicy::Key { key: Some(k), .. } = p {
        t.insert("key".into(), k.clone().into());
    }
    toml::Value::Table(t)
}
