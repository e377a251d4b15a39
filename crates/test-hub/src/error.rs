//! The crate's one error type, for the library API and for HTTP answers alike.
//!
//! Each variant that a client can provoke maps to the status and `X-Error-Code` header the
//! real Hub sends, because `huggingface_hub` (and our own client) branch on that header, not
//! on the body: `RepoNotFound`, `RevisionNotFound`, `EntryNotFound`. The JSON body
//! `{"error": "..."}` mirrors the Hub's too.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("repository {repo} not found")]
    RepoNotFound { repo: String },

    #[error("revision {rev} not found in {repo}")]
    RevisionNotFound { repo: String, rev: String },

    /// `commit` is sent as `X-Repo-Commit`, which `huggingface_hub` uses to cache the absence.
    #[error("{path} not found in {repo} at {commit}")]
    EntryNotFound { repo: String, path: String, commit: String },

    #[error("invalid credentials in Authorization header")]
    Unauthorized,

    #[error("range not satisfiable for a file of {size} bytes")]
    RangeNotSatisfiable { size: u64 },

    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("background task (listing or hashing) failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    fn status_and_code(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            Error::RepoNotFound { .. } => (StatusCode::NOT_FOUND, Some("RepoNotFound")),
            Error::RevisionNotFound { .. } => (StatusCode::NOT_FOUND, Some("RevisionNotFound")),
            Error::EntryNotFound { .. } => (StatusCode::NOT_FOUND, Some("EntryNotFound")),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, None),
            Error::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, None),
            Error::Io { .. } | Error::Bind { .. } | Error::Join(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // The Hub's exact wording: huggingface_hub compares against these strings.
            Error::RepoNotFound { .. } => "Repository not found".to_string(),
            Error::Unauthorized => "Invalid credentials in Authorization header".to_string(),
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": message }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(code) = code {
            headers.insert("x-error-code", HeaderValue::from_static(code));
        }
        if let Ok(value) = HeaderValue::from_str(&message) {
            headers.insert("x-error-message", value);
        }
        match self {
            Error::EntryNotFound { commit, .. } => {
                if let Ok(value) = HeaderValue::from_str(&commit) {
                    headers.insert("x-repo-commit", value);
                }
            }
            Error::RangeNotSatisfiable { size } => {
                let value = HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii");
                headers.insert(header::CONTENT_RANGE, value);
            }
            _ => {}
        }
        response
    }
}
