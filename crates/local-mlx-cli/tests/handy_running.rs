//! While Handy runs, `local-mlx handy connect` refuses and writes nothing: Handy saves
//! its settings when it quits and would undo the change. "Handy" here is a real process
//! named `handy` (a copy of `sleep`), found the way the real one is. Alone in its test
//! binary, so no other test sees it.

use std::path::Path;
use std::process::Command;

use local_mlx::handy::process::running_handy;

struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_and_disconnect_refuse_while_a_process_named_handy_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("handy");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let handy = Stop(Command::new(&fake).arg("600").spawn().unwrap());
    let pid = handy.0.id();
    assert_eq!(running_handy().map(|h| h.pid), Some(pid), "the detector finds it");

    let dir = tmp.path().join("com.pais.handy");
    std::fs::create_dir(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../local-mlx/tests/fixtures/handy/fresh-install.json");
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
}
