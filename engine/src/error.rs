//! The engine's one error type. Each variant names what is at fault (file and line,
//! environment, source, pipe, node or parameter) and knows which exit code and, later,
//! which HTTP status it stands for.

use std::fmt;
use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// One problem found in a project file, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// What kind of failure an error is: a user's input or configuration (exit 2), or a
/// run that failed on real data (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Usage,
    Run,
    /// The run needed more memory than the environment's pool allows: a run failure
    /// on the command line, "over capacity" (503) when serving.
    Exhausted,
}

#[derive(Debug, thiserror::Error)]
pub enum SluiceError {
    #[error("{}", format_problems(.problems))]
    Config { problems: Vec<Problem> },

    #[error("no sluice.toml in {} or any parent folder (create one with `sluice new DIR`, or `sluice init DIR` for the example)", .dir.display())]
    NoProject { dir: PathBuf },

    #[error("unknown environment `{name}` (known: {})", .known.join(", "))]
    UnknownEnvironment { name: String, known: Vec<String> },

    #[error("environment `{env}` is protected: name it explicitly with `--env {env}` to use it")]
    ProtectedEnvironment { env: String },

    #[error("unknown pipe `{name}` (known: {})", if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
    UnknownPipe { name: String, known: Vec<String> },

    #[error("pipe `{pipe}`: parameter `{param}`: {message}")]
    Param {
        pipe: String,
        param: String,
        message: String,
    },

    #[error("invalid sampling override: {0}")]
    SampleOverride(String),

    /// `hint`: how to fill it (`; fill it with …`), or empty.
    #[error("environment `{env}`: source `{source_name}` has no data at {path}{hint}")]
    MissingSource {
        env: String,
        source_name: String,
        path: String,
        hint: String,
    },

    #[error(
        "environment `{env}`: source `{source_name}`: {file} is not a valid Parquet file: {message}"
    )]
    InvalidParquet {
        env: String,
        source_name: String,
        file: String,
        message: String,
    },

    #[error("environment `{env}`: source `{source_name}`: {message}")]
    Source {
        env: String,
        source_name: String,
        message: String,
    },

    #[error("environment `{env}`: pipe `{pipe}`, node `{node}`: {message}")]
    Node {
        env: String,
        pipe: String,
        node: String,
        message: String,
        class: ErrorClass,
    },

    #[error("environment `{env}`: {message}")]
    Query {
        env: String,
        message: String,
        class: ErrorClass,
    },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("environment `{env}`: {message}")]
    State { env: String, message: String },

    #[error(
        "environment `{env}` is locked by {holder}: another change is under way (lock file {path})"
    )]
    Locked {
        env: String,
        holder: String,
        path: String,
    },

    #[error("{message}")]
    Blocked { message: String },

    /// A store could not be read or written: unreachable, refused, missing bucket.
    #[error("environment `{env}`: store {url}: {message}")]
    Storage {
        env: String,
        url: String,
        message: String,
    },

    /// A store's settings are wrong or incomplete (a credential variable not set, say).
    #[error("environment `{env}`: store {url}: {message}")]
    StorageConfig {
        env: String,
        url: String,
        message: String,
    },

    #[error("environment `{env}`: dataset `{dataset}` is being written by {holder} (lock {path})")]
    DatasetLocked {
        env: String,
        dataset: String,
        holder: String,
        path: String,
    },

    /// The environment's engine (a Ballista cluster) is unreachable, lost, or cannot
    /// run what was asked.
    #[error("environment `{env}`: engine {url}: {message}")]
    Engine {
        env: String,
        url: String,
        message: String,
        class: ErrorClass,
    },

    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl SluiceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SluiceError::Config { .. }
            | SluiceError::NoProject { .. }
            | SluiceError::UnknownEnvironment { .. }
            | SluiceError::ProtectedEnvironment { .. }
            | SluiceError::UnknownPipe { .. }
            | SluiceError::Param { .. }
            | SluiceError::SampleOverride(_)
            | SluiceError::StorageConfig { .. }
            | SluiceError::Usage(_) => ErrorClass::Usage,
            SluiceError::Node { class, .. }
            | SluiceError::Query { class, .. }
            | SluiceError::Engine { class, .. } => *class,
            SluiceError::MissingSource { .. }
            | SluiceError::InvalidParquet { .. }
            | SluiceError::Source { .. }
            | SluiceError::Io { .. }
            | SluiceError::State { .. }
            | SluiceError::Locked { .. }
            | SluiceError::Blocked { .. }
            | SluiceError::Storage { .. }
            | SluiceError::DatasetLocked { .. }
            | SluiceError::DataFusion(_) => ErrorClass::Run,
        }
    }

    /// The process exit code this error stands for: 2 for usage or configuration, 1 for a
    /// run that failed.
    pub fn exit_code(&self) -> i32 {
        match self.class() {
            ErrorClass::Usage => 2,
            ErrorClass::Run | ErrorClass::Exhausted => 1,
        }
    }

    /// The HTTP status this error stands for when a request caused it: 400 for a bad
    /// parameter or query, 404 for an unknown pipe, 503 when the store or the memory
    /// pool cannot serve it now, 500 for real faults.
    pub fn http_status(&self) -> u16 {
        match self {
            SluiceError::UnknownPipe { .. } => 404,
            SluiceError::Storage { .. } | SluiceError::Locked { .. } => 503,
            SluiceError::Node { class, .. } | SluiceError::Query { class, .. } => match class {
                ErrorClass::Usage => 400,
                ErrorClass::Exhausted => 503,
                ErrorClass::Run => 500,
            },
            SluiceError::DataFusion(e) => match classify(e) {
                ErrorClass::Usage => 400,
                ErrorClass::Exhausted => 503,
                ErrorClass::Run => 500,
            },
            other => match other.class() {
                ErrorClass::Usage => 400,
                _ => 500,
            },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SluiceError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for SluiceError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        SluiceError::DataFusion(e.into())
    }
}

