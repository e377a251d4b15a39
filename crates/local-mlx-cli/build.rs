//! `LOCAL_MLX_VERSION`: the crate's version and the commit it was built from, for
//! `local-mlx --version`, `/health` and `service status`.
//!
//! The commit is `LOCAL_MLX_COMMIT` when set (a build from a source archive can name
//! it), else git's `HEAD` when the source is a git checkout (a worktree too), else
//! none: a build without `.git` or without git still works and says so.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LOCAL_MLX_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("LOCAL_MLX_COMMIT").ok().filter(|c| !c.trim().is_empty()).or_else(git_commit);
    let long = match commit {
        Some(commit) => format!("{version} (commit {})", commit.trim()),
        None => format!("{version} (commit unknown: built without git)"),
    };
    println!("cargo:rustc-env=LOCAL_MLX_VERSION={long}");
}

/// `HEAD`'s short hash, and the files that change when `HEAD` moves, so cargo runs this
/// again then. (No `-dirty` mark: cargo would not rerun this on an edit, so the mark
/// would be stale as often as right.)
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if PathBuf::from(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(commit)
}
