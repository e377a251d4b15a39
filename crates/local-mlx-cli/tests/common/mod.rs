//! The set-up every CLI test shares: the *tiny* model served by a real test hub and
//! pulled by the real `local-mlx` into a temp cache, and commands wired to both.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use test_hub::{fixture, workspace_root, TestHub};

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
