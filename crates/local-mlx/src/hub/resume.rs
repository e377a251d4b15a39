//! What of a partial blob is already on disk: the written byte ranges and their record.
//!
//! A file fetched in parts is written at several offsets at once, so the length of
//! `blobs/<etag>.incomplete` no longer says what it holds. [`RangeSet`] keeps the
//! written ranges; [`ResumeRecord`] stores them next to the partial file as
//! `blobs/<etag>.ranges.incomplete` (small JSON, replaced by rename, so a reader sees
//! the old or the new record, never half of one). The name ends in `.incomplete` on
//! purpose: every tool, ours and `huggingface_hub`, treats such files as transient
//! download state that `rm` removes with the partial file.
//!
//! Decision: the record is written *after* the bytes it names (and never fsynced): a
//! killed process loses at most the bytes written since the last save, never gains a
//! claim to bytes it did not write. Only a power loss can make the record claim
//! more than the page cache kept; the whole-file hash then fails and the file starts
//! over, so a record can cost time but never correctness. A partial file without a
//! record is read as a contiguous prefix: one stream appending needs no record (its
//! length says it all), and earlier versions left exactly that.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Disjoint, sorted, merged half-open byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// `[0, len)`, or nothing for 0.
    pub fn prefix(len: u64) -> Self {
        let mut set = RangeSet::default();
        set.insert(0..len);
        set
    }

    /// Add `range`, merging with neighbours it touches or overlaps.
    pub fn insert(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        // Everything that touches [start, end] is absorbed.
        let first = self.0.partition_point(|&(_, e)| e < start);
        let mut last = first;
        while last < self.0.len() && self.0[last].0 <= end {
            start = start.min(self.0[last].0);
            end = end.max(self.0[last].1);
            last += 1;
        }
        self.0.splice(first..last, [(start, end)]);
    }

    /// Bytes covered.
    pub fn covered(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The largest end of any range (0 when empty).
    pub fn end(&self) -> u64 {
        self.0.last().map_or(0, |&(_, e)| e)
    }

    /// The end of the run of covered bytes starting at `at` (`at` itself if not covered).
    pub fn run_end(&self, at: u64) -> u64 {
        let index = self.0.partition_point(|&(_, e)| e <= at);
        match self.0.get(index) {
            Some(&(s, e)) if s <= at => e,
            _ => at,
        }
    }

    /// The gaps in `[0, size)`, in order.
    pub fn missing(&self, size: u64) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(s, e) in &self.0 {
            if s > at {
                gaps.push(at..s.min(size));
            }
            at = at.max(e);
        }
        if at < size {
            gaps.push(at..size);
        }
        gaps.retain(|g| !g.is_empty());
        gaps
    }

    fn fits(&self, size: u64) -> bool {
        self.0.iter().all(|&(s, e)| s < e) && self.0.windows(2).all(|w| w[0].1 < w[1].0) && self.end() <= size
    }
}

