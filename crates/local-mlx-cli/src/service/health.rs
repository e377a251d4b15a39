//! The service's URLs (`/v1` for clients, `/health` for `status`) and asking
//! `/health` what runs there.

use std::time::Duration;

/// The base URL clients use, as `serve` prints it.
pub(super) fn base_url(host: &str, port: u16) -> String {
    format!("http://{}:{port}/v1", bracketed(host))
}

/// `/health` on the service: a wildcard address is asked on loopback.
pub(super) fn health_url(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let host = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1",
        Ok(ip) if ip.is_unspecified() => "::1",
        _ => host,
    };
    format!("http://{}:{port}/health", bracketed(host))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `GET /health` with a short timeout: what it answers (`status`, `version`...).
pub(super) async fn ask_health(url: &str) -> std::result::Result<serde_json::Value, String> {
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build().map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_connect() {
            format!("nothing answers at {url}")
        } else if e.is_timeout() {
            format!("no answer from {url} within 3 s")
        } else {
            local_mlx::error::source_chain(&e)
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    local_mlx::read_small_json(response).await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6_and_ask_wildcards_on_loopback() {
        assert_eq!(base_url("localhost", 8397), "http://localhost:8397/v1");
        assert_eq!(base_url("::1", 80), "http://[::1]:80/v1");
        assert_eq!(health_url("0.0.0.0", 1), "http://127.0.0.1:1/health");
        assert_eq!(health_url("::", 1), "http://[::1]:1/health");
        assert_eq!(health_url("[::1]", 1), "http://[::1]:1/health");
    }
}
