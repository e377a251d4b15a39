//! The Hugging Face cache on disk, modelled in types, byte-compatible with `huggingface_hub`.
//!
//! ```text
//! <cache>/models--org--name/blobs/<etag>                 file contents, named by hash
//!                          /blobs/<etag>.incomplete      a partial download (resumable)
//!                          /snapshots/<commit>/<file>    relative symlink ../../blobs/<etag>
//!                          /refs/<revision>              the commit the revision points at
//! <cache>/.locks/models--org--name/<etag>.lock           flock held while a blob is written
//! ```
//! [`CachedRepo`] is the only place that formats these paths. A snapshot counts as
//! downloaded only through its ref, and we write the ref last, so a crash can never
//! leave something that looks complete; models other tools put here are judged by
//! what their snapshot holds (every link resolves, weights and config are there).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The hub cache root (`HF_HUB_CACHE`).
#[derive(Debug, Clone)]
pub struct HubCache {
    root: PathBuf,
}

impl HubCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HubCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache entry of a model repo.
    pub fn repo(&self, repo_id: &str) -> CachedRepo {
        let folder = format!("models--{}", repo_id.replace('/', "--"));
        CachedRepo {
            repo_id: repo_id.to_string(),
            dir: self.root.join(&folder),
            locks_dir: self.root.join(".locks").join(&folder),
        }
    }
}

/// One repo's folder in the cache.
#[derive(Debug, Clone)]
pub struct CachedRepo {
    repo_id: String,
    dir: PathBuf,
    locks_dir: PathBuf,
}

/// What a delete removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeleteReport {
    pub snapshots_removed: usize,
    pub blobs_removed: usize,
    pub partial_files_removed: usize,
    pub bytes_freed: u64,
}

impl CachedRepo {
    pub fn repo_id(&self) -> &str {
        &self.repo_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    pub fn blob_path(&self, etag: &str) -> PathBuf {
        self.blobs_dir().join(etag)
    }

    /// The partial file `huggingface_hub` also uses, so either tool can see the other's bytes.
    pub fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.blobs_dir().join(format!("{etag}.incomplete"))
    }

    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    pub fn pointer_path(&self, commit: &str, file: &str) -> PathBuf {
        self.snapshot_dir(commit).join(file)
    }

    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.dir.join("refs").join(revision)
    }

    pub fn lock_path(&self, etag: &str) -> PathBuf {
        self.locks_dir.join(format!("{etag}.lock"))
    }

    /// The commit a revision points at, if the cache has its ref. A revision that is
    /// itself a full commit hash needs no ref (that is how `huggingface_hub` stores it).
    pub fn resolve_revision(&self, revision: &str) -> Option<String> {
        match fs::read_to_string(self.ref_path(revision)) {
            Ok(commit) => Some(commit.trim().to_string()).filter(|c| !c.is_empty()),
            Err(_) if is_commit_hash(revision) => Some(revision.to_string()),
            Err(_) => None,
        }
    }

    /// Point `revision` at `commit`, atomically (temp file + rename).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if is_commit_hash(revision) {
            return Ok(());
        }
        let path = self.ref_path(revision);
        let parent = path.parent().expect("ref has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let tmp = parent.join(format!(".{}.tmp{}", file_name(&path), std::process::id()));
        fs::write(&tmp, commit).map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("write", &path, e))
    }

    /// Link `snapshots/<commit>/<file>` to `blobs/<etag>` with a relative symlink, atomically.
    pub fn link_pointer(&self, commit: &str, file: &str, etag: &str) -> Result<()> {
        let pointer = self.pointer_path(commit, file);
        let parent = pointer.parent().expect("pointer has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let depth = file.split('/').count() + 1; // snapshots/<commit>/ plus the file's own folders
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        if fs::read_link(&pointer).is_ok_and(|existing| existing == target) {
            return Ok(());
        }
        let tmp = parent.join(format!(".{}.tmp{}", file_name(&pointer), std::process::id()));
        let _ = fs::remove_file(&tmp);
        symlink(&target, &tmp).map_err(|e| Error::io("create the link", &tmp, e))?;
        fs::rename(&tmp, &pointer).map_err(|e| Error::io("create the link", &pointer, e))
    }

    /// The snapshot folder of `revision` if it is completely downloaded.
    pub fn complete_snapshot(&self, revision: &str) -> Option<PathBuf> {
        let commit = self.resolve_revision(revision)?;
        let dir = self.snapshot_dir(&commit);
        (snapshot_is_complete(&dir) && self.damaged_files(&commit).is_empty()).then_some(dir)
    }

    /// Bytes of partial downloads (`*.incomplete`) lying in this repo's blobs.
    pub fn partial_bytes(&self) -> u64 {
        self.partial_files().iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.len()).sum()
    }

    fn partial_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.blobs_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "incomplete"))
            .collect()
    }

    /// Remove `revision`'s snapshot and ref, every partial file, and the blobs no other
    /// snapshot of this repo links to. The repo folder goes too once nothing is left.
    pub fn delete_revision(&self, revision: &str) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        let commit = self.resolve_revision(revision);
        let mut candidates = HashSet::new();
        if let Some(commit) = &commit {
            let snapshot = self.snapshot_dir(commit);
            if snapshot.exists() {
                candidates = linked_blobs(&snapshot);
                fs::remove_dir_all(&snapshot).map_err(|e| Error::io("delete", &snapshot, e))?;
                report.snapshots_removed = 1;
            }
        }
        remove_if_exists(&self.ref_path(revision))?;
        let still_used: HashSet<PathBuf> = self.all_snapshots().iter().flat_map(|s| linked_blobs(s)).collect();
        for blob in candidates.difference(&still_used) {
            if let Ok(meta) = fs::symlink_metadata(blob) {
                remove_if_exists(blob)?;
                report.blobs_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        for partial in self.partial_files() {
            report.bytes_freed += fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            remove_if_exists(&partial)?;
            report.partial_files_removed += 1;
        }
        if self.all_snapshots().is_empty() && !has_any_ref(&self.dir.join("refs")) {
            for dir in [&self.dir, &self.locks_dir] {
                if dir.exists() {
                    fs::remove_dir_all(dir).map_err(|e| Error::io("delete", dir, e))?;
                }
            }
        }
        Ok(report)
    }

    fn all_snapshots(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.join("snapshots"))
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    }
}

