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
//!
//! The cache may be shared or tampered with, so nothing read from it is trusted as a
//! path: a ref must hold a 40-hex commit (anything else is a corrupt ref, never joined
//! onto a path), and deletion removes entries of this repo's folder and blobs directly
//! inside its own `blobs/`, unlinking every link without following it. Deletion and
//! use are serialized across processes by a flock on `.locks/models--org--name.lock`
//! ([`RepoLock`]).
//!
//! This file holds the naming and the refs; its submodules own the rest, one each:
//! deleting (`delete`), the partial downloads (`partials`), the size record (`sizes`),
//! reading a snapshot folder (`snapshot`) and the repo lock (`lock`).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::{write_atomic, WriteOptions};

mod delete;
mod lock;
mod partials;
mod sizes;
mod snapshot;

pub use delete::DeleteReport;
pub(crate) use lock::RepoLock;
pub(crate) use snapshot::snapshot_bytes;
use snapshot::snapshot_is_complete;

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

    /// The repo ids of every model folder in the cache (complete or not), sorted: the
    /// inverse of [`HubCache::repo`]'s naming, so models another process pulled are found.
    pub fn repo_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (org, repo) = name.strip_prefix("models--")?.split_once("--")?;
                Some(format!("{org}/{repo}"))
            })
            .collect();
        ids.sort();
        ids
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

    /// What `refs/<revision>` says. A revision that is itself a full commit hash needs
    /// no ref (that is how `huggingface_hub` stores it).
    pub fn read_ref(&self, revision: &str) -> RefState {
        // A ref is 40 bytes; reading a little more is enough to tell, and a ref that is
        // a link to an endless file (`/dev/zero`) cannot make us read forever.
        let mut head = Vec::new();
        let read = fs::File::open(self.ref_path(revision)).and_then(|f| f.take(MAX_REF_BYTES).read_to_end(&mut head));
        match read {
            Ok(_) => {
                let text = String::from_utf8_lossy(&head);
                let commit = text.trim();
                if is_commit_hash(commit) {
                    RefState::Commit(commit.to_ascii_lowercase())
                } else {
                    RefState::Corrupt(crate::error::escape_controls(commit))
                }
            }
            Err(_) if is_commit_hash(revision) => RefState::Commit(revision.to_ascii_lowercase()),
            Err(_) => RefState::Missing,
        }
    }

    /// Whether `revision` left a snapshot (complete or damaged) or a corrupt ref that
    /// [`Self::delete_revision`] would remove; partial downloads are counted apart.
    pub fn has_revision_files(&self, revision: &str) -> bool {
        match self.read_ref(revision) {
            RefState::Corrupt(_) => true,
            RefState::Commit(commit) => self.snapshot_dir(&commit).exists(),
            RefState::Missing => false,
        }
    }

    /// The commit a revision points at, if the cache has a valid ref for it.
    pub fn resolve_revision(&self, revision: &str) -> Option<String> {
        match self.read_ref(revision) {
            RefState::Commit(commit) => Some(commit),
            RefState::Missing | RefState::Corrupt(_) => None,
        }
    }

    /// The cross-process lock that keeps deletion away from downloads and generations.
    pub fn repo_lock_path(&self) -> PathBuf {
        let mut name = self.locks_dir.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Point `revision` at `commit`, atomically and durably: the ref is what says the
    /// snapshot is downloaded, so it reaches the disk before anyone is told so.
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if is_commit_hash(revision) {
            return Ok(());
        }
        let path = self.ref_path(revision);
        let parent = path.parent().expect("ref has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        Ok(write_atomic(&path, commit.as_bytes(), WriteOptions::new(0o666))?)
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
        // A snapshot folder that is a link to somewhere else is not ours to offer.
        let is_real_dir = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        (is_real_dir && snapshot_is_complete(&dir) && self.damaged_files(&commit).is_empty()).then_some(dir)
    }
}

/// What a ref file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefState {
    /// No ref: not downloaded through this revision.
    Missing,
    /// A valid 40-hex commit (lowercase).
    Commit(String),
    /// Anything else, escaped for printing: the cache entry is damaged or tampered with.
    Corrupt(String),
}

