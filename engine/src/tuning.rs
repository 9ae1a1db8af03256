//! The DataFusion configuration every session of an environment starts from: the
//! environment's own settings over the defaults Sluice picked for throughput.

use datafusion::prelude::SessionConfig;

use crate::project::EngineSettings;

/// The session configuration of an environment with `settings`.
pub fn session_config(settings: &EngineSettings) -> SessionConfig {
    let mut config = SessionConfig::new();
    if let Some(n) = settings.target_partitions {
        config = config.with_target_partitions(n);
    }
    if let Some(n) = settings.batch_size {
        config = config.with_batch_size(n);
    }
    config
}
