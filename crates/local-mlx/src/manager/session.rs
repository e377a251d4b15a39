//! The loaded model's life: start the sidecar, load, generate, unload, stop.
//!
//! One async lock (`loaded`) is held for each of those steps, so two `process_text`
//! calls are served one after the other with a single load, a delete or an idle unload
//! waits for (or refuses during) a generation, and the record of what is loaded never
//! disagrees with the sidecar. The record keeps the sidecar client it was loaded
//! through: if that process died, the model is known to be gone without asking.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;

use super::idle::IdleTimer;
use super::{ProcessOutput, Timings};
use crate::error::{Error, Result};
use crate::events::{EventSink, LoadPhase, MlxModelStateEvent};
use crate::postprocess::{build_prompt, guard, max_tokens_for};
use crate::settings::ModelUnloadTimeout;
use crate::sidecar::{Client, FinishReason, GenerateRequest, Phase, SidecarConfig, SidecarSupervisor};
use crate::state::{ModelState, Transition};
use crate::store::ModelStore;

/// Clean-up wants faithful, not creative: greedy decoding, which also makes the same
/// transcript give the same text every time (the seed's 0.7 stays the sidecar's
/// default for other callers).
const TEMPERATURE: f64 = 0.0;

/// What is loaded, and through which sidecar process.
struct Loaded {
    model_id: String,
    client: Arc<Client>,
}

pub(super) struct Session {
    store: Arc<ModelStore>,
    sidecar: SidecarSupervisor,
    sink: Arc<dyn EventSink>,
    loaded: Mutex<Option<Loaded>>,
    idle: IdleTimer,
}

