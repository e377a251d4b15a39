//! The `local-mlx` binary as a user runs it: real processes against a real hub server,
//! killed and interrupted on purpose.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use test_hub::{Fault, RepoBuilder, TestHub};
use test_support::wait_until;

const REPO: &str = "test-org/cli-model";
const WEIGHTS: &str = "model.safetensors";

struct Env {
    tmp: tempfile::TempDir,
    hub: TestHub,
    /// Extra environment for every command (e.g. how files are cut into parts).
    vars: Vec<(&'static str, String)>,
}

impl Env {
    async fn new(weights_len: u64) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        RepoBuilder::new(tmp.path().join("repos"), REPO)
            .file("config.json", br#"{"model_type": "qwen3"}"#)
            .file("tokenizer.json", br#"{"model": {}}"#)
            .pattern_file(WEIGHTS, weights_len, 3)
            .build()
            .unwrap();
        let hub = TestHub::start(tmp.path().join("repos")).await.unwrap();
        Env { tmp, hub, vars: Vec::new() }
    }

    /// Files over `part_size` in ranged parts, four connections at once.
    async fn in_parts(weights_len: u64, part_size: u64) -> Env {
        let mut env = Env::new(weights_len).await;
        env.vars = vec![
            ("LOCAL_MLX_DOWNLOAD_CONNECTIONS", "4".to_string()),
            ("LOCAL_MLX_DOWNLOAD_PART_SIZE", part_size.to_string()),
        ];
        env
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-mlx"));
        command
            .args(args)
            .env("HF_ENDPOINT", self.hub.url())
            .env("HF_HUB_CACHE", self.cache())
            .env("LOCAL_MLX_CONFIG_DIR", self.tmp.path().join("config"))
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Run to completion off the async runtime (the hub serves on it meanwhile).
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    fn served(&self) -> u64 {
        self.hub.file_stats(REPO, WEIGHTS).bytes_served
    }

    fn weights_source(&self) -> PathBuf {
        self.tmp.path().join("repos").join(REPO).join(WEIGHTS)
    }

    fn snapshot_file(&self, file: &str) -> Vec<u8> {
        let repo = self.cache().join("models--test-org--cli-model");
        let commit = std::fs::read_to_string(repo.join("refs/main")).expect("refs/main written");
        std::fs::read(repo.join("snapshots").join(commit.trim()).join(file)).unwrap()
    }

    /// Partial blobs, without their resume records.
    fn partial_files(&self) -> Vec<PathBuf> {
        self.download_state().into_iter().filter(|p| !p.to_string_lossy().ends_with(".ranges.incomplete")).collect()
    }

    /// Every `*.incomplete` file: partial blobs and their resume records.
    fn download_state(&self) -> Vec<PathBuf> {
        let blobs = self.cache().join("models--test-org--cli-model/blobs");
        std::fs::read_dir(blobs)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".incomplete")).collect())
            .unwrap_or_default()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

async fn wait_child(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

/// Two `pull`s of the model at once: both succeed, one correct copy, no partial left.
async fn pull_twice_at_once(env: &Env) {
    let first = env.spawn(&["pull", REPO]);
    let second = env.spawn(&["pull", REPO]);
    let (first, second) = (wait_child(first).await, wait_child(second).await);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());
    assert!(env.download_state().is_empty(), "{:?}", env.download_state());
}

fn assert_same(a: &[u8], b: &Path) {
    assert!(a == std::fs::read(b).unwrap().as_slice(), "downloaded bytes differ from the hub's");
}

#[tokio::test]
async fn models_lists_the_catalog_with_the_default_marked() {
    let env = Env::new(1024).await;
    let output = env.run(&["models"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let default_line = text.lines().find(|l| l.contains("mlx-community/Qwen3-1.7B-4bit")).unwrap();
    assert!(default_line.contains("default") && default_line.contains("not downloaded"), "{text}");
    assert!(text.lines().next().unwrap().starts_with("MODEL"));

    let output = env.run(&["models", "--json"]).await;
    let models: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let models = models.as_array().unwrap();
    assert!(models.len() >= 3);
    assert!(models.iter().any(|m| m["is_default"] == true && m["status"]["state"] == "not_downloaded"));
}

/// The CLI keeps its own `settings.json` and passes it to the manager: a custom
/// selected model there is listed; a corrupt file is an error naming it.
#[tokio::test]
async fn the_cli_passes_its_settings_file_to_the_manager() {
    let env = Env::new(1024).await;
    let config = env.tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("settings.json"), format!(r#"{{"selected_model": "{REPO}"}}"#)).unwrap();
    let output = env.run(&["models", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let models: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let custom = models.as_array().unwrap().iter().find(|m| m["id"] == REPO).expect("the selected model is listed");
    assert_eq!(custom["is_builtin"], false);

    std::fs::write(config.join("settings.json"), "{not json").unwrap();
    let output = env.run(&["models"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("settings.json"), "{}", stderr(&output));
}

#[tokio::test]
async fn pull_status_and_rm_round_trip() {
    let env = Env::new(2 << 20).await;
    let output = env.run(&["pull", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("downloaded test-org/cli-model"), "{}", stderr(&output));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());

    let output = env.run(&["status", REPO, "--json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["state"], "downloaded");

    let output = env.run(&["pull", REPO]).await;
    assert!(output.status.success() && stderr(&output).contains("already downloaded"));

    let output = env.run(&["rm", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = env.run(&["status", REPO]).await;
    assert!(stdout(&output).contains("not downloaded"), "{}", stdout(&output));
}

#[tokio::test]
async fn pull_json_prints_the_state_events_then_the_outcome() {
    let env = Env::new(1 << 20).await;
    let output = env.run(&["pull", REPO, "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.first().unwrap()["event_type"], "download_started");
    assert!(lines.iter().any(|l| l["event_type"] == "download_completed"));
    assert_eq!(lines.last().unwrap()["outcome"], "downloaded");
}

#[tokio::test]
async fn errors_are_one_line_on_stderr_with_a_non_zero_exit() {
    let env = Env::new(1024).await;
    for args in
        [vec!["pull", "not/a/repo"], vec!["pull", "nosuchmodel"], vec!["rm", REPO], vec!["pull", "test-org/missing"]]
    {
        let output = env.run(&args).await;
        assert!(!output.status.success(), "{args:?}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let output = env.run(&["rm", REPO, "--json"]).await;
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "not_downloaded");
}

/// SIGKILL at about half of a large file fetched in one stream, rerun, and less than
/// 1% of the file is served twice (counted by the hub).
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_killed_with_sigkill_at_half_resumes_refetching_under_one_percent() {
    let size: u64 = 256 << 20;
    let mut env = Env::new(size).await;
    // One stream: the path for small files and for hubs that do not serve ranges.
    env.vars = vec![("LOCAL_MLX_DOWNLOAD_CONNECTIONS", "1".to_string())];
    // A kill loses what is in flight (the client's lag behind the hub times the
    // rate): a modest rate keeps that well under 1% even on a busy machine.
    env.hub.set_faults(vec![Fault::throttle(16 << 20).on_path(WEIGHTS)]);
    let mut child = env.spawn(&["pull", REPO]);
    wait_until("half the file served", || env.served() >= size / 2).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(env.partial_files().len(), 1, "the partial file stays for resume");

    env.hub.clear_faults();
    let output = env.run(&["pull", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());
    let served = env.served();
    assert!(served < size + size / 100, "served {served} bytes for a {size}-byte file");
    assert!(env.partial_files().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_keeps_the_partial_download_and_exits_130() {
    let size: u64 = 32 << 20;
    let env = Env::new(size).await;
    env.hub.set_faults(vec![Fault::throttle(8 << 20).on_path(WEIGHTS)]);
    let child = env.spawn(&["pull", REPO]);
    wait_until("some bytes served", || env.served() >= 4 << 20).await;
    signal(&child, "INT");
    let output = wait_child(child).await;
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("resume"), "{}", stderr(&output));
    assert_eq!(env.partial_files().len(), 1);

    let output = env.run(&["status", REPO]).await;
    assert!(stdout(&output).contains("partial"), "{}", stdout(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_pulling_the_same_model_end_with_one_correct_copy() {
    let size: u64 = 32 << 20;
    let env = Env::new(size).await;
    env.hub.set_faults(vec![Fault::throttle(16 << 20).on_path(WEIGHTS)]);
    pull_twice_at_once(&env).await;
    assert!(
        env.served() < size + size / 100,
        "the blob lock kept the second process from downloading it again: {}",
        env.served()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rm_in_another_process_is_refused_while_a_pull_runs_then_works() {
    let size: u64 = 16 << 20;
    let env = Env::new(size).await;
    env.hub.set_faults(vec![Fault::throttle(4 << 20).on_path(WEIGHTS)]);
    let pull = env.spawn(&["pull", REPO]);
    wait_until("some bytes on disk", || !env.partial_files().is_empty()).await;
    let output = env.run(&["rm", REPO]).await;
    assert!(!output.status.success(), "rm must wait for the pull");
    assert!(stderr(&output).contains("another process"), "{}", stderr(&output));
    assert!(!env.partial_files().is_empty(), "the pull's partial files are untouched");

    env.hub.clear_faults();
    let output = wait_child(pull).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());
    let output = env.run(&["rm", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
}

/// SIGKILL while several parts are in flight, then a rerun: it verifies, and less than
/// 1% of the file is served twice (the resume record names what each part wrote).
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_killed_with_parts_in_flight_resumes_refetching_under_one_percent() {
    let size: u64 = 48 << 20;
    let env = Env::in_parts(size, 4 << 20).await;
    // What a kill loses is what was in flight: the client's lag behind the hub (on a
    // busy machine, hundreds of ms when it gets no CPU) times the rate of all parts.
    // 4 × 512 KiB/s keeps a 240 ms lag under 1%.
    env.hub.set_rate_cap(Some(512 << 10));
    let mut child = env.spawn(&["pull", REPO]);
    wait_until("half the file served by parts at once", || {
        let stats = env.hub.file_stats(REPO, WEIGHTS);
        stats.max_concurrent_bodies >= 4 && stats.bytes_served >= size / 2
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!env.partial_files().is_empty(), "the partial file and its record stay for resume");

    env.hub.set_rate_cap(None);
    let output = env.run(&["pull", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());
    let served = env.served();
    assert!(served < size + size / 100, "served {served} bytes for a {size}-byte file");
    assert!(env.download_state().is_empty(), "{:?}", env.download_state());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_pulling_a_model_in_parts_end_with_one_correct_copy() {
    let size: u64 = 16 << 20;
    let env = Env::in_parts(size, 1 << 20).await;
    env.hub.set_rate_cap(Some(4 << 20));
    pull_twice_at_once(&env).await;
    assert_eq!(env.served(), size, "one process fetched it, in parts; the other waited for it");
    assert!(env.hub.file_stats(REPO, WEIGHTS).max_concurrent_bodies > 1);
}

/// A blob truncated behind our back: `status` no longer says downloaded, and `pull`
/// fetches that one file again instead of saying it is already there.
#[tokio::test(flavor = "multi_thread")]
async fn status_and_pull_notice_a_truncated_blob_and_pull_repairs_it() {
    let size: u64 = 1 << 20;
    let env = Env::new(size).await;
    assert!(env.run(&["pull", REPO]).await.status.success());
    let repo = env.cache().join("models--test-org--cli-model");
    let commit = std::fs::read_to_string(repo.join("refs/main")).unwrap();
    let blob = std::fs::canonicalize(repo.join("snapshots").join(commit.trim()).join(WEIGHTS)).unwrap();
    std::fs::OpenOptions::new().write(true).open(&blob).unwrap().set_len(size / 3).unwrap();

    let output = env.run(&["status", REPO, "--json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["state"], "not_downloaded", "{status}");
    assert_eq!(status["has_files"], true, "the damaged snapshot can still be deleted: {status}");
    env.hub.reset_stats();
    let output = env.run(&["pull", REPO]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("already downloaded"), "{}", stderr(&output));
    assert_same(&env.snapshot_file(WEIGHTS), &env.weights_source());
    assert_eq!(env.served(), size, "the damaged file, once");
    assert_eq!(env.hub.file_stats(REPO, "config.json").requests, 0, "and nothing else");
}
