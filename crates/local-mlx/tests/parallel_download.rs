//! Large files in ranged parts over several connections, against a real hub that caps
//! each connection: resume from the record, wrong `Content-Range`, a hub that ignores
//! `Range`, a corrupted byte in one part, cancel with parts in flight, two downloads of
//! one model at once; and the cache's safety: a symlinked partial file, a truncated or
//! missing blob.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_support::wait_until;

use common::*;
use local_mlx::internals::hub::{CachedRepo, HubCache};
use local_mlx::manager::{HubConfig, PartsConfig};
use local_mlx::{DownloadOutcome, ModelState};
use test_hub::Fault;

const WEIGHTS: &str = "model.safetensors";
/// 8 parts of the 8 MiB weights, 4 at a time.
const PART: u64 = 1 << 20;

fn parts(mut config: HubConfig) -> HubConfig {
    config.parts = PartsConfig { connections: 4, part_size: PART };
    config
}

fn one_attempt(mut config: HubConfig) -> HubConfig {
    config.max_attempts = 1;
    config
}

async fn parts_env() -> Env {
    env_with(parts).await
}

fn downloaded(outcome: DownloadOutcome) -> PathBuf {
    match outcome {
        DownloadOutcome::Downloaded { snapshot, .. } => snapshot,
        other => panic!("expected a completed download, got {other:?}"),
    }
}

fn cached(env: &Env) -> CachedRepo {
    HubCache::new(env.cache_dir()).repo(SMALL_REPO)
}

fn weights_etag(env: &Env) -> String {
    sha256_of(&env.repos().join(SMALL_REPO).join(WEIGHTS))
}

