//! The Rust that docs/INTEGRATING.md asks Handy to add, compiled against this crate so the
//! guide cannot drift from the API (`cargo test` and clippy build examples). Handy's own
//! items it uses are stood in for by the smallest module of the same name and signature
//! (`portable`, `settings`), as they are at cjpais/Handy 0e5036721ef6f26c3b89ab31bc10cd2ffd6096fb;
//! the functions below hold the guide's snippets unchanged.

use std::sync::Arc;

use log::{debug, error, warn};
use tauri::{AppHandle, Manager};

/// Stand-in for Handy's `src-tauri/src/portable.rs` (same signatures).
mod portable {
    use std::path::PathBuf;
    use tauri::Manager;

    pub fn app_data_dir(app: &tauri::AppHandle) -> Result<PathBuf, tauri::Error> {
        app.path().app_data_dir()
    }

    pub fn app_log_dir(app: &tauri::AppHandle) -> Result<PathBuf, tauri::Error> {
        app.path().app_log_dir()
    }
}

/// Stand-in for the parts of Handy's `src-tauri/src/settings.rs` the snippets read.
mod settings {
    use std::collections::HashMap;

    use serde::{Deserialize, Serialize};
    use tauri::AppHandle;

    pub const LOCAL_MLX_PROVIDER_ID: &str = "local-mlx"; // local_mlx::settings::PROVIDER_ID

    #[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
    #[serde(rename_all = "snake_case")]
    pub enum ModelUnloadTimeout {
        Never,
        Immediately,
        Min2,
        #[default]
        Min5,
        Min10,
        Min15,
        Hour1,
        Sec15,
    }

    #[derive(Debug, Clone, Default)]
    pub struct AppSettings {
        pub model_unload_timeout: ModelUnloadTimeout,
        pub post_process_provider_id: String,
        pub post_process_models: HashMap<String, String>,
    }

    pub fn get_settings(_app: &AppHandle) -> AppSettings {
        AppSettings::default()
    }
}

use settings::get_settings;

fn strip_invisible_chars(s: &str) -> String {
    s.replace(['\u{200B}', '\u{200C}', '\u{200D}', '\u{FEFF}'], "")
}

// §2, in `initialize_core_logic`.
#[allow(dead_code)]
fn initialize_core_logic(app_handle: &AppHandle) {
    let mlx_manager = Arc::new(
        local_mlx_tauri::local_mlx::MlxModelManager::new(
            local_mlx_config(app_handle).expect("Failed to configure local MLX"),
            local_mlx_tauri::event_sink(app_handle),
        )
        .expect("Failed to initialize local MLX manager"),
    );
    app_handle.manage(mlx_manager);
    refresh_local_mlx(app_handle, false);
}

// §2, next to `initialize_core_logic`.
fn local_mlx_config(
    app: &AppHandle,
) -> Result<local_mlx_tauri::local_mlx::manager::ManagerConfig, Box<dyn std::error::Error>> {
    let data_dir = portable::app_data_dir(app)?.join("local-mlx");
    // No settings file of ours: Handy's own settings are the truth, passed in by
    // `refresh_local_mlx` (below) at start-up and on every change.
    // The sidecar's files are built into the crate: they are written to
    // `<data_dir>/sidecar/<version>/` at the first start, the Python environment beside them.
    let mut config = local_mlx_tauri::local_mlx::manager::ManagerConfig::in_data_dir(&data_dir);
    config.sidecar.log_path = Some(portable::app_log_dir(app)?.join("local-mlx-sidecar.log"));
    Ok(config)
}

// §2, the `tauri::RunEvent::Exit` arm of `run()`.
#[allow(dead_code)]
fn on_run_event(app: &AppHandle, event: tauri::RunEvent) {
    if let tauri::RunEvent::Exit = event {
        if let Some(mlx) = app.try_state::<Arc<local_mlx_tauri::local_mlx::MlxModelManager>>() {
            tauri::async_runtime::block_on(mlx.shutdown());
        }
    }
}

