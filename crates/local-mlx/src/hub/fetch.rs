//! Fetching one blob: lock, resume from the partial file, hash while writing, verify, rename.
//!
//! The partial file is `blobs/<etag>.incomplete`, the same name `huggingface_hub`
//! uses, and it only ever holds a contiguous prefix of the file; so its length *is*
//! the resume point, exact even after a SIGKILL (written bytes survive in the page
//! cache), with no side file to keep in sync. The hash runs over the bytes as they are
//! written; on resume the prefix already on disk is hashed first (a local read, far
//! cheaper than fetching it again). A server that ignores `Range` (200 instead of 206)
//! restarts the file from zero; a 416 means our prefix is not a prefix of theirs.
//! A blob appears under its final name only after it verified, by rename.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::api::HubApi;
use super::cache::CachedRepo;
use super::listing::{Digest, RemoteFile};
use crate::error::{Error, Result};

/// Why a fetch stopped without a blob.
#[derive(Debug)]
pub enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// Bytes written so far across all files of a download (for progress).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where one file goes and how it is checked.
pub struct FetchJob<'a> {
    pub api: &'a HubApi,
    pub repo: &'a CachedRepo,
    pub commit: &'a str,
    pub file: &'a RemoteFile,
    pub stall_timeout: Duration,
    /// Bytes of this file already in the counter (its partial or whole blob, when planned).
    pub counted: u64,
}

/// Buffer this much before handing a write to the blocking pool: big enough to keep
/// those hand-offs rare, small enough that a SIGKILL loses little (the buffer is the
/// only received data not yet in the page cache).
const WRITE_BUFFER: usize = 1 << 20;

impl FetchJob<'_> {
    /// Make `blobs/<etag>` exist with verified contents. `counter` grows by the bytes
    /// this call wrote (and by a resumed prefix, which `present_bytes` already counted).
    pub async fn run(&self, counter: &Counter, cancel: &CancellationToken) -> Result<(), Stop> {
        let blob = self.repo.blob_path(self.file.etag());
        if blob.exists() {
            return Ok(());
        }
        let _lock = BlobLock::acquire(&self.repo.lock_path(self.file.etag()), cancel).await?;
        if blob.exists() {
            // Another process finished it while we waited for the lock.
            counter.add(self.file.size.saturating_sub(self.counted));
            return Ok(());
        }
        let partial = self.repo.incomplete_path(self.file.etag());
        let result = self.download_to(&partial, counter, cancel).await;
        if let Err(Stop::Failed(Error::Integrity { .. } | Error::SizeMismatch { .. })) = &result {
            // A bad copy is never kept, not even as a resume point.
            counter.sub(partial_len(&partial));
            let _ = tokio::fs::remove_file(&partial).await;
        }
        result?;
        tokio::fs::rename(&partial, &blob).await.map_err(|e| Error::io("move into place", &blob, e))?;
        Ok(())
    }

    async fn download_to(&self, partial: &Path, counter: &Counter, cancel: &CancellationToken) -> Result<(), Stop> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(partial)
            .await
            .map_err(|e| Error::io("open", partial, e))?;
        let mut offset = file.metadata().await.map_err(|e| Error::io("read", partial, e))?.len();
        // Another process may have grown the partial file since it was counted.
        counter.add(offset);
        counter.sub(self.counted);
        if offset > self.file.size {
            // Longer than the real file: not a prefix of it.
            truncate(&mut file, partial, 0).await?;
            counter.sub(offset);
            offset = 0;
        }
        let mut hasher = Hasher::new(&self.file.digest, self.file.size);
        if offset > 0 {
            hash_prefix(&mut file, partial, offset, &mut hasher).await?;
        }
        if offset < self.file.size {
            offset = self.stream(&mut file, partial, offset, &mut hasher, counter, cancel).await?;
        }
        if offset != self.file.size {
            return Err(
                Error::SizeMismatch { file: self.file.path.clone(), expected: self.file.size, actual: offset }.into()
            );
        }
        file.sync_all().await.map_err(|e| Error::io("write", partial, e))?;
        let actual = hasher.finish();
        if actual != self.file.digest.hex() {
            return Err(Error::Integrity {
                file: self.file.path.clone(),
                algorithm: self.file.digest.algorithm(),
                expected: self.file.digest.hex().to_string(),
                actual,
            }
            .into());
        }
        Ok(())
    }

    /// Append the rest of the file from `offset`; returns the new length.
    async fn stream(
        &self,
        file: &mut tokio::fs::File,
        partial: &Path,
        mut offset: u64,
        hasher: &mut Hasher,
        counter: &Counter,
        cancel: &CancellationToken,
    ) -> Result<u64, Stop> {
        let url = self.api.file_url(self.repo.repo_id(), self.commit, &self.file.path)?;
        let network = |source| Error::Network { url: url.to_string(), source };
        let mut request = self.api.request(url.clone());
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            r = tokio::time::timeout(self.stall_timeout, request.send()) => match r {
                Err(_) => return Err(self.stalled().into()),
                Ok(r) => r.map_err(network)?,
            },
        };
        match response.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = content_range_start(response.headers());
                if start != Some(offset) {
                    return Err(Error::BadHubResponse {
                        url: url.to_string(),
                        reason: format!("asked for bytes from {offset}, got Content-Range starting at {start:?}"),
                    }
                    .into());
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    // The server ignored Range: start this file over.
                    truncate(file, partial, 0).await?;
                    counter.sub(offset);
                    *hasher = Hasher::new(&self.file.digest, self.file.size);
                    offset = 0;
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Our partial file is not a prefix the server agrees with; drop it and
                // let the retry loop fetch from zero.
                truncate(file, partial, 0).await?;
                counter.sub(offset);
                return Err(Error::HttpStatus { url: url.to_string(), status: 416 }.into());
            }
            status => return Err(Error::HttpStatus { url: url.to_string(), status: status.as_u16() }.into()),
        }
        let mut body = response.bytes_stream();
        let mut buffer = Vec::with_capacity(WRITE_BUFFER);
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => {
                    write_out(file, partial, &mut buffer).await?;
                    return Err(Stop::Cancelled);
                }
                next = tokio::time::timeout(self.stall_timeout, body.next()) => next,
            };
            let chunk = match next {
                Err(_) => {
                    write_out(file, partial, &mut buffer).await?;
                    return Err(self.stalled().into());
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    write_out(file, partial, &mut buffer).await?;
                    return Err(network(e).into());
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if offset + chunk.len() as u64 > self.file.size {
                write_out(file, partial, &mut buffer).await?;
                return Err(Error::SizeMismatch {
                    file: self.file.path.clone(),
                    expected: self.file.size,
                    actual: offset + chunk.len() as u64,
                }
                .into());
            }
            hasher.update(&chunk);
            buffer.extend_from_slice(&chunk);
            offset += chunk.len() as u64;
            counter.add(chunk.len() as u64);
            if buffer.len() >= WRITE_BUFFER {
                write_out(file, partial, &mut buffer).await?;
            }
        }
        write_out(file, partial, &mut buffer).await?;
        Ok(offset)
    }

    fn stalled(&self) -> Error {
        Error::Stalled { file: self.file.path.clone(), secs: self.stall_timeout.as_secs() }
    }
}

