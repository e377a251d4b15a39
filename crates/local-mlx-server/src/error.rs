//! [`ApiError`]: every way a request can fail, answered in OpenAI's error shape.
//!
//! OpenAI clients branch on the status and on `error.type` / `error.code`, so each
//! variant fixes all three, and its message says what was wrong and what to do. A core
//! error is [`ApiError::Core`]: its answer follows from [`local_mlx::Error::kind`] by an
//! exhaustive `match` ([`Answer::of`]), never from the message text; it keeps the core's
//! message (it names the model and the command to run) and sends the core's kind as
//! `error.kind` beside OpenAI's `code`, so a client can tell a crashed sidecar from a
//! full disk.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use local_mlx::ErrorKind;
use serde_json::json;

/// An error answered to the client as `{"error": {"message", "type", "code"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),

    #[error(
        "missing or wrong API key: send `Authorization: Bearer <key>` with the key `local-mlx serve` was started with"
    )]
    Unauthorized,

    #[error("the Host header {host:?} is not a loopback name or address; this server answers only http://localhost, 127.0.0.1 or [::1] (a guard against DNS rebinding)")]
    ForbiddenHost { host: String },

    #[error("requests from the web origin {origin:?} are refused: this server allows no cross-origin (CORS) access")]
    ForbiddenOrigin { origin: String },

    #[error("no route {method} {path}: this server has GET /v1/models, POST /v1/chat/completions and GET /health")]
    NoRoute { method: String, path: String },

    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },

    #[error("the request body did not arrive within {secs} s of its head; send the whole body at once")]
    BodyTimeout { secs: u64 },

    #[error("the server is busy ({limit} requests are already queued or running); retry in a moment")]
    QueueFull { limit: usize },

    /// The server was stopped (SIGTERM, Ctrl-C) and the grace period ran out before
    /// this answer was ready.
    #[error("the server is stopping and this answer was not ready in time; retry when it is back (a login service starts it again)")]
    ShuttingDown,

    /// A failure of the core's, answered as its kind says (`Answer::of`).
    #[error("{message}")]
    Core { kind: ErrorKind, message: String },
}

/// How a core error is answered: one status, OpenAI type and code per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The request named something wrong: 400.
    BadRequest,
    /// The model is not here to use: 404.
    ModelNotFound,
    /// Busy now (in use, downloading, the sidecar's queue full): 503 with `Retry-After`.
    Unavailable,
    /// The model took too long (the sidecar went silent past its limit): 504.
    Timeout,
    /// This machine cannot run MLX: 501, and no `Retry-After`, since retrying will not help.
    UnsupportedPlatform,
    /// Anything else: 500.
    Internal,
}

impl Answer {
    /// Every kind is named (no catch-all), so a new kind is a decision made here.
    pub(crate) fn of(kind: ErrorKind) -> Answer {
        use ErrorKind as K;
        match kind {
            K::UnknownModel
            | K::InvalidRepoId
            | K::InvalidRequest
            | K::TranscriptTooLong
            | K::SidecarBadRequest
            | K::InvalidPrompt => Answer::BadRequest,
            K::NotDownloaded | K::Offline => Answer::ModelNotFound,
            K::Busy | K::SidecarBusy | K::DownloadInProgress => Answer::Unavailable,
            K::SidecarTimeout => Answer::Timeout,
            K::UnsupportedPlatform => Answer::UnsupportedPlatform,
            K::RepoNotFound
            | K::RevisionNotFound
            | K::HubUnauthorized
            | K::HttpStatus
            | K::BadHubResponse
            | K::UnsafeFileName
            | K::NoUsableFiles
            | K::HubLimitExceeded
            | K::HubTimeout
            | K::InvalidEndpoint
            | K::Network
            | K::Stalled
            | K::Integrity
            | K::SizeMismatch
            | K::InsufficientDisk
            | K::Io
            | K::NoActiveDownload
            | K::NothingToRetry
            | K::CorruptRef
            | K::DeletedWhileDownloading
            | K::IllegalTransition
            | K::DownloadFailed
            | K::SettingsCorrupt
            | K::UvNotFound
            | K::BackendNotFound
            | K::BackendUnpackFailed
            | K::SidecarSpawn
            | K::SyncFailed
            | K::NeverReady
            | K::SidecarExited
            | K::SidecarCrashed
            | K::SidecarStopped
            | K::SidecarUnreachable
            | K::SidecarUnauthorized
            | K::ModelLoad
            | K::NoModelLoaded
            | K::SidecarHttp
            | K::SidecarBadResponse => Answer::Internal,
        }
    }
}

