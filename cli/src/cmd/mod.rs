//! One module per group of commands: each resolves its arguments, calls the engine and
//! prints. Nothing here knows a store's layout or decides a default the engine owns.

pub mod bench;
pub mod data;
pub mod deploy;
pub mod fidelity;
pub mod fixtures;
pub mod init;
pub mod quality;
pub mod serve;
pub mod shell;
pub mod stores;

/// Failures found by a command that ran fine (e.g. `validate` finding broken pipes):
/// reported already, exit 1.
#[derive(Debug)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Failed {}
