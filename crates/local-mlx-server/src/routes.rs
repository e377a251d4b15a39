//! The three routes: `GET /v1/models`, `POST /v1/chat/completions`, `GET /health`.
//!
//! Each maps HTTP to one manager call and back; the model work (loading on demand, one
//! model at a time, the token budget, think stripping, the clean-up check) is the core's.
//! Two rules are kept here. The queue bound: a permit per chat request, held until its
//! answer (or its stream) ends, so a flood gets quick 503s instead of an unbounded wait.
//! And when the clean-up check applies: to a prompt whose last user message wraps the
//! transcript in `<transcript>` tags (Handy's default prompt), unless the server was
//! started with `--no-clean-up-check`; a failing answer is then replaced by the transcript,
//! and so is one not finished within `--answer-within` (the deadline goes with the check:
//! a request it does not apply to is never cut).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, BoxStream, StreamExt};
use local_mlx::chat::ChatChunk;
use local_mlx::manager::{Runtime, Within};
use local_mlx::postprocess::{check_clean_up, CleanUpVerdict};
use local_mlx::MlxModelManager;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::request::{self, OutputFormat};
use crate::response::{unix_now, ChatCompletion, ChatCompletionChunk, CompletionMeta, ModelList};

/// What every route shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub manager: Arc<MlxModelManager>,
    pub config: Arc<ServerConfig>,
    pub queue: Arc<Semaphore>,
    /// When the server started: the `created` of every listed model.
    pub started: u64,
}

impl AppState {
    pub(crate) fn new(manager: Arc<MlxModelManager>, config: Arc<ServerConfig>) -> AppState {
        let queue = Arc::new(Semaphore::new(config.max_queued));
        AppState { manager, config, queue, started: unix_now() }
    }
}

pub(crate) async fn models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList::new(state.manager.downloaded_models(), state.started))
}

/// `idle` (no sidecar), `loading` (sidecar starting or model loading) or `ready`, and the
/// server's version (so `service status` can tell a stale service); the model only to a
/// request with the key (or when there is none).
pub(crate) async fn health(
    State(state): State<AppState>,
    key: Option<axum::Extension<crate::access::KeyGiven>>,
) -> Json<serde_json::Value> {
    let health = match state.manager.runtime() {
        Runtime::Idle => json!({"status": "idle", "model": null}),
        Runtime::Starting => json!({"status": "loading", "phase": "starting", "model": null}),
        Runtime::Loading { model_id } => json!({"status": "loading", "phase": "loading", "model": model_id}),
        Runtime::Ready { model_id } => json!({"status": "ready", "model": model_id}),
    };
    if key.is_some_and(|axum::Extension(given)| !given.0) {
        return Json(json!({"status": health["status"], "version": state.config.version}));
    }
    let mut health = health;
    health["version"] = json!(state.config.version);
    Json(health)
}

pub(crate) async fn chat_completions(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let deadline = crate::connections::BODY_READ;
    let body = tokio::time::timeout(deadline, read_limited(body, state.config.max_body_bytes))
        .await
        .map_err(|_| ApiError::BodyTimeout { secs: deadline.as_secs() })??;
    let plan = request::parse(&body)?;
    let permit =
        state.queue.clone().try_acquire_owned().map_err(|_| ApiError::QueueFull { limit: state.config.max_queued })?;
    let transcript = plan.chat.transcript().filter(|_| state.config.check_clean_up).map(str::to_string);
    let Some(transcript) = transcript else {
        if plan.stream {
            // Errors known before the first token (bad model, not downloaded) are plain HTTP errors.
            let meta = CompletionMeta::new(&plan.chat.model);
            let chunks = state.manager.chat_stream(plan.chat).await?;
            return Ok(stream_completion(chunks, meta, plan.format, plan.include_usage, None, permit));
        }
        let response = state.manager.chat(plan.chat).await?;
        let meta = CompletionMeta::new(&response.model_id);
        return Ok(Json(ChatCompletion::new(meta, response, &plan.format, None)).into_response());
    };
    // A clean-up can only be judged whole: the answer is generated, checked against the
    // transcript, and only then sent (as one piece when streaming). One not finished by
    // the deadline is given up (the generation cancelled) and the transcript sent.
    let asked_model = plan.chat.model.clone();
    let (response, check) = match state.manager.chat_within(plan.chat, state.config.answer_within).await? {
        Within::Answered(mut response) => {
            let check = check_clean_up(&transcript, &mut response);
            (response, check)
        }
        Within::Late(late) => late.keep_transcript(&transcript, &asked_model),
    };
    let meta = CompletionMeta::new(&response.model_id);
    if !plan.stream {
        return Ok(Json(ChatCompletion::new(meta, response, &plan.format, Some(&check))).into_response());
    }
    let chunks = stream::iter([Ok(ChatChunk::Text(response.text.clone())), Ok(ChatChunk::Done(response))]).boxed();
    Ok(stream_completion(chunks, meta, plan.format, plan.include_usage, Some(check), permit))
}

