//! The checks every request passes before a route sees it: Host, Origin, API key.
//!
//! One middleware, in the order a refusal is most informative: a rebinding page (bad
//! Host) and a foreign web page (bad Origin) are refused before the key is looked at,
//! so a key never helps a browser page in. No CORS headers are ever sent: a page on
//! another origin cannot read our answers, and its requests are refused outright, since
//! a "simple" cross-origin POST would otherwise still run a generation.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{host_without_port, is_loopback_name, HostPolicy, ServerConfig};
use crate::error::ApiError;

/// Paths answered without the API key: liveness only, no model output.
const OPEN_PATHS: [&str; 1] = ["/health"];

pub async fn check(
    State(config): State<Arc<ServerConfig>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    check_host(config.host_policy, headers)?;
    check_origin(headers)?;
    if !OPEN_PATHS.contains(&request.uri().path()) {
        check_key(&config, headers)?;
    }
    Ok(next.run(request).await)
}

fn check_host(policy: HostPolicy, headers: &HeaderMap) -> Result<(), ApiError> {
    if policy == HostPolicy::Any {
        return Ok(());
    }
    let host = headers.get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    match host {
        Some(host) if is_loopback_name(host_without_port(&host)) => Ok(()),
        Some(host) => Err(ApiError::ForbiddenHost { host }),
        None => Err(ApiError::ForbiddenHost { host: String::new() }),
    }
}

/// Requests from a browser page carry `Origin`; only pages served from this machine's
/// loopback may call us (their requests are same-host), every other origin is refused.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    match host {
        Some(host) if is_loopback_name(host_without_port(host)) => Ok(()),
        _ => Err(ApiError::ForbiddenOrigin { origin }),
    }
}

fn check_key(config: &ServerConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &config.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        // The scheme is case-insensitive (RFC 9110); some clients send `bearer`.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .unwrap_or_default();
    if key.matches(given.trim()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
