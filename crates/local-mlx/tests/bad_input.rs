//! Bad input gets a clear error, writes nothing outside the cache, and never leaves a
//! model that looks downloaded.

mod common;

use std::sync::Arc;

use common::*;
use local_mlx::internals::hub::HubCache;
use local_mlx::{MlxModelManager, ModelState, NullSink};
use test_hub::{Fault, Route};
use test_support::tree;

/// The cache holds no snapshot and no ref for `repo`.
fn assert_nothing_downloaded(env: &Env, repo: &str) {
    let cached = HubCache::new(env.cache_dir()).repo(repo);
    assert!(!cached.ref_path("main").exists(), "no ref may be written");
    assert!(!cached.dir().join("snapshots").exists(), "no snapshot may be written");
    assert_eq!(env.manager.model_status(repo).unwrap().state, ModelState::NotDownloaded);
}

#[tokio::test]
async fn an_unknown_name_and_a_malformed_repo_id_are_refused_before_any_request() {
    let env = env().await;
    for (id, kind) in [
        ("qwen", local_mlx::ErrorKind::UnknownModel),
        ("a/b/c", local_mlx::ErrorKind::InvalidRepoId),
        ("../etc", local_mlx::ErrorKind::InvalidRepoId),
        ("org/na me", local_mlx::ErrorKind::InvalidRepoId),
    ] {
        let err = env.manager.download(id).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{id}: {err}");
        assert_eq!(env.manager.model_status(id).unwrap_err().kind(), kind);
    }
    assert_eq!(env.hub.stats().api_requests, 0);
    assert!(!env.cache_dir().exists(), "nothing written");
}

#[tokio::test]
async fn a_missing_repo_or_revision_is_named_in_the_error() {
    let env = env().await;
    let err = env.manager.download("test-org/does-not-exist").await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::RepoNotFound, "{err}");
    assert!(err.to_string().contains("test-org/does-not-exist"));
    assert_eq!(env.hub.stats().api_requests, 1, "a missing repo is not retried");
    assert_nothing_downloaded(&env, "test-org/does-not-exist");
}

#[tokio::test]
async fn a_hub_answering_html_says_so() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::api_body("<html><body>Login</body></html>", "text/html")]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(err.to_string().contains("expected JSON") && err.to_string().contains("text/html"), "{err}");
    assert_nothing_downloaded(&env, SMALL_REPO);
}

#[tokio::test]
async fn a_truncated_json_answer_says_so() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::api_body(r#"{"sha": "abc", "sibl"#, "application/json")]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    assert_nothing_downloaded(&env, SMALL_REPO);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_status() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::status(500).on_route(Route::Api)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(err.to_string().contains("3 attempts") && err.to_string().contains("500"), "{err}");
    assert_eq!(env.hub.stats().api_requests, 3);
    assert_nothing_downloaded(&env, SMALL_REPO);

    env.hub.set_faults(vec![Fault::status(503).on_route(Route::Api).times(2)]);
    env.manager.retry_download().await.expect("third attempt of the retry succeeds");
}

#[tokio::test]
async fn offline_mode_with_the_model_missing_says_how_to_fix_it() {
    let env = env().await;
    let mut config = test_config(&env.hub.url(), &env.cache_dir());
    config.offline = true;
    let offline = common::manager_over(config, Arc::new(NullSink));
    let err = offline.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Offline);
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
    assert_eq!(env.hub.stats().api_requests, 0, "offline means no network");

    // Once the model is in the cache, offline mode is happy.
    env.manager.download(SMALL_REPO).await.unwrap();
    assert!(matches!(
        offline.download(SMALL_REPO).await.unwrap(),
        local_mlx::DownloadOutcome::AlreadyDownloaded { .. }
    ));
}

#[tokio::test]
async fn a_cache_that_cannot_be_written_names_the_path() {
    let env = env().await;
    // A file where the cache folder should be: even root cannot create folders in it.
    let blocker = env.tmp.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let config = test_config(&env.hub.url(), &blocker.join("hub"));
    let manager = common::manager_over(config, Arc::new(NullSink));
    let err = manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Io, "{err}");
    assert!(err.to_string().contains(blocker.to_str().unwrap()), "{err}");
    assert_eq!(manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}

