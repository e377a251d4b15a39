//! The partial file of one blob: opened safely, written at offsets by several parts,
//! its written ranges kept in memory and in the [`ResumeRecord`], moved into place.
//!
//! [`PartialBlob`] is shared by the parts of one file and by the hasher that follows
//! them. Writes are positional (`pwrite`), so parts never share a file cursor, and a
//! range counts as written only after its `pwrite` returned: what the hasher reads
//! and what the record claims is always on disk (in the page cache, which survives
//! the process being killed).
//!
//! Decision: the cache may be shared or tampered with, so `<etag>.incomplete` is
//! opened with `O_NOFOLLOW` (a symlink planted there must never make us write through
//! it into some other file), and what the open handle is (`fstat`) decides whether it
//! is written through: a regular file of ours with one name. Anything else (a FIFO, a
//! folder, another user's file, or a hard link, which `O_NOFOLLOW` does not stop and
//! macOS has no `protected_hardlinks` against) is unlinked by that name and a fresh
//! partial created in its place, so the file it shares an inode with keeps its bytes.
//! The handle is checked again before the rename, so only the file we wrote, still
//! with one name, becomes `blobs/<etag>`.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::resume::{Kept, RangeSet, ResumeRecord};
use super::verify::Hasher;
use crate::error::{Error, Result};

/// The record is saved at most this often while bytes flow (and always when a part
/// stops). At 8 parts × 20 MiB/s that bounds what a SIGKILL loses to ~1.6 MiB.
const SAVE_EVERY: Duration = Duration::from_millis(10);

/// A partial blob being written.
#[derive(Debug)]
pub(crate) struct PartialBlob {
    file: File,
    path: PathBuf,
    size: u64,
    record: ResumeRecord,
    state: Mutex<Written>,
    /// Woken whenever more bytes are on disk (the in-order hasher waits on it).
    pub(crate) grown: Notify,
    /// The in-order hash while one runs: bytes written at its frontier are hashed
    /// from memory by the writer, the rest read back by the hasher.
    frontier: Mutex<Option<Frontier>>,
}

#[derive(Debug)]
struct Written {
    ranges: RangeSet,
    /// Whether the record is kept: once parts write at several offsets, or while a
    /// record from an earlier run still describes holes. One stream appending to a
    /// prefix needs none (the file's length says it all), as before parts existed.
    recording: bool,
    /// `None` until the first save, so the first write is always recorded at once.
    saved_at: Option<Instant>,
    dirty: bool,
}

