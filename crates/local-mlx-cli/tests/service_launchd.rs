//! The launchd path run against the stand-in `launchctl` (tests/standins/launchctl),
//! which has launchd's timing: `bootout` returns at once while the job stays loaded for
//! a second and a half (`bootstrap` fails with 37, then 5), and a label disabled in Login
//! Items refuses `bootstrap` until `enable`. Its jobs are real `local-mlx serve`
//! processes started from the plist, so `status` asks a real server.
//!
//! Issue 26 items 6 (launchd's timing, `restart`, non-zero exit), 7 (the manager picked
//! by `LOCAL_MLX_SERVICE_MANAGER`, the tool on `PATH`), 8 (the log rotated) and 3 (the
//! running version).

mod service_home;

use serde_json::Value;
use service_home::*;

/// The exit codes the stand-in gave `launchctl <verb>` calls, in order.
fn codes(home: &Home, verb: &str) -> Vec<i64> {
    let state = home.launchd_state();
    let calls = state["calls"].as_array().cloned().unwrap_or_default();
    calls.iter().filter(|c| c["args"][0] == verb).map(|c| c["code"].as_i64().unwrap()).collect()
}

/// Whether a process is running (not gone, not a zombie), as `ps` says on Linux and macOS.
fn alive(pid: i32) -> bool {
    let output = std::process::Command::new("ps").args(["-o", "stat=", "-p", &pid.to_string()]).output().unwrap();
    let stat = text(&output.stdout);
    !stat.trim().is_empty() && !stat.trim_start().starts_with('Z')
}

/// `service status --json`, once the `starts`-th server on `port` answers: `serve`
/// prints its URL when it listens, and the stand-in appends that to the log, so the log
/// is the signal.
fn status_once_listening(home: &Home, port: &str, starts: usize) -> Value {
    let log = home.path("home/Library/Logs/local-mlx/serve.log");
    let line = format!("local-mlx serve: http://localhost:{port}/v1");
    let seen = || std::fs::read_to_string(&log).is_ok_and(|text| text.matches(&line).count() >= starts);
    wait_for(seen, &format!("{line} in the log"));
    home.status(&home.launchd_path())
}

/// Wait until `done` (each check is a file read; no timing is asserted), at most a minute.
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "no {what} within a minute");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn reinstalling_waits_for_launchd_to_let_go_enables_a_disabled_label_and_the_new_server_answers() {
    let home = Home::launchd();
    let path = home.launchd_path();
    // The user turned local-mlx off in Login Items once: the label is disabled.
    let uid = unsafe { libc::getuid() };
    let disable = home.launchctl(&["disable", &format!("gui/{uid}/{LABEL}")]);
    assert!(disable.status.success(), "{}", text(&disable.stderr));

    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--port", &port], &path, None);
    let out = text(&output.stdout);
    assert!(output.status.success(), "{out}{}", text(&output.stderr));
    assert!(out.contains("started:"), "{out}");
    let status = status_once_listening(&home, &port, 1);
    assert_eq!((status["running"].clone(), status["healthy"].clone()), (true.into(), true.into()), "{status}");
    assert_eq!(status["version"], status["installed_version"], "{status}");
    assert!(status["version"].as_str().unwrap().contains("(commit "), "{status}");
    assert_eq!(status["version_note"], Value::Null);
    let first = home.job_pid().unwrap();

    // The reconfigure path (and the only restart after an upgrade before `restart`):
    // the old job is booted out and is still loaded when the new one is bootstrapped.
    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--force", "--port", &port], &path, None);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    let bootstraps = codes(&home, "bootstrap");
    assert!(bootstraps.len() >= 2 && bootstraps.last() == Some(&0), "{bootstraps:?}");
    assert!(bootstraps.contains(&5), "launchd still held the label once, and install retried: {bootstraps:?}");
    let status = status_once_listening(&home, &port, 1);
    assert_eq!(status["healthy"], true, "{status}");
    let second = home.job_pid().unwrap();
    assert!(second != first && !alive(first), "the old server is gone, a new one runs");

    // `service restart`: a new process on the same port.
    let output = home.run(&["service", "restart"], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(codes(&home, "kickstart"), [0]);
    let third = home.job_pid().unwrap();
    assert!(third != second && !alive(second));
    assert_eq!(status_once_listening(&home, &port, 2)["healthy"], true);

    // Uninstall waits until launchd has let go: installing again at once just works.
    let output = home.run(&["service", "uninstall"], &path, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!home.plist_path().exists());
    wait_for(|| !alive(third), "end of the server after bootout");
    let status = home.status(&path);
    assert_eq!((status["installed"].clone(), status["running"].clone()), (false.into(), false.into()), "{status}");
}

#[test]
fn a_start_launchd_refuses_exits_non_zero_and_says_why() {
    let home = Home::launchd();
    let output = home
        .command(&["service", "install", "--port", &free_port().to_string()], &home.launchd_path())
        .env("LAUNCHCTL_STANDIN_REFUSE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let err = text(&output.stderr);
    assert!(err.contains("installed but did not start") && err.contains("125: Domain does not support"), "{err}");
    assert!(err.contains("`local-mlx service restart` tries again"), "{err}");
    assert!(home.plist_path().exists(), "the files stay, for `restart`");
}

#[test]
fn the_log_past_its_limit_is_rotated_when_the_service_starts() {
    let home = Home::launchd();
    let log = home.path("home/Library/Logs/local-mlx/serve.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let big = std::fs::File::create(&log).unwrap();
    big.set_len(10 * 1024 * 1024 + 1).unwrap();
    drop(big);
    let port = free_port().to_string();
    let output = home.run(&["service", "install", "--port", &port], &home.launchd_path(), None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    status_once_listening(&home, &port, 1);
    let rotated = std::fs::metadata(home.path("home/Library/Logs/local-mlx/serve.log.1")).unwrap();
    assert_eq!(rotated.len(), 10 * 1024 * 1024 + 1);
    assert!(std::fs::metadata(&log).unwrap().len() < 4096, "a fresh log");
    assert!(home.run(&["service", "uninstall"], &home.launchd_path(), None).status.success());
}

#[test]
fn restart_without_a_service_says_to_install_it() {
    let home = Home::launchd();
    let output = home.run(&["service", "restart"], &home.launchd_path(), None);
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("not installed") && err.contains("`local-mlx service install`"), "{err}");
    assert!(codes(&home, "kickstart").is_empty());
}

#[test]
fn a_bootout_already_in_progress_is_waited_out_not_taken_for_a_failure() {
    // launchd answers a second `bootout` of a label it is still letting go with 36.
    let home = Home::launchd();
    let path = home.launchd_path();
    let port = free_port().to_string();
    let install = |force: bool| {
        let mut args = vec!["service", "install", "--port", &port];
        args.extend(force.then_some("--force"));
        // Four seconds of letting go: the second bootout surely lands inside them.
        home.command(&args, &path).env("LAUNCHCTL_STANDIN_LETGO", "4").output().unwrap()
    };
    assert!(install(false).status.success());
    status_once_listening(&home, &port, 1);
    let uid = unsafe { libc::getuid() };
    let by_hand = home.launchctl(&["bootout", &format!("gui/{uid}/{LABEL}")]);
    assert!(by_hand.status.success(), "{}", text(&by_hand.stderr));
    let output = install(true);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    // The first install's (nothing loaded yet), the user's, then ours while that one is
    // under way.
    assert_eq!(codes(&home, "bootout"), [113, 0, 36]);
    assert_eq!(status_once_listening(&home, &port, 2)["healthy"], true);
    assert!(home.run(&["service", "uninstall"], &path, None).status.success());
}
