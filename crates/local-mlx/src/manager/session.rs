//! The loaded model's life: start the sidecar, load, generate, unload, stop.
//!
//! Owns one value, the [`Slot`]: which model the session holds and how far it is
//! (starting the sidecar, loading, ready, generating). `runtime()`, `model_state()`,
//! `is_generating()` and the events are derived from it; it is published through a
//! `tokio::sync::watch` channel. The sidecar client the model is loaded in is kept
//! beside it, unpublished, so nothing calls the sidecar without the lock.
//!
//! Invariants: the slot (and its client) change only in [`Session::write`], which takes
//! the held lock as proof (so two calls are served one after the other with a single
//! load, and a delete or an idle unload waits for, or refuses during, a generation);
//! each change of the model's state is checked by [`ModelState::checked_next`] and
//! announced. A sidecar that dies with a model in it empties the slot: a watcher per
//! process waits for its end and, under the lock, moves the model to unloaded with an
//! error event quoting the process's last words.
//!
//! Cancel safety: a caller may drop its future or stream at any point. Taking the lock
//! and loading run in a task of their own ([`Session::acquire`]), so a dropped caller
//! never leaves a load half-recorded; a [`Rearm`] guard arms the idle deadline again
//! however the call ends; dropping the sidecar stream makes the sidecar cancel.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::{oneshot, watch, Mutex, OwnedMutexGuard};

use super::idle::IdleTimer;
use super::Runtime;
use crate::catalog::ModelSpec;
use crate::chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason, Timings};
use crate::error::{Error, Result};
use crate::events::EventType;
use crate::events::{EventSink, LoadPhase, MlxModelStateEvent};
use crate::settings::KeepAlive;
use crate::sidecar::{self, Client, GenerateChunk, GenerateRequest, GenerateResponse, Phase, SidecarConfig};
use crate::sidecar::{BackendSource, SidecarError, SidecarSupervisor};
use crate::state::{ModelState, Transition};
use crate::store::ModelStore;

/// What the session holds: the one record of the loaded model.
#[derive(Debug, Clone, Default)]
pub enum Slot {
    /// No model (the sidecar may still run, idle).
    #[default]
    Empty,
    /// The sidecar is starting (or syncing its environment) to load `model_id`.
    Starting { model_id: String },
    /// `/load` of `model_id` is under way.
    Loading { model_id: String },
    /// `model_id` is loaded in the sidecar.
    Ready { model_id: String },
    /// A generation runs on `model_id` (the lock is held by it).
    Generating { model_id: String },
}

impl Slot {
    /// The model the slot is about, if any.
    pub fn model_id(&self) -> Option<&str> {
        match self {
            Slot::Empty => None,
            Slot::Starting { model_id }
            | Slot::Loading { model_id }
            | Slot::Ready { model_id }
            | Slot::Generating { model_id } => Some(model_id),
        }
    }

    /// The provider's state of the slot's model (`Loading` while starting or loading,
    /// `Ready` when loaded, generating or not).
    pub fn model_state(&self) -> Option<ModelState> {
        match self {
            Slot::Empty => None,
            Slot::Starting { .. } | Slot::Loading { .. } => Some(ModelState::Loading),
            Slot::Ready { .. } | Slot::Generating { .. } => Some(ModelState::Ready),
        }
    }

    /// Whether a model is loaded in the sidecar (ready or generating).
    fn is_loaded(&self) -> bool {
        matches!(self, Slot::Ready { .. } | Slot::Generating { .. })
    }
}

/// The session lock, held: the proof a slot change is ordered with every other.
pub(super) type Held = OwnedMutexGuard<()>;

pub(super) struct Session {
    store: Arc<ModelStore>,
    sidecar: SidecarSupervisor,
    sink: Arc<dyn EventSink>,
    /// Orders every load, generation, unload and delete.
    lock: Arc<Mutex<()>>,
    /// The one state field; written only by [`Session::write`].
    slot: watch::Sender<Slot>,
    /// The client of the sidecar the slot's model is loaded in: `Some` exactly while the
    /// slot is loaded; written only by [`Session::write`], with the slot.
    loaded_in: std::sync::Mutex<Option<Arc<Client>>>,
    /// This session, for the tasks it starts (a sidecar's death watcher).
    me: std::sync::Weak<Session>,
    /// How many calls wait for `lock` (not state: what a test of the queue waits on).
    queued: watch::Sender<usize>,
    idle: IdleTimer,
}