/// The integrity record: every file's size as the hub listed it, written when a
/// download completes (`.local-mlx/<commit>.sizes.json` in the repo's folder, which
/// `huggingface_hub` ignores), so a blob truncated or removed later is noticed with
/// one `stat` per file instead of hashing gigabytes.
impl CachedRepo {
    fn sizes_path(&self, commit: &str) -> PathBuf {
        self.dir.join(".local-mlx").join(format!("{commit}.sizes.json"))
    }

    /// Record the sizes of `commit`'s files, atomically (temp file + rename).
    pub fn write_sizes(&self, commit: &str, sizes: &BTreeMap<String, u64>) -> Result<()> {
        if !is_commit_hash(commit) {
            return Ok(()); // never a path built from an odd name
        }
        let path = self.sizes_path(commit);
        let parent = path.parent().expect("record has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let tmp = parent.join(format!(".{}.tmp{}", file_name(&path), std::process::id()));
        let body = serde_json::to_vec(sizes).expect("sizes serialize");
        fs::write(&tmp, body).map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("write", &path, e))
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

/// A 40-hex git commit id.
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Bytes of the files a snapshot's links point at.
pub fn snapshot_bytes(snapshot: &Path) -> u64 {
    walk(snapshot).iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// A snapshot is usable when every link resolves, it has a `config.json` and weights,
/// and every shard its safetensors index names is present.
fn snapshot_is_complete(dir: &Path) -> bool {
    let files = walk(dir);
    if files.is_empty() || files.iter().any(|f| fs::metadata(f).is_err()) {
        return false; // a dangling link: a blob was removed behind our back
    }
    let has = |name: &str| dir.join(name).is_file();
    let has_weights = files.iter().any(|f| f.extension().is_some_and(|e| e == "safetensors"));
    if !has("config.json") || !has_weights {
        return false;
    }
    match fs::read(dir.join("model.safetensors.index.json")) {
        Err(_) => true,
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|index| {
                let map = index.get("weight_map")?.as_object()?.clone();
                Some(map.values().filter_map(|v| v.as_str()).all(|shard| dir.join(shard).is_file()))
            })
            .unwrap_or(false),
    }
}

/// Every non-directory entry under `dir`, links included (not followed for folders).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}

/// The blob files a snapshot's links point at, as absolute-ish joined paths.
fn linked_blobs(snapshot: &Path) -> HashSet<PathBuf> {
    walk(snapshot)
        .into_iter()
        .filter_map(|link| {
            let target = fs::read_link(&link).ok()?;
            let resolved = link.parent()?.join(target);
            Some(normalize(&resolved))
        })
        .collect()
}

/// Resolve `..` lexically (the blob may already be gone, so no `canonicalize`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn has_any_ref(refs: &Path) -> bool {
    !walk(refs).is_empty()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("delete", path, e)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "local-mlx needs a Unix file system (MLX runs on macOS)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_snapshot(cache: &HubCache, repo: &str, commit: &str, files: &[(&str, &str, &[u8])]) -> CachedRepo {
        let cached = cache.repo(repo);
        fs::create_dir_all(cached.blobs_dir()).unwrap();
        for (name, etag, bytes) in files {
            fs::write(cached.blob_path(etag), bytes).unwrap();
            cached.link_pointer(commit, name, etag).unwrap();
        }
        cached.write_ref("main", commit).unwrap();
        cached
    }

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn paths_follow_the_huggingface_layout() {
        let cache = HubCache::new("/c");
        let repo = cache.repo("org/name");
        assert_eq!(repo.blob_path("abc"), PathBuf::from("/c/models--org--name/blobs/abc"));
        assert_eq!(repo.incomplete_path("abc"), PathBuf::from("/c/models--org--name/blobs/abc.incomplete"));
        assert_eq!(
            repo.pointer_path(C1, "a/b.json"),
            PathBuf::from(format!("/c/models--org--name/snapshots/{C1}/a/b.json"))
        );
        assert_eq!(repo.ref_path("main"), PathBuf::from("/c/models--org--name/refs/main"));
        assert_eq!(repo.lock_path("abc"), PathBuf::from("/c/.locks/models--org--name/abc.lock"));
    }

