//! The HTTP surface: one function builds the [`Router`], plus the two layers every route
//! shares (the optional bearer-token check, and a debug log line per request).
//!
//! Route families: `api` (repo info, tree), `files` (`resolve` and the `/_lfs` stand-in for
//! the Hub's CDN) and `admin` (`/_test/...`, faults and stats for tests in another process).

mod admin;
mod api;
mod files;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

use crate::error::Error;
use crate::server::HubState;

pub(crate) type Hub = State<Arc<HubState>>;

pub(crate) fn router(state: Arc<HubState>) -> Router {
    Router::new()
        .route("/api/models/{org}/{name}", get(api::model_info))
        .route("/api/models/{org}/{name}/revision/{rev}", get(api::model_info_at))
        .route("/api/models/{org}/{name}/tree/{rev}", get(api::tree))
        .route("/api/models/{org}/{name}/tree/{rev}/{*path}", get(api::tree_at))
        // `get` also answers HEAD; the handlers skip the body work for HEAD themselves.
        .route("/{org}/{name}/resolve/{rev}/{*path}", get(files::resolve))
        .route("/_lfs/{org}/{name}/{sha256}", get(files::lfs))
        .route("/_test/faults", post(admin::set_faults).get(admin::list_faults).delete(admin::clear_faults))
        .route("/_test/stats", get(admin::stats))
        .route("/_test/reset_stats", post(admin::reset_stats))
        .route("/_test/rate_cap", put(admin::set_rate_cap))
        .layer(middleware::from_fn_with_state(state.clone(), check_token))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// With `--require-token`, everything but the admin routes and `/_lfs` needs the token.
/// `/_lfs` stands for the Hub's CDN, which authorizes by signed URL, not by token, and which
/// `huggingface_hub` calls without the Authorization header when it is on another host.
async fn check_token(State(hub): Hub, request: Request, next: Next) -> Response {
    if let Some(token) = &hub.require_token {
        let path = request.uri().path();
        let exempt = path.starts_with("/_test/") || path.starts_with("/_lfs/");
        let sent = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !exempt && sent != Some(token.as_str()) {
            return Error::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let range = request.headers().get(header::RANGE).cloned();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, ?range, status = %response.status(), "request");
    response
}