fn record_path(env: &Env) -> PathBuf {
    cached(env).blobs_dir().join(format!("{}.ranges.incomplete", weights_etag(env)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_comes_in_ranged_parts_at_once_and_verifies() {
    let env = parts_env().await;
    env.hub.set_rate_cap(Some(4 << 20));
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let stats = env.hub.file_stats(SMALL_REPO, WEIGHTS);
    assert_eq!(stats.requests, BIG_FILE_LEN / PART, "one request per part");
    assert_eq!(stats.bytes_served, BIG_FILE_LEN, "every byte once");
    assert_eq!(stats.max_concurrent_bodies, 4, "four parts in flight at once");
    assert!(!record_path(&env).exists(), "the resume record goes with the partial file");
    // Small files stay one plain request each.
    assert_eq!(env.hub.file_stats(SMALL_REPO, "config.json").requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_sums_all_parts_and_never_goes_backwards() {
    let env = parts_env().await;
    env.hub.set_rate_cap(Some(4 << 20));
    env.manager.download(SMALL_REPO).await.unwrap();
    let done: Vec<u64> = env.sink.events().iter().filter_map(|e| e.downloaded_bytes).collect();
    assert!(done.len() >= 3, "progress along the way: {done:?}");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {done:?}");
    let total: u64 = ["config.json", "tokenizer.json", "tokenizer_config.json", WEIGHTS]
        .iter()
        .map(|f| std::fs::metadata(env.repos().join(SMALL_REPO).join(f)).unwrap().len())
        .sum();
    assert_eq!(done.last(), Some(&total), "the last sample is every byte of every file");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_with_parts_in_flight_keeps_their_bytes_and_the_rerun_fetches_only_the_rest() {
    let env = parts_env().await;
    env.hub.set_rate_cap(Some(1 << 20));
    let manager = env.manager.clone();
    let download = tokio::spawn(async move { manager.download(SMALL_REPO).await });
    wait_until("four parts in flight and 2 MiB served", || {
        let stats = env.hub.file_stats(SMALL_REPO, WEIGHTS);
        stats.max_concurrent_bodies >= 4 && stats.bytes_served >= 2 << 20
    })
    .await;

    env.manager.cancel_download().unwrap();
    let cancelled_at = Instant::now();
    let outcome = download.await.unwrap().unwrap();
    assert!(cancelled_at.elapsed() < Duration::from_secs(1), "cancel took {:?}", cancelled_at.elapsed());
    let DownloadOutcome::Cancelled { partial_bytes } = outcome else { panic!("{outcome:?}") };
    assert!(partial_bytes > 0);
    assert!(record_path(&env).exists(), "the written ranges are recorded beside the partial file");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);

    env.hub.set_rate_cap(None);
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    // Only what was in flight at the cancel (a few throttle ticks per part) twice.
    assert!(served < BIG_FILE_LEN + BIG_FILE_LEN / 20, "resumed, not restarted: {served} for {BIG_FILE_LEN}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_fast_stream_over_parts_keeps_no_record_and_resumes_from_the_length() {
    // Uncapped loopback: one connection is fast, so the parts stay one stream and
    // write a contiguous prefix; the file's length says what counts, and no record
    // is written (it cost a rename every 10 ms on a fast link).
    let env = env_with(|c| one_attempt(parts(c))).await;
    env.hub.set_faults(vec![Fault::reset_after(256 << 10).on_path(WEIGHTS).times(1)]);
    assert!(env.manager.download(SMALL_REPO).await.is_err(), "the reset fails the one attempt");
    assert!(env.hub.faults().is_empty(), "the reset was served");
    assert!(!record_path(&env).exists(), "a contiguous prefix needs no record");
    let partial = cached(&env).incomplete_path(&weights_etag(&env));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept <= 256 << 10, "the bytes before the reset are kept: {kept}");

    env.hub.reset_stats();
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert_eq!(served, BIG_FILE_LEN - kept, "resumed from the partial file's length");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_answered_with_a_wrong_content_range_is_retried_and_never_written() {
    let env = parts_env().await;
    env.hub.set_rate_cap(Some(4 << 20));
    let manager = env.manager.clone();
    let download = tokio::spawn(async move { manager.download(SMALL_REPO).await });
    // Past the probe: the fault hits one of the parts that follow it.
    wait_until("a second request for the weights", || env.hub.file_stats(SMALL_REPO, WEIGHTS).requests >= 2).await;
    env.hub.set_faults(vec![Fault::shift_range(4096).on_path(WEIGHTS).times(1)]);
    let snapshot = downloaded(download.await.unwrap().unwrap());

    assert!(env.hub.faults().is_empty(), "the shifted answer was served");
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    // Had the shifted bytes been written, the hash would have failed and the whole
    // file been fetched again; instead only the refused part and what its siblings
    // had in flight when the attempt stopped came twice.
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert!(served < BIG_FILE_LEN + BIG_FILE_LEN / 2, "{served}");
    assert!(env.manager.model_status(SMALL_REPO).unwrap().error.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_that_ignores_range_gets_one_stream_even_over_a_partial_file_in_parts() {
    let env = env_with(|c| one_attempt(parts(c))).await;
    // First a download in parts that leaves holes: cut it off mid-way.
    env.hub.set_rate_cap(Some(1 << 20));
    let manager = env.manager.clone();
    let download = tokio::spawn(async move { manager.download(SMALL_REPO).await });
    wait_until("four parts in flight", || env.hub.file_stats(SMALL_REPO, WEIGHTS).max_concurrent_bodies >= 4).await;
    env.manager.cancel_download().unwrap();
    download.await.unwrap().unwrap();
    assert!(record_path(&env).exists());

    env.hub.set_rate_cap(None);
    env.hub.reset_stats();
    env.hub.set_faults(vec![Fault::ignore_range().on_path(WEIGHTS)]);
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let stats = env.hub.file_stats(SMALL_REPO, WEIGHTS);
    assert_eq!(stats.requests, 1, "one stream, started over");
    assert_eq!(stats.max_concurrent_bodies, 1);
    assert_eq!(stats.bytes_served, BIG_FILE_LEN);
    assert!(!record_path(&env).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_byte_inside_one_part_is_caught_and_the_model_is_never_downloaded() {
    let env = env_with(|c| one_attempt(parts(c))).await;
    // Armed for every request: only the one part that holds the offset carries it.
    env.hub.set_faults(vec![Fault::corrupt(5 * PART + 777).on_path(WEIGHTS)]);
    let err = env.manager.download(SMALL_REPO).await.unwrap_err();

    assert!(err.to_string().contains("sha256"), "{err}");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    let repo = cached(&env);
    let etag = weights_etag(&env);
    assert!(!repo.blob_path(&etag).exists(), "a bad copy is never kept");
    assert!(!repo.incomplete_path(&etag).exists(), "not even as a resume point");
    assert!(!record_path(&env).exists());
    assert!(!repo.ref_path("main").exists());

    env.hub.clear_faults();
    let snapshot = downloaded(env.manager.retry_download().await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    assert_eq!(env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served, 2 * BIG_FILE_LEN, "fetched again whole");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_downloads_of_one_model_at_once_end_with_one_correct_copy() {
    let env = parts_env().await;
    env.hub.set_rate_cap(Some(4 << 20));
    let other = env.other_manager();
    let (first, second) = tokio::join!(env.manager.download(SMALL_REPO), other.download(SMALL_REPO));
    let (first, second) = (downloaded(first.unwrap()), downloaded(second.unwrap()));
    assert_eq!(first, second);
    assert_same_file(&env, SMALL_REPO, &first, WEIGHTS);
    let served = env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served;
    assert_eq!(served, BIG_FILE_LEN, "the blob lock kept the second from fetching it again");
    assert!(std::fs::read_dir(cached(&env).blobs_dir())
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".incomplete")));
}

#[tokio::test]
async fn a_partial_file_that_is_a_symlink_is_replaced_and_its_target_left_untouched() {
    let env = parts_env().await;
    let outside = env.tmp.path().join("precious.bin");
    std::fs::write(&outside, b"not yours").unwrap();
    let repo = cached(&env);
    std::fs::create_dir_all(repo.blobs_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, repo.incomplete_path(&weights_etag(&env))).unwrap();
    // The record too: a link there must not be read through or written through.
    std::os::unix::fs::symlink(&outside, record_path(&env)).unwrap();

    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    assert_eq!(std::fs::read(&outside).unwrap(), b"not yours");
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    let blob = repo.blob_path(&weights_etag(&env));
    assert!(std::fs::symlink_metadata(blob).unwrap().file_type().is_file(), "only a regular file is moved into place");
}

#[tokio::test]
async fn a_truncated_blob_is_noticed_and_pull_fetches_only_that_file_again() {
    let env = env().await;
    downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    let blob = cached(&env).blob_path(&weights_etag(&env));
    let file = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    file.set_len(BIG_FILE_LEN / 2).unwrap();
    drop(file);

    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    env.hub.reset_stats();
    let outcome = env.manager.download(SMALL_REPO).await.unwrap();
    let snapshot = downloaded(outcome);
    assert_same_file(&env, SMALL_REPO, &snapshot, WEIGHTS);
    assert_eq!(env.hub.file_stats(SMALL_REPO, WEIGHTS).bytes_served, BIG_FILE_LEN);
    assert_eq!(env.hub.file_stats(SMALL_REPO, "config.json").requests, 0, "only the damaged file");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
}

#[tokio::test]
async fn a_missing_blob_is_noticed_and_pull_fetches_only_that_file_again() {
    let env = env().await;
    downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    let repo = cached(&env);
    let commit = std::fs::read_to_string(repo.ref_path("main")).unwrap();
    let link = std::fs::read_link(repo.pointer_path(commit.trim(), "config.json")).unwrap();
    let config_etag = link.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(cached(&env).blob_path(&config_etag)).unwrap();

    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    env.hub.reset_stats();
    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());
    assert_same_file(&env, SMALL_REPO, &snapshot, "config.json");
    assert_eq!(env.hub.file_stats(SMALL_REPO, "config.json").requests, 1);
    assert_eq!(env.hub.file_stats(SMALL_REPO, WEIGHTS).requests, 0, "only the missing file");
}
