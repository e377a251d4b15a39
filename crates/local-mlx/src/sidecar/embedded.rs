//! The sidecar's Python files, built into this binary, and written out once per version.
//!
//! Whatever installs the binary (`cargo install`, the `local-mlx` wheel, an app bundle)
//! carries the sidecar with it, so finding it never depends on the source tree or on
//! where an installer puts data files. [`materialize`] writes the files to
//! `<root>/<version>/`, where the version is a hash of their contents: a new binary
//! with other files gets a new folder, the same binary reuses its folder, and a folder
//! is complete once it has its name (it is filled under a temporary name and renamed).
//! Each start checks a complete folder's files against the embedded bytes and rewrites
//! any that differ or are missing (a temp file renamed over it: never half-written), so
//! a deleted module or an edited `server.py` lasts until the next start, no longer.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Every file `uv run … server.py` needs: the server, its package, and what uv syncs
/// from. A test checks this list against `python-backend/`.
const FILES: &[(&str, &[u8])] = &[
    ("server.py", include_bytes!("../../../../python-backend/server.py")),
    ("pyproject.toml", include_bytes!("../../../../python-backend/pyproject.toml")),
    ("uv.lock", include_bytes!("../../../../python-backend/uv.lock")),
    ("local_mlx_sidecar/__init__.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/__init__.py")),
    ("local_mlx_sidecar/answer.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/answer.py")),
    ("local_mlx_sidecar/app.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/app.py")),
    ("local_mlx_sidecar/connections.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/connections.py")),
    ("local_mlx_sidecar/constrain.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/constrain.py")),
    ("local_mlx_sidecar/contract.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/contract.py")),
    ("local_mlx_sidecar/cpu.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/cpu.py")),
    ("local_mlx_sidecar/deadline.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/deadline.py")),
    ("local_mlx_sidecar/engine.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/engine.py")),
    ("local_mlx_sidecar/errors.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/errors.py")),
    ("local_mlx_sidecar/model_dir.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/model_dir.py")),
    ("local_mlx_sidecar/schemas.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/schemas.py")),
    ("local_mlx_sidecar/service.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/service.py")),
    ("local_mlx_sidecar/text.py", include_bytes!("../../../../python-backend/local_mlx_sidecar/text.py")),
];

/// Written last into a version folder before it gets its name.
const COMPLETE: &str = ".local-mlx-complete";

/// The first 16 hex digits of a hash over every file's name and contents.
pub(crate) fn version() -> String {
    let mut hash = Sha256::new();
    for (name, bytes) in FILES {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..8])
}

/// The folder [`materialize`] fills under `root`.
pub(crate) fn version_dir(root: &Path) -> PathBuf {
    root.join(version())
}

/// `<root>/<version>/` with every embedded file, written now if it is not there yet.
/// Safe against a concurrent call (another process starting its sidecar): both fill
/// their own temporary folder and the first rename wins.
pub(crate) fn materialize(root: &Path) -> std::io::Result<PathBuf> {
    let dir = version_dir(root);
    if dir.join(COMPLETE).is_file() {
        heal(&dir)?;
        return Ok(dir);
    }
    crate::fs::create_private_dir(root)?;
    let incoming = root.join(format!(".incoming-{}-{}", std::process::id(), version()));
    let _ = std::fs::remove_dir_all(&incoming);
    let filled = fill(&incoming);
    let placed = filled.and_then(|()| {
        if dir.exists() && !dir.join(COMPLETE).is_file() {
            // Not ours to trust: a folder with this name that was never completed.
            std::fs::remove_dir_all(&dir)?;
        }
        match std::fs::rename(&incoming, &dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.join(COMPLETE).is_file() => Ok(()),
            Err(e) => Err(e),
        }
    });
    let _ = std::fs::remove_dir_all(&incoming);
    placed.map(|()| dir)
}

/// Rewrite each file of the complete folder `dir` that is not what this binary embeds.
fn heal(dir: &Path) -> std::io::Result<()> {
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if holds(&path, bytes) {
            continue;
        }
        tracing::warn!(file = %path.display(), "the sidecar's file differs from this binary's copy; rewriting it");
        if let Some(parent) = path.parent() {
            crate::fs::create_private_dir(parent)?;
        }
        crate::fs::write_atomic(&path, bytes, crate::fs::WriteOptions::private())?;
    }
    Ok(())
}

/// Whether `path` is a regular file (not a link) holding exactly `bytes`.
fn holds(path: &Path, bytes: &[u8]) -> bool {
    let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
    // Read only once it is a regular file of the right size: never a FIFO, never unbounded.
    is_file && std::fs::read(path).is_ok_and(|on_disk| on_disk == bytes)
}

fn fill(dir: &Path) -> std::io::Result<()> {
    crate::fs::create_private_dir(dir)?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            crate::fs::create_private_dir(parent)?;
        }
        let mut file = crate::fs::create_private_file(&path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    crate::fs::create_private_file(&dir.join(COMPLETE))?.write_all(version().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files of `python-backend/` that the sidecar runs from (tests and the venv
    /// are not part of it).
    fn sidecar_files_on_disk() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python-backend");
        let mut out = Vec::new();
        for name in ["server.py", "pyproject.toml", "uv.lock"] {
            out.push(name.to_string());
        }
        for entry in std::fs::read_dir(root.join("local_mlx_sidecar")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".py") {
                out.push(format!("local_mlx_sidecar/{name}"));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_sidecar_file_is_embedded() {
        let mut embedded: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, sidecar_files_on_disk(), "add the new file to FILES in embedded.rs");
    }

    #[test]
    fn materialized_files_match_the_source_and_are_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = materialize(tmp.path()).unwrap();
        assert_eq!(dir, tmp.path().join(version()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python-backend");
        for (name, _) in FILES {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), std::fs::read(source.join(name)).unwrap(), "{name}");
        }
        // A second call reuses the folder and heals it: an edited file, a deleted
        // module (with its folder), a link in place of a file are rewritten.
        std::fs::write(dir.join("server.py"), "edited").unwrap();
        std::fs::remove_dir_all(dir.join("local_mlx_sidecar")).unwrap();
        std::fs::remove_file(dir.join("uv.lock")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("uv.lock")).unwrap();
        assert_eq!(materialize(tmp.path()).unwrap(), dir);
        for (name, _) in FILES {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), std::fs::read(source.join(name)).unwrap(), "{name}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(version())], "no temporary folder left");
        let mut files: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        files.push(COMPLETE.into());
        files.push("local_mlx_sidecar".into());
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("local_mlx_sidecar")).unwrap())
            .map(|e| e.unwrap().path().strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        files.sort();
        assert_eq!(on_disk, files, "no temporary file left");
    }

    #[test]
    fn an_incomplete_folder_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = version_dir(tmp.path());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server.py"), "half").unwrap();
        materialize(tmp.path()).unwrap();
        assert!(dir.join(COMPLETE).is_file());
        assert_ne!(std::fs::read_to_string(dir.join("server.py")).unwrap(), "half");
        assert!(dir.join("local_mlx_sidecar/engine.py").is_file());
    }

    #[test]
    fn an_unwritable_root_is_an_error_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert!(materialize(&file.join("sidecar")).is_err());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
