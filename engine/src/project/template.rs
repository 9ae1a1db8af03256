//! The files of a new, empty project (`sluice new DIR`): a commented `sluice.toml` with
//! a staging and a production environment and one source, an example pipe over that
//! source, `tests/` and `checks/` with what goes in them, and a `.gitignore` for the
//! stores. No data: the user's own comes in with `sluice ingest`.

use std::path::{Path, PathBuf};

use crate::error::{Result, SluiceError};
use crate::project::PROJECT_FILE;

/// The source a new project declares when none is named.
pub const DEFAULT_SOURCE: &str = "events";

/// What `write_new_project` wrote.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub dir: PathBuf,
    pub name: String,
    pub source: String,
    pub pipe: String,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
}

/// The example pipe's name for a source.
pub fn example_pipe(source: &str) -> String {
    format!("{source}_preview")
}

/// The project name a folder gives: its last component, as a TOML-safe word.
fn project_name(dir: &Path) -> String {
    let base = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "analytics".into()
    } else {
        name
    }
}

/// Checks a source name for a new project: a lowercase SQL identifier, so the pipes
/// read it unquoted.
pub fn check_source_name(source: &str) -> Result<()> {
    let plain = source.starts_with(|c: char| c.is_ascii_lowercase())
        && source
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(SluiceError::Usage(format!(
            "--source `{source}`: a source name is a lowercase identifier (letters, digits and _, not starting with a digit or _), e.g. page_views"
        )));
    }
    Ok(())
}

/// The files of a new project, relative to its folder.
pub fn new_project_files(name: &str, source: &str) -> Vec<(String, String)> {
    let pipe = example_pipe(source);
    vec![
        (PROJECT_FILE.to_string(), sluice_toml(name, source)),
        (format!("pipes/{pipe}.toml"), pipe_toml(source, &pipe)),
        ("tests/README.md".to_string(), tests_readme(source, &pipe)),
        ("checks/README.md".to_string(), checks_readme(source)),
        // The stores are data, not code; .sluice/ holds local state (branches, the
        // shell's history). tests/data, the pipe tests' fixtures, is meant to be committed.
        (".gitignore".to_string(), "/data/\n/.sluice/\n".to_string()),
    ]
}

/// Writes a new project into `dir` (created if missing). Refuses a folder that holds a
/// project or any of the files it would write, before writing anything; a failed write
/// removes what it wrote.
pub fn write_new_project(dir: &Path, source: &str) -> Result<NewProject> {
    check_source_name(source)?;
    if dir.join(PROJECT_FILE).exists() {
        return Err(SluiceError::Usage(format!(
            "{} already holds a project (sluice.toml exists)",
            dir.display()
        )));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(SluiceError::Usage(format!(
            "{} exists and is not a folder",
            dir.display()
        )));
    }
    let name = project_name(dir);
    let files = new_project_files(&name, source);
    if let Some((rel, _)) = files.iter().find(|(rel, _)| dir.join(rel).exists()) {
        return Err(SluiceError::Usage(format!(
            "{} exists: `sluice new` writes only into a folder without its files",
            dir.join(rel).display()
        )));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (rel, text) in &files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                // Remember each folder this call creates, to remove it on failure.
                let mut missing = Vec::new();
                let mut p = parent;
                while !p.as_os_str().is_empty() && !p.exists() {
                    missing.push(p.to_path_buf());
                    match p.parent() {
                        Some(q) => p = q,
                        None => break,
                    }
                }
                std::fs::create_dir_all(parent).map_err(|e| SluiceError::io(parent, e))?;
                made_dirs.extend(missing.into_iter().rev());
            }
            crate::util::fs::write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(())
    })();
    if let Err(e) = result {
        for f in written.iter().rev() {
            let _ = std::fs::remove_file(f);
        }
        for d in made_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        return Err(e);
    }
    Ok(NewProject {
        dir: dir.to_path_buf(),
        name,
        source: source.to_string(),
        pipe: example_pipe(source),
        files: files.into_iter().map(|(rel, _)| rel).collect(),
    })
}

