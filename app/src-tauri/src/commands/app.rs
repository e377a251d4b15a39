//! The app's own settings commands: post-processing on/off and the provider choice,
//! laid out as Handy lays them out, and the custom models the user adds (kept in the
//! app's settings, so they are listed again after a restart).

use std::sync::Arc;

use local_mlx::settings::MlxSettings;
use local_mlx::{MlxModelInfo, MlxModelManager};
use local_mlx_tauri::{MlxCommandError, MlxCommandResult};
use tauri::State;

use crate::app_settings::{provider_options, AppSettings, AppSettingsStore, ProviderOption};

fn saved(result: local_mlx::Result<AppSettings>) -> MlxCommandResult<AppSettings> {
    Ok(result?)
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
pub fn set_post_process_enabled(settings: State<'_, AppSettingsStore>, enabled: bool) -> MlxCommandResult<AppSettings> {
    saved(settings.update(|s| s.post_process_enabled = enabled))
}

#[tauri::command]
#[specta::specta]
pub fn set_post_process_provider(
    settings: State<'_, AppSettingsStore>,
    manager: State<'_, Arc<MlxModelManager>>,
    provider_id: String,
) -> MlxCommandResult<AppSettings> {
    if !provider_options(manager.platform()).iter().any(|p| p.id == provider_id) {
        return Err(MlxCommandError::new(
            // The app has no kinds of its own: a provider id it does not offer is a bad request.
            local_mlx::ErrorKind::InvalidRequest,
            format!("'{provider_id}' is not a post-processing provider of this app; the only one is 'local-mlx'"),
        ));
    }
    manager.platform().ensure_supported()?;
    saved(settings.update(|s| s.post_process_provider_id = provider_id))
}

/// Add any Hugging Face repo id as a model (validated by the core), remembered across
/// restarts in the app settings; returns the new list.
#[tauri::command]
#[specta::specta]
pub fn mlx_add_custom_model(
    manager: State<'_, Arc<MlxModelManager>>,
    app_settings: State<'_, AppSettingsStore>,
    model_id: String,
) -> MlxCommandResult<Vec<MlxModelInfo>> {
    let spec = manager.add_custom_model(&model_id)?;
    let id = spec.id.clone();
    if !spec.is_builtin {
        saved(app_settings.update(|s| {
            if !s.custom_models.contains(&id) {
                s.custom_models.push(id.clone());
            }
        }))?;
    }
    Ok(manager.list_models())
}

/// The provider's `mlx_update_settings`, then saved to the app's settings file (the
/// manager keeps none): the same command name, so the page calls it as usual.
#[tauri::command]
#[specta::specta]
pub async fn mlx_update_settings(
    manager: State<'_, Arc<MlxModelManager>>,
    settings: MlxSettings,
) -> MlxCommandResult<MlxSettings> {
    let applied = local_mlx_tauri::commands::mlx_update_settings(manager, settings).await?;
    applied.save(&crate::setup::mlx_settings_path())?;
    Ok(applied)
}
