//! Command-line arguments. Parsed once by clap, then turned into engine calls by
//! `commands`; nothing here touches data.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

    /// Say more: a line per source after a run (-v); engine debug logs too (-vv)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log level of the engine's diagnostics on standard error: error, warn, info, debug,
    /// trace, or a filter such as `sluice_engine=debug` (default: warn; also SLUICE_LOG,
    /// then RUST_LOG)
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Who is acting, as recorded in history and manifests (default: the OS user)
    #[arg(long, global = true, value_name = "NAME", env = "SLUICE_ACTOR")]
    pub actor: Option<String>,

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
    Test(TestArgs),
    /// Run the data checks of pipes ([[check]]) and checks/*.sql in an environment
    Check(CheckArgs),
    /// Record the working copy of pipes as the live versions in an environment
    Deploy(DeployArgs),
    /// Show what a promotion would change: pipes added, changed (with diffs), removed
    Plan(PlanArgs),
    /// Promote the versions deployed in one environment to another, through the gates
    Promote(PromoteArgs),
    /// Make the previous (or a given) version of a pipe live again
    Rollback(RollbackArgs),
    /// The changes recorded in an environment
    History(HistoryArgs),
    /// The working copy against every environment's live versions
    Status,
    /// Compare a pipe's output: two environments, or two versions on the same data
    Diff(DiffArgs),
    /// How far a sampled environment's estimates are from production's answer
    Fidelity(FidelityArgs),
    /// Run a pipe and write its output as a dataset of the environment's store
    Materialize(MaterializeArgs),
    /// Append CSV, NDJSON or Parquet files to a source, checked against its schema
    Ingest(IngestArgs),
    /// Sample builds: fill staging's store from production's data
    Sample(SampleCmdArgs),
    /// Branch environments over another environment's store
    Branch(BranchArgs),
    /// Run pipes repeatedly on one warm session: latency, scan throughput, peak memory
    Bench(BenchArgs),
    /// Generate benchmark data (TPC-H) into an environment's store
    Fixtures(FixturesArgs),
    /// Serve an environment's endpoint pipes over HTTP (/v0/pipes/NAME.json, …)
    Serve(ServeArgs),
    /// A read-only web console: environments, pipes, history, monitoring charts,
    /// staging against production (admin tokens of the environment)
    Ui(UiArgs),
    /// Access tokens of an environment's endpoints: create, list, revoke
    Token(TokenArgs),
    /// Run statistics of an environment: calls, errors, latency, read throughput per pipe
    Stats(StatsArgs),
    /// Create an empty project for your own data: staging and production, one source, an
    /// example pipe, tests/ and checks/
    New(NewArgs),
    /// An interactive SQL shell on an environment's sources (.help for its commands)
    Shell(ShellArgs),
    /// Print a completion script for a shell: bash, zsh, fish, elvish or powershell
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The folder to create the project in (created if missing; must hold no project)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The source the project starts with (a lowercase name such as page_views)
    #[arg(long, value_name = "NAME", default_value = sluice_engine::project::template::DEFAULT_SOURCE)]
    pub source: String,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Output format of results (text formats only; .format changes it)
    #[arg(long, short = 'f', value_enum, default_value_t = PrintFormat::Table)]
    pub format: PrintFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// The access log on standard output, one line per request: `text`, `json` (one
    /// object a line, for machines) or `off`
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: AccessLogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AccessLogFormat {
    Text,
    Json,
    Off,
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The environment whose admin tokens sign in (the console shows every environment)
    #[command(flatten)]
    pub env: EnvArg,
    /// The address to listen on (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub bind: std::net::SocketAddr,
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
    /// The SQL query (a SELECT, WITH, VALUES or EXPLAIN); `-` reads it from standard
    /// input. It may start with a `--` comment.
    #[arg(
        value_name = "SQL",
        allow_hyphen_values = true,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub sql: Option<String>,
    /// Read the query from this file
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// In a sampled run: estimate what the full data would answer, with a 95% interval
    /// (`x`, `x_low`, `x_high` for each count, sum, average or ratio)
    #[arg(long)]
    pub estimate: bool,
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
    /// In a sampled run: estimate what the full data would answer, with a 95% interval
    /// (`x`, `x_low`, `x_high` for each count, sum, average or ratio)
    #[arg(long)]
    pub estimate: bool,
    /// Run on the pipe tests' fixture data (tests/data, read in full) instead of an
    /// environment
    #[arg(long, conflicts_with_all = ["env", "deployed"])]
    pub fixtures: bool,
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
    /// The value of a partition column (a `k=v/` folder of the source) for files that
    /// do not have that column: --partition date=2024-04-01 (repeatable)
    #[arg(long, value_name = "COLUMN=VALUE", value_parser = parse_param)]
    pub partition: Vec<(String, String)>,
    /// Refuse the whole batch if any row does not fit the source's schema
    #[arg(long)]
    pub strict: bool,
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
}