// §3, `default_model_for_provider`.
#[allow(dead_code)]
fn default_model_for_provider(provider_id: &str) -> String {
    if provider_id == settings::LOCAL_MLX_PROVIDER_ID {
        return local_mlx_tauri::local_mlx::DEFAULT_MODEL_ID.to_string();
    }
    String::new()
}

// §4, the branch in `post_process_transcription` (`model` and `prompt` are resolved above it).
#[allow(dead_code)]
async fn post_process_local_mlx(app: &AppHandle, model: String, prompt: String, transcription: &str) -> Option<String> {
    let mlx = app.try_state::<Arc<local_mlx_tauri::local_mlx::MlxModelManager>>()?;
    let options = local_mlx_tauri::local_mlx::manager::ProcessOptions {
        model: Some(model.clone()),
        prompt: Some(prompt.clone()),
        ..Default::default()
    };
    match mlx.process_text_with(transcription, options).await {
        Ok(out) if out.clean_up.is_passed() => Some(strip_invisible_chars(&out.text)),
        Ok(out) => {
            warn!("Local MLX kept the original transcript: {}", out.clean_up.warnings.join("; "));
            None
        }
        Err(e) => {
            error!("Local MLX post-processing failed ({}): {}", e.kind(), e);
            None
        }
    }
}

/// Handy runs post-processing inside `tauri::async_runtime::spawn`: the future must be `Send`.
#[allow(dead_code)]
fn post_processing_can_be_spawned(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        post_process_local_mlx(&app, String::new(), String::new(), "").await;
    });
}

// §4, in `actions.rs`.
pub(crate) fn refresh_local_mlx(app: &AppHandle, warm_up: bool) {
    let Some(mlx) = app.try_state::<Arc<local_mlx_tauri::local_mlx::MlxModelManager>>() else {
        return;
    };
    let mlx = mlx.inner().clone();
    let settings = get_settings(app);
    tauri::async_runtime::spawn(async move {
        let mut mlx_settings = mlx.settings();
        if let Some(model) =
            settings.post_process_models.get(crate::settings::LOCAL_MLX_PROVIDER_ID).filter(|m| !m.trim().is_empty())
        {
            mlx_settings.selected_model = model.clone();
        }
        // Both enums have the same serde names (never, immediately, min2 ... sec15).
        if let Ok(timeout) = serde_json::to_value(settings.model_unload_timeout).and_then(serde_json::from_value) {
            mlx_settings.model_unload_timeout = timeout;
        }
        if mlx_settings != mlx.settings() {
            if let Err(e) = mlx.update_settings(mlx_settings).await {
                warn!("Local MLX settings not applied: {}", e);
                return;
            }
        }
        let selected = settings.post_process_provider_id == crate::settings::LOCAL_MLX_PROVIDER_ID;
        if warm_up && selected {
            if let Err(e) = mlx.warm_up().await {
                debug!("Local MLX warm-up skipped: {}", e);
            }
        }
    });
}

// §5, the branch in `fetch_post_process_models`.
#[allow(dead_code)]
fn local_mlx_models(app: &AppHandle) -> Result<Vec<String>, String> {
    let mlx = app.state::<std::sync::Arc<local_mlx_tauri::local_mlx::MlxModelManager>>();
    Ok(mlx.list_models().into_iter().map(|m| m.id).collect())
}

fn main() {
    // Same serde names, so the conversion in `refresh_local_mlx` never falls back.
    for ours in local_mlx_tauri::local_mlx::settings::ModelUnloadTimeout::ALL {
        let handys: settings::ModelUnloadTimeout = serde_json::from_value(serde_json::to_value(ours).unwrap())
            .expect("Handy's ModelUnloadTimeout has every value of ours");
        assert_eq!(serde_json::to_value(handys).unwrap(), serde_json::to_value(ours).unwrap());
    }
    println!("the guide's snippets compile, and the unload timeouts convert both ways");
}
