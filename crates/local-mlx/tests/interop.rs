//! Interop with the real Python `huggingface_hub`, both ways, through one HF cache.

mod common;

use common::*;
use local_mlx::ModelState;

#[tokio::test(flavor = "multi_thread")]
async fn a_model_we_downloaded_is_complete_for_huggingface_hub() {
    let env = env().await;
    let snapshot = match env.manager.download(SMALL_REPO).await.unwrap() {
        local_mlx::DownloadOutcome::Downloaded { snapshot, .. } => snapshot,
        other => panic!("{other:?}"),
    };
    let cache = env.cache_dir();
    let script = r#"
import json, sys
from huggingface_hub import snapshot_download, scan_cache_dir
repo = sys.argv[1] if len(sys.argv) > 1 else None
path = snapshot_download("test-org/small-model", local_files_only=True,
                         allow_patterns=["*.json", "model*.safetensors"])
info = scan_cache_dir()
repos = {r.repo_id: r for r in info.repos}
r = repos["test-org/small-model"]
print(json.dumps({
    "path": path,
    "warnings": [str(w) for w in info.warnings],
    "refs": sorted(r.refs),
    "nb_files": r.nb_files,
    "size_on_disk": r.size_on_disk,
    "revisions": [rev.commit_hash for rev in r.revisions],
}))
"#;
    let out = tokio::task::spawn_blocking(move || {
        python(script, &[("HF_HUB_CACHE", cache.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")])
    })
    .await
    .unwrap();
    let seen: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(seen["path"], snapshot.to_str().unwrap());
    assert_eq!(seen["warnings"], serde_json::json!([]), "scan_cache_dir found problems");
    assert_eq!(seen["refs"], serde_json::json!(["main"]));
    assert_eq!(seen["nb_files"], 4);
    assert!(seen["size_on_disk"].as_u64().unwrap() >= BIG_FILE_LEN);
    assert_eq!(seen["revisions"][0], env.hub.commit(SMALL_REPO).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_huggingface_hub_downloaded_is_downloaded_for_us() {
    let env = env().await;
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
    let cache = env.cache_dir();
    let url = env.hub.url();
    let script = r#"
from huggingface_hub import snapshot_download
print(snapshot_download("test-org/small-model", allow_patterns=["*.json", "model*.safetensors"]))
"#;
    let out = tokio::task::spawn_blocking(move || {
        python(script, &[("HF_HUB_CACHE", cache.to_str().unwrap()), ("HF_ENDPOINT", &url)])
    })
    .await
    .unwrap();
    let python_path = out.trim().lines().last().unwrap().to_string();

    let status = env.manager.model_status(SMALL_REPO).unwrap();
    assert_eq!(status.state, ModelState::Downloaded);
    assert_eq!(status.snapshot_path.unwrap().to_str().unwrap(), python_path);
    env.hub.reset_stats();
    let outcome = env.manager.download(SMALL_REPO).await.unwrap();
    assert!(matches!(outcome, local_mlx::DownloadOutcome::AlreadyDownloaded { .. }), "{outcome:?}");
    assert_eq!(env.hub.stats().api_requests, 0);

    // And our delete cleans up what Python wrote.
    env.manager.delete_model(SMALL_REPO).await.unwrap();
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}
