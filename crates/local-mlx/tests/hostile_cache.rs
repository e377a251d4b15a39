//! A tampered or shared cache: refs holding paths, snapshot links pointing elsewhere, and
//! another process deleting a model. Nothing outside `models--org--name/` is ever
//! touched, and each case ends with a clear state or error.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use local_mlx::internals::hub::{CachedRepo, HubCache};
use local_mlx::internals::ModelStore;
use local_mlx::{ModelState, NullSink};
use test_hub::Fault;

/// Another model's folder in the same cache, with a blob and a snapshot of its own.
fn other_model(cache: &Path) -> PathBuf {
    let dir = cache.join("models--test-org--victim");
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::create_dir_all(dir.join("snapshots").join("c".repeat(40))).unwrap();
    std::fs::write(dir.join("blobs").join("victim-blob"), b"precious").unwrap();
    dir
}

/// A file outside the cache altogether.
fn outside_file(env: &Env) -> PathBuf {
    let path = env.tmp.path().join("outside").join("keep.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"keep me").unwrap();
    path
}

fn repo(env: &Env) -> CachedRepo {
    HubCache::new(env.cache_dir()).repo(SMALL_REPO)
}

fn write_ref(repo: &CachedRepo, content: &str) {
    std::fs::create_dir_all(repo.ref_path("main").parent().unwrap()).unwrap();
    std::fs::write(repo.ref_path("main"), content).unwrap();
}

#[tokio::test]
async fn a_ref_holding_a_path_is_corrupt_never_a_folder_to_delete() {
    let env = env().await;
    let victim = other_model(&env.cache_dir());
    let outside = outside_file(&env);
    let victim_relative = "../../models--test-org--victim";
    for hostile in [victim.to_str().unwrap(), victim_relative, outside.parent().unwrap().to_str().unwrap()] {
        // Only a partial download is cached, as after a cancelled pull.
        let repo = repo(&env);
        std::fs::create_dir_all(repo.blobs_dir()).unwrap();
        std::fs::write(repo.incomplete_path("abc"), b"partial").unwrap();
        // The victim folder has what a complete snapshot needs, so a ref "resolving"
        // to it would look downloaded.
        std::fs::write(victim.join("config.json"), b"{}").unwrap();
        std::fs::write(victim.join("model.safetensors"), b"w").unwrap();
        write_ref(&repo, hostile);

        let status = env.manager.model_status(SMALL_REPO).unwrap();
        assert_eq!(status.state, ModelState::NotDownloaded, "{hostile}");
        assert_eq!(status.snapshot_path, None, "{hostile}");
        let said = status.error.expect("status says the ref is corrupt");
        assert!(said.contains("corrupt") && said.contains("local-mlx pull"), "{said}");

        let report = env.manager.delete_model(SMALL_REPO).await.unwrap();
        assert_eq!(report.snapshots_removed, 0, "{hostile}");
        assert!(victim.join("blobs").join("victim-blob").exists(), "{hostile}: another model was deleted");
        assert!(victim.join("config.json").exists(), "{hostile}");
        assert!(outside.exists(), "{hostile}: a file outside the cache was deleted");
        assert!(!repo.dir().exists(), "{hostile}: the corrupt repo entry itself is gone");
    }
}

#[tokio::test]
async fn a_corrupt_ref_over_a_complete_download_is_repaired_by_pull() {
    let env = env().await;
    env.manager.download(SMALL_REPO).await.unwrap();
    let repo = repo(&env);
    let commit = std::fs::read_to_string(repo.ref_path("main")).unwrap();
    write_ref(&repo, &format!("{}/../../../..", commit.trim()));
    let status = env.manager.model_status(SMALL_REPO).unwrap();
    assert_eq!(status.state, ModelState::NotDownloaded);
    assert!(status.error.is_some_and(|e| e.contains("corrupt")));

    let outcome = env.manager.download(SMALL_REPO).await.unwrap();
    assert!(matches!(outcome, local_mlx::DownloadOutcome::Downloaded { fetched_bytes: 0, .. }), "{outcome:?}");
    assert_eq!(std::fs::read_to_string(repo.ref_path("main")).unwrap(), commit);
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().error, None);
}