impl Session {
    pub fn new(store: Arc<ModelStore>, sidecar: SidecarConfig, sink: Arc<dyn EventSink>) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<Session>| {
            let weak = weak.clone();
            Session {
                store,
                sidecar: SidecarSupervisor::new(sidecar),
                sink,
                loaded: Mutex::new(None),
                idle: IdleTimer::new(move |epoch| {
                    let weak = weak.clone();
                    async move {
                        if let Some(session) = weak.upgrade() {
                            session.unload_if_still_idle(epoch).await;
                        }
                    }
                }),
            }
        })
    }

    /// Enhance `text` with `model_id` and the prompt template.
    pub async fn process(
        &self,
        model_id: &str,
        template: &str,
        text: &str,
        constrain_to_input: bool,
        timeout: ModelUnloadTimeout,
    ) -> Result<ProcessOutput> {
        let started = Instant::now();
        let spec = self.store.spec(model_id)?;
        let mut loaded = self.loaded.lock().await;
        self.idle.cancel();
        let Some(snapshot) = self.store.snapshot(&spec) else {
            // Deleted behind our back (another tool, or by hand): a copy still loaded
            // in the sidecar must not outlive its files.
            if loaded.as_ref().is_some_and(|l| l.model_id == spec.id) {
                self.unload_locked(&mut loaded).await?;
                self.sidecar.shutdown().await;
            }
            return Err(Error::NotDownloaded { model_id: spec.id });
        };
        let mut timings = Timings::default();
        let client = self.ensure_loaded(&mut loaded, &spec.id, snapshot, &mut timings).await?;

        let prompt = build_prompt(template, text);
        let request = GenerateRequest {
            system: Some(prompt.system).filter(|s| !s.is_empty()),
            max_tokens: max_tokens_for(text),
            temperature: TEMPERATURE,
            constrain_to_input: constrain_to_input.then_some(true),
            ..GenerateRequest::new(prompt.user)
        };
        let generate_started = Instant::now();
        let result = {
            let _generating = self.store.generating(&spec.id);
            client.generate(&request).await
        };
        timings.generate_ms = generate_started.elapsed().as_millis() as u64;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                if error.process_died() {
                    self.forget_loaded(&mut loaded);
                }
                self.schedule_idle(timeout, &loaded).await;
                return Err(error.into());
            }
        };
        let finish = match response.finish_reason {
            Some(FinishReason::Length) => Some("length"),
            Some(_) => Some("stop"),
            None => None,
        };
        let guarded = guard(text, &response.response, finish);
        for warning in &guarded.warnings {
            tracing::warn!(model_id = %spec.id, "{warning}");
        }
        if timeout == ModelUnloadTimeout::Immediately {
            // The text is ready: a failed unload must not cost the user their result.
            if let Err(error) = self.unload_locked(&mut loaded).await {
                tracing::warn!(%error, "unload after use failed; stopping the sidecar anyway");
            }
            self.sidecar.shutdown().await;
        } else {
            self.schedule_idle(timeout, &loaded).await;
        }
        timings.total_ms = started.elapsed().as_millis() as u64;
        Ok(ProcessOutput {
            text: guarded.text,
            enhanced: guarded.enhanced,
            warnings: guarded.warnings,
            model_id: spec.id,
            tokens_generated: response.tokens_generated,
            prompt_tokens: response.prompt_tokens.unwrap_or(0),
            cached_tokens: response.cached_tokens.unwrap_or(0),
            timings,
        })
    }

    /// Start the sidecar and load `model_id`, then start the idle clock.
    pub async fn warm_up(&self, model_id: &str, timeout: ModelUnloadTimeout) -> Result<()> {
        let spec = self.store.spec(model_id)?;
        let snapshot = self.store.snapshot(&spec).ok_or_else(|| Error::NotDownloaded { model_id: spec.id.clone() })?;
        let mut loaded = self.loaded.lock().await;
        self.idle.cancel();
        self.ensure_loaded(&mut loaded, &spec.id, snapshot, &mut Timings::default()).await?;
        self.schedule_idle(timeout, &loaded).await;
        Ok(())
    }

    /// The idle deadline of `epoch` passed: unload and stop, unless a use came since.
    async fn unload_if_still_idle(&self, epoch: u64) {
        let mut loaded = self.loaded.lock().await;
        if self.idle.epoch() != epoch {
            return;
        }
        tracing::info!("idle timeout reached: unloading the model and stopping the sidecar");
        if let Err(error) = self.unload_locked(&mut loaded).await {
            tracing::warn!(%error, "idle unload failed; stopping the sidecar anyway");
        }
        self.sidecar.shutdown().await;
    }

    /// Unload the model (if any) and stop the sidecar, so its memory really returns.
    pub async fn unload_and_stop(&self) -> Result<()> {
        let mut loaded = self.loaded.lock().await;
        self.idle.cancel();
        let result = self.unload_locked(&mut loaded).await;
        self.sidecar.shutdown().await;
        result
    }

    /// Make way for deleting `model_id`: refused while it loads or generates (the lock
    /// is busy then); a loaded, idle model is unloaded and the sidecar stopped.
    pub async fn release_for_delete(&self, model_id: &str) -> Result<()> {
        let Ok(mut loaded) = self.loaded.try_lock() else {
            let spec = self.store.spec(model_id)?;
            let state = self.store.state(&spec);
            if matches!(state, ModelState::Loading | ModelState::Ready) || self.store.is_generating(model_id) {
                return Err(Error::Busy {
                    model_id: model_id.to_string(),
                    state: if self.store.is_generating(model_id) { "generating".into() } else { state.to_string() },
                    action: "deleting it",
                });
            }
            return Ok(()); // another model is busy; this one is free to go
        };
        if loaded.as_ref().is_some_and(|l| l.model_id == model_id) {
            self.idle.cancel();
            self.unload_locked(&mut loaded).await?;
            self.sidecar.shutdown().await;
        }
        Ok(())
    }

    pub fn sidecar_running(&self) -> bool {
        self.sidecar.is_running()
    }

    pub fn sidecar_pid(&self) -> Option<u32> {
        self.sidecar.pid()
    }

    /// The client with `model_id` loaded, starting the sidecar and loading as needed.
    async fn ensure_loaded(
        &self,
        loaded: &mut Option<Loaded>,
        model_id: &str,
        snapshot: PathBuf,
        timings: &mut Timings,
    ) -> Result<Arc<Client>> {
        if let Some(current) = loaded.as_ref() {
            let same_process = self.sidecar.client().is_some_and(|c| Arc::ptr_eq(&c, &current.client));
            if !same_process {
                self.forget_loaded(loaded); // the sidecar died with the model in it
            } else if current.model_id == model_id {
                return Ok(current.client.clone());
            } else {
                self.unload_locked(loaded).await?; // switching models
            }
        }
        self.store.transition(model_id, Transition::StartLoad)?;
        match self.start_and_load(model_id, &snapshot, timings).await {
            Ok(client) => {
                self.store.transition(model_id, Transition::LoadCompleted)?;
                *loaded = Some(Loaded { model_id: model_id.to_string(), client: client.clone() });
                Ok(client)
            }
            Err(error) => {
                self.store.transition(model_id, Transition::LoadFailed)?;
                self.sink.emit(MlxModelStateEvent::error(model_id, error.to_string()));
                Err(error)
            }
        }
    }

    async fn start_and_load(
        &self,
        model_id: &str,
        snapshot: &std::path::Path,
        timings: &mut Timings,
    ) -> Result<Arc<Client>> {
        let start = Instant::now();
        let sink = self.sink.clone();
        let id = model_id.to_string();
        let client = self
            .sidecar
            .ensure_running(move |phase| {
                let phase = match phase {
                    Phase::SyncingEnvironment => LoadPhase::SyncingEnvironment,
                    Phase::StartingServer => LoadPhase::StartingServer,
                    Phase::Ready => return,
                };
                sink.emit(MlxModelStateEvent::loading(&id, phase));
            })
            .await?;
        timings.start_ms = start.elapsed().as_millis() as u64;
        let load = Instant::now();
        self.sink.emit(MlxModelStateEvent::loading(model_id, LoadPhase::LoadingModel));
        client.load(snapshot).await?;
        timings.load_ms = load.elapsed().as_millis() as u64;
        Ok(client)
    }

    /// `/unload` if a model is loaded in a live sidecar; the state goes back to
    /// `Downloaded` either way.
    async fn unload_locked(&self, loaded: &mut Option<Loaded>) -> Result<()> {
        let Some(current) = loaded.take() else { return Ok(()) };
        let alive = self.sidecar.client().is_some_and(|c| Arc::ptr_eq(&c, &current.client));
        let result = if alive { current.client.unload().await.map(|_| ()) } else { Ok(()) };
        self.store.transition(&current.model_id, Transition::Unload)?;
        result.map_err(Error::from)
    }

    /// The sidecar died: the model is not loaded any more.
    fn forget_loaded(&self, loaded: &mut Option<Loaded>) {
        if let Some(current) = loaded.take() {
            let _ = self.store.transition(&current.model_id, Transition::Unload);
        }
    }

    async fn schedule_idle(&self, timeout: ModelUnloadTimeout, loaded: &Option<Loaded>) {
        if loaded.is_none() {
            return;
        }
        if let Some(limit) = timeout.idle_limit() {
            self.idle.schedule(limit);
        }
    }
}
