//! Small helpers every layer may use: the clock and the acting user, atomic file
//! writes, fault injection for crash tests, and text formatting. Nothing here knows
//! about projects, stores or DataFusion plans.

pub mod clock;
pub mod failpoint;
pub mod fs;
pub mod progress;
pub mod text;
