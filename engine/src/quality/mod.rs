//! Judging pipes: their data checks (`checks`) in an environment and their pipe tests
//! (`pipe_tests`) on the project's fixture data, as commands and as promotion gates.
//! What is checked is defined in `project::checks` and `project::pipe_tests`.

pub mod cells;
pub mod checks;
pub mod pipe_tests;
