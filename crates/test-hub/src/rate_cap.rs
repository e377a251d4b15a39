//! The per-connection rate cap: a property of the hub, not a fault, that throttles
//! every file response on its own, as a CDN edge caps each connection. A client that
//! opens several ranged requests at once gets several times the cap; one stream gets
//! the cap. A `throttle` fault on a response still applies when it is slower.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per second per response; 0 means no cap.
#[derive(Debug, Default)]
pub(crate) struct RateCap(AtomicU64);

impl RateCap {
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        RateCap(AtomicU64::new(bytes_per_sec.unwrap_or(0)))
    }

    pub fn set(&self, bytes_per_sec: Option<u64>) {
        self.0.store(bytes_per_sec.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|rate| *rate > 0)
    }

    /// The rate a response sends at: the slower of the cap and a fault's throttle.
    pub fn apply(&self, throttle: Option<u64>) -> Option<u64> {
        match (self.get(), throttle) {
            (Some(cap), Some(rate)) => Some(cap.min(rate)),
            (cap, rate) => cap.or(rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slower_of_cap_and_throttle_wins() {
        let cap = RateCap::new(Some(100));
        assert_eq!(cap.apply(None), Some(100));
        assert_eq!(cap.apply(Some(50)), Some(50));
        assert_eq!(cap.apply(Some(500)), Some(100));
        cap.set(None);
        assert_eq!(cap.apply(Some(500)), Some(500));
        assert_eq!(cap.apply(None), None);
    }
}
