//! What every step of a download shares: why a transfer stopped ([`Stop`]: cancelled,
//! which is an outcome, or failed) and the bytes it brought so far ([`Counter`], which
//! the progress ticker samples). The bottom of `hub`: it imports only the error type.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// Why a fetch stopped without a blob.
#[derive(Debug)]
pub(crate) enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// Bytes written so far across all files of a download (for progress, which goes back
/// when a file is dropped), and the bytes received from the network (only grows, shared
/// by every attempt of the download: what `pull` says it downloaded).
#[derive(Debug)]
pub(crate) struct Counter {
    progress: AtomicU64,
    received: std::sync::Arc<AtomicU64>,
}

impl Counter {
    /// A counter whose received bytes add to `received`.
    pub(crate) fn sharing(received: std::sync::Arc<AtomicU64>) -> Counter {
        Counter { progress: AtomicU64::new(0), received }
    }
    pub(crate) fn add(&self, n: u64) {
        self.progress.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn sub(&self, n: u64) {
        self.progress.fetch_sub(n, Ordering::Relaxed);
    }
    /// `n` bytes arrived from the network and were written.
    pub(crate) fn receive(&self, n: u64) {
        self.add(n);
        self.received.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }
}
