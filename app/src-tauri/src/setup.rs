//! Building the manager the way an installed app needs it: the python-backend folder
//! and uv shipped inside the bundle, the Python environment in the user's data folder,
//! and the custom models to list (passed in once, in `ManagerConfig::custom_models`).
//!
//! The bundle's resources (Tauri's resource folder, `/usr/lib/local-mlx` in the Linux
//! package) are read-only for the user, so the venv lives in the app's local data
//! folder instead of beside `server.py`. `LOCAL_MLX_BACKEND_DIR` still wins (development
//! against the source tree). uv needs nothing here: the core looks beside our own
//! executable first, which is where Tauri's `externalBin` puts it.

use std::path::PathBuf;
use std::sync::Arc;

use local_mlx::manager::ManagerConfig;
use local_mlx::manager::{BackendSource, BACKEND_DIR_ENV};
use local_mlx::settings::MlxSettings;
use local_mlx::MlxModelManager;
use tauri::{AppHandle, Manager, Runtime};

use crate::app_settings::AppSettingsStore;

/// Comma- or space-separated Hugging Face repo ids to list besides the catalog
/// (how the end-to-end test shows its test models).
pub const EXTRA_MODELS_ENV: &str = "LOCAL_MLX_EXTRA_MODELS";

/// The manager, listing the custom models of `app_settings` and `LOCAL_MLX_EXTRA_MODELS`
/// (the manager adds the selected model itself): registered once, here.
pub fn manager<R: Runtime>(
    app: &AppHandle<R>,
    app_settings: &AppSettingsStore,
) -> Result<Arc<MlxModelManager>, Box<dyn std::error::Error>> {
    let mut config = ManagerConfig::from_env()?;
    // The app is the embedder: it keeps the provider's settings in its own file.
    config.settings = MlxSettings::load(&mlx_settings_path())?;
    config.custom_models = custom_models(app_settings);
    if std::env::var_os(BACKEND_DIR_ENV).is_none() {
        if let Some(bundled) = bundled_backend(app) {
            tracing::info!(dir = %bundled.display(), "using the bundled python-backend");
            config.sidecar.backend = BackendSource::Dir(bundled);
            if config.sidecar.venv_dir.is_none() {
                config.sidecar.venv_dir = Some(app.path().app_local_data_dir()?.join("python-env"));
            }
        }
    }
    let manager = MlxModelManager::new(config, local_mlx_tauri::event_sink(app))?;
    Ok(Arc::new(manager))
}

fn bundled_backend<R: Runtime>(app: &AppHandle<R>) -> Option<PathBuf> {
    let dir = app.path().resource_dir().ok()?.join("python-backend");
    dir.join("server.py").is_file().then_some(dir)
}

/// The provider's settings (selected model, prompt, unload timeout, uv path), which the
/// app loads at start and saves on every change.
pub fn mlx_settings_path() -> PathBuf {
    local_mlx::settings::config_dir().join("settings.json")
}

/// The app settings file, beside the provider's settings.
pub fn app_settings() -> local_mlx::Result<AppSettingsStore> {
    AppSettingsStore::open(local_mlx::settings::config_dir().join("app-settings.json"))
}

/// The custom models to list: the saved ones, then `LOCAL_MLX_EXTRA_MODELS`.
fn custom_models(settings: &AppSettingsStore) -> Vec<String> {
    let from_env = std::env::var(EXTRA_MODELS_ENV).unwrap_or_default();
    let extra = from_env.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    settings.get().custom_models.into_iter().chain(extra).collect()
}
