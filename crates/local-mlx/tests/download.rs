//! Downloads from a real hub-compatible server into a real HF cache: layout, resume,
//! verification, retries, stalls, cancel, and the one-download-at-a-time rule.

mod common;

use std::time::{Duration, Instant};

use common::*;
use local_mlx::internals::hub::HubCache;
use local_mlx::{DownloadOutcome, EventType, ModelState};
use test_hub::Fault;
use test_support::{tree, wait_until};

const WEIGHTS: &str = "model.safetensors";

fn downloaded(outcome: DownloadOutcome) -> std::path::PathBuf {
    match outcome {
        DownloadOutcome::Downloaded { snapshot, .. } => snapshot,
        other => panic!("expected a completed download, got {other:?}"),
    }
}

#[tokio::test]
async fn a_download_lands_in_the_huggingface_layout_with_only_mlx_lm_files() {
    let env = env().await;
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    let commit = env.hub.commit(SMALL_REPO).await.unwrap();
    let repo = HubCache::new(env.cache_dir()).repo(SMALL_REPO);
    assert_eq!(snapshot, repo.snapshot_dir(&commit));
    assert_eq!(std::fs::read_to_string(repo.ref_path("main")).unwrap(), commit);
    let mut files = tree(&snapshot);
    files.sort();
    assert_eq!(files, ["config.json", WEIGHTS, "tokenizer.json", "tokenizer_config.json"], "no *.py, no README");
    for file in &files {
        assert_same_file(&env, SMALL_REPO, &snapshot, file);
        let link = std::fs::read_link(snapshot.join(file)).unwrap();
        assert!(link.starts_with("../../blobs/"), "{file} -> {link:?} must be a relative link into blobs");
    }
    assert!(tree(&repo.blobs_dir()).iter().all(|b| !b.ends_with(".incomplete")));
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
    // Asking about a custom model lists nothing; adding it does, once.
    assert!(env.manager.list_models().iter().all(|m| m.id != SMALL_REPO), "listed by a status query");
    env.manager.add_custom_model(SMALL_REPO).unwrap();
    env.manager.add_custom_model(SMALL_REPO).unwrap();
    assert_eq!(env.manager.list_models().iter().filter(|m| m.id == SMALL_REPO).count(), 1);
    let listed = env.manager.list_models().into_iter().find(|m| m.id == SMALL_REPO).unwrap();
    let on_disk: u64 = files.iter().map(|f| std::fs::metadata(snapshot.join(f)).unwrap().len()).sum();
    assert_eq!(listed.size_bytes, on_disk, "a downloaded custom model's size is exact");
}

#[tokio::test]
async fn events_are_started_progress_never_backwards_then_completed() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::throttle(16 << 20).on_path(WEIGHTS)]);
    env.manager.download(SMALL_REPO).await.unwrap();

    let events = env.sink.events();
    assert_eq!(events.first().unwrap().event_type, EventType::DownloadStarted);
    assert_eq!(events.last().unwrap().event_type, EventType::DownloadCompleted);
    let progress: Vec<_> = events.iter().filter(|e| e.event_type == EventType::DownloadProgress).collect();
    assert!(progress.len() >= 3, "a throttled download reports progress along the way: {}", progress.len());
    let done: Vec<u64> = progress.iter().map(|e| e.downloaded_bytes.unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {done:?}");
    let last = progress.last().unwrap();
    assert_eq!(last.progress, Some(1.0));
    assert_eq!(last.downloaded_bytes, last.total_bytes);
    assert!(progress.iter().all(|e| e.model_id == SMALL_REPO));
}

#[tokio::test]
async fn a_connection_reset_resumes_from_the_bytes_on_disk() {
    let env = env().await;
    let half = BIG_FILE_LEN / 2;
    env.hub.set_faults(vec![Fault::reset_after(half).on_path(WEIGHTS).times(1)]);
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert!(served < BIG_FILE_LEN + BIG_FILE_LEN / 100, "re-fetched too much: {served} of {BIG_FILE_LEN}");
    assert!(env.hub.file_stats(SMALL_REPO, WEIGHTS).requests >= 2);
}

#[tokio::test]
async fn a_corrupted_byte_is_caught_deleted_and_fetched_again() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::corrupt(12345).on_path(WEIGHTS).times(1)]);
    let outcome = env.manager.download(SMALL_REPO).await.unwrap();
    let DownloadOutcome::Downloaded { fetched_bytes, .. } = outcome.clone() else { panic!("{outcome:?}") };
    let snapshot = downloaded(outcome);

    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert!(served >= 2 * BIG_FILE_LEN, "the bad copy must be fetched again from zero: {served}");
    // `pull` says what arrived, the thrown-away copy included, not the repo's size.
    assert!(fetched_bytes >= served, "reported {fetched_bytes} of {served} received");
}