/// Marks a generation as under way until dropped (RAII, so an early return or a
/// dropped stream cannot leave the mark behind): `Generating` goes back to `Ready`,
/// then the lock it holds is released. It also holds the repo's shared cross-process
/// lock, so `rm` in another process is refused while the model's files are in use.
struct GeneratingGuard {
    session: Arc<Session>,
    held: Held,
    model_id: String,
    client: Arc<Client>,
    _repo_lock: Option<crate::hub::RepoLock>,
}

impl Drop for GeneratingGuard {
    fn drop(&mut self) {
        let generating = matches!(*self.session.slot.borrow(), Slot::Generating { .. });
        if generating {
            let ready = Slot::Ready { model_id: self.model_id.clone() };
            self.session.write(&self.held, ready, Some(self.client.clone()));
        }
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
struct Acquired {
    held: Held,
    client: Arc<Client>,
    timings: Timings,
    rearm: Rearm,
}

impl Session {
    pub(super) fn new(store: Arc<ModelStore>, sidecar: SidecarConfig, sink: Arc<dyn EventSink>) -> Arc<Self> {
        Arc::new_cyclic(|me: &std::sync::Weak<Session>| {
            let weak = me.clone();
            Session {
                store,
                sidecar: SidecarSupervisor::new(sidecar),
                sink,
                lock: Arc::new(Mutex::new(())),
                slot: watch::Sender::new(Slot::Empty),
                loaded_in: std::sync::Mutex::new(None),
                me: me.clone(),
                queued: watch::Sender::new(0),
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

    /// Generate an answer to `request`, piece by piece (see `MlxModelManager::chat_stream`).
    pub(super) async fn chat_stream(
        self: &Arc<Self>,
        request: ChatRequest,
        keep_alive: KeepAlive,
    ) -> Result<BoxStream<'static, Result<ChatChunk>>> {
        let started = Instant::now();
        request.check().map_err(|detail| Error::InvalidRequest { detail })?;
        let spec = crate::catalog::resolve(&request.model)?;
        let Acquired { held, client, timings, rearm } = self.acquire(spec.clone(), keep_alive).await?;
        let generating = self.start_generating(held, &spec, client.clone());
        let generate_started = Instant::now();
        let inner = match client.generate_stream(&generate_request(&request)).await {
            Ok(inner) => inner,
            Err(error) => {
                if error.process_died() {
                    self.sidecar_died(&generating.held, &client, &error.to_string());
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
            generating: Some(generating),
            rearm: Some(rearm),
        };
        Ok(futures_util::stream::unfold(generation, Generation::next).boxed())
    }

    /// Warm-up: start the sidecar and load `spec`'s model; the idle clock starts here.
    pub(super) async fn warm_up(self: &Arc<Self>, spec: ModelSpec, keep_alive: KeepAlive) -> Result<()> {
        self.acquire(spec, keep_alive).await.map(drop)
    }

    fn start_generating(self: &Arc<Self>, held: Held, spec: &ModelSpec, client: Arc<Client>) -> GeneratingGuard {
        let repo_lock = self
            .store
            .share_repo(spec)
            .inspect_err(|e| tracing::warn!(model_id = %spec.id, "generating without the cross-process repo lock: {e}"))
            .ok();
        self.write(&held, Slot::Generating { model_id: spec.id.clone() }, Some(client.clone()));
        GeneratingGuard { session: self.clone(), held, model_id: spec.id.clone(), client, _repo_lock: repo_lock }
    }

    /// The slot now, and every change after it.
    pub(super) fn subscribe(&self) -> watch::Receiver<Slot> {
        self.slot.subscribe()
    }

    /// Whether a generation is under way on `model_id`.
    pub(super) fn is_generating(&self, model_id: &str) -> bool {
        matches!(&*self.slot.borrow(), Slot::Generating { model_id: id, .. } if id == model_id)
    }

    /// Sync the sidecar's Python environment if it needs it (see
    /// [`SidecarSupervisor::sync_environment`]).
    pub(super) async fn sync_environment(&self) -> Result<Option<std::time::Duration>> {
        Ok(self.sidecar.sync_environment().await?)
    }

    /// `Loading` or `Ready` when `model_id` is the session's model; `None` otherwise.
    pub(super) fn model_state(&self, model_id: &str) -> Option<ModelState> {
        let slot = self.slot.borrow();
        slot.model_id().filter(|id| *id == model_id).and_then(|_| slot.model_state())
    }

    /// The one writer of the slot and its client: `held` proves the lock is held.
    fn write(&self, _held: &Held, next: Slot, loaded_in: Option<Arc<Client>>) {
        debug_assert_eq!(next.is_loaded(), loaded_in.is_some(), "a loaded slot has its client, and only it");
        *self.loaded_in.lock().unwrap_or_else(|e| e.into_inner()) = loaded_in;
        self.slot.send_replace(next);
    }

    /// The loaded model and the client of the sidecar it is loaded in, if any.
    fn loaded(&self) -> Option<(String, Arc<Client>)> {
        let client = self.loaded_in.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        Some((self.slot.borrow().model_id()?.to_string(), client))
    }

    /// Put `next` in the slot, moving the model by `transition` (checked against the
    /// state machine) and announcing it.
    fn move_to(
        &self,
        held: &Held,
        model_id: &str,
        transition: Transition,
        next: Slot,
        loaded_in: Option<Arc<Client>>,
    ) -> Result<()> {
        let from = self.model_state(model_id).unwrap_or(ModelState::Downloaded);
        from.checked_next(model_id, transition)?;
        self.write(held, next, loaded_in);
        let event = match transition {
            Transition::StartLoad => EventType::LoadingStarted,
            Transition::LoadCompleted => EventType::LoadingCompleted,
            Transition::Unload => EventType::Unloaded,
            _ => return Ok(()),
        };
        self.sink.emit(MlxModelStateEvent::new(event, model_id));
        Ok(())
    }

    /// Take the lock and load `spec`'s model, in a task of its own: if the caller goes
    /// away meanwhile, a load under way still completes and is recorded, and the idle
    /// deadline is armed again; while still waiting for the lock, nothing happens at all.
    async fn acquire(self: &Arc<Self>, spec: ModelSpec, keep_alive: KeepAlive) -> Result<Acquired> {
        let (tx, rx) = oneshot::channel();
        let session = self.clone();
        tokio::spawn(async move {
            session.queued.send_modify(|n| *n += 1);
            let held = session.lock.clone().lock_owned().await;
            session.queued.send_modify(|n| *n -= 1);
            if tx.is_closed() {
                return;
            }
            session.idle.cancel();
            let rearm = Rearm { session: session.clone(), keep_alive, armed: true };
            let mut timings = Timings::default();
            let result = session.load(&held, &spec, &mut timings).await;
            // Not delivered (the caller is gone): dropping it re-arms and unlocks.
            let _ = tx.send(result.map(|client| Acquired { held, client, timings, rearm }));
        });
        rx.await.expect("the acquiring task ends by sending its result")
    }

    /// The number of calls waiting for the lock, now and on every change.
    pub(super) fn queued(&self) -> watch::Receiver<usize> {
        self.queued.subscribe()
    }

    /// The client with `spec`'s model loaded; a model deleted behind our back is
    /// released from the sidecar and reported missing.
    async fn load(&self, held: &Held, spec: &ModelSpec, timings: &mut Timings) -> Result<Arc<Client>> {
        let Some(snapshot) = self.store.snapshot(spec) else {
            // Deleted behind our back (another tool, or by hand): a copy still loaded
            // in the sidecar must not outlive its files.
            if self.slot.borrow().model_id() == Some(spec.id.as_str()) {
                self.unload_locked(held).await?;
                self.sidecar.shutdown().await;
            }
            return Err(Error::NotDownloaded { model_id: spec.id.clone() });
        };
        self.ensure_loaded(held, &spec.id, snapshot, timings).await
    }

    /// The idle deadline of `epoch` passed: unload and stop, unless a use came since.
    async fn unload_if_still_idle(&self, epoch: u64) {
        let held = self.lock.clone().lock_owned().await;
        if self.idle.epoch() != epoch {
            return;
        }
        tracing::info!("idle timeout reached: unloading the model and stopping the sidecar");
        if let Err(error) = self.unload_locked(&held).await {
            tracing::warn!(%error, "idle unload failed; stopping the sidecar anyway");
        }
        self.sidecar.shutdown().await;
    }

    /// Unload the model (if any) and stop the sidecar, so its memory really returns.
    pub(super) async fn unload_and_stop(&self) -> Result<()> {
        let held = self.lock.clone().lock_owned().await;
        self.idle.cancel();
        let result = self.unload_locked(&held).await;
        self.sidecar.shutdown().await;
        result
    }

    /// Make way for deleting `model_id`'s files: refused while the model is in use (the
    /// lock is busy with it: loading, loaded for a call, generating); a loaded, idle
    /// model is unloaded and the sidecar stopped. The returned lock, when it could be
    /// taken, keeps any load from starting until the files are gone.
    pub(super) async fn release_for_delete(&self, model_id: &str) -> Result<Option<Held>> {
        let Ok(held) = self.lock.clone().try_lock_owned() else {
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
        if self.slot.borrow().model_id() == Some(model_id) {
            self.idle.cancel();
            self.unload_locked(&held).await?;
            self.sidecar.shutdown().await;
        }
        Ok(Some(held))
    }

    /// Where the sidecar's files are (or will be).
    pub(super) fn sidecar_backend(&self) -> &BackendSource {
        &self.sidecar.config().backend
    }

    pub(super) fn sidecar_running(&self) -> bool {
        self.sidecar.is_running()
    }

    pub(super) fn sidecar_pid(&self) -> Option<u32> {
        self.sidecar.pid()
    }

    /// What the slot is doing.
    pub(super) fn runtime(&self) -> Runtime {
        match &*self.slot.borrow() {
            Slot::Empty => Runtime::Idle,
            Slot::Starting { .. } => Runtime::Starting,
            Slot::Loading { model_id } => Runtime::Loading { model_id: model_id.clone() },
            Slot::Ready { model_id } | Slot::Generating { model_id } => Runtime::Ready { model_id: model_id.clone() },
        }
    }

    /// The client with `model_id` loaded, starting the sidecar and loading as needed.
    async fn ensure_loaded(
        &self,
        held: &Held,
        model_id: &str,
        snapshot: PathBuf,
        timings: &mut Timings,
    ) -> Result<Arc<Client>> {
        if let Some((id, client)) = self.loaded() {
            let same_process = self.sidecar.client().is_some_and(|c| Arc::ptr_eq(&c, &client));
            if !same_process {
                // The sidecar died with the model in it, and its watcher has not yet had
                // the lock: its end is published, so this does not wait.
                let why = client.died().await.map_or_else(|| "the sidecar was stopped".into(), |e| e.to_string());
                self.sidecar_died(held, &client, &why);
            } else if id == model_id {
                return Ok(client);
            } else {
                self.unload_locked(held).await?; // switching models
            }
        }
        let id = model_id.to_string();
        let first = if self.sidecar.is_running() {
            Slot::Loading { model_id: id.clone() }
        } else {
            Slot::Starting { model_id: id.clone() }
        };
        self.move_to(held, model_id, Transition::StartLoad, first, None)?;
        match self.start_and_load(held, model_id, &snapshot, timings).await {
            Ok(client) => {
                let ready = Slot::Ready { model_id: id };
                self.move_to(held, model_id, Transition::LoadCompleted, ready, Some(client.clone()))?;
                Ok(client)
            }
            Err(error) => {
                // A failed load leaves no model in the sidecar.
                self.move_to(held, model_id, Transition::LoadFailed, Slot::Empty, None)?;
                self.sink.emit(MlxModelStateEvent::error(model_id, error.to_string()));
                Err(error)
            }
        }
    }

    async fn start_and_load(
        &self,
        held: &Held,
        model_id: &str,
        snapshot: &std::path::Path,
        timings: &mut Timings,
    ) -> Result<Arc<Client>> {
        let start = Instant::now();
        let sink = self.sink.clone();
        let id = model_id.to_string();
        let fresh = !self.sidecar.is_running();
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
        if fresh {
            self.watch_for_death(client.clone());
        }
        timings.start_ms = start.elapsed().as_millis() as u64;
        let load = Instant::now();
        self.write(held, Slot::Loading { model_id: model_id.to_string() }, None);
        self.sink.emit(MlxModelStateEvent::loading(model_id, LoadPhase::LoadingModel));
        client.load(snapshot).await?;
        timings.load_ms = load.elapsed().as_millis() as u64;
        Ok(client)
    }

    /// `/unload` if a model is loaded in a live sidecar; the slot is `Empty` after it
    /// either way.
    async fn unload_locked(&self, held: &Held) -> Result<()> {
        let Some((model_id, client)) = self.loaded() else { return Ok(()) };
        let alive = self.sidecar.client().is_some_and(|c| Arc::ptr_eq(&c, &client));
        let result = if alive { client.unload().await.map(|_| ()) } else { Ok(()) };
        self.move_to(held, &model_id, Transition::Unload, Slot::Empty, None)?;
        result.map_err(Error::from)
    }

    /// Wait, in a task of its own, for the end of the sidecar behind `client`; an end we
    /// did not ask for empties the slot (see [`Session::sidecar_died`]).
    fn watch_for_death(&self, client: Arc<Client>) {
        let session = self.me.clone();
        tokio::spawn(async move {
            let Some(why) = client.died().await else { return };
            let Some(session) = session.upgrade() else { return };
            let held = session.lock.clone().lock_owned().await;
            session.sidecar_died(&held, &client, &why.to_string());
        });
    }

    /// The sidecar behind `client` died: a model loaded in it is not loaded any more,
    /// which is announced as unloaded, then as an error saying `why`.
    fn sidecar_died(&self, held: &Held, client: &Arc<Client>, why: &str) {
        let Some((model_id, _)) = self.loaded().filter(|(_, c)| Arc::ptr_eq(c, client)) else { return };
        tracing::warn!(%model_id, "{why}");
        if self.move_to(held, &model_id, Transition::Unload, Slot::Empty, None).is_ok() {
            self.sink.emit(MlxModelStateEvent::error(&model_id, why));
        }
    }
}

/// The sidecar's `/generate` body for `request`.
fn generate_request(request: &ChatRequest) -> GenerateRequest {
    GenerateRequest {
        messages: request.messages.clone(),
        max_tokens: request.budget(),
        temperature: request.temperature,
        top_p: request.top_p,
        repetition_penalty: request.repetition_penalty,
        enable_thinking: request.thinking.then_some(true),
        stop: Some(request.stop.clone()).filter(|s| !s.is_empty()),
        seed: request.seed,
        constrain_to_input: request.constrain_to_input.then_some(true),
    }
}

fn finish_reason(reason: Option<sidecar::FinishReason>) -> FinishReason {
    match reason {
        Some(sidecar::FinishReason::Length) => FinishReason::Length,
        _ => FinishReason::Stop,
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
    /// The mark, holding the lock: `Generating` is cleared before the lock is released.
    generating: Option<GeneratingGuard>,
    rearm: Option<Rearm>,
}

impl Generation {
    async fn next(mut self) -> Option<(Result<ChatChunk>, Self)> {
        let item = match self.inner.as_mut()?.next().await {
            Some(Ok(GenerateChunk::Token(text))) => return Some((Ok(ChatChunk::Text(text)), self)),
            Some(Ok(GenerateChunk::Done(response))) => Ok(ChatChunk::Done(self.finish(response).await)),
            Some(Err(error)) => {
                if let Some(guard) = self.generating.as_ref().filter(|_| error.process_died()) {
                    self.session.sidecar_died(&guard.held, &guard.client, &error.to_string());
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
        self.generating = None;
        self.rearm = None;
        Some((item, self))
    }

    async fn finish(&mut self, response: GenerateResponse) -> ChatResponse {
        self.timings.generate_ms = self.generate_started.elapsed().as_millis() as u64;
        if self.keep_alive == KeepAlive::Immediately {
            if let Some(guard) = self.generating.as_ref() {
                // The text is ready: a failed unload must not cost the user their result.
                if let Err(error) = self.session.unload_locked(&guard.held).await {
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
            finish_reason: finish_reason(response.finish_reason),
            prompt_tokens: response.prompt_tokens.unwrap_or(0),
            completion_tokens: response.tokens_generated,
            cached_tokens: response.cached_tokens.unwrap_or(0),
            timings: self.timings.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatMessage, DEFAULT_REPETITION_PENALTY};

    fn request() -> ChatRequest {
        ChatRequest::new("org/model", vec![ChatMessage::system("be brief"), ChatMessage::user("hello there")])
    }

    #[test]
    fn the_sidecar_request_carries_every_sampling_value_and_only_the_options_set() {
        let plain = generate_request(&request());
        assert_eq!((plain.enable_thinking, &plain.stop, plain.seed), (None, &None, None));
        assert_eq!(plain.messages.len(), 2);
        // Sent, so no default of the sidecar's (top_p 0.8) applies to a chat request.
        assert_eq!((plain.temperature, plain.top_p, plain.repetition_penalty), (0.0, 1.0, DEFAULT_REPETITION_PENALTY));
        let r = ChatRequest {
            thinking: true,
            stop: vec!["END".into()],
            seed: Some(3),
            repetition_penalty: 1.3,
            ..request()
        };
        let g = generate_request(&r);
        assert_eq!((g.enable_thinking, g.stop, g.seed), (Some(true), Some(vec!["END".to_string()]), Some(3)));
        assert_eq!(g.repetition_penalty, 1.3);
    }
}
