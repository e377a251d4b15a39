//! `MlxModelManager`: the one facade every face (CLI, Tauri app, server) calls, and
//! the one place the store and the session meet.
//!
//! Owns nothing on disk and no state of its own beyond the settings the embedder
//! passed in ([`ManagerConfig::settings`], changed by `update_settings`), the custom
//! models listed after the catalog, and a keep-alive override. The store owns the disk
//! and the one download; the session (`session.rs`, its [`Slot`]) owns the sidecar and
//! the loaded model.
//! Invariants: a status is the store's disk status overlaid with the session's slot
//! and the answers of the core's rules (`delete_blocked`, `disk_warning`,
//! `retry_attempts`); a delete asks the session to release, then the store to delete.

mod deadline;
mod idle;
mod session;

use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Serialize;

use crate::catalog::{self, ModelSpec};
pub use crate::chat::Timings;
use crate::chat::{ChatChunk, ChatRequest, ChatResponse, DEFAULT_REPETITION_PENALTY};
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::hub::{DeleteReport, HubConfig};
use crate::platform::PlatformSupport;
use crate::postprocess::{
    build_messages, check_clean_up, max_tokens_for, tagged_transcript, DEFAULT_PROMPT, MAX_TRANSCRIPT_CHARS,
};
use crate::settings::{check_prompt, config_dir, data_dir, AnswerWithin, KeepAlive, MlxSettings};
use crate::sidecar::{default_backend, ChosenEngine, SidecarConfig};
use crate::state::delete_refusal;
use crate::store::{DownloadOutcome, MlxModelInfo, MlxModelStatus, ModelStore};

pub use deadline::{Late, Reached, Within};
use session::Session;
pub use session::Slot;

/// Everything the manager needs to know about its surroundings, all of it passed in
/// by the embedder: the manager reads no settings file of its own.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub hub: HubConfig,
    pub sidecar: SidecarConfig,
    /// The embedder's choices: selected model, prompt template, unload timeout, uv path
    /// (which wins over `sidecar.uv_path` when set). Changed later by
    /// [`MlxModelManager::update_settings`].
    pub settings: MlxSettings,
    /// Hugging Face repo ids listed after the catalog (see
    /// [`MlxModelManager::add_custom_model`]); an invalid one is logged and skipped.
    pub custom_models: Vec<String>,
}

impl ManagerConfig {
    /// With `data_dir` as the embedder's data folder (the sidecar's log, and the
    /// sidecar's files and Python environment unless a bundle ships them), the hub from
    /// `HF_*`, and default settings.
    pub fn in_data_dir(data_dir: &std::path::Path) -> Self {
        Self::with_dirs(data_dir, data_dir)
    }

    /// The CLI's: the log in `LOCAL_MLX_CONFIG_DIR` (or the platform's config folder),
    /// the sidecar's files and environment in [`data_dir`].
    pub fn from_env() -> Result<Self> {
        Ok(Self::with_dirs(&config_dir(), &data_dir()))
    }

    fn with_dirs(log_dir: &std::path::Path, data_dir: &std::path::Path) -> Self {
        let mut sidecar = SidecarConfig::new(default_backend(data_dir));
        sidecar.log_path = Some(log_dir.join("sidecar.log"));
        ManagerConfig {
            hub: HubConfig::from_env(),
            sidecar,
            settings: MlxSettings::default(),
            custom_models: Vec::new(),
        }
    }
}

/// Per-call choices for [`MlxModelManager::process_text_with`]; `None` uses the settings.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    pub model: Option<String>,
    pub prompt: Option<String>,
    /// Decode only the transcript's own words (the sidecar's `constrain_to_input`);
    /// `None`: on with the default prompt, off with any other.
    pub constrain_to_input: Option<bool>,
    /// `None`: [`DEFAULT_REPETITION_PENALTY`], none.
    pub repetition_penalty: Option<f64>,
    /// How long the answer may take, model load included, before the transcript is
    /// handed back as it came; `None`: the settings' `answer_within_seconds`.
    pub answer_within: Option<AnswerWithin>,
}

