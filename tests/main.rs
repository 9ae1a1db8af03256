//! The one integration test binary: the `sluice` binary and the `sluice-engine` library,
//! end to end on generated data.

mod common;

#[cfg(feature = "ballista")]
mod ballista;
mod cli;
mod codecs;
mod config;
mod console;
mod corpus;
mod deploy;
mod differential;
mod estimates;
mod faults;
mod fuzz;
mod guards;
mod layers;
mod newcomer;
mod opens;
mod params;
mod prepared;
mod quality;
mod sampling;
mod serve;
mod stores;
mod tpch;
