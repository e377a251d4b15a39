//! The native engine's worker (`local-mlx-engine`, crates/local-mlx-engine) behind the
//! sidecar's [`Client`](super::Client): chosen by `LOCAL_MLX_ENGINE=native` (the Python
//! sidecar stays the default). The worker speaks newline-framed JSON over its stdin and
//! stdout (crates/local-mlx-engine/src/protocol.rs; the few fields used here are read
//! as JSON values so that this crate does not link the engine). No port, no token;
//! the worker exits when its stdin closes. The session locks every load, generation and
//! unload, so one operation talks to the worker at a time: it takes the event receiver
//! and reads up to its own end, skipping what an earlier, abandoned one left behind.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, Mutex, OwnedMutexGuard};

use super::wire::{FinishReason, GenerateChunk, GenerateRequest, GenerateResponse, LoadResponse, UnloadResponse};
use super::{Result, SidecarError};

/// `LOCAL_MLX_ENGINE`: which engine runs the models.
pub(super) const ENGINE_ENV: &str = "LOCAL_MLX_ENGINE";
/// `LOCAL_MLX_ENGINE_BIN`: the worker executable (default: `local-mlx-engine` beside
/// the running executable).
pub(super) const ENGINE_BIN_ENV: &str = "LOCAL_MLX_ENGINE_BIN";

/// Which engine runs the models: the settings' `engine` field, which
/// `LOCAL_MLX_ENGINE` overrides. Exported as `MlxEngineChoice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxEngineChoice"))]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// The Python sidecar (mlx-lm): the default.
    #[default]
    Sidecar,
    /// The native worker (MLX from Rust): Llama and Qwen3 only.
    Native,
}

impl EngineChoice {
    /// From `LOCAL_MLX_ENGINE` (`native` or `sidecar`); `None` when it is unset, or set
    /// to anything else (with a warning).
    pub fn from_env() -> Option<EngineChoice> {
        match std::env::var(ENGINE_ENV).unwrap_or_default().trim() {
            "native" => Some(EngineChoice::Native),
            "sidecar" => Some(EngineChoice::Sidecar),
            "" => None,
            other => {
                tracing::warn!("{ENGINE_ENV}={other:?} is neither native nor sidecar; ignoring it");
                None
            }
        }
    }
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineChoice::Sidecar => "sidecar (Python, mlx-lm)",
            EngineChoice::Native => "native (local-mlx-engine, MLX from Rust)",
        })
    }
}

/// The engine in use and whether `LOCAL_MLX_ENGINE` or the settings chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenEngine {
    pub engine: EngineChoice,
    pub by_env: bool,
}

impl ChosenEngine {
    /// `LOCAL_MLX_ENGINE` when it names an engine, else `setting`.
    pub fn resolve(setting: EngineChoice) -> ChosenEngine {
        match EngineChoice::from_env() {
            Some(engine) => ChosenEngine { engine, by_env: true },
            None => ChosenEngine { engine: setting, by_env: false },
        }
    }
}

/// `native (local-mlx-engine, ...), set by LOCAL_MLX_ENGINE` / `..., from the settings`.
impl std::fmt::Display for ChosenEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = if self.by_env { "set by LOCAL_MLX_ENGINE" } else { "the settings' engine" };
        write!(f, "{}, {by}", self.engine)
    }
}

/// The worker executable to start.
pub(super) fn worker_path() -> PathBuf {
    if let Some(path) = std::env::var_os(ENGINE_BIN_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name(format!("local-mlx-engine{}", std::env::consts::EXE_SUFFIX))
}

/// The options the native engine does not implement yet: a request that sets one is
/// refused (not answered differently from the sidecar).
fn unsupported(request: &GenerateRequest) -> Option<&'static str> {
    if request.temperature > 0.0 {
        return Some("temperature > 0 (it decodes greedily)");
    }
    if request.repetition_penalty != 1.0 {
        return Some("repetition_penalty");
    }
    if request.stop.as_ref().is_some_and(|s| !s.is_empty()) {
        return Some("stop strings");
    }
    if request.enable_thinking == Some(true) {
        return Some("enable_thinking");
    }
    None
}

