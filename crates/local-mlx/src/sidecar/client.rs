//! The typed HTTP client of the sidecar's API (its types are in [`super::wire`]).
//!
//! Every call carries the bearer token and has a timeout suited to it ([`Timeouts`]). A
//! failed call is turned into a [`SidecarError`] a user can act on (a non-2xx answer by
//! `status_error.rs`); when the connection drops, the
//! client first asks whether the process died, so a killed sidecar is reported as
//! [`SidecarError::Crashed`] with its last stderr lines, not as "connection reset".
//!
//! Streaming is a `Stream` of [`GenerateChunk`]s ([`Client::generate_stream`]), with
//! [`Client::generate_with`] as the callback form for callers that only want the pieces.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::native::NativeLink;
use super::process::Process;
use super::status_error::{detail_of, status_error};
use super::timeouts::Timeouts;
#[cfg(feature = "test-support")]
use super::wire::GenerateResponse;
use super::wire::{
    GenerateChunk, GenerateRequest, LoadResponse, StatusResponse, StreamLine, UnloadResponse, WireGenerate,
};
use super::{Result, SidecarError};
use crate::text::source_chain;

/// The HTTP client of one sidecar process. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Only the tests ask for it ([`Client::port`]).
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    port: u16,
    process: Weak<Process>,
    timeouts: Timeouts,
    /// Set when the process is the native engine's worker: requests go over its pipes.
    native: Option<Arc<NativeLink>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(port: u16, token: String, process: Weak<Process>, timeouts: Timeouts) -> Self {
        let http = reqwest::Client::builder()
            // A system proxy must never see the token or the transcripts.
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client always builds");
        Client { http, base: format!("http://127.0.0.1:{port}"), token, port, process, timeouts, native: None }
    }

    /// The client of a native engine worker (no port: `base_url` is `native:`).
    pub(crate) fn native(link: Arc<NativeLink>, process: Weak<Process>, timeouts: Timeouts) -> Self {
        Client { base: "native:".into(), native: Some(link), ..Client::new(0, String::new(), process, timeouts) }
    }

    #[cfg(feature = "test-support")]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    #[cfg(feature = "test-support")]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    #[cfg(feature = "test-support")]
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// `GET /status`.
    #[cfg(feature = "test-support")]
    pub async fn status(&self) -> Result<StatusResponse> {
        let request = self.http.get(format!("{}/status", self.base));
        let response = self.send("status", request, self.timeouts.status, None).await?;
        self.json("status", response).await
    }

    /// `GET /status` while starting: a refused connection is just "not yet", with none
    /// of the crash diagnosis (the caller watches the process itself).
    pub(crate) async fn probe_status(&self) -> Result<StatusResponse> {
        let request = self.http.get(format!("{}/status", self.base)).bearer_auth(&self.token);
        let response = request
            .timeout(self.timeouts.status)
            .send()
            .await
            .map_err(|e| SidecarError::Unreachable { what: "status", detail: source_chain(&e) })?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(status_error("status", status, &detail_of(&response.text().await.unwrap_or_default()), None));
        }
        self.json("status", response).await
    }

    /// `POST /load`: load the model folder at `model_path` (waits for the load).
    pub async fn load(&self, model_path: &Path) -> Result<LoadResponse> {
        let Some(path) = model_path.to_str() else {
            return Err(SidecarError::ModelLoad {
                path: model_path.to_path_buf(),
                detail: "the path is not valid UTF-8".into(),
            });
        };
        if let Some(native) = &self.native {
            return self.native_result("load", native.load(model_path).await).await;
        }
        let request = self.http.post(format!("{}/load", self.base)).json(&serde_json::json!({ "model_path": path }));
        let response = self.send("load", request, self.timeouts.load, Some(model_path)).await?;
        self.json("load", response).await
    }

    /// `POST /unload`: unload the model (after running and queued generations finish).
    pub async fn unload(&self) -> Result<UnloadResponse> {
        if let Some(native) = &self.native {
            return self.native_result("unload", native.unload().await).await;
        }
        let request = self.http.post(format!("{}/unload", self.base));
        let response = self.send("unload", request, self.timeouts.unload, None).await?;
        self.json("unload", response).await
    }

    /// A native worker's answer; a worker that died meanwhile is [`SidecarError::Crashed`]
    /// with its last output.
    async fn native_result<T>(&self, what: &'static str, result: Result<T>) -> Result<T> {
        match result {
            Err(SidecarError::Crashed { .. }) => Err(self.died_or(what, "the native worker is gone".into()).await),
            other => other,
        }
    }

    /// `POST /generate`: the whole answer at once.
    #[cfg(feature = "test-support")]
    pub async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        if self.native.is_some() {
            return self.generate_with(request, |_| {}).await;
        }
        let timeout = self.timeouts.generate(request.max_tokens);
        let body = WireGenerate::new(request, false);
        let http = self.http.post(format!("{}/generate", self.base)).json(&body);
        let response = self.send("generate", http, timeout, None).await?;
        self.json("generate", response).await
    }

    /// `POST /generate` with `stream: true`: [`GenerateChunk::Token`]s, then one
    /// [`GenerateChunk::Done`]. Errors found before the generation starts (no model, a
    /// full queue, bad values) are returned here; later ones end the stream as an `Err`.
    /// Dropping the stream cancels the generation.
    pub async fn generate_stream(
        &self,
        request: &GenerateRequest,
    ) -> Result<BoxStream<'static, Result<GenerateChunk>>> {
        if let Some(native) = &self.native {
            return self.native_result("generate", native.generate_stream(request).await).await;
        }
        let body = WireGenerate::new(request, true);
        let http = self.http.post(format!("{}/generate", self.base)).json(&body);
        // No whole-request timeout: a long answer is fine as long as pieces keep coming.
        let response =
            tokio::time::timeout(self.timeouts.generate_base, self.send("generate", http, Duration::MAX, None))
                .await
                .map_err(|_| SidecarError::Timeout {
                    what: "generate",
                    secs: self.timeouts.generate_base.as_secs(),
                })??;
        let state =
            StreamState { client: self.clone(), body: response.bytes_stream().boxed(), buf: Vec::new(), done: false };
        Ok(futures_util::stream::unfold(state, StreamState::next).boxed())
    }

    /// [`Client::generate_stream`] with a callback for each piece; returns the final answer.
    #[cfg(feature = "test-support")]
    pub async fn generate_with(
        &self,
        request: &GenerateRequest,
        mut on_piece: impl FnMut(&str),
    ) -> Result<GenerateResponse> {
        let mut stream = self.generate_stream(request).await?;
        while let Some(chunk) = stream.next().await {
            match chunk? {
                GenerateChunk::Token(text) => on_piece(&text),
                GenerateChunk::Done(response) => return Ok(response),
            }
        }
        Err(SidecarError::BadResponse { what: "generate", detail: "the stream ended without a result".into() })
    }

    /// Send with the token and a timeout; a non-2xx answer becomes its error.
    async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        load_path: Option<&Path>,
    ) -> Result<reqwest::Response> {
        let mut request = request.bearer_auth(&self.token);
        if timeout != Duration::MAX {
            request = request.timeout(timeout);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Err(self.transport_error(what, e, timeout).await),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(status_error(what, status.as_u16(), &detail_of(&text), load_path))
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, what: &'static str, response: reqwest::Response) -> Result<T> {
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Err(self.transport_error(what, e, Duration::ZERO).await),
        };
        serde_json::from_slice(&bytes).map_err(|e| SidecarError::BadResponse {
            what,
            detail: format!("{e}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])),
        })
    }

    async fn transport_error(&self, what: &'static str, error: reqwest::Error, timeout: Duration) -> SidecarError {
        if error.is_timeout() {
            return SidecarError::Timeout { what, secs: timeout.as_secs() };
        }
        self.died_or(what, source_chain(&error)).await
    }

    /// Resolves when the process ends: how, with its last stderr lines, as the error a
    /// call would have had; `None` when it was stopped on purpose (or is gone already).
    pub(crate) async fn died(&self) -> Option<SidecarError> {
        let mut ended = self.process.upgrade()?.ended();
        let exit = (*ended.wait_for(Option::is_some).await.ok()?)?;
        let process = self.process.upgrade()?;
        if process.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let stderr_tail = process.tail.settled(Duration::from_secs(1)).await;
        Some(SidecarError::Crashed { what: "the wait for a request", status: exit.to_string(), stderr_tail })
    }

    /// The connection failed: the process died ([`SidecarError::Crashed`]), was stopped
    /// on purpose ([`SidecarError::Stopped`]), or is alive but unreachable.
    async fn died_or(&self, what: &'static str, detail: String) -> SidecarError {
        let Some(process) = self.process.upgrade() else {
            return SidecarError::Stopped { what };
        };
        // A killed Python takes uv with it within milliseconds; give it a moment.
        let exit = process.wait_exit(Duration::from_secs(2)).await;
        if process.stopping.load(Ordering::SeqCst) {
            return SidecarError::Stopped { what };
        }
        match exit {
            Some(exit) => SidecarError::Crashed {
                what,
                status: exit.to_string(),
                stderr_tail: process.tail.settled(Duration::from_secs(1)).await,
            },
            None => SidecarError::Unreachable { what, detail },
        }
    }
}

