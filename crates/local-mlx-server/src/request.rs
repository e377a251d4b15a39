//! OpenAI's chat-completions request, parsed and checked into a [`Plan`]: the core's
//! [`ChatRequest`] plus what only HTTP cares about (streaming, usage chunk, output shape).
//!
//! Loose fields (`content`, `stop`, `response_format`) are read as JSON values and
//! checked by hand, because serde's "did not match any variant of untagged enum" tells a
//! client nothing; every refusal names the field and what is accepted. Unknown fields
//! are ignored, as OpenAI clients send many we have no use for; tools are not: a client
//! that offers tools waits for tool calls, and a plain text answer would mislead it, so
//! `tools` or `tool_choice` asking for them is a 400 naming the field. Defaults favour the
//! clean-up job: [`ChatRequest::new`]'s (greedy, thinking off) unless asked for; `top_p`
//! is 1.0 unless given, as OpenAI's.
//! Value ranges (temperature, top_p, max_tokens, stop, empty messages) are the core's
//! rules, checked once in [`ChatRequest`]'s validation and answered as 400 from there.

use local_mlx::chat::{ChatMessage, ChatRequest, Role};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// The body of `POST /v1/chat/completions`, as sent.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Not OpenAI's: mlx_lm.server's and vLLM's name, read the same way here.
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
    #[serde(default)]
    pub stop: Option<Value>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    #[serde(default)]
    pub chat_template_kwargs: Option<ChatTemplateKwargs>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub tools: Option<Value>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    pub role: WireRole,
    #[serde(default)]
    pub content: Value,
}

/// OpenAI's roles that carry plain text; `developer` is the newer name of `system`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WireRole {
    System,
    Developer,
    User,
    Assistant,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatTemplateKwargs {
    #[serde(default)]
    pub enable_thinking: Option<bool>,
}

/// How the generated text is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Text,
    /// `response_format` json_schema with one required string property: the text is
    /// returned as `{"<field>": "<text>"}` (what Handy's structured mode asks for).
    JsonField(String),
}

impl OutputFormat {
    /// The whole answer in this format.
    pub(crate) fn wrap(&self, text: &str) -> String {
        match self {
            OutputFormat::Text => text.to_string(),
            OutputFormat::JsonField(field) => serde_json::json!({ field: text }).to_string(),
        }
    }

    /// The pieces a stream sends before, around each piece of text, and after it, so the
    /// concatenated stream equals [`OutputFormat::wrap`] of the whole text.
    pub(crate) fn stream_prefix(&self) -> String {
        match self {
            OutputFormat::Text => String::new(),
            OutputFormat::JsonField(field) => format!("{{{}:\"", json_string(field)),
        }
    }

    pub(crate) fn stream_piece(&self, text: &str) -> String {
        match self {
            OutputFormat::Text => text.to_string(),
            // JSON escapes one character at a time, so escaped pieces join into the escaped whole.
            OutputFormat::JsonField(_) => {
                let quoted = json_string(text);
                quoted[1..quoted.len() - 1].to_string()
            }
        }
    }

