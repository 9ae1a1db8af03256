//! The global flags, resolved once into the settings every command reads (as ripgrep
//! turns its parsed flags into validated ones): where the project is (loaded at most
//! once, on first use), how verbose to be, and who is acting.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sluice_engine::{EnvSession, Project, SluiceError};

use crate::args::{Cli, EnvArg, SampleArgs};

/// Settings shared by every command, resolved from the command line once.
#[derive(Debug)]
pub struct Settings {
    /// `-C DIR`: the project folder; else the nearest `sluice.toml` upward.
    project_dir: Option<PathBuf>,
    project: OnceLock<Arc<Project>>,
    /// `-v` count: 1 prints a line per source after a run, 2 adds engine debug logs.
    pub verbose: u8,
    /// Who is acting: `--actor`, else the OS user.
    pub actor: String,
}

impl Settings {
    pub fn resolve(cli: &Cli) -> Settings {
        Settings {
            project_dir: cli.project.clone(),
            project: OnceLock::new(),
            verbose: cli.verbose,
            actor: cli
                .actor
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(sluice_engine::util::clock::default_actor),
        }
    }

    /// The project, loaded and validated on first use.
    pub fn project(&self) -> Result<Arc<Project>, SluiceError> {
        if let Some(p) = self.project.get() {
            return Ok(p.clone());
        }
        let project = Arc::new(match &self.project_dir {
            Some(d) => Project::load(d)?,
            None => Project::discover(".")?,
        });
        Ok(self.project.get_or_init(|| project).clone())
    }

    /// The environment `env` names (default: staging, never a protected one unnamed),
    /// opened with a run's sampling override.
    pub fn session(&self, env: &EnvArg, sample: &SampleArgs) -> Result<EnvSession, SluiceError> {
        let project = self.project()?;
        let name = project.select_environment(env.env.as_deref())?.name.clone();
        EnvSession::open(project, &name, &sample.to_override())
    }
}
