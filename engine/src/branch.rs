//! Creating and deleting branch environments (defined in `project::branch`): an
//! environment that reads its parent's store without copying it. Deleting one removes
//! what its own store holds and nothing else: a store that overlaps another
//! environment's, or that does not carry the branch's own marker, is refused.
//!
//! A delete cannot remove many objects in one step, so it is made safe to interrupt:
//! the branch file first records that the delete started (from then on the branch is
//! refused to every command but `branch delete`, so nothing reads a half store), then
//! the store's objects go, the marker last (a store still holding objects always has
//! it, so running the delete again may finish it), then the branch file.

use crate::error::{Result, SluiceError};
use crate::project::branch::{
    BRANCHES_DIR, BranchFile, branch_environment, branch_file, policy_value,
};
use crate::project::location::StoreLocation;
use crate::project::sampling::{SampleOverride, SamplePolicy};
use crate::project::{Environment, Project, is_identifier};
use crate::store::Store;

/// The object in a branch's own store that says whose store it is: written when the
/// branch is created, checked before it is deleted.
pub const BRANCH_MARKER: &str = "_sluice/branch.json";

/// The environment (or branch) of `project` whose store overlaps `location`, other
/// than `except`.
fn overlapping<'a>(
    project: &'a Project,
    location: &StoreLocation,
    except: Option<&str>,
) -> Option<&'a Environment> {
    project
        .environments
        .values()
        .chain(project.deleting_branches.values().map(|(e, _)| e))
        .filter(|e| Some(e.name.as_str()) != except)
        .find(|e| e.location.overlaps(location))
}

/// Creates a branch of `parent` and returns it. `data` is where its own store goes
/// (default `.sluice/branches/NAME/data`); its sampling policy is the parent's with
/// `sample` applied. The store must not overlap the store of any environment or branch
/// of the project.
pub async fn create(
    project: &Project,
    name: &str,
    parent: &str,
    sample: &SampleOverride,
    data: Option<&str>,
    actor: &str,
) -> Result<Environment> {
    if !is_identifier(name) {
        return Err(SluiceError::Usage(format!(
            "branch name `{name}` must be letters, digits, `_` or `-`"
        )));
    }
    if project.environments.contains_key(name) || project.deleting_branches.contains_key(name) {
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
    let policy: Option<SamplePolicy> = sample
        .apply(parent_env.sample.as_ref())
        .map_err(SluiceError::SampleOverride)?;
    let sample = policy.as_ref();
    let data = data
        .map(str::to_string)
        .unwrap_or_else(|| format!("{BRANCHES_DIR}/{name}/data"));
    let location = StoreLocation::parse(&data, &project.root).map_err(SluiceError::Usage)?;
    if let Some(other) = overlapping(project, &location, None) {
        return Err(SluiceError::Usage(format!(
            "branch `{name}`: its store {location} overlaps the store of environment `{}` ({}): a branch needs a store of its own",
            other.name, other.location
        )));
    }
    let env = branch_environment(name, parent_env, location, data.clone(), sample.cloned());
    // The marker goes in first: a store without it is never deleted as this branch's.
    let store = Store::open(&env)?;
    let marker = serde_json::json!({
        "branch": name,
        "parent": parent,
        "project": project.root.display().to_string(),
        "created_at": crate::util::clock::now(),
    });
    store
        .put(BRANCH_MARKER, marker.to_string().into_bytes().into())
        .await?;
    let file = BranchFile {
        parent: parent.to_string(),
        data,
        sample: policy_value(sample),
        created_at: crate::util::clock::now(),
        created_by: actor.to_string(),
        deleting: None,
    };
    let path = branch_file(&project.root, name);
    let text = toml::to_string(&file).expect("branch file serializes");
    crate::util::fs::write_atomic(&path, text.as_bytes())?;
    Ok(env)
}

/// Deletes a branch: what its own store holds (its sources, deployments, state) and
/// its definition. The parent's store is not touched, and a store that overlaps any
/// other environment's, or does not carry this branch's marker, is refused. Returns the
/// objects deleted.
pub async fn delete(project: &Project, name: &str) -> Result<usize> {
    // A branch whose delete was interrupted is deleted again, to finish.
    let env = match project.deleting_branches.get(name) {
        Some((env, _)) => env,
        None => project.environment(name)?,
    };
    if !env.is_branch() {
        return Err(SluiceError::Usage(format!(
            "`{name}` is not a branch (an environment of sluice.toml is never deleted by sluice)"
        )));
    }
    let path = branch_file(&project.root, name);
    if let Some(other) = overlapping(project, &env.location, Some(name)) {
        return Err(SluiceError::Usage(format!(
            "branch `{name}`: its store {} overlaps the store of environment `{}` ({}): nothing deleted (remove {} by hand to forget the branch)",
            env.location,
            other.name,
            other.location,
            path.display()
        )));
    }
    let store = Store::open(env)?;
    let marker: Option<serde_json::Value> = store
        .get(BRANCH_MARKER)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let marked = marker
        .as_ref()
        .is_some_and(|m| m["branch"].as_str() == Some(name));
    let objects = store.list("").await?;
    // Branches made before markers existed: only their default store, inside the
    // project's own `.sluice/branches/NAME/`, is theirs for certain.
    let default_store = StoreLocation::parse(&format!("{BRANCHES_DIR}/{name}"), &project.root)
        .is_ok_and(|d| d.contains(&env.location));
    // A store with nothing in it has nothing to lose: an interrupted delete that removed
    // the marker (the last object) is finished by removing the branch file.
    if !marked && !(marker.is_none() && (default_store || objects.is_empty())) {
        return Err(SluiceError::Usage(format!(
            "branch `{name}`: the store {} does not carry this branch's marker ({BRANCH_MARKER}): nothing deleted (remove {} by hand to forget the branch)",
            env.location,
            path.display()
        )));
    }
    // From here the branch is being deleted: no command but this one uses it.
    mark_deleting(&path)?;
    let mut deleted = 0;
    for (i, (rel, _)) in objects.iter().enumerate() {
        if rel == BRANCH_MARKER {
            continue;
        }
        if i == objects.len() / 2 {
            crate::util::failpoint::hit("branch_delete:midway");
        }
        store.delete(rel).await?;
        deleted += 1;
    }
    crate::util::failpoint::hit("branch_delete:after_objects");
    // The marker last: it says whose store this is for as long as anything is left.
    if marker.is_some() {
        store.delete(BRANCH_MARKER).await?;
        deleted += 1;
    }
    if let Some(dir) = env.location.local_dir() {
        // Local stores keep empty folders behind; remove them (best effort).
        let _ = std::fs::remove_dir_all(dir);
    }
    crate::util::failpoint::hit("branch_delete:before_file");
    std::fs::remove_file(&path).map_err(|e| SluiceError::io(&path, e))?;
    Ok(deleted)
}

/// Records in the branch file that its delete has started (kept if already recorded).
fn mark_deleting(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| SluiceError::io(path, e))?;
    let mut file: BranchFile = toml::from_str(&text)
        .map_err(|e| SluiceError::Usage(format!("{}: {}", path.display(), e.message())))?;
    if file.deleting.is_some() {
        return Ok(());
    }
    file.deleting = Some(crate::util::clock::now());
    let text = toml::to_string(&file).expect("branch file serializes");
    crate::util::fs::write_atomic(path, text.as_bytes())
}
