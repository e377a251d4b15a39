//! The fixture models of `tools/build_fixtures.py`, for tests and benchmarks.
//!
//! One place runs the builder (through `uv`, in the workspace's `tools/` project) and
//! reads its `<key>\t<repo_id>\t<path>` line, so every test and bench that needs the
//! *tiny* or *smol* model asks here. The builder caches its output, so a call after the
//! first costs a `uv run` start-up.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A built fixture model.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The repo id the hub serves it as (`local-mlx-test/...`).
    pub repo_id: String,
    /// The model folder (what mlx-lm loads).
    pub path: PathBuf,
    /// The folder to serve with `test_hub::TestHub::start` (`<root>/repos`).
    pub repos: PathBuf,
}

/// The workspace root (holds `tools/` and `python-backend/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support is two levels deep")
        .to_path_buf()
}

/// Build (or find, cached) the fixture `key` (`tiny`, `smol`). Panics with the
/// builder's own message when it fails: these are test preconditions.
pub fn fixture(key: &str) -> Fixture {
    let root = workspace_root();
    let output = Command::new("uv")
        .args(["run", "--frozen", "--project"])
        .arg(root.join("tools"))
        .arg("python")
        .arg(root.join("tools/build_fixtures.py"))
        .arg(key)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .expect("uv must be installed to build the fixture models (tools/ensure-uv.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tools/build_fixtures.py {key} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key}\t")))
        .unwrap_or_else(|| panic!("no '{key}' line from build_fixtures.py: {stdout}"));
    let fields: Vec<&str> = line.split('\t').collect();
    let path = PathBuf::from(fields[2]);
    let repos = path.ancestors().nth(2).expect("<root>/repos/<org>/<name>").to_path_buf();
    Fixture { repo_id: fields[1].to_string(), path, repos }
}
