//! The models local-mlx offers, and the rule for accepting any other Hub repo.
//!
//! A model id *is* its Hugging Face repo id, so the catalog, the cache and the user's
//! settings all speak the same name and a custom model needs no registration: any
//! valid `org/name` is accepted. Sizes here are approximate, for the list and the
//! disk-space hint; the exact bytes come from the hub at download time.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The model selected when the user has not chosen one.
pub const DEFAULT_MODEL_ID: &str = "mlx-community/Qwen3-1.7B-4bit";

/// One model we can download and run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The id used everywhere: the Hub repo id.
    pub id: String,
    /// The Hub repo to download (same as `id`).
    pub repo: String,
    /// Branch, tag or commit to download.
    pub revision: String,
    pub display_name: String,
    pub description: String,
    /// Approximate download size in bytes (0 when unknown, for custom models).
    pub approx_size_bytes: u64,
    /// Approximate memory needed to run it, in bytes (0 when unknown).
    pub ram_bytes: u64,
    /// In our catalog (as opposed to a custom repo id).
    pub is_builtin: bool,
}

const GB: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;

struct Entry {
    repo: &'static str,
    name: &'static str,
    description: &'static str,
    size: u64,
    ram: u64,
}

const BUILTIN: &[Entry] = &[
    Entry {
        repo: "mlx-community/Qwen3-0.6B-4bit",
        name: "Qwen3 0.6B (4-bit)",
        description: "Fastest and lightest; fine for punctuation and filler words.",
        size: 335 * MB,
        ram: GB,
    },
    Entry {
        repo: DEFAULT_MODEL_ID,
        name: "Qwen3 1.7B (4-bit)",
        description: "Recommended: the best balance of speed and quality on any Apple Silicon Mac.",
        size: 940 * MB,
        ram: 2 * GB,
    },
    Entry {
        repo: "mlx-community/Qwen3-4B-4bit",
        name: "Qwen3 4B (4-bit)",
        description: "Strongest rewrites; slower, for Macs with 16 GB or more.",
        size: 2_260 * MB,
        ram: 4 * GB,
    },
];

/// The built-in catalog, default model included.
pub(crate) fn builtin_models() -> Vec<ModelSpec> {
    BUILTIN
        .iter()
        .map(|entry| ModelSpec {
            id: entry.repo.to_string(),
            repo: entry.repo.to_string(),
            revision: "main".to_string(),
            display_name: entry.name.to_string(),
            description: entry.description.to_string(),
            approx_size_bytes: entry.size,
            ram_bytes: entry.ram,
            is_builtin: true,
        })
        .collect()
}

/// The spec for `id`: a catalog entry, or a custom model when `id` is a valid repo id.
pub fn resolve(id: &str) -> Result<ModelSpec> {
    let id = id.trim();
    if let Some(spec) = builtin_models().into_iter().find(|spec| spec.id == id) {
        return Ok(spec);
    }
    if !id.contains('/') {
        // A bare word is much more likely a typo of a catalog name than a repo id.
        return Err(Error::UnknownModel { id: id.to_string() });
    }
    validate_repo_id(id)?;
    let name = id.rsplit('/').next().unwrap_or(id);
    Ok(ModelSpec {
        id: id.to_string(),
        repo: id.to_string(),
        revision: "main".to_string(),
        display_name: name.to_string(),
        description: format!("Custom model from the Hugging Face repo {id}."),
        approx_size_bytes: 0,
        ram_bytes: 0,
        is_builtin: false,
    })
}

/// The Hub's rules for a model repo id: `org/name`, each part 1–96 characters of
/// `[A-Za-z0-9_.-]`, not starting or ending with `-` or `.`, no `--` or `..`
/// (they would break the cache's `models--org--name` folder naming), no `.git` suffix.
pub(crate) fn validate_repo_id(id: &str) -> Result<()> {
    let fail = |reason: &str| Err(Error::InvalidRepoId { id: id.to_string(), reason: reason.to_string() });
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return fail("it must have exactly one '/'");
    }
    for part in parts {
        if part.is_empty() || part.len() > 96 {
            return fail("each part must be 1 to 96 characters");
        }
        if !part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return fail("it contains a character other than letters, digits, '-', '_' and '.'");
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return fail("a part starts or ends with '-' or '.'");
        }
        if part.contains("--") || part.contains("..") {
            return fail("'--' and '..' are not allowed");
        }
    }
    if id.ends_with(".git") {
        return fail("it must not end with '.git'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_in_the_catalog_with_lighter_and_stronger_choices() {
        let models = builtin_models();
        let default = models.iter().find(|m| m.id == DEFAULT_MODEL_ID).expect("default listed");
        assert!(default.approx_size_bytes > 900 * MB && default.approx_size_bytes < GB);
        assert!(models.iter().any(|m| m.id.contains("0.6B") && m.approx_size_bytes < default.approx_size_bytes));
        assert!(models.iter().any(|m| m.id.contains("4B") && m.ram_bytes > default.ram_bytes));
        assert!(models.iter().all(|m| m.revision == "main" && !m.description.is_empty()));
    }

    #[test]
    fn valid_custom_repo_ids_are_accepted() {
        for id in ["mlx-community/Llama-3.2-1B-Instruct-4bit", "a/b", "org_1/model.v2"] {
            let spec = resolve(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(!spec.is_builtin);
            assert_eq!(spec.repo, id);
        }
    }

    #[test]
    fn malformed_repo_ids_are_refused_with_the_reason() {
        for id in [
            "a/b/c",
            "/b",
            "a/",
            "a b/c",
            "a/../b",
            "a--b/c",
            "-a/b",
            "a/b.",
            "a/b.git",
            "a/é",
            "..%2f/x",
            &format!("a/{}", "x".repeat(97)),
        ] {
            let err = resolve(id).expect_err(id);
            assert_eq!(err.kind(), crate::ErrorKind::InvalidRepoId, "{id}: {err}");
            assert!(err.to_string().contains(id.trim()), "{err}");
        }
    }

    #[test]
    fn a_bare_unknown_name_is_an_unknown_model() {
        let err = resolve("qwen-large").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::UnknownModel);
        assert!(err.to_string().contains("local-mlx models"));
    }
}