/// What a stream carries between chunks; dropping it (the client left) drops the core's
/// stream, which cancels the generation, and frees the queue permit.
struct Streaming {
    chunks: BoxStream<'static, local_mlx::Result<ChatChunk>>,
    meta: CompletionMeta,
    format: OutputFormat,
    include_usage: bool,
    clean_up: Option<CleanUpVerdict>,
    finished: bool,
    _permit: OwnedSemaphorePermit,
}

fn stream_completion(
    chunks: BoxStream<'static, local_mlx::Result<ChatChunk>>,
    meta: CompletionMeta,
    format: OutputFormat,
    include_usage: bool,
    clean_up: Option<CleanUpVerdict>,
    permit: OwnedSemaphorePermit,
) -> Response {
    let opening = data(&ChatCompletionChunk::opening(&meta, format.stream_prefix()));
    let streaming = Streaming { chunks, meta, format, include_usage, clean_up, finished: false, _permit: permit };
    let rest = stream::unfold(streaming, |mut s| async move {
        if s.finished {
            return None;
        }
        let events = match s.chunks.next().await {
            Some(Ok(ChatChunk::Text(text))) if text.is_empty() => Vec::new(),
            Some(Ok(ChatChunk::Text(text))) => {
                vec![data(&ChatCompletionChunk::text(&s.meta, s.format.stream_piece(&text)))]
            }
            Some(Ok(ChatChunk::Done(response))) => {
                s.finished = true;
                let mut events = vec![data(&ChatCompletionChunk::finish(&s.meta, s.format.stream_suffix(), &response))];
                if s.include_usage {
                    events.push(data(&ChatCompletionChunk::usage(&s.meta, &response, s.clean_up.as_ref())));
                }
                events.push(Event::default().data("[DONE]"));
                events
            }
            // Headers are sent: the error goes in the stream, as OpenAI does.
            Some(Err(error)) => {
                s.finished = true;
                vec![data(&ApiError::from(error).body())]
            }
            None => {
                s.finished = true;
                vec![Event::default().data("[DONE]")]
            }
        };
        Some((stream::iter(events), s))
    })
    .flatten();
    let events = stream::once(async move { opening }).chain(rest).map(Ok::<_, std::convert::Infallible>);
    Sse::new(events).into_response()
}

fn data(value: &impl serde::Serialize) -> Event {
    Event::default().data(serde_json::to_string(value).expect("our response types always serialize"))
}

/// How much of an oversized body is read and thrown away before answering 413.
const DRAIN_LIMIT: usize = 64 << 20;

/// The body, up to `limit` bytes. An oversized body is drained (up to [`DRAIN_LIMIT`])
/// before the 413: closing a connection with unread data resets it, and the client,
/// still sending, would see "connection reset" instead of our answer. axum's own
/// limit answers at once and closes, so this one is hand-written.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut frames = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|error| ApiError::BadRequest(format!("cannot read the request body: {error}")))?;
        total += frame.len();
        if total <= limit {
            kept.extend_from_slice(&frame);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Bytes::from(kept))
}

pub(crate) async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute { method: method.to_string(), path: uri.path().to_string() }
}
