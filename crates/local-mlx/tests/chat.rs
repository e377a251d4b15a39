//! `MlxModelManager::chat` / `chat_stream` / `runtime` end to end, and cancel safety:
//! the real sidecar, the real tiny model, futures and streams dropped on purpose.

mod common;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use common::sidecar_env::SidecarEnv;
use futures_util::StreamExt;
use local_mlx::settings::ModelUnloadTimeout;
use local_mlx::{
    ChatChunk, ChatMessage, ChatRequest, EventSink, EventType, FinishReason, KeepAlive, LoadPhase, MlxModelManager,
    MlxModelStateEvent, ModelState, RecordingSink, Runtime, Slot,
};
use test_support::{kill_group, process_alive, wait_until};

/// Short, so the idle unload comes soon after each test's last use.
const KEEP_ALIVE: KeepAlive = KeepAlive::After(Duration::from_secs(2));

fn request(env: &SidecarEnv, user: &str) -> ChatRequest {
    ChatRequest::new(&env.model, vec![ChatMessage::system("You clean up dictated text."), ChatMessage::user(user)])
}

/// A generation that runs for a long while (the tiny model never ends its turn).
fn long_request(env: &SidecarEnv) -> ChatRequest {
    ChatRequest { max_tokens: Some(3000), ..request(env, "go on and on") }
}

fn count(env: &SidecarEnv, event_type: EventType) -> usize {
    env.sink.events().iter().filter(|e| e.event_type == event_type).count()
}

fn sidecar_log(env: &SidecarEnv) -> String {
    std::fs::read_to_string(env.tmp.path().join("config/sidecar.log")).unwrap_or_default()
}

/// After the keep-alive, the model is unloaded and the sidecar process gone.
async fn assert_unloaded_after_idle(env: &SidecarEnv, pid: u32) {
    wait_until("the sidecar to exit after the idle limit", || !process_alive(pid)).await;
    wait_until("the model to be unloaded", || {
        env.manager.model_status(&env.model).unwrap().state == ModelState::Downloaded
    })
    .await;
    assert_eq!(env.manager.runtime(), Runtime::Idle);
}

async fn short_env() -> SidecarEnv {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.set_keep_alive(KEEP_ALIVE);
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_answers_and_the_stream_gives_the_same_text_in_pieces() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let greedy = ChatRequest { max_tokens: Some(12), ..request(&env, "um hello there") };
    let whole = env.manager.chat(greedy.clone()).await.unwrap();
    assert_eq!(whole.model_id, env.model);
    assert_eq!(whole.finish_reason, FinishReason::Length, "the tiny model never ends its turn");
    assert!(whole.completion_tokens > 0 && whole.completion_tokens <= 12, "{whole:?}");
    assert!(whole.prompt_tokens > 0 && whole.timings.load_ms > 0, "{whole:?}");
    assert_eq!(whole.reasoning, None);

    let mut stream = env.manager.chat_stream(greedy).await.unwrap();
    let (mut pieces, mut done) = (String::new(), None);
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            ChatChunk::Text(text) => pieces.push_str(&text),
            ChatChunk::Done(response) => done = Some(response),
        }
    }
    let done = done.expect("the stream ends with Done");
    assert_eq!((pieces.as_str(), done.text.as_str()), (whole.text.as_str(), whole.text.as_str()));
    assert!(done.cached_tokens > 0, "the same prompt again comes from the prefix cache: {done:?}");
    assert_eq!(count(&env, EventType::LoadingCompleted), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn thinking_on_the_tiny_model_keeps_think_tags_out_of_the_text() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let thinking = ChatRequest { thinking: true, max_tokens: Some(40), ..request(&env, "hello") };
    let answer = env.manager.chat(thinking).await.unwrap();
    assert!(!answer.text.contains("<think>") && !answer.text.contains("</think>"), "{answer:?}");
    assert!(answer.reasoning.is_some(), "thinking on: the think text (maybe empty) is returned apart");
    let off = env.manager.chat(ChatRequest { max_tokens: Some(40), ..request(&env, "hello") }).await.unwrap();
    assert!(answer.prompt_tokens < off.prompt_tokens, "thinking off adds the template's empty think block");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_before_anything_starts() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    let missing = env.manager.chat(ChatRequest::new("test-org/never-downloaded", vec![ChatMessage::user("hi")]));
    let err = missing.await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::NotDownloaded, "{err}");
    assert!(err.to_string().contains("local-mlx pull test-org/never-downloaded"), "{err}");
    let err = env.manager.chat(ChatRequest::new("not a repo id", vec![ChatMessage::user("hi")])).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::UnknownModel, "{err}");
    let err = env.manager.chat(ChatRequest { temperature: 9.0, ..request(&env, "hi") }).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("temperature"), "{err}");
    let err = env.manager.chat_stream(ChatRequest { messages: vec![], ..request(&env, "hi") }).await.err().unwrap();
    assert!(err.to_string().contains("messages"), "{err}");
    assert!(!env.manager.sidecar_running());
    assert_eq!(env.manager.runtime(), Runtime::Idle);
}

