//! Where the hub and the cache are: `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`,
//! `HF_HUB_OFFLINE`, `HF_TOKEN`, read the way `huggingface_hub` reads them.
//!
//! Reading the environment happens once, here, into a plain struct; everything else
//! takes a `HubConfig`, so tests build one by hand instead of mutating process env.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The real Hub.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Hub endpoint, cache location, credentials and download tuning.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Base URL without a trailing slash.
    pub endpoint: String,
    /// The hub cache folder (holds `models--org--name`).
    pub cache_dir: PathBuf,
    /// Never touch the network; only the cache counts.
    pub offline: bool,
    /// Bearer token for private or gated repos.
    pub token: Option<String>,
    /// No bytes for this long aborts an attempt (30 s by default): a file body, and
    /// also a metadata answer that does not start or stops coming.
    pub stall_timeout: Duration,
    /// Attempts per download (and per retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time after.
    pub retry_backoff: Duration,
    /// Files downloaded at once.
    pub parallel_files: usize,
    /// How often progress is reported.
    pub progress_interval: Duration,
    /// Large files in ranged parts over several connections.
    pub parts: PartsConfig,
}

impl HubConfig {
    /// A config with the given endpoint and cache and default tuning.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            cache_dir: cache_dir.into(),
            offline: false,
            token: None,
            stall_timeout: Duration::from_secs(30),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            parallel_files: 4,
            progress_interval: Duration::from_millis(100),
            parts: Default::default(),
        }
    }

    /// Read the environment like `huggingface_hub` does.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
    }

    /// `from_env` over any variable lookup (testable without touching the process env).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let os_var = |name: &str| var(name).map(std::ffi::OsString::from);
            crate::fs::xdg_dir_with(crate::fs::UserDir::Cache, &os_var).join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let mut config = HubConfig::new(endpoint, cache_dir);
        config.parts = PartsConfig::from_lookup(&var);
        config.offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v));
        config.token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| read_token_file(&var("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or(hf_home.join("token"))));
        config
    }
}

/// `huggingface_hub`'s truthy values for boolean env vars.
fn is_truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// The token `huggingface-cli login` saved, if any.
fn read_token_file(path: &Path) -> Option<String> {
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// Default connections: measured on test-hub with a 20 MiB/s cap per connection
/// (docs/BENCHMARKS.md): 8 reach ~7× one stream on a 512 MiB file; 16 add little
/// and double the load a mirror sees.
pub(crate) const DEFAULT_CONNECTIONS: usize = 8;
/// Default part size, also the threshold: files up to this size are one stream.
/// 32 MiB takes ~1.6 s at 20 MiB/s, so a request's round trip costs a few percent;
/// the hasher trails the downloads by about `connections` parts.
pub(crate) const DEFAULT_PART_SIZE: u64 = 32 << 20;

/// How files are cut into ranged parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartsConfig {
    /// Requests one download has open at once (parts of one file and files
    /// together); 1 fetches every file in one stream.
    pub connections: usize,
    /// Files larger than this are fetched in parts of this size.
    pub part_size: u64,
}

impl Default for PartsConfig {
    fn default() -> Self {
        PartsConfig { connections: DEFAULT_CONNECTIONS, part_size: DEFAULT_PART_SIZE }
    }
}

impl PartsConfig {
    /// `LOCAL_MLX_DOWNLOAD_CONNECTIONS` and `LOCAL_MLX_DOWNLOAD_PART_SIZE` (bytes);
    /// anything unreadable or zero keeps the default.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let number = |key| var(key).and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0);
        let default = PartsConfig::default();
        PartsConfig {
            connections: number("LOCAL_MLX_DOWNLOAD_CONNECTIONS").map_or(default.connections, |n| n as usize),
            part_size: number("LOCAL_MLX_DOWNLOAD_PART_SIZE").unwrap_or(default.part_size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> HubConfig {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubConfig::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let c = config(&[("HOME", "/home/u")]);
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert!(!c.offline);
        assert_eq!(c.token, None);
    }

    #[test]
    fn hf_hub_cache_beats_hf_home_which_beats_xdg() {
        let c = config(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));
        let c = config(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/hf")]);
        assert_eq!(c.cache_dir, PathBuf::from("/hf/hub"));
        let c = config(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]);
        assert_eq!(c.cache_dir, PathBuf::from("/cache"));
    }

    #[test]
    fn endpoint_offline_and_token_come_from_the_environment() {
        let c = config(&[("HF_ENDPOINT", "http://127.0.0.1:9/"), ("HF_HUB_OFFLINE", "yes"), ("HF_TOKEN", "hf_x")]);
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline);
        assert_eq!(c.token.as_deref(), Some("hf_x"));
        assert!(!config(&[("HF_HUB_OFFLINE", "0")]).offline);
    }

    #[test]
    fn the_saved_login_token_is_used_when_hf_token_is_unset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_saved\n").unwrap();
        let c = config(&[("HF_HOME", dir.path().to_str().unwrap())]);
        assert_eq!(c.token.as_deref(), Some("hf_saved"));
    }
}
