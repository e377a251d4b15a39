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
//!
//! Decision: the record sits in a cache that may be shared or tampered with, so it is
//! read like hostile input: opened with `O_NOFOLLOW | O_NONBLOCK` (a link to
//! `/dev/zero` or a FIFO can neither balloon nor block a reader), only a regular file
//! of at most [`MAX_RECORD_BYTES`] with at most [`MAX_RECORD_RANGES`] ranges is read,
//! and written runs shorter than [`MIN_KEPT_RUN`] are dropped so the gaps around them
//! merge (each gap costs a request). Anything else is not a record: `pull` removes it
//! and starts the file clean, since without a record nothing proves which of the
//! partial file's bytes were written; `status` just does not count it.

use std::fs::OpenOptions;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::{write_atomic, WriteOptions};

/// Disjoint, sorted, merged half-open byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// `[0, len)`, or nothing for 0.
    pub(crate) fn prefix(len: u64) -> Self {
        let mut set = RangeSet::default();
        set.insert(0..len);
        set
    }

    /// Add `range`, merging with neighbours it touches or overlaps.
    pub(crate) fn insert(&mut self, range: Range<u64>) {
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
    pub(crate) fn covered(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The largest end of any range (0 when empty).
    pub(crate) fn end(&self) -> u64 {
        self.0.last().map_or(0, |&(_, e)| e)
    }

    /// The end of the run of covered bytes starting at `at` (`at` itself if not covered).
    pub(crate) fn run_end(&self, at: u64) -> u64 {
        let index = self.0.partition_point(|&(_, e)| e <= at);
        match self.0.get(index) {
            Some(&(s, e)) if s <= at => e,
            _ => at,
        }
    }

    /// The gaps in `[0, size)`, in order.
    pub(crate) fn missing(&self, size: u64) -> Vec<Range<u64>> {
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

    /// Without the runs shorter than `min`: fetching them again costs less than the
    /// extra request each gap around them would.
    fn without_runs_under(mut self, min: u64) -> Self {
        self.0.retain(|&(s, e)| e - s >= min);
        self
    }
}

/// The largest record read: a real one is a few hundred bytes (a prefix and the
/// parts in flight when a download stopped).
pub(crate) const MAX_RECORD_BYTES: u64 = 64 << 10;
/// The most ranges a record may name; a real one names about one per connection.
pub(crate) const MAX_RECORD_RANGES: usize = 1024;
/// Written runs shorter than this are fetched again rather than kept.
pub(crate) const MIN_KEPT_RUN: u64 = 64 << 10;

/// What [`ResumeRecord::load`] found beside the partial file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// No record: the partial file is a prefix.
    None,
    /// A valid record for this file.
    Record,
    /// Something that is not a valid record for this file (stale, damaged, a link,
    /// a folder, a FIFO, too large): nothing of the partial file counts.
    Invalid,
}

/// The on-disk record of a partial blob's written ranges.
#[derive(Debug, Clone)]
pub(crate) struct ResumeRecord {
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
    pub(crate) fn beside(partial: &Path) -> Self {
        let name = partial.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = name.strip_suffix(".incomplete").unwrap_or(&name);
        ResumeRecord { path: partial.with_file_name(format!("{stem}.ranges.incomplete")) }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What a partial file of `partial_len` bytes holds of a `size`-byte blob: the
    /// record's ranges when it has a valid one for this size, else the prefix
    /// `[0, partial_len)` when there is no record, else nothing. A record claiming
    /// bytes past the file's end is not trusted. Only reads.
    pub(crate) fn load(&self, partial_len: u64, size: u64) -> (RangeSet, Kept) {
        match self.read() {
            Ok(None) => (RangeSet::prefix(partial_len.min(size)), Kept::None),
            Ok(Some(record)) if record.size == size && record.written.end() <= partial_len => {
                (record.written, Kept::Record)
            }
            Ok(Some(_)) | Err(_) => (RangeSet::default(), Kept::Invalid),
        }
    }

    /// How many bytes the record says a partial file of `partial_len` bytes holds, when
    /// it has a valid record that fits the file (parts leave holes, so the file's
    /// length overstates what is kept).
    pub(crate) fn recorded_bytes(&self, partial_len: u64) -> Option<u64> {
        let record = self.read().ok()??;
        (record.written.end() <= partial_len).then(|| record.written.covered())
    }

    /// The record, `None` when there is none, or why what is there is not one.
    fn read(&self) -> std::result::Result<Option<RecordFile>, &'static str> {
        let file =
            match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&self.path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(_) => return Err("cannot be opened as a file (a link?)"),
            };
        let meta = file.metadata().map_err(|_| "cannot be read")?;
        if !meta.file_type().is_file() {
            return Err("not a regular file");
        }
        if meta.len() > MAX_RECORD_BYTES {
            return Err("too large");
        }
        let mut bytes = Vec::new();
        // Bounded again: the file may grow after the look at its length.
        file.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(|_| "cannot be read")?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err("too large");
        }
        let record: RecordFile = serde_json::from_slice(&bytes).map_err(|_| "not a record")?;
        if record.written.0.len() > MAX_RECORD_RANGES {
            return Err("too many ranges");
        }
        if !record.written.fits(record.size) {
            return Err("ranges out of order or past the end");
        }
        Ok(Some(RecordFile { size: record.size, written: record.written.without_runs_under(MIN_KEPT_RUN) }))
    }

    /// Replace the record atomically. Not synced: it is rewritten as parts land and a
    /// crash that loses it only costs a re-download; the temp name ends in
    /// `.incomplete` too, so `rm` cleans one a kill left behind.
    pub(crate) fn save(&self, size: u64, written: &RangeSet) -> Result<()> {
        let body = serde_json::to_vec(&RecordFile { size, written: written.clone() }).expect("plain data serializes");
        let options = WriteOptions::new(0o666).not_synced().temp_suffix(".incomplete");
        write_atomic(&self.path, &body, options).map_err(|e| Error::io("write the resume record", e.path, e.source))
    }

    /// Forget the record (the blob is complete, or its partial file was dropped);
    /// a folder planted in its place goes too (a link is removed, never followed).
    pub(crate) fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir_all(&self.path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&self.path);
            }
            Err(_) => {}
        }
    }
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

        let k = MIN_KEPT_RUN;
        assert_eq!(record.load(100, 1000), (RangeSet::prefix(100), Kept::None), "no record: a prefix");
        let written = set(&[(0, 5 * k), (10 * k, 12 * k)]);
        record.save(20 * k, &written).unwrap();
        assert_eq!(record.load(12 * k, 20 * k), (written.clone(), Kept::Record));
        assert_eq!(record.recorded_bytes(12 * k), Some(7 * k));
        let distrusted = (RangeSet::default(), Kept::Invalid);
        assert_eq!(record.load(12 * k - 1, 20 * k), distrusted, "claims more than the file holds");
        assert_eq!(record.load(12 * k, 30 * k), distrusted, "for another size");
        std::fs::write(record.path(), b"{not json").unwrap();
        assert_eq!(record.load(12 * k, 20 * k), distrusted);
        record.remove();
        assert!(!record.path().exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
    }

    #[test]
    fn short_runs_are_dropped_so_their_gaps_merge() {
        let dir = tempfile::tempdir().unwrap();
        let record = ResumeRecord::beside(&dir.path().join("abc.incomplete"));
        let k = MIN_KEPT_RUN;
        record.save(10 * k, &set(&[(0, 2 * k), (3 * k, 3 * k + 1), (4 * k, 4 * k + k / 2), (6 * k, 7 * k)])).unwrap();
        let (kept, _) = record.load(10 * k, 10 * k);
        assert_eq!(kept.missing(10 * k), vec![2 * k..6 * k, 7 * k..10 * k]);
    }

    #[test]
    fn what_is_not_a_record_is_not_read_and_removing_it_clears_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let record = ResumeRecord::beside(&dir.path().join("abc.incomplete"));
        let distrusted = (RangeSet::default(), Kept::Invalid);
        // A link to an endless file, a FIFO (would block a plain open), a folder.
        std::os::unix::fs::symlink("/dev/zero", record.path()).unwrap();
        assert_eq!(record.load(100, 100), distrusted);
        assert_eq!(record.recorded_bytes(100), None);
        record.remove();
        let fifo = std::ffi::CString::new(record.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(record.load(100, 100), distrusted);
        record.remove();
        std::fs::create_dir(record.path()).unwrap();
        assert_eq!(record.load(100, 100), distrusted);
        record.remove();
        assert!(!record.path().exists(), "a folder in its place is removed too");
        // Too large, and too many ranges in a small file.
        std::fs::write(record.path(), vec![b' '; MAX_RECORD_BYTES as usize + 1]).unwrap();
        assert_eq!(record.load(100, 100), distrusted);
        let many: Vec<(u64, u64)> = (0..MAX_RECORD_RANGES as u64 + 1).map(|i| (2 * i, 2 * i + 1)).collect();
        std::fs::write(
            record.path(),
            serde_json::to_vec(&serde_json::json!({"size": 1 << 20, "written": many})).unwrap(),
        )
        .unwrap();
        assert!(std::fs::metadata(record.path()).unwrap().len() <= MAX_RECORD_BYTES);
        assert_eq!(record.load(1 << 20, 1 << 20), distrusted);
        record.save(100, &set(&[(0, 100)])).unwrap();
        assert_eq!(record.recorded_bytes(100), Some(0), "a short run is not kept");
    }
}
