//! The set-up every CLI test shares: the *tiny* model served by a real test hub and
//! pulled by the real `local-mlx` into a temp cache, and commands wired to both.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use test_hub::TestHub;
use test_support::{fixture, workspace_root};

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub hub: TestHub,
    pub model: String,
}

impl Env {
    pub async fn new() -> Env {
        let tiny = tokio::task::spawn_blocking(|| fixture("tiny")).await.unwrap();
        let hub = TestHub::start(tiny.repos).await.unwrap();
        let env = Env { tmp: tempfile::tempdir().unwrap(), hub, model: tiny.repo_id };
        let output = env.run(&["pull", &env.model.clone()], None).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        env
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_local-mlx"));
        command
            .args(args)
            .env("HF_ENDPOINT", self.hub.url())
            .env("HF_HUB_CACHE", self.tmp.path().join("cache"))
            .env("LOCAL_MLX_CONFIG_DIR", self.tmp.path().join("config"))
            .env("LOCAL_MLX_BACKEND_DIR", workspace_root().join("python-backend"))
            .env_remove("HF_HUB_OFFLINE");
        command
    }

    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::piped());
            let mut child = command.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                std::io::Write::write_all(&mut pipe, text.as_bytes()).unwrap();
            }
            drop(pipe);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }
}

/// Pids of processes whose environment holds `marker` (children inherit it).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let needle = format!("LOCAL_MLX_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'));
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                    .unwrap_or(false)
        })
        .collect()
}

/// `local-mlx process` of a long transcript (`args` after `process`, `env_vars` added),
/// SIGKILLed once `processes` processes carry a fresh marker and the sidecar log holds
/// `loaded_line`: every marked process (the `engine` it started) must end within 15 s.
pub async fn sigkill_mid_process_leaves_nothing(
    env: &Env,
    args: &[&str],
    env_vars: &[(&str, &std::ffi::OsStr)],
    processes: usize,
    loaded_line: &str,
    engine: &str,
) {
    use std::time::{Duration, Instant};
    let marker = format!("{engine}-{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let transcript = "so um we should probably uh move the meeting to thursday ".repeat(40);
    let mut command_args = vec!["process", "--model", &env.model];
    command_args.extend_from_slice(args);
    command_args.push(&transcript);
    let mut child = env
        .command(&command_args)
        .envs(env_vars.iter().copied())
        .env("LOCAL_MLX_TEST_MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the engine is up and has said in the log that the model is loaded: the
    // CLI is then killed mid-call.
    let log = env.tmp.path().join("config/sidecar.log");
    let loaded = || std::fs::read_to_string(&log).is_ok_and(|l| l.contains(loaded_line));
    let deadline = Instant::now() + Duration::from_secs(120);
    while processes_with(&marker).len() < processes || !loaded() {
        assert!(Instant::now() < deadline, "the {engine} never loaded the model");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs in the CLI
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orphaned {engine} processes: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