/// The start of `Content-Range: bytes <start>-<end>/<total>`.
fn content_range_start(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    value.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

async fn write_out(file: &mut tokio::fs::File, path: &Path, buffer: &mut Vec<u8>) -> Result<()> {
    if !buffer.is_empty() {
        file.write_all(buffer).await.map_err(|e| Error::io("write", path, e))?;
        buffer.clear();
    }
    file.flush().await.map_err(|e| Error::io("write", path, e))
}

async fn truncate(file: &mut tokio::fs::File, path: &Path, len: u64) -> Result<()> {
    file.set_len(len).await.map_err(|e| Error::io("truncate", path, e))?;
    use tokio::io::AsyncSeekExt;
    file.seek(std::io::SeekFrom::Start(len)).await.map_err(|e| Error::io("seek", path, e))?;
    Ok(())
}

async fn hash_prefix(file: &mut tokio::fs::File, path: &Path, len: u64, hasher: &mut Hasher) -> Result<()> {
    use tokio::io::AsyncSeekExt;
    file.seek(std::io::SeekFrom::Start(0)).await.map_err(|e| Error::io("read", path, e))?;
    let mut remaining = len;
    let mut buffer = vec![0u8; 1 << 20];
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let n = file.read(&mut buffer[..want]).await.map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        remaining -= n as u64;
    }
    file.seek(std::io::SeekFrom::Start(len)).await.map_err(|e| Error::io("seek", path, e))?;
    Ok(())
}

fn partial_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Incremental sha256, or git's blob sha1 (`"blob <len>\0"` then the bytes).
enum Hasher {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Hasher {
    fn new(digest: &Digest, size: u64) -> Self {
        match digest {
            Digest::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Digest::GitSha1(_) => {
                let mut sha1 = Sha1::new();
                sha1.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(sha1)
            }
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::GitSha1(h) => h.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::GitSha1(h) => hex::encode(h.finalize()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sha1_matches_git_hash_object() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = Hasher::new(&Digest::GitSha1(String::new()), 6);
        h.update(b"hel");
        h.update(b"lo\n");
        assert_eq!(h.finish(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn content_range_start_is_parsed() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range_start(&headers), Some(100));
    }
}