#[derive(Debug, Args)]
pub struct BranchDeleteArgs {
    /// The branch to delete
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Pipes to deploy
    #[arg(value_name = "PIPE", required_unless_present = "all")]
    pub pipes: Vec<String>,
    /// Deploy every pipe
    #[arg(long, conflicts_with = "pipes")]
    pub all: bool,
    /// The environment (default: staging; protected environments take promotions only)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long, default_value = "staging", value_name = "ENV")]
    pub from: String,
    #[arg(long, default_value = "production", value_name = "ENV")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Pipes to promote
    #[arg(value_name = "PIPE", required_unless_present = "all")]
    pub pipes: Vec<String>,
    /// Promote every pipe deployed in the source
    #[arg(long, conflicts_with = "pipes")]
    pub all: bool,
    #[arg(long, default_value = "staging", value_name = "ENV")]
    pub from: String,
    #[arg(long, default_value = "production", value_name = "ENV")]
    pub to: String,
    /// Run the gates only; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Accept breaking changes to live output schemas
    #[arg(long)]
    pub allow_breaking: bool,
    /// Fraction of the target's data the data checks read (default: the target's own
    /// sample policy; an unsampled target is read by a 10% key sample on each source's
    /// sample_key)
    #[arg(long, value_name = "FRACTION")]
    pub sample: Option<f64>,
    /// Confirm a promotion to a protected environment without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The pipe
    pub pipe: String,
    /// The environment
    #[arg(long, short = 'e', value_name = "NAME", required = true)]
    pub env: String,
    /// The version to make live (default: the one before the live version)
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Confirm a rollback in a protected environment without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this pipe
    pub pipe: Option<String>,
    /// The environment (default: staging)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The pipe
    pub pipe: String,
    /// Environment whose run is the base (default: production)
    #[arg(long, value_name = "ENV", conflicts_with = "versions")]
    pub base: Option<String>,
    /// Environment whose run is the head (default: staging)
    #[arg(long, value_name = "ENV", conflicts_with = "versions")]
    pub head: Option<String>,
    /// Compare two versions on the same data of --env: A..B, each a version id,
    /// `live` or `working`
    #[arg(long, value_name = "A..B", requires = "env")]
    pub versions: Option<String>,
    /// The environment whose data both versions run on (with --versions)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
    /// Key columns to join the two outputs on (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub key: Vec<String>,
    /// A parameter value for both runs: --param name=value
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// How many differing rows to show
    #[arg(long, default_value_t = 10)]
    pub sample_rows: usize,
    /// Compare a sampled head with the base as estimates of it: each estimate scaled to
    /// the full data and judged by its 95% interval (or --tolerance)
    #[arg(long, conflicts_with = "versions")]
    pub scaled: bool,
    /// With --scaled: equal when every estimate is within this relative error (5% or 0.05)
    #[arg(long, value_name = "TOLERANCE", value_parser = parse_tolerance, requires = "scaled")]
    pub tolerance: Option<f64>,
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only the cases of these pipes (default: every case of tests/*.toml)
    #[arg(value_name = "PIPE")]
    pub pipes: Vec<String>,
    /// Write each case's current output as its `expect_rows` where they differ (the rest
    /// of each file is kept as written)
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the checks of these pipes (default: every pipe's checks and checks/*.sql)
    #[arg(value_name = "PIPE")]
    pub pipes: Vec<String>,
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The pipes to run (or --all)
    #[arg(value_name = "PIPE", required_unless_present = "all")]
    pub pipes: Vec<String>,
    /// Every pipe of the project
    #[arg(long, conflicts_with = "pipes")]
    pub all: bool,
    #[command(flatten)]
    pub env: EnvArg,
    /// Measured runs of each pipe
    #[arg(long = "runs", short = 'n', default_value_t = 5, value_name = "RUNS")]
    pub runs: usize,
    /// Unmeasured runs of each pipe before the measured ones
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub warmup: usize,
    /// Print the results as one JSON object, for scripts
    #[arg(long)]
    pub json: bool,
    /// A parameter value: --param name=value (repeatable; applies to the pipes declaring it)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the versions deployed in the environment, not the working copy (always so in
    /// a protected environment)
    #[arg(long)]
    pub deployed: bool,
    /// Run each pipe with estimates (--estimate), to measure what they cost
    #[arg(long)]
    pub estimate: bool,
    /// Plan each pipe once and run that plan again, as `sluice serve` does (listings
    /// and plans kept across runs): what an endpoint call costs
    #[arg(long)]
    pub prepared: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Debug, Args)]
pub struct FixturesArgs {
    #[command(subcommand)]
    pub fixture: Fixture,
}

#[derive(Debug, Subcommand)]
pub enum Fixture {
    /// Generate the eight TPC-H tables as Parquet into an environment's store
    Tpch(TpchArgs),
}

#[derive(Debug, Args)]
pub struct TpchArgs {
    /// Scale factor: 1 is ~6M lineitem rows (~0.3 GB of Parquet)
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// The environment whose store gets the data (default: staging; with --init, every
    /// environment)
    #[arg(long, short = 'e', value_name = "NAME")]
    pub env: Option<String>,
    /// First write the tpch project (sluice.toml, the 22 queries as pipes) into DIR, then
    /// deploy its pipes to staging and promote them to production
    #[arg(long, value_name = "DIR")]
    pub init: Option<PathBuf>,
    /// The files' compression: zstd writes the smallest, lz4 decodes the fastest
    #[arg(long, value_enum, default_value_t = Codec::Zstd)]
    pub compression: Codec,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Codec {
    Zstd,
    Lz4,
    Snappy,
    None,
}

#[derive(Debug, Args)]
pub struct FidelityArgs {
    /// The pipe
    pub pipe: String,
    /// The sampled environment whose estimates are judged
    #[arg(long, short = 'e', value_name = "ENV", default_value = "staging")]
    pub env: String,
    /// The environment whose full answer is the truth
    #[arg(long, value_name = "ENV", default_value = "production")]
    pub against: String,
    /// Columns to match rows on (default: the output's exact columns, its group keys)
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub key: Vec<String>,
    /// A parameter value for both runs: --param name=value
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Also report the share of estimates within this relative error (5% or 0.05)
    #[arg(long, value_name = "TOLERANCE", value_parser = parse_tolerance)]
    pub tolerance: Option<f64>,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// `5%` or `0.05`.
pub(crate) fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a tolerance like 5% or 0.05"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("`{s}`: a tolerance is a fraction of at least 0"));
    }
    Ok(v)
}
