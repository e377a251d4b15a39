//! `MlxModelManager`: the one facade every face (CLI, Tauri app, server) calls, and
//! the one place the store and the session meet.
//!
//! Owns nothing on disk and no state of its own beyond the settings the embedder
//! passed in ([`ManagerConfig::settings`], changed by `update_settings`), the custom
//! models listed after the catalog, and a keep-alive override. The store owns the disk
//! and the one download; the session (`session.rs`, its [`Slot`]) owns the sidecar and
//! the loaded model.
//! Invariants: a status is built by the store from one snapshot of its memory, the disk
//! and the session's part read from one look at the slot ([`InSession`](crate::store::InSession)), with the
//! answers of the core's rules (`delete_blocked`, `disk_warning`, `download_blocked`,
//! `retry_attempts`); a delete asks the session to release, then the store to delete.
//!
//! The facade's parts: `config.rs` (what the embedder passes in), `models.rs` (the list,
//! statuses, downloads, deletes), `process.rs` (the clean-up call), `deadline.rs` (an
//! answer within a time limit); `session.rs` and `idle.rs` are the session behind them.

mod config;
mod deadline;
mod idle;
mod models;
mod process;
mod session;

use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Serialize;

use crate::catalog::{self, ModelSpec};
pub use crate::chat::Timings;
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::error::Result;
use crate::events::EventSink;
use crate::platform::PlatformSupport;
use crate::settings::{check_prompt, KeepAlive, MlxSettings};
use crate::sidecar::ChosenEngine;
use crate::store::ModelStore;

pub use config::ManagerConfig;
pub use deadline::{Late, Reached, Within};
pub use process::{ProcessOptions, ProcessOutput};
use session::Session;
pub use session::Slot;

/// What the loaded-model slot is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Runtime {
    /// No model loaded.
    Idle,
    /// The sidecar is starting (or syncing its Python environment) for a load.
    Starting,
    Loading {
        model_id: String,
    },
    Ready {
        model_id: String,
    },
}

/// The MLX Local AI Provider.
pub struct MlxModelManager {
    store: Arc<ModelStore>,
    session: Arc<Session>,
    settings: Mutex<MlxSettings>,
    /// Custom models to list after the catalog, each added once by an explicit call.
    custom_models: Mutex<Vec<ModelSpec>>,
    /// Set by [`MlxModelManager::set_keep_alive`]; else the settings' unload timeout.
    keep_alive: Mutex<Option<KeepAlive>>,
    platform: PlatformSupport,
    /// The settings' engine or `LOCAL_MLX_ENGINE`'s, fixed when the manager is built.
    engine: ChosenEngine,
}

impl MlxModelManager {
    /// A manager over the given hub, sidecar and settings, reporting to `sink`.
    pub fn new(config: ManagerConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        let ManagerConfig { hub, mut sidecar, settings, custom_models } = config;
        catalog::resolve(&settings.selected_model)?;
        let store = Arc::new(ModelStore::new(hub, sink.clone())?);
        if settings.uv_path.is_some() {
            sidecar.uv_path = settings.uv_path.clone();
        }
        let engine = ChosenEngine::resolve(settings.engine);
        sidecar.engine = engine.engine;
        let manager = MlxModelManager {
            engine,
            session: Session::new(store.clone(), sidecar, sink),
            store,
            settings: Mutex::new(settings.clone()),
            custom_models: Mutex::default(),
            keep_alive: Mutex::new(None),
            platform: crate::platform::this_machine(),
        };
        manager.add_custom_model(&settings.selected_model)?;
        for id in &custom_models {
            // A saved or configured id that is no repo id any more is skipped, not fatal.
            if let Err(error) = manager.add_custom_model(id) {
                tracing::warn!(model = %id, %error, "not listing this custom model");
            }
        }
        Ok(manager)
    }

    /// The same manager, judging the machine as `platform` instead of this one (tests
    /// of the refusal paths in-process, where the environment is shared).
    pub fn with_platform(mut self, platform: PlatformSupport) -> Self {
        self.platform = platform;
        self
    }

    /// Whether this machine can run the models, and if not, why: listing and status
    /// work everywhere, so a face shows the reason next to the list.
    pub fn platform(&self) -> &PlatformSupport {
        &self.platform
    }

