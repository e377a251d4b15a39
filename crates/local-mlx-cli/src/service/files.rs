//! The files `service install` writes: all or none, and only over files it wrote.
//!
//! Every file carries [`MARK`]. A file at one of our paths without it (a unit written by
//! hand, a user's own `serve.env`) or a symbolic link (into a dotfiles folder, say) is
//! not ours: `install --force` does not replace it and `uninstall` does not remove it;
//! the error names the file and what to do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use local_mlx::fs::create_private_dir;
use local_mlx::fs::{stage, Staged, WriteOptions};

/// What every file `install` writes says, near its top.
pub const MARK: &str = "Written by `local-mlx service install`";

/// One file `install` writes.
#[derive(Debug)]
pub struct NewFile {
    pub path: PathBuf,
    pub contents: String,
    /// 0600 files go into a folder created 0700 (it holds the settings too).
    pub mode: u32,
}

/// `Ok(true)` when `path` is a file `install` wrote, `Ok(false)` when nothing is there,
/// and an error naming the file when something else is.
pub fn ours(path: &Path) -> Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        // A folder on the way is a file: nothing can be at `path`.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(false)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let why = if meta.file_type().is_symlink() {
        let to = std::fs::read_link(path).map(|t| format!(" to {}", t.display())).unwrap_or_default();
        format!("is a symbolic link{to}")
    } else if !meta.is_file() {
        "is not a regular file".to_string()
    } else {
        let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if String::from_utf8_lossy(&text).contains(MARK) {
            return Ok(true);
        }
        format!("does not say \"{MARK}\"")
    };
    bail!(
        "{} {why}: local-mlx did not write it and leaves it alone; move it away (or remove it) yourself, \
         then run the command again",
        path.display()
    )
}

/// Write every file or none: each is staged as a temp file in its own folder first
/// (synced), and only when all are written are they renamed into place. On failure no
/// temp file is left (a [`Staged`] not committed removes its own).
pub fn write_all(files: &[NewFile]) -> Result<()> {
    let staged = files.iter().map(stage_file).collect::<Result<Vec<Staged>>>().context("nothing was installed")?;
    for file in staged {
        file.commit().context("nothing was installed")?;
    }
    Ok(())
}

fn stage_file(file: &NewFile) -> Result<Staged> {
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let created = if file.mode == 0o600 { create_private_dir(dir) } else { std::fs::create_dir_all(dir) };
    created.with_context(|| format!("cannot create the folder {}", dir.display()))?;
    Ok(stage(&file.path, file.contents.as_bytes(), WriteOptions::new(file.mode))?)
}

/// Remove `path` if it is ours; `false` when it was not there.
pub fn remove_ours(path: &Path) -> Result<bool> {
    if !ours(path)? {
        return Ok(false);
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(true)
}
