//! Shared set-up for the integration tests: a real `test-hub` on 127.0.0.1, a fresh
//! HF cache in a temp folder, and a manager wired to both.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use local_mlx::manager::{HubConfig, ManagerConfig, SidecarConfig};
use local_mlx::{MlxModelManager, RecordingSink};
use test_hub::{RepoBuilder, TestHub};

pub const SMALL_REPO: &str = "test-org/small-model";
/// Big enough that a download takes many chunks and a throttle makes it slow.
pub const BIG_FILE_LEN: u64 = 8 << 20;

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub hub: TestHub,
    pub sink: RecordingSink,
    pub manager: Arc<MlxModelManager>,
}

impl Env {
    pub fn cache_dir(&self) -> PathBuf {
        self.tmp.path().join("hf").join("hub")
    }

    pub fn repos(&self) -> PathBuf {
        self.tmp.path().join("repos")
    }

    /// A second manager on the same cache and hub (another "process" of ours).
    pub fn other_manager(&self) -> MlxModelManager {
        manager_over(test_config(&self.hub.url(), &self.cache_dir()), Arc::new(local_mlx::NullSink))
    }
}

/// A manager over `hub`'s hub and cache, with default settings and the sidecar found
/// the usual way (started only when used).
pub fn manager_over(hub: HubConfig, sink: Arc<dyn local_mlx::EventSink>) -> MlxModelManager {
    let sidecar = SidecarConfig::in_data_dir(&local_mlx::settings::data_dir());
    let config = ManagerConfig { hub, sidecar, settings: Default::default(), custom_models: Vec::new() };
    MlxModelManager::new(config, sink).unwrap()
}

/// Tuning for tests: quick retries and stall detection so failures are fast.
pub fn test_config(endpoint: &str, cache: &Path) -> HubConfig {
    let mut config = HubConfig::new(endpoint, cache);
    config.stall_timeout = Duration::from_secs(2);
    config.retry_backoff = Duration::from_millis(50);
    config
}

/// A hub serving `SMALL_REPO`: config, tokenizer, a big LFS weight file and files
/// mlx-lm does not want (`*.py`, README).
pub async fn env() -> Env {
    env_with(|config| config).await
}

pub async fn env_with(tune: impl FnOnce(HubConfig) -> HubConfig) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let repos = tmp.path().join("repos");
    small_repo(&repos, SMALL_REPO);
    let hub = TestHub::start(&repos).await.unwrap();
    let sink = RecordingSink::new();
    let config = tune(test_config(&hub.url(), &tmp.path().join("hf").join("hub")));
    let manager = Arc::new(manager_over(config, Arc::new(sink.clone())));
    Env { tmp, hub, sink, manager }
}

pub fn small_repo(repos: &Path, repo: &str) -> PathBuf {
    RepoBuilder::new(repos, repo)
        .file("config.json", br#"{"model_type": "qwen3", "hidden_size": 64}"#)
        .file("tokenizer.json", br#"{"version": "1.0", "model": {"type": "BPE"}}"#)
        .file("tokenizer_config.json", br#"{"chat_template": "{{ messages }}"}"#)
        .file("modeling_evil.py", b"import os; os.system('echo pwned')")
        .file("README.md", b"# a model")
        .pattern_file("model.safetensors", BIG_FILE_LEN, 7)
        .build()
        .unwrap()
}

/// The cache's copy of `file` is byte-identical to the hub's.
pub fn assert_same_file(env: &Env, repo: &str, snapshot: &Path, file: &str) {
    let served = std::fs::read(env.repos().join(repo).join(file)).unwrap();
    let cached = std::fs::read(snapshot.join(file)).unwrap_or_else(|e| panic!("{file} in {snapshot:?}: {e}"));
    assert!(served == cached, "{file} differs from the hub's copy");
}

pub use test_support::workspace_root;

/// Run Python in the tools/ uv environment (which has the real `huggingface_hub`).
pub fn python(script: &str, envs: &[(&str, &str)]) -> String {
    let output = Command::new("uv")
        .args(["run", "--frozen", "--project"])
        .arg(workspace_root().join("tools"))
        .args(["python", "-c", script])
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .envs(envs.iter().copied())
        .output()
        .expect("uv must be installed (see .ci/run) to run the huggingface_hub interop tests");
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The sha256 of a file, as hex (an LFS file's blob name).
pub fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
pub mod sidecar_env;