impl PartialBlob {
    /// Open (or create) `path` for a `size`-byte blob, with what it already holds.
    pub(crate) fn open(path: &Path, size: u64) -> Result<Self> {
        let (file, fresh) = open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io("read", path, e))?.len();
        let record = ResumeRecord::beside(path);
        let (mut ranges, mut kept) = record.load(len, size);
        if fresh || kept == Kept::Invalid {
            // A record of a file set aside, or one that is not a record (a link, a
            // folder, a FIFO, too big, too many ranges): dropped, so no later save or
            // read trips on it.
            record.remove();
            kept = Kept::Invalid;
        }
        if len > size || (ranges.covered() == 0 && len > 0) {
            // Longer than the real file, or a record that does not vouch for it: start clean.
            file.set_len(0).map_err(|e| Error::io("truncate", path, e))?;
            ranges = RangeSet::default();
        }
        let recording = kept == Kept::Record;
        Ok(PartialBlob {
            file,
            path: path.to_path_buf(),
            size,
            record,
            state: Mutex::new(Written { ranges, recording, saved_at: None, dirty: true }),
            grown: Notify::new(),
            frontier: Mutex::new(None),
        })
    }

    /// Parts are about to write at several offsets: keep the record from now on,
    /// starting before their first byte, so the file is never holey without a record
    /// that says which bytes count.
    pub(crate) fn record_parts(&self) -> Result<()> {
        let mut state = self.lock();
        state.recording = true;
        self.save(&mut state)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes on disk that count.
    pub(crate) fn covered(&self) -> u64 {
        self.lock().ranges.covered()
    }

    /// What is still to fetch, in file order.
    pub(crate) fn missing(&self) -> Vec<Range<u64>> {
        self.lock().ranges.missing(self.size)
    }

    /// The end of the written run starting at `at`.
    pub(crate) fn run_end(&self, at: u64) -> u64 {
        self.lock().ranges.run_end(at)
    }

    /// Write `bytes` at `offset` (blocking), then count them as written and save the
    /// record if it is due.
    pub(crate) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<()> {
        self.file.write_all_at(bytes, offset).map_err(|e| Error::io("write", &self.path, e))?;
        // Before the range counts as written, so the hasher never reads it back too.
        self.offer_to_hash(bytes, offset);
        let mut state = self.lock();
        state.ranges.insert(offset..offset + bytes.len() as u64);
        state.dirty = true;
        if state.recording && state.saved_at.is_none_or(|at| at.elapsed() >= SAVE_EVERY) {
            self.save(&mut state)?;
        }
        drop(state);
        self.grown.notify_waiters();
        Ok(())
    }

    /// Save the record now if anything changed since the last save.
    pub(crate) fn save_record(&self) -> Result<()> {
        let mut state = self.lock();
        if state.recording && state.dirty {
            self.save(&mut state)?;
        }
        Ok(())
    }

    /// Read `[offset, offset + buffer.len())` (blocking).
    pub(crate) fn read_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buffer, offset).map_err(|e| Error::io("read", &self.path, e))
    }

    /// Start hashing in order from byte 0.
    pub(crate) fn begin_hash(&self, hasher: Hasher) {
        *self.frontier.lock().expect("frontier poisoned") = Some(Frontier { hasher, at: 0 });
    }

    /// How far the in-order hash has come.
    pub(crate) fn hashed_to(&self) -> u64 {
        self.frontier.lock().expect("frontier poisoned").as_ref().map_or(0, |f| f.at)
    }

    /// Hash whatever part of `bytes` (at `offset`) extends the frontier.
    pub(crate) fn offer_to_hash(&self, bytes: &[u8], offset: u64) {
        let mut frontier = self.frontier.lock().expect("frontier poisoned");
        let Some(f) = frontier.as_mut() else { return };
        let end = offset + bytes.len() as u64;
        if offset <= f.at && end > f.at {
            f.hasher.update(&bytes[(f.at - offset) as usize..]);
            f.at = end;
        }
    }

    /// The finished hash (hex), once the frontier reached the end.
    pub(crate) fn finish_hash(&self) -> Option<String> {
        self.frontier.lock().expect("frontier poisoned").take().map(|f| f.hasher.finish())
    }

    /// Forget every byte (the server ignored `Range`: the file starts over).
    pub(crate) fn restart(&self) -> Result<()> {
        let mut state = self.lock();
        self.file.set_len(0).map_err(|e| Error::io("truncate", &self.path, e))?;
        state.ranges = RangeSet::default();
        // From zero in one stream: the file's length is the record again.
        state.recording = false;
        self.record.remove();
        Ok(())
    }

    /// Flush to disk, check the partial file is still the regular file we wrote, and
    /// rename it to `blob`. The record goes with it.
    pub(crate) fn move_into_place(self, blob: &Path) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("write", &self.path, e))?;
        let ours = self.file.metadata().map_err(|e| Error::io("read", &self.path, e))?;
        if let Some(why) = untrusted(&ours) {
            // A link added while it downloaded would make the blob another file too.
            return Err(Error::io(
                "move into place",
                &self.path,
                io::Error::other(format!("the partial file became {why} while it downloaded")),
            ));
        }
        let there = std::fs::symlink_metadata(&self.path).map_err(|e| Error::io("read", &self.path, e))?;
        if !there.file_type().is_file() || there.ino() != ours.ino() || there.dev() != ours.dev() {
            return Err(Error::io(
                "move into place",
                &self.path,
                io::Error::other("the partial file was replaced by something else while it downloaded"),
            ));
        }
        std::fs::rename(&self.path, blob).map_err(|e| Error::io("move into place", blob, e))?;
        self.record.remove();
        Ok(())
    }

    /// Drop the partial file and its record (a bad copy is never kept).
    pub(crate) fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
        self.record.remove();
    }

    fn save(&self, state: &mut Written) -> Result<()> {
        self.record.save(self.size, &state.ranges)?;
        state.saved_at = Some(Instant::now());
        state.dirty = false;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.state.lock().expect("partial blob state poisoned")
    }
}

/// How far the hash has read the partial file, in order.
#[derive(Debug)]
struct Frontier {
    hasher: Hasher,
    /// Every byte before this is hashed.
    at: u64,
}

