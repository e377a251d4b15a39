//! The seed's Tauri commands, thin over `MlxModelManager`, plus the settings page's
//! (settings, pre-warm, unload, disk space, custom models, the detailed "Try it" call).
//!
//! Errors reach the frontend as `{ kind, message }` ([`CommandError`]). Commands that
//! wait (download, load, generate) are `async`, so they run on the async runtime and
//! never block the window.

use std::path::Path;
use std::sync::Arc;

use local_mlx::MlxModelManager;
use tauri::State;

use crate::app_settings::AppSettingsStore;
use crate::error::{CommandError, CommandResult};
use crate::types::{
    DiskSpace, DownloadOutcome, MlxModelInfo, MlxModelStatus, MlxSettings, PlatformSupport, ProcessOutput,
};

type Manager<'a> = State<'a, Arc<MlxModelManager>>;

/// The catalog and the custom models, each with its status.
#[tauri::command]
#[specta::specta]
pub fn mlx_list_models(manager: Manager<'_>) -> Vec<MlxModelInfo> {
    manager.list_models().into_iter().map(Into::into).collect()
}

/// Whether this machine can run the models, and if not, why (Handy's twin of
/// `check_apple_intelligence_available`). Where it cannot, download, retry, process
/// and warm-up fail with kind `unsupported_platform` before doing anything.
#[tauri::command]
#[specta::specta]
pub fn mlx_platform(manager: Manager<'_>) -> PlatformSupport {
    manager.platform().clone().into()
}

#[tauri::command]
#[specta::specta]
pub fn mlx_get_model_status(manager: Manager<'_>, model_id: String) -> CommandResult<MlxModelStatus> {
    Ok(manager.model_status(&model_id)?.into())
}

/// Runs until the download completes, fails (after its attempts) or is cancelled;
/// progress arrives as `download_progress` events meanwhile.
#[tauri::command]
#[specta::specta]
pub async fn mlx_download_model(manager: Manager<'_>, model_id: String) -> CommandResult<DownloadOutcome> {
    Ok(manager.download(&model_id).await?.into())
}

/// Stops the download in progress; returns the id of its model.
#[tauri::command]
#[specta::specta]
pub fn mlx_cancel_download(manager: Manager<'_>) -> CommandResult<String> {
    Ok(manager.cancel_download()?)
}

/// Starts the last failed download again (up to 3 attempts), resuming its bytes.
#[tauri::command]
#[specta::specta]
pub async fn mlx_retry_download(manager: Manager<'_>) -> CommandResult<DownloadOutcome> {
    Ok(manager.retry_download().await?.into())
}

/// Refused with kind `busy` while the model downloads, loads or generates.
#[tauri::command]
#[specta::specta]
pub async fn mlx_delete_model(manager: Manager<'_>, model_id: String) -> CommandResult<()> {
    manager.delete_model(&model_id).await?;
    Ok(())
}

/// The seed's contract: the transcript (`prompt`) in, the enhanced text out.
#[tauri::command]
#[specta::specta]
pub async fn mlx_process_text(manager: Manager<'_>, prompt: String) -> CommandResult<String> {
    Ok(manager.process_text(&prompt).await?.text)
}

/// `mlx_process_text` with what the "Try it" box shows: time, tokens, guard warnings.
#[tauri::command]
#[specta::specta]
pub async fn mlx_process_text_detailed(manager: Manager<'_>, text: String) -> CommandResult<ProcessOutput> {
    Ok(manager.process_text(&text).await?.into())
}

/// Pre-warm: start the sidecar and load the selected model (visiting the settings page).
#[tauri::command]
#[specta::specta]
pub async fn mlx_warm_up(manager: Manager<'_>) -> CommandResult<()> {
    Ok(manager.prepare().await?)
}

/// Unload the model and stop the sidecar now.
#[tauri::command]
#[specta::specta]
pub async fn mlx_unload_model(manager: Manager<'_>) -> CommandResult<()> {
    Ok(manager.unload().await?)
}

#[tauri::command]
#[specta::specta]
pub fn mlx_get_settings(manager: Manager<'_>) -> MlxSettings {
    manager.settings().into()
}

/// Validates and applies, then saves (the app owns the provider's settings file);
/// selecting another model unloads the old one.
#[tauri::command]
#[specta::specta]
pub async fn mlx_update_settings(manager: Manager<'_>, settings: MlxSettings) -> CommandResult<MlxSettings> {
    let applied = manager.update_settings(settings.into()).await?;
    applied.save(&crate::setup::mlx_settings_path())?;
    Ok(applied.into())
}

/// Free space in the model cache, for the low-disk warning before a download.
#[tauri::command]
#[specta::specta]
pub fn mlx_disk_space(manager: Manager<'_>) -> CommandResult<DiskSpace> {
    let cache_dir = manager.store().config().cache_dir.clone();
    let available_bytes = available_space(&cache_dir)
        .map_err(|e| CommandError::new("io", format!("cannot read the free space of {}: {e}", cache_dir.display())))?;
    Ok(DiskSpace { cache_dir: cache_dir.to_string_lossy().into_owned(), available_bytes })
}

/// Add any Hugging Face repo id as a model (validated by the core), remembered across
/// restarts; returns the new list.
#[tauri::command]
#[specta::specta]
pub fn mlx_add_custom_model(
    manager: Manager<'_>,
    app_settings: State<'_, AppSettingsStore>,
    model_id: String,
) -> CommandResult<Vec<MlxModelInfo>> {
    let spec = manager.add_custom_model(&model_id)?;
    let id = spec.id.clone();
    if !spec.is_builtin {
        app_settings
            .update(|s| {
                if !s.custom_models.contains(&id) {
                    s.custom_models.push(id.clone());
                }
            })
            .map_err(|e| CommandError::new("io", format!("cannot save the app settings: {e}")))?;
    }
    Ok(mlx_list_models(manager))
}

/// The cache folder may not exist before the first download: ask its nearest ancestor.
fn available_space(dir: &Path) -> std::io::Result<u64> {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(Path::new("/"));
    fs4::available_space(existing)
}
