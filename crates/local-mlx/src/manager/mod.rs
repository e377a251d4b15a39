//! `MlxModelManager`: the one facade every face (CLI, Tauri app) calls.
//!
//! Each public method is one of the seed's commands (`list_models`, `model_status`,
//! `download`, `cancel_download`, `retry_download`, `delete_model`, `process_text`) or
//! what a settings page needs (`warm_up`, `unload`, settings). The model store owns
//! files and states; the [`session`] owns the sidecar and the loaded model; the
//! [`idle`] timer unloads after `model_unload_timeout`. A key decision: everything that
//! touches the loaded model (load, generate, unload) runs under one async lock, so
//! concurrent calls are served one after another with a single load, and the idle
//! timer can never unload a model in the middle of a generation.

mod idle;
mod session;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::hub::{DeleteReport, HubConfig};
use crate::postprocess::MAX_TRANSCRIPT_CHARS;
use crate::settings::{config_dir, MlxSettings};
use crate::sidecar::{default_backend_dir, SidecarConfig};
use crate::store::{DownloadOutcome, MlxModelInfo, MlxModelStatus, ModelStore};

use session::Session;

/// Everything the manager needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub hub: HubConfig,
    /// The settings file (`settings.json`); created on the first change.
    pub settings_path: PathBuf,
    pub sidecar: SidecarConfig,
}

impl ManagerConfig {
    /// From the environment: `HF_*` for the hub, `LOCAL_MLX_CONFIG_DIR` (or the
    /// platform's config folder) for settings and the sidecar log, the python-backend
    /// folder found next to the executable or in the source tree.
    pub fn from_env() -> Result<Self> {
        let dir = config_dir();
        let mut sidecar = SidecarConfig::new(backend_dir_or_where_expected());
        sidecar.log_path = Some(dir.join("sidecar.log"));
        Ok(ManagerConfig { hub: HubConfig::from_env(), settings_path: dir.join("settings.json"), sidecar })
    }
}

/// The python-backend folder, or where it should have been: model-store commands work
/// without it, and the sidecar's start reports it missing with that path.
fn backend_dir_or_where_expected() -> PathBuf {
    match default_backend_dir() {
        Ok(dir) => dir,
        Err(crate::sidecar::SidecarError::BackendNotFound { dir }) => dir,
        Err(_) => PathBuf::from("python-backend"),
    }
}

/// Per-call choices for [`MlxModelManager::process_text_with`]; `None` uses the settings.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    pub model: Option<String>,
    pub prompt: Option<String>,
}

/// Where the time of one `process_text` went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxTimings"))]
pub struct Timings {
    /// Starting the sidecar (0 when it was running), including a first-run sync.
    pub start_ms: u64,
    /// Loading the model (0 when it was loaded).
    pub load_ms: u64,
    pub generate_ms: u64,
    pub total_ms: u64,
}

/// The result of enhancing one transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxProcessOutput"))]
pub struct ProcessOutput {
    /// The enhanced text, or the original when a guard kept it.
    pub text: String,
    /// False when the original transcript was returned (see `warnings`).
    pub enhanced: bool,
    pub warnings: Vec<String>,
    pub model_id: String,
    pub tokens_generated: u32,
    pub prompt_tokens: u32,
    /// Prompt tokens served from the sidecar's prefix cache (not pre-filled again).
    pub cached_tokens: u32,
    pub timings: Timings,
}

/// The MLX Local AI Provider.
pub struct MlxModelManager {
    store: Arc<ModelStore>,
    session: Arc<Session>,
    settings: Mutex<MlxSettings>,
    settings_path: PathBuf,
}

impl MlxModelManager {
    /// A manager over the given hub, settings file and sidecar, reporting to `sink`.
    pub fn new(config: ManagerConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        let settings = MlxSettings::load(&config.settings_path)?;
        let store = Arc::new(ModelStore::new(config.hub, sink.clone())?);
        let mut sidecar = config.sidecar;
        if sidecar.uv_path.is_none() {
            sidecar.uv_path = settings.uv_path.clone();
        }
        Ok(MlxModelManager {
            session: Session::new(store.clone(), sidecar, sink),
            store,
            settings: Mutex::new(settings),
            settings_path: config.settings_path,
        })
    }

    /// A manager configured from the environment (see [`ManagerConfig::from_env`]).
    pub fn from_env(sink: Arc<dyn EventSink>) -> Result<Self> {
        Self::new(ManagerConfig::from_env()?, sink)
    }