fn sluice_toml(name: &str, source: &str) -> String {
    format!(
        r#"# The {name} project: SQL pipes (pipes/*.toml) over Parquet sources, run in a staging
# and a production environment, each with its own store.
#
# Fill production with your data, then staging with a sample of it:
#   sluice ingest {source} FILE --env production    # CSV, NDJSON or Parquet; repeatable
#   sluice sample build                               # staging: a sample of production
# (or ingest straight into staging: sluice ingest {source} FILE)

[project]
name = "{name}"

# Staging reads a 10% sample of its store: whole row groups, so ~10% of the bytes.
# For analysis per entity (user, account), sample by key instead: every row of a kept
# key stays, in every source, so joins on the key stay whole:
#   sample = {{ method = "key", key = "user_id", fraction = 0.1, seed = 7 }}
[environments.staging]
data = "data/staging"            # a folder relative to the project (../shared/data works),
                                 # or an s3://, gs://, az:// URL
sample = {{ method = "system", fraction = 0.1, seed = 7 }}

# Production reads the full set, is used only when named (--env production) and runs
# deployed versions only: sluice deploy (to staging), then sluice promote.
[environments.production]
data = "data/production"
protected = true
# memory_limit = "4GiB"          # queries spill or fail beyond this

# A source is a folder of Parquet files in each store; `sluice ingest` writes them.
[sources.{source}]
# path = "{source}"              # its folder in the store (default: its name)
# sample_key = "user_id"         # the column key sampling and sample builds hash
# sort = ["ts"]                  # the declared order of rows within each file
# sample = "full"                # read it whole in every environment (small tables)
"#
    )
}

fn pipe_toml(source: &str, pipe: &str) -> String {
    format!(
        r#"# A pipe: SQL nodes, each reading sources and earlier nodes by name; the last is the
# output. Run it: sluice run {pipe} [--param limit=5] [--env production]
description = "The first rows of {source}: make it your own"
endpoint = true                  # `sluice serve` serves it as /v0/pipes/{pipe}.json

# Parameters are typed, checked and bound as values ($limit), never spliced into SQL.
[params.limit]
type = "int"
default = 10
min = 1
max = 1000

[[node]]
name = "preview"
sql = "SELECT * FROM {source} LIMIT $limit"

# A second node reads the first by name, e.g.:
# [[node]]
# name = "daily"
# sql = "SELECT date_trunc('day', ts) AS day, count(*) AS n FROM preview GROUP BY 1 ORDER BY 1"

# Data checks of the output, run by `sluice check` and as a gate of `sluice promote`:
[[check]]
row_count = {{ min = 1 }}
"#
    )
}

fn tests_readme(source: &str, pipe: &str) -> String {
    format!(
        r#"# Pipe tests

Each `tests/*.toml` file lists `[[case]]`s: a pipe, its parameters, and what must come
out, on the fixture data in `tests/data/` (one folder per source, read in full; small
enough to commit). `sluice test` runs them, and `sluice promote` runs them as a gate.

Write a few fixture rows from staging (the folders are created for you):

    sluice query "SELECT * FROM {source} LIMIT 20" -f parquet -o tests/data/{source}/part-0.parquet

Write a case without `expect_rows`, see what the pipe returns on the fixtures with
`sluice run {pipe} --fixtures`, then let `sluice test --update` fill `expect_rows` with the
current output:

```toml
# tests/{pipe}.toml
[[case]]
name = "three rows"
pipe = "{pipe}"
params = {{ limit = 3 }}
expect_rows = []

[[case]]
name = "a limit of zero is refused"
pipe = "{pipe}"
params = {{ limit = 0 }}
expect_error = "below the minimum"
```
"#
    )
}

fn checks_readme(source: &str) -> String {
    format!(
        r#"# SQL checks

Each `checks/NAME.sql` is a query over an environment's sources that returns the rows
that are wrong, so it must return none. `sluice check` runs them (in staging, on its
sample), and `sluice promote` runs them as a gate. For example:

```sql
-- checks/{source}_have_ids.sql
SELECT * FROM {source} WHERE id IS NULL
```
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_lowercase_identifiers() {
        assert!(check_source_name("page_views").is_ok());
        for bad in ["PageViews", "1x", "_x", "a-b", "", "a b"] {
            assert!(check_source_name(bad).is_err(), "{bad}");
        }
    }
}
