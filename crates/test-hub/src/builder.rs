//! [`RepoBuilder`]: writes a repo folder for the hub in a line or two of test code.
//!
//! Big files for benchmarks come from [`pattern`], a deterministic pseudo-random byte
//! stream written chunk by chunk, so a 1 GiB file needs neither 1 GiB of memory nor a
//! fixture on disk; random bytes also keep compression or dedup from flattering a result.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

enum Content {
    Bytes(Vec<u8>),
    Pattern { len: u64, seed: u64 },
}

/// Builds `root/<org>/<name>/...`. Files are added or overwritten; others are left alone,
/// so calling it again with a changed file makes a new commit of the same repo.
pub struct RepoBuilder {
    root: PathBuf,
    repo: String,
    files: Vec<(String, Content)>,
}

impl RepoBuilder {
    /// `repo` is `org/name`.
    pub fn new(root: impl AsRef<Path>, repo: &str) -> Self {
        RepoBuilder { root: root.as_ref().to_path_buf(), repo: repo.to_string(), files: Vec::new() }
    }

    /// A file with these bytes; `path` is repo-relative with `/` separators.
    pub fn file(mut self, path: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.files.push((path.to_string(), Content::Bytes(bytes.as_ref().to_vec())));
        self
    }

    /// A file of `len` bytes of [`pattern`]`(seed)`, written without holding it in memory.
    pub fn pattern_file(mut self, path: &str, len: u64, seed: u64) -> Self {
        self.files.push((path.to_string(), Content::Pattern { len, seed }));
        self
    }

    /// Writes the files; returns the repo folder.
    pub fn build(self) -> Result<PathBuf> {
        let invalid =
            |what: &str| Error::io(&self.root, std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string()));
        let parts: Vec<&str> = self.repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty() || *p == "..") {
            return Err(invalid(&format!("repo id {:?} is not org/name", self.repo)));
        }
        let dir = self.root.join(parts[0]).join(parts[1]);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for (path, content) in &self.files {
            let relative = Path::new(path);
            if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(invalid(&format!("file path {path:?} leaves the repo")));
            }
            let abs_path = dir.join(relative);
            if let Some(parent) = abs_path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            write_file(&abs_path, content).map_err(|e| Error::io(&abs_path, e))?;
        }
        Ok(dir)
    }
}

fn write_file(path: &Path, content: &Content) -> std::io::Result<()> {
    match content {
        Content::Bytes(bytes) => std::fs::write(path, bytes),
        Content::Pattern { len, seed } => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            let mut stream = Pattern::new(*seed);
            let mut left = *len;
            let mut chunk = vec![0u8; 1024 * 1024];
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.fill(&mut chunk[..n]);
                out.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            out.flush()
        }
    }
}

/// `len` bytes of the deterministic pseudo-random stream `seed` (what
/// [`RepoBuilder::pattern_file`] writes).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    Pattern::new(seed).fill(&mut bytes);
    bytes
}

/// splitmix64, 8 bytes per step; `fill` continues the stream across calls, so the output
/// does not depend on chunk boundaries as long as chunks are multiples of 8 bytes.
struct Pattern {
    state: u64,
}

impl Pattern {
    fn new(seed: u64) -> Self {
        Pattern { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for block in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            block.copy_from_slice(&word[..block.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_files_match_pattern() {
        let root = tempfile::tempdir().unwrap();
        let dir = RepoBuilder::new(root.path(), "org/name")
            .pattern_file("a/big.bin", 3 * 1024 * 1024 + 5, 7)
            .build()
            .unwrap();
        let written = std::fs::read(dir.join("a/big.bin")).unwrap();
        assert_eq!(written, pattern(3 * 1024 * 1024 + 5, 7));
    }

    #[test]
    fn paths_leaving_the_repo_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let result = RepoBuilder::new(root.path(), "org/name").file("../escape", b"x").build();
        assert!(result.is_err());
    }
}
