//! The partial downloads lying in a repo's `blobs/` (`*.incomplete`): which they are
//! and how many bytes they hold, counted by what their resume record names.

use std::fs;
use std::path::{Path, PathBuf};

use super::CachedRepo;

impl CachedRepo {
    /// Bytes of partial downloads (`*.incomplete`) lying in this repo's blobs (regular
    /// files only: a link is not followed to count someone else's file).
    pub fn partial_bytes(&self) -> u64 {
        let blobs = self.partial_files().into_iter().filter(|p| !is_download_bookkeeping(p));
        blobs
            .map(|partial| {
                let len = regular_file_len(&partial);
                crate::hub::resume::ResumeRecord::beside(&partial).recorded_bytes(len).unwrap_or(len)
            })
            .sum()
    }

    pub(super) fn partial_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.blobs_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "incomplete"))
            .collect()
    }
}

/// A resume record (`<etag>.ranges.incomplete`) or a temp file (a hidden name),
/// not a partial blob.
pub(super) fn is_download_bookkeeping(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.ends_with(".ranges.incomplete") || name.starts_with('.')
}

/// The length of a regular file; 0 for anything else (a link is not followed).
pub(super) fn regular_file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).ok().filter(|m| m.is_file()).map_or(0, |m| m.len())
}