struct StreamState {
    client: Client,
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    done: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<GenerateChunk>, Self)> {
        if self.done {
            return None;
        }
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item = match serde_json::from_slice::<StreamLine>(&line) {
                    Ok(StreamLine::Token { text }) => return Some((Ok(GenerateChunk::Token(text)), self)),
                    Ok(StreamLine::Done(response)) => Ok(GenerateChunk::Done(response)),
                    Ok(StreamLine::Error { status, detail }) => Err(status_error("generate", status, &detail, None)),
                    Err(e) => Err(SidecarError::BadResponse {
                        what: "generate",
                        detail: format!("{e}: {}", String::from_utf8_lossy(&line)),
                    }),
                };
                self.done = true;
                return Some((item, self));
            }
            let idle = self.client.timeouts.stream_idle;
            let error = match tokio::time::timeout(idle, self.body.next()).await {
                Ok(Some(Ok(bytes))) => {
                    self.buf.extend_from_slice(&bytes);
                    continue;
                }
                Err(_) => SidecarError::Timeout { what: "generate", secs: idle.as_secs() },
                Ok(Some(Err(e))) => self.client.died_or("generate", source_chain(&e)).await,
                Ok(None) => self.client.died_or("generate", "the answer ended without a result".into()).await,
            };
            self.done = true;
            return Some((Err(error), self));
        }
    }
}
