//! The integrity record of a snapshot: every file's size, written when its download
//! completes and checked with one `stat` per file.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::{is_commit_hash, CachedRepo};
use crate::error::{Error, Result};
use crate::fs::{write_atomic, WriteOptions};

/// The integrity record: every file's size as the hub listed it, written when a
/// download completes (`.local-mlx/<commit>.sizes.json` in the repo's folder, which
/// `huggingface_hub` ignores), so a blob truncated or removed later is noticed with
/// one `stat` per file instead of hashing gigabytes.
impl CachedRepo {
    pub(super) fn sizes_path(&self, commit: &str) -> PathBuf {
        self.dir.join(".local-mlx").join(format!("{commit}.sizes.json"))
    }

    /// Record the sizes of `commit`'s files, atomically and durably (written just
    /// before the ref, which a crash must not leave without its record).
    pub fn write_sizes(&self, commit: &str, sizes: &BTreeMap<String, u64>) -> Result<()> {
        if !is_commit_hash(commit) {
            return Ok(()); // never a path built from an odd name
        }
        let path = self.sizes_path(commit);
        let parent = path.parent().expect("record has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let body = serde_json::to_vec(sizes).expect("sizes serialize");
        Ok(write_atomic(&path, &body, WriteOptions::new(0o666))?)
    }

    /// The files of `commit`'s snapshot that are missing or not the size recorded at
    /// download time; none when there is no record (a snapshot another tool wrote).
    pub fn damaged_files(&self, commit: &str) -> Vec<String> {
        if !is_commit_hash(commit) {
            return Vec::new();
        }
        let Ok(bytes) = fs::read(self.sizes_path(commit)) else { return Vec::new() };
        let Ok(sizes) = serde_json::from_slice::<BTreeMap<String, u64>>(&bytes) else {
            return Vec::new();
        };
        let snapshot = self.snapshot_dir(commit);
        sizes
            .into_iter()
            .filter(|(file, size)| fs::metadata(snapshot.join(file)).map_or(true, |m| m.len() != *size))
            .map(|(file, _)| file)
            .collect()
    }
}
