//! `sluice fixtures tpch`: the TPC-H project and its data, for benchmarks and tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use sluice_engine::fixtures::tpch::{
    TpchCodec, check_scale_factor, generate_tpch_with, write_tpch_project,
};
use sluice_engine::{EnvSession, Project, SampleOverride};

use crate::commands::load_project;
use crate::outln;
use crate::print::{human_bytes, human_count, human_duration};

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

impl From<Codec> for TpchCodec {
    fn from(c: Codec) -> Self {
        match c {
            Codec::Zstd => TpchCodec::Zstd,
            Codec::Lz4 => TpchCodec::Lz4,
            Codec::Snappy => TpchCodec::Snappy,
            Codec::None => TpchCodec::Uncompressed,
        }
    }
}

pub async fn fixtures(project: Option<&Path>, args: FixturesArgs) -> Result<()> {
    match args.fixture {
        Fixture::Tpch(a) => tpch(project, a).await,
    }
}

async fn tpch(project_dir: Option<&Path>, args: TpchArgs) -> Result<()> {
    // Check everything before writing anything.
    let sf = check_scale_factor(args.sf)?;
    let project = match &args.init {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            write_tpch_project(dir)?;
            Arc::new(Project::load(dir)?)
        }
        None => load_project(project_dir)?,
    };
    let envs: Vec<String> = match (&args.env, &args.init) {
        (Some(e), _) => vec![project.environment(e)?.name.clone()],
        (None, Some(_)) => project.environments.keys().cloned().collect(),
        (None, None) => vec![project.select_environment(None)?.name.clone()],
    };
    for env in &envs {
        let session = EnvSession::open(project.clone(), env, &SampleOverride::default())?;
        let started = Instant::now();
        let summary = generate_tpch_with(session.store(), sf, args.compression.into()).await?;
        eprintln!(
            "{env}: wrote TPC-H SF {sf} ({} lineitem rows, {} orders) as {} files, {} in {} into {}",
            human_count(summary.rows("lineitem")),
            human_count(summary.rows("orders")),
            summary.files.len(),
            human_bytes(summary.bytes()),
            human_duration(started.elapsed()),
            session.store().describe("")
        );
    }
    if let Some(dir) = &args.init {
        if envs.len() == project.environments.len() {
            crate::commands::deploy_and_promote(
                project.clone(),
                "sluice fixtures tpch",
                "the tpch pipes",
            )
            .await?;
        } else {
            eprintln!(
                "not deployed: generate the other environments' data, then `sluice deploy --all` and `sluice promote --all`"
            );
        }
        outln!("created the tpch project in {}", dir.display());
        outln!(
            "next: cd {} && sluice bench --all --env production -n 3",
            dir.display()
        );
    }
    Ok(())
}