#[cfg(unix)]
#[tokio::test]
async fn delete_unlinks_snapshot_links_that_point_outside_the_repo() {
    let env = env().await;
    let victim = other_model(&env.cache_dir());
    let outside = outside_file(&env);
    env.manager.download(SMALL_REPO).await.unwrap();
    let repo = repo(&env);
    let commit = std::fs::read_to_string(repo.ref_path("main")).unwrap();
    let snapshot = repo.snapshot_dir(commit.trim());
    // An absolute link, another model's blob (as dedup tools link), and a relative
    // link that climbs out through our own blobs folder.
    let links = [
        ("tokenizer.json", outside.clone()),
        ("tokenizer_config.json", PathBuf::from("../../../models--test-org--victim/blobs/victim-blob")),
        ("extra.json", PathBuf::from("../../blobs/../../models--test-org--victim/snapshots")),
    ];
    for (name, target) in &links {
        let link = snapshot.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    // A snapshot folder that is itself a link to another model's folder.
    std::os::unix::fs::symlink(&victim, repo.snapshot_dir(&"d".repeat(40))).unwrap();

    env.manager.delete_model(SMALL_REPO).await.unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
    assert_eq!(std::fs::read(victim.join("blobs").join("victim-blob")).unwrap(), b"precious");
    assert!(victim.join("snapshots").join("c".repeat(40)).is_dir());
    assert!(!snapshot.exists(), "our snapshot and its links are gone");
    assert!(!repo.blob_path("config.json").exists());
}

type Pull = tokio::task::JoinHandle<local_mlx::Result<local_mlx::DownloadOutcome>>;

/// A throttled pull of `SMALL_REPO`, returned once its first bytes are on disk.
async fn slow_pull_under_way(env: &Env) -> (Pull, CachedRepo) {
    env.hub.set_faults(vec![Fault::throttle(2 << 20).on_path("model.safetensors")]);
    let pull = {
        let manager = env.manager.clone();
        tokio::spawn(async move { manager.download(SMALL_REPO).await })
    };
    let repo = repo(env);
    while repo.partial_bytes() == 0 {
        assert!(!pull.is_finished(), "the pull ended before writing anything");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (pull, repo)
}

#[tokio::test]
async fn rm_in_another_process_is_refused_while_a_pull_runs() {
    let env = env().await;
    let (pull, _) = slow_pull_under_way(&env).await;
    let other = env.other_manager();
    let err = other.delete_model(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    env.hub.clear_faults();
    pull.await.unwrap().expect("the pull is untouched");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
}

#[tokio::test]
async fn a_model_deleted_by_another_tool_during_a_pull_fails_the_pull_clearly() {
    let env = env_with(|mut c| {
        c.max_attempts = 1;
        c
    })
    .await;
    let (pull, repo) = slow_pull_under_way(&env).await;
    // Another tool (`rm -rf`, `huggingface-cli delete-cache`) ignores our lock.
    std::fs::remove_dir_all(repo.dir()).unwrap();
    env.hub.clear_faults();
    let err = pull.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::DeletedWhileDownloading, "{err}");
    assert!(err.to_string().contains("deleted while") && err.to_string().contains("pull"), "{err}");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::NotDownloaded);
}

#[tokio::test]
async fn rm_in_another_process_is_refused_while_a_generation_runs() {
    let env = env().await;
    env.manager.download(SMALL_REPO).await.unwrap();
    // The repo lock a generation holds, taken by a store of "another process" (its own
    // lock file handle).
    let config = test_config(&env.hub.url(), &env.cache_dir());
    let generating_store = Arc::new(ModelStore::new(config, Arc::new(NullSink)).unwrap());
    let spec = local_mlx::internals::catalog::resolve(SMALL_REPO).unwrap();
    let guard = generating_store.share_repo(&spec).unwrap();
    let err = env.manager.delete_model(SMALL_REPO).await.unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().state, ModelState::Downloaded);
    drop(guard);
    env.manager.delete_model(SMALL_REPO).await.expect("deletable once the generation ended");
}

fn weights_etag(env: &Env) -> String {
    sha256_of(&env.repos().join(SMALL_REPO).join("model.safetensors"))
}

fn downloaded(outcome: local_mlx::DownloadOutcome) -> PathBuf {
    match outcome {
        local_mlx::DownloadOutcome::Downloaded { snapshot, .. } => snapshot,
        other => panic!("expected a completed download, got {other:?}"),
    }
}

/// A hang guard, not a speed check: each call here takes well under a second when it works.
const HANG: std::time::Duration = std::time::Duration::from_secs(120);