#[tokio::test]
async fn a_file_that_never_verifies_fails_after_three_attempts_and_is_never_reported_downloaded() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::corrupt(0).on_path(WEIGHTS)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();

    assert_eq!(err.kind(), local_mlx::ErrorKind::DownloadFailed);
    assert!(err.to_string().contains("3 attempts") && err.to_string().contains("sha256"), "{err}");
    let status = env.manager.model_status(SMALL_REPO).unwrap();
    assert_eq!(status.state, ModelState::NotDownloaded);
    assert!(status.error.is_some_and(|e| e.contains("verification")));
    assert_eq!(status.retry_attempts, Some(3), "the status offers the retry and its budget");
    let repo = HubCache::new(env.cache_dir()).repo(SMALL_REPO);
    assert!(!repo.ref_path("main").exists(), "no ref for a bad snapshot");
    let etag = sha256_of(&env.repos().join(SMALL_REPO).join(WEIGHTS));
    assert!(!repo.blob_path(&etag).exists(), "a blob that failed verification is never kept");
    assert_eq!(env.hub.file_stats(SMALL_REPO, WEIGHTS).requests, 3);
    assert_eq!(env.sink.events().last().unwrap().event_type, EventType::Error);

    // The hub is fixed; retry starts fresh attempts and succeeds.
    env.hub.clear_faults();
    let snapshot = downloaded(env.manager.retry_download().await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let status = env.manager.model_status(SMALL_REPO).unwrap();
    assert!(status.error.is_none());
    assert_eq!((status.retry_attempts, status.bytes_needed), (None, 0), "nothing to retry or fetch");
}

#[tokio::test]
async fn retry_with_nothing_failed_is_a_clear_error() {
    let env = env().await;
    assert_eq!(env.manager.retry_download().await.unwrap_err().kind(), local_mlx::ErrorKind::NothingToRetry);
    assert_eq!(env.manager.cancel_download().unwrap_err().kind(), local_mlx::ErrorKind::NoActiveDownload);
}

#[tokio::test]
async fn a_stall_aborts_the_attempt_and_the_next_attempt_resumes() {
    let env = env_with(|mut c| {
        c.stall_timeout = Duration::from_millis(500);
        c
    })
    .await;
    env.hub.set_faults(vec![Fault::stall_after(1 << 20, None).on_path(WEIGHTS).times(1)]);
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert!(served < BIG_FILE_LEN + BIG_FILE_LEN / 100, "resumed after the stall: {served}");
}

