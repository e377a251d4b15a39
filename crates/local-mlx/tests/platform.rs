//! On a machine MLX cannot run on, the manager refuses everything that would download,
//! start the sidecar or generate, before touching the hub or spawning anything, while
//! listing and status keep working and say why. The machine is made to look like
//! Windows with `with_platform`, so this runs on any machine.

mod common;

use std::sync::Arc;

use common::{env, manager_over, test_config, Env, SMALL_REPO};
use local_mlx::manager::ProcessOptions;
use local_mlx::platform::support;
use local_mlx::{EventType, MlxModelManager, ModelState, RecordingSink};
use test_support::tree;

/// A manager on `env`'s hub and cache, judging the machine as `os`-`arch`.
fn manager_on(env: &Env, os: &str, arch: &str, sink: &RecordingSink) -> MlxModelManager {
    manager_over(test_config(&env.hub.url(), &env.cache_dir()), Arc::new(sink.clone())).with_platform(support(os, arch))
}

fn assert_refused<T: std::fmt::Debug>(what: &str, result: local_mlx::Result<T>) {
    let error = result.expect_err(what);
    assert_eq!(error.kind(), local_mlx::ErrorKind::UnsupportedPlatform, "{what}: {error}");
    assert!(error.to_string().contains("MLX needs an Apple Silicon Mac"), "{what}: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_machine_downloads_nothing_and_says_why() {
    let env = env().await;
    let sink = RecordingSink::new();
    let windows = manager_on(&env, "windows", "x86_64", &sink);

    assert_refused("download", windows.download(SMALL_REPO).await);
    // The gate comes before "nothing to retry": the answer is the same whatever the state.
    assert_refused("retry", windows.retry_download().await);

    assert_eq!(env.hub.stats(), test_hub::Stats::default(), "not one request reached the hub");
    let cached: Vec<String> = tree(&env.cache_dir()).into_iter().filter(|p| p.starts_with("models--")).collect();
    assert!(cached.is_empty(), "nothing written to the cache: {cached:?}");
    assert!(sink.events().is_empty(), "no download events: {:?}", sink.events());

    // Listing and status work, and the reason is there for a face to show.
    assert!(windows.list_models().iter().any(|m| m.is_default));
    assert_eq!(windows.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    let reason = windows.platform().unsupported_reason().expect("a reason");
    assert!(reason.contains("Windows on x86_64"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_machine_starts_no_sidecar_even_for_a_downloaded_model() {
    let env = env().await;
    // Downloaded on a supported machine (the same cache, as if copied over).
    let mac_sink = RecordingSink::new();
    let mac = manager_on(&env, "macos", "aarch64", &mac_sink);
    mac.download(SMALL_REPO).await.expect("the gate lets a supported machine through");
    assert_eq!(mac.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
    let served = env.hub.stats();

    let sink = RecordingSink::new();
    let intel_mac = manager_on(&env, "macos", "x86_64", &sink);
    let only_this_model = || ProcessOptions { model: Some(SMALL_REPO.to_string()), ..ProcessOptions::default() };
    assert_refused("process_text", intel_mac.process_text("um hello there").await);
    assert_refused("process_text_with", intel_mac.process_text_with("um hello", only_this_model()).await);
    assert_refused("process_text of nothing", intel_mac.process_text_with("  ", only_this_model()).await);
    assert_refused("warm_up", intel_mac.warm_up().await);
    assert_refused("download of a downloaded model", intel_mac.download(SMALL_REPO).await);

    assert!(!intel_mac.sidecar_running() && intel_mac.sidecar_pid().is_none(), "no sidecar was started");
    assert!(
        !sink.events().iter().any(|e| e.event_type == EventType::LoadingStarted),
        "no load began: {:?}",
        sink.events()
    );
    assert_eq!(env.hub.stats(), served, "no request after the refusals");
    let reason = intel_mac.platform().unsupported_reason().unwrap();
    assert!(reason.contains("Intel"), "{reason}");
    // What does not start anything still works: status, settings, unload, delete.
    assert_eq!(intel_mac.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
    intel_mac.unload().await.unwrap();
    intel_mac.delete_model(SMALL_REPO).await.expect("a model that cannot run here can still be deleted");
    assert_eq!(intel_mac.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}
