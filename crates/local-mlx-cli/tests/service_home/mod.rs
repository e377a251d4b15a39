//! What the `service` tests share: a temp HOME, the real binary run with nothing of this
//! process's environment, and the stand-in `launchctl` (tests/standins/launchctl) with
//! launchd's timing, whose jobs are ended when the test ends.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub const KEY: &str = "k3y-with \"quotes\" & $dollars";
pub const LABEL: &str = "dev.localmlx.serve";

/// A temp HOME, an empty runtime folder, a `bin` folder holding (a link to) the uv
/// this machine has, and a `standins` folder with the stand-in `launchctl`.
pub struct Home {
    tmp: tempfile::TempDir,
    /// `LOCAL_MLX_SERVICE_MANAGER` for the commands run from now on.
    manager: Cell<&'static str>,
}

impl Home {
    pub fn new() -> Home {
        let home = Home { tmp: tempfile::tempdir().unwrap(), manager: Cell::new("systemd") };
        for dir in ["home", "run", "bin", "standins", "launchd"] {
            std::fs::create_dir(home.path(dir)).unwrap();
        }
        std::fs::set_permissions(home.path("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let uv = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("uv"))
            .find(|uv| uv.is_file())
            .expect("uv on PATH (tools/ensure-uv.sh installs it)");
        std::os::unix::fs::symlink(uv, home.path("bin/uv")).unwrap();
        for tool in ["launchctl", "systemctl"] {
            let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standins").join(tool);
            std::os::unix::fs::symlink(standin, home.path("standins").join(tool)).unwrap();
        }
        home
    }

    /// A HOME whose commands take the launchd path.
    pub fn launchd() -> Home {
        let home = Home::new();
        home.use_manager("launchd");
        home
    }

    pub fn use_manager(&self, manager: &'static str) {
        self.manager.set(manager);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `local-mlx <args>` with nothing from this process's environment but what is set
    /// here: the temp HOME, no service manager to reach, `PATH` as given.
    pub fn command(&self, args: &[&str], path: &str) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_local-mlx")), args, path)
    }

    /// [`Home::command`] with the binary at `program`.
    pub fn command_of(&self, program: &Path, args: &[&str], path: &str) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("LOCAL_MLX_SERVICE_MANAGER", self.manager.get())
            .env("LAUNCHCTL_STANDIN_STATE", self.path("launchd"))
            .env("SYSTEMCTL_STANDIN_STATE", self.path("launchd"))
            .env("PATH", path)
            .stdin(Stdio::null());
        command
    }

    /// The `PATH` for systemd tests: uv's folder, then the system's (which has `systemctl`
    /// on Linux, so its "no user manager" answer is exercised). Not for launchd tests:
    /// on macOS /bin holds the real `launchctl`.
    pub fn linux_path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.path("bin").display())
    }

    /// uv's folder and nothing else: no service manager at all (on macOS, the real
    /// `launchctl` in /bin is never reached by a test).
    pub fn bare_path(&self) -> String {
        self.path("bin").display().to_string()
    }

    /// The stand-in `systemctl` calls so far, one line each.
    pub fn systemctl_calls(&self) -> Vec<String> {
        let calls = std::fs::read_to_string(self.path("launchd/calls")).unwrap_or_default();
        calls.lines().map(str::to_string).collect()
    }

    /// The stand-in `launchctl` (or `systemctl`) first, then uv's folder and the
    /// system's (for python3).
    pub fn launchd_path(&self) -> String {
        format!("{}:{}:/usr/bin:/bin", self.path("standins").display(), self.path("bin").display())
    }

    pub fn run(&self, args: &[&str], path: &str, key: Option<&str>) -> Output {
        let mut command = self.command(args, path);
        if let Some(key) = key {
            command.env("LOCAL_MLX_API_KEY", key);
        }
        command.output().unwrap()
    }

    /// Every file under the temp folder (but the stand-in's state), with its mode.
    pub fn files(&self) -> BTreeMap<PathBuf, u32> {
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
        out.retain(|path, _| !path.starts_with(self.path("launchd")));
        out
    }

    pub fn status(&self, path: &str) -> Value {
        let output = self.run(&["service", "status", "--json"], path, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The stand-in `launchctl <args>` itself, as the user would run it.
    pub fn launchctl(&self, args: &[&str]) -> Output {
        Command::new(self.path("standins/launchctl"))
            .args(args)
            .env("HOME", self.path("home"))
            .env("LAUNCHCTL_STANDIN_STATE", self.path("launchd"))
            .output()
            .unwrap()
    }

    /// The stand-in launchd's state: `jobs`, `disabled`, and `calls` (args and exit code).
    pub fn launchd_state(&self) -> Value {
        match std::fs::read(self.path("launchd/state.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Err(_) => serde_json::json!({}),
        }
    }

    /// The pid of the job the stand-in launchd started last, if it still has the job.
    pub fn job_pid(&self) -> Option<i32> {
        self.launchd_state()["jobs"][LABEL]["pid"].as_i64().map(|p| p as i32)
    }

    pub fn plist_path(&self) -> PathBuf {
        self.path("home/Library/LaunchAgents/dev.localmlx.serve.plist")
    }

    pub fn unit_path(&self) -> PathBuf {
        self.path("home/.config/systemd/user/local-mlx.service")
    }
}

impl Drop for Home {
    /// Nothing the stand-in launchd started outlives the test.
    fn drop(&mut self) {
        if let Some(pid) = self.job_pid() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn binary() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_local-mlx")).unwrap()
}

/// The files `after` has that `before` had not.
pub fn added(before: &BTreeMap<PathBuf, u32>, after: &BTreeMap<PathBuf, u32>) -> BTreeMap<PathBuf, u32> {
    after.iter().filter(|(path, _)| !before.contains_key(*path)).map(|(p, m)| (p.clone(), *m)).collect()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The plist as Python's `plistlib` reads it.
pub fn parse_plist(path: &Path) -> Value {
    let output = Command::new("python3")
        .args(["-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))"])
        .arg(path)
        .output()
        .expect("python3");
    assert!(output.status.success(), "plistlib: {}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// This binary, linked into `<temp>/<folder>/local-mlx`.
pub fn binary_in(home: &Home, folder: &str) -> PathBuf {
    let dir = home.path(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("local-mlx");
    if std::fs::hard_link(binary(), &exe).is_err() {
        std::fs::copy(binary(), &exe).unwrap();
    }
    exe
}
