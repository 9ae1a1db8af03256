//! Command-line arguments. Parsed once by clap, then turned into engine calls by
//! `commands`; nothing here touches data.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::print::PrintFormat;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Staging and production analytics pipelines on Parquet, in one binary",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// The project folder (default: the nearest folder with a sluice.toml, upward from here)
    #[arg(
        long,
        short = 'C',
        global = true,
        value_name = "DIR",
        env = "SLUICE_PROJECT"
    )]
    pub project: Option<PathBuf>,

    /// Log what the engine does (repeat for more: -vv)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project from the sales_calls example, with demo data in its stores
    Init(InitArgs),
    /// Init a project, then run its pipes in staging and production and compare them
    Quickstart(InitArgs),
    /// List the project's environments
    Envs,
    /// List the sources of an environment: files, row groups, rows, bytes and schema
    Sources(SourcesArgs),
    /// Run one SQL query against an environment's sources
    Query(QueryArgs),
    /// Run a pipe and print its output
    Run(RunArgs),
    /// Show how a pipe is planned (and with --analyze, what each step did)
    Explain(ExplainArgs),
    /// Plan every pipe against each environment's real schemas, without running them
    Validate(ValidateArgs),
    /// Run the pipe tests (tests/*.toml) on the project's fixture data (tests/data)
    Test(crate::quality::TestArgs),
    /// Run the data checks of pipes ([[check]]) and checks/*.sql in an environment
    Check(crate::quality::CheckArgs),
    /// Record the working copy of pipes as the live versions in an environment
    Deploy(crate::deploy::DeployArgs),
    /// Show what a promotion would change: pipes added, changed (with diffs), removed
    Plan(crate::deploy::PlanArgs),
    /// Promote the versions deployed in one environment to another, through the gates
    Promote(crate::deploy::PromoteArgs),
    /// Make the previous (or a given) version of a pipe live again
    Rollback(crate::deploy::RollbackArgs),
    /// The changes recorded in an environment
    History(crate::deploy::HistoryArgs),
    /// The working copy against every environment's live versions
    Status,
    /// Compare a pipe's output: two environments, or two versions on the same data
    Diff(crate::deploy::DiffArgs),
    /// Run a pipe and write its output as a dataset of the environment's store
    Materialize(MaterializeArgs),
    /// Append CSV, NDJSON or Parquet files to a source, checked against its schema
    Ingest(IngestArgs),
    /// Sample builds: fill staging's store from production's data
    Sample(SampleCmdArgs),
    /// Branch environments over another environment's store
    Branch(BranchArgs),
    /// Run pipes repeatedly on one warm session: latency, scan throughput, peak memory
    Bench(crate::bench::BenchArgs),
    /// Generate benchmark data (TPC-H) into an environment's store
    Fixtures(crate::fixtures::FixturesArgs),
    /// Serve an environment's endpoint pipes over HTTP (/v0/pipes/NAME.json, …)
    Serve(ServeArgs),
    /// Access tokens of an environment's endpoints: create, list, revoke
    Token(TokenArgs),
    /// Run statistics of an environment: calls, errors, latency, read throughput per pipe
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The address to listen on (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Serve /v0/sql (read-only queries, admin tokens only) even if the environment
    /// does not enable it
    #[arg(long)]
    pub sql: bool,
    /// Serve the deployed versions even in an environment that is not protected
    #[arg(long)]
    pub deployed: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (printed once; the store keeps only its hash)
    Create(TokenCreateArgs),
    /// List an environment's tokens (names, scopes, pipes; never the tokens)
    List(EnvArg),
    /// Revoke a token by name
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenScope {
    /// Call endpoint pipes
    Read,
    /// Call every pipe and /v0/sql
    Admin,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The token's name (shown in run statistics)
    pub name: String,
    #[command(flatten)]
    pub env: EnvArg,
    #[arg(long, value_enum, default_value_t = TokenScope::Read)]
    pub scope: TokenScope,
    /// Only these endpoint pipes (comma-separated; default: all)
    #[arg(long, value_delimiter = ',', value_name = "PIPE,…")]
    pub pipes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's name
    pub name: String,
    #[command(flatten)]
    pub env: EnvArg,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Only this pipe
    #[arg(long)]
    pub pipe: Option<String>,
    /// Only runs started within this long ago: 30m, 1h, 7d
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    pub since: Option<std::time::Duration>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    sluice_engine::project::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create the project in
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Size of the demo data: 1.0 is 100,000 calls
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seed of the demo data generator
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Which environment a data command works on.
#[derive(Debug, Args, Clone)]
pub struct EnvArg {
    /// The environment (default: staging; a protected one is used only when named)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
}

/// A run's one-time override of the environment's sampling policy.
impl SampleArgs {
    /// The engine's form of these flags.
    pub fn to_override(&self) -> sluice_engine::SampleOverride {
        sluice_engine::SampleOverride {
            full: self.full,
            fraction: self.sample,
            method: self.sample_method.clone(),
            seed: self.seed,
            key: self.sample_key.clone(),
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct SampleArgs {
    /// Read this fraction of the data (for --sample-method rows: this many rows)
    #[arg(long, value_name = "FRACTION")]
    pub sample: Option<f64>,
    /// Sampling method: system, key, bernoulli or rows
    #[arg(long, value_name = "METHOD")]
    pub sample_method: Option<String>,
    /// Key column for --sample-method key (default: each source's sample_key)
    #[arg(long, value_name = "COLUMN")]
    pub sample_key: Option<String>,
    /// Seed of the sample
    #[arg(long)]
    pub seed: Option<u64>,
    /// Read the full set, whatever the environment's policy
    #[arg(long, conflicts_with_all = ["sample", "sample_method", "sample_key"])]
    pub full: bool,
}

/// Where and how results are printed.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = PrintFormat::Table)]
    pub format: PrintFormat,
    /// Write the output to this file instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print at most this many rows
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Don't print the run summary on standard error
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Only these sources
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL query (a SELECT, WITH, VALUES or EXPLAIN)
    pub sql: String,
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub sample: SampleArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipe (the name of its file in pipes/, without .toml)
    pub pipe: String,
    #[command(flatten)]
    pub env: EnvArg,
    /// A parameter value: --param name=value (repeatable)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the version deployed in the environment, not the working copy (always so in
    /// a protected environment)
    #[arg(long)]
    pub deployed: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The pipe
    pub pipe: String,
    #[command(flatten)]
    pub env: EnvArg,
    /// A parameter value: --param name=value (repeatable)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the pipe and show each step's metrics
    #[arg(long)]
    pub analyze: bool,
    /// Explain the version deployed in the environment, not the working copy
    #[arg(long)]
    pub deployed: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only this environment (default: every environment)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}` has no parameter name"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// The pipe (it must have `materialize = { to = "NAME" }`)
    pub pipe: String,
    #[command(flatten)]
    pub env: EnvArg,
    /// A parameter value: --param name=value (repeatable)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the version deployed in the environment (always so in a protected one)
    #[arg(long)]
    pub deployed: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Who is writing (default: the OS user)
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The source to append to
    pub source: String,
    /// CSV, NDJSON (.ndjson/.jsonl/.json) or Parquet files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub env: EnvArg,
    /// Refuse the whole batch if any row does not fit the source's schema
    #[arg(long)]
    pub strict: bool,
    /// Who is writing (default: the OS user)
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct SampleCmdArgs {
    #[command(subcommand)]
    pub command: SampleCommand,
}

#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// Fill an environment's store with a key sample of another's data
    Build(SampleBuildArgs),
}

#[derive(Debug, Args)]
pub struct SampleBuildArgs {
    /// The environment whose data is sampled
    #[arg(long, value_name = "ENV", default_value = "production")]
    pub from: String,
    /// The environment whose store is filled (never a protected one)
    #[arg(long, value_name = "ENV", default_value = "staging")]
    pub to: String,
    /// Fraction of key values kept (default: the target's sample fraction, else 0.1)
    #[arg(long)]
    pub fraction: Option<f64>,
    /// Key column (default: each source's sample_key)
    #[arg(long, value_name = "COLUMN")]
    pub key: Option<String>,
    /// Seed of the sample (default: the target's sample seed, else 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Who is writing (default: the OS user)
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct BranchArgs {
    #[command(subcommand)]
    pub command: BranchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BranchCommand {
    /// Create an environment that reads its parent's store without copying it
    Create(BranchCreateArgs),
    /// Delete a branch and what it wrote (never its parent's data)
    Delete(BranchDeleteArgs),
    /// List the branches
    List,
}

#[derive(Debug, Args)]
pub struct BranchCreateArgs {
    /// The branch's name
    pub name: String,
    /// The environment it branches from
    #[arg(long, value_name = "ENV", default_value = "production")]
    pub from: String,
    /// Where its own store goes (default: .sluice/branches/NAME/data in the project)
    #[arg(long, value_name = "PATH_OR_URL")]
    pub data: Option<String>,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Who is creating it (default: the OS user)
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct BranchDeleteArgs {
    /// The branch to delete
    pub name: String,
}