/// The on-disk record of a partial blob's written ranges.
#[derive(Debug, Clone)]
pub struct ResumeRecord {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct RecordFile {
    /// The blob's size: a record for another size is stale.
    size: u64,
    written: RangeSet,
}

impl ResumeRecord {
    /// The record beside `partial` (`<etag>.incomplete` → `<etag>.ranges.incomplete`).
    pub fn beside(partial: &Path) -> Self {
        let name = partial.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = name.strip_suffix(".incomplete").unwrap_or(&name);
        ResumeRecord { path: partial.with_file_name(format!("{stem}.ranges.incomplete")) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What a partial file of `partial_len` bytes holds of a `size`-byte blob: the
    /// record's ranges when it has a valid one for this size, else the prefix
    /// `[0, partial_len)`. A record claiming bytes past the file's end is not trusted.
    pub fn load(&self, partial_len: u64, size: u64) -> RangeSet {
        let recorded = std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RecordFile>(&bytes).ok())
            .filter(|r| r.size == size && r.written.fits(size) && r.written.end() <= partial_len);
        match recorded {
            Some(record) => record.written,
            None if self.path.exists() => RangeSet::default(), // stale or damaged: start clean
            None => RangeSet::prefix(partial_len.min(size)),
        }
    }

    /// How many bytes the record says a partial file of `partial_len` bytes holds, when
    /// it has a readable record that fits the file (parts leave holes, so the file's
    /// length overstates what is kept).
    pub fn recorded_bytes(&self, partial_len: u64) -> Option<u64> {
        let record: RecordFile = serde_json::from_slice(&std::fs::read(&self.path).ok()?).ok()?;
        let fits = record.written.fits(record.size) && record.written.end() <= partial_len;
        fits.then(|| record.written.covered())
    }

    /// Replace the record atomically (a temp file in the same folder, then rename).
    pub fn save(&self, size: u64, written: &RangeSet) -> Result<()> {
        let dir = self.path.parent().expect("record has a parent");
        // The temp name ends in `.incomplete` too, so `rm` cleans one a kill left behind.
        let tmp = dir.join(format!(".{}.{}.incomplete", std::process::id(), unique()));
        let body = serde_json::to_vec(&RecordFile { size, written: written.clone() }).expect("plain data serializes");
        let write = || -> std::io::Result<()> {
            let mut file = super::partial::create_new_nofollow(&tmp)?;
            file.write_all(&body)?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io("write the resume record", &self.path, e)
        })
    }

    /// Forget the record (the blob is complete, or its partial file was dropped).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A per-process counter, so two saves of one process never share a temp name.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        let mut s = RangeSet::default();
        for &(a, b) in ranges {
            s.insert(a..b);
        }
        s
    }

    #[test]
    fn inserting_merges_touching_and_overlapping_ranges() {
        assert_eq!(set(&[(0, 10), (10, 20)]), RangeSet(vec![(0, 20)]));
        assert_eq!(set(&[(30, 40), (0, 10), (5, 12)]), RangeSet(vec![(0, 12), (30, 40)]));
        assert_eq!(set(&[(0, 5), (10, 15), (20, 25), (3, 22)]), RangeSet(vec![(0, 25)]));
        assert_eq!(set(&[(10, 20), (12, 14)]), RangeSet(vec![(10, 20)]));
        assert_eq!(set(&[(5, 5)]), RangeSet::default());
    }

    #[test]
    fn missing_runs_and_coverage() {
        let s = set(&[(10, 20), (30, 40)]);
        assert_eq!(s.missing(50), vec![0..10, 20..30, 40..50]);
        assert_eq!(s.missing(40), vec![0..10, 20..30]);
        assert_eq!(s.covered(), 20);
        assert_eq!(s.run_end(0), 0);
        assert_eq!(s.run_end(10), 20);
        assert_eq!(s.run_end(15), 20);
        assert_eq!(s.run_end(20), 20);
        assert!(RangeSet::prefix(7).missing(7).is_empty());
    }

    #[test]
    fn a_record_round_trips_and_a_stale_or_lying_one_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("abc.incomplete");
        let record = ResumeRecord::beside(&partial);
        assert_eq!(record.path(), dir.path().join("abc.ranges.incomplete"));

        assert_eq!(record.load(100, 1000), RangeSet::prefix(100), "no record: a prefix");
        let written = set(&[(0, 50), (500, 600)]);
        record.save(1000, &written).unwrap();
        assert_eq!(record.load(600, 1000), written);
        assert_eq!(record.load(599, 1000), RangeSet::default(), "claims more than the file holds");
        assert_eq!(record.load(600, 2000), RangeSet::default(), "for another size");
        std::fs::write(record.path(), b"{not json").unwrap();
        assert_eq!(record.load(600, 1000), RangeSet::default());
        record.remove();
        assert!(!record.path().exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
    }
}
