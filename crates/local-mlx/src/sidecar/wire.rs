//! The sidecar's API in types, field for field: requests, answers and the limits the core
//! passes at spawn. Types mirror python-backend's `schemas.py`; in answers, our
//! extensions are `Option` so an older or leaner server still parses. The HTTP client
//! ([`super::client`]) and the native engine's link ([`super::native`]) both speak them.

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;

/// `POST /generate`'s body (without `stream`, which the method chooses). The core
/// always sends the conversation as `messages` and every sampling value it means; the
/// API's original `prompt` + `system` form is for other callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// Extension: the whole conversation.
    pub messages: Vec<ChatMessage>,
    /// 1..=8192; the server lowers it to what fits in the model's context.
    pub max_tokens: u32,
    /// 0..=2; 0 is greedy.
    pub temperature: f64,
    /// Extension: (0, 1].
    pub top_p: f64,
    /// Extension: (0, 10].
    pub repetition_penalty: f64,
    /// Extension: render the chat template with thinking on (the think text comes back
    /// in [`GenerateResponse::reasoning`]); the server's default is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,
    /// Extension: up to 4 non-empty strings; the answer ends before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Extension: seeds the sampler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Extension: let the model emit only the words of the last user message (any
    /// casing), punctuation, digits and whitespace (see docs/QUALITY.md); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constrain_to_input: Option<bool>,
}

impl GenerateRequest {
    /// `messages` with the sidecar's defaults ([`SIDECAR_LIMITS`]) for everything else.
    #[cfg(feature = "test-support")]
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        GenerateRequest {
            messages,
            max_tokens: SIDECAR_LIMITS.default_max_tokens,
            temperature: SIDECAR_LIMITS.default_temperature,
            top_p: SIDECAR_LIMITS.default_top_p,
            repetition_penalty: SIDECAR_LIMITS.default_repetition_penalty,
            enable_thinking: None,
            stop: None,
            seed: None,
            constrain_to_input: None,
        }
    }
}

/// The numbers the sidecar checks a request against and fills in for a field left out.
/// The core passes them at spawn ([`SidecarLimits::ENV`], JSON), so the sidecar's checks
/// are the core's own and the two cannot drift apart; run on its own, the sidecar uses
/// the same numbers from its `schemas.py`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct SidecarLimits {
    pub max_tokens_cap: u32,
    pub max_stop: usize,
    pub max_temperature: f64,
    pub max_repetition_penalty: f64,
    /// The sidecar API's original defaults, for callers that leave a field out.
    pub default_max_tokens: u32,
    pub default_temperature: f64,
    pub default_top_p: f64,
    pub default_repetition_penalty: f64,
}

impl SidecarLimits {
    /// The environment variable that carries them to the sidecar.
    pub(super) const ENV: &'static str = "LOCAL_MLX_LIMITS";

    /// As the sidecar reads them from [`Self::ENV`].
    pub(super) fn to_env_value(self) -> String {
        serde_json::to_string(&self).expect("numbers serialize")
    }
}

/// The core's limits ([`crate::chat`]) and the sidecar API's original defaults.
pub(super) const SIDECAR_LIMITS: SidecarLimits = SidecarLimits {
    max_tokens_cap: crate::chat::MAX_TOKENS_CAP,
    max_stop: crate::chat::MAX_STOP,
    max_temperature: crate::chat::MAX_TEMPERATURE,
    max_repetition_penalty: crate::chat::MAX_REPETITION_PENALTY,
    default_max_tokens: 150,
    default_temperature: 0.7,
    default_top_p: 0.8,
    default_repetition_penalty: crate::chat::DEFAULT_REPETITION_PENALTY,
};

#[derive(Serialize)]
pub(super) struct WireGenerate<'a> {
    #[serde(flatten)]
    request: &'a GenerateRequest,
    stream: bool,
}

impl<'a> WireGenerate<'a> {
    pub(super) fn new(request: &'a GenerateRequest, stream: bool) -> Self {
        WireGenerate { request, stream }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// `max_tokens` or the context was reached: the text may be cut short.
    Length,
    #[serde(other)]
    Other,
}

/// `POST /generate`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse {
    /// The text, trimmed; the sidecar removed a think block the model opened it with.
    pub response: String,
    pub tokens_generated: u32,
    /// With `enable_thinking`: the think text.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    /// Leading prompt tokens reused from the previous prompt's KV cache.
    #[serde(default)]
    pub cached_tokens: Option<u32>,
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    /// Pre-fill speed, tokens/s.
    #[serde(default)]
    pub prompt_tps: Option<f64>,
    /// Generation speed, tokens/s.
    #[serde(default)]
    pub generation_tps: Option<f64>,
    /// MLX peak memory during the request, GB.
    #[serde(default)]
    pub peak_memory: Option<f64>,
}

