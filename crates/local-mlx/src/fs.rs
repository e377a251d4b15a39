//! The bottom layer's file helpers: private folders and files, for the settings, the
//! sidecar's files and logs, and Handy's backups. Imports nothing of the crate, so any
//! module can use it without knotting itself to the one that used to hold them.

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
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Create `path`, failing if anything (a link included) is already there.
#[cfg(unix)]
pub(crate) fn create_new_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(path)
}
