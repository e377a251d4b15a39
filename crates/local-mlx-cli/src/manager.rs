//! The manager a command builds: the core's [`MlxModelManager`] with the CLI's own
//! `settings.json` loaded here and passed in, as any embedder does. Its own module, below
//! the commands, `setup` and `handy`, which all build one.

use std::sync::Arc;

use anyhow::Result;
use local_mlx::manager::ManagerConfig;
use local_mlx::settings::{config_dir, MlxSettings};
use local_mlx::{EventSink, MlxModelManager};

/// The manager, with the CLI's own `settings.json` (in `LOCAL_MLX_CONFIG_DIR` or the
/// platform's config folder) loaded here and passed in, as any embedder does.
pub fn manager(sink: Arc<dyn EventSink>) -> Result<MlxModelManager> {
    manager_with(sink, MlxSettings::load(&config_dir().join("settings.json"))?)
}

/// [`manager`] with settings already loaded.
pub fn manager_with(sink: Arc<dyn EventSink>, settings: MlxSettings) -> Result<MlxModelManager> {
    let mut config = ManagerConfig::from_env()?;
    config.settings = settings;
    Ok(MlxModelManager::new(config, sink)?)
}
