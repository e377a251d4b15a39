//! The checks every request passes before a route sees it: Host, Origin, API key.
//!
//! One middleware, in the order a refusal is most informative: a rebinding page (bad
//! Host) and a foreign web page (bad Origin) are refused before the key is looked at,
//! so a key never helps a browser page in. No CORS headers are ever sent: a page on
//! another origin cannot read our answers, and its requests are refused outright, since
//! a "simple" cross-origin POST would otherwise still run a generation.
//!
//! Decision, local app webviews: a page is local when this machine serves it, so
//! `http(s)://` on a loopback name and Tauri's webview origin `tauri://localhost`
//! (macOS, Linux) are allowed alike; Tauri on Windows uses `http://tauri.localhost`,
//! a loopback name already. Any other scheme (`file://`'s `null`, extensions) is refused.
//!
//! The open paths are answered without the key, but say no more than liveness to a
//! request without it: which model is loaded is for those who may use it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{host_without_port, is_loopback_name, HostPolicy, ServerConfig};
use crate::error::ApiError;

/// Paths answered without the API key: liveness only, no model output.
const OPEN_PATHS: [&str; 1] = ["/health"];

pub(crate) async fn check(
    State(config): State<Arc<ServerConfig>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mut request = request;
    let headers = request.headers();
    check_host(config.host_policy, headers)?;
    check_origin(headers)?;
    let key = check_key(&config, headers);
    if !OPEN_PATHS.contains(&request.uri().path()) {
        key?;
    } else {
        let given = KeyGiven(key.is_ok());
        request.extensions_mut().insert(given);
    }
    Ok(next.run(request).await)
}

/// On an open path: whether the request may see more than liveness (it carries the
/// key, or the server has none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyGiven(pub bool);

fn check_host(policy: HostPolicy, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut all = headers.get_all(header::HOST).iter();
    let host = all.next().map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    if all.next().is_some() {
        // Which one a proxy or a client library reads is anyone's guess: neither counts.
        return Err(ApiError::BadRequest("the request has more than one Host header; send exactly one".into()));
    }
    if policy == HostPolicy::Any {
        return Ok(());
    }
    match host {
        Some(host) if is_loopback_name(host_without_port(&host)) => Ok(()),
        Some(host) => Err(ApiError::ForbiddenHost { host }),
        None => Err(ApiError::ForbiddenHost { host: String::new() }),
    }
}

/// Requests from a browser page carry `Origin`; only pages served from this machine
/// ([`is_local_origin`]) may call us, every other origin is refused.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    if is_local_origin(&origin) {
        Ok(())
    } else {
        Err(ApiError::ForbiddenOrigin { origin })
    }
}

/// A page this machine serves: `http(s)://` on a loopback name, or a Tauri webview.
fn is_local_origin(origin: &str) -> bool {
    let Some((scheme, host)) = origin.split_once("://") else { return false };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => is_loopback_name(host_without_port(host)),
        "tauri" => host.eq_ignore_ascii_case("localhost"),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pages_and_app_webviews_are_local_origins_and_nothing_else() {
        for origin in [
            "http://localhost:5173",
            "https://127.0.0.1",
            "http://[::1]:8080",
            "tauri://localhost",
            "http://tauri.localhost",
            "https://tauri.localhost",
        ] {
            assert!(is_local_origin(origin), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "null",
            "file://",
            "tauri://evil.example",
            "tauri://localhost.evil.example",
            "chrome-extension://localhost",
            "http://[::1]evil.com",
            "http://localhost..",
        ] {
            assert!(!is_local_origin(origin), "{origin}");
        }
    }
}
