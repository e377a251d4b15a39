//! What every step of a download shares: why a transfer stopped ([`Stop`]: cancelled,
//! which is an outcome, or failed) and the bytes it brought so far ([`Counter`], which
//! the progress ticker samples). The bottom of `hub`: it imports only the error type.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

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