#[tokio::test]
async fn a_repo_with_nothing_mlx_lm_can_use_is_refused() {
    let env = env().await;
    test_hub::RepoBuilder::new(env.repos(), "test-org/pytorch-only")
        .file("pytorch_model.bin", b"weights")
        .file("modeling.py", b"print()")
        .build()
        .unwrap();
    let err = env.manager.download("test-org/pytorch-only").await.unwrap_err();
    // Final at once: another attempt would list the same files.
    assert_eq!(err.kind(), local_mlx::ErrorKind::NoUsableFiles, "{err}");
    assert!(err.to_string().contains("no files mlx-lm can use"), "{err}");
    assert_nothing_downloaded(&env, "test-org/pytorch-only");
}

#[tokio::test]
async fn delete_removes_the_model_and_leaves_other_models_alone() {
    let env = env().await;
    small_repo(&env.repos(), "test-org/other");
    env.manager.download(SMALL_REPO).await.unwrap();
    let other = env.manager.download("test-org/other").await.unwrap();
    let before_other = tree(HubCache::new(env.cache_dir()).repo("test-org/other").dir());

    let report = env.manager.delete_model(SMALL_REPO).await.unwrap();
    assert_eq!(report.snapshots_removed, 1);
    assert!(report.bytes_freed >= BIG_FILE_LEN);
    assert!(!HubCache::new(env.cache_dir()).repo(SMALL_REPO).dir().exists());
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    assert_eq!(tree(HubCache::new(env.cache_dir()).repo("test-org/other").dir()), before_other);
    assert!(matches!(other, local_mlx::DownloadOutcome::Downloaded { .. }));
    assert_eq!(env.manager.model_status("test-org/other").unwrap().state, ModelState::Downloaded);

    let err = env.manager.delete_model(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::NotDownloaded, "{err}");
}

#[tokio::test]
async fn delete_of_a_cancelled_download_removes_its_partial_files() {
    let env = env_with(|mut c| {
        c.max_attempts = 1;
        c
    })
    .await;
    env.hub.set_faults(vec![Fault::reset_after(BIG_FILE_LEN / 2).on_path("model.safetensors").times(1)]);
    env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(env.manager.model_status(SMALL_REPO).unwrap().partial_bytes > 0);
    let report = env.manager.delete_model(SMALL_REPO).await.unwrap();
    // The failed file is partial; files still streaming when it failed may be too (how
    // far they got depends on the machine's load), so count at least that one.
    assert!(report.partial_files_removed >= 1, "{report:?}");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().partial_bytes, 0);
}

#[tokio::test]
async fn a_model_deleted_by_another_tool_is_not_downloaded() {
    let env = env().await;
    env.manager.download(SMALL_REPO).await.unwrap();
    let repo = HubCache::new(env.cache_dir()).repo(SMALL_REPO);
    std::fs::remove_dir_all(repo.dir()).unwrap();
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}

#[tokio::test]
async fn the_token_is_sent_when_the_hub_requires_one() {
    let tmp = tempfile::tempdir().unwrap();
    small_repo(tmp.path(), SMALL_REPO);
    let hub =
        test_hub::TestHub::start_with(test_hub::Config::new(tmp.path()).require_token("hf_secret")).await.unwrap();
    let cache = tmp.path().join("cache");

    let anonymous = common::manager_over(test_config(&hub.url(), &cache), Arc::new(NullSink));
    let err = anonymous.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HubUnauthorized, "{err}");
    assert!(err.to_string().contains("HF_TOKEN"));

    let mut config = test_config(&hub.url(), &cache);
    config.token = Some("hf_secret".into());
    let authorized = common::manager_over(config, Arc::new(NullSink));
    authorized.download(SMALL_REPO).await.unwrap();
}

/// A tree listing with these files (valid hashes, hostile names or sizes).
fn tree_listing(files: &[(&str, u64)]) -> Fault {
    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|(path, size)| {
            serde_json::json!({"type": "file", "path": path, "size": size, "oid": "0123456789abcdef0123456789abcdef01234567"})
        })
        .collect();
    Fault::api_body(serde_json::to_string(&entries).unwrap(), "application/json").on_path("tree")
}