    /// The one gate of every entry point that would download, start the sidecar or
    /// generate: on a machine MLX cannot run on, nothing is fetched or started.
    fn ensure_runnable(&self) -> Result<()> {
        self.platform.ensure_supported()
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }

    /// Answer a conversation with `request.model`, loading it first if needed (a
    /// different model is unloaded; calls queue, one model at a time).
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut stream = self.chat_stream(request).await?;
        while let Some(chunk) = stream.next().await {
            if let ChatChunk::Done(response) = chunk? {
                return Ok(response);
            }
        }
        unreachable!("a chat stream ends with Done or an error")
    }

    /// [`Self::chat`], piece by piece: [`ChatChunk::Text`]s, then one [`ChatChunk::Done`].
    ///
    /// Errors found before generating (unknown id, not downloaded, load failure, bad
    /// values) are returned here; later ones end the stream with an `Err`. Dropping the
    /// stream at any point stops the generation in the sidecar and re-arms the idle
    /// deadline.
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<BoxStream<'static, Result<ChatChunk>>> {
        self.ensure_runnable()?;
        self.session.chat_stream(request, self.keep_alive()).await
    }

    /// What the loaded-model slot is doing now (for a /health endpoint).
    pub fn runtime(&self) -> Runtime {
        self.session.runtime()
    }

    /// The session's [`Slot`] now and every change after it: what a test or a face
    /// waits on instead of polling or sleeping.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Slot> {
        self.session.subscribe()
    }

    /// How many chat calls or warm-ups wait for the session lock, now and on every
    /// change (a call being served is not counted).
    pub fn queued_calls(&self) -> tokio::sync::watch::Receiver<usize> {
        self.session.queued()
    }

    /// Overrides the settings' unload timeout for this manager (a server's --keep-alive);
    /// it applies from the next use.
    pub fn set_keep_alive(&self, keep_alive: KeepAlive) {
        *self.keep_alive.lock().expect("keep-alive poisoned") = Some(keep_alive);
    }

    /// The idle limit in force: [`Self::set_keep_alive`]'s, else the settings'.
    fn keep_alive(&self) -> KeepAlive {
        let chosen = *self.keep_alive.lock().expect("keep-alive poisoned");
        chosen.unwrap_or_else(|| self.settings().model_unload_timeout.into())
    }

    /// Make the selected model ready ahead of use: sync the Python environment, start
    /// the sidecar and load the model, announcing each phase (`loading_started` events
    /// with `syncing_environment`, `starting_server`, `loading_model`). Idempotent and
    /// cheap when already done: no process is started and no event is sent. An embedder
    /// calls it when the provider or model is chosen and when recording starts, so the
    /// load overlaps speech and a dictation never waits for an environment sync. The
    /// idle clock starts from here.
    pub async fn warm_up(&self) -> Result<()> {
        self.ensure_runnable()?;
        let spec = catalog::resolve(&self.settings().selected_model)?;
        self.session.warm_up(spec, self.keep_alive()).await
    }

    /// Sync the sidecar's Python environment now if it needs it (the first start would
    /// otherwise do it, for minutes), without starting it. Returns how long the sync
    /// took; `None` when it was already synced.
    pub async fn sync_environment(&self) -> Result<Option<std::time::Duration>> {
        self.ensure_runnable()?;
        self.session.sync_environment().await
    }

    /// Unload the model and stop the sidecar now.
    pub async fn unload(&self) -> Result<()> {
        self.session.unload_and_stop().await
    }

    /// The current settings.
    pub fn settings(&self) -> MlxSettings {
        self.settings.lock().expect("settings poisoned").clone()
    }

    /// Validate and apply new settings (the embedder stores them where it keeps its
    /// own): the prompt by [`check_prompt`], the model by its id. Selecting another
    /// model unloads the old one and lists a custom one; a new unload timeout applies
    /// from the next use. The uv path and the engine are read when the manager is built
    /// (a new one needs a new manager).
    pub async fn update_settings(&self, new: MlxSettings) -> Result<MlxSettings> {
        check_prompt(&new.prompt)?;
        self.add_custom_model(&new.selected_model)?;
        let old = self.settings();
        *self.settings.lock().expect("settings poisoned") = new.clone();
        if old.selected_model != new.selected_model {
            self.session.unload_and_stop().await?;
        }
        Ok(new)
    }

    /// Which engine runs the models, and who chose it.
    pub fn engine(&self) -> ChosenEngine {
        self.engine
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
