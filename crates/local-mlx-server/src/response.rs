//! OpenAI's answer shapes: the whole completion, the stream's chunks, the model list.
//!
//! Built from the core's [`ChatResponse`]; `usage` is always filled (OpenAI clients and
//! Handy's logs read it), and what OpenAI has no field for (our timings, prefix-cache
//! hits) goes in one extension object, `local_mlx`, that other clients ignore.

use std::time::{SystemTime, UNIX_EPOCH};

use local_mlx::chat::ChatResponse;
use local_mlx::manager::Timings;
use local_mlx::postprocess::CleanUpVerdict;
use local_mlx::MlxModelInfo;
use serde::Serialize;

use crate::request::OutputFormat;

/// `id`, `created` and `model`, shared by a completion and every chunk of its stream.
#[derive(Debug, Clone)]
pub(crate) struct CompletionMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl CompletionMeta {
    pub(crate) fn new(model: &str) -> CompletionMeta {
        let mut random = [0u8; 12];
        // A failing OS random source only makes ids less unique; they are labels, not secrets.
        let _ = getrandom::getrandom(&mut random);
        CompletionMeta {
            id: format!("chatcmpl-{}", hex::encode(random)),
            created: unix_now(),
            model: model.to_string(),
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[derive(Debug, Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
}

#[derive(Debug, Serialize)]
pub(crate) struct PromptTokensDetails {
    pub cached_tokens: u32,
}

/// Ours, beside OpenAI's fields.
#[derive(Debug, Serialize)]
pub(crate) struct Extension {
    pub timings: Timings,
    /// Prompt tokens served from the sidecar's prefix cache (not pre-filled again).
    pub cached_tokens: u32,
    /// The clean-up check's verdict, present when the answer was checked as a clean-up
    /// of a tagged transcript (see `ServerConfig::check_clean_up`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean_up: Option<CleanUpVerdict>,
}

impl Usage {
    fn of(response: &ChatResponse) -> Usage {
        Usage {
            prompt_tokens: response.prompt_tokens,
            completion_tokens: response.completion_tokens,
            total_tokens: response.prompt_tokens + response.completion_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: response.cached_tokens },
        }
    }
}

impl Extension {
    fn of(response: &ChatResponse, clean_up: Option<&CleanUpVerdict>) -> Extension {
        Extension {
            timings: response.timings.clone(),
            cached_tokens: response.cached_tokens,
            clean_up: clean_up.cloned(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    pub local_mlx: Extension,
}

#[derive(Debug, Serialize)]
pub(crate) struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
    /// The thinking, apart from the answer, when the request asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl ChatCompletion {
    pub(crate) fn new(
        meta: CompletionMeta,
        response: ChatResponse,
        format: &OutputFormat,
        clean_up: Option<&CleanUpVerdict>,
    ) -> ChatCompletion {
        ChatCompletion {
            id: meta.id,
            object: "chat.completion",
            created: meta.created,
            model: meta.model,
            usage: Usage::of(&response),
            local_mlx: Extension::of(&response, clean_up),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: format.wrap(&response.text),
                    reasoning_content: response.reasoning,
                },
                finish_reason: response.finish_reason.as_str(),
                logprobs: None,
            }],
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_mlx: Option<Extension>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<&'static str>,
    pub logprobs: Option<()>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl ChatCompletionChunk {
    fn with_choice(meta: &CompletionMeta, delta: Delta, finish_reason: Option<&'static str>) -> Self {
        ChatCompletionChunk {
            id: meta.id.clone(),
            object: "chat.completion.chunk",
            created: meta.created,
            model: meta.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None }],
            usage: None,
            local_mlx: None,
        }
    }

    /// The first chunk: the role, and the opening of a JSON answer if any.
    pub(crate) fn opening(meta: &CompletionMeta, prefix: String) -> Self {
        Self::with_choice(meta, Delta { role: Some("assistant"), content: Some(prefix), ..Delta::default() }, None)
    }

    pub(crate) fn text(meta: &CompletionMeta, text: String) -> Self {
        Self::with_choice(meta, Delta { content: Some(text), ..Delta::default() }, None)
    }

    /// The last chunk with a choice: the closing of a JSON answer, any thinking, the reason.
    pub(crate) fn finish(meta: &CompletionMeta, suffix: String, response: &ChatResponse) -> Self {
        let delta = Delta {
            content: (!suffix.is_empty()).then_some(suffix),
            reasoning_content: response.reasoning.clone(),
            ..Delta::default()
        };
        Self::with_choice(meta, delta, Some(response.finish_reason.as_str()))
    }

    /// `stream_options.include_usage`: one chunk with no choices and the usage.
    pub(crate) fn usage(meta: &CompletionMeta, response: &ChatResponse, clean_up: Option<&CleanUpVerdict>) -> Self {
        ChatCompletionChunk {
            choices: Vec::new(),
            usage: Some(Usage::of(response)),
            local_mlx: Some(Extension::of(response, clean_up)),
            ..Self::with_choice(meta, Delta::default(), None)
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(crate) struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

impl ModelList {
    pub(crate) fn new(models: Vec<MlxModelInfo>, created: u64) -> ModelList {
        let data = models
            .into_iter()
            .map(|model| ModelEntry {
                owned_by: model.id.split('/').next().unwrap_or_default().to_string(),
                id: model.id,
                object: "model",
                created,
            })
            .collect();
        ModelList { object: "list", data }
    }
}