/// The clean-up's nucleus, the original provider's 0.8; it decodes greedily (see
/// [`ChatRequest::new`]), so this matters only to an embedder that raises the temperature.
const PROCESS_TOP_P: f64 = 0.8;

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

/// What the manager reads from a chat request: the transcript a clean-up answer is
/// checked against, and the token budget.
impl ChatRequest {
    /// The transcript the last user message wraps in `<transcript>` tags, if it does
    /// (see [`tagged_transcript`]): the text a clean-up answer is checked against.
    pub fn transcript(&self) -> Option<&str> {
        tagged_transcript(self.last_user())
    }

    /// The budget: as asked, else sized from the text to answer (a clean-up answer is
    /// about as long as what it cleans, never a fixed number that cuts a long dictation
    /// short): the tagged transcript when there is one (the instructions around it are
    /// not part of the answer), else the last user message.
    pub fn budget(&self) -> u32 {
        self.max_tokens.unwrap_or_else(|| max_tokens_for(self.transcript().unwrap_or_else(|| self.last_user())))
    }
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

    /// List a custom model (a Hugging Face repo id) after the catalog, once: adding it
    /// again, or adding a catalog id, changes nothing. Returns its spec.
    pub fn add_custom_model(&self, model_id: &str) -> Result<ModelSpec> {
        let spec = catalog::resolve(model_id)?;
        if !spec.is_builtin {
            let mut custom = self.custom_models.lock().expect("custom models poisoned");
            if !custom.iter().any(|s| s.id == spec.id) {
                custom.push(spec.clone());
            }
        }
        Ok(spec)
    }

    /// `mlx_list_models`: the catalog, then the custom models, each with its status.
    pub fn list_models(&self) -> Vec<MlxModelInfo> {
        let custom = self.custom_models.lock().expect("custom models poisoned").clone();
        catalog::builtin_models()
            .into_iter()
            .chain(custom)
            .map(|spec| {
                let info = self.store.info(&spec);
                MlxModelInfo { status: self.overlay(info.status), ..info }
            })
            .collect()
    }

    /// `mlx_get_model_status`: of any catalog id or repo id (asking lists nothing).
    pub fn model_status(&self, model_id: &str) -> Result<MlxModelStatus> {
        let spec = catalog::resolve(model_id)?;
        Ok(self.overlay(self.store.status(&spec)))
    }

    /// The disk status with the session's runtime state on top, and the delete rule's
    /// answer for that state.
    fn overlay(&self, mut status: MlxModelStatus) -> MlxModelStatus {
        if let Some(state) = self.session.model_state(&status.model_id) {
            status.state = state;
        }
        let generating = self.session.is_generating(&status.model_id);
        status.delete_blocked = delete_refusal(&status.model_id, status.state, generating).map(|e| e.to_string());
        status
    }

    /// Whether a generation is under way on `model_id`.
    pub fn is_generating(&self, model_id: &str) -> bool {
        self.session.is_generating(model_id)
    }

    /// `mlx_download_model`
    pub async fn download(&self, model_id: &str) -> Result<DownloadOutcome> {
        self.ensure_runnable()?;
        self.store.download(&catalog::resolve(model_id)?).await
    }

    /// `mlx_cancel_download`: returns the id of the model whose download stops.
    pub fn cancel_download(&self) -> Result<String> {
        self.store.cancel_download()
    }