#[tokio::test]
async fn a_permanent_stall_is_reported_as_a_stall() {
    let env = env_with(|mut c| {
        c.stall_timeout = Duration::from_millis(300);
        c.max_attempts = 2;
        c
    })
    .await;
    env.hub.set_faults(vec![Fault::stall_after(1000, None).on_path(WEIGHTS)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(err.to_string().contains("stalled"), "{err}");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}

#[tokio::test]
async fn a_server_that_ignores_range_restarts_the_file_correctly() {
    let env = env_with(|mut c| {
        c.max_attempts = 1;
        c
    })
    .await;
    env.hub.set_faults(vec![Fault::reset_after(BIG_FILE_LEN / 2).on_path(WEIGHTS).times(1)]);
    env.manager.download(SMALL_REPO).await.unwrap_err();
    assert!(env.manager.model_status(SMALL_REPO).unwrap().partial_bytes > 0, "half a file kept");

    env.hub.set_faults(vec![Fault::ignore_range().on_path(WEIGHTS)]);
    let snapshot = downloaded(env.manager.retry_download().await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
}

#[tokio::test]
async fn a_416_drops_the_partial_file_and_the_retry_fetches_it_whole() {
    let env = env().await;
    let repo = HubCache::new(env.cache_dir()).repo(SMALL_REPO);
    let etag = sha256_of(&env.repos().join(SMALL_REPO).join(WEIGHTS));
    std::fs::create_dir_all(repo.blobs_dir()).unwrap();
    std::fs::write(repo.incomplete_path(&etag), vec![0u8; 1000]).unwrap();
    env.hub.set_faults(vec![Fault::status(416).on_path(WEIGHTS).times(1)]);
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
}

#[tokio::test]
async fn a_partial_file_with_wrong_bytes_is_caught_by_the_hash_and_replaced() {
    let env = env().await;
    let repo = HubCache::new(env.cache_dir()).repo(SMALL_REPO);
    let etag = sha256_of(&env.repos().join(SMALL_REPO).join(WEIGHTS));
    std::fs::create_dir_all(repo.blobs_dir()).unwrap();
    std::fs::write(repo.incomplete_path(&etag), vec![0xAB; 4096]).unwrap();
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
}

#[tokio::test]
async fn cancel_stops_within_a_second_keeps_the_bytes_and_the_next_download_resumes() {
    let env = env().await;
    env.hub.set_faults(vec![Fault::throttle(2 << 20).on_path(WEIGHTS)]);
    let manager = env.manager.clone();
    let download = tokio::spawn(async move { manager.download(SMALL_REPO).await });
    wait_until("2 MiB downloaded", || {
        env.manager.model_status(SMALL_REPO).unwrap().downloaded_bytes.unwrap_or(0) > (2 << 20)
    })
    .await;

    assert_eq!(env.manager.cancel_download().unwrap(), SMALL_REPO);
    let cancelled_at = Instant::now();
    let outcome = download.await.unwrap().unwrap();
    assert!(cancelled_at.elapsed() < Duration::from_secs(1), "cancel took {:?}", cancelled_at.elapsed());
    let DownloadOutcome::Cancelled { partial_bytes } = outcome else { panic!("{outcome:?}") };
    assert!(partial_bytes > 0);
    let status = env.manager.model_status(SMALL_REPO).unwrap();
    assert_eq!(status.state, ModelState::NotDownloaded);
    assert_eq!(status.partial_bytes, partial_bytes);

    env.hub.clear_faults();
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    // Bytes in flight in socket buffers at the cancel are sent twice; nothing else.
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert!(served < BIG_FILE_LEN + (1 << 20), "resumed, not restarted: {served}");
}

#[tokio::test]
async fn a_second_download_while_one_runs_is_refused_naming_the_model_in_progress() {
    let env = env().await;
    small_repo(&env.repos(), "test-org/other");
    env.hub.set_faults(vec![Fault::throttle(1 << 20).on_path(WEIGHTS)]);
    let manager = env.manager.clone();
    let first = tokio::spawn(async move { manager.download(SMALL_REPO).await });
    let mut downloads = env.manager.store().subscribe();
    downloads.wait_for(|d| d.download.model_id().is_some()).await.unwrap();

    let other = env.manager.model_status("test-org/other").unwrap();
    let err = env.manager.download("test-org/other").await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::DownloadInProgress);
    assert!(err.to_string().contains(SMALL_REPO), "{err}");
    let blocked = other.download_blocked.clone().expect("the status said it before the click");
    assert_eq!((blocked.kind, &blocked.message), (err.kind(), &err.to_string()), "the refusal the click gives");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().download_blocked, None);
    let status = env.manager.model_status(SMALL_REPO).unwrap();
    let err = env.manager.delete_model(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Busy);
    assert!(err.to_string().contains("downloading"), "{err}");
    assert_eq!(status.delete_blocked, Some(local_mlx::Refusal::from(&err)), "the status gives the same answer");
    assert!(status.has_files, "a download under way has files");
    // On the wire each answer is `{ kind, message }`, the kind a UI branches on.
    let wire = serde_json::to_value(&other).unwrap();
    assert_eq!(
        wire["download_blocked"],
        serde_json::json!({"kind": "download_in_progress", "message": blocked.message})
    );
    assert_eq!(serde_json::to_value(&status).unwrap()["delete_blocked"]["kind"], "busy");

    env.manager.cancel_download().unwrap();
    first.await.unwrap().unwrap();
}

/// A status is computed from one snapshot of the store's memory: taken over and over
/// while downloads start and fail, it never shows the model downloading and failed at
/// once (reading the download and the failure at two moments could), and a failure
/// always comes with its retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_taken_while_downloads_fail_is_never_half_updated() {
    const ROUNDS: usize = 500;
    let env = env_with(|mut config| {
        config.max_attempts = 1;
        config
    })
    .await;
    env.hub.set_faults(vec![Fault::status(500).on_path(WEIGHTS)]);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (manager, stop) = (env.manager.clone(), finished.clone());
    let watcher = std::thread::spawn(move || {
        let (mut downloading, mut failed) = (0, 0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let status = manager.model_status(SMALL_REPO).unwrap();
            let is_downloading = status.state == ModelState::Downloading;
            assert!(!(is_downloading && status.error.is_some()), "downloading and failed at once: {status:?}");
            assert_eq!(status.error.is_some(), status.retry_attempts.is_some(), "half a failure: {status:?}");
            downloading += usize::from(is_downloading);
            failed += usize::from(status.error.is_some());
        }
        (downloading, failed)
    });
    for _ in 0..ROUNDS {
        let err = env.manager.download(SMALL_REPO).await.unwrap_err();
        assert_eq!(err.kind(), local_mlx::ErrorKind::DownloadFailed, "{err}");
    }
    finished.store(true, std::sync::atomic::Ordering::Relaxed);
    let (downloading, failed) = watcher.join().expect("no status was half-updated");
    assert!(downloading > 0 && failed > 0, "the statuses saw both moments: {downloading} downloading, {failed} failed");
}

#[tokio::test]
async fn downloading_a_downloaded_model_is_a_no_op() {
    let env = env().await;
    downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    env.hub.reset_stats();
    let outcome = env.manager.download(SMALL_REPO).await.unwrap();
    assert!(matches!(outcome, DownloadOutcome::AlreadyDownloaded { .. }), "{outcome:?}");
    assert_eq!(env.hub.stats().api_requests, 0, "no network when the cache has it");
}
