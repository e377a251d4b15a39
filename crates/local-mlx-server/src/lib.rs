//! local-mlx-server: `local-mlx serve`, an OpenAI-compatible HTTP face over
//! [`MlxModelManager`].
//!
//! Any OpenAI client, and Handy's "Custom" post-processing provider as it ships today,
//! can point its base URL at this server and clean up transcripts with a local MLX
//! model: `GET /v1/models` lists what is downloaded, `POST /v1/chat/completions` answers
//! (whole or as Server-Sent Events), `GET /health` says whether a model is idle,
//! loading or ready. [`router`] builds the whole server as an axum [`Router`], so tests
//! drive it in-process or on port 0 and the CLI only binds and waits for a signal.
//!
//! A key design decision: the server holds no model logic. Loading on demand, one model
//! at a time, the token budget sized from the prompt, thinking and its stripping, idle
//! unload: all are the manager's, so the server, the CLI and the desktop app cannot
//! disagree. What is here is HTTP: parsing and checking OpenAI's request
//! (`request.rs`), its answer shapes (`response.rs`), the access checks a server on a
//! desktop needs (Host, Origin, API key: `access.rs`), a queue bound and a body limit, and
//! errors in OpenAI's shape ([`ApiError`]). Only [`router`], [`bind`], [`serve`] and the
//! configuration are public; the modules are the server's own.

#![warn(unreachable_pub)]

mod access;
mod config;
mod connections;
mod error;
mod listen;
mod request;
mod response;
mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use local_mlx::MlxModelManager;

pub use config::{ApiKey, HostPolicy, KeyError, ServerConfig, DEFAULT_MAX_QUEUED, DEFAULT_PORT};
pub use error::ApiError;
pub use listen::{bind, serve, BindError, Listeners};

/// The whole server: routes, access checks and limits, over `manager`.
pub fn router(manager: Arc<MlxModelManager>, config: ServerConfig) -> Router {
    let config = Arc::new(config);
    let state = routes::AppState::new(manager, config.clone());
    Router::new()
        .route("/v1/models", get(routes::models))
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route("/health", get(routes::health))
        .fallback(routes::no_route)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(config, access::check))
}
