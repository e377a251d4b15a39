//! Which files of a repo we download, and the safety checks on the names the hub sends.
//!
//! The hub is not trusted with paths: a listing that names `../x`, an absolute path,
//! a backslash or two names that collide on a case-insensitive disk is refused before
//! anything is written, so nothing can land outside the cache. We take mlx-lm's own
//! download patterns and never `*.py`: local-mlx never runs code from a model repo.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::{Error, Result};

/// The patterns mlx-lm downloads (minus `*.py`), matched like Python's `fnmatch`.
pub(crate) const MLX_LM_PATTERNS: &[&str] =
    &["*.json", "model*.safetensors", "tokenizer.model", "*.tiktoken", "tiktoken.model", "*.txt", "*.jsonl", "*.jinja"];

/// How a file's bytes are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", content = "hex", rename_all = "snake_case")]
pub(crate) enum Digest {
    /// LFS files: sha256 of the contents (also the blob's name).
    Sha256(String),
    /// Regular git files: sha1 of `"blob <len>\0" + contents` (also the blob's name).
    GitSha1(String),
}

impl Digest {
    pub(crate) fn hex(&self) -> &str {
        match self {
            Digest::Sha256(hex) | Digest::GitSha1(hex) => hex,
        }
    }

    /// The algorithm's name, for messages.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            Digest::Sha256(_) => "sha256",
            Digest::GitSha1(_) => "git-sha1",
        }
    }
}

/// One file of a repo at a commit, as the hub describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RemoteFile {
    /// Path inside the repo, `/`-separated.
    pub path: String,
    pub size: u64,
    pub digest: Digest,
}

impl RemoteFile {
    /// The blob name in the cache: the same etag `huggingface_hub` uses.
    pub(crate) fn etag(&self) -> &str {
        self.digest.hex()
    }
}

/// A repo's files at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RepoListing {
    pub commit: String,
    pub files: Vec<RemoteFile>,
}

impl RepoListing {
    /// The bytes of every file. [`super::api::HubApi::listing`] refuses listings whose
    /// sizes overflow; saturating here keeps a hand-built listing from wrapping round
    /// to a small number that would pass the free-space check.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.files.iter().fold(0, |sum, f| sum.saturating_add(f.size))
    }
}

/// Whether mlx-lm would download this file.
pub(crate) fn is_wanted(path: &str) -> bool {
    !path.ends_with(".py") && MLX_LM_PATTERNS.iter().any(|pattern| fnmatch(pattern, path))
}

/// Python's `fnmatch` for the only wildcard our patterns use, `*` (which, as in
/// `fnmatch`, also matches `/`). Hand-written because a glob crate would be a
/// dependency for six lines.
fn fnmatch(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let pieces: Vec<&str> = parts.collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i == pieces.len() - 1 {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Refuse names that could escape the snapshot folder or collide with each other.
pub(crate) fn check_names(repo: &str, files: &[RemoteFile]) -> Result<()> {
    let unsafe_name = |path: &str, reason: &str| Error::UnsafeFileName {
        repo: repo.to_string(),
        // Escaped: the name is the hub's text and ends up on a terminal.
        path: crate::error::escape_controls(path),
        reason: reason.to_string(),
    };
    let mut seen = HashSet::new();
    for file in files {
        let path = file.path.as_str();
        if path.is_empty() || path.starts_with('/') {
            return Err(unsafe_name(path, "empty or absolute path"));
        }
        if path.contains('\\') || path.contains(':') || path.chars().any(char::is_control) {
            return Err(unsafe_name(path, "backslash, colon or a control character in the name"));
        }
        if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(unsafe_name(path, "'.', '..' or an empty path component"));
        }
        if !seen.insert(path.to_lowercase()) {
            return Err(unsafe_name(path, "listed twice (names differing only in case collide on macOS)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> RemoteFile {
        RemoteFile { path: path.to_string(), size: 1, digest: Digest::GitSha1("0".repeat(40)) }
    }

    #[test]
    fn mlx_lm_patterns_select_weights_tokenizers_and_configs_but_never_python() {
        for wanted in [
            "config.json",
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "tokenizer.model",
            "vocab.txt",
            "chat_template.jinja",
            "sub/dir/extra.json",
            "qwen.tiktoken",
        ] {
            assert!(is_wanted(wanted), "{wanted}");
        }
        for unwanted in [
            "modeling_qwen.py",
            "README.md",
            "weights.bin",
            "pytorch_model.bin",
            "consolidated.safetensors",
            ".gitattributes",
            "x.json.py",
        ] {
            assert!(!is_wanted(unwanted), "{unwanted}");
        }
    }

    #[test]
    fn fnmatch_star_spans_slashes_like_python() {
        assert!(fnmatch("*.json", "a/b.json"));
        assert!(fnmatch("model*.safetensors", "model.safetensors"));
        assert!(!fnmatch("model*.safetensors", "xmodel.safetensors"));
        assert!(fnmatch("tokenizer.model", "tokenizer.model"));
        assert!(!fnmatch("tokenizer.model", "tokenizer.modelx"));
    }

    #[test]
    fn names_that_escape_or_collide_are_refused() {
        for bad in [
            vec!["../x.json"],
            vec!["/etc/passwd.json"],
            vec!["a\\b.json"],
            vec!["a/./b.json"],
            vec!["a//b.json"],
            vec!["c:x.json"],
            vec!["a\u{1b}[2Jb.json"],
            vec!["nul\0.json"],
            vec!["Config.json", "config.json"],
            vec!["x.json", "x.json"],
        ] {
            let files: Vec<RemoteFile> = bad.iter().map(|p| file(p)).collect();
            let err = check_names("o/n", &files).expect_err(&format!("{bad:?}"));
            assert_eq!(err.kind(), crate::ErrorKind::UnsafeFileName);
        }
        check_names("o/n", &[file("config.json"), file("sub/tokenizer.json")]).unwrap();
    }
}