    #[test]
    fn pointers_are_relative_symlinks_into_blobs_at_any_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let repo =
            repo_with_snapshot(&cache, "o/n", C1, &[("config.json", "e1", b"{}"), ("sub/dir/x.json", "e2", b"[]")]);
        assert_eq!(fs::read_link(repo.pointer_path(C1, "config.json")).unwrap(), PathBuf::from("../../blobs/e1"));
        assert_eq!(
            fs::read_link(repo.pointer_path(C1, "sub/dir/x.json")).unwrap(),
            PathBuf::from("../../../../blobs/e2")
        );
        assert_eq!(fs::read(repo.pointer_path(C1, "sub/dir/x.json")).unwrap(), b"[]");
        assert_eq!(fs::read_to_string(repo.ref_path("main")).unwrap(), C1);
    }

    #[test]
    fn a_snapshot_is_complete_only_with_config_weights_and_no_dangling_link() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let repo = repo_with_snapshot(&cache, "o/n", C1, &[("config.json", "e1", b"{}")]);
        assert_eq!(repo.complete_snapshot("main"), None, "no weights yet");
        repo_with_snapshot(&cache, "o/n", C1, &[("model.safetensors", "w1", b"w")]);
        assert_eq!(repo.complete_snapshot("main"), Some(repo.snapshot_dir(C1)));
        fs::remove_file(repo.blob_path("w1")).unwrap();
        assert_eq!(repo.complete_snapshot("main"), None, "a blob deleted behind our back");
    }

    #[test]
    fn an_index_naming_a_missing_shard_is_incomplete() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let index = br#"{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}"#;
        let repo = repo_with_snapshot(
            &cache,
            "o/n",
            C1,
            &[
                ("config.json", "e1", b"{}"),
                ("model.safetensors.index.json", "e2", index),
                ("model-1.safetensors", "w1", b"w"),
            ],
        );
        assert_eq!(repo.complete_snapshot("main"), None);
    }

    #[test]
    fn delete_keeps_blobs_another_snapshot_uses_and_other_repos() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let repo = repo_with_snapshot(
            &cache,
            "o/n",
            C1,
            &[("config.json", "shared", b"{}"), ("model.safetensors", "w1", b"11")],
        );
        // An older revision kept by another tool shares config.json.
        repo.link_pointer(C2, "config.json", "shared").unwrap();
        fs::write(repo.incomplete_path("w9"), b"partial").unwrap();
        let other = repo_with_snapshot(
            &cache,
            "o/other",
            C1,
            &[("config.json", "shared", b"{}"), ("model.safetensors", "w1", b"11")],
        );

        let report = repo.delete_revision("main").unwrap();
        assert_eq!(
            report,
            DeleteReport { snapshots_removed: 1, blobs_removed: 1, partial_files_removed: 1, bytes_freed: 2 + 7 }
        );
        assert!(repo.blob_path("shared").exists());
        assert!(!repo.blob_path("w1").exists());
        assert!(!repo.ref_path("main").exists());
        assert!(other.complete_snapshot("main").is_some());

        // Removing the last snapshot removes the repo folder.
        fs::remove_dir_all(repo.snapshot_dir(C2)).unwrap();
        repo.delete_revision("main").unwrap();
        assert!(!repo.dir().exists());
    }

    #[test]
    fn a_truncated_or_missing_blob_makes_a_recorded_snapshot_incomplete() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let repo = repo_with_snapshot(
            &cache,
            "o/n",
            C1,
            &[("config.json", "e1", b"{}"), ("model.safetensors", "w1", b"weights")],
        );
        let sizes = BTreeMap::from([("config.json".to_string(), 2), ("model.safetensors".to_string(), 7)]);
        repo.write_sizes(C1, &sizes).unwrap();
        assert_eq!(repo.complete_snapshot("main"), Some(repo.snapshot_dir(C1)));

        fs::write(repo.blob_path("w1"), b"weig").unwrap();
        assert_eq!(repo.damaged_files(C1), ["model.safetensors"]);
        assert_eq!(repo.complete_snapshot("main"), None, "truncated");
        fs::remove_file(repo.blob_path("e1")).unwrap();
        assert_eq!(repo.damaged_files(C1), ["config.json", "model.safetensors"]);
    }
}