#[tokio::test]
async fn a_hard_linked_partial_file_is_set_aside_and_the_file_it_shares_keeps_its_bytes() {
    use std::os::unix::fs::MetadataExt;
    let env = env().await;
    let victim = outside_file(&env);
    let repo = repo(&env);
    std::fs::create_dir_all(repo.blobs_dir()).unwrap();
    std::fs::hard_link(&victim, repo.incomplete_path(&weights_etag(&env))).unwrap();

    let snapshot = downloaded(env.manager.download(SMALL_REPO).await.unwrap());

    assert!(std::fs::read(&victim).unwrap() == b"keep me", "the model was written through a hard link");
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1, "the victim is not the cache's blob");
    assert_same_file(&env, SMALL_REPO, &snapshot, "model.safetensors");
    let blob = std::fs::metadata(repo.blob_path(&weights_etag(&env))).unwrap();
    assert_ne!(blob.ino(), std::fs::metadata(&victim).unwrap().ino());
}

/// Puts something where the resume record belongs.
type Plant = Box<dyn Fn(&Path)>;

/// What may lie where a resume record belongs: none of it may hang, balloon or wedge
/// `status` or `pull`, and `pull` clears it away.
#[tokio::test(flavor = "multi_thread")]
async fn a_planted_resume_record_neither_hangs_nor_balloons_nor_blocks_status_and_pull() {
    let env = env().await;
    let repo = repo(&env);
    let etag = weights_etag(&env);
    let record = repo.blobs_dir().join(format!("{etag}.ranges.incomplete"));
    let ranges = |count: u64| {
        let written: Vec<(u64, u64)> = (0..count).map(|i| (2 * i + 1, 2 * i + 2)).collect();
        serde_json::to_vec(&serde_json::json!({"size": BIG_FILE_LEN, "written": written})).unwrap()
    };
    let cases: Vec<(&str, Plant)> = vec![
        ("a link to /dev/zero", Box::new(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap())),
        (
            "a FIFO",
            Box::new(|p| {
                let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
            }),
        ),
        ("a folder", Box::new(|p| std::fs::create_dir_all(p.join("inner")).unwrap())),
        ("200,000 one-byte ranges", Box::new(move |p| std::fs::write(p, ranges(200_000)).unwrap())),
        ("500 one-byte ranges", Box::new(move |p| std::fs::write(p, ranges(500)).unwrap())),
    ];
    for (what, plant) in cases {
        std::fs::create_dir_all(repo.blobs_dir()).unwrap();
        std::fs::File::create(repo.incomplete_path(&etag)).unwrap().set_len(BIG_FILE_LEN).unwrap();
        plant(&record);

        let status = {
            let manager = env.manager.clone();
            tokio::time::timeout(HANG, tokio::task::spawn_blocking(move || manager.model_status(SMALL_REPO)))
        };
        let status = status.await.unwrap_or_else(|_| panic!("{what}: status hangs")).unwrap().unwrap();
        assert_eq!(status.state, ModelState::NotDownloaded, "{what}");

        env.hub.reset_stats();
        let pull = tokio::time::timeout(HANG, env.manager.download(SMALL_REPO));
        let snapshot = downloaded(pull.await.unwrap_or_else(|_| panic!("{what}: pull hangs")).unwrap());
        assert_same_file(&env, SMALL_REPO, &snapshot, "model.safetensors");
        assert_eq!(
            env.hub.file_stats(SMALL_REPO, "model.safetensors").requests,
            1,
            "{what}: one request, not one per gap"
        );
        assert!(std::fs::symlink_metadata(&record).is_err(), "{what}: the record is cleared away");
        env.manager.delete_model(SMALL_REPO).await.unwrap();
    }
}

#[tokio::test]
async fn rm_of_a_model_whose_ref_is_corrupt_removes_its_whole_folder() {
    let env = env().await;
    let victim = other_model(&env.cache_dir());
    env.manager.download(SMALL_REPO).await.unwrap();
    let repo = repo(&env);
    write_ref(&repo, "not a commit");
    let said = env.manager.model_status(SMALL_REPO).unwrap().error.expect("the ref is corrupt");
    assert!(said.contains(&format!("local-mlx rm {SMALL_REPO}")), "{said}");

    let report = env.manager.delete_model(SMALL_REPO).await.unwrap();
    assert_eq!(report.snapshots_removed, 1, "{report:?}");
    assert!(report.blobs_removed >= 4, "{report:?}");
    assert!(report.bytes_freed >= BIG_FILE_LEN, "{report:?}");
    assert!(!repo.dir().exists(), "snapshot, blobs and ref are gone");
    assert_eq!(std::fs::read(victim.join("blobs").join("victim-blob")).unwrap(), b"precious");
    assert_eq!(env.manager.model_status(SMALL_REPO).unwrap().error, None);
}
