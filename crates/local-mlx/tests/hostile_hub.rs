//! A hostile hub's metadata answers: endless bodies, silence after the headers, `Link`
//! pages that loop or lead to another server, sizes that overflow, and an endpoint that
//! is not a URL. Each ends fast with a clear error, bounded memory, and the token kept.

mod common;

use std::sync::Arc;

use common::*;
use local_mlx::NullSink;
use test_hub::{ApiBodyMode, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn one_attempt(mut config: local_mlx::manager::HubConfig) -> local_mlx::manager::HubConfig {
    config.max_attempts = 1;
    config
}

/// A valid one-file tree page.
fn tree_page() -> String {
    serde_json::json!([{"type": "file", "path": "config.json", "size": 2,
        "oid": "0123456789abcdef0123456789abcdef01234567"}])
    .to_string()
}

fn tree_url(env: &Env, commit: &str, extra: &str) -> String {
    format!("{}/api/models/{SMALL_REPO}/tree/{commit}?recursive=true{extra}", env.hub.url())
}

#[tokio::test]
async fn an_endless_json_body_stops_at_the_cap() {
    let env = env().await;
    let chunk = format!("[{}", r#"{"type": "directory", "path": "x", "oid": "0", "size": 0},"#.repeat(1000));
    env.hub
        .set_faults(vec![Fault::api_body(chunk, "application/json").on_path("tree").with_mode(ApiBodyMode::Endless)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HubLimitExceeded, "{err}");
    assert!(err.to_string().contains("MiB") && err.to_string().contains("/tree/"), "{err}");
    assert_eq!(env.hub.stats().api_requests, 2, "a body over the cap is not fetched again");
}

#[tokio::test]
async fn headers_followed_by_silence_fail_with_a_clear_error() {
    let env = env_with(one_attempt).await;
    env.hub
        .set_faults(vec![Fault::api_body("", "application/json").on_path("revision").with_mode(ApiBodyMode::Silent)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    // A timeout is worth another attempt, so it comes wrapped in the attempts' summary.
    assert_eq!(err.kind(), local_mlx::ErrorKind::DownloadFailed, "{err}");
    assert!(err.to_string().contains("sent nothing") && err.to_string().contains("/revision/"), "{err}");
}

#[tokio::test]
async fn a_link_next_that_loops_ends_with_an_error() {
    let env = env_with(one_attempt).await;
    let commit = env.hub.commit(SMALL_REPO).await.unwrap();
    // Page 1 links to page 2, which links to itself.
    let page2 = tree_url(&env, &commit, "&cursor=2");
    env.hub.set_faults(vec![Fault::api_body(tree_page(), "application/json")
        .on_path("tree")
        .with_link(format!("<{page2}>; rel=\"next\""))]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HubLimitExceeded, "{err}");
    assert!(err.to_string().contains("loops back"), "{err}");
    assert_eq!(env.hub.stats().api_requests, 3, "revision, page 1, page 2, then the loop is seen");
}

/// A plain HTTP server that answers one request with an empty tree page and hands back
/// the request head it received.
async fn recording_server() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the client closed before sending its request");
            head.extend_from_slice(&buffer[..n]);
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]";
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, task)
}

#[tokio::test]
async fn the_token_goes_only_to_the_endpoints_origin() {
    let env = env_with(|mut c| {
        c.token = Some("hf_secret".into());
        c.max_attempts = 1;
        c
    })
    .await;
    let commit = env.hub.commit(SMALL_REPO).await.unwrap();
    let (port, recorded) = recording_server().await;
    let elsewhere = format!("http://127.0.0.1:{port}/api/models/{SMALL_REPO}/tree/{commit}?cursor=2");
    env.hub.set_faults(vec![Fault::api_body(tree_page(), "application/json")
        .on_path("tree")
        .with_link(format!("<{elsewhere}>; rel=\"next\""))]);
    let _ = env.manager.download(SMALL_REPO).await;
    let head = recorded.await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("get /api/models/"), "{head}");
    assert!(!head.contains("authorization") && !head.contains("hf_secret"), "the token leaked:\n{head}");
}

#[tokio::test]
async fn a_next_page_on_the_endpoints_origin_keeps_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    small_repo(tmp.path(), SMALL_REPO);
    let hub =
        test_hub::TestHub::start_with(test_hub::Config::new(tmp.path()).require_token("hf_secret")).await.unwrap();
    let commit = hub.commit(SMALL_REPO).await.unwrap();
    let page2 = format!("{}/api/models/{SMALL_REPO}/tree/{commit}?recursive=true&cursor=2", hub.url());
    hub.set_faults(vec![Fault::api_body("[]", "application/json")
        .on_path("tree")
        .with_link(format!("<{page2}>; rel=\"next\""))
        .times(1)]);
    let mut config = test_config(&hub.url(), &tmp.path().join("cache"));
    config.token = Some("hf_secret".into());
    let manager = common::manager_over(config, Arc::new(NullSink));
    manager.download(SMALL_REPO).await.expect("page 2 (the real listing) was fetched with the token");
}

#[tokio::test]
async fn sizes_that_overflow_when_summed_are_a_clear_error() {
    let env = env().await;
    let entry = |path: &str| {
        serde_json::json!({"type": "file", "path": path, "size": u64::MAX / 2 + 1,
            "oid": "0123456789abcdef0123456789abcdef01234567"})
    };
    let body = serde_json::json!([entry("config.json"), entry("model.safetensors")]).to_string();
    env.hub.set_faults(vec![Fault::api_body(body, "application/json").on_path("tree")]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HubLimitExceeded, "{err}");
    assert!(err.to_string().contains("sizes"), "{err}");
    assert_eq!(env.hub.stats().files.values().map(|f| f.requests).sum::<u64>(), 0, "no file was fetched");
}

#[tokio::test]
async fn an_endpoint_that_is_not_a_url_is_refused_at_once() {
    let env = env().await;
    for endpoint in ["not a url", "ftp://127.0.0.1/", "file:///etc"] {
        let config = test_config(endpoint, &env.cache_dir());
        let manager = common::manager_over(config, Arc::new(NullSink));
        let err = manager.download(SMALL_REPO).await.unwrap_err();
        assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidEndpoint, "{endpoint}: {err}");
        assert!(err.to_string().contains("HF_ENDPOINT") && !err.to_string().contains("attempts"), "{err}");
    }
    assert_eq!(env.hub.stats().api_requests, 0);
}

#[tokio::test]
async fn a_file_name_with_terminal_escapes_is_refused_and_printed_escaped() {
    let env = env().await;
    let body = serde_json::json!([{"type": "file", "path": "evil\u{1b}]0;pwned\u{7}.json", "size": 2,
        "oid": "0123456789abcdef0123456789abcdef01234567"}])
    .to_string();
    env.hub.set_faults(vec![Fault::api_body(body, "application/json").on_path("tree")]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::UnsafeFileName, "{err}");
    let message = err.to_string();
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(message.contains(r"evil\u{1b}]0;pwned\u{7}.json"), "{message}");
}
