//! While Handy runs, `local-mlx handy connect` refuses and writes nothing: Handy saves
//! its settings when it quits and would undo the change. "Handy" here is a real
//! process: a copy of `sleep` with Handy's bundle identifier appended (as every Handy
//! binary holds it), found the way the real one is, also when started through an
//! AppImage's `AppRun` link; a plain program named `handy` is not Handy. Alone in its
//! test binary, so no other test sees these processes.

use std::path::Path;
use std::process::Command;

use local_mlx_handy::process::running_handy;

struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of `sleep` at `path`, with Handy's identifier appended when `handy`.
fn sleeper(path: &Path, handy: bool) {
    let mut bytes = std::fs::read("/bin/sleep").unwrap();
    if handy {
        bytes.extend_from_slice(local_mlx_handy::schema::IDENTIFIER.as_bytes());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn connect_and_disconnect_refuse_while_handy_runs_and_only_handy_counts() {
    let tmp = tempfile::tempdir().unwrap();

    // Another program that happens to be called `handy` is not Handy.
    let other = tmp.path().join("other/handy");
    sleeper(&other, false);
    let other = Stop(Command::new(&other).arg("600").spawn().unwrap());
    assert_ne!(running_handy().map(|h| h.pid), Some(other.0.id()), "a program named handy is not Handy");

    // Handy from an AppImage: its mount's usr/bin/handy, started through `AppRun`.
    let mount = tmp.path().join(".mount_HandyAb12");
    sleeper(&mount.join("usr/bin/handy"), true);
    std::os::unix::fs::symlink("usr/bin/handy", mount.join("AppRun")).unwrap();
    let handy = Stop(Command::new(mount.join("AppRun")).arg("600").spawn().unwrap());
    let pid = handy.0.id();
    assert_eq!(running_handy().map(|h| h.pid), Some(pid), "the detector finds it");

    let dir = tmp.path().join("com.pais.handy");
    std::fs::create_dir(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../local-mlx-handy/tests/fixtures/fresh-install.json");
    let store = dir.join("settings_store.json");
    std::fs::copy(&fixture, &store).unwrap();
    for args in [&["handy", "connect", "--model", "org/any"][..], &["handy", "disconnect"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_local-mlx"))
            .args(args)
            .env("LOCAL_MLX_HANDY_DIR", &dir)
            .env("HF_HUB_CACHE", tmp.path().join("cache"))
            .env("LOCAL_MLX_CONFIG_DIR", tmp.path().join("config"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("quit Handy first") && err.contains(&pid.to_string()), "{args:?}: {err}");
        assert_eq!(std::fs::read(&store).unwrap(), std::fs::read(&fixture).unwrap(), "unchanged");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no backup, no temp file");
    }

    drop(handy);
    assert_ne!(running_handy().map(|h| h.pid), Some(pid), "gone once it quits");
    drop(other);
}
