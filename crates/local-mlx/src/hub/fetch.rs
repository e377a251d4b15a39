//! Fetching one blob: lock, resume from what the partial file holds, fetch the rest
//! (in ranged parts when it is large), hash every byte, verify, rename.
//!
//! The partial file is `blobs/<etag>.incomplete`, the name `huggingface_hub` uses;
//! which of its bytes count is in its resume record ([`super::resume`]), so a rerun
//! after a kill, a cancel or a network error fetches only what is missing. The first
//! request of an attempt probes the server: a `206` with the exact `Content-Range`
//! and `Accept-Ranges: bytes` lets the other parts start; a `200` (the server ignores
//! `Range`) is taken as the whole file in one stream, starting the file over; a `416`
//! means our bytes are not a part of theirs. The hash follows the written bytes in
//! file order (`in_order.rs`), and a blob appears under its final name only after
//! it verified, by rename.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::api::HubApi;
use super::cache::CachedRepo;
use super::config::PartsConfig;
use super::in_order::hash_in_order;
use super::listing::RemoteFile;
use super::partial::PartialBlob;
use super::parts::{Answer, PartFetcher};
use super::resume::ResumeRecord;
use super::transfer::{Counter, Stop};
use crate::error::{Error, Result};

/// How often a file fetched by one connection checks whether to add the others.
const SPREAD_CHECK: Duration = Duration::from_millis(250);
/// One connection bringing less than this per check (128 MiB/s) is held back by the
/// link or a per-connection cap, and the other parts start. Faster than that (a fast
/// link, loopback), more connections only add work on the same CPU and disk, so the
/// file stays one stream over its parts.
const SPREAD_BELOW_PER_CHECK: u64 = 32 << 20;

/// Where one file goes and how it is fetched and checked.
pub(crate) struct FetchJob<'a> {
    pub api: &'a HubApi,
    pub repo: &'a CachedRepo,
    pub commit: &'a str,
    pub file: &'a RemoteFile,
    pub stall_timeout: Duration,
    /// Bytes of this file already in the counter (its partial or whole blob, when planned).
    pub counted: u64,
    pub parts: PartsConfig,
    /// The download's connections: every request holds one while it streams.
    pub connections: &'a Semaphore,
}

