//! The server as a client sees it: the real router on 127.0.0.1 port 0, a real manager
//! over a real test hub and HF cache, the real sidecar and mlx-lm on the *tiny* model
//! (random weights, so only shapes and agreement are checked, never wording).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use local_mlx::manager::{HubConfig, ManagerConfig, SidecarConfig};
use local_mlx::{MlxModelManager, NullSink};
use local_mlx_handy::schema::DEFAULT_PROMPT_TEXT as HANDY_PROMPT;
use local_mlx_server::{ApiKey, ServerConfig};
use serde_json::{json, Value};
use test_hub::TestHub;
use test_support::fixture;

/// A manager over `hub`, with default settings and the sidecar found the usual way.
fn manager_over(hub: HubConfig) -> MlxModelManager {
    let sidecar = SidecarConfig::in_data_dir(&local_mlx::settings::data_dir());
    let config = ManagerConfig { hub, sidecar, settings: Default::default(), custom_models: Vec::new() };
    MlxModelManager::new(config, Arc::new(NullSink)).unwrap()
}

struct Server {
    _tmp: tempfile::TempDir,
    _hub: TestHub,
    manager: Arc<MlxModelManager>,
    base: String,
    model: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server over a cache holding `models` (fixture keys), with `config`.
async fn server(models: &[&str], config: ServerConfig) -> Server {
    let keys: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let fixtures =
        tokio::task::spawn_blocking(move || keys.iter().map(|k| fixture(k)).collect::<Vec<_>>()).await.unwrap();
    let hub = TestHub::start(fixtures[0].repos.clone()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let manager = Arc::new(manager_over(HubConfig::new(hub.url(), tmp.path().join("hub"))));
    for fixture in &fixtures {
        manager.download(&fixture.repo_id).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let router = local_mlx_server::router(manager.clone(), config);
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server { _tmp: tmp, _hub: hub, manager, base, model: fixtures[0].repo_id.clone(), task }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(server: &Server, body: Value) -> (u16, Value) {
    let response = client().post(format!("{}/v1/chat/completions", server.base)).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn assert_openai_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "{body}");
}

/// Handy's request as its llm_client.rs builds it: these headers, this body, in this
/// field order (serde follows the struct), through reqwest as Handy uses it.
#[derive(serde::Serialize)]
struct HandyRequest<'a> {
    model: &'a str,
    messages: Vec<HandyMessage>,
    stream: bool,
    reasoning_effort: &'a str,
}

#[derive(serde::Serialize)]
struct HandyMessage {
    role: String,
    content: String,
}

fn handy_client(api_key: &str) -> reqwest::Client {
    use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, REFERER, USER_AGENT};
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REFERER, HeaderValue::from_static("https://github.com/cjpais/Handy"));
    headers.insert(USER_AGENT, HeaderValue::from_static("Handy/1.0 (+https://github.com/cjpais/Handy)"));
    headers.insert("X-Title", HeaderValue::from_static("Handy"));
    if !api_key.is_empty() {
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {api_key}")).unwrap());
    }
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Handy's `fetch_models`: `data[].id`, else `data[].name`, else a bare array of strings.
fn handy_parse_models(parsed: &Value) -> Vec<String> {
    if let Some(data) = parsed.get("data").and_then(|d| d.as_array()) {
        data.iter()
            .filter_map(|e| e.get("id").and_then(|i| i.as_str()).or_else(|| e.get("name").and_then(|n| n.as_str())))
            .map(str::to_string)
            .collect()
    } else {
        parsed.as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect()
    }
}

async fn handy_round_trip(server: &Server, api_key: &str) {
    let base_url = format!("{}/v1", server.base);
    let client = handy_client(api_key);
    let models = client.get(format!("{base_url}/models")).send().await.unwrap();
    assert!(models.status().is_success());
    let models = handy_parse_models(&models.json().await.unwrap());
    assert!(models.contains(&server.model), "{models:?}");

    let prompt = HANDY_PROMPT.replace("${output}", HANDY_TRANSCRIPT);
    let body = HandyRequest {
        model: &models[models.iter().position(|m| *m == server.model).unwrap()],
        messages: vec![HandyMessage { role: "user".to_string(), content: prompt }],
        stream: false,
        reasoning_effort: "none",
    };
    let response = client.post(format!("{base_url}/chat/completions")).json(&body).send().await.unwrap();
    // Handy retries without reasoning_effort only on 400/422: it must never need to.
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let content = answer["choices"][0]["message"]["content"].as_str().expect("Handy reads choices[0].message.content");
    assert!(!content.contains("<think>") && !content.contains("</think>"), "{content}");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], server.model);
    assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(matches!(answer["choices"][0]["finish_reason"].as_str(), Some("stop" | "length")));
    let usage = &answer["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 20, "{usage}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(answer["local_mlx"]["timings"]["total_ms"].as_u64().is_some(), "{answer}");
    assert!(answer["local_mlx"]["cached_tokens"].as_u64().is_some(), "{answer}");
    // The tiny model's random words are no clean-up of the transcript: the clean-up check keeps it.
    assert_eq!(content, HANDY_TRANSCRIPT);
    assert_eq!(answer["local_mlx"]["clean_up"]["kept_original"], "cut_off", "{answer}");
    assert!(answer["local_mlx"]["clean_up"]["warnings"][0].as_str().unwrap().contains("kept the original"), "{answer}");
}