    pub(crate) fn stream_suffix(&self) -> String {
        match self {
            OutputFormat::Text => String::new(),
            OutputFormat::JsonField(_) => "\"}".to_string(),
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

/// A checked request: what the core runs and how HTTP answers it.
#[derive(Debug)]
pub(crate) struct Plan {
    pub chat: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    pub format: OutputFormat,
}

/// Parse and check a request body.
pub(crate) fn parse(body: &[u8]) -> Result<Plan, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let request: ChatCompletionRequest = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("the body is not a valid chat completion request: {inner}"))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    request.into_plan()
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

impl ChatCompletionRequest {
    pub(crate) fn into_plan(self) -> Result<Plan, ApiError> {
        if self.model.trim().is_empty() {
            return Err(bad("model: give a model id, one of GET /v1/models"));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(bad("n: only 1 choice per request is supported"));
        }
        no_tools(self.tools.as_ref(), self.tool_choice.as_ref())?;
        let messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(index, message)| message_of(index, message))
            .collect::<Result<Vec<_>, _>>()?;
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        let thinking = thinking_of(self.reasoning_effort.as_deref(), self.chat_template_kwargs.as_ref())?;
        let format = format_of(self.response_format.as_ref())?;
        let stream = self.stream.unwrap_or(false);
        let include_usage = stream && self.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
        // The core's defaults (greedy, top_p 1.0 as OpenAI's, no penalty), overridden
        // only by what the client sent.
        let mut chat = ChatRequest::new(self.model.trim(), messages);
        chat.max_tokens = max_tokens;
        chat.temperature = self.temperature.unwrap_or(chat.temperature);
        chat.top_p = self.top_p.unwrap_or(chat.top_p);
        chat.repetition_penalty = self.repetition_penalty.unwrap_or(chat.repetition_penalty);
        chat.stop = stops_of(self.stop.as_ref())?;
        chat.seed = self.seed;
        chat.thinking = thinking;
        // A general OpenAI endpoint: the client's prompt may ask for any words (and
        // `ChatRequest::new` leaves this off).
        Ok(Plan { chat, stream, include_usage, format })
    }
}

fn message_of(index: usize, message: &WireMessage) -> Result<ChatMessage, ApiError> {
    let role = match message.role {
        WireRole::System | WireRole::Developer => Role::System,
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let content = match &message.content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(part_index, part)| match (part.get("type").and_then(Value::as_str), part.get("text")) {
                (Some("text"), Some(Value::String(text))) => Ok(text.as_str()),
                _ => Err(bad(format!(
                    "messages[{index}].content[{part_index}]: only text parts ({{\"type\": \"text\", \"text\": \"...\"}}) are supported"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
        // An assistant turn with only tool calls has no content; there is no text to add.
        Value::Null if matches!(role, Role::Assistant) => String::new(),
        other => {
            return Err(bad(format!(
                "messages[{index}].content: expected a string or an array of text parts, got {}",
                type_name(other)
            )))
        }
    };
    Ok(ChatMessage { role, content })
}

/// Tools are refused; only their harmless spellings pass: none given (absent, `null`,
/// `[]`) and a `tool_choice` of `"none"` or `"auto"` with none given.
fn no_tools(tools: Option<&Value>, choice: Option<&Value>) -> Result<(), ApiError> {
    let offered = match tools {
        None | Some(Value::Null) => false,
        Some(Value::Array(list)) => !list.is_empty(),
        Some(_) => true,
    };
    if offered {
        return Err(bad(
            "tools: this server answers with text only and calls no tools; send the request without tools",
        ));
    }
    match choice {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(choice)) if choice == "none" || choice == "auto" => Ok(()),
        Some(other) => Err(bad(format!(
            "tool_choice: this server calls no tools, so only \"none\" is possible, not {}",
            serde_json::to_string(other).unwrap_or_default()
        ))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Thinking is off unless asked for: `chat_template_kwargs.enable_thinking` wins, then
/// `reasoning_effort` (`none`/`minimal` off, `low`/`medium`/`high`/`xhigh` on).
fn thinking_of(effort: Option<&str>, kwargs: Option<&ChatTemplateKwargs>) -> Result<bool, ApiError> {
    if let Some(enable) = kwargs.and_then(|k| k.enable_thinking) {
        return Ok(enable);
    }
    match effort {
        None | Some("none" | "minimal") => Ok(false),
        Some("low" | "medium" | "high" | "xhigh") => Ok(true),
        Some(other) => {
            Err(bad(format!("reasoning_effort: {other:?} is not one of none, minimal, low, medium, high, xhigh")))
        }
    }
}

fn stops_of(stop: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let stops = match stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("stop: expected a string or an array of strings"))?,
        Some(other) => {
            return Err(bad(format!("stop: expected a string or an array of strings, got {}", type_name(other))))
        }
    };
    Ok(stops)
}

const SUPPORTED_FORMATS: &str = "supported: {\"type\": \"text\"}, or {\"type\": \"json_schema\"} whose schema is an object with exactly one property, a required string";

fn format_of(format: Option<&Value>) -> Result<OutputFormat, ApiError> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(OutputFormat::Text);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_schema") => {
            let schema = &format["json_schema"]["schema"];
            single_string_field(schema)
                .map(OutputFormat::JsonField)
                .ok_or_else(|| bad(format!("response_format: this json_schema is not supported; {SUPPORTED_FORMATS}")))
        }
        _ => Err(bad(format!("response_format: {SUPPORTED_FORMATS}"))),
    }
}

/// The one required string property of an object schema, if that is all it has.
fn single_string_field(schema: &Value) -> Option<String> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return None;
    }
    let properties = schema.get("properties")?.as_object()?;
    let (name, property) = properties.iter().next().filter(|_| properties.len() == 1)?;
    let required = schema.get("required")?.as_array()?;
    let is_required = required.len() == 1 && required[0].as_str() == Some(name.as_str());
    (is_required && property.get("type").and_then(Value::as_str) == Some("string")).then(|| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(body: Value) -> Result<Plan, ApiError> {
        parse(body.to_string().as_bytes())
    }

    fn error(body: Value) -> String {
        match plan(body) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = json!({"model": "org/m", "messages": [{"role": "user", "content": "hi"}]});
        body[field] = value;
        body
    }

    #[test]
    fn handys_request_is_greedy_without_thinking_and_without_a_budget() {
        let plan = plan(json!({
            "model": "org/m", "messages": [{"role": "user", "content": "<transcript>\nhi\n</transcript>"}],
            "stream": false, "reasoning_effort": "none"
        }))
        .unwrap();
        assert!(!plan.stream && !plan.include_usage && !plan.chat.thinking);
        assert_eq!(plan.chat.max_tokens, None);
        assert_eq!(plan.chat.temperature, 0.0);
        assert_eq!(plan.chat.repetition_penalty, 1.0, "no penalty: a clean-up copies the transcript's words");
        assert_eq!(plan.chat.messages.len(), 1);
        assert!(matches!(plan.chat.messages[0].role, Role::User));
        assert_eq!(plan.format, OutputFormat::Text);
    }

    #[test]
    fn a_request_without_top_p_samples_over_all_tokens_as_openai_does() {
        let plan = plan(with("temperature", json!(0.7))).unwrap();
        assert_eq!((plan.chat.temperature, plan.chat.top_p), (0.7, 1.0), "not the sidecar's 0.8");
        let rest = ChatRequest { temperature: 0.7, ..ChatRequest::new("org/m", plan.chat.messages.clone()) };
        assert_eq!(plan.chat, rest, "everything not sent is ChatRequest::new's");
    }

    #[test]
    fn the_fields_openai_clients_send_are_read() {
        let plan = plan(json!({
            "model": " org/m ", "stream": true, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null}
            ],
            "max_tokens": 9, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9,
            "stop": "\n", "seed": 42, "chat_template_kwargs": {"enable_thinking": true},
            "logprobs": false, "user": "someone", "frequency_penalty": 0, "repetition_penalty": 1.2
        }))
        .unwrap();
        assert!(plan.stream && plan.include_usage && plan.chat.thinking);
        assert_eq!(plan.chat.model, "org/m");
        assert_eq!(plan.chat.max_tokens, Some(7));
        assert_eq!((plan.chat.temperature, plan.chat.top_p, plan.chat.seed), (0.5, 0.9, Some(42)));
        assert_eq!(plan.chat.repetition_penalty, 1.2);
        assert_eq!(plan.chat.stop, vec!["\n".to_string()]);
        assert!(matches!(plan.chat.messages[0].role, Role::System));
        assert_eq!(plan.chat.messages[1].content, "ab");
        assert_eq!(plan.chat.messages[2].content, "");
    }

    #[test]
    fn thinking_follows_reasoning_effort_and_the_template_switch() {
        for (effort, kwargs, expected) in [
            (None, None, false),
            (Some("none"), None, false),
            (Some("minimal"), None, false),
            (Some("low"), None, true),
            (Some("high"), None, true),
            (Some("high"), Some(false), false),
            (None, Some(true), true),
        ] {
            let mut body = with("reasoning_effort", json!(effort));
            if let Some(enable) = kwargs {
                body["chat_template_kwargs"] = json!({"enable_thinking": enable});
            }
            assert_eq!(plan(body).unwrap().chat.thinking, expected, "{effort:?} {kwargs:?}");
        }
        assert!(error(with("reasoning_effort", json!("extreme"))).contains("reasoning_effort"));
    }

    #[test]
    fn every_field_of_the_wrong_type_is_a_400_naming_the_field() {
        let cases = [
            ("model", json!(5), "model"),
            ("messages", json!("hi"), "messages"),
            ("messages", json!([{"role": "tool", "content": "x"}]), "messages[0].role"),
            ("messages", json!([{"role": "user", "content": 5}]), "messages[0].content"),
            ("messages", json!([{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content[0]"),
            ("messages", json!([{"content": "x"}]), "messages[0]"),
            ("stream", json!("yes"), "stream"),
            ("stream_options", json!({"include_usage": "yes"}), "stream_options.include_usage"),
            ("max_tokens", json!("ten"), "max_tokens"),
            ("max_tokens", json!(-1), "max_tokens"),
            ("max_completion_tokens", json!(1.5), "max_completion_tokens"),
            ("temperature", json!("hot"), "temperature"),
            ("top_p", json!([1]), "top_p"),
            ("stop", json!(7), "stop"),
            ("stop", json!([1, 2]), "stop"),
            ("seed", json!("s"), "seed"),
            ("seed", json!(-3), "seed"),
            ("n", json!(2), "n"),
            ("reasoning_effort", json!(1), "reasoning_effort"),
            ("chat_template_kwargs", json!({"enable_thinking": "yes"}), "chat_template_kwargs.enable_thinking"),
            ("response_format", json!({"type": "json_object"}), "response_format"),
            ("response_format", json!("json"), "response_format"),
        ];
        for (field, value, named) in cases {
            let message = error(with(field, value.clone()));
            assert!(message.starts_with(named), "{field} = {value}: {message}");
        }
        assert!(error(json!({"messages": []})).contains("model"));
        assert!(error(json!({"model": "", "messages": [{"role": "user", "content": "x"}]})).contains("model"));
        assert!(matches!(parse(b"{not json"), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse(b"[]"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn a_single_required_string_schema_becomes_a_json_field() {
        let handy = json!({"type": "json_schema", "json_schema": {"name": "transcription_output", "strict": true,
            "schema": {"type": "object", "properties": {"transcription": {"type": "string", "description": "d"}},
                       "required": ["transcription"], "additionalProperties": false}}});
        let format = plan(with("response_format", handy)).unwrap().format;
        assert_eq!(format, OutputFormat::JsonField("transcription".into()));
        let text = "say \"hi\"\n\\ é";
        assert_eq!(serde_json::from_str::<Value>(&format.wrap(text)).unwrap(), json!({"transcription": text}));
        let streamed: String =
            [format.stream_prefix(), format.stream_piece("say \"h"), format.stream_piece("i\"\n\\ é")]
                .into_iter()
                .chain([format.stream_suffix()])
                .collect();
        assert_eq!(streamed, format.wrap(text));

        for schema in [
            json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}),
            json!({"type": "array"}),
        ] {
            let body = with("response_format", json!({"type": "json_schema", "json_schema": {"schema": schema}}));
            assert!(error(body).contains("exactly one property"));
        }
        assert_eq!(plan(with("response_format", json!({"type": "text"}))).unwrap().format, OutputFormat::Text);
    }

    #[test]
    fn usage_in_a_stream_only_when_asked_and_only_when_streaming() {
        assert!(!plan(with("stream_options", json!({"include_usage": true}))).unwrap().include_usage);
        let mut body = with("stream", json!(true));
        assert!(!plan(body.clone()).unwrap().include_usage);
        body["stream_options"] = json!({"include_usage": true});
        assert!(plan(body).unwrap().include_usage);
    }

    #[test]
    fn tools_are_refused_naming_the_field_and_their_absence_passes() {
        let tool = json!([{"type": "function", "function": {"name": "get_time", "parameters": {}}}]);
        assert!(error(with("tools", tool)).starts_with("tools:"));
        assert!(error(with("tools", json!({"x": 1}))).starts_with("tools:"));
        for choice in [json!("required"), json!({"type": "function", "function": {"name": "get_time"}})] {
            assert!(error(with("tool_choice", choice)).starts_with("tool_choice:"));
        }
        for (field, value) in [
            ("tools", json!([])),
            ("tools", Value::Null),
            ("tool_choice", json!("none")),
            ("tool_choice", json!("auto")),
        ] {
            assert!(plan(with(field, value.clone())).is_ok(), "{field} = {value}");
        }
    }
}
