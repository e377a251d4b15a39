//! What the engine's tests share: the fixture models, and the sidecar's token ids for
//! the same requests (tests/reference.py in python-backend's venv, real mlx-lm).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use local_mlx_engine::{Message, Request};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A fixture model folder (tools/build_fixtures.py builds them).
pub fn fixture(name: &str) -> PathBuf {
    let root = std::env::var_os("LOCAL_MLX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/local-mlx/fixtures"));
    let dir = root.join("repos/local-mlx-test").join(name);
    assert!(
        dir.join("config.json").is_file(),
        "fixture {} is missing: run `uv run --frozen --project tools python tools/build_fixtures.py tiny smol`",
        dir.display()
    );
    dir
}

pub fn tiny() -> PathBuf {
    fixture("tiny-random-qwen3")
}

pub fn smol() -> PathBuf {
    fixture("SmolLM2-135M-Instruct-Q4")
}

pub fn request(system: Option<&str>, user: &str, max_tokens: usize) -> Request {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(Message { role: "system".into(), content: s.into() });
    }
    messages.push(Message { role: "user".into(), content: user.into() });
    Request { messages, max_tokens, constrain_to_input: false }
}

#[derive(serde::Deserialize, Debug)]
pub struct Reference {
    pub prompt: Vec<u32>,
    pub tokens: Vec<u32>,
    pub cached: usize,
    pub weights: String,
}

/// The sidecar's answers to `requests`, in order, on one loaded model (so its prefix
/// cache works as in the sidecar); `weights` is LOCAL_MLX_CPU_WEIGHTS.
pub fn reference(model: &Path, weights: &str, requests: &[Request]) -> Vec<Reference> {
    let root = repo_root();
    let python = root.join("python-backend/.venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `uv sync --frozen --project python-backend`", python.display());
    let mut child = Command::new(python)
        .arg(root.join("crates/local-mlx-engine/tests/reference.py"))
        .arg(model)
        .env("PYTHONPATH", root.join("python-backend"))
        .env("LOCAL_MLX_CPU_WEIGHTS", weights)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for r in requests {
        writeln!(stdin, "{}", serde_json::to_string(r).unwrap()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference.py failed: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
