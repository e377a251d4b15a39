//! Downloading a whole snapshot: plan, check disk, fetch files in parallel, link, ref last.
//!
//! One call is one *series* of up to `max_attempts` attempts with doubling backoff;
//! every attempt resumes from what is on disk. Errors decide what happens next (as in
//! Ollama's downloader): cancel stops at once and is an outcome, not an error; a
//! missing repo, a refused token, an unsafe listing or a full disk stop too; network
//! trouble, a stall or a bad hash are retried. Progress is sampled from one atomic
//! counter on a ticker, so its rate is capped by design and it never goes backwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::api::HubApi;
use super::cache::HubCache;
use super::config::HubConfig;
use super::fetch::{present_bytes, FetchJob};
use super::listing::{is_wanted, RepoListing};
use super::transfer::{Counter, Stop};
use crate::error::{human_bytes, Error, Result};

/// A progress sample: bytes on disk for this snapshot, of `total`, and the recent speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub bytes_per_second: f64,
}

/// How a download ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The snapshot is complete at this folder; `fetched_bytes` arrived from the
    /// network for it (every attempt, a dropped and refetched file counted twice).
    Completed { snapshot: PathBuf, fetched_bytes: u64 },
    /// Stopped by the caller; partial files stay for a later resume.
    Cancelled,
}

/// Downloads repos from one hub into one cache.
#[derive(Debug, Clone)]
pub struct Downloader {
    api: HubApi,
    cache: HubCache,
    config: HubConfig,
}

