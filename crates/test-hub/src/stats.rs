//! Request and byte counters, per file and for the API.
//!
//! Counters are atomics behind an `Arc` handed to each response body, so a body counts the
//! bytes it hands to the connection as it goes; a body cut short by a reset or a stall has
//! counted exactly what was sent. Resetting zeroes the counters in place rather than dropping
//! them, so a download still in flight keeps counting into what the test will read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Counters of one file, keyed `org/name/path` in [`Stats::files`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStats {
    /// GET requests answered with (part of) the file's bytes, whatever happened after.
    /// The 302 of an LFS file is not one; the GET that follows it to `/_lfs` is.
    pub requests: u64,
    /// HEAD requests (on `resolve` and on `/_lfs`).
    pub head_requests: u64,
    /// Body bytes handed to the connection.
    pub bytes_served: u64,
    /// The most bodies of this file that were being sent at the same time (ranged
    /// requests in parallel show up here).
    #[serde(default)]
    pub max_concurrent_bodies: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub files: BTreeMap<String, FileStats>,
    /// Requests to `/api/...` routes, faulted ones included.
    pub api_requests: u64,
}

#[derive(Default)]
pub(crate) struct FileCounters {
    requests: AtomicU64,
    head_requests: AtomicU64,
    bytes_served: AtomicU64,
    bodies_in_flight: AtomicU64,
    max_concurrent_bodies: AtomicU64,
}

impl FileCounters {
    pub fn body_started(&self) {
        let now = self.bodies_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_concurrent_bodies.fetch_max(now, Ordering::Relaxed);
    }

    pub fn body_ended(&self) {
        self.bodies_in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn count_get(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_head(&self) {
        self.head_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_bytes(&self, n: u64) {
        self.bytes_served.fetch_add(n, Ordering::Relaxed);
    }

    fn read(&self) -> FileStats {
        FileStats {
            requests: self.requests.load(Ordering::Relaxed),
            head_requests: self.head_requests.load(Ordering::Relaxed),
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            max_concurrent_bodies: self.max_concurrent_bodies.load(Ordering::Relaxed),
        }
    }

    fn zero(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.head_requests.store(0, Ordering::Relaxed);
        self.bytes_served.store(0, Ordering::Relaxed);
        // Bodies still being sent keep counting down into `bodies_in_flight`.
        self.max_concurrent_bodies.store(0, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    files: Mutex<BTreeMap<String, Arc<FileCounters>>>,
    api_requests: AtomicU64,
}

impl StatsRecorder {
    pub fn file(&self, repo: &str, path: &str) -> Arc<FileCounters> {
        let key = file_key(repo, path);
        let mut files = self.files.lock().expect("stats lock");
        files.entry(key).or_default().clone()
    }

    pub fn count_api(&self) {
        self.api_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let files = self.files.lock().expect("stats lock");
        Stats {
            files: files
                .iter()
                .map(|(key, counters)| (key.clone(), counters.read()))
                .filter(|(_, stats)| *stats != FileStats::default())
                .collect(),
            api_requests: self.api_requests.load(Ordering::Relaxed),
        }
    }

    pub fn file_stats(&self, repo: &str, path: &str) -> FileStats {
        let files = self.files.lock().expect("stats lock");
        files.get(&file_key(repo, path)).map(|counters| counters.read()).unwrap_or_default()
    }

    pub fn reset(&self) {
        for counters in self.files.lock().expect("stats lock").values() {
            counters.zero();
        }
        self.api_requests.store(0, Ordering::Relaxed);
    }
}

fn file_key(repo: &str, path: &str) -> String {
    format!("{repo}/{path}")
}