impl From<datafusion::parquet::errors::ParquetError> for SluiceError {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        SluiceError::DataFusion(e.into())
    }
}

fn format_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    if problems.len() > 1 {
        out.push_str(&format!("{} problems in the project:\n", problems.len()));
    }
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    out
}

/// Classifies a DataFusion error raised while planning or running SQL: planning and
/// schema errors are the user's SQL (usage), the rest are run failures.
pub(crate) fn classify(err: &DataFusionError) -> ErrorClass {
    match err.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(_, _)
        | DataFusionError::SchemaError(_, _)
        | DataFusionError::NotImplemented(_) => ErrorClass::Usage,
        DataFusionError::ResourcesExhausted(_) => ErrorClass::Exhausted,
        _ => ErrorClass::Run,
    }
}

/// DataFusion's messages carry a "Error during planning:" style prefix; keep the message
/// but drop the noise of nested context wrappers. An error of a Parquet file's data (a
/// corrupt page) is prefixed by the file as the user knows it (`scan_files`).
pub(crate) fn df_message(err: &DataFusionError) -> String {
    let root = err.find_root().to_string();
    match scan_files::file_of(err) {
        Some(file) => format!("{file}: {root}"),
        None => root,
    }
}

/// The files runs are reading, by the path a run's scan sees each at (`sluice://scan`'s
/// `s12/f000003.parquet`), with what a user knows them by (`source `calls`: /data/…`).
/// A scan's error of a file's data carries only the path it saw (DataFusion's Parquet
/// opener, vendored, adds it: `PARQUET_FILE_CONTEXT`); `df_message` names the file from
/// here. A run's snapshot (`store::snapshot`) adds its files when it registers a source
/// and removes them when it is dropped.
pub(crate) mod scan_files {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    use datafusion::datasource::physical_plan::parquet::PARQUET_FILE_CONTEXT;
    use datafusion::error::DataFusionError;

    static NAMES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

    fn names() -> std::sync::MutexGuard<'static, HashMap<String, String>> {
        NAMES.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(seen: String, name: String) {
        names().insert(seen, name);
    }

    pub(crate) fn remove<'a>(seen: impl IntoIterator<Item = &'a str>) {
        let mut names = names();
        for s in seen {
            names.remove(s);
        }
    }

    /// The file an error of a scan's data names, as the user knows it (the path the
    /// scan saw when the run is gone).
    pub(crate) fn file_of(err: &DataFusionError) -> Option<String> {
        let mut at: &(dyn std::error::Error + 'static) = err;
        loop {
            let e = at.downcast_ref::<DataFusionError>().or_else(|| {
                at.downcast_ref::<std::sync::Arc<DataFusionError>>()
                    .map(|a| a.as_ref())
            });
            if let Some(DataFusionError::Context(context, _)) = e
                && let Some(seen) = context.strip_prefix(PARQUET_FILE_CONTEXT)
            {
                return Some(
                    names()
                        .get(seen)
                        .cloned()
                        .unwrap_or_else(|| seen.to_string()),
                );
            }
            at = at.source()?;
        }
    }

    #[cfg(test)]
    mod tests {
        use std::sync::Arc;

        use datafusion::arrow::error::ArrowError;

        use super::*;
        use crate::error::df_message;

        fn decoding_error(seen: &str) -> DataFusionError {
            DataFusionError::ArrowError(Box::new(ArrowError::ParquetError("bad page".into())), None)
                .context(format!("{PARQUET_FILE_CONTEXT}{seen}"))
        }

        #[test]
        fn an_error_of_a_files_data_names_the_file_as_the_user_knows_it() {
            add(
                "s999001/f000002.parquet".into(),
                "source `t`: /d/t/p.parquet".into(),
            );
            let plain = decoding_error("s999001/f000002.parquet");
            // A hash join's build side hands its error to every probe as `Shared`.
            let shared =
                DataFusionError::Shared(Arc::new(decoding_error("s999001/f000002.parquet")));
            for err in [&plain, &shared] {
                let message = df_message(err);
                assert!(
                    message.starts_with("source `t`: /d/t/p.parquet: "),
                    "{message}"
                );
                assert!(message.ends_with("bad page"), "{message}");
            }
            remove(["s999001/f000002.parquet"]);
            // Once the run is gone, the path the scan saw.
            assert!(df_message(&plain).starts_with("s999001/f000002.parquet: "));
            // Any other error is its root message alone.
            let other = DataFusionError::Execution("boom".into()).context("elsewhere");
            assert_eq!(df_message(&other), "Execution error: boom");
        }
    }
}

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;
