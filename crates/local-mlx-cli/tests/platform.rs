//! `local-mlx` on a machine MLX cannot run on, made to look like one with the test-only
//! `LOCAL_MLX_PRETEND_PLATFORM`: `pull` fetches no byte from a real hub, `process`
//! starts no sidecar, and `models` still lists, saying why once.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use test_hub::{RepoBuilder, Stats, TestHub};
use test_support::workspace_root;

const REPO: &str = "test-org/platform-model";
const WINDOWS: &str = "windows-x86_64";
const APPLE_SILICON: &str = "macos-aarch64";
const REASON: &str = "MLX needs an Apple Silicon Mac";

struct Env {
    tmp: tempfile::TempDir,
    hub: TestHub,
}

impl Env {
    async fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        RepoBuilder::new(tmp.path().join("repos"), REPO)
            .file("config.json", br#"{"model_type": "qwen3"}"#)
            .file("tokenizer.json", br#"{"model": {}}"#)
            .pattern_file("model.safetensors", 1 << 20, 5)
            .build()
            .unwrap();
        let hub = TestHub::start(tmp.path().join("repos")).await.unwrap();
        Env { tmp, hub }
    }

    fn config_dir(&self) -> PathBuf {
        self.tmp.path().join("config")
    }

    fn cached_models(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp.path().join("cache"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Run `local-mlx` as if on `platform` (`os-arch`), off the runtime serving the hub.
    async fn run(&self, platform: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-mlx"));
        command
            .args(args)
            .env("LOCAL_MLX_PRETEND_PLATFORM", platform)
            .env("HF_ENDPOINT", self.hub.url())
            .env("HF_HUB_CACHE", self.tmp.path().join("cache"))
            .env("LOCAL_MLX_CONFIG_DIR", self.config_dir())
            // The real sidecar, so without the gate `process` would really start it.
            .env("LOCAL_MLX_BACKEND_DIR", workspace_root().join("python-backend"))
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .env_remove("LOCAL_MLX_LOG")
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `--json` error object: `(kind, message)`.
fn json_error(output: &Output) -> (String, String) {
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&output.stdout)));
    let error = &value["error"];
    (error["kind"].as_str().unwrap().to_string(), error["message"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_on_an_unsupported_machine_fetches_nothing_and_says_why() {
    let env = Env::new().await;

    let output = env.run(WINDOWS, &["pull", REPO]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: local-mlx cannot run models on this machine: "), "{err}");
    assert!(err.contains(REASON) && err.contains("Windows on x86_64"), "{err}");
    assert!(err.contains("choose another post-processing provider"), "says what to do: {err}");

    let output = env.run(WINDOWS, &["pull", REPO, "--json"]).await;
    assert_eq!(output.status.code(), Some(1));
    let (kind, message) = json_error(&output);
    assert_eq!(kind, "unsupported_platform");
    assert!(message.contains(REASON), "{message}");

    let output = env.run("macos-x86_64", &["pull", REPO, "--json"]).await;
    assert_eq!(json_error(&output).0, "unsupported_platform", "an Intel Mac is refused too");

    // Issue 26 item 1: MLX has wheels only for macOS 14+ and glibc 2.35+ (no sdist).
    for (machine, says) in [
        ("macos-aarch64@13.6", "MLX needs macOS 14.0 (Sonoma) or later and this Mac runs macOS 13.6"),
        ("linux-x86_64@2.31", "need glibc 2.35 or later (Ubuntu 22.04, Debian 12, Fedora 36 or newer)"),
    ] {
        for command in [&["pull", REPO][..], &["setup", REPO][..]] {
            let output = env.run(machine, command).await;
            assert_eq!(output.status.code(), Some(1), "{machine} {command:?}");
            let err = text(&output.stderr);
            assert!(err.contains(says) && !err.contains("network"), "{machine} {command:?}: {err}");
        }
    }

    assert_eq!(env.hub.stats(), Stats::default(), "the hub saw no request and served no byte");
    assert!(env.cached_models().is_empty(), "nothing in the cache: {:?}", env.cached_models());

    // The same pull where MLX runs: the refusal above was the platform's, not the hub's.
    let output = env.run(APPLE_SILICON, &["pull", REPO]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(env.hub.file_stats(REPO, "model.safetensors").bytes_served >= 1 << 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn process_on_an_unsupported_machine_starts_no_sidecar() {
    let env = Env::new().await;
    let output = env.run(APPLE_SILICON, &["pull", REPO]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let output = env.run(WINDOWS, &["process", "--model", REPO, "--json", "um so we should uh meet"]).await;
    assert_eq!(output.status.code(), Some(1));
    let (kind, message) = json_error(&output);
    assert_eq!(kind, "unsupported_platform");
    assert!(message.contains(REASON), "{message}");
    let err = text(&output.stderr);
    assert!(!err.contains("starting the sidecar") && !err.contains("loading"), "{err}");
    assert!(!env.config_dir().join("sidecar.log").exists(), "the sidecar never started, so it logged nothing");

    // Read from stdin, and without --json: the same one-line refusal.
    let output = env.run(WINDOWS, &["process", "--model", REPO]).await;
    let err = text(&output.stderr);
    assert!(!output.status.success() && err.trim_end().lines().count() == 1 && err.contains(REASON), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn models_and_status_on_an_unsupported_machine_still_list_and_say_why_once() {
    let env = Env::new().await;

    let output = env.run(WINDOWS, &["models"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(table.starts_with("MODEL") && table.contains("mlx-community/Qwen3-1.7B-4bit"), "{table}");
    assert!(!table.contains(REASON), "the table stays a table: {table}");
    let err = text(&output.stderr);
    assert_eq!(err.matches(REASON).count(), 1, "{err}");
    assert!(err.starts_with("note: "), "{err}");

    let output = env.run(WINDOWS, &["models", "--json"]).await;
    assert!(output.status.success());
    let models: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(models.as_array().unwrap().iter().any(|m| m["is_default"] == true));
    assert_eq!(text(&output.stderr).matches(REASON).count(), 1);

    let output = env.run(WINDOWS, &["status", REPO, "--json"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["state"], "not_downloaded");
    assert_eq!(text(&output.stderr).matches(REASON).count(), 1);

    // Where MLX runs natively there is nothing to say.
    let output = env.run(APPLE_SILICON, &["models"]).await;
    assert!(output.status.success() && text(&output.stderr).is_empty(), "{}", text(&output.stderr));
    assert_eq!(env.hub.stats(), Stats::default(), "listing asks the hub nothing");
}
