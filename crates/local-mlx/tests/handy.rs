//! `local_mlx::handy` on real files shaped as Handy writes its store (fixtures in
//! `tests/fixtures/handy/`, derived from Handy's own defaults and its frozen v0.9 test
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

use local_mlx::handy::{self, HandyStore};
use serde_json::{json, Value};

const URL: &str = "http://localhost:8397/v1";
const MODEL: &str = "mlx-community/Qwen3-1.7B-4bit";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/handy").join(name)).unwrap()
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
    assert_eq!(err.kind(), local_mlx::ErrorKind::NotDownloaded);
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
    let err = handy::connect(&path, URL, None, &[]).unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::NoModelDownloaded);
    assert!(err.to_string().contains("local-mlx setup"), "the one command that gets a model ready: {err}");
    let err = handy::connect(&path, "localhost:8397", None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::InvalidUrl, "{err}");
}

#[test]
fn a_corrupt_unreadable_or_read_only_store_is_a_clear_error_and_nothing_is_written() {
    let downloaded = [MODEL.to_string()];
    for (bytes, kind, says) in [
        (&b"{\"settings\": {\"post_process_enabled\": tru"[..], local_mlx::ErrorKind::HandyStoreCorrupt, "not JSON"),
        (&b"[1, 2]"[..], local_mlx::ErrorKind::HandyStoreCorrupt, "not an object"),
        (&b"{\"settings\": \"corrupt\"}"[..], local_mlx::ErrorKind::HandyStoreCorrupt, "\"settings\" is not an object"),
        (&b"{\"other\": 1}"[..], local_mlx::ErrorKind::HandyStoreCorrupt, "no \"settings\""),
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

    // Unreadable: the store's path is a folder.
    let dir = tempfile::tempdir().unwrap();
    let path = handy::store::store_path(Some(dir.path()));
    std::fs::create_dir(&path).unwrap();
    let err = handy::connect(&path, URL, None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::Io);
    assert!(
        err.to_string().contains("cannot read Handy's settings")
            && err.to_string().contains(&path.display().to_string())
    );

    // Read-only.
    let (dir, path) = handy_dir(&fixture("fresh-install.json"));
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&path, permissions).unwrap();
    let err = handy::connect(&path, URL, None, &downloaded).unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HandyStoreReadOnly, "{err}");
    assert!(err.to_string().contains("chmod u+w"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), fixture("fresh-install.json"));
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[test]
fn disconnect_without_a_connect_backup_says_there_is_nothing_to_put_back() {
    let (_dir, path) = handy_dir(&fixture("fresh-install.json"));
    let err = handy::disconnect(&path).unwrap_err();
    assert_eq!(err.kind(), local_mlx::ErrorKind::HandyNoBackup);
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
    assert_eq!(err.kind(), local_mlx::ErrorKind::HandyNotFound);
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