impl FetchJob<'_> {
    /// Make `blobs/<etag>` exist with verified contents. `counter` grows by the bytes
    /// this call received (and by a resumed part, which `present_bytes` already counted).
    pub(crate) async fn run(&self, counter: &Counter, cancel: &CancellationToken) -> Result<(), Stop> {
        let blob_path = self.repo.blob_path(self.file.etag());
        if is_whole(&blob_path, self.file.size) {
            return Ok(());
        }
        let _lock = BlobLock::acquire(&self.repo.lock_path(self.file.etag()), cancel).await?;
        if is_whole(&blob_path, self.file.size) {
            // Another process finished it while we waited for the lock.
            counter.add(self.file.size.saturating_sub(self.counted));
            return Ok(());
        }
        remove_damaged_blob(&blob_path, self.file.size)?;
        let partial = self.repo.incomplete_path(self.file.etag());
        let blob = Arc::new(PartialBlob::open(&partial, self.file.size)?);
        // Another process may have added bytes since they were counted.
        counter.add(blob.covered());
        counter.sub(self.counted);

        let file_cancel = cancel.child_token();
        let url = self.api.file_url(self.repo.repo_id(), self.commit, &self.file.path)?;
        let fetcher = PartFetcher {
            api: self.api,
            url: &url,
            file_name: &self.file.path,
            blob: blob.clone(),
            stall_timeout: self.stall_timeout,
            counter,
            write_batch: self.parts.write_batch(),
            spread: Default::default(),
        };
        // The probe may start the file over, so it is answered before the hasher
        // reads a byte.
        let opened = self.probe(&fetcher, counter, &file_cancel).await?;
        let fetched = async {
            let mut result = self.fetch_rest(&fetcher, opened, &file_cancel).await;
            if result.is_ok() && !fetcher.blob.missing().is_empty() {
                // Never reached when every part checked its length; if it were, the
                // hasher would wait for bytes no one fetches.
                result = Err(Error::SizeMismatch {
                    file: self.file.path.clone(),
                    expected: self.file.size,
                    actual: fetcher.blob.covered(),
                }
                .into());
            }
            if result.is_err() {
                file_cancel.cancel();
            }
            result
        };
        let (fetched, hashed) = tokio::join!(fetched, hash_in_order(blob.clone(), &self.file.digest, &file_cancel));
        drop(fetcher);
        let blob = Arc::into_inner(blob).expect("parts and hasher are done with the partial file");
        if let Err(stop) = fetched {
            if matches!(stop, Stop::Failed(Error::SizeMismatch { .. })) {
                // A body longer than the file: a bad copy is never kept, not even as a resume point.
                counter.sub(blob.covered());
                blob.discard();
            }
            return Err(stop);
        }
        let actual = hashed?;
        if actual != self.file.digest.hex() {
            counter.sub(blob.covered());
            blob.discard();
            return Err(Error::Integrity {
                file: self.file.path.clone(),
                algorithm: self.file.digest.algorithm(),
                expected: self.file.digest.hex().to_string(),
                actual,
            }
            .into());
        }
        blob.move_into_place(&blob_path)?;
        Ok(())
    }

    /// Ask for the first missing range. A `206` that advertises ranges lets the
    /// other parts start; a `200` is the whole file, which then starts over.
    async fn probe(
        &self,
        fetcher: &PartFetcher<'_>,
        counter: &Counter,
        cancel: &CancellationToken,
    ) -> Result<Option<Opened<'_>>, Stop> {
        let size = self.file.size;
        let mut queue: VecDeque<Range<u64>> = self.parts.plan(size, fetcher.blob.missing()).into();
        let Some(first) = queue.pop_front() else { return Ok(None) };
        let permit = self.connection(cancel).await?;
        let opened = match fetcher.ask(&first, cancel).await? {
            Answer::Whole(response) => {
                if first != (0..size) || fetcher.blob.covered() > 0 {
                    tracing::info!(file = %self.file.path, "the server ignores Range; fetching the file whole");
                    let dropped = fetcher.blob.covered();
                    fetcher.blob.restart()?;
                    counter.sub(dropped);
                }
                Opened { permit, range: 0..size, response, rest: VecDeque::new(), parallel: false }
            }
            answer @ Answer::Part(_) => {
                let parallel = self.parts.splits(size) && answer.advertises_ranges();
                let Answer::Part(response) = answer else { unreachable!() };
                Opened { permit, range: first, response, rest: queue, parallel }
            }
        };
        Ok(Some(opened))
    }

    /// Stream the probe's answer and fetch the rest, over several connections when
    /// the probe allowed it, handing parts out in file order.
    async fn fetch_rest(
        &self,
        fetcher: &PartFetcher<'_>,
        opened: Option<Opened<'_>>,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let Some(opened) = opened else { return Ok(()) };
        let mut spare = if opened.parallel { self.parts.connections.saturating_sub(1) } else { 0 };
        let queue = std::sync::Mutex::new(opened.rest);
        let mut running = FuturesUnordered::new();
        running.push(self.worker(fetcher, &queue, Some((opened.permit, opened.range, opened.response)), cancel));
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + SPREAD_CHECK, SPREAD_CHECK);
        let mut covered = fetcher.blob.covered();
        // The first failure in completion order is the real one: siblings only see the
        // cancellation it triggers, and stop keeping what they wrote.
        let mut outcome = Ok(());
        loop {
            let mut spread = false;
            tokio::select! {
                result = running.next() => match result {
                    None => break,
                    Some(Err(stop)) => {
                        cancel.cancel();
                        let first_real =
                            matches!((&outcome, &stop), (Ok(()), _) | (Err(Stop::Cancelled), Stop::Failed(_)));
                        if first_real {
                            outcome = Err(stop);
                        }
                    }
                    Some(Ok(())) => {}
                },
                _ = check.tick(), if spare > 0 => {
                    let now = fetcher.blob.covered();
                    spread = now.saturating_sub(covered) < SPREAD_BELOW_PER_CHECK;
                    covered = now;
                }
            }
            if spread && !cancel.is_cancelled() {
                // Until now one stream wrote a contiguous run after what was there,
                // which the file's length (or the record kept from a resumed run)
                // already says; from here parts write at several offsets, so the
                // record is kept, starting before their first byte.
                fetcher.spread.store(true, Ordering::Relaxed);
                if let Err(e) = fetcher.blob.record_parts() {
                    cancel.cancel();
                    outcome = Err(e.into());
                    spare = 0;
                }
                for _ in 0..std::mem::take(&mut spare) {
                    running.push(self.worker(fetcher, &queue, None, cancel));
                }
            }
        }
        outcome
    }

    /// One connection's work: stream the probe's answer if given, then take the next
    /// part in file order until none is left.
    async fn worker(
        &self,
        fetcher: &PartFetcher<'_>,
        queue: &std::sync::Mutex<VecDeque<Range<u64>>>,
        opened: Option<(SemaphorePermit<'_>, Range<u64>, reqwest::Response)>,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        if let Some((_permit, range, response)) = opened {
            fetcher.stream(response, range, cancel).await?;
        }
        loop {
            let Some(range) = queue.lock().expect("part queue poisoned").pop_front() else { return Ok(()) };
            let _permit = self.connection(cancel).await?;
            match fetcher.ask(&range, cancel).await? {
                Answer::Part(response) => fetcher.stream(response, range, cancel).await?,
                Answer::Whole(_) => {
                    return Err(Error::BadHubResponse {
                        url: fetcher.url.to_string(),
                        reason: format!(
                            "answered bytes {}-{} with the whole file after serving other ranges",
                            range.start,
                            range.end - 1
                        ),
                    }
                    .into())
                }
            }
        }
    }

    async fn connection(&self, cancel: &CancellationToken) -> Result<SemaphorePermit<'_>, Stop> {
        tokio::select! {
            _ = cancel.cancelled() => Err(Stop::Cancelled),
            permit = self.connections.acquire() => Ok(permit.expect("the connection semaphore is never closed")),
        }
    }
}

