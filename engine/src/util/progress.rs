//! Progress of a long operation (a generation, an ingest, a materialization, a bench, a
//! promotion's gates), reported to a callback the caller draws as it likes: the engine
//! prints nothing.

/// What a progress count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressUnit {
    Bytes,
    Rows,
    /// Files, runs, gates: whole steps.
    Steps,
}

/// Where an operation is: `done` of `total` (unknown: `None`) units, at `message`.
#[derive(Debug, Clone)]
pub struct Progress {
    pub message: String,
    pub done: u64,
    pub total: Option<u64>,
    pub unit: ProgressUnit,
}

impl Progress {
    pub fn new(
        message: impl Into<String>,
        done: u64,
        total: Option<u64>,
        unit: ProgressUnit,
    ) -> Self {
        Progress {
            message: message.into(),
            done,
            total,
            unit,
        }
    }
}

/// A progress callback.
pub type OnProgress<'a> = &'a (dyn Fn(&Progress) + Sync);

/// The callback of a caller that shows no progress.
pub fn no_progress(_: &Progress) {}
