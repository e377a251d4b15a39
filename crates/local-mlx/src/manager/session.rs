//! The loaded model's life: start the sidecar, load, generate, unload, stop.
//!
//! The session owns the runtime state: which model is Loading or Ready (each move
//! checked with [`ModelState::checked_next`] and announced as an event), and whether a
//! generation is under way. The store knows only the disk; the manager overlays this.
//!
//! One async lock (`loaded`) is held for each of those steps, so two chat calls are
//! served one after the other with a single load, a delete or an idle unload waits for
//! (or refuses during) a generation, and the record of what is loaded never disagrees
//! with the sidecar. The record keeps the sidecar client it was loaded through: if that
//! process died, the model is known to be gone without asking.
//!
//! Cancel safety: a caller may drop its future or stream at any point. Taking the lock
//! and loading run in a task of their own ([`Session::prepare`]), so a dropped caller
//! never leaves a load half-recorded; a [`Rearm`] guard, alive from the moment the idle
//! deadline is cancelled, arms it again however the call ends; and dropping the sidecar
//! stream closes its connection, which makes the sidecar cancel the generation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use super::idle::IdleTimer;
use super::{Runtime, Timings};
use crate::catalog::ModelSpec;
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::error::{Error, Result};
use crate::events::EventType;
use crate::events::{EventSink, LoadPhase, MlxModelStateEvent};
use crate::settings::KeepAlive;
use crate::sidecar::{Client, GenerateChunk, GenerateResponse, Phase, SidecarConfig, SidecarError, SidecarSupervisor};
use crate::state::{ModelState, Transition};
use crate::store::ModelStore;

/// What is loaded, and through which sidecar process.
pub(super) struct Loaded {
    model_id: String,
    client: Arc<Client>,
}

pub(super) type LoadedGuard = OwnedMutexGuard<Option<Loaded>>;

pub(super) struct Session {
    store: Arc<ModelStore>,
    sidecar: SidecarSupervisor,
    sink: Arc<dyn EventSink>,
    loaded: Arc<Mutex<Option<Loaded>>>,
    idle: IdleTimer,
    runtime: std::sync::Mutex<Runtime>,
    /// The model in `Loading` or `Ready`, if any (every other model is on disk only).
    model_state: std::sync::Mutex<Option<(String, ModelState)>>,
    /// The model a generation is running on (one at a time: the lock is held).
    generating: std::sync::Mutex<Option<String>>,
}

/// Marks a generation as under way until dropped (RAII, so an early return or a
/// dropped stream cannot leave the mark behind).
/// It also holds the repo's shared cross-process lock, so `rm` in another process is
/// refused while the model's files are in use.
struct GeneratingGuard {
    session: Arc<Session>,
    _repo_lock: Option<crate::hub::RepoLock>,
}

impl Drop for GeneratingGuard {
    fn drop(&mut self) {
        *self.session.generating.lock().expect("generating poisoned") = None;
    }
}

/// Arms the idle deadline when dropped (unless disarmed): however a call ends, by
/// returning, by an error or by being dropped, the model is unloaded after the limit.
struct Rearm {
    session: Arc<Session>,
    keep_alive: KeepAlive,
    armed: bool,
}

impl Drop for Rearm {
    fn drop(&mut self) {
        let Some(limit) = self.keep_alive.idle_limit() else { return };
        // The timer spawns a task; outside a runtime (a manager dropped at exit) there
        // is nothing left to unload for.
        if self.armed && tokio::runtime::Handle::try_current().is_ok() {
            self.session.idle.schedule(limit);
        }
    }
}

/// The lock, held, with the model loaded.
struct Prepared {
    loaded: LoadedGuard,
    client: Arc<Client>,
    timings: Timings,
    rearm: Rearm,
}

