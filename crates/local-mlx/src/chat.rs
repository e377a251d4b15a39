//! One general chat call, shared by `process_text` and the OpenAI-compatible server:
//! the request and answer of [`MlxModelManager::chat`](crate::MlxModelManager::chat) and
//! [`MlxModelManager::chat_stream`](crate::MlxModelManager::chat_stream), their checks,
//! and where the time went ([`Timings`]). It sits below the manager, the sidecar and
//! postprocess, and imports none of them.

use serde::{Deserialize, Serialize};

use crate::transcript::{max_tokens_for, tagged_transcript};

/// The most `max_tokens` the sidecar accepts.
pub const MAX_TOKENS_CAP: u32 = 8192;
/// The most stop strings one request may give (OpenAI's limit too).
pub const MAX_STOP: usize = 4;
/// `temperature` is in `[0, MAX_TEMPERATURE]`.
pub const MAX_TEMPERATURE: f64 = 2.0;
/// `repetition_penalty` is in `(0, MAX_REPETITION_PENALTY]`.
pub const MAX_REPETITION_PENALTY: f64 = 10.0;

/// No nucleus cut unless asked: OpenAI's and `mlx_lm.server`'s default, so a client that
/// sends only `temperature` samples as it would there.
pub const DEFAULT_TOP_P: f64 = 1.0;

/// No repetition penalty unless asked, as OpenAI and `mlx_lm.server` do (the sidecar's
/// default is the same number). A penalty of 1.15 divides the logits of every token among the last 20, the prompt's
/// included: a clean-up must copy the transcript's words, and with 1.15 SmolLM2 dropped
/// them ("So I was thinking we could meeting Friday.") where with 1.0 it wrote the
/// reference exactly (docs/QUALITY.md). A runaway repetition is cut by the budget and
/// refused by the clean-up check instead.
pub const DEFAULT_REPETITION_PENALTY: f64 = 1.0;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::System, content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::User, content: content.into() }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::Assistant, content: content.into() }
    }
}

/// What to generate, with which model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// A Hugging Face repo id, of the catalog or custom.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// `None`: sized from the prompt's length (see the module's doc).
    pub max_tokens: Option<u32>,
    /// 0.0 is greedy.
    pub temperature: f64,
    /// (0, 1]: sample among the most likely tokens whose probabilities add up to it
    /// (1.0: all, the default: see [`DEFAULT_TOP_P`]); no effect when greedy.
    pub top_p: f64,
    /// (0, 10]: logits of tokens among the last 20 (prompt included) are divided by it
    /// (1.0: none, the default: see [`DEFAULT_REPETITION_PENALTY`]).
    pub repetition_penalty: f64,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    /// The chat template's `enable_thinking`; think text never reaches the answer's text.
    pub thinking: bool,
    /// Let the model emit only the words of the last user message (any casing),
    /// punctuation, digits and whitespace: a clean-up that cannot answer, translate or
    /// invent (see docs/QUALITY.md). Off unless asked.
    pub constrain_to_input: bool,
}

impl ChatRequest {
    /// Greedy (the one place a default temperature is written: clean-up wants the
    /// transcript's own words, and the same text every time), no thinking, no
    /// penalty, the budget sized from the messages.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            max_tokens: None,
            temperature: 0.0,
            top_p: DEFAULT_TOP_P,
            repetition_penalty: DEFAULT_REPETITION_PENALTY,
            stop: Vec::new(),
            seed: None,
            thinking: false,
            constrain_to_input: false,
        }
    }

    /// Refuse values the sidecar would refuse, before anything is started or loaded:
    /// what is wrong, for [`Error::InvalidRequest`](crate::Error::InvalidRequest).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.messages.is_empty() {
            return Err("messages is empty: give at least one message".into());
        }
        if let Some(max) = self.max_tokens.filter(|m| !(1..=MAX_TOKENS_CAP).contains(m)) {
            return Err(format!("max_tokens must be between 1 and {MAX_TOKENS_CAP}, got {max}"));
        }
        if !(self.temperature.is_finite() && (0.0..=MAX_TEMPERATURE).contains(&self.temperature)) {
            return Err(format!("temperature must be between 0 and {MAX_TEMPERATURE}, got {}", self.temperature));
        }
        if !(self.top_p.is_finite() && self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        let penalty = self.repetition_penalty;
        if !(penalty.is_finite() && penalty > 0.0 && penalty <= MAX_REPETITION_PENALTY) {
            return Err(format!("repetition_penalty must be in (0, {MAX_REPETITION_PENALTY}], got {penalty}"));
        }
        if self.stop.len() > MAX_STOP || self.stop.iter().any(String::is_empty) {
            return Err(format!("stop must be at most {MAX_STOP} non-empty strings, got {:?}", self.stop));
        }
        Ok(())
    }

    /// The last user message: the text to answer.
    pub fn last_user(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str())
    }

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

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn, or a stop string came.
    Stop,
    /// `max_tokens` or the model's context was reached: the text may be cut short.
    Length,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Where the time of one chat call or `process_text` went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxTimings"))]
pub struct Timings {
    /// Starting the sidecar (0 when it was running), including a first-run sync.
    pub start_ms: u64,
    /// Loading the model (0 when it was loaded).
    pub load_ms: u64,
    pub generate_ms: u64,
    pub total_ms: u64,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The model's id as the store knows it.
    pub model_id: String,
    /// Think blocks removed, trimmed.
    pub text: String,
    /// With `thinking`: the think text.
    pub reasoning: Option<String>,
    pub finish_reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens served from the sidecar's prefix cache (not pre-filled again).
    pub cached_tokens: u32,
    pub timings: Timings,
}

/// One item of [`MlxModelManager::chat_stream`](crate::MlxModelManager::chat_stream).
#[derive(Debug, Clone, PartialEq)]
pub enum ChatChunk {
    /// A piece of the answer; the pieces joined equal the final `text`.
    Text(String),
    /// The last item.
    Done(ChatResponse),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ChatRequest {
        ChatRequest::new("org/model", vec![ChatMessage::system("be brief"), ChatMessage::user("hello there")])
    }

    #[test]
    fn roles_and_finish_reasons_use_openais_names() {
        assert_eq!(serde_json::to_value(ChatMessage::assistant("x")).unwrap()["role"], "assistant");
        assert_eq!(serde_json::to_value(FinishReason::Length).unwrap(), "length");
        assert!(serde_json::from_str::<ChatMessage>(r#"{"role": "tool", "content": "x"}"#).is_err());
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        type Spoil = fn(&mut ChatRequest);
        let cases: [(&str, Spoil); 9] = [
            ("messages", |r| r.messages.clear()),
            ("max_tokens", |r| r.max_tokens = Some(0)),
            ("max_tokens", |r| r.max_tokens = Some(MAX_TOKENS_CAP + 1)),
            ("temperature", |r| r.temperature = f64::NAN),
            ("temperature", |r| r.temperature = 2.5),
            ("top_p", |r| r.top_p = 0.0),
            ("repetition_penalty", |r| r.repetition_penalty = 0.0),
            ("repetition_penalty", |r| r.repetition_penalty = f64::INFINITY),
            ("stop", |r| r.stop = vec![String::new()]),
        ];
        for (field, spoil) in cases {
            let mut r = request();
            spoil(&mut r);
            let err = r.check().unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        assert!(request().check().is_ok());
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
