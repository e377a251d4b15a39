//! The repo index: which repos exist, their files, hashes and commit id.
//!
//! A repo is the folder `ROOT/<org>/<name>`; every file below it (nested folders allowed,
//! `.git` skipped) is a file of the repo's one branch `main`. [`RepoIndex::snapshot`]
//! walks the folder on every call, so tests may add or change repos while the hub runs,
//! and the commit id changes with them. Walking and `stat`-ing a model repo is cheap;
//! hashing is not (sha256 of 1 GiB takes seconds), so hashes are cached per file and
//! keyed by its size and mtime, and computed at most once even under concurrent requests.
//!
//! Hashes follow git and the Hub: a regular file's id is its git blob sha1; an LFS file's
//! content id is its sha256, and its git blob id is the sha1 of its LFS pointer text, so
//! only one pass over the bytes is needed whichever kind the file is.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha1::{Digest, Sha1};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// Files at least this large are stored in LFS, whatever their extension (the Hub's own rule
/// is 10 MiB for text; 1 MiB keeps test repos small while still exercising both paths).
pub const LFS_MIN_SIZE: u64 = 1024 * 1024;

/// Extensions that are always LFS, as in the `.gitattributes` of Hub model repos.
pub const LFS_EXTENSIONS: &[&str] = &["safetensors", "gguf", "bin", "npz"];

/// Whether a file of this path and size is served as an LFS file (302 to `/_lfs/...`).
pub fn is_lfs(path: &str, size: u64) -> bool {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    size >= LFS_MIN_SIZE || extension.is_some_and(|ext| LFS_EXTENSIONS.contains(&ext.as_str()))
}

/// One file of a repo at the current commit.
#[derive(Clone, Debug)]
pub struct RepoFile {
    /// Repo-relative path with `/` separators.
    pub path: String,
    pub abs_path: PathBuf,
    pub size: u64,
    /// The git blob sha1: of the content, or of the LFS pointer for LFS files.
    pub blob_oid: String,
    pub lfs: Option<LfsInfo>,
}

#[derive(Clone, Debug)]
pub struct LfsInfo {
    pub sha256: String,
    pub pointer_size: u64,
}

impl RepoFile {
    /// The id clients store the blob under: sha256 for LFS files, git sha1 otherwise.
    pub fn etag(&self) -> &str {
        self.lfs.as_ref().map_or(&self.blob_oid, |lfs| &lfs.sha256)
    }
}

/// A repo as it is now: its commit id and files, sorted by path.
#[derive(Debug)]
pub struct Snapshot {
    pub commit: String,
    pub files: BTreeMap<String, RepoFile>,
}

impl Snapshot {
    /// Whether `rev` names this snapshot: the branch `main` or the full commit sha.
    pub fn has_revision(&self, rev: &str) -> bool {
        matches!(rev, "main" | "refs/heads/main") || rev == self.commit
    }

    pub fn lfs_file(&self, sha256: &str) -> Option<&RepoFile> {
        self.files.values().find(|file| file.lfs.as_ref().is_some_and(|lfs| lfs.sha256 == sha256))
    }

    pub fn total_size(&self) -> u64 {
        self.files.values().map(|file| file.size).sum()
    }
}

/// What identifies a file's content cheaply, so a cached hash is reused only while valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

#[derive(Clone, Debug)]
enum ContentHash {
    GitSha1(String),
    Sha256(String),
}

type HashCell = Arc<OnceCell<ContentHash>>;

pub struct RepoIndex {
    root: PathBuf,
    hashes: Mutex<HashMap<PathBuf, (Stamp, HashCell)>>,
}