/// More than a ref ever holds (40 hex digits and maybe a newline).
const MAX_REF_BYTES: u64 = 256;

/// A 40-hex git commit id.
pub(crate) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
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
    use std::collections::BTreeMap;

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
    fn repo_ids_inverts_the_folder_naming_and_skips_other_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        for dir in ["models--org--name", "models--a--b.c-d_e", ".locks", "datasets--x--y", "models--noslash"] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        assert_eq!(cache.repo_ids(), vec!["a/b.c-d_e".to_string(), "org/name".to_string()]);
        assert_eq!(cache.repo("a/b.c-d_e").dir(), tmp.path().join("models--a--b.c-d_e"));
        assert!(HubCache::new(tmp.path().join("missing")).repo_ids().is_empty());
    }

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
    fn a_ref_is_a_commit_or_corrupt_and_is_never_read_past_a_few_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = HubCache::new(tmp.path()).repo("o/n");
        assert_eq!(repo.read_ref("main"), RefState::Missing);
        assert_eq!(repo.read_ref(C1), RefState::Commit(C1.to_string()), "a commit needs no ref");
        fs::create_dir_all(repo.ref_path("main").parent().unwrap()).unwrap();
        fs::write(repo.ref_path("main"), format!("{}\n", C2.to_uppercase())).unwrap();
        assert_eq!(repo.read_ref("main"), RefState::Commit(C2.to_string()));
        for hostile in ["/etc", "../../models--o--other", "", "\u{1b}[2J"] {
            fs::write(repo.ref_path("main"), hostile).unwrap();
            let RefState::Corrupt(said) = repo.read_ref("main") else { panic!("{hostile:?} is not a commit") };
            assert!(!said.chars().any(char::is_control), "{said:?}");
            assert_eq!(repo.resolve_revision("main"), None);
        }
        // A ref linked to an endless file is read a few bytes deep, not forever.
        fs::remove_file(repo.ref_path("main")).unwrap();
        symlink(Path::new("/dev/zero"), &repo.ref_path("main")).unwrap();
        assert!(matches!(repo.read_ref("main"), RefState::Corrupt(_)));
    }

    #[test]
    fn the_ref_and_sizes_record_go_through_the_atomic_writer_and_never_follow_a_planted_link() {
        // Before the shared writer both went through `fs::write` to a predictable
        // `.<name>.tmp<pid>`, unsynced, following a link planted at that name.
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        let repo = HubCache::new(tmp.path().join("cache")).repo("o/n");
        for path in [repo.ref_path("main"), repo.sizes_path(C1)] {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let old_temp = path.with_file_name(format!(".{}.tmp{}", file_name(&path), std::process::id()));
            symlink(&outside, &old_temp).unwrap();
        }
        repo.write_ref("main", C1).unwrap();
        repo.write_sizes(C1, &BTreeMap::from([("config.json".to_string(), 2)])).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert!(fs::symlink_metadata(repo.ref_path("main")).unwrap().is_file());
        assert_eq!(repo.read_ref("main"), RefState::Commit(C1.to_string()));
        assert_eq!(fs::read_to_string(repo.sizes_path(C1)).unwrap(), r#"{"config.json":2}"#);
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

    /// A download in parts leaves holes: what is kept is what its resume record names,
    /// not the partial file's length (which reaches the furthest part).
    #[test]
    fn partial_bytes_count_what_the_resume_record_names() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = HubCache::new(tmp.path()).repo("o/n");
        fs::create_dir_all(repo.blobs_dir()).unwrap();
        let partial = repo.incomplete_path("w1");
        let k = super::super::resume::MIN_KEPT_RUN;
        fs::File::create(&partial).unwrap().set_len(10 * k).unwrap();
        let mut written = super::super::resume::RangeSet::default();
        written.insert(0..2 * k);
        written.insert(5 * k..6 * k);
        let record = super::super::resume::ResumeRecord::beside(&partial);
        record.save(10 * k, &written).unwrap();
        assert_eq!(repo.partial_bytes(), 3 * k, "the recorded ranges, not the file's length");

        fs::write(repo.incomplete_path("w2"), b"prefix").unwrap();
        assert_eq!(repo.partial_bytes(), 3 * k + 6, "a partial without a record is its prefix");
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