#[tokio::test]
async fn listings_with_names_that_escape_the_repo_or_collide_are_refused() {
    let env = env().await;
    for names in [
        vec!["../escape.json"],
        vec!["/etc/evil.json"],
        vec!["sub\\evil.json"],
        vec!["a/../../evil.json"],
        vec!["config.json", "CONFIG.json"],
    ] {
        let files: Vec<(&str, u64)> = names.iter().map(|n| (*n, 10)).collect();
        env.hub.set_faults(vec![tree_listing(&files)]);
        let err = env.manager.download(SMALL_REPO).await.unwrap_err();
        assert_eq!(err.kind(), local_mlx::ErrorKind::UnsafeFileName, "{names:?}: {err}");
        assert!(err.to_string().contains(names.last().unwrap()), "{err}");
        assert_nothing_downloaded(&env, SMALL_REPO);
    }
    // Nothing was written anywhere near the temp folder but the (empty) cache.
    assert!(!env.tmp.path().join("escape.json").exists());
    assert!(!env.tmp.path().join("hf").join("escape.json").exists());
}

#[tokio::test]
async fn a_download_that_would_not_fit_on_disk_names_both_numbers() {
    let env = env().await;
    let huge = 1u64 << 60; // more than any disk
    env.hub.set_faults(vec![tree_listing(&[("config.json", 10), ("model.safetensors", huge)])]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::InsufficientDisk, "{err}");
    let message = err.to_string();
    assert!(message.contains(&(huge + 10).to_string()) && message.contains("free"), "{message}");
    assert_nothing_downloaded(&env, SMALL_REPO);
    assert_eq!(env.hub.stats().files.values().map(|f| f.requests).sum::<u64>(), 0, "no file was fetched");
}

#[tokio::test]
async fn a_missing_revision_is_named_in_the_error() {
    let env = env().await;
    let downloader = local_mlx::internals::hub::Downloader::new(test_config(&env.hub.url(), &env.cache_dir())).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let err = downloader.download(SMALL_REPO, "v9.9", |_| {}, &cancel).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::RevisionNotFound, "{err}");
    assert!(err.to_string().contains("v9.9") && err.to_string().contains(SMALL_REPO), "{err}");
    assert_nothing_downloaded(&env, SMALL_REPO);
}

#[tokio::test]
async fn a_prompt_without_the_transcript_is_refused_by_update_settings_and_process() {
    let env = env().await;
    let before = env.manager.settings();
    for bad in ["", "   ", "Fix the punctuation."] {
        let new = local_mlx::settings::MlxSettings { prompt: bad.into(), ..before.clone() };
        let err = env.manager.update_settings(new).await.unwrap_err();
        assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidPrompt, "{bad:?}: {err}");
        assert!(err.to_string().contains("${output}"), "the message says what to write: {err}");
        let options = local_mlx::manager::ProcessOptions { prompt: Some(bad.into()), ..Default::default() };
        let err = env.manager.process_text_with("hello", options).await.unwrap_err();
        assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidPrompt);
    }
    assert_eq!(env.manager.settings(), before, "a refused change changes nothing");

    // Settings saved before the rule (an older version's file) are refused at use.
    let tmp = tempfile::tempdir().unwrap();
    let mut config = local_mlx::manager::ManagerConfig::in_data_dir(tmp.path());
    config.hub = test_config(&env.hub.url(), &env.cache_dir());
    config.settings.prompt = "Fix the punctuation.".into();
    let old = MlxModelManager::new(config, Arc::new(NullSink)).unwrap();
    let err = old.process_text("hello").await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidPrompt, "{err}");
    assert!(!old.sidecar_running(), "nothing was started for it");
}

#[tokio::test]
async fn a_status_carries_what_a_download_needs_and_what_is_free() {
    let env = env().await;
    let status = env.manager.model_status(local_mlx::DEFAULT_MODEL_ID).unwrap();
    assert_eq!(status.state, ModelState::NotDownloaded);
    assert!(status.bytes_needed > 0, "the catalog's size: {status:?}");
    assert!(status.bytes_free.is_some_and(|free| free > 0), "{status:?}");
    let fits = status.bytes_needed <= status.bytes_free.unwrap();
    assert_eq!(status.disk_warning.is_none(), fits, "the warning is the download's own rule: {status:?}");
    assert_eq!(status.retry_attempts, None, "nothing failed");
}