/// Open `path` read-write without following a link, creating it if absent; `true`
/// with the file when it is a fresh one. Whatever is there and is not ours to write
/// through ([`untrusted`]) is unlinked by that name first, never written.
fn open_regular(path: &Path) -> Result<(File, bool)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            tracing::warn!(path = %path.display(), kind = ?meta.file_type(), "replacing a partial file that is not a regular file");
            let removed =
                if meta.file_type().is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
            removed.map_err(|e| Error::io("replace the non-regular partial file", path, e))?;
        }
        _ => {}
    }
    // O_NOFOLLOW: if a link appears between the check above and this open, the open
    // fails (ELOOP) instead of writing through it. O_NONBLOCK: a FIFO planted in that
    // window cannot block the open; it has no effect on regular files.
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let why = match opened {
        Ok(file) => {
            // The handle's own metadata: what we would write through, whatever the name
            // points at by now.
            let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
            match untrusted(&meta) {
                None => return Ok((file, false)),
                Some(why) => why,
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => "a symbolic link",
        Err(e) => return Err(Error::io("open", path, e)),
    };
    tracing::warn!(path = %path.display(), why, "setting aside a partial file that is not ours to write; starting a fresh one");
    // Unlinking the name leaves whatever file shared it (a hard link's other name) as it was.
    std::fs::remove_file(path).map_err(|e| Error::io("set aside the partial file", path, e))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if let Some(why) = untrusted(&meta) {
        return Err(Error::io("create", path, io::Error::other(format!("the new partial file is {why}"))));
    }
    Ok((file, true))
}

/// Why a partial file (its handle's metadata) must not be written through, or `None`
/// when it is a regular file of ours with no other name.
fn untrusted(meta: &std::fs::Metadata) -> Option<&'static str> {
    if !meta.file_type().is_file() {
        Some("not a regular file")
    } else if meta.nlink() > 1 {
        Some("a hard link to another file")
    } else if meta.uid() != effective_uid() {
        Some("another user's file")
    } else {
        None
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_partial_file_is_replaced_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let partial = dir.path().join("e.incomplete");
        std::os::unix::fs::symlink(&victim, &partial).unwrap();

        let blob = PartialBlob::open(&partial, 4).unwrap();
        blob.write_at(b"data", 0).unwrap();
        blob.move_into_place(&dir.path().join("e")).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(dir.path().join("e")).unwrap().file_type().is_file());
        assert_eq!(std::fs::read(dir.path().join("e")).unwrap(), b"data");
    }

    #[test]
    fn a_partial_file_swapped_for_a_link_is_not_moved_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        let blob = PartialBlob::open(&partial, 4).unwrap();
        blob.write_at(b"data", 0).unwrap();
        std::fs::remove_file(&partial).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &partial).unwrap();
        assert!(blob.move_into_place(&dir.path().join("e")).is_err());
        assert!(!dir.path().join("e").exists());
    }

    #[test]
    fn written_ranges_reach_the_record_and_a_reopen_resumes_from_them() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        let run = super::super::resume::MIN_KEPT_RUN;
        let blob = PartialBlob::open(&partial, 10 * run).unwrap();
        blob.record_parts().unwrap();
        blob.write_at(&vec![1; run as usize], 5 * run).unwrap();
        blob.write_at(&vec![2; run as usize], 0).unwrap();
        blob.save_record().unwrap();
        drop(blob);

        let again = PartialBlob::open(&partial, 10 * run).unwrap();
        assert_eq!(again.missing(), vec![run..5 * run, 6 * run..10 * run]);
        assert_eq!(again.covered(), 2 * run);
    }

    #[test]
    fn a_partial_file_with_another_name_is_set_aside_and_the_other_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let partial = dir.path().join("e.incomplete");
        std::fs::hard_link(&victim, &partial).unwrap();

        let blob = PartialBlob::open(&partial, 4).unwrap();
        assert_eq!(blob.covered(), 0, "nothing of another file counts");
        blob.write_at(b"data", 0).unwrap();
        blob.move_into_place(&dir.path().join("e")).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
        assert_eq!(std::fs::read(dir.path().join("e")).unwrap(), b"data");
    }

    #[test]
    fn a_partial_file_that_gains_a_hard_link_is_not_moved_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        let blob = PartialBlob::open(&partial, 4).unwrap();
        blob.write_at(b"data", 0).unwrap();
        std::fs::hard_link(&partial, dir.path().join("elsewhere")).unwrap();
        let err = blob.move_into_place(&dir.path().join("e")).unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
        assert!(!dir.path().join("e").exists());
    }

    #[test]
    fn another_users_partial_file_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        std::fs::write(&partial, b"theirs").unwrap();
        if effective_uid() != 0 {
            // Only root can give a file away; elsewhere the case cannot be set up.
            return;
        }
        std::os::unix::fs::chown(&partial, Some(65534), None).unwrap();
        let blob = PartialBlob::open(&partial, 4).unwrap();
        assert_eq!(blob.covered(), 0);
        assert_eq!(std::fs::metadata(&partial).unwrap().uid(), 0, "a fresh file of ours");
    }

    #[test]
    fn one_stream_keeps_no_record_and_resumes_from_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("e.incomplete");
        let blob = PartialBlob::open(&partial, 100).unwrap();
        blob.write_at(&[1; 30], 0).unwrap();
        blob.save_record().unwrap();
        assert!(!ResumeRecord::beside(&partial).path().exists());
        drop(blob);
        assert_eq!(PartialBlob::open(&partial, 100).unwrap().missing(), vec![30..100]);
    }
}