/// The probe's answer, and what is left to fetch after it.
struct Opened<'a> {
    permit: SemaphorePermit<'a>,
    range: Range<u64>,
    response: reqwest::Response,
    rest: VecDeque<Range<u64>>,
    parallel: bool,
}

/// Bytes of `file` already on disk: the whole blob, or what its partial file holds.
pub(crate) fn present_bytes(repo: &CachedRepo, file: &RemoteFile) -> u64 {
    if is_whole(&repo.blob_path(file.etag()), file.size) {
        return file.size;
    }
    let partial = repo.incomplete_path(file.etag());
    let Ok(meta) = std::fs::symlink_metadata(&partial) else { return 0 };
    if !meta.file_type().is_file() {
        return 0;
    }
    ResumeRecord::beside(&partial).load(meta.len(), file.size).0.covered()
}

/// A blob of the right size is there (sizes from the listing; the bytes were hashed
/// when it was written).
fn is_whole(blob: &Path, size: u64) -> bool {
    std::fs::metadata(blob).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// A blob of the wrong size (truncated, or replaced behind our back) is removed so it
/// can be fetched again; a link is removed itself, never what it points at.
fn remove_damaged_blob(blob: &Path, size: u64) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(blob) else { return Ok(()) };
    tracing::warn!(blob = %blob.display(), expected = size, "a damaged blob is fetched again");
    let removed = if meta.file_type().is_dir() { std::fs::remove_dir_all(blob) } else { std::fs::remove_file(blob) };
    removed.map_err(|e| Error::io("remove the damaged blob", blob, e))
}

/// The `huggingface_hub` lock for one blob (`flock` on `.locks/.../<etag>.lock`),
/// so two processes — ours or Python's — never write the same partial file at once.
struct BlobLock {
    _file: std::fs::File,
}

impl BlobLock {
    async fn acquire(path: &Path, cancel: &CancellationToken) -> Result<Self, Stop> {
        let parent = path.parent().expect("lock has a parent");
        tokio::fs::create_dir_all(parent).await.map_err(|e| Error::io("create", parent, e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open the lock file", path, e))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(BlobLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", PathBuf::from(path), e).into()),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(Stop::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}
