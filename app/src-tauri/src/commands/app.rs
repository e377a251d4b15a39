//! The app's own settings commands: post-processing on/off and the provider choice,
//! laid out as Handy lays them out.

use std::sync::Arc;

use local_mlx::MlxModelManager;
use tauri::State;

use crate::app_settings::{provider_options, AppSettings, AppSettingsStore, ProviderOption};
use crate::error::{CommandError, CommandResult};

fn saved(result: std::io::Result<AppSettings>) -> CommandResult<AppSettings> {
    result.map_err(|e| CommandError::new("io", format!("cannot save the app settings: {e}")))
}

#[tauri::command]
#[specta::specta]
pub fn get_app_settings(settings: State<'_, AppSettingsStore>) -> AppSettings {
    settings.get()
}

/// The providers, each with why this machine cannot use it (if it cannot).
#[tauri::command]
#[specta::specta]
pub fn get_post_process_providers(manager: State<'_, Arc<MlxModelManager>>) -> Vec<ProviderOption> {
    provider_options(manager.platform())
}

#[tauri::command]
#[specta::specta]
pub fn set_post_process_enabled(settings: State<'_, AppSettingsStore>, enabled: bool) -> CommandResult<AppSettings> {
    saved(settings.update(|s| s.post_process_enabled = enabled))
}

#[tauri::command]
#[specta::specta]
pub fn set_post_process_provider(
    settings: State<'_, AppSettingsStore>,
    manager: State<'_, Arc<MlxModelManager>>,
    provider_id: String,
) -> CommandResult<AppSettings> {
    if !provider_options(manager.platform()).iter().any(|p| p.id == provider_id) {
        return Err(CommandError::new(
            "unknown_provider",
            format!("'{provider_id}' is not a post-processing provider of this app; the only one is 'local-mlx'"),
        ));
    }
    manager.platform().ensure_supported()?;
    saved(settings.update(|s| s.post_process_provider_id = provider_id))
}
