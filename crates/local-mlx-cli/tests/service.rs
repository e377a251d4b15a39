//! `local-mlx service install | uninstall | status`, the real binary in a temp HOME.
//!
//! What runs here: the files written and removed, `systemd-analyze --user verify` on the
//! unit, Python's `plistlib` on the LaunchAgent, file modes, and the plist's program run
//! with its environment as launchd runs it, which `status` then finds answering.
//!
//! What does not run here: a systemd user manager or launchd. Every command gets an empty
//! `XDG_RUNTIME_DIR` and no D-Bus address, so `systemctl --user` finds no manager even
//! on a desktop (the tests never touch the real one), and the macOS tests' `PATH` has no
//! `launchctl`. So enabling and starting are not exercised; the tests check that
//! `install` says so and prints the command that starts the service by hand.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const KEY: &str = "k3y-with \"quotes\" & $dollars";

/// A temp HOME, an empty runtime folder, and a `bin` folder holding (a link to) the uv
/// this machine has, so the service's `PATH` can be checked to start with it.
struct Home {
    tmp: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home { tmp: tempfile::tempdir().unwrap() };
        for dir in ["home", "run", "bin"] {
            std::fs::create_dir(home.path(dir)).unwrap();
        }
        std::fs::set_permissions(home.path("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let uv = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("uv"))
            .find(|uv| uv.is_file())
            .expect("uv on PATH (tools/ensure-uv.sh installs it)");
        std::os::unix::fs::symlink(uv, home.path("bin/uv")).unwrap();
        home
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `local-mlx <args>` with nothing from this process's environment but what is set
    /// here: the temp HOME, no service manager to reach, `PATH` as given.
    fn command(&self, args: &[&str], path: &str) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_local-mlx")), args, path)
    }

    /// [`Home::command`] with the binary at `program`.
    fn command_of(&self, program: &Path, args: &[&str], path: &str) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("PATH", path)
            .stdin(Stdio::null());
        command
    }