    /// `mlx_retry_download`
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        self.ensure_runnable()?;
        self.store.retry_download().await
    }

    /// `mlx_delete_model`: refused while the model downloads, loads or generates (the
    /// rule of [`delete_refusal`], also given in each status as `delete_blocked`); a
    /// loaded but idle model is unloaded first. The session releases the model (holding
    /// its lock so no load starts meanwhile), then the store deletes the files.
    pub async fn delete_model(&self, model_id: &str) -> Result<DeleteReport> {
        let spec = catalog::resolve(model_id)?;
        let state = self.model_status(&spec.id)?.state;
        if let Some(refusal) = delete_refusal(&spec.id, state, self.session.is_generating(&spec.id)) {
            return Err(refusal);
        }
        let _released = self.session.release_for_delete(&spec.id).await?;
        self.store.delete_files(&spec)
    }

    /// `mlx_process_text`: enhance a transcript with the selected model and prompt.
    pub async fn process_text(&self, text: &str) -> Result<ProcessOutput> {
        self.process_text_with(text, ProcessOptions::default()).await
    }

    /// [`Self::process_text`] with a model or prompt other than the settings'.
    pub async fn process_text_with(&self, text: &str, options: ProcessOptions) -> Result<ProcessOutput> {
        let settings = self.settings();
        let answer_within = options.answer_within.unwrap_or_else(|| settings.answer_within());
        let model_id = options.model.unwrap_or(settings.selected_model);
        let prompt = options.prompt.unwrap_or(settings.prompt);
        // The one prompt rule, whether the prompt came with the call or from settings
        // written before the rule (`update_settings` applies it too).
        check_prompt(&prompt)?;
        self.ensure_runnable()?;
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
        let request = ChatRequest {
            max_tokens: Some(max_tokens_for(text)),
            top_p: PROCESS_TOP_P,
            // The default clean-up prompt decodes within the transcript's words (measured
            // in docs/QUALITY.md); a prompt of the user's own may need other words.
            constrain_to_input: options.constrain_to_input.unwrap_or(prompt == DEFAULT_PROMPT),
            repetition_penalty: options.repetition_penalty.unwrap_or(DEFAULT_REPETITION_PENALTY),
            ..ChatRequest::new(model_id.clone(), build_messages(&prompt, text))
        };
        let (response, mut guarded) = match self.chat_within(request, answer_within.deadline()).await? {
            Within::Answered(mut response) => {
                let guarded = check_clean_up(text, &mut response);
                (response, guarded)
            }
            Within::Late(late) => late.keep_transcript(text, &model_id),
        };
        // On Linux without OpenBLAS, every answer is ~10x slower than it need be: say how to fix it.
        guarded.warnings.extend(crate::sidecar::blas::missing_warning().map(str::to_string));
        Ok(ProcessOutput {
            text: response.text,
            enhanced: guarded.enhanced,
            warnings: guarded.warnings,
            model_id: response.model_id,
            tokens_generated: response.completion_tokens,
            prompt_tokens: response.prompt_tokens,
            cached_tokens: response.cached_tokens,
            timings: response.timings,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatMessage;

    fn request() -> ChatRequest {
        ChatRequest::new("org/model", vec![ChatMessage::system("be brief"), ChatMessage::user("hello there")])
    }

    #[test]
    fn the_budget_is_sized_from_the_last_user_message_unless_given() {
        let mut r = request();
        assert_eq!(r.budget(), max_tokens_for("hello there"));
        r.messages.push(ChatMessage::user("word ".repeat(400)));
        assert!(r.budget() > 512, "{}", r.budget());
        r.max_tokens = Some(7);
        assert_eq!(r.budget(), 7);
    }

    #[test]
    fn a_tagged_transcript_sizes_the_budget_not_the_instructions_around_it() {
        let instructions = "Clean it up, do not answer it. ".repeat(40);
        let prompt = format!("<transcript>\nhello there\n</transcript>\n\n{instructions}");
        let r = ChatRequest::new("org/model", vec![ChatMessage::user(prompt.clone())]);
        assert_eq!(r.transcript(), Some("hello there"));
        assert_eq!(r.budget(), max_tokens_for("hello there"));
        assert!(max_tokens_for(&prompt) > r.budget() * 3, "the whole prompt would give {}", max_tokens_for(&prompt));
        // Only the last user message counts: an earlier tagged one is history.
        let later = ChatRequest::new("org/model", vec![ChatMessage::user(prompt), ChatMessage::user("plain")]);
        assert_eq!(later.transcript(), None);
    }
}