impl Session {
    pub fn new(store: Arc<ModelStore>, sidecar: SidecarConfig, sink: Arc<dyn EventSink>) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<Session>| {
            let weak = weak.clone();
            Session {
                store,
                sidecar: SidecarSupervisor::new(sidecar),
                sink,
                loaded: Arc::new(Mutex::new(None)),
                idle: IdleTimer::new(move |epoch| {
                    let weak = weak.clone();
                    async move {
                        if let Some(session) = weak.upgrade() {
                            session.unload_if_still_idle(epoch).await;
                        }
                    }
                }),
                runtime: std::sync::Mutex::new(Runtime::Idle),
                model_state: std::sync::Mutex::new(None),
                generating: std::sync::Mutex::new(None),
            }
        })
    }

    /// Generate an answer to `request`, piece by piece (see `MlxModelManager::chat_stream`).
    pub async fn chat_stream(
        self: &Arc<Self>,
        request: ChatRequest,
        keep_alive: KeepAlive,
    ) -> Result<BoxStream<'static, Result<ChatChunk>>> {
        let started = Instant::now();
        request.validate()?;
        let spec = crate::catalog::resolve(&request.model)?;
        let Prepared { mut loaded, client, timings, rearm } = self.prepare(spec.clone(), keep_alive).await?;
        let generating = self.start_generating(&spec);
        let generate_started = Instant::now();
        let inner = match client.generate_stream(&request.to_generate()).await {
            Ok(inner) => inner,
            Err(error) => {
                if error.process_died() {
                    self.forget_loaded(&mut loaded);
                }
                return Err(error.into());
            }
        };
        let generation = Generation {
            session: self.clone(),
            model_id: spec.id,
            keep_alive,
            started,
            generate_started,
            timings,
            inner: Some(inner),
            held: Some((loaded, generating)),
            rearm: Some(rearm),
        };
        Ok(futures_util::stream::unfold(generation, Generation::next).boxed())
    }

    /// Start the sidecar and load `spec`'s model; the idle clock starts from here.
    pub async fn load_ahead(self: &Arc<Self>, spec: ModelSpec, keep_alive: KeepAlive) -> Result<()> {
        self.prepare(spec, keep_alive).await.map(drop)
    }

    fn start_generating(self: &Arc<Self>, spec: &ModelSpec) -> GeneratingGuard {
        let repo_lock = self
            .store
            .share_repo(spec)
            .inspect_err(|e| tracing::warn!(model_id = %spec.id, "generating without the cross-process repo lock: {e}"))
            .ok();
        *self.generating.lock().expect("generating poisoned") = Some(spec.id.clone());
        GeneratingGuard { session: self.clone(), _repo_lock: repo_lock }
    }

    /// Whether a generation is under way on `model_id`.
    pub fn is_generating(&self, model_id: &str) -> bool {
        self.generating.lock().expect("generating poisoned").as_deref() == Some(model_id)
    }

    /// Sync the sidecar's Python environment if it needs it (see
    /// [`SidecarSupervisor::sync_environment`]).
    pub async fn sync_environment(&self) -> Result<Option<std::time::Duration>> {
        Ok(self.sidecar.sync_environment().await?)
    }

    /// `Loading` or `Ready` when `model_id` is the session's model; `None` otherwise.
    pub fn model_state(&self, model_id: &str) -> Option<ModelState> {
        let state = self.model_state.lock().expect("model state poisoned");
        state.as_ref().filter(|(id, _)| id == model_id).map(|(_, state)| *state)
    }

    /// Move `model_id` by `transition` (from `Downloaded` when it is not the session's
    /// model), refusing what the state machine does not allow, and announce it.
    fn move_model(&self, model_id: &str, transition: Transition) -> Result<ModelState> {
        let mut slot = self.model_state.lock().expect("model state poisoned");
        let from = match slot.as_ref() {
            Some((id, state)) if id == model_id => *state,
            _ => ModelState::Downloaded,
        };
        let to = from.checked_next(model_id, transition)?;
        *slot = matches!(to, ModelState::Loading | ModelState::Ready).then(|| (model_id.to_string(), to));
        drop(slot);
        let event = match transition {
            Transition::StartLoad => Some(EventType::LoadingStarted),
            Transition::LoadCompleted => Some(EventType::LoadingCompleted),
            Transition::Unload => Some(EventType::Unloaded),
            _ => None,
        };
        if let Some(event) = event {
            self.sink.emit(MlxModelStateEvent::new(event, model_id));
        }
        Ok(to)
    }

    /// Take the lock and load `spec`'s model, in a task of its own: if the caller goes
    /// away meanwhile, a load under way still completes and is recorded, and the idle
    /// deadline is armed again; while still waiting for the lock, nothing happens at all.
    async fn prepare(self: &Arc<Self>, spec: ModelSpec, keep_alive: KeepAlive) -> Result<Prepared> {
        let (tx, rx) = oneshot::channel();
        let session = self.clone();
        tokio::spawn(async move {
            let mut loaded = session.loaded.clone().lock_owned().await;
            if tx.is_closed() {
                return;
            }
            session.idle.cancel();
            let rearm = Rearm { session: session.clone(), keep_alive, armed: true };
            let mut timings = Timings::default();
            let result = session.load(&mut loaded, &spec, &mut timings).await;
            // Not delivered (the caller is gone): dropping it re-arms and unlocks.
            let _ = tx.send(result.map(|client| Prepared { loaded, client, timings, rearm }));
        });
        rx.await.expect("the preparation task ends by sending its result")
    }

    /// The client with `spec`'s model loaded; a model deleted behind our back is
    /// released from the sidecar and reported missing.
    async fn load(&self, loaded: &mut Option<Loaded>, spec: &ModelSpec, timings: &mut Timings) -> Result<Arc<Client>> {
        let Some(snapshot) = self.store.snapshot(spec) else {
            // Deleted behind our back (another tool, or by hand): a copy still loaded
            // in the sidecar must not outlive its files.
            if loaded.as_ref().is_some_and(|l| l.model_id == spec.id) {
                self.unload_locked(loaded).await?;
                self.sidecar.shutdown().await;
            }
            return Err(Error::NotDownloaded { model_id: spec.id.clone() });
        };
        self.ensure_loaded(loaded, &spec.id, snapshot, timings).await
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

    /// Make way for deleting `model_id`'s files: refused while the model is in use (the
    /// lock is busy with it: loading, loaded for a call, generating); a loaded, idle
    /// model is unloaded and the sidecar stopped. The returned lock, when it could be
    /// taken, keeps any load from starting until the files are gone.
    pub async fn release_for_delete(&self, model_id: &str) -> Result<Option<LoadedGuard>> {
        let Ok(mut loaded) = self.loaded.clone().try_lock_owned() else {
            if let Some(state) = self.model_state(model_id) {
                // Busy with this model. Ready counts: the lock is held for a call on it.
                let generating = self.is_generating(model_id);
                return Err(crate::state::delete_refusal(model_id, state, generating).unwrap_or(Error::Busy {
                    model_id: model_id.to_string(),
                    state: "in use".into(),
                    action: "deleting it",
                }));
            }
            return Ok(None); // another model is busy; this one is free to go
        };
        if loaded.as_ref().is_some_and(|l| l.model_id == model_id) {
            self.idle.cancel();
            self.unload_locked(&mut loaded).await?;
            self.sidecar.shutdown().await;
        }
        Ok(Some(loaded))
    }

    pub fn sidecar_running(&self) -> bool {
        self.sidecar.is_running()
    }

    pub fn sidecar_pid(&self) -> Option<u32> {
        self.sidecar.pid()
    }

    /// What the loaded-model slot is doing; a model whose sidecar died is not ready.
    pub fn runtime(&self) -> Runtime {
        let runtime = self.runtime.lock().expect("runtime poisoned").clone();
        match runtime {
            Runtime::Ready { .. } if !self.sidecar.is_running() => Runtime::Idle,
            runtime => runtime,
        }
    }

    fn set_runtime(&self, runtime: Runtime) {
        *self.runtime.lock().expect("runtime poisoned") = runtime;
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
        self.move_model(model_id, Transition::StartLoad)?;
        match self.start_and_load(model_id, &snapshot, timings).await {
            Ok(client) => {
                self.move_model(model_id, Transition::LoadCompleted)?;
                *loaded = Some(Loaded { model_id: model_id.to_string(), client: client.clone() });
                self.set_runtime(Runtime::Ready { model_id: model_id.to_string() });
                Ok(client)
            }
            Err(error) => {
                // A failed load leaves no model in the sidecar.
                self.set_runtime(Runtime::Idle);
                self.move_model(model_id, Transition::LoadFailed)?;
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
        let loading = Runtime::Loading { model_id: id.clone() };
        self.set_runtime(if self.sidecar.is_running() { loading.clone() } else { Runtime::Starting });
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
        self.set_runtime(loading);
        self.sink.emit(MlxModelStateEvent::loading(model_id, LoadPhase::LoadingModel));
        client.load(snapshot).await?;
        timings.load_ms = load.elapsed().as_millis() as u64;
        Ok(client)
    }

    /// `/unload` if a model is loaded in a live sidecar; the state goes back to
    /// `Downloaded` either way.
    async fn unload_locked(&self, loaded: &mut Option<Loaded>) -> Result<()> {
        let Some(current) = loaded.take() else { return Ok(()) };
        self.set_runtime(Runtime::Idle);
        let alive = self.sidecar.client().is_some_and(|c| Arc::ptr_eq(&c, &current.client));
        let result = if alive { current.client.unload().await.map(|_| ()) } else { Ok(()) };
        self.move_model(&current.model_id, Transition::Unload)?;
        result.map_err(Error::from)
    }

    /// The sidecar died: the model is not loaded any more.
    fn forget_loaded(&self, loaded: &mut Option<Loaded>) {
        if let Some(current) = loaded.take() {
            self.set_runtime(Runtime::Idle);
            let _ = self.move_model(&current.model_id, Transition::Unload);
        }
    }
}

/// One generation under way: holds the lock and the generating mark until its answer
/// is complete (or it fails, or is dropped).
struct Generation {
    session: Arc<Session>,
    model_id: String,
    keep_alive: KeepAlive,
    started: Instant,
    generate_started: Instant,
    timings: Timings,
    /// `None` once the last item was given.
    inner: Option<BoxStream<'static, crate::sidecar::Result<GenerateChunk>>>,
    held: Option<(LoadedGuard, GeneratingGuard)>,
    rearm: Option<Rearm>,
}

impl Generation {
    async fn next(mut self) -> Option<(Result<ChatChunk>, Self)> {
        let item = match self.inner.as_mut()?.next().await {
            Some(Ok(GenerateChunk::Token(text))) => return Some((Ok(ChatChunk::Text(text)), self)),
            Some(Ok(GenerateChunk::Done(response))) => Ok(ChatChunk::Done(self.finish(response).await)),
            Some(Err(error)) => {
                if error.process_died() {
                    if let Some((loaded, _)) = self.held.as_mut() {
                        self.session.forget_loaded(loaded);
                    }
                }
                Err(error.into())
            }
            None => {
                Err(SidecarError::BadResponse { what: "generate", detail: "the stream ended without a result".into() }
                    .into())
            }
        };
        // Release the lock now, not when the caller drops the stream; re-arm the deadline.
        self.inner = None;
        self.held = None;
        self.rearm = None;
        Some((item, self))
    }

    async fn finish(&mut self, response: GenerateResponse) -> ChatResponse {
        self.timings.generate_ms = self.generate_started.elapsed().as_millis() as u64;
        if self.keep_alive == KeepAlive::Immediately {
            if let Some((loaded, _)) = self.held.as_mut() {
                // The text is ready: a failed unload must not cost the user their result.
                if let Err(error) = self.session.unload_locked(loaded).await {
                    tracing::warn!(%error, "unload after use failed; stopping the sidecar anyway");
                }
                self.session.sidecar.shutdown().await;
            }
            if let Some(rearm) = self.rearm.as_mut() {
                rearm.armed = false;
            }
        }
        self.timings.total_ms = self.started.elapsed().as_millis() as u64;
        ChatResponse {
            model_id: self.model_id.clone(),
            text: response.response,
            reasoning: response.reasoning,
            finish_reason: response.finish_reason.into(),
            prompt_tokens: response.prompt_tokens.unwrap_or(0),
            completion_tokens: response.tokens_generated,
            cached_tokens: response.cached_tokens.unwrap_or(0),
            timings: self.timings.clone(),
        }
    }
}