    /// The `PATH` for Linux tests: uv's folder, then the system's (which has `systemctl`
    /// on this machine, so its "no user manager" answer is exercised).
    fn linux_path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.path("bin").display())
    }

    fn run(&self, args: &[&str], path: &str, key: Option<&str>) -> Output {
        let mut command = self.command(args, path);
        if let Some(key) = key {
            command.env("LOCAL_MLX_API_KEY", key);
        }
        command.output().unwrap()
    }

    /// Every file under the temp folder, with its mode.
    fn files(&self) -> BTreeMap<PathBuf, u32> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, u32>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let meta = std::fs::symlink_metadata(entry.path()).unwrap();
                if meta.is_dir() {
                    walk(&entry.path(), out);
                } else {
                    out.insert(entry.path(), meta.permissions().mode() & 0o777);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.tmp.path(), &mut out);
        out
    }

    fn status(&self, platform: &str, path: &str) -> Value {
        let output = self.run(&["service", "status", "--json", "--platform", platform], path, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn binary() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_local-mlx")).unwrap()
}

/// The files `after` has that `before` had not.
fn added(before: &BTreeMap<PathBuf, u32>, after: &BTreeMap<PathBuf, u32>) -> BTreeMap<PathBuf, u32> {
    after.iter().filter(|(path, _)| !before.contains_key(*path)).map(|(p, m)| (p.clone(), *m)).collect()
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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

    let status = home.status("linux", &home.linux_path());
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
    assert_eq!(home.status("linux", &home.linux_path())["installed"], false);
}

/// systemd's own parser on the unit: an unknown key, bad quoting, or a program that is
/// not at the path the quoting reads back as, fails it.
fn verify(home: &Home, unit: &Path) {
    let verify = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", home.path("run"))
        .output()
        .expect("systemd-analyze (Debian's systemd package; tools/ensure-system-deps.sh installs it)");
    assert!(verify.status.success() && verify.stderr.is_empty(), "{}", text(&verify.stderr));
}

/// The plist as Python's `plistlib` reads it.
fn parse_plist(path: &Path) -> Value {
    let output = Command::new("python3")
        .args(["-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))"])
        .arg(path)
        .output()
        .expect("python3");
    assert!(output.status.success(), "plistlib: {}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn macos_plist_is_valid_holds_the_key_only_at_0600_and_uninstall_removes_exactly_it() {
    let home = Home::new();
    let before = home.files();
    let bin = home.path("bin").display().to_string(); // no launchctl here
    let output = home.run(
        &["service", "install", "--platform", "macos", "--keep-alive", "10m", "--no-guard", "--answer-within", "20s"],
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
    let log = home.path("home/.config/local-mlx/serve.log");
    assert_eq!(plist["StandardOutPath"], log.to_str().unwrap());
    assert_eq!(plist["StandardErrorPath"], log.to_str().unwrap());
    assert_eq!(mode(log.parent().unwrap()), 0o700, "launchd needs the log's folder to exist");
    assert_eq!(plist["EnvironmentVariables"]["LOCAL_MLX_API_KEY"], KEY, "the 0600 plist carries the key");
    let path = plist["EnvironmentVariables"]["PATH"].as_str().unwrap();
    assert!(path.starts_with(&format!("{bin}:")) && path.ends_with(":/usr/bin:/bin:/usr/sbin:/sbin"), "{path}");

    println!("not started here: no launchd on this machine; checked the plist with plistlib");
    let uid = unsafe { libc::getuid() };
    assert!(out.contains(&format!("launchctl bootstrap gui/{uid} {}", plist_path.display())), "{out}");

    let output = home.run(&["service", "uninstall", "--platform", "macos"], &bin, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(home.files(), before, "uninstall removes exactly what install wrote");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plists_program_run_as_launchd_runs_it_answers_and_status_says_so() {
    let home = Home::new();
    let bin = home.path("bin").display().to_string();
    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--platform", "macos", "--port", &port], &bin, Some(KEY));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(home.status("macos", &bin)["healthy"], false, "nothing runs yet");

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

    let status = home.status("macos", &bin);
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

    let home = Home::new();
    std::fs::write(home.path("home/Library"), "").unwrap();
    let before = home.files();
    let output = home.run(&["service", "install", "--platform", "macos"], &home.linux_path(), Some(KEY));
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    let folder = home.path("home/Library/LaunchAgents");
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

/// This binary, linked into `<temp>/<folder>/local-mlx`.
fn binary_in(home: &Home, folder: &str) -> PathBuf {
    let dir = home.path(folder);
    std::fs::create_dir(&dir).unwrap();
    let exe = dir.join("local-mlx");
    if std::fs::hard_link(binary(), &exe).is_err() {
        std::fs::copy(binary(), &exe).unwrap();
    }
    exe
}

#[test]
fn a_binary_path_with_spaces_markup_percent_and_dollar_is_written_so_systemd_and_plistlib_read_it_back() {
    let home = Home::new();
    let exe = binary_in(&home, "a b & <c> 100%h $HOME");
    let output = home.command_of(&exe, &["service", "install"], &home.linux_path()).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    verify(&home, &home.path("home/.config/systemd/user/local-mlx.service"));
    assert_eq!(home.status("linux", &home.linux_path())["url"], "http://localhost:8397/v1");

    let output = home.command_of(&exe, &["service", "install", "--platform", "macos"], &home.linux_path()).output();
    assert!(output.unwrap().status.success());
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(plist["ProgramArguments"][0], exe.to_str().unwrap());

    // systemd will not run a program whose path holds a quote: refused before writing.
    let exe = binary_in(&home, "it's \"quoted\"");
    let before = home.files();
    let output = home.command_of(&exe, &["service", "install", "--force"], &home.linux_path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("systemd refuses") && err.contains("move local-mlx"), "{err}");
    assert_eq!(home.files(), before);
    // launchd has no such rule.
    let args = ["service", "install", "--platform", "macos", "--force"];
    assert!(home.command_of(&exe, &args, &home.linux_path()).output().unwrap().status.success());
    let plist = parse_plist(&home.path("home/Library/LaunchAgents/dev.localmlx.serve.plist"));
    assert_eq!(plist["ProgramArguments"][0], exe.to_str().unwrap());
}
