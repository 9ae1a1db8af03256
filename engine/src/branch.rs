//! Branch environments: an environment that reads its parent's store without copying
//! it. Its own store overlays the parent's — sources it writes or ingests are its own,
//! the rest fall through — and it has its own deployments and sampling policy. This is
//! how a change is tried on production data without touching production.
//!
//! A branch is a file `.sluice/branches/NAME.toml` in the project (local state, like a
//! git branch that was not pushed); its store defaults to `.sluice/branches/NAME/data`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Problem, Result, SluiceError};
use crate::project::{Environment, Project, SourceText, is_identifier, parse_policy};
use crate::sample::SamplePolicy;
use crate::store::{StorageSettings, Store, StoreLocation};

/// Where branch definitions live, under the project root.
pub const BRANCHES_DIR: &str = ".sluice/branches";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchFile {
    parent: String,
    data: String,
    /// `"full"` or a policy table, as in `sluice.toml`.
    sample: toml::Value,
    created_at: String,
    created_by: String,
}

fn branch_file(root: &Path, name: &str) -> PathBuf {
    root.join(BRANCHES_DIR).join(format!("{name}.toml"))
}

/// The branches of a project, as environments. Problems are reported like those of
/// `sluice.toml`, with the branch file's line.
pub(crate) fn load_branches(
    root: &Path,
    environments: &BTreeMap<String, Environment>,
    problems: &mut Vec<Problem>,
) -> Vec<Environment> {
    let dir = root.join(BRANCHES_DIR);
    let Ok(files) = crate::project::files_with_extension(&dir, "toml") else {
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
        out.push(branch_environment(
            &name, parent, location, raw.data, sample,
        ));
    }
    out
}

fn branch_environment(
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
fn policy_value(policy: Option<&SamplePolicy>) -> toml::Value {
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

/// Creates a branch of `parent` and returns it. `data` is where its own store goes
/// (default `.sluice/branches/NAME/data`); `sample` its sampling policy.
pub fn create(
    project: &Project,
    name: &str,
    parent: &str,
    sample: Option<&SamplePolicy>,
    data: Option<&str>,
    actor: &str,
) -> Result<Environment> {
    if !is_identifier(name) {
        return Err(SluiceError::Usage(format!(
            "branch name `{name}` must be letters, digits, `_` or `-`"
        )));
    }
    if project.environments.contains_key(name) {
        return Err(SluiceError::Usage(format!(
            "environment `{name}` already exists; pick another branch name"
        )));
    }
    let parent_env = project.environment(parent)?;
    if parent_env.is_branch() {
        return Err(SluiceError::Usage(format!(
            "`{parent}` is a branch: branch from an environment of sluice.toml"
        )));
    }
    let data = data
        .map(str::to_string)
        .unwrap_or_else(|| format!("{BRANCHES_DIR}/{name}/data"));
    let location = StoreLocation::parse(&data, &project.root).map_err(SluiceError::Usage)?;
    let overlaps = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
    };
    if overlaps(&location.to_string(), &parent_env.location.to_string()) {
        return Err(SluiceError::Usage(format!(
            "branch `{name}`: its store {location} must not be inside (or contain) the store of `{parent}` ({})",
            parent_env.location
        )));
    }
    let file = BranchFile {
        parent: parent.to_string(),
        data: data.clone(),
        sample: policy_value(sample),
        created_at: crate::deploy::now(),
        created_by: actor.to_string(),
    };
    let path = branch_file(&project.root, name);
    let text = toml::to_string(&file).expect("branch file serializes");
    crate::deploy::write_atomic(&path, text.as_bytes())?;
    Ok(branch_environment(
        name,
        parent_env,
        location,
        data,
        sample.cloned(),
    ))
}

/// Deletes a branch: what its own store holds (its sources, deployments, state) and
/// its definition. The parent's store is not touched. Returns the objects deleted.
pub async fn delete(project: &Project, name: &str) -> Result<usize> {
    let env = project.environment(name)?;
    if !env.is_branch() {
        return Err(SluiceError::Usage(format!(
            "`{name}` is not a branch (an environment of sluice.toml is never deleted by sluice)"
        )));
    }
    let store = Store::open(env)?;
    let deleted = store.delete_all("").await?;
    let path = branch_file(&project.root, name);
    std::fs::remove_file(&path).map_err(|e| SluiceError::io(&path, e))?;
    Ok(deleted)
}
