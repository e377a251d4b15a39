//! Credentials in `HF_ENDPOINT` (`http://user:password@host`) never show: not in an
//! error's message, not in the events a frontend or `--json` prints, whatever failed.

mod common;

use common::*;
use local_mlx::RecordingSink;
use test_hub::Fault;

const SECRET: &str = "s3cret-pass";

/// The test hub's URL with credentials in it.
fn with_credentials(url: &str) -> String {
    url.replacen("://", &format!("://someone:{SECRET}@"), 1)
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET) && !text.contains("someone:"), "a credential is shown: {text}");
}

#[tokio::test]
async fn credentials_in_hf_endpoint_are_never_printed() {
    let env = env().await;
    let endpoint = with_credentials(&env.hub.url());
    let sink = RecordingSink::new();
    let manager = |endpoint: &str, sink: &RecordingSink| {
        let mut config = test_config(endpoint, &env.cache_dir());
        config.max_attempts = 1;
        common::manager_over(config, std::sync::Arc::new(sink.clone()))
    };
    let hub = manager(&endpoint, &sink);

    // The credentials still work (reqwest sends them as basic auth): a good pull.
    hub.download(SMALL_REPO).await.expect("a hub with credentials in its URL is used");
    hub.delete_model(SMALL_REPO).await.unwrap();

    let mut messages = Vec::new();
    // A repo the hub does not have, a file it fails, a hub that is not there.
    messages.push(hub.download("test-org/missing").await.unwrap_err().to_string());
    env.hub.set_faults(vec![Fault::status(500).on_path("model.safetensors")]);
    messages.push(hub.download(SMALL_REPO).await.unwrap_err().to_string());
    env.hub.clear_faults();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://someone:{SECRET}@{}", listener.local_addr().unwrap())
    };
    messages.push(manager(&closed, &sink).download(SMALL_REPO).await.unwrap_err().to_string());
    messages.push(manager("ftp://someone:s3cret-pass@host", &sink).download(SMALL_REPO).await.unwrap_err().to_string());

    assert_eq!(messages.len(), 4);
    for message in &messages {
        assert_no_secret(message);
        assert!(message.contains("127.0.0.1") || message.contains("host"), "the host is still named: {message}");
    }
    let events = sink.events();
    assert!(events.iter().filter(|e| e.error.is_some()).count() >= 4, "{events:?}");
    for event in events {
        assert_no_secret(&serde_json::to_string(&event).unwrap());
    }
}
