//! `local_mlx_handy` on real files shaped as Handy writes its store (fixtures in
//! `tests/fixtures/`, derived from Handy's own defaults and its frozen v0.9 test
//! store at the commit `handy::schema::HANDY_COMMIT` names): connect changes exactly the
//! listed fields and keeps every other byte, backs up first, changes nothing the second
//! time; disconnect restores; bad files are clear errors with nothing written.
//!
//! The fixtures: `fresh-install.json` (`get_default_settings()` on an Apple Silicon Mac),
//! `other-providers.json` (Anthropic in use, API keys and models for others, the user's
//! own prompt selected, a changed shortcut), `older-v0.9.json` (Handy's frozen v0.9
//! store: no Custom provider, an old prompt list), `unknown-fields.json` (fields Handy
//! does not know yet, at every level). All are pretty JSON with sorted keys, as Handy
//! writes them, so a disconnect can be checked byte for byte.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use local_mlx_handy::{self as handy, HandyStore};
use serde_json::{json, Value};

const URL: &str = "http://localhost:8397/v1";
const MODEL: &str = "mlx-community/Qwen3-1.7B-4bit";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// A Handy folder in a temp dir holding `bytes` as its store.
fn handy_dir(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = handy::store::store_path(Some(dir.path()));
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

/// Every path at which `a` and `b` differ (an added or removed member is one path).
fn diff(a: &Value, b: &Value, at: String, out: &mut BTreeSet<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()).collect::<BTreeSet<_>>() {
                let here = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                match (x.get(key), y.get(key)) {
                    (Some(v), Some(w)) => diff(v, w, here, out),
                    _ => {
                        out.insert(here);
                    }
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let here = format!("{at}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(v), Some(w)) => diff(v, w, here, out),
                    _ => {
                        out.insert(here);
                    }
                }
            }
        }
        _ if a != b => {
            out.insert(at);
        }
        _ => {}
    }
}

fn tree(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn changed(before: &[u8], after: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    diff(&tree(before), &tree(after), String::new(), &mut out);
    out
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| format!("settings.{p}")).collect()
}

/// Connect, check the changed paths and the backup, connect again (nothing), disconnect
/// (the original bytes back).
fn connect_round_trip(name: &str, expected: BTreeSet<String>) -> Value {
    let original = fixture(name);
    let (dir, path) = handy_dir(&original);
    let outcome = handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    let connected = std::fs::read(&path).unwrap();
    assert_eq!(changed(&original, &connected), expected, "{name}");
    assert_eq!(outcome.changes.len(), expected.len(), "{name}: one change per field: {:?}", outcome.changes);

    let backup = outcome.backup.expect("a backup when something changed");
    assert_eq!(backup.parent(), Some(dir.path()), "the backup sits next to the store");
    assert_eq!(std::fs::read(&backup).unwrap(), original, "{name}: the backup is the file as it was");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds API keys");
    }

    let files = files_in(dir.path());
    let again = handy::connect(&path, URL, None, &[MODEL.to_string()]).unwrap();
    assert!(again.changes.is_empty() && again.backup.is_none(), "{name}: {:?}", again.changes);
    assert_eq!(std::fs::read(&path).unwrap(), connected, "{name}: a second connect writes nothing");
    assert_eq!(files_in(dir.path()), files, "{name}: and backs nothing up");

    let undone = handy::disconnect(&path).unwrap();
    assert_eq!(undone.changes.len(), expected.len(), "{name}");
    assert_eq!(
        String::from_utf8(std::fs::read(&path).unwrap()).unwrap(),
        String::from_utf8(original).unwrap(),
        "{name}: disconnect puts back every byte"
    );
    tree(&connected)
}

/// What `connect` sets in a store where none of it was set yet.
const FRESH_CONNECT_CHANGES: &[&str] = &[
    "experimental_enabled",
    "post_process_enabled",
    "post_process_provider_id",
    "post_process_providers[8].base_url",
    "post_process_models.custom",
    "post_process_selected_prompt_id",
];

#[test]
fn connect_on_a_fresh_install_turns_on_what_post_processing_needs_and_nothing_else() {
    let connected = connect_round_trip("fresh-install.json", set(FRESH_CONNECT_CHANGES));
    let s = &connected["settings"];
    assert_eq!(s["post_process_provider_id"], "custom");
    assert_eq!(s["post_process_providers"][8]["base_url"], URL);
    assert_eq!(s["post_process_models"]["custom"], MODEL);
    assert_eq!(s["post_process_selected_prompt_id"], "default_improve_transcriptions");
}