/// The error for a request that sets an option the native engine does not implement:
/// it names the engine, the option and the way out.
fn refusal(request: &GenerateRequest) -> Option<SidecarError> {
    unsupported(request).map(|what| SidecarError::BadRequest {
        detail: format!(
            "the native engine (local-mlx-engine) does not support {what} yet: \
             use {ENGINE_ENV}=sidecar (or the settings' engine \"sidecar\")"
        ),
    })
}

/// The pipes to one worker.
#[derive(Debug)]
pub(crate) struct NativeLink {
    stdin: Mutex<ChildStdin>,
    events: Arc<Mutex<mpsc::UnboundedReceiver<Value>>>,
    next_id: AtomicU64,
}

impl NativeLink {
    /// Over a started worker whose ready line was read; a task forwards its events.
    pub(crate) fn new(stdin: ChildStdin, mut stdout: Lines<BufReader<ChildStdout>>) -> NativeLink {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    Err(_) => tracing::warn!("the native worker wrote a line that is not an event: {line}"),
                }
            }
        });
        NativeLink { stdin: Mutex::new(stdin), events: Arc::new(Mutex::new(rx)), next_id: AtomicU64::new(1) }
    }

    async fn send(&self, what: &'static str, command: Value) -> Result<()> {
        let mut line = command.to_string();
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(line.as_bytes()).await.map_err(|e| crashed(what, e.to_string()))?;
        stdin.flush().await.map_err(|e| crashed(what, e.to_string()))
    }

    /// Events until `done` accepts one (whose value it returns).
    async fn until<T>(
        events: &mut mpsc::UnboundedReceiver<Value>,
        what: &'static str,
        mut done: impl FnMut(&Value) -> Option<Result<T>>,
    ) -> Result<T> {
        loop {
            let event = events.recv().await.ok_or_else(|| crashed(what, "the worker closed its output".into()))?;
            if let Some(result) = done(&event) {
                return result;
            }
        }
    }

    pub(crate) async fn load(&self, path: &std::path::Path) -> Result<LoadResponse> {
        let mut events = self.events.lock().await;
        self.send("load", json!({"op": "load", "path": path})).await?;
        Self::until(&mut events, "load", |e| match e["event"].as_str() {
            Some("loaded") => Some(Ok(LoadResponse {
                status: "loaded".into(),
                model_path: path.display().to_string(),
                context_length: e["context_length"].as_u64().map(|n| n as u32),
            })),
            Some("error") if e["id"].is_null() => Some(Err(SidecarError::ModelLoad {
                path: path.to_path_buf(),
                detail: e["message"].as_str().unwrap_or_default().to_string(),
            })),
            _ => None,
        })
        .await
    }

    pub(crate) async fn unload(&self) -> Result<UnloadResponse> {
        let mut events = self.events.lock().await;
        self.send("unload", json!({"op": "unload"})).await?;
        Self::until(&mut events, "unload", |e| {
            (e["event"] == "unloaded").then(|| Ok(UnloadResponse { status: "unloaded".into(), model_loaded: false }))
        })
        .await
    }

    /// The answer as one [`GenerateChunk::Done`] (the worker streams token ids, not
    /// text pieces); dropping the stream cancels the generation.
    pub(crate) async fn generate_stream(
        self: &Arc<Self>,
        request: &GenerateRequest,
    ) -> Result<BoxStream<'static, Result<GenerateChunk>>> {
        if let Some(refused) = refusal(request) {
            return Err(refused);
        }
        let messages = serde_json::to_value(&request.messages).unwrap_or_default();
        let events = self.events.clone().lock_owned().await;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.send(
            "generate",
            json!({
                "op": "generate",
                "id": id,
                "messages": messages,
                "max_tokens": request.max_tokens,
                "constrain_to_input": request.constrain_to_input == Some(true),
            }),
        )
        .await?;
        let generation = Generation { link: self.clone(), events, id, finished: false };
        Ok(futures_util::stream::once(generation.answer()).boxed())
    }
}

/// A generation under way; cancelled in the worker if dropped before its end.
struct Generation {
    link: Arc<NativeLink>,
    events: OwnedMutexGuard<mpsc::UnboundedReceiver<Value>>,
    id: u64,
    finished: bool,
}