    /// A manager over the hub and cache of `config`, with its settings file next to the
    /// cache folder and the sidecar found the usual way (started only when used).
    pub fn with_hub(config: HubConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        let backend = backend_dir_or_where_expected();
        let beside_cache = config.cache_dir.parent().map(PathBuf::from).unwrap_or_default();
        let manager_config = ManagerConfig {
            settings_path: beside_cache.join("local-mlx-settings.json"),
            hub: config,
            sidecar: SidecarConfig::new(backend),
        };
        Self::new(manager_config, sink)
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }

    /// `mlx_list_models`
    pub fn list_models(&self) -> Vec<MlxModelInfo> {
        self.store.list_models()
    }

    /// `mlx_get_model_status`
    pub fn model_status(&self, model_id: &str) -> Result<MlxModelStatus> {
        self.store.model_status(model_id)
    }

    /// `mlx_download_model`
    pub async fn download(&self, model_id: &str) -> Result<DownloadOutcome> {
        self.store.download(model_id).await
    }

    /// `mlx_cancel_download`: returns the id of the model whose download stops.
    pub fn cancel_download(&self) -> Result<String> {
        self.store.cancel_download()
    }

    /// `mlx_retry_download`
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        self.store.retry_download().await
    }

    /// `mlx_delete_model`: refused while the model downloads, loads or generates; a
    /// loaded but idle model is unloaded first.
    pub async fn delete_model(&self, model_id: &str) -> Result<DeleteReport> {
        let spec = self.store.spec(model_id)?;
        self.session.release_for_delete(&spec.id).await?;
        self.store.delete_model(&spec.id)
    }

    /// `mlx_process_text`: enhance a transcript with the selected model and prompt.
    pub async fn process_text(&self, text: &str) -> Result<ProcessOutput> {
        self.process_text_with(text, ProcessOptions::default()).await
    }

    /// [`Self::process_text`] with a model or prompt other than the settings'.
    pub async fn process_text_with(&self, text: &str, options: ProcessOptions) -> Result<ProcessOutput> {
        let settings = self.settings();
        let model_id = options.model.unwrap_or(settings.selected_model);
        let prompt = options.prompt.unwrap_or(settings.prompt);
        if text.trim().is_empty() {
            // Nothing to enhance: no model is started for it.
            return Ok(ProcessOutput {
                text: text.to_string(),
                enhanced: false,
                warnings: Vec::new(),
                model_id,
                tokens_generated: 0,
                prompt_tokens: 0,
                cached_tokens: 0,
                timings: Timings::default(),
            });
        }
        let chars = text.chars().count();
        if chars > MAX_TRANSCRIPT_CHARS {
            return Err(Error::TranscriptTooLong { chars, max: MAX_TRANSCRIPT_CHARS });
        }
        self.session.process(&model_id, &prompt, text, settings.model_unload_timeout).await
    }

    /// Start the sidecar and load the selected model ahead of use (the seed's
    /// "pre-warm on settings page visit"). The idle timer starts from here.
    pub async fn warm_up(&self) -> Result<()> {
        let settings = self.settings();
        self.session.warm_up(&settings.selected_model, settings.model_unload_timeout).await
    }

    /// Unload the model and stop the sidecar now.
    pub async fn unload(&self) -> Result<()> {
        self.session.unload_and_stop().await
    }

    /// The current settings.
    pub fn settings(&self) -> MlxSettings {
        self.settings.lock().expect("settings poisoned").clone()
    }

    /// Validate, save and apply new settings. Selecting another model unloads the old
    /// one; a new unload timeout applies from the next use.
    pub async fn update_settings(&self, new: MlxSettings) -> Result<MlxSettings> {
        self.store.spec(&new.selected_model)?;
        let old = self.settings();
        new.save(&self.settings_path)?;
        *self.settings.lock().expect("settings poisoned") = new.clone();
        if old.selected_model != new.selected_model {
            self.session.unload_and_stop().await?;
        }
        Ok(new)
    }

    /// Whether a sidecar process is running now.
    pub fn sidecar_running(&self) -> bool {
        self.session.sidecar_running()
    }

    /// The pid of the running sidecar (its `uv run` process group), for diagnostics.
    pub fn sidecar_pid(&self) -> Option<u32> {
        self.session.sidecar_pid()
    }

    /// Unload, stop the sidecar and wait for it (call on app exit; dropping the
    /// manager also kills the sidecar, without waiting politely).
    pub async fn shutdown(&self) {
        if let Err(error) = self.session.unload_and_stop().await {
            tracing::warn!(%error, "unload at shutdown failed; the sidecar is stopped anyway");
        }
    }
}
