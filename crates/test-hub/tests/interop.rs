//! The hub against real outside clients: the Python `huggingface_hub` and our own binary
//! driven as a separate process.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use futures_util::FutureExt;
use test_hub::{Config, TestHub};
use test_support::files_under;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The workspace's one Python environment (`tools/`, with huggingface_hub in it).
fn tools_project() -> PathBuf {
    test_support::workspace_root().join("tools")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_huggingface_hub_snapshot_download_is_complete_and_byte_identical() {
    let repos = tempfile::tempdir().unwrap();
    build_repo(repos.path());
    // The token is required so the test also shows huggingface_hub sends HF_TOKEN.
    let hub = TestHub::start_with(Config::new(repos.path()).require_token("hf_test_token")).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");

    let script = r#"
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1], cache_dir=sys.argv[2]))
"#;
    let output = tokio::process::Command::new("uv")
        .arg("run")
        .arg("--project")
        .arg(tools_project())
        .args(["python", "-c", script, REPO])
        .arg(&cache)
        .env("HF_ENDPOINT", hub.url())
        .env("HF_TOKEN", "hf_test_token")
        .env("HF_HOME", work.path().join("hf_home"))
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("HF_HUB_ETAG_TIMEOUT", "30")
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "30")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN_PATH")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|err| panic!("cannot run `uv` (it must be installed and on PATH for this test): {err}"));
    assert!(output.status.success(), "snapshot_download failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let snapshot = PathBuf::from(stdout.lines().last().expect("snapshot path").trim());

    let commit = hub.commit(REPO).await.unwrap();
    assert_eq!(snapshot.file_name().unwrap().to_str().unwrap(), commit);
    let source = repos.path().join(REPO);
    assert_eq!(files_under(&snapshot), files_under(&source));
    for file in files_under(&source) {
        let got = std::fs::read(snapshot.join(&file)).unwrap();
        let want = std::fs::read(source.join(&file)).unwrap();
        assert!(got == want, "{file} differs");
    }
    // The cache names blobs by our ETags: sha256 for LFS files, git sha1 otherwise.
    let storage = cache.join("models--org--tiny");
    assert_eq!(std::fs::read_to_string(storage.join("refs/main")).unwrap(), commit);
    let blobs = storage.join("blobs");
    assert!(blobs.join(sha256(&weights())).is_file());
    assert!(blobs.join(git_sha1(CONFIG)).is_file());
    // Every file came over the wire once, whole.
    for file in files_under(&source) {
        let stats = hub.file_stats(REPO, &file);
        let size = std::fs::metadata(source.join(&file)).unwrap().len();
        assert_eq!((stats.requests, stats.bytes_served), (1, size), "{file}");
    }
}

#[tokio::test]
async fn the_binary_prints_its_ready_line_serves_and_exits_when_stdin_closes() {
    let repos = tempfile::tempdir().unwrap();
    build_repo(repos.path());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-hub"))
        .arg("--repos")
        .arg(repos.path())
        .args(["--port", "0", "--exit-on-stdin-close"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("a ready line");
    let url = line.strip_prefix("TEST_HUB_READY url=").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let info: serde_json::Value =
        client().get(format!("{url}/api/models/{REPO}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["id"], REPO);
    assert!(lines.next_line().now_or_never().is_none(), "only one stdout line");

    drop(child.stdin.take());
    let status =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exit after stdin closed").unwrap();
    assert!(status.success(), "{status:?}");
}
