//! Deleting a repo's revision or its whole entry from the cache: only this repo's own
//! entries go (a link is unlinked, never followed; a blob goes only from our own
//! `blobs/` and only when no other snapshot links to it), counted in a [`DeleteReport`].

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::partials::regular_file_len;
use super::snapshot::{linked_targets, normalize, walk};
use super::{CachedRepo, RefState};
use crate::error::{Error, Result};

/// What a delete removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeleteReport {
    pub snapshots_removed: usize,
    pub blobs_removed: usize,
    pub partial_files_removed: usize,
    pub bytes_freed: u64,
}

impl CachedRepo {
    /// Remove `revision`'s snapshot and ref, every partial file, and the blobs no other
    /// snapshot of this repo links to. The repo folder goes too once nothing is left.
    ///
    /// Only this repo's own entries are removed: a snapshot link is unlinked, and its
    /// target is removed only when it is a blob directly inside this repo's `blobs/`;
    /// a link elsewhere (absolute, climbing out, another model's blob) leaves its
    /// target alone. A corrupt ref is removed as a file, never followed as a path.
    pub fn delete_revision(&self, revision: &str) -> Result<DeleteReport> {
        if let RefState::Corrupt(_) = self.read_ref(revision) {
            // Which snapshot and blobs the revision had is unknown: the whole entry goes.
            return self.delete_all();
        }
        let mut report = DeleteReport::default();
        let mut candidates = HashSet::new();
        if let Some(commit) = self.resolve_revision(revision) {
            let snapshot = self.snapshot_dir(&commit);
            match fs::symlink_metadata(&snapshot) {
                Ok(meta) if meta.is_dir() => {
                    candidates = self.own_blobs(&snapshot);
                    fs::remove_dir_all(&snapshot).map_err(|e| Error::io("delete", &snapshot, e))?;
                    report.snapshots_removed = 1;
                }
                // A snapshot folder that is a link: unlink it, never walk into it.
                Ok(_) => remove_if_exists(&snapshot)?,
                Err(_) => {}
            }
        }
        remove_if_exists(&self.ref_path(revision))?;
        let still_used: HashSet<PathBuf> = self.all_snapshots().iter().flat_map(|s| self.own_blobs(s)).collect();
        for blob in candidates.difference(&still_used) {
            if let Ok(meta) = fs::symlink_metadata(blob) {
                remove_if_exists(blob)?;
                report.blobs_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        for partial in self.partial_files() {
            report.bytes_freed += regular_file_len(&partial);
            remove_if_exists(&partial)?;
            report.partial_files_removed += 1;
        }
        if self.all_snapshots().is_empty() && !has_any_ref(&self.dir.join("refs")) {
            self.remove_folders()?;
        }
        Ok(report)
    }

    /// Remove this repo's whole folder (every snapshot, blob, ref and partial file) and
    /// its blob locks, counting what goes. Nothing is followed out of the folder: a
    /// repo folder that is a link is unlinked, and links inside are unlinked.
    pub fn delete_all(&self) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        if fs::symlink_metadata(&self.dir).is_ok_and(|m| m.is_dir()) {
            report.snapshots_removed = self.all_snapshots().len();
            let entries = fs::read_dir(self.blobs_dir()).into_iter().flatten().flatten();
            for entry in entries.filter(|e| e.file_type().is_ok_and(|t| t.is_file())) {
                let path = entry.path();
                report.bytes_freed += regular_file_len(&path);
                if path.extension().is_some_and(|ext| ext == "incomplete") {
                    report.partial_files_removed += 1;
                } else {
                    report.blobs_removed += 1;
                }
            }
        }
        self.remove_folders()?;
        Ok(report)
    }

    fn remove_folders(&self) -> Result<()> {
        for dir in [&self.dir, &self.locks_dir] {
            match fs::symlink_metadata(dir) {
                // `remove_dir_all` unlinks links inside without following them.
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(dir).map_err(|e| Error::io("delete", dir, e))?,
                Ok(_) => remove_if_exists(dir)?,
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// The blobs of this repo a snapshot's links point at: only targets directly inside
    /// our own `blobs/` count; anything else a link names is none of our business.
    fn own_blobs(&self, snapshot: &Path) -> HashSet<PathBuf> {
        let blobs = normalize(&self.blobs_dir());
        linked_targets(snapshot).into_iter().filter(|target| target.parent() == Some(blobs.as_path())).collect()
    }

    /// The real snapshot folders (a link posing as one is not followed).
    fn all_snapshots(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.join("snapshots"))
            .map(|entries| {
                entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
            })
            .unwrap_or_default()
    }
}

fn has_any_ref(refs: &Path) -> bool {
    !walk(refs).is_empty()
}

/// Remove what is at `path`: a link or a file is unlinked, a folder planted where a
/// file belongs (`refs/main/`, `<etag>.incomplete/`) removed with its contents.
pub(super) fn remove_if_exists(path: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        _ => fs::remove_file(path),
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("delete", path, e)),
    }
}