impl RepoIndex {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RepoIndex { root: root.into(), hashes: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repo `org/name` as it is on disk now, or `RepoNotFound`.
    pub async fn snapshot(&self, repo: &str) -> Result<Arc<Snapshot>> {
        let dir = self.repo_dir(repo)?;
        let listed = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || list_files(&dir)).await??
        };
        let mut files = BTreeMap::new();
        for (path, abs_path, stamp) in listed {
            let lfs = is_lfs(&path, stamp.size);
            let hash = self.content_hash(&abs_path, stamp, lfs).await?;
            let file = match hash {
                ContentHash::GitSha1(blob_oid) => {
                    RepoFile { path: path.clone(), abs_path, size: stamp.size, blob_oid, lfs: None }
                }
                ContentHash::Sha256(sha256) => {
                    let pointer = lfs_pointer(&sha256, stamp.size);
                    RepoFile {
                        path: path.clone(),
                        abs_path,
                        size: stamp.size,
                        blob_oid: git_blob_sha1(pointer.as_bytes()),
                        lfs: Some(LfsInfo { sha256, pointer_size: pointer.len() as u64 }),
                    }
                }
            };
            files.insert(path, file);
        }
        Ok(Arc::new(Snapshot { commit: commit_id(repo, &files), files }))
    }

    fn repo_dir(&self, repo: &str) -> Result<PathBuf> {
        let not_found = || Error::RepoNotFound { repo: repo.to_string() };
        let (org, name) = repo.split_once('/').ok_or_else(not_found)?;
        let plain = |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains(['/', '\\']);
        if !plain(org) || !plain(name) {
            return Err(not_found());
        }
        let dir = self.root.join(org).join(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(not_found())
        }
    }

    async fn content_hash(&self, abs_path: &Path, stamp: Stamp, lfs: bool) -> Result<ContentHash> {
        let cell = {
            let mut hashes = self.hashes.lock().expect("hash cache lock");
            match hashes.get(abs_path) {
                Some((cached, cell)) if *cached == stamp => cell.clone(),
                _ => {
                    let cell = HashCell::default();
                    hashes.insert(abs_path.to_path_buf(), (stamp, cell.clone()));
                    cell
                }
            }
        };
        let hash = cell
            .get_or_try_init(|| {
                let abs_path = abs_path.to_path_buf();
                async move { tokio::task::spawn_blocking(move || hash_file(&abs_path, stamp.size, lfs)).await? }
            })
            .await?;
        // The kind cached matches `lfs`: the key fixes the path and the stamp fixes the size.
        Ok(hash.clone())
    }
}

/// All files below `dir` as (repo path, absolute path, stamp), sorted by repo path.
fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf, Stamp)>> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((current, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| Error::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&current, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not representable in a Hub path
            };
            let abs_path = entry.path();
            // Follows symlinks, so a repo may link to a big file kept elsewhere.
            let meta = std::fs::metadata(&abs_path).map_err(|e| Error::io(&abs_path, e))?;
            let path = format!("{prefix}{name}");
            if meta.is_dir() {
                if name != ".git" {
                    pending.push((abs_path, format!("{path}/")));
                }
            } else if meta.is_file() {
                let stamp = Stamp { size: meta.len(), modified: meta.modified().ok() };
                out.push((path, abs_path, stamp));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn hash_file(abs_path: &Path, size: u64, lfs: bool) -> Result<ContentHash> {
    let mut file = std::fs::File::open(abs_path).map_err(|e| Error::io(abs_path, e))?;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    if !lfs {
        sha1.update(format!("blob {size}\0").as_bytes());
    }
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(abs_path, e))?;
        if n == 0 {
            break;
        }
        if lfs {
            sha256.update(&buf[..n]);
        } else {
            sha1.update(&buf[..n]);
        }
    }
    Ok(if lfs {
        ContentHash::Sha256(hex::encode(sha256.finalize()))
    } else {
        ContentHash::GitSha1(hex::encode(sha1.finalize()))
    })
}

/// The git blob id of `bytes`: sha1 of `"blob <len>\0"` followed by the bytes.
pub fn git_blob_sha1(bytes: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(format!("blob {}\0", bytes.len()).as_bytes());
    sha1.update(bytes);
    hex::encode(sha1.finalize())
}

/// The Git LFS pointer file that git stores in place of an LFS file.
fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// A stable 40-hex id over the repo id and every (path, blob id); any change to a file's
/// name or content changes it.
fn commit_id(repo: &str, files: &BTreeMap<String, RepoFile>) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(repo.as_bytes());
    for file in files.values() {
        sha1.update(b"\n");
        sha1.update(file.path.as_bytes());
        sha1.update(b"\0");
        sha1.update(file.blob_oid.as_bytes());
    }
    hex::encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git_blob_sha1(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn lfs_rule_is_by_extension_or_size() {
        assert!(is_lfs("model.safetensors", 10));
        assert!(is_lfs("sub/weights.GGUF", 10));
        assert!(is_lfs("tokenizer.json", LFS_MIN_SIZE));
        assert!(!is_lfs("tokenizer.json", LFS_MIN_SIZE - 1));
        assert!(!is_lfs("README", 0));
    }

    #[test]
    fn lfs_pointer_size_matches_the_hub() {
        // The Hub reports pointerSize 134 for a 9-digit file size.
        assert_eq!(lfs_pointer(&"0".repeat(64), 123_456_789).len(), 134);
    }
}