impl Generation {
    async fn answer(mut self) -> Result<GenerateChunk> {
        let id = self.id;
        let result = NativeLink::until(&mut self.events, "generate", |e| {
            if e["id"].as_u64() != Some(id) {
                return None;
            }
            match e["event"].as_str() {
                Some("answer") => Some(Ok(response_of(&e["answer"]))),
                Some("cancelled") => Some(Err(SidecarError::Stopped { what: "generate" })),
                Some("error") => Some(Err(SidecarError::BadRequest {
                    detail: e["message"].as_str().unwrap_or_default().to_string(),
                })),
                _ => None,
            }
        })
        .await;
        self.finished = true;
        result.map(GenerateChunk::Done)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (link, id) = (self.link.clone(), self.id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = link.send("cancel", json!({"op": "cancel", "id": id})).await;
            });
        }
    }
}

fn response_of(answer: &Value) -> GenerateResponse {
    let count = |key: &str| answer[key].as_u64().map(|n| n as u32);
    let tokens = answer["tokens"].as_array().map_or(0, Vec::len) as u32;
    let seconds = |key: &str| answer[key].as_f64().unwrap_or(0.0) / 1000.0;
    GenerateResponse {
        response: answer["text"].as_str().unwrap_or_default().to_string(),
        tokens_generated: tokens,
        reasoning: None,
        prompt_tokens: count("prompt_tokens"),
        cached_tokens: count("cached_tokens"),
        finish_reason: Some(match answer["finish_reason"].as_str() {
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            _ => FinishReason::Other,
        }),
        prompt_tps: Some(count("prompt_tokens").unwrap_or(0) as f64 / seconds("prefill_ms").max(1e-9)),
        generation_tps: Some(tokens as f64 / seconds("decode_ms").max(1e-9)),
        peak_memory: None,
    }
}

fn crashed(what: &'static str, detail: String) -> SidecarError {
    SidecarError::Crashed { what, status: "the native worker is gone".into(), stderr_tail: detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::MlxSettings;

    #[test]
    fn the_settings_engine_field_reads_native_or_sidecar_and_defaults_to_the_sidecar() {
        let read = |json: &str| serde_json::from_str::<MlxSettings>(json).map(|s| s.engine);
        assert_eq!(read("{}").unwrap(), EngineChoice::Sidecar, "settings written before the field");
        assert_eq!(read(r#"{"engine": "native"}"#).unwrap(), EngineChoice::Native);
        assert_eq!(read(r#"{"engine": "sidecar"}"#).unwrap(), EngineChoice::Sidecar);
        assert!(read(r#"{"engine": "python"}"#).is_err());
        let written = serde_json::to_value(MlxSettings { engine: EngineChoice::Native, ..MlxSettings::default() });
        assert_eq!(written.unwrap()["engine"], "native");
        let chosen = ChosenEngine { engine: EngineChoice::Native, by_env: true };
        assert_eq!(chosen.to_string(), "native (local-mlx-engine, MLX from Rust), set by LOCAL_MLX_ENGINE");
    }

    #[test]
    fn a_request_the_native_engine_cannot_honour_is_refused_naming_the_way_out() {
        let greedy = GenerateRequest { temperature: 0.0, repetition_penalty: 1.0, ..GenerateRequest::new(Vec::new()) };
        assert!(refusal(&greedy).is_none(), "greedy, no penalty, no stop strings: answered");
        let cases: [(GenerateRequest, &str); 4] = [
            (GenerateRequest { temperature: 0.7, ..greedy.clone() }, "temperature > 0"),
            (GenerateRequest { repetition_penalty: 1.1, ..greedy.clone() }, "repetition_penalty"),
            (GenerateRequest { stop: Some(vec!["\n".into()]), ..greedy.clone() }, "stop strings"),
            (GenerateRequest { enable_thinking: Some(true), ..greedy.clone() }, "enable_thinking"),
        ];
        for (request, what) in cases {
            let message = refusal(&request).expect(what).to_string();
            assert!(
                message.contains("native engine")
                    && message.contains(what)
                    && message.contains("LOCAL_MLX_ENGINE=sidecar"),
                "{message}"
            );
        }
    }
}