impl Downloader {
    pub fn new(config: HubConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("local-mlx/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|source| Error::Network { url: config.endpoint.clone(), source })?;
        Ok(Downloader { api: HubApi::new(http, &config), cache: HubCache::new(&config.cache_dir), config })
    }

    pub fn cache(&self) -> &HubCache {
        &self.cache
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Download `repo@revision` with retries, reporting progress to `on_progress`.
    pub async fn download(
        &self,
        repo_id: &str,
        revision: &str,
        on_progress: impl Fn(Progress) + Send + Sync + 'static,
        cancel: &CancellationToken,
    ) -> Result<Outcome> {
        // Never backwards, not even across attempts that had to drop a bad file.
        let high_water = std::sync::atomic::AtomicU64::new(0);
        let on_progress: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(move |mut p: Progress| {
            p.done = high_water.fetch_max(p.done, std::sync::atomic::Ordering::Relaxed).max(p.done);
            on_progress(p)
        });
        let mut backoff = self.config.retry_backoff;
        let mut attempt = 1;
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        loop {
            match self.attempt(repo_id, revision, on_progress.clone(), &received, cancel).await {
                Ok(outcome) => return Ok(outcome),
                Err(Stop::Cancelled) => return Ok(Outcome::Cancelled),
                Err(Stop::Failed(error)) if !error.is_retryable() => return Err(error),
                Err(Stop::Failed(error)) if attempt >= self.config.max_attempts => {
                    return Err(Error::DownloadFailed {
                        model_id: repo_id.to_string(),
                        attempts: attempt,
                        last: Box::new(error),
                    })
                }
                Err(Stop::Failed(error)) => {
                    tracing::warn!(repo_id, attempt, %error, "download attempt failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(Outcome::Cancelled),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        repo_id: &str,
        revision: &str,
        on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
        received: &Arc<std::sync::atomic::AtomicU64>,
        cancel: &CancellationToken,
    ) -> Result<Outcome, Stop> {
        let repo = self.cache.repo(repo_id);
        let listing = tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            listing = self.api.listing(repo_id, revision) => listing?,
        };
        let wanted = RepoListing {
            commit: listing.commit.clone(),
            files: listing.files.into_iter().filter(|f| is_wanted(&f.path)).collect(),
        };
        if wanted.files.is_empty() {
            // Final: another attempt lists the same files.
            return Err(Error::NoUsableFiles { repo: repo_id.to_string() }.into());
        }
        let counted: Vec<u64> = wanted.files.iter().map(|f| present_bytes(&repo, f)).collect();
        let present: u64 = counted.iter().sum();
        let total = wanted.total_bytes();
        check_disk_space(&self.cache, total - present.min(total))?;
        let blobs = repo.blobs_dir();
        std::fs::create_dir_all(&blobs).map_err(|e| Error::io("create the cache folder", &blobs, e))?;

        let connections = tokio::sync::Semaphore::new(self.config.parts.connections.max(self.config.parallel_files));
        let counter = Arc::new(Counter::sharing(received.clone()));
        counter.add(present);
        let ticker = spawn_ticker(counter.clone(), total, self.config.progress_interval, on_progress.clone());
        // Siblings stop as soon as one file fails, keeping their partial bytes.
        let attempt_cancel = cancel.child_token();
        // Collected first: a lazy `map` closure inside the stream makes the future's
        // type higher-ranked and no longer provably `Send` (rust-lang/rust#102211).
        let jobs: Vec<_> = wanted
            .files
            .iter()
            .zip(&counted)
            .map(|(file, counted)| {
                let job = FetchJob {
                    api: &self.api,
                    repo: &repo,
                    commit: &wanted.commit,
                    file,
                    stall_timeout: self.config.stall_timeout,
                    counted: *counted,
                    parts: self.config.parts,
                    connections: &connections,
                };
                let counter = counter.clone();
                let attempt_cancel = attempt_cancel.clone();
                async move {
                    let result = job.run(&counter, &attempt_cancel).await;
                    if result.is_err() {
                        attempt_cancel.cancel();
                    }
                    result
                }
            })
            .collect();
        let result: Result<Vec<()>, Stop> =
            stream::iter(jobs).buffer_unordered(self.config.parallel_files.max(1)).try_collect().await;
        ticker.abort();
        // The first error in completion order is the real one: siblings only see the
        // cancellation it triggered after it returned.
        result?;
        on_progress(Progress { done: total, total, bytes_per_second: 0.0 });
        for file in &wanted.files {
            repo.link_pointer(&wanted.commit, &file.path, file.etag())?;
        }
        let sizes = wanted.files.iter().map(|f| (f.path.clone(), f.size)).collect();
        repo.write_sizes(&wanted.commit, &sizes)?;
        repo.write_ref(revision, &wanted.commit)?;
        Ok(Outcome::Completed {
            snapshot: repo.snapshot_dir(&wanted.commit),
            fetched_bytes: received.load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// Refuse to start when what is still missing would not fit.
fn check_disk_space(cache: &HubCache, needed: u64) -> Result<()> {
    match free_space(cache.root())? {
        Some(available) => disk_refusal(cache.root(), needed, available).map_or(Ok(()), Err),
        None => Ok(()),
    }
}

/// Free bytes where `dir` is, or will be once created: measured on its nearest folder
/// that exists (`None` when none does). The one probe of free space.
pub(crate) fn free_space(dir: &Path) -> Result<Option<u64>> {
    let Some(probe) = dir.ancestors().find(|d| d.exists()) else { return Ok(None) };
    fs4::available_space(probe).map(Some).map_err(|e| Error::io("measure free space in", probe, e))
}

/// The one disk rule: downloading `needed` more bytes into `dir` with `available` free
/// is refused with this error (a status shows it before anyone presses Download).
pub(crate) fn disk_refusal(dir: &Path, needed: u64, available: u64) -> Option<Error> {
    (needed > available).then(|| Error::InsufficientDisk {
        path: dir.to_path_buf(),
        needed,
        available,
        needed_h: human_bytes(needed),
        available_h: human_bytes(available),
    })
}

/// Report progress every `interval`, never going backwards, with a speed over ~1 s.
fn spawn_ticker(
    counter: Arc<Counter>,
    total: u64,
    interval: Duration,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reported = 0u64;
        let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
        let mut ticker = tokio::time::interval(interval);
        // After a busy moment, wait a full interval again rather than firing a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let done = counter.get().min(total).max(reported);
            reported = done;
            window.push_back((now, done));
            while window.len() > 2 && now.duration_since(window[0].0) > Duration::from_secs(1) {
                window.pop_front();
            }
            let (t0, d0) = window[0];
            let secs = now.duration_since(t0).as_secs_f64();
            let bytes_per_second = if secs > 0.0 { (done - d0) as f64 / secs } else { 0.0 };
            on_progress(Progress { done, total, bytes_per_second });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn free_space_of_a_folder_not_created_yet_is_measured_on_its_ancestor_and_the_disk_rule_refuses_a_shortfall() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("hub/not/yet");
        assert!(free_space(&missing).unwrap().is_some_and(|free| free > 0));
        assert!(!missing.exists(), "measuring creates nothing");
        let refusal = disk_refusal(&missing, 2_000, 1_000).expect("2 kB do not fit in 1 kB");
        assert_eq!(refusal.kind(), ErrorKind::InsufficientDisk);
        assert!(refusal.to_string().contains("2000") && refusal.to_string().contains("1000"), "{refusal}");
        assert!(disk_refusal(&missing, 1_000, 1_000).is_none(), "an exact fit is enough");
    }
}
