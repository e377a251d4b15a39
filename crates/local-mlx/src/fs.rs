//! The bottom layer's file helpers: private folders and files, for the settings, the
//! sidecar's files and logs, and Handy's backups; the one atomic writer
//! ([`write_atomic`]); where a user's folders are ([`UserDir`]). Imports nothing of the
//! crate, so any module can use it without knotting itself to the one that used to hold
//! them.

mod atomic;
mod dirs;

pub use atomic::{stage, take_owner, write_atomic, Staged, WriteError, WriteOptions};
pub(crate) use dirs::xdg_dir_with;
pub use dirs::{app_dir, home_dir, xdg_dir, UserDir};

use std::fs::File;
use std::io;
use std::path::Path;

/// Create `dir` (and its parents) as 0700: the folder holds the prompt and the log.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Create (or truncate) `path` for writing; a new file gets mode 0600.
pub(crate) fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
