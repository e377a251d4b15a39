//! `local-mlx handy status | connect | disconnect` as a user runs them: the real binary
//! against a Handy store in a temp folder (a fixture shaped as Handy writes it) and a
//! real `local-mlx serve` on port 0 serving the *tiny* model.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use serde_json::Value;

mod common;

use common::Env;

fn fixture(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../local-mlx-handy/tests/fixtures");
    std::fs::read(root.join(name)).unwrap()
}

/// `local-mlx serve --port 0` (with `key`, if any) and its base URL.
fn serve(env: &Env, key: Option<&str>) -> (Child, String) {
    let mut command = env.command(&["serve", "--port", "0"]);
    command.env_remove("LOCAL_MLX_API_KEY");
    if let Some(key) = key {
        command.env("LOCAL_MLX_API_KEY", key);
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim_end().strip_prefix("local-mlx serve: ").unwrap().to_string();
    (child, url)
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn handy(env: &Env, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["handy"];
    all.extend_from_slice(args);
    env.command(&all).env("LOCAL_MLX_HANDY_DIR", dir).output().unwrap()
}

fn handy_dir(env: &Env, fixture_name: &str) -> PathBuf {
    let dir = env.tmp.path().join("com.pais.handy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings_store.json"), fixture(fixture_name)).unwrap();
    dir
}

const FIXTURES: [&str; 4] = ["fresh-install.json", "other-providers.json", "older-v0.9.json", "unknown-fields.json"];

#[tokio::test(flavor = "multi_thread")]
async fn connect_turns_every_status_line_green_and_disconnect_puts_handy_back() {
    let env = Env::new().await;
    let (server, url) = serve(&env, None);
    let _server = Stop(server);
    for name in FIXTURES {
        let dir = handy_dir(&env, name);

        let before = handy(&env, &dir, &["status", "--url", &url]);
        let (out, _) = text(&before);
        assert_eq!(before.status.code(), Some(1), "{name}: {out}");
        assert!(out.contains("✗ provider ") && out.contains("Provider: Custom"), "{name}: {out}");
        assert!(out.contains("✓ local-mlx answers at"), "{name}: {out}");
        assert!(out.contains("local-mlx handy connect"), "{name}: {out}");

        let connected = handy(&env, &dir, &["connect", "--url", &url, "--model", &env.model]);
        let (out, err) = text(&connected);
        assert!(connected.status.success(), "{name}: {out}{err}");
        assert!(out.contains("post_process_provider_id: \"") && out.contains("→ \"custom\""), "{name}: {out}");
        assert!(out.contains(&format!("→ \"{}\"", env.model)), "{name}: {out}");
        assert!(out.contains("backup of the file as it was: "), "{name}: {out}");
        let keys = if name == "other-providers.json" { "Ctrl+Option+Space" } else { "Option+Shift+Space" };
        assert!(out.contains(&format!("press {keys} to dictate")), "{name}: {out}");

        let after = handy(&env, &dir, &["status", "--url", &url]);
        let (out, err) = text(&after);
        assert!(after.status.success(), "{name}: every line ✓:\n{out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 8, "{name}: {out}");
        assert!(lines.iter().all(|l| l.starts_with("✓ ")), "{name}: {out}");

        let again = handy(&env, &dir, &["connect", "--url", &url, "--model", &env.model]);
        let (out, _) = text(&again);
        assert!(again.status.success() && out.starts_with("nothing to change"), "{name}: {out}");

        let undone = handy(&env, &dir, &["disconnect"]);
        let (out, err) = text(&undone);
        assert!(undone.status.success(), "{name}: {out}{err}");
        assert!(out.contains("post_process_provider_id: \"custom\" → \""), "{name}: {out}");
        assert_eq!(std::fs::read(dir.join("settings_store.json")).unwrap(), fixture(name), "{name}");
        assert_eq!(handy(&env, &dir, &["status", "--url", &url]).status.code(), Some(1), "{name}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_whether_the_prompt_is_checked_and_speaks_json() {
    let env = Env::new().await;
    let (server, url) = serve(&env, None);
    let _server = Stop(server);
    for (name, checked) in [("fresh-install.json", true), ("other-providers.json", false)] {
        let dir = handy_dir(&env, name);
        assert!(handy(&env, &dir, &["connect", "--url", &url, "--model", &env.model]).status.success());
        let (out, _) = text(&handy(&env, &dir, &["status", "--url", &url]));
        let prompt = out.lines().find(|l| l.contains("selected;")).unwrap_or_default();
        assert_eq!(!prompt.contains("does not wrap"), checked, "{name}: {out}");

        let json = handy(&env, &dir, &["--json", "status", "--url", &url]);
        assert!(json.status.success());
        let status: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(status["ready"], true, "{status}");
        assert_eq!(status["url"], url.as_str());
        let ids: Vec<&str> =
            status["requirements"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["handy_found", "post_processing", "provider", "base_url", "server", "model", "prompt", "shortcut"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_a_key_is_checked_with_the_key_handy_has() {
    let env = Env::new().await;
    let (server, url) = serve(&env, Some("sk-local-handy"));
    let _server = Stop(server);
    let dir = handy_dir(&env, "fresh-install.json");
    assert!(handy(&env, &dir, &["connect", "--url", &url, "--model", &env.model]).status.success());

    let (out, _) = text(&handy(&env, &dir, &["status", "--url", &url]));
    assert!(out.contains("✗ local-mlx answers /health") && out.contains("API Key"), "{out}");

    // The user pastes the key in Handy (connect never writes API keys).
    let path = dir.join("settings_store.json");
    let mut store: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(store["settings"]["post_process_api_keys"]["custom"], "");
    store["settings"]["post_process_api_keys"]["custom"] = "sk-local-handy".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&store).unwrap()).unwrap();
    let output = handy(&env, &dir, &["status", "--url", &url]);
    assert!(output.status.success(), "{}", text(&output).0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_handy_status_says_how_to_install_it_and_connect_fails_clearly() {
    let env = Env::new().await;
    let dir = env.tmp.path().join("no-handy");
    let status = handy(&env, &dir, &["status"]);
    let (out, _) = text(&status);
    assert_eq!(status.status.code(), Some(1));
    assert!(out.starts_with("✗ Handy not found") && out.contains("https://handy.computer"), "{out}");

    let connect = handy(&env, &dir, &["--json", "connect"]);
    let (out, err) = text(&connect);
    assert_eq!(connect.status.code(), Some(1));
    assert!(err.starts_with("error: Handy's settings are not at"), "{err}");
    let error: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(error["error"]["kind"], "handy_not_found");

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings_store.json"), "{\"settings\": ").unwrap();
    let (_, err) = text(&handy(&env, &dir, &["status"]));
    assert!(err.contains("is not JSON") && err.contains("nothing was changed"), "{err}");
}

/// Each failure of Handy's crate reaches `--json` with the kind it has always had (a
/// core error inside it, with the core's), never the command's generic `handy_failed`.
#[tokio::test(flavor = "multi_thread")]
async fn each_handy_failure_keeps_its_json_kind() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new().await;
    let dir = handy_dir(&env, "fresh-install.json");
    let store = dir.join("settings_store.json");
    let empty_cache = env.tmp.path().join("empty-cache");
    let kind_of = |args: &[&str], cache: &Path| {
        let mut all = vec!["--json", "handy"];
        all.extend_from_slice(args);
        let output = env.command(&all).env("LOCAL_MLX_HANDY_DIR", &dir).env("HF_HUB_CACHE", cache).output().unwrap();
        let (out, err) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {out}{err}");
        let error: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        error["error"]["kind"].as_str().unwrap().to_string()
    };
    let cache = env.tmp.path().join("cache");
    assert_eq!(kind_of(&["connect", "--url", "localhost:8397"], &cache), "invalid_url");
    assert_eq!(kind_of(&["connect", "--model", "org/missing"], &cache), "not_downloaded");
    assert_eq!(kind_of(&["connect"], &empty_cache), "no_model_downloaded");
    assert_eq!(kind_of(&["disconnect"], &cache), "handy_no_backup");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(kind_of(&["connect"], &cache), "handy_store_read_only");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&store, "{\"settings\": ").unwrap();
    assert_eq!(kind_of(&["connect"], &cache), "handy_store_corrupt");
    std::fs::remove_file(&store).unwrap();
    assert_eq!(kind_of(&["disconnect"], &cache), "handy_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_handy_dir_variable_means_unset() {
    let env = Env::new().await;
    let data = env.tmp.path().join("xdg-data");
    let output =
        env.command(&["handy", "status"]).env("LOCAL_MLX_HANDY_DIR", "").env("XDG_DATA_HOME", &data).output().unwrap();
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    let expected = data.join("com.pais.handy/settings_store.json");
    assert!(out.contains(&format!("Handy not found: no {}", expected.display())), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_escapes_control_characters_from_handys_store() {
    let env = Env::new().await;
    let dir = handy_dir(&env, "fresh-install.json");
    let store = dir.join("settings_store.json");
    let mut tree: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    let s = &mut tree["settings"];
    s["post_process_provider_id"] = "\u{1b}]0;pwned\u{7}\u{1b}[2J".into();
    s["post_process_prompts"][0]["name"] = "evil\u{1b}[31m\r\nforged line".into();
    s["post_process_selected_prompt_id"] = s["post_process_prompts"][0]["id"].clone();
    std::fs::write(&store, serde_json::to_vec_pretty(&tree).unwrap()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = handy(&env, &dir, &["status", "--url", &format!("http://127.0.0.1:{port}/v1")]);
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {out:?}");
    assert!(out.contains("provider \\u{1b}]0;pwned"), "{out}");
    assert!(out.contains("evil\\u{1b}[31m\\r\\nforged line"), "{out}");
}

/// Another user (not root, not the store's owner) who can write Handy's folder cannot
/// give the new file the store's owner: the command fails and leaves the store as it was.
#[test]
fn another_user_cannot_replace_the_store_and_nothing_is_left_behind() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("com.pais.handy");
    std::fs::create_dir(&dir).unwrap();
    let store = dir.join("settings_store.json");
    std::fs::write(&store, fixture("fresh-install.json")).unwrap();
    let model = "org/model";
    local_mlx_handy::connect(&store, "http://localhost:8397/v1", Some(model), &[model.to_string()]).unwrap();
    let connected = std::fs::read(&store).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();

    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_local-mlx"),
            "handy",
            "disconnect",
        ])
        .env("LOCAL_MLX_HANDY_DIR", &dir)
        .env("LOCAL_MLX_CONFIG_DIR", dir.join("config"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("settings_store.json") && err.contains("belongs to user 1000"), "{err}");
    assert_eq!(std::fs::read(&store).unwrap(), connected, "the store is unchanged");
    let mut after: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    after.retain(|name| name != "config");
    assert_eq!(after.len(), files.len(), "no backup, record or temp file left: {after:?}");
    let meta = std::fs::metadata(&store).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_says_which_settings_it_left_because_the_user_changed_them() {
    let env = Env::new().await;
    let dir = handy_dir(&env, "fresh-install.json");
    let connected = handy(&env, &dir, &["connect", "--model", &env.model]);
    assert!(connected.status.success(), "{:?}", text(&connected));
    let store = dir.join("settings_store.json");
    let mut tree: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    tree["settings"]["post_process_provider_id"] = "anthropic".into();
    std::fs::write(&store, serde_json::to_vec_pretty(&tree).unwrap()).unwrap();
    let undone = handy(&env, &dir, &["disconnect"]);
    let (out, err) = text(&undone);
    assert!(undone.status.success(), "{out}{err}");
    assert!(out.contains("left as they are, changed in Handy since"), "{out}");
    assert!(out.contains("post_process_provider_id: \"anthropic\" (connect wrote \"custom\")"), "{out}");
    assert!(out.contains("the newest 5 backups are kept"), "{out}");
}
