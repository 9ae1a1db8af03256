//! `sluice fixtures tpch`: the TPC-H project and its data, for benchmarks and tests.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use sluice_engine::fixtures::tpch::{
    TpchCodec, check_scale_factor, generate_tpch_progress, write_tpch_project,
};
use sluice_engine::{EnvSession, Project, SampleOverride};

use crate::args::{Codec, Fixture, FixturesArgs, TpchArgs};
use crate::outln;
use crate::print::{human_bytes, human_count, human_duration};
use crate::settings::Settings;

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

pub async fn fixtures(settings: &Settings, args: FixturesArgs) -> Result<()> {
    match args.fixture {
        Fixture::Tpch(a) => tpch(settings, a).await,
    }
}

async fn tpch(settings: &Settings, args: TpchArgs) -> Result<()> {
    // Check everything before writing anything.
    let sf = check_scale_factor(args.sf)?;
    let project = match &args.init {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            write_tpch_project(dir)?;
            Arc::new(Project::load(dir)?)
        }
        None => settings.project()?,
    };
    let envs: Vec<String> = match (&args.env, &args.init) {
        (Some(e), _) => vec![project.environment(e)?.name.clone()],
        (None, Some(_)) => project.environments.keys().cloned().collect(),
        (None, None) => vec![project.select_environment(None)?.name.clone()],
    };
    for env in &envs {
        let session = EnvSession::open(project.clone(), env, &SampleOverride::default())?;
        let started = Instant::now();
        let bar = crate::print::progress_bar();
        let summary = generate_tpch_progress(
            session.store(),
            sf,
            args.compression.into(),
            &|p: &sluice_engine::util::progress::Progress| crate::print::show_progress(&bar, p),
        )
        .await;
        bar.finish_and_clear();
        let summary = summary?;
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
            sluice_engine::deploy::deploy_and_promote(
                project.clone(),
                "staging",
                "production",
                "sluice fixtures tpch",
            )
            .await?;
            eprintln!("deployed the tpch pipes to staging and promoted them to production");
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
