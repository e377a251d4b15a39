//! The streamed body of a file download, with the body faults applied on the way out.
//!
//! The file is read in chunks as the connection asks for them, never loaded whole, so a
//! 1 GiB file costs one chunk of memory. Each chunk is counted in the file's stats when it
//! is handed to the connection. Faults act at exact body offsets: a chunk is cut short so
//! that a reset or a stall happens after exactly the configured number of bytes.
//!
//! Every wait (stall, throttle) also watches the hub's shutdown signal, so a hub being
//! dropped never waits on a body stalled "forever".

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::BodyPlan;
use crate::stats::FileCounters;

const CHUNK: u64 = 512 * 1024;

/// Hyper drops bytes still in its write buffer when a body fails; waiting this long before
/// failing lets it flush them, so a `reset_after(n)` client really receives `n` bytes.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Throttled bodies send about this many chunks per second, so the rate is smooth (as
/// from a CDN edge: what a killed client loses in flight stays a small burst).
const THROTTLE_TICKS_PER_SEC: u64 = 100;

pub(crate) struct BodySource {
    pub abs_path: PathBuf,
    /// Absolute file offset of the first byte to send.
    pub start: u64,
    pub len: u64,
    pub plan: BodyPlan,
    pub counters: Arc<FileCounters>,
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) fn stream(source: BodySource) -> Body {
    source.counters.body_started();
    let streamer = Streamer { source, file: None, sent: 0, stalled: false, done: false, rate_origin: None };
    Body::from_stream(futures_util::stream::unfold(streamer, |mut s| async move {
        let item = s.next_chunk().await?;
        Some((item, s))
    }))
}

struct Streamer {
    source: BodySource,
    file: Option<tokio::fs::File>,
    /// Body bytes sent so far.
    sent: u64,
    stalled: bool,
    done: bool,
    /// When throttling began and how many bytes had been sent then.
    rate_origin: Option<(Instant, u64)>,
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.source.counters.body_ended();
    }
}

impl Streamer {
    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let len = self.source.len;
        let plan = self.source.plan.clone();

        if let Some((at, duration)) = plan.stall_after {
            if self.sent == at && at < len && !self.stalled {
                self.stalled = true;
                let until = duration.map(|d| Instant::now() + d);
                if !self.wait(until).await {
                    return self.fail("hub shut down during a stall");
                }
                self.rate_origin = None; // no burst to "catch up" after the stall
            }
        }
        if let Some(at) = plan.reset_after {
            if self.sent == at && at < len {
                self.wait(Some(Instant::now() + FLUSH_GRACE)).await;
                return self.fail("fault: connection reset");
            }
        }
        if self.sent >= len {
            return None;
        }
        if *self.source.shutdown.borrow() {
            return self.fail("hub shut down");
        }

        let mut n = CHUNK.min(len - self.sent);
        if let Some(at) = plan.reset_after.filter(|at| *at > self.sent) {
            n = n.min(at - self.sent);
        }
        if let Some((at, _)) = plan.stall_after.filter(|(at, _)| *at > self.sent) {
            n = n.min(at - self.sent);
        }
        if let Some(rate) = plan.bytes_per_sec.filter(|rate| *rate > 0) {
            n = n.min((rate / THROTTLE_TICKS_PER_SEC).max(1));
            let (origin, origin_sent) = *self.rate_origin.get_or_insert((Instant::now(), self.sent));
            let due = (self.sent + n - origin_sent) as f64 / rate as f64;
            if !self.wait(Some(origin + Duration::from_secs_f64(due))).await {
                return self.fail("hub shut down during a throttled send");
            }
        }

        let mut chunk = match self.read(n).await {
            Ok(chunk) => chunk,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        let chunk_start = self.source.start + self.sent;
        for &offset in &plan.corrupt {
            if (chunk_start..chunk_start + n).contains(&offset) {
                chunk[(offset - chunk_start) as usize] ^= 0xFF;
            }
        }
        self.sent += n;
        self.source.counters.count_bytes(n);
        Some(Ok(chunk.freeze()))
    }

    async fn read(&mut self, n: u64) -> io::Result<BytesMut> {
        if self.file.is_none() {
            let mut file = tokio::fs::File::open(&self.source.abs_path).await?;
            file.seek(SeekFrom::Start(self.source.start)).await?;
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened above");
        let mut chunk = BytesMut::zeroed(n as usize);
        // A file that shrank since it was indexed fails here, which the client sees as a
        // truncated body, as it would from a real server.
        file.read_exact(&mut chunk).await?;
        Ok(chunk)
    }

    /// Waits until `until` (forever if `None`); false if the hub shut down first.
    async fn wait(&mut self, until: Option<Instant>) -> bool {
        let timer: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match until {
            Some(until) => Box::pin(tokio::time::sleep_until(until)),
            None => Box::pin(std::future::pending()),
        };
        tokio::select! {
            () = timer => true,
            _ = self.source.shutdown.wait_for(|down| *down) => false,
        }
    }

    fn fail(&mut self, why: &'static str) -> Option<io::Result<Bytes>> {
        self.done = true;
        Some(Err(io::Error::new(io::ErrorKind::ConnectionReset, why)))
    }
}