/// How long a client should wait after a 503.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ForbiddenHost { .. } | ApiError::ForbiddenOrigin { .. } => StatusCode::FORBIDDEN,
            ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::QueueFull { .. } | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Core { kind, .. } => match Answer::of(*kind) {
                Answer::BadRequest => StatusCode::BAD_REQUEST,
                Answer::ModelNotFound => StatusCode::NOT_FOUND,
                Answer::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                Answer::Timeout => StatusCode::GATEWAY_TIMEOUT,
                Answer::UnsupportedPlatform => StatusCode::NOT_IMPLEMENTED,
                Answer::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// OpenAI's `error.type`: the client's fault or the server's.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "authentication_error",
            ApiError::ForbiddenHost { .. } | ApiError::ForbiddenOrigin { .. } => "permission_error",
            _ if self.status().is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// OpenAI's `error.code`: a stable tag a client can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::ForbiddenHost { .. } => "forbidden_host",
            ApiError::ForbiddenOrigin { .. } => "forbidden_origin",
            ApiError::NoRoute { .. } => "not_found",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout { .. } => "body_timeout",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Core { kind, .. } => match Answer::of(*kind) {
                Answer::BadRequest => "invalid_request",
                Answer::ModelNotFound => "model_not_found",
                Answer::Unavailable => "unavailable",
                Answer::Timeout => "timeout",
                Answer::UnsupportedPlatform => "unsupported_platform",
                Answer::Internal => "internal_error",
            },
        }
    }

    /// The JSON body, also sent as an SSE event when a stream fails midway; a core
    /// error adds its kind (`error.kind`).
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"message": self.to_string(), "type": self.error_type(), "code": self.code()});
        if let ApiError::Core { kind, .. } = self {
            error["kind"] = json!(kind);
        }
        json!({ "error": error })
    }
}

impl From<local_mlx::Error> for ApiError {
    fn from(error: local_mlx::Error) -> Self {
        ApiError::Core { kind: error.kind(), message: error.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_the_openai_shape_and_its_status() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "invalid_request_error"),
            (ApiError::Unauthorized, 401, "authentication_error"),
            (ApiError::ForbiddenHost { host: "evil.example".into() }, 403, "permission_error"),
            (local_mlx::Error::NotDownloaded { model_id: "m".into() }.into(), 404, "invalid_request_error"),
            (ApiError::BodyTooLarge { limit: 10 }, 413, "invalid_request_error"),
            (ApiError::BodyTimeout { secs: 20 }, 408, "invalid_request_error"),
            (ApiError::QueueFull { limit: 4 }, 503, "server_error"),
            (ApiError::ShuttingDown, 503, "server_error"),
        ];
        for (error, status, kind) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            let body = error.body();
            assert_eq!(body["error"]["type"], kind);
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(body["error"]["code"].is_string());
        }
    }

    #[test]
    fn core_errors_map_by_kind() {
        let not_downloaded = local_mlx::Error::NotDownloaded { model_id: "org/m".into() };
        let mapped = ApiError::from(not_downloaded);
        assert_eq!(mapped.status(), StatusCode::NOT_FOUND);
        assert!(mapped.to_string().contains("local-mlx pull org/m"), "{mapped}");
        let body = mapped.body();
        assert_eq!(
            (&body["error"]["code"], &body["error"]["kind"]),
            (&json!("model_not_found"), &json!("not_downloaded"))
        );
        assert!(
            ApiError::QueueFull { limit: 1 }.body()["error"].get("kind").is_none(),
            "the server's own: no core kind"
        );
        let silent = local_mlx::error::SidecarError::Timeout { what: "generate", secs: 120 };
        assert_eq!(ApiError::from(local_mlx::Error::from(silent)).status(), StatusCode::GATEWAY_TIMEOUT);
        let unknown = ApiError::from(local_mlx::Error::UnknownModel { id: "typo".into() });
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
        // A machine MLX cannot run on says so, not "internal error", and asks for no retry.
        let unsupported = local_mlx::Error::UnsupportedPlatform {
            os: "windows".into(),
            arch: "x86_64".into(),
            reason: "MLX needs an Apple Silicon Mac".into(),
        };
        let mapped = ApiError::from(unsupported);
        assert_eq!((mapped.status(), mapped.code()), (StatusCode::NOT_IMPLEMENTED, "unsupported_platform"));
        assert!(mapped.to_string().contains("Apple Silicon"), "{mapped}");
        assert!(!mapped.into_response().headers().contains_key(header::RETRY_AFTER));
        // The two "busy" causes are distinct kinds, both a 503 worth a retry.
        let queue_full = local_mlx::error::SidecarError::Busy { detail: "queue full".into() };
        let queue_full = local_mlx::Error::from(queue_full);
        assert_eq!(queue_full.kind(), local_mlx::ErrorKind::SidecarBusy);
        assert_eq!(ApiError::from(queue_full).status(), StatusCode::SERVICE_UNAVAILABLE);
        let in_use = local_mlx::Error::Busy { model_id: "org/m".into(), state: "loading".into(), action: "x" };
        assert_eq!(in_use.kind(), local_mlx::ErrorKind::Busy);
        assert_eq!(ApiError::from(in_use).status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_503_carries_retry_after() {
        let response = ApiError::QueueFull { limit: 1 }.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