#[test]
fn connect_keeps_other_providers_keys_models_and_the_users_own_prompt() {
    let connected = connect_round_trip(
        "other-providers.json",
        set(&["post_process_provider_id", "post_process_providers[8].base_url", "post_process_models.custom"]),
    );
    let s = &connected["settings"];
    assert_eq!(s["post_process_api_keys"]["anthropic"], "sk-ant-fixture-anthropic-key");
    assert_eq!(s["post_process_models"]["anthropic"], "claude-3-5-haiku-latest");
    assert_eq!(s["post_process_selected_prompt_id"], "prompt_1755600000000");
}

#[test]
fn connect_on_an_older_store_adds_the_custom_provider_and_handys_prompt_as_handy_would() {
    let connected = connect_round_trip(
        "older-v0.9.json",
        set(&[
            "experimental_enabled",
            "post_process_enabled",
            "post_process_provider_id",
            "post_process_providers[1]",
            "post_process_models.custom",
            "post_process_prompts[1]",
            "post_process_selected_prompt_id",
        ]),
    );
    let s = &connected["settings"];
    assert_eq!(
        s["post_process_providers"][1],
        json!({"id": "custom", "label": "Custom", "base_url": URL, "allow_base_url_edit": true,
               "models_endpoint": "/models", "supports_structured_output": false})
    );
    assert_eq!(s["post_process_prompts"][1]["id"], "default_improve_transcriptions");
    assert!(s["post_process_prompts"][1]["prompt"]
        .as_str()
        .unwrap()
        .starts_with("<transcript>\n${output}\n</transcript>"));
    // The user's own old prompt stays.
    assert_eq!(s["post_process_prompts"][0]["id"], "default");
}

#[test]
fn connect_keeps_unknown_fields_everywhere() {
    let connected = connect_round_trip("unknown-fields.json", set(FRESH_CONNECT_CHANGES));
    assert_eq!(connected["another_store_key"], json!({"kept": [1, 2, 3]}));
    assert_eq!(connected["settings"]["post_process_providers"][8]["extra_provider_field"], "kept");
}

#[test]
fn without_model_the_one_handy_has_or_the_downloaded_default_is_used() {
    let (_dir, path) = handy_dir(&fixture("other-providers.json"));
    let downloaded = ["x/other".to_string(), MODEL.to_string()];
    handy::connect(&path, URL, None, &downloaded).unwrap();
    let s = HandyStore::load(&path).unwrap();
    assert_eq!(s.settings()["post_process_models"]["custom"], MODEL, "llama3.2 is not downloaded here");

    let (_dir, path) = handy_dir(&fixture("fresh-install.json"));
    let err = handy::connect(&path, URL, Some("x/missing"), &downloaded).unwrap_err();
    assert_eq!(err.kind(), "not_downloaded");
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
    let err = handy::connect(&path, URL, None, &[]).unwrap_err();
    assert_eq!(err.kind(), "no_model_downloaded");
    assert!(err.to_string().contains("local-mlx setup"), "the one command that gets a model ready: {err}");
    let err = handy::connect(&path, "localhost:8397", None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), "invalid_url", "{err}");
}

