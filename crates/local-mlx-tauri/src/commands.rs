//! The provider's Tauri commands, each a thin wrapper over one `MlxModelManager` method:
//! the provider's seven (`mlx_list_models` ... `mlx_process_text`) and what a settings page
//! needs (settings, warm-up, unload, free disk space, the detailed "Try it" call).
//!
//! They read the manager from Tauri's state as `Arc<MlxModelManager>`, the one thing
//! the app must `manage()`. They return the core's own types (exported through the core's
//! `specta` feature, so there is no mirror to drift) and fail with [`MlxCommandError`](crate::error::MlxCommandError).
//! Commands that wait (download, load, generate) are `async`, so they run on Tauri's
//! async runtime and never block the window.

use std::sync::Arc;

use local_mlx::manager::ProcessOutput;
use local_mlx::settings::MlxSettings;
use local_mlx::{DownloadOutcome, MlxModelInfo, MlxModelManager, MlxModelStatus, PlatformSupport};
use tauri::State;

use crate::error::MlxCommandResult;

type Manager<'a> = State<'a, Arc<MlxModelManager>>;

/// The catalog and the custom models, each with its status.
#[tauri::command]
#[specta::specta]
pub fn mlx_list_models(manager: Manager<'_>) -> Vec<MlxModelInfo> {
    manager.list_models()
}

#[tauri::command]
#[specta::specta]
pub fn mlx_get_model_status(manager: Manager<'_>, model_id: String) -> MlxCommandResult<MlxModelStatus> {
    Ok(manager.model_status(&model_id)?)
}

/// Runs until the download completes, fails (after its attempts) or is cancelled;
/// progress arrives as `download_progress` events meanwhile.
#[tauri::command]
#[specta::specta]
pub async fn mlx_download_model(manager: Manager<'_>, model_id: String) -> MlxCommandResult<DownloadOutcome> {
    Ok(manager.download(&model_id).await?)
}

/// Stops the download in progress; returns the id of its model.
#[tauri::command]
#[specta::specta]
pub fn mlx_cancel_download(manager: Manager<'_>) -> MlxCommandResult<String> {
    Ok(manager.cancel_download()?)
}

/// Starts the last failed download again, resuming its bytes.
#[tauri::command]
#[specta::specta]
pub async fn mlx_retry_download(manager: Manager<'_>) -> MlxCommandResult<DownloadOutcome> {
    Ok(manager.retry_download().await?)
}

/// Refused with kind `busy` while the model downloads, loads or generates.
#[tauri::command]
#[specta::specta]
pub async fn mlx_delete_model(manager: Manager<'_>, model_id: String) -> MlxCommandResult<()> {
    manager.delete_model(&model_id).await?;
    Ok(())
}

/// The provider's contract: the transcript (`prompt`) in, the enhanced text out.
#[tauri::command]
#[specta::specta]
pub async fn mlx_process_text(manager: Manager<'_>, prompt: String) -> MlxCommandResult<String> {
    Ok(manager.process_text(&prompt).await?.text)
}

/// `mlx_process_text` with what a "Try it" box shows: time, tokens, clean-up check warnings.
#[tauri::command]
#[specta::specta]
pub async fn mlx_process_text_detailed(manager: Manager<'_>, text: String) -> MlxCommandResult<ProcessOutput> {
    Ok(manager.process_text(&text).await?)
}

/// The manager's `warm_up()`: sync the Python environment, start the sidecar and load
/// the selected model ahead of use, so the next `mlx_process_text` waits for none of
/// it. Cheap when already done: call it when the provider or model is chosen and when
/// recording starts.
#[tauri::command]
#[specta::specta]
pub async fn mlx_warm_up(manager: Manager<'_>) -> MlxCommandResult<()> {
    Ok(manager.warm_up().await?)
}

/// Whether this machine can run the models, and if not, why (the twin of Handy's
/// `check_apple_intelligence_available`). Where it cannot, download, retry, process
/// and warm-up fail with kind `unsupported_platform` before doing anything.
#[tauri::command]
#[specta::specta]
pub fn mlx_platform(manager: Manager<'_>) -> PlatformSupport {
    manager.platform().clone()
}

/// Unload the model and stop the sidecar now.
#[tauri::command]
#[specta::specta]
pub async fn mlx_unload_model(manager: Manager<'_>) -> MlxCommandResult<()> {
    Ok(manager.unload().await?)
}

#[tauri::command]
#[specta::specta]
pub fn mlx_get_settings(manager: Manager<'_>) -> MlxSettings {
    manager.settings()
}

/// Validates and applies; selecting another model unloads the old one. A blank
/// `uv_path` (an emptied text field) means "find uv", as `null` does. The manager
/// keeps no file: the app stores the settings where it keeps its own (an app with a
/// file for them registers its own command of this name that also saves, as `app/`
/// does).
#[tauri::command]
#[specta::specta]
pub async fn mlx_update_settings(manager: Manager<'_>, settings: MlxSettings) -> MlxCommandResult<MlxSettings> {
    Ok(manager.update_settings(without_blank_uv_path(settings)).await?)
}

fn without_blank_uv_path(mut settings: MlxSettings) -> MlxSettings {
    settings.uv_path = settings.uv_path.filter(|path| !path.to_string_lossy().trim().is_empty());
    settings
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_blank_uv_path_means_search_for_uv_and_a_real_one_is_kept() {
        let mut settings = MlxSettings { uv_path: Some(PathBuf::from("  ")), ..MlxSettings::default() };
        assert_eq!(without_blank_uv_path(settings.clone()).uv_path, None);
        settings.uv_path = Some(PathBuf::from("/opt/uv"));
        assert_eq!(without_blank_uv_path(settings).uv_path, Some(PathBuf::from("/opt/uv")));
    }
}