/// Records what `runtime()` says at each event, as it is emitted.
struct RuntimeProbe {
    inner: RecordingSink,
    manager: OnceLock<Weak<MlxModelManager>>,
    seen: Mutex<Vec<(EventType, Option<LoadPhase>, Runtime)>>,
}

impl EventSink for RuntimeProbe {
    fn emit(&self, event: MlxModelStateEvent) {
        if let Some(manager) = self.manager.get().and_then(Weak::upgrade) {
            self.seen.lock().unwrap().push((event.event_type, event.phase, manager.runtime()));
        }
        self.inner.emit(event);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_says_starting_then_loading_while_a_load_is_under_way_then_ready() {
    let probe = Arc::new(OnceLock::<Arc<RuntimeProbe>>::new());
    let slot = probe.clone();
    let env = SidecarEnv::with_sink("tiny", ModelUnloadTimeout::Never, move |inner| {
        let sink = Arc::new(RuntimeProbe { inner, manager: OnceLock::new(), seen: Mutex::default() });
        let _ = slot.set(sink.clone());
        sink
    })
    .await;
    let probe = probe.get().unwrap();
    probe.manager.set(Arc::downgrade(&env.manager)).unwrap();
    assert_eq!(env.manager.runtime(), Runtime::Idle);

    env.manager.chat(ChatRequest { max_tokens: Some(2), ..request(&env, "hi") }).await.unwrap();
    let loading = Runtime::Loading { model_id: env.model.clone() };
    let seen = probe.seen.lock().unwrap().clone();
    let at = |phase: LoadPhase| {
        seen.iter().find(|(kind, p, _)| *kind == EventType::LoadingStarted && *p == Some(phase)).map(|s| s.2.clone())
    };
    assert_eq!(at(LoadPhase::StartingServer), Some(Runtime::Starting), "{seen:?}");
    assert_eq!(at(LoadPhase::LoadingModel), Some(loading), "{seen:?}");
    assert_eq!(env.manager.runtime(), Runtime::Ready { model_id: env.model.clone() });
    let json = serde_json::to_value(env.manager.runtime()).unwrap();
    assert_eq!(json, serde_json::json!({"state": "ready", "model_id": env.model}));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_call_waiting_for_the_lock_then_a_stream_mid_generation_leaves_the_manager_correct() {
    let env = short_env().await;
    // Holding a stream unpolled holds the session lock: the next call must wait.
    let mut holder = env.manager.chat_stream(long_request(&env)).await.unwrap();
    assert!(matches!(holder.next().await, Some(Ok(ChatChunk::Text(_)))), "the generation is under way");
    let manager = env.manager.clone();
    let waiting = tokio::spawn({
        let request = request(&env, "I wait for the lock");
        async move { manager.chat(request).await }
    });
    // Wait until it is queued behind the lock: if it never queued (no lock), this fails.
    let mut queued = env.manager.queued_calls();
    tokio::time::timeout(Duration::from_secs(60), queued.wait_for(|n| *n == 1))
        .await
        .expect("the second call never queued behind the lock")
        .unwrap();
    assert!(!waiting.is_finished(), "it cannot get past the lock while the stream holds it");
    assert_eq!(*queued.borrow(), 1, "and it is still queued, not running beside the holder");
    assert!(env.manager.is_generating(&env.model), "the holder still generates");
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());

    // Dropped mid-generation: the sidecar stops generating.
    drop(holder);
    wait_until("the sidecar to cancel the generation", || sidecar_log(&env).contains("generation cancelled")).await;
    assert!(!env.manager.is_generating(&env.model));

    let next = env.manager.chat(ChatRequest { max_tokens: Some(4), ..request(&env, "next") }).await.unwrap();
    assert!(next.completion_tokens > 0);
    assert_eq!(count(&env, EventType::LoadingCompleted), 1, "the dropped calls changed nothing");
    let pid = env.manager.sidecar_pid().unwrap();
    assert_unloaded_after_idle(&env, pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_stream_mid_generation_re_arms_the_idle_deadline() {
    let env = short_env().await;
    let mut stream = env.manager.chat_stream(long_request(&env)).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(ChatChunk::Text(_)))));
    let pid = env.manager.sidecar_pid().unwrap();
    drop(stream);
    // No other call: only the dropped stream can have armed the deadline.
    assert_unloaded_after_idle(&env, pid).await;
    assert!(sidecar_log(&env).contains("generation cancelled"), "{}", sidecar_log(&env));
    let next = env.manager.chat(ChatRequest { max_tokens: Some(4), ..request(&env, "again") }).await.unwrap();
    assert!(next.completion_tokens > 0 && next.timings.load_ms > 0, "{next:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_future_mid_generation_stops_it_and_re_arms_the_idle_deadline() {
    let env = short_env().await;
    env.manager.warm_up().await.unwrap();
    let pid = env.manager.sidecar_pid().unwrap();
    let manager = env.manager.clone();
    let long = long_request(&env);
    let call = tokio::spawn(async move { manager.chat(long).await });
    let mut slot = env.manager.subscribe();
    slot.wait_for(|s| matches!(s, Slot::Generating { .. })).await.unwrap();
    // The slot says generating before the request reaches the sidecar: wait for the
    // sidecar's own word, or the abort could drop a request it never started.
    wait_until("the sidecar to start generating", || sidecar_log(&env).contains("generating:")).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    wait_until("the sidecar to cancel the generation", || sidecar_log(&env).contains("generation cancelled")).await;
    assert_unloaded_after_idle(&env, pid).await;
    let next = env.manager.process_text("hello there my friend").await.unwrap();
    assert!(next.tokens_generated > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_call_while_the_model_loads_lets_the_load_finish_and_re_arms_the_idle_deadline() {
    let env = short_env().await;
    let manager = env.manager.clone();
    let first = request(&env, "load me");
    let call = tokio::spawn(async move { manager.chat(first).await });
    let mut slot = env.manager.subscribe();
    slot.wait_for(|s| matches!(s, Slot::Starting { .. } | Slot::Loading { .. })).await.unwrap();
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // The load goes on to the end and is recorded; then the deadline unloads it.
    wait_until("the load to complete", || count(&env, EventType::LoadingCompleted) == 1).await;
    let pid = env.manager.sidecar_pid().expect("the sidecar runs with the model loaded");
    assert_unloaded_after_idle(&env, pid).await;
    assert_eq!(count(&env, EventType::Unloaded), 1);

    let next = env.manager.chat(ChatRequest { max_tokens: Some(4), ..request(&env, "served") }).await.unwrap();
    assert!(next.completion_tokens > 0);
    assert_eq!(count(&env, EventType::LoadingCompleted), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_killed_while_the_model_is_idle_unloads_it_with_an_error_quoting_the_exit() {
    let env = SidecarEnv::new("tiny", ModelUnloadTimeout::Never).await;
    env.manager.chat(ChatRequest { max_tokens: Some(2), ..request(&env, "load me") }).await.unwrap();
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Ready);
    let mut slot = env.manager.subscribe();
    kill_group(env.manager.sidecar_pid().unwrap());
    // No call comes: the session hears the death by itself.
    slot.wait_for(|s| matches!(s, Slot::Empty)).await.unwrap();
    assert_eq!(env.manager.model_status(&env.model).unwrap().state, ModelState::Downloaded);
    assert_eq!(env.manager.runtime(), Runtime::Idle);
    // Announced right after the slot changed (so a face that re-reads the status on
    // the event sees the new one).
    wait_until("the error event", || count(&env, EventType::Error) == 1).await;
    let events = env.sink.events();
    let last: Vec<_> = events.iter().rev().take(2).rev().map(|e| e.event_type).collect();
    assert_eq!(last, [EventType::Unloaded, EventType::Error], "{events:?}");
    let error = events.last().unwrap().error.clone().unwrap();
    assert!(error.contains("died") && error.contains("signal 9"), "{error}");

    let next = env.manager.chat(ChatRequest { max_tokens: Some(2), ..request(&env, "again") }).await.unwrap();
    assert!(next.completion_tokens > 0, "the next call starts a new sidecar");
}