#[test]
fn a_corrupt_unreadable_or_read_only_store_is_a_clear_error_and_nothing_is_written() {
    let downloaded = [MODEL.to_string()];
    for (bytes, kind, says) in [
        (&b"{\"settings\": {\"post_process_enabled\": tru"[..], "handy_store_corrupt", "not JSON"),
        (&b"[1, 2]"[..], "handy_store_corrupt", "not an object"),
        (&b"{\"settings\": \"corrupt\"}"[..], "handy_store_corrupt", "\"settings\" is not an object"),
        (&b"{\"other\": 1}"[..], "handy_store_corrupt", "no \"settings\""),
    ] {
        let (dir, path) = handy_dir(bytes);
        let err = handy::connect(&path, URL, None, &downloaded).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        let message = err.to_string();
        assert!(message.contains(says) && message.contains("settings_store.json"), "{message}");
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(files_in(dir.path()).len(), 1, "no backup, no temp file");
    }

    // Unusable: the store's path is a folder.
    let dir = tempfile::tempdir().unwrap();
    let path = handy::store::store_path(Some(dir.path()));
    std::fs::create_dir(&path).unwrap();
    let err = handy::connect(&path, URL, None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), "handy_store_corrupt");
    assert!(
        err.to_string().contains("not a regular file") && err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    // Read-only.
    let (dir, path) = handy_dir(&fixture("fresh-install.json"));
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&path, permissions).unwrap();
    let err = handy::connect(&path, URL, None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), "handy_store_read_only", "{err}");
    assert!(err.to_string().contains("chmod u+w"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[test]
fn disconnect_without_a_connect_backup_says_there_is_nothing_to_put_back() {
    let (_dir, path) = handy_dir(&fixture("fresh-install.json"));
    let err = handy::disconnect(&path).unwrap_err();
    assert_eq!(err.kind(), "handy_no_backup");
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
}

#[tokio::test]
async fn no_handy_is_one_unmet_requirement_saying_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = handy::store::store_path(Some(&dir.path().join("com.pais.handy")));
    let status = handy::status(&path, URL).await.unwrap();
    assert!(!status.ready);
    assert_eq!(status.requirements.len(), 1);
    let missing = &status.requirements[0];
    assert_eq!((missing.id, missing.ok), ("handy_found", false));
    assert!(missing.fix.as_ref().unwrap().contains("https://handy.computer"), "{missing:?}");
    let err = handy::connect(&path, URL, None, &[MODEL.to_string()]).unwrap_err();
    assert_eq!(err.kind(), "handy_not_found");
    assert!(!dir.path().join("com.pais.handy").exists(), "connect creates no Handy folder");
}

#[tokio::test]
async fn with_no_server_listening_the_server_and_model_steps_fail_with_the_fix() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let (_dir, path) = handy_dir(&fixture("fresh-install.json"));
    handy::connect(&path, &url, None, &[MODEL.to_string()]).unwrap();
    let status = handy::status(&path, &url).await.unwrap();
    let failed: Vec<&str> = status.requirements.iter().filter(|r| !r.ok).map(|r| r.id).collect();
    assert_eq!(failed, ["server", "model"]);
    let server = status.requirements.iter().find(|r| r.id == "server").unwrap();
    assert!(server.fix.as_ref().unwrap().contains("local-mlx serve"), "{server:?}");
    assert!(server.fix.as_ref().unwrap().contains("local-mlx service install"), "{server:?}");
    assert_eq!(status.shortcut.as_deref(), Some("Option+Shift+Space"));
}

/// Connect `fixture`, let `edit` change the store as the user would in Handy, then
/// disconnect: the settings after, and what disconnect reported as left.
fn connect_edit_disconnect(name: &str, edit: impl FnOnce(&mut Value)) -> (Value, handy::Outcome) {
    let (_dir, path) = handy_dir(&fixture(name));
    handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    let mut store = tree(&std::fs::read(&path).unwrap());
    edit(&mut store["settings"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&store).unwrap()).unwrap();
    let outcome = handy::disconnect(&path).unwrap();
    (tree(&std::fs::read(&path).unwrap())["settings"].clone(), outcome)
}

/// The user's edits after `connect`: the default prompt's text changed, a prompt of
/// their own added and selected, the provider switched to Anthropic.
fn users_own_changes(s: &mut Value) {
    let prompts = s["post_process_prompts"].as_array_mut().unwrap();
    let default = prompts.iter_mut().find(|p| p["id"] == "default_improve_transcriptions").unwrap();
    default["prompt"] = json!("My edit: ${output}");
    prompts.push(json!({"id": "prompt_mine", "name": "Mine", "prompt": "Mine: ${output}"}));
    s["post_process_selected_prompt_id"] = json!("prompt_mine");
    s["post_process_provider_id"] = json!("anthropic");
}

#[test]
fn disconnect_keeps_what_the_user_changed_after_connect_and_says_so() {
    let (s, outcome) = connect_edit_disconnect("older-v0.9.json", users_own_changes);
    assert_eq!(s["post_process_provider_id"], "anthropic");
    assert_eq!(s["post_process_selected_prompt_id"], "prompt_mine");
    let prompts = s["post_process_prompts"].as_array().unwrap();
    let default =
        prompts.iter().find(|p| p["id"] == "default_improve_transcriptions").expect("the edited prompt stays");
    assert_eq!(default["prompt"], "My edit: ${output}");
    assert!(prompts.iter().any(|p| p["id"] == "prompt_mine"));
    let kept: BTreeSet<&str> = outcome.kept.iter().map(|k| k.path.as_str()).collect();
    assert_eq!(
        kept,
        BTreeSet::from([
            "post_process_provider_id",
            "post_process_selected_prompt_id",
            "post_process_prompts[default_improve_transcriptions]"
        ])
    );
    // What the user left alone goes back to what Handy had before.
    let original = tree(&fixture("older-v0.9.json"))["settings"].clone();
    for field in ["experimental_enabled", "post_process_enabled", "post_process_providers", "post_process_models"] {
        assert_eq!(s[field], original[field], "{field}");
    }
}

