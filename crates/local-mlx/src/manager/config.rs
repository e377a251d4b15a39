//! [`ManagerConfig`]: everything the manager is told about its surroundings (hub,
//! sidecar, settings, custom models), built by the embedder or from the environment.

use std::path::Path;

use crate::error::Result;
use crate::hub::HubConfig;
use crate::settings::{config_dir, data_dir, MlxSettings};
use crate::sidecar::SidecarConfig;

/// Everything the manager needs to know about its surroundings, all of it passed in
/// by the embedder: the manager reads no settings file of its own.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub hub: HubConfig,
    pub sidecar: SidecarConfig,
    /// The embedder's choices: selected model, prompt template, unload timeout, uv path
    /// (which wins over `sidecar.uv_path` when set). Changed later by
    /// [`MlxModelManager::update_settings`](super::MlxModelManager::update_settings).
    pub settings: MlxSettings,
    /// Hugging Face repo ids listed after the catalog (see
    /// [`MlxModelManager::add_custom_model`](super::MlxModelManager::add_custom_model)); an invalid one is logged and skipped.
    pub custom_models: Vec<String>,
}

impl ManagerConfig {
    /// With `data_dir` as the embedder's data folder (the sidecar's log, and the
    /// sidecar's files and Python environment unless a bundle ships them), the hub from
    /// `HF_*`, and default settings.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::with_dirs(data_dir, data_dir)
    }

    /// The CLI's: the log in `LOCAL_MLX_CONFIG_DIR` (or the platform's config folder),
    /// the sidecar's files and environment in [`data_dir`].
    pub fn from_env() -> Result<Self> {
        Ok(Self::with_dirs(&config_dir(), &data_dir()))
    }

    fn with_dirs(log_dir: &Path, data_dir: &Path) -> Self {
        let mut sidecar = SidecarConfig::in_data_dir(data_dir);
        sidecar.log_path = Some(log_dir.join("sidecar.log"));
        ManagerConfig {
            hub: HubConfig::from_env(),
            sidecar,
            settings: MlxSettings::default(),
            custom_models: Vec::new(),
        }
    }
}
