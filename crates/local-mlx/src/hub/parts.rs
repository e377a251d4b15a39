//! Ranged parts: how a file is cut, and one HTTP request streamed into the partial
//! file at its offset.
//!
//! A file larger than one part is cut into parts of [`PartsConfig::part_size`] that
//! are handed out in file order to up to [`PartsConfig::connections`] requests at once
//! (so one slow connection, as a CDN edge caps each one, no longer caps the file).
//! Each answer is checked before a byte is written: a `206` must carry exactly the
//! `Content-Range` asked for, or the part fails (retryably) and nothing lands at a
//! wrong offset. A `200` to a ranged request means the server ignores `Range`; the
//! caller then takes that answer as the whole file in one stream.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT_RANGES, CONTENT_RANGE, RANGE};
use reqwest::{Response, StatusCode, Url};
use tokio_util::sync::CancellationToken;

use super::api::HubApi;
use super::config::PartsConfig;
use super::partial::PartialBlob;
use super::transfer::{Counter, Stop};
use crate::error::Error;

/// Received bytes are written in batches of this much, shared by the parts of a
/// file (at most 1 MiB each, at least 256 KiB): few hand-offs to the blocking pool
/// while data streams. Each part receives its next batch while the previous one is
/// written and hashed (on two cores the network and the disk+hash overlap), so a
/// SIGKILL loses at most twice this much received but unwritten.
const WRITE_BUDGET: usize = 4 << 20;
const MIN_WRITE_BATCH: usize = 256 << 10;
const MAX_WRITE_BATCH: usize = 1 << 20;
/// A pause this long writes out what a part holds (and records it).
const IDLE_FLUSH: Duration = Duration::from_millis(5);

/// How [`PartsConfig`] cuts a file into ranged parts.
impl PartsConfig {
    /// Whether a file of `size` bytes is fetched in parts.
    pub fn splits(&self, size: u64) -> bool {
        self.connections > 1 && size > self.part_size
    }

    /// The requests that fetch `missing` of a `size`-byte file, in file order.
    pub fn plan(&self, size: u64, missing: Vec<Range<u64>>) -> Vec<Range<u64>> {
        if !self.splits(size) {
            return missing;
        }
        let step = self.part_size.max(1);
        missing
            .into_iter()
            .flat_map(|gap| {
                (gap.start..gap.end).step_by(step as usize).map(move |start| start..(start + step).min(gap.end))
            })
            .collect()
    }

    /// Bytes each part buffers before writing once the parts of a file run side by
    /// side; one stream (a file not split, or its parts before they spread) writes
    /// [`MAX_WRITE_BATCH`] at a time.
    pub(crate) fn write_batch(&self) -> usize {
        (WRITE_BUDGET / self.connections.max(1)).clamp(MIN_WRITE_BATCH, MAX_WRITE_BATCH)
    }
}

/// How the server answered a request for a range.
pub(crate) enum Answer {
    /// Exactly the range asked for.
    Part(Response),
    /// `200`: the whole file, although a range was asked for.
    Whole(Response),
}

impl Answer {
    /// Whether the server says it serves ranges (`Accept-Ranges: bytes`).
    pub(crate) fn advertises_ranges(&self) -> bool {
        let Answer::Part(response) = self else { return false };
        response
            .headers()
            .get(ACCEPT_RANGES)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|unit| unit.trim().eq_ignore_ascii_case("bytes")))
    }
}

/// One file's requests: where they go and where their bytes land.
pub(crate) struct PartFetcher<'a> {
    pub api: &'a HubApi,
    pub url: &'a Url,
    pub file_name: &'a str,
    pub blob: Arc<PartialBlob>,
    pub stall_timeout: Duration,
    pub counter: &'a Counter,
    pub write_batch: usize,
    /// Set when the file's parts spread to more connections than the first: streams
    /// started after that write in `write_batch`es, before it in the largest ones.
    pub spread: std::sync::atomic::AtomicBool,
}

