//! The files `service install` writes: all or none, and only over files it wrote.
//!
//! Every file carries [`MARK`]. A file at one of our paths without it (a unit written by
//! hand, a user's own `serve.env`) or a symbolic link (into a dotfiles folder, say) is
//! not ours: `install --force` does not replace it and `uninstall` does not remove it;
//! the error names the file and what to do.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use local_mlx::settings::create_private_dir;

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

/// Write every file or none: each goes to a temp file in its own folder first, and only
/// when all are written are they renamed into place. On failure no temp file is left.
pub fn write_all(files: &[NewFile]) -> Result<()> {
    let mut temps: Vec<PathBuf> = Vec::new();
    let result = write_temps(files, &mut temps).and_then(|()| {
        for (file, temp) in files.iter().zip(&temps) {
            std::fs::rename(temp, &file.path)
                .with_context(|| format!("cannot move {} to {}", temp.display(), file.path.display()))?;
        }
        Ok(())
    });
    if result.is_err() {
        for temp in &temps {
            let _ = std::fs::remove_file(temp);
        }
    }
    result.context("nothing was installed")
}

fn write_temps(files: &[NewFile], temps: &mut Vec<PathBuf>) -> Result<()> {
    for file in files {
        let dir = file.path.parent().unwrap_or(Path::new("."));
        let created = if file.mode == 0o600 { create_private_dir(dir) } else { std::fs::create_dir_all(dir) };
        created.with_context(|| format!("cannot create the folder {}", dir.display()))?;
        let name = file.path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&temp); // a leftover would keep its old mode
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, file.mode);
        let mut handle = options.open(&temp).with_context(|| format!("cannot write {}", temp.display()))?;
        temps.push(temp.clone());
        handle
            .write_all(file.contents.as_bytes())
            .and_then(|()| handle.sync_all())
            .with_context(|| format!("cannot write {}", temp.display()))?;
    }
    Ok(())
}

/// Remove `path` if it is ours; `false` when it was not there.
pub fn remove_ours(path: &Path) -> Result<bool> {
    if !ours(path)? {
        return Ok(false);
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(true)
}