/// One item of [`Client::generate_stream`](super::Client::generate_stream).
#[derive(Debug, Clone, PartialEq)]
pub enum GenerateChunk {
    /// A piece of the answer; the pieces joined equal the final `response`.
    Token(String),
    /// The last item: the same as [`Client::generate`](super::Client::generate)'s answer.
    Done(GenerateResponse),
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum StreamLine {
    Token { text: String },
    Done(GenerateResponse),
    Error { status: u16, detail: String },
}

/// `POST /load`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadResponse {
    pub status: String,
    pub model_path: String,
    /// The model's context, in tokens.
    #[serde(default)]
    pub context_length: Option<u32>,
}

/// `POST /unload`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnloadResponse {
    pub status: String,
    pub model_loaded: bool,
}

/// What the server is doing (`/status`'s `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Idle,
    Loading,
    /// A model is loaded and no load is under way.
    Ready,
    #[serde(other)]
    Other,
}

/// `GET /status`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub status: String,
    pub model_loaded: bool,
    pub model_path: Option<String>,
    #[serde(default)]
    pub state: Option<ServerState>,
    #[serde(default)]
    pub loading_path: Option<String>,
    #[serde(default)]
    pub generating: Option<bool>,
    #[serde(default)]
    pub queued: Option<u32>,
    /// MLX and mlx-lm are imported (a `/load` before then waits for it).
    #[serde(default)]
    pub mlx_ready: Option<bool>,
    #[serde(default)]
    pub context_length: Option<u32>,
    /// How the loaded weights are stored: `4-bit`, `float32` (dequantized on a CPU), ...
    #[serde(default)]
    pub weights: Option<String>,
    /// The BLAS the sidecar's MLX runs with, e.g. `OpenBLAS (libopenblasp-r0.3.21.so)`.
    #[serde(default)]
    pub blas: Option<String>,
    #[serde(default)]
    pub active_memory_bytes: Option<u64>,
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    #[serde(default)]
    pub cache_memory_bytes: Option<u64>,
    /// The Python server's own pid (`uv run` is its parent).
    #[serde(default)]
    pub pid: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_sends_messages_every_sampling_value_and_only_the_options_set() {
        let mut request = GenerateRequest::new(vec![ChatMessage::user("hi")]);
        let wire = serde_json::to_value(WireGenerate::new(&request, false)).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 150,
                "temperature": 0.7, "top_p": 0.8, "repetition_penalty": 1.0, "stream": false})
        );
        request.enable_thinking = Some(true);
        request.stop = Some(vec!["END".into()]);
        request.seed = Some(7);
        let wire = serde_json::to_value(WireGenerate::new(&request, true)).unwrap();
        assert_eq!(
            (&wire["enable_thinking"], &wire["stop"][0], &wire["seed"], &wire["stream"]),
            (&true.into(), &"END".into(), &7.into(), &true.into())
        );
        assert!(wire.get("prompt").is_none() && wire.get("system").is_none());
    }

    #[test]
    fn the_limits_passed_at_spawn_are_the_cores_numbers_by_name() {
        let sent: serde_json::Value = serde_json::from_str(&SIDECAR_LIMITS.to_env_value()).unwrap();
        assert_eq!(sent["max_tokens_cap"], crate::chat::MAX_TOKENS_CAP);
        assert_eq!(sent["max_stop"], crate::chat::MAX_STOP);
        assert_eq!(sent["max_temperature"], crate::chat::MAX_TEMPERATURE);
        assert_eq!(sent["max_repetition_penalty"], crate::chat::MAX_REPETITION_PENALTY);
        assert_eq!(sent["default_repetition_penalty"], crate::chat::DEFAULT_REPETITION_PENALTY);
        assert_eq!(sent.as_object().unwrap().len(), 8, "the names schemas.py reads, no more: {sent}");
    }

    #[test]
    fn a_seed_only_answer_parses() {
        let answer: GenerateResponse = serde_json::from_str(r#"{"response": "ok", "tokens_generated": 2}"#).unwrap();
        assert_eq!(answer.response, "ok");
        assert_eq!(answer.finish_reason, None);
        let status: StatusResponse =
            serde_json::from_str(r#"{"status": "running", "model_loaded": false, "model_path": null}"#).unwrap();
        assert_eq!(status.state, None);
    }
}