impl PartFetcher<'_> {
    /// Ask for `range` (no `Range` header for the whole file) and check the answer.
    pub(crate) async fn ask(&self, range: &Range<u64>, cancel: &CancellationToken) -> Result<Answer, Stop> {
        let size = self.blob.size();
        let whole = range.start == 0 && range.end == size;
        let mut request = self.api.request(self.url.clone());
        if !whole {
            request = request.header(RANGE, format!("bytes={}-{}", range.start, range.end - 1));
        }
        let response = tokio::select! {
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            r = tokio::time::timeout(self.stall_timeout, request.send()) => match r {
                Err(_) => return Err(self.stalled().into()),
                Ok(r) => r.map_err(|source| Error::Network { url: self.url.to_string(), source })?,
            },
        };
        match response.status() {
            StatusCode::OK => Ok(Answer::Whole(response)),
            StatusCode::PARTIAL_CONTENT if !whole => {
                let got = content_range(response.headers());
                if got != Some((range.start, range.end - 1, size)) {
                    return Err(Error::BadHubResponse {
                        url: self.url.to_string(),
                        reason: format!(
                            "asked for bytes {}-{} of {size}, got Content-Range {}",
                            range.start,
                            range.end - 1,
                            got.map_or("(missing or unreadable)".to_string(), |(s, e, t)| format!("{s}-{e}/{t}"))
                        ),
                    }
                    .into());
                }
                Ok(Answer::Part(response))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Our partial file is not one the server agrees with; drop it and let
                // the retry loop fetch from zero.
                let dropped = self.blob.covered();
                self.blob.restart()?;
                self.counter.sub(dropped);
                Err(Error::HttpStatus { url: self.url.to_string(), status: 416 }.into())
            }
            status => Err(Error::HttpStatus { url: self.url.to_string(), status: status.as_u16() }.into()),
        }
    }

    /// Stream `response`'s body into `range` of the partial file. Bytes received
    /// count in `counter`; what was written stays written whatever happens.
    pub(crate) async fn stream(
        &self,
        response: Response,
        range: Range<u64>,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let mut body = response.bytes_stream();
        let batch_size =
            if self.spread.load(std::sync::atomic::Ordering::Relaxed) { self.write_batch } else { MAX_WRITE_BATCH };
        let mut batch = Batch { data: Vec::with_capacity(batch_size), at: range.start, writing: None };
        let mut received = range.start;
        let stopped = loop {
            let next = loop {
                let holding = !batch.data.is_empty() || batch.writing.is_some();
                let wait = if holding { IDLE_FLUSH } else { self.stall_timeout };
                tokio::select! {
                    _ = cancel.cancelled() => break Err(None),
                    next = tokio::time::timeout(wait, body.next()) => match next {
                        Ok(item) => break Ok(item),
                        // A pause in the data: write what we hold and record it, so a
                        // kill while the link is the bottleneck loses next to nothing;
                        // then wait on (the stall clock starts again).
                        Err(_) if holding => {
                            self.flush(&mut batch).await?;
                            self.blob.save_record()?;
                        }
                        Err(_) => break Err(Some(self.stalled())),
                    },
                }
            };
            let next = match next {
                Ok(item) => item,
                Err(None) => break Stop::Cancelled,
                Err(Some(stalled)) => break stalled.into(),
            };
            let chunk = match next {
                None if received == range.end => {
                    self.flush(&mut batch).await?;
                    return Ok(());
                }
                None => {
                    break Error::BadHubResponse {
                        url: self.url.to_string(),
                        reason: format!(
                            "the body for bytes {}-{} ended after {} bytes",
                            range.start,
                            range.end - 1,
                            received - range.start
                        ),
                    }
                    .into()
                }
                Some(Err(source)) => break Error::Network { url: self.url.to_string(), source }.into(),
                Some(Ok(chunk)) => chunk,
            };
            if received + chunk.len() as u64 > range.end {
                self.flush(&mut batch).await?;
                return Err(Error::SizeMismatch {
                    file: self.file_name.to_string(),
                    expected: self.blob.size(),
                    actual: received + chunk.len() as u64,
                }
                .into());
            }
            batch.data.extend_from_slice(&chunk);
            received += chunk.len() as u64;
            self.counter.receive(chunk.len() as u64);
            if batch.data.len() >= batch_size {
                self.hand_off(&mut batch).await?;
            }
        };
        // Keep every byte that arrived before the stop: it is a resume point.
        self.flush(&mut batch).await?;
        self.blob.save_record()?;
        Err(stopped)
    }

    /// Hand a full batch to the blocking pool and keep receiving into the other buffer
    /// while it is written (and hashed, at the frontier); the write before it is
    /// waited for first, so a part's writes land in order, one at a time.
    async fn hand_off(&self, batch: &mut Batch) -> Result<(), Stop> {
        let spare = match batch.writing.take() {
            Some(writing) => Self::written(writing).await?,
            None => Vec::with_capacity(batch.data.capacity()),
        };
        let data = std::mem::replace(&mut batch.data, spare);
        let len = data.len() as u64;
        batch.writing = Some(self.write(data, batch.at));
        batch.at += len;
        Ok(())
    }

    /// Write out everything received: the write in flight, then what the batch holds.
    async fn flush(&self, batch: &mut Batch) -> Result<(), Stop> {
        if let Some(writing) = batch.writing.take() {
            let spare = Self::written(writing).await?;
            if batch.data.is_empty() {
                batch.data = spare;
            }
        }
        if !batch.data.is_empty() {
            let data = std::mem::take(&mut batch.data);
            let len = data.len() as u64;
            let writing = self.write(data, batch.at);
            batch.at += len;
            batch.data = Self::written(writing).await?;
        }
        Ok(())
    }

    /// Write `data` at `at` in the blocking pool.
    fn write(&self, data: Vec<u8>, at: u64) -> Writing {
        let blob = self.blob.clone();
        tokio::task::spawn_blocking(move || {
            let written = blob.write_at(&data, at);
            (data, written)
        })
    }

    /// The buffer of a finished write, emptied for reuse.
    async fn written(writing: Writing) -> Result<Vec<u8>, Stop> {
        let (mut data, written) = writing.await.expect("writing does not panic");
        written?;
        data.clear();
        Ok(data)
    }

    fn stalled(&self) -> Error {
        Error::Stalled { file: self.file_name.to_string(), secs: self.stall_timeout.as_secs() }
    }
}