#[test]
fn disconnect_after_a_connect_that_kept_no_record_still_keeps_the_users_changes() {
    let (dir, path) = handy_dir(&fixture("fresh-install.json"));
    let outcome = handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    let record = outcome.backup.unwrap().with_extension("record");
    assert!(record.is_file(), "connect records what it wrote beside its backup");
    std::fs::remove_file(&record).unwrap(); // as an older local-mlx left it
    let mut store = tree(&std::fs::read(&path).unwrap());
    store["settings"]["post_process_provider_id"] = json!("anthropic");
    std::fs::write(&path, serde_json::to_vec_pretty(&store).unwrap()).unwrap();
    let undone = handy::disconnect(&path).unwrap();
    let s = tree(&std::fs::read(&path).unwrap())["settings"].clone();
    assert_eq!(s["post_process_provider_id"], "anthropic");
    assert_eq!(s["experimental_enabled"], tree(&fixture("fresh-install.json"))["settings"]["experimental_enabled"]);
    assert_eq!(undone.kept.len(), 1, "{:?}", undone.kept);
    drop(dir);
}

#[cfg(unix)]
#[test]
fn connect_and_disconnect_as_root_keep_the_stores_owner_on_the_store_and_its_backups() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test checks what `sudo local-mlx handy connect` does: run it as root (the CI container is)");
    }
    let (dir, path) = handy_dir(&fixture("fresh-install.json"));
    std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
    handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    handy::disconnect(&path).unwrap();
    for name in files_in(dir.path()) {
        let meta = std::fs::metadata(dir.path().join(&name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "{name} keeps the store's owner");
    }
    assert_eq!(files_in(dir.path()).len(), 5, "the store, two backups and their records");
}

#[test]
fn only_the_newest_five_backups_stay_and_disconnect_still_finds_its_own() {
    let (dir, path) = handy_dir(&fixture("fresh-install.json"));
    for _ in 0..12 {
        handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
        handy::disconnect(&path).unwrap();
    }
    let connected = handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    let backups: Vec<String> = files_in(dir.path()).into_iter().filter(|n| n.contains(".before-")).collect();
    let json: Vec<&String> = backups.iter().filter(|n| n.ends_with(".json")).collect();
    assert_eq!(json.len(), handy::store::KEPT_BACKUPS, "{backups:?}");
    assert_eq!(backups.len(), 2 * handy::store::KEPT_BACKUPS, "each with its record: {backups:?}");
    assert!(json.iter().any(|n| dir.path().join(n) == connected.backup.clone().unwrap()));
    handy::disconnect(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
}

/// Puts something other than a small regular file at a path.
#[cfg(unix)]
type Plant = dyn Fn(&Path);

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_a_link_to_dev_zero_or_a_huge_file_as_the_store_or_its_backup_is_refused_at_once() {
    let fifo = |path: &Path| {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    };
    let zero = |path: &Path| std::os::unix::fs::symlink("/dev/zero", path).unwrap();
    let huge = |path: &Path| {
        let file = std::fs::File::create(path).unwrap();
        file.set_len(handy::store::MAX_STORE_BYTES + 1).unwrap();
    };
    let plants: [(&Plant, &str); 3] =
        [(&fifo, "not a regular file"), (&zero, "not a regular file"), (&huge, "larger than 4 MiB")];
    for (plant, says) in plants {
        let dir = tempfile::tempdir().unwrap();
        let path = handy::store::store_path(Some(dir.path()));
        plant(&path);
        let status = handy::status(&path, URL).await.unwrap_err();
        let connect = handy::connect(&path, URL, None, &[MODEL.to_string()]).unwrap_err();
        let disconnect = handy::disconnect(&path).unwrap_err();
        for err in [status, connect, disconnect] {
            assert_eq!(err.kind(), "handy_store_corrupt", "{err}");
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
        assert_eq!(files_in(dir.path()).len(), 1, "nothing written beside it");
    }

    // The newest backup: a FIFO, a link to /dev/zero (never followed), a huge file.
    let plants: [(&Plant, &str); 3] =
        [(&fifo, "not a regular file"), (&zero, "symbolic link"), (&huge, "larger than 4 MiB")];
    for (plant, says) in plants {
        let (dir, path) = handy_dir(&fixture("fresh-install.json"));
        handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
        let connected = std::fs::read(&path).unwrap();
        plant(&dir.path().join("settings_store.json.before-local-mlx-connect-29991231T000000.000000000Z.json"));
        let err = handy::disconnect(&path).unwrap_err();
        assert_eq!(err.kind(), "handy_store_corrupt", "{err}");
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), connected, "the store is unchanged");
    }
}

