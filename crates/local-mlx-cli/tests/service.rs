//! `local-mlx service install | uninstall | status`, the real binary in a temp HOME:
//! the files it writes and removes, and the values it refuses.
//!
//! What runs here: `systemd-analyze --user verify` on the unit, Python's `plistlib` on the
//! LaunchAgent, file modes, and the plist's program run with its environment as launchd
//! runs it, which `status` then finds answering. `LOCAL_MLX_SERVICE_MANAGER` picks the
//! launchd path on Linux.
//!
//! What does not run here: a systemd user manager. Every command gets an empty
//! `XDG_RUNTIME_DIR` and no D-Bus address, so `systemctl --user` finds no manager even
//! on a desktop (the tests never touch the real one), and the launchd tests here have no
//! `launchctl` on `PATH`: `install` says so and prints the command that starts the
//! service by hand. tests/service_launchd.rs drives the stand-in `launchctl`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod service_home;

use service_home::*;

#[test]
fn linux_install_writes_a_unit_systemd_accepts_the_key_apart_and_uninstall_removes_exactly_them() {
    let home = Home::new();
    let before = home.files();
    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--port", &port], &home.linux_path(), Some(KEY));
    let out = text(&output.stdout);
    assert!(output.status.success(), "{out}{}", text(&output.stderr));

    let unit_path = home.path("home/.config/systemd/user/local-mlx.service");
    let env_path = home.path("home/.config/local-mlx/serve.env");
    let written = added(&before, &home.files());
    assert_eq!(written, BTreeMap::from([(unit_path.clone(), 0o644), (env_path.clone(), 0o600)]));
    assert_eq!(mode(env_path.parent().unwrap()), 0o700);

    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(!unit.contains("k3y"), "the key is not in the unit:\n{unit}");
    assert!(std::fs::read_to_string(&env_path)
        .unwrap()
        .contains(r#"LOCAL_MLX_API_KEY="k3y-with \"quotes\" & \$dollars""#));
    assert!(unit.contains(&format!("EnvironmentFile={}\n", env_path.display())), "{unit}");
    let exec = format!("ExecStart=\"{}\" \"serve\" \"--host\" \"localhost\" \"--port\" \"{port}\"", binary().display());
    assert!(unit.contains(&exec), "the installed binary by its real path:\n{unit}");
    assert!(unit.contains(&format!("Environment=\"PATH={}:/usr/local/bin:", home.path("bin").display())), "{unit}");

    verify(&home, &unit_path);

    println!("not started here: no systemd user manager runs in this test; checked what runs without one");
    assert!(out.contains("not started: no systemd user manager"), "{out}");
    assert!(out.contains("systemctl --user daemon-reload && systemctl --user enable --now local-mlx.service"), "{out}");

    let status = home.status(&home.linux_path());
    assert_eq!(status["installed"], true, "{status}");
    assert_eq!(status["running"], Value::Null, "unknown without a user manager: {status}");
    assert_eq!(status["url"], format!("http://localhost:{port}/v1"), "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    assert_eq!(status["file"], unit_path.to_str().unwrap(), "{status}");
    let plain = text(&home.run(&["service", "status"], &home.linux_path(), None).stdout);
    assert!(plain.contains("running:   unknown (no systemd user manager"), "{plain}");
    assert!(plain.contains(&format!("not answering (nothing answers at http://localhost:{port}/health)")), "{plain}");

    let output = home.run(&["service", "uninstall"], &home.linux_path(), None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(home.files(), before, "uninstall removes exactly what install wrote");
    assert_eq!(home.status(&home.linux_path())["installed"], false);
}

/// systemd's own parser on the unit: an unknown key, bad quoting, or a program that is
/// not at the path the quoting reads back as, fails it.
fn verify(home: &Home, unit: &Path) {
    if cfg!(target_os = "macos") {
        println!("systemd-analyze does not exist on macOS: the Linux jobs verify {}", unit.display());
        return;
    }
    let verify = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", home.path("run"))
        .output()
        .expect("systemd-analyze (Debian's systemd package; tools/ensure-system-deps.sh installs it)");
    assert!(verify.status.success() && verify.stderr.is_empty(), "{}", text(&verify.stderr));
}

#[test]
fn macos_plist_is_valid_holds_the_key_only_at_0600_and_uninstall_removes_exactly_it() {
    let home = Home::launchd();
    let before = home.files();
    let bin = home.path("bin").display().to_string(); // no launchctl here
    let output = home.run(
        &["service", "install", "--keep-alive", "10m", "--no-guard", "--answer-within", "20s"],
        &bin,
        Some(KEY),
    );
    let out = text(&output.stdout);
    assert!(output.status.success(), "{out}{}", text(&output.stderr));

    let plist_path = home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist");
    assert_eq!(added(&before, &home.files()), BTreeMap::from([(plist_path.clone(), 0o600)]));
    let plist = parse_plist(&plist_path);
    let program = binary().to_str().unwrap().to_string();
    let expected_args = [
        &program,
        "serve",
        "--host",
        "localhost",
        "--port",
        "8397",
        "--keep-alive",
        "10m",
        "--no-clean-up-check",
        "--answer-within",
        "20s",
    ];
    assert_eq!(plist["ProgramArguments"], serde_json::json!(expected_args), "{plist}");
    assert_eq!(plist["Label"], "dev.localmlx.serve");
    assert_eq!(plist["RunAtLoad"], true);
    assert_eq!(plist["KeepAlive"], serde_json::json!({"SuccessfulExit": false}), "restarted when it fails");
    assert_eq!(plist["ProcessType"], "Interactive", "not throttled as a background agent");
    let log = home.path("home/Library/Logs/local-mlx/serve.log");
    assert_eq!(plist["EnvironmentVariables"]["LOCAL_MLX_SERVICE_LOG"], log.to_str().unwrap(), "serve rotates it");
    assert_eq!(plist["StandardOutPath"], log.to_str().unwrap());
    assert_eq!(plist["StandardErrorPath"], log.to_str().unwrap());
    assert_eq!(mode(log.parent().unwrap()), 0o700, "launchd needs the log's folder to exist");
    assert_eq!(plist["EnvironmentVariables"]["LOCAL_MLX_API_KEY"], KEY, "the 0600 plist carries the key");
    let path = plist["EnvironmentVariables"]["PATH"].as_str().unwrap();
    assert!(path.starts_with(&format!("{bin}:")) && path.ends_with(":/usr/bin:/bin:/usr/sbin:/sbin"), "{path}");

    println!("not started here: no launchd on this machine; checked the plist with plistlib");
    let uid = unsafe { libc::getuid() };
    let by_hand = format!(
        "launchctl enable gui/{uid}/dev.localmlx.serve && launchctl bootstrap gui/{uid} {}",
        plist_path.display()
    );
    assert!(out.contains(&by_hand), "{out}");

    let output = home.run(&["service", "uninstall"], &bin, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(home.files(), before, "uninstall removes exactly what install wrote");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plists_program_run_as_launchd_runs_it_answers_and_status_says_so() {
    let home = Home::launchd();
    let bin = home.path("bin").display().to_string();
    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--port", &port], &bin, Some(KEY));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(home.status(&bin)["healthy"], false, "nothing runs yet");

    // launchd: exactly ProgramArguments, with exactly EnvironmentVariables (and HOME).
    let argv: Vec<&str> = plist["ProgramArguments"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let mut serve = Command::new(argv[0]);
    serve.args(&argv[1..]).env_clear().env("HOME", home.path("home"));
    for (name, value) in plist["EnvironmentVariables"].as_object().unwrap() {
        serve.env(name, value.as_str().unwrap());
    }
    let mut child = serve.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("http://localhost:{port}/v1");
    assert_eq!(line.trim_end(), format!("local-mlx serve: {url}"));

    let status = home.status(&bin);
    assert_eq!(status["url"], url.as_str(), "{status}");
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["health"], "idle", "{status}");
    assert_eq!(status["running"], Value::Null, "unknown without launchd: {status}");

    // The key reached the server through the plist's environment.
    let models = format!("{url}/models");
    let refused = reqwest::get(&models).await.unwrap().status();
    assert_eq!(refused, 401);
    let allowed = reqwest::Client::new().get(&models).bearer_auth(KEY).send().await.unwrap().status();
    assert_eq!(allowed, 200);

    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success(), "SIGTERM (launchctl bootout) is a clean stop");
}

#[test]
fn installing_twice_is_refused_until_uninstall_or_force_and_force_without_a_key_drops_it() {
    let home = Home::new();
    let path = home.linux_path();
    assert!(home.run(&["service", "install"], &path, Some(KEY)).status.success());
    let unit_path = home.path("home/.config/systemd/user/local-mlx.service");
    let env_path = home.path("home/.config/local-mlx/serve.env");
    let first = std::fs::read_to_string(&unit_path).unwrap();

    let output = home.run(&["service", "install", "--port", "9000"], &path, None);
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(
        err.contains("already installed") && err.contains("`local-mlx service uninstall`") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), first, "the installed unit is left alone");
    assert!(env_path.exists());

    let output = home.run(&["service", "install", "--port", "9000", "--force"], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains("\"--port\" \"9000\"") && !unit.contains("EnvironmentFile"), "{unit}");
    assert!(!env_path.exists(), "a key this install does not use is not left behind");
    assert!(text(&output.stdout).contains(&format!("removed {}", env_path.display())));

    // The key from a file, as `serve --api-key-file` reads it: the same options parse both.
    let key_file = home.path("key.txt");
    std::fs::write(&key_file, "from-a-file\n").unwrap();
    let key_arg = key_file.to_str().unwrap();
    let output = home.run(&["service", "install", "--force", "--api-key-file", key_arg], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(std::fs::read_to_string(&env_path).unwrap().contains("from-a-file"));
    assert!(!std::fs::read_to_string(&unit_path).unwrap().contains("from-a-file"));
}

#[test]
fn a_service_folder_that_cannot_be_created_is_a_clear_error_and_leaves_no_file() {
    let home = Home::new();
    // Root ignores permission bits, so the folder is made impossible another way: its
    // path passes through a regular file.
    std::fs::write(home.path("home/not-a-folder"), "").unwrap();
    let before = home.files();
    let mut command = home.command(&["service", "install"], &home.linux_path());
    // The key's file is written first (into a folder that works), then the unit fails.
    let output = command
        .env("XDG_CONFIG_HOME", home.path("home/not-a-folder"))
        .env("LOCAL_MLX_CONFIG_DIR", home.path("config"))
        .env("LOCAL_MLX_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    let folder = home.path("home/not-a-folder/systemd/user");
    assert!(err.contains(&format!("cannot create the folder {}", folder.display())), "{err}");
    assert!(err.contains("Not a directory") && err.contains("nothing was installed"), "{err}");
    assert_eq!(home.files(), before, "no temp file and no key file is left");

    let home = Home::launchd();
    std::fs::write(home.path("home/Library"), "").unwrap();
    let before = home.files();
    let output = home.run(&["service", "install"], &home.bare_path(), Some(KEY));
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    // The log's folder is made first (~/Library/Logs/local-mlx), and fails first.
    let folder = home.path("home/Library/Logs/local-mlx");
    assert!(err.contains(&format!("cannot create the folder {}", folder.display())), "{err}");
    assert_eq!(home.files(), before);
}

#[test]
fn options_serve_would_refuse_are_refused_at_install_and_nothing_is_written() {
    let home = Home::new();
    let before = home.files();
    for (args, says) in [
        (&["--port", "0"][..], "--port 0"),
        (&["--host", "0.0.0.0"][..], "LOCAL_MLX_API_KEY"),
        (&["--keep-alive", "soon"][..], "--keep-alive"),
        (&["--answer-within", "0s"][..], "--answer-within"),
    ] {
        let mut all = vec!["service", "install"];
        all.extend_from_slice(args);
        let output = home.run(&all, &home.linux_path(), None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = text(&output.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(home.files(), before);
}

#[test]
fn a_binary_path_with_spaces_markup_percent_and_dollar_is_written_so_systemd_and_plistlib_read_it_back() {
    let home = Home::new();
    let exe = binary_in(&home, "a b & <c> 100%h $HOME");
    let output = home.command_of(&exe, &["service", "install"], &home.linux_path()).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    verify(&home, &home.path("home/.config/systemd/user/local-mlx.service"));
    assert_eq!(home.status(&home.linux_path())["url"], "http://localhost:8397/v1");

    home.use_manager("launchd");
    let output = home.command_of(&exe, &["service", "install"], &home.bare_path()).output();
    assert!(output.unwrap().status.success());
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(plist["ProgramArguments"][0], exe.to_str().unwrap());

    // systemd will not run a program whose path holds a quote: refused before writing.
    home.use_manager("systemd");
    let exe = binary_in(&home, "it's \"quoted\"");
    let before = home.files();
    let output = home.command_of(&exe, &["service", "install", "--force"], &home.linux_path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("systemd refuses") && err.contains("move local-mlx"), "{err}");
    assert_eq!(home.files(), before);
    // launchd has no such rule.
    home.use_manager("launchd");
    let args = ["service", "install", "--force"];
    assert!(home.command_of(&exe, &args, &home.bare_path()).output().unwrap().status.success());
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(plist["ProgramArguments"][0], exe.to_str().unwrap());
}

#[test]
fn files_local_mlx_did_not_write_are_never_replaced_or_removed_and_the_error_names_them() {
    // Issue 26 item 10: a hand-written unit, a user's own serve.env, a unit that is a
    // symlink into a dotfiles folder.
    let home = Home::new();
    let unit = home.unit_path();
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    let hand_written = "[Service]\nExecStart=/opt/my/local-mlx serve --port 1234\n";
    std::fs::write(&unit, hand_written).unwrap();
    for args in [&["service", "uninstall"][..], &["service", "install", "--force"][..], &["service", "restart"][..]] {
        let output = home.run(args, &home.linux_path(), None);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = text(&output.stderr);
        assert!(err.contains(&format!("{} does not say", unit.display())) && err.contains("leaves it alone"), "{err}");
        assert_eq!(std::fs::read_to_string(&unit).unwrap(), hand_written, "{args:?}");
    }

    let home = Home::new();
    let dotfiles = home.path("dotfiles/local-mlx.service");
    std::fs::create_dir_all(dotfiles.parent().unwrap()).unwrap();
    // Even a link to a file we wrote once: replacing it would cut the link.
    std::fs::write(&dotfiles, "# Written by `local-mlx service install`\n").unwrap();
    std::fs::create_dir_all(home.unit_path().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&dotfiles, home.unit_path()).unwrap();
    let output = home.run(&["service", "install", "--force"], &home.linux_path(), None);
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains(&format!("is a symbolic link to {}", dotfiles.display())), "{err}");
    assert!(std::fs::symlink_metadata(home.unit_path()).unwrap().file_type().is_symlink());

    let home = Home::new();
    let env_file = home.path("home/.config/local-mlx/serve.env");
    std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
    std::fs::write(&env_file, "MY_OWN=1\n").unwrap();
    let before = home.files();
    for key in [None, Some(KEY)] {
        let output = home.run(&["service", "install"], &home.linux_path(), key);
        assert_eq!(output.status.code(), Some(1));
        assert!(text(&output.stderr).contains(&format!("{} does not say", env_file.display())));
        assert_eq!(home.files(), before, "nothing written, the user's file kept");
    }
    // Once it is moved away, install and uninstall work and touch only their own.
    std::fs::remove_file(&env_file).unwrap();
    assert!(home.run(&["service", "install"], &home.linux_path(), Some(KEY)).status.success());
    assert!(home.run(&["service", "uninstall"], &home.linux_path(), None).status.success());
    assert!(!env_file.exists() && !home.unit_path().exists());
}

#[test]
fn control_characters_and_noncharacters_are_refused_before_anything_is_written() {
    // Issue 26 item 13: a newline in XDG_CONFIG_HOME would inject a unit line; U+FFFF
    // makes the plist invalid XML.
    let home = Home::new();
    let before = home.files();
    let evil = format!("{}\nExecStartPre=/bin/touch /tmp/pwned", home.path("cfg").display());
    let output = home.command(&["service", "install"], &home.linux_path()).env("XDG_CONFIG_HOME", &evil).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("holds the character '\\n' (U+000A)") && err.contains("nothing was written"), "{err}");
    assert_eq!(home.files(), before);

    home.use_manager("launchd");
    let output = home
        .command(&["service", "install"], &home.bare_path())
        .env("LOCAL_MLX_EXTRA_MODELS", "org/model\u{FFFF}")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("LOCAL_MLX_EXTRA_MODELS holds the character '\\u{ffff}' (U+FFFF)"), "{err}");
    assert_eq!(home.files(), before);
}

#[test]
fn the_service_gets_the_folders_setup_used_resolved_and_secrets_only_in_the_0600_file() {
    // Issue 26 item 9.
    let home = Home::new();
    let endpoint = "https://user:s3cret@hub.example.org";
    let output = home
        .command(&["service", "install"], &home.linux_path())
        .current_dir(home.path("home"))
        .env("LOCAL_MLX_DATA_DIR", "data-here")
        .env("XDG_CACHE_HOME", home.path("cache"))
        .env("LOCAL_MLX_LOG", "local_mlx=debug")
        .env("HF_ENDPOINT", endpoint)
        .env("HF_TOKEN", "hf_t0ken")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let unit = std::fs::read_to_string(home.unit_path()).unwrap();
    let data = home.path("home/data-here");
    assert!(unit.contains(&format!("\"LOCAL_MLX_DATA_DIR={}\"", data.display())), "resolved:\n{unit}");
    let config = home.path("home/.config/local-mlx");
    assert!(unit.contains(&format!("\"LOCAL_MLX_CONFIG_DIR={}\"", config.display())), "{unit}");
    assert!(unit.contains(&format!("\"XDG_CACHE_HOME={}\"", home.path("cache").display())), "{unit}");
    assert!(unit.contains("\"LOCAL_MLX_LOG=local_mlx=debug\""), "{unit}");
    assert!(!unit.contains("s3cret") && !unit.contains("hf_t0ken"), "no secret in the 0644 unit:\n{unit}");
    let env_file = config.join("serve.env");
    assert_eq!(mode(&env_file), 0o600);
    let secrets = std::fs::read_to_string(&env_file).unwrap();
    assert!(secrets.contains(&format!("HF_ENDPOINT=\"{endpoint}\"")) && secrets.contains("HF_TOKEN=\"hf_t0ken\""));
    verify(&home, &home.unit_path());
}

#[test]
fn a_temporary_uvx_or_pipx_run_copy_is_refused_and_the_unit_gives_up_without_its_program() {
    // Issue 26 item 11.
    let home = Home::new();
    let before = home.files();
    for folder in ["home/.cache/uv/archive-v0/Xy12/bin", "home/.local/pipx/.cache/3f9a/bin"] {
        let exe = binary_in(&home, folder);
        let output = home.command_of(&exe, &["service", "install"], &home.linux_path()).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{folder}");
        let err = text(&output.stderr);
        assert!(err.contains("install it first: `uv tool install local-mlx`"), "{err}");
        std::fs::remove_file(exe).unwrap();
    }
    let after: BTreeMap<_, _> = home
        .files()
        .into_iter()
        .filter(|(p, _)| !p.starts_with(home.path("home/.cache")) && !p.starts_with(home.path("home/.local")))
        .collect();
    assert_eq!(after, before);

    let output = home.run(&["service", "install"], &home.linux_path(), None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let unit = std::fs::read_to_string(home.unit_path()).unwrap();
    assert!(unit.contains(&format!("ConditionFileIsExecutable={}\n", binary().display())), "{unit}");
    assert!(unit.contains("StartLimitIntervalSec=120\nStartLimitBurst=5\n"), "{unit}");
    verify(&home, &home.unit_path());
}

#[test]
fn an_unknown_service_manager_is_refused_with_the_choices() {
    let home = Home::new();
    let output =
        home.command(&["service", "status"], &home.linux_path()).env("LOCAL_MLX_SERVICE_MANAGER", "upstart").output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("LOCAL_MLX_SERVICE_MANAGER=\"upstart\" is neither `launchd` nor `systemd`"), "{err}");
}

#[test]
fn status_says_when_the_running_server_is_older_than_the_installed_binary() {
    // Issue 26 item 3: after `uv tool upgrade`, the service still runs the old binary.
    let home = Home::launchd();
    let old = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = old.local_addr().unwrap().port().to_string();
    let output = home.run(&["service", "install", "--host", "127.0.0.1", "--port", &port], &home.bare_path(), None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // An older local-mlx's /health, answered once by a real listener.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = old.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        let body = r#"{"status":"idle","version":"0.0.9 (commit 0123456789ab)"}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(format!("{head}{body}").as_bytes()).unwrap();
    });
    let output = home.run(&["service", "status"], &home.bare_path(), None);
    server.join().unwrap();
    let out = text(&output.stdout);
    assert!(out.contains("health:    answers (idle, local-mlx 0.0.9 (commit 0123456789ab))"), "{out}");
    assert!(
        out.contains(&format!(
            "note:      the service runs local-mlx 0.0.9 (commit 0123456789ab), older than the installed {} (commit ",
            env!("CARGO_PKG_VERSION")
        )) && out.contains("`local-mlx service restart` runs the installed one"),
        "{out}"
    );
}

#[test]
fn systemd_restart_lets_a_unit_that_gave_up_start_again_and_a_failed_start_exits_non_zero() {
    // Issue 26 item 6, the systemd side, with a stand-in `systemctl` on PATH.
    let home = Home::new();
    let path = home.launchd_path();
    let output = home.run(&["service", "install"], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("started:"));
    let unit = "local-mlx.service";
    let started = [
        "--user daemon-reload".to_string(),
        format!("--user enable {unit}"),
        format!("--user reset-failed {unit}"),
        format!("--user restart {unit}"),
    ];
    assert_eq!(home.systemctl_calls(), started);

    let output = home.run(&["service", "restart"], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(home.systemctl_calls()[4..], started[2..], "reset-failed, then restart");

    let output = home.command(&["service", "install", "--force"], &path).env("SYSTEMCTL_STANDIN_FAIL", "1").output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let err = text(&output.stderr);
    assert!(err.contains("installed but did not start") && err.contains("control process exited"), "{err}");
    assert!(err.contains("journalctl --user -u local-mlx.service"), "{err}");
}