/// A batch being written in the blocking pool: its buffer comes back with the result.
type Writing = tokio::task::JoinHandle<(Vec<u8>, crate::error::Result<()>)>;

struct Batch {
    data: Vec<u8>,
    /// File offset of `data[0]`.
    at: u64,
    /// The previous batch, while it is written.
    writing: Option<Writing>,
}

/// `Content-Range: bytes <start>-<end>/<total>` as numbers.
fn content_range(headers: &reqwest::header::HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed_whole() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range(&headers), Some((100, 199, 200)));
        headers.insert(CONTENT_RANGE, "bytes 100-199/*".parse().unwrap());
        assert_eq!(content_range(&headers), None);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a list of gaps that has one gap
    fn big_files_are_cut_in_order_and_small_ones_are_not() {
        let parts = PartsConfig { connections: 4, part_size: 10 };
        assert_eq!(parts.plan(25, vec![0..25]), vec![0..10, 10..20, 20..25]);
        assert_eq!(parts.plan(25, vec![3..8, 12..25]), vec![3..8, 12..22, 22..25]);
        assert_eq!(parts.plan(10, vec![0..10]), vec![0..10], "not larger than one part");
        let one = PartsConfig { connections: 1, part_size: 10 };
        assert_eq!(one.plan(25, vec![0..5, 12..25]), vec![0..5, 12..25], "one stream per gap");
    }

    #[test]
    fn configuration_comes_from_the_environment() {
        let c = PartsConfig::from_lookup(|k| match k {
            "LOCAL_MLX_DOWNLOAD_CONNECTIONS" => Some("3".into()),
            "LOCAL_MLX_DOWNLOAD_PART_SIZE" => Some("1048576".into()),
            _ => None,
        });
        assert_eq!(c, PartsConfig { connections: 3, part_size: 1 << 20 });
        assert_eq!(PartsConfig::from_lookup(|_| Some("zero".into())), PartsConfig::default());
        assert_eq!(PartsConfig::from_lookup(|_| Some("0".into())), PartsConfig::default());
    }
}