/// A program on 127.0.0.1 that answers every request with a JSON body that never ends;
/// each connection's byte count arrives on the channel once the client hangs up.
async fn endless_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<u64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (sent_tx, sent_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let sent_tx = sent_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed before its request ended");
                    head.extend_from_slice(&buf[..n]);
                }
                let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                socket.write_all(start.as_bytes()).await.unwrap();
                let mut sent = 0u64;
                let first = b"{\"status\": \"";
                let chunk = [b' '; 64 << 10];
                let mut frame = format!("{:x}\r\n", first.len()).into_bytes();
                frame.extend_from_slice(first);
                frame.extend_from_slice(b"\r\n");
                while socket.write_all(&frame).await.is_ok() {
                    sent += frame.len() as u64;
                    frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                    frame.extend_from_slice(&chunk);
                    frame.extend_from_slice(b"\r\n");
                }
                let _ = sent_tx.send(sent);
            });
        }
    });
    (url, sent_rx)
}

#[tokio::test]
async fn status_against_a_server_whose_answers_never_end_reads_a_few_kb_and_says_so() {
    let (url, mut sent) = endless_server().await;
    let (_dir, path) = handy_dir(&fixture("fresh-install.json"));
    let status = handy::status(&path, &url).await.unwrap();
    let server = status.requirements.iter().find(|r| r.id == "server").unwrap();
    assert!(!server.ok && server.what.contains("larger than 64 kB"), "{server:?}");
    // /health and /models each: the client hung up after the cap, not after gigabytes
    // (the socket buffers between us hold a few MB at most).
    for _ in 0..2 {
        let bytes = sent.recv().await.unwrap();
        assert!(bytes < 32 << 20, "the server sent {bytes} bytes before the client hung up");
    }
}

#[tokio::test]
async fn connect_and_status_judge_a_providers_list_handy_cannot_parse_alike() {
    let custom = json!({"id": "custom", "label": "Custom", "base_url": URL, "allow_base_url_edit": true,
                        "models_endpoint": "/models", "supports_structured_output": false});
    let no_label = json!({"id": "x", "base_url": "http://x"});
    let broken_lists = [
        json!([custom.clone(), no_label.clone()]),
        json!([custom.clone(), "a bare string"]),
        json!([custom.clone(), 42]),
        json!([{"id": "custom", "label": "Custom", "base_url": 7}]),
        json!("not a list"),
    ];
    for providers in broken_lists {
        let mut store = tree(&fixture("fresh-install.json"));
        store["settings"]["post_process_providers"] = providers.clone();
        store["settings"]["post_process_provider_id"] = json!("custom");
        store["settings"]["post_process_models"]["custom"] = json!(MODEL);
        let (_dir, path) = handy_dir(&serde_json::to_vec_pretty(&store).unwrap());
        let base_url_ok =
            |status: &handy::HandyStatus| status.requirements.iter().find(|r| r.id == "base_url").unwrap().ok;

        assert!(!base_url_ok(&handy::status(&path, URL).await.unwrap()), "{providers}: Handy resets this list");
        let outcome = handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
        assert!(outcome.changes.iter().any(|c| c.field == handy::Field::CustomBaseUrl), "{providers}: {outcome:?}");
        assert!(base_url_ok(&handy::status(&path, URL).await.unwrap()), "{providers}: repaired");
        let again = handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
        assert!(again.changes.is_empty(), "{providers}: {:?}", again.changes);
    }
}

#[test]
fn a_large_integer_in_handys_store_keeps_its_digits_and_type_through_connect() {
    let mut text = String::from_utf8(fixture("fresh-install.json")).unwrap();
    let big = "123456789012345678901234567890";
    // In settings (a field Handy may add) and beside them in the store's root.
    text = text.replacen(
        "\"settings\": {",
        &format!("\"counter\": {big},\n  \"settings\": {{\n    \"a_big_id\": 18446744073709551616,"),
        1,
    );
    let (_dir, path) = handy_dir(text.as_bytes());
    handy::connect(&path, URL, Some(MODEL), &[MODEL.to_string()]).unwrap();
    let connected = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    assert!(connected.contains(&format!("\"counter\": {big},")), "{connected}");
    assert!(connected.contains("\"a_big_id\": 18446744073709551616,"), "{connected}");
    handy::disconnect(&path).unwrap();
    assert_eq!(String::from_utf8(std::fs::read(&path).unwrap()).unwrap(), text);
}