/// The defaults without the answer deadline: these tests read the model's own answers,
/// which a busy machine may take longer than 15 s to give (`scripted.rs` tests the deadline).
fn whole_answers() -> ServerConfig {
    ServerConfig { answer_within: None, ..ServerConfig::default() }
}

/// What Handy's default prompt wraps in `<transcript>` tags in these tests.
const HANDY_TRANSCRIPT: &str = "um so i think we should uh meet tomorrow";

fn handy_body(server: &Server) -> Value {
    json!({"model": server.model, "messages": [{"role": "user", "content": HANDY_PROMPT.replace("${output}", HANDY_TRANSCRIPT)}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checked_stream_sends_the_checked_answer_and_no_clean_up_check_passes_the_models_words() {
    let checked = server(&["tiny"], whole_answers()).await;
    let mut body = handy_body(&checked);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = stream(&checked, body).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let text: String =
        chunks.iter().filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str().map(str::to_string)).collect();
    assert_eq!(text, HANDY_TRANSCRIPT);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks.last().unwrap()["local_mlx"]["clean_up"]["kept_original"], "cut_off", "{chunks:?}");
    // A prompt without tags is not checked: there is no transcript to check against.
    let (status, plain) =
        post(&checked, json!({"model": checked.model, "messages": [{"role": "user", "content": HANDY_TRANSCRIPT}]}))
            .await;
    assert_eq!(status, 200, "{plain}");
    assert!(plain["local_mlx"].get("clean_up").is_none(), "{plain}");
    drop(checked);

    let raw = server(&["tiny"], ServerConfig { check_clean_up: false, ..whole_answers() }).await;
    let (status, answer) = post(&raw, handy_body(&raw)).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["choices"][0]["message"]["content"], HANDY_TRANSCRIPT, "the model's own words: {answer}");
    assert!(answer["local_mlx"].get("clean_up").is_none(), "{answer}");
    // The budget comes from the transcript, not from Handy's instructions around it.
    let tokens = answer["usage"]["completion_tokens"].as_u64().unwrap();
    let budget = u64::from(local_mlx::postprocess::max_tokens_for(HANDY_TRANSCRIPT));
    assert!(tokens <= budget, "{tokens} tokens, budget {budget}: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn handys_exact_request_without_a_key_is_answered_and_the_model_is_listed() {
    let server = server(&["tiny"], whole_answers()).await;
    let health: Value = client().get(format!("{}/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "idle", "{health}");
    // While the first request starts the sidecar and loads the model, /health says so.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (url, done) = (format!("{}/health", server.base), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let health: Value = client().get(&url).send().await.unwrap().json().await.unwrap();
                let status = health["status"].as_str().unwrap().to_string();
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    handy_round_trip(&server, "").await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = poller.await.unwrap();
    assert!(seen.iter().all(|s| ["idle", "loading", "ready"].contains(&s.as_str())), "{seen:?}");
    let loading = seen.iter().position(|s| s == "loading").unwrap_or_else(|| panic!("never loading: {seen:?}"));
    assert!(seen[..loading].iter().all(|s| s == "idle"), "ready before loading: {seen:?}");
    let health: Value = client().get(format!("{}/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ready", "model": server.model, "version": env!("CARGO_PKG_VERSION")}));
    // The listing is OpenAI's shape.
    let list: Value = client().get(format!("{}/v1/models", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["object"], "list");
    let entry = list["data"].as_array().unwrap().iter().find(|m| m["id"] == server.model).unwrap();
    assert_eq!(entry["object"], "model");
    assert_eq!(entry["owned_by"], "local-mlx-test");
    assert!(entry["created"].as_u64().unwrap() > 0);
    // Only downloaded models: the catalog's are not in this cache.
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn handys_exact_request_with_a_key_and_a_wrong_or_missing_key_is_401() {
    let config = ServerConfig { api_key: ApiKey::new("handy-key-123"), ..whole_answers() };
    let server = server(&["tiny"], config).await;
    handy_round_trip(&server, "handy-key-123").await;
    for key in ["", "handy-key-12", "handy-key-1234", "wrong"] {
        let response = handy_client(key).get(format!("{}/v1/models", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 401, "key {key:?}");
        assert_openai_error(&response.json().await.unwrap(), "invalid_api_key");
    }
    let response = handy_client("wrong")
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&json!({"model": server.model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let lower = client()
        .get(format!("{}/v1/models", server.base))
        .header("authorization", "bearer handy-key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");
    // Liveness needs no key.
    assert_eq!(client().get(format!("{}/health", server.base)).send().await.unwrap().status(), 200);
}

/// The streamed chunks of a request, parsed, up to and including `[DONE]`.
async fn stream(server: &Server, body: Value) -> Vec<String> {
    let response = client().post(format!("{}/v1/chat/completions", server.base)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    text.split("\n\n").filter(|e| !e.trim().is_empty()).map(|e| e.strip_prefix("data: ").unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_chunks_concatenate_to_the_whole_answer_and_end_with_usage_and_done() {
    let server = server(&["tiny"], whole_answers()).await;
    let request = json!({"model": server.model, "max_tokens": 24, "seed": 1,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]});
    let (status, whole) = post(&server, request.clone()).await;
    assert_eq!(status, 200, "{whole}");

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let events = stream(&server, streaming).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let ids: std::collections::HashSet<_> = chunks.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "one id for the whole stream");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let text: String =
        chunks.iter().filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str().map(str::to_string)).collect();
    assert_eq!(text, whole["choices"][0]["message"]["content"].as_str().unwrap());
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], whole["choices"][0]["finish_reason"]);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], whole["usage"]["completion_tokens"]);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"]);

    // repetition_penalty reaches the sidecar: greedy text with none and with a strong one differ.
    let content_with = |penalty: f64| {
        let mut body = request.clone();
        body["repetition_penalty"] = json!(penalty);
        let server = &server;
        async move {
            let (status, answer) = post(server, body).await;
            assert_eq!(status, 200, "{answer}");
            answer["choices"][0]["message"]["content"].as_str().unwrap().to_string()
        }
    };
    assert_ne!(content_with(1.0).await, content_with(5.0).await);

    // Without include_usage: no usage chunk, still [DONE].
    let mut plain = request.clone();
    plain["stream"] = json!(true);
    let events = stream(&server, plain).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(events.iter().all(|e| !e.contains("\"usage\"")), "{events:?}");

    // json_schema with one string property (Handy's structured mode): the text as that JSON,
    // whole and streamed alike.
    let schema = json!({"type": "json_schema", "json_schema": {"name": "transcription_output", "strict": true,
        "schema": {"type": "object", "properties": {"transcription": {"type": "string"}}, "required": ["transcription"], "additionalProperties": false}}});
    let mut structured = request.clone();
    structured["response_format"] = schema;
    let (status, answer) = post(&server, structured.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let content: Value = serde_json::from_str(answer["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["transcription"], whole["choices"][0]["message"]["content"]);
    structured["stream"] = json!(true);
    let events = stream(&server, structured).await;
    let streamed: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), content);
}

/// Each field spoiled in turn: a 400 `invalid_request_error` that names the field.
async fn each_bad_field_is_a_400_naming_it(server: &Server, good: &Value) {
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for (field, value) in [
        ("model", json!(1)),
        ("messages", json!({"role": "user"})),
        ("messages", json!([])),
        // Ranges are the core's rules, answered as 400 all the same.
        ("temperature", json!(3.0)),
        ("top_p", json!(0)),
        ("repetition_penalty", json!(0)),
        ("repetition_penalty", json!(11)),
        ("max_tokens", json!(0)),
        ("max_tokens", json!(100_000)),
        ("stop", json!(["a", "b", "c", "d", "e"])),
        ("messages", json!([{"role": "user", "content": {"text": "x"}}])),
        ("max_tokens", json!("many")),
        ("temperature", json!("warm")),
        ("top_p", json!(true)),
        ("repetition_penalty", json!("high")),
        ("stop", json!({"a": 1})),
        ("seed", json!(1.5)),
        ("stream", json!(1)),
        ("reasoning_effort", json!(["none"])),
        ("response_format", json!({"type": "json_object"})),
    ] {
        let mut body = good.clone();
        body[field] = value;
        cases.push((body, field));
    }
    for (body, field) in cases {
        let (status, answer) = post(server, body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{field}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{field}: {answer}");
    }
}

/// DNS rebinding and a foreign page's requests: refused with 403, no CORS header.
async fn foreign_hosts_and_pages_are_refused(server: &Server, good: &Value) {
    let chat = format!("{}/v1/chat/completions", server.base);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    for path in ["/v1/models", "/health", "/v1/chat/completions"] {
        let response =
            client().get(format!("{}{path}", server.base)).header("host", "evil.example").send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_openai_error(&response.json().await.unwrap(), "forbidden_host");
    }
    let response =
        client().get(format!("{}/v1/models", server.base)).header("host", "localhost:1").send().await.unwrap();
    assert_eq!(response.status(), 200);

    // A foreign page's preflight and its "simple" POST: refused, and no CORS header.
    let preflight = client()
        .request(reqwest::Method::OPTIONS, &chat)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(preflight.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{preflight:?}");
    let simple = client()
        .post(&chat)
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), 403);
    assert!(simple.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_an_openai_error_and_starts_no_sidecar() {
    let server = server(&["tiny"], whole_answers()).await;
    let chat = format!("{}/v1/chat/completions", server.base);
    let good = json!({"model": server.model, "messages": [{"role": "user", "content": "hi"}]});
    each_bad_field_is_a_400_naming_it(&server, &good).await;
    let response =
        client().post(&chat).header("content-type", "application/json").body("{\"model\":").send().await.unwrap();
    assert_eq!(response.status(), 400);

    // 10 MB of body: 413, before anything reads it as JSON.
    let huge = json!({"model": server.model, "messages": [{"role": "user", "content": "a".repeat(10 << 20)}]});
    let response = client().post(&chat).json(&huge).send().await;
    match response {
        Ok(response) => {
            assert_eq!(response.status(), 413);
            assert_openai_error(&response.json().await.unwrap(), "body_too_large");
        }
        // The server may answer and close before the client finished sending 10 MB.
        Err(error) => panic!("the 413 answer was lost: {error}"),
    }

    foreign_hosts_and_pages_are_refused(&server, &good).await;

    let response = client().get(format!("{}/v1/embeddings", server.base)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_openai_error(&response.json().await.unwrap(), "not_found");

    // An invalid id is a 400; a valid one not downloaded is a 404 that says how to get it.
    let (status, answer) =
        post(&server, json!({"model": "not a model", "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(
        &server,
        json!({"model": "mlx-community/Qwen3-0.6B-4bit", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_openai_error(&answer, "model_not_found");
    assert!(answer["error"]["message"].as_str().unwrap().contains("local-mlx pull mlx-community/Qwen3-0.6B-4bit"));

    assert!(!server.manager.sidecar_running(), "no bad request may start the sidecar");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_requests_get_answers_or_503_never_500_and_the_server_keeps_serving() {
    let server = server(&["tiny"], whole_answers()).await;
    let body = json!({"model": server.model, "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]});
    let url = format!("{}/v1/chat/completions", server.base);
    let requests = (0..50).map(|_| {
        let (url, body) = (url.clone(), body.clone());
        tokio::spawn(async move {
            let response = client().post(url).json(&body).send().await.unwrap();
            let retry_after = response.headers().get("retry-after").is_some();
            (response.status().as_u16(), retry_after, response.json::<Value>().await.unwrap())
        })
    });
    let results: Vec<(u16, bool, Value)> =
        futures_util::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert!(ok >= 1, "{results:?}");
    assert!(!busy.is_empty(), "50 at once must overflow the queue of {}", local_mlx_server::DEFAULT_MAX_QUEUED);
    assert_eq!(ok + busy.len(), 50, "only 200 or 503: {results:?}");
    for (_, retry_after, answer) in busy {
        assert!(*retry_after);
        assert_openai_error(answer, "queue_full");
    }
    let (status, answer) = post(&server, body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_mid_stream_cancels_its_generation() {
    // smol (about 0.2 s a token here): 4,000 tokens would take many minutes if the
    // generation went on after the client left.
    let server = server(&["smol"], whole_answers()).await;
    let long = json!({"model": server.model, "stream": true, "max_tokens": 4000,
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]});
    let response = client().post(format!("{}/v1/chat/completions", server.base)).json(&long).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while seen.matches("\"content\"").count() < 3 {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    drop(body); // the client goes away mid-stream

    let short = json!({"model": server.model, "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]});
    // A hang guard, not a speed check: an uncancelled generation would hold the model
    // for the rest of its 4,000 tokens, far longer than this.
    let (status, answer) = tokio::time::timeout(Duration::from_secs(180), post(&server, short))
        .await
        .expect("the next request waited for the abandoned generation");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() <= 3);
}

/// A server over an empty cache and a hub that is not there: enough for the guards,
/// which answer before any model is involved.
async fn bare_server(config: ServerConfig) -> (String, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let hub = HubConfig::new("http://127.0.0.1:9", tmp.path().join("hub"));
    let manager = Arc::new(manager_over(hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let router = local_mlx_server::router(manager, config);
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, task, tmp)
}

/// One raw HTTP/1.1 request (headers as given, so duplicates go out as written); the status.
async fn raw_status(base: &str, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.strip_prefix("http://").unwrap()).await.unwrap();
    stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test]
async fn host_names_are_judged_whole_and_two_host_headers_are_refused() {
    let (base, task, _tmp) = bare_server(ServerConfig::default()).await;
    let models = format!("{base}/v1/models");
    for host in ["[::1]evil.com", "[::1]evil.com:80", "localhost..", "localhost..:8397", "127.0.0.1.evil.example"] {
        let response = client().get(&models).header("host", host).send().await.unwrap();
        assert_eq!(response.status(), 403, "{host}");
    }
    for host in ["localhost.", "127.1", "[::ffff:127.0.0.1]:8397", "[::1]:8397", "app.localhost"] {
        let response = client().get(&models).header("host", host).send().await.unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    assert_eq!(raw_status(&base, "GET /v1/models HTTP/1.1\r\nHost: localhost\r\n").await, 200);
    // Loopback however --host writes it: no key needed, and only loopback is bound.
    for host in ["127.1", "localhost.", "127.0.0.2"] {
        assert!(ServerConfig::for_host(host, None).is_ok(), "{host}");
        let bound = local_mlx_server::bind(host, 0).await.unwrap();
        assert!(bound.listeners.iter().all(|l| l.local_addr().unwrap().ip().is_loopback()), "{host}");
    }
    for hosts in ["Host: localhost\r\nHost: evil.example\r\n", "Host: evil.example\r\nHost: localhost\r\n"] {
        assert_eq!(raw_status(&base, &format!("GET /v1/models HTTP/1.1\r\n{hosts}")).await, 400, "{hosts:?}");
    }
    task.abort();
}

#[tokio::test]
async fn local_app_webviews_may_call_and_other_schemes_may_not() {
    let (base, task, _tmp) = bare_server(ServerConfig::default()).await;
    let models = format!("{base}/v1/models");
    // Tauri's webview: tauri://localhost on macOS and Linux, http://tauri.localhost on Windows.
    for origin in ["tauri://localhost", "http://tauri.localhost", "http://localhost:1420"] {
        let response = client().get(&models).header("origin", origin).send().await.unwrap();
        assert_eq!(response.status(), 200, "{origin}");
    }
    for origin in ["null", "tauri://evil.example", "https://evil.example", "chrome-extension://abc"] {
        let response = client().get(&models).header("origin", origin).send().await.unwrap();
        assert_eq!(response.status(), 403, "{origin}");
    }
    task.abort();
}

#[tokio::test]
async fn health_names_the_model_only_to_a_request_with_the_key() {
    let config = ServerConfig::for_host("0.0.0.0", ApiKey::new("lan-key")).unwrap();
    let (base, task, _tmp) = bare_server(config).await;
    let health = format!("{base}/health");
    let open: Value = client().get(&health).header("host", "my-mac.lan").send().await.unwrap().json().await.unwrap();
    // The version too, so `service status` (which has no key) can tell a stale server.
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(open, json!({"status": "idle", "version": version}), "liveness and version only, without the key");
    let wrong: Value = client().get(&health).bearer_auth("nope").send().await.unwrap().json().await.unwrap();
    assert_eq!(wrong, json!({"status": "idle", "version": version}));
    let keyed: Value = client().get(&health).bearer_auth("lan-key").send().await.unwrap().json().await.unwrap();
    assert_eq!(keyed, json!({"status": "idle", "model": null, "version": version}), "the whole answer with the key");
    task.abort();
}
