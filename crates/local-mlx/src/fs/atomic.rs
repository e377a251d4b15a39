//! Replacing a file atomically, the one writer for every file local-mlx replaces: the
//! settings, Handy's store, a download's resume record, the cache's refs and size
//! records, the sidecar's embedded files, the service files. A reader, or a crash,
//! finds the old bytes or the new, never a mix: the bytes go to a temp file beside the
//! target, renamed over it.
//!
//! The temp file's name is hidden (`.` first) and unique per process and call, so two
//! writers never share one; every error removes it. [`stage`] and [`Staged::commit`]
//! split the write from the rename so several files can be written all or none.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`write_atomic`] writes: the new file's mode, whether it is durable, whether it
/// takes over the replaced file's permissions and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    mode: u32,
    durable: bool,
    keep_existing: bool,
    temp_suffix: &'static str,
}

impl WriteOptions {
    /// A file created with `mode` (less the umask), synced to disk with its folder.
    pub const fn new(mode: u32) -> WriteOptions {
        WriteOptions { mode, durable: true, keep_existing: false, temp_suffix: ".tmp" }
    }

    /// A file only its user can read (0600), synced.
    pub const fn private() -> WriteOptions {
        WriteOptions::new(0o600)
    }

    /// Skip both fsyncs: for a record that is only a hint, rewritten often (a crash may
    /// then leave it empty or old, never a mix of two writes).
    pub const fn not_synced(self) -> WriteOptions {
        WriteOptions { durable: false, ..self }
    }

    /// Give the new file the permissions, owner and group of the file it replaces
    /// (when there is one; else `mode`). Changing the owner needs root; the owner
    /// writing their own file keeps their group when they are not in the old one.
    pub const fn keep_existing(self) -> WriteOptions {
        WriteOptions { keep_existing: true, ..self }
    }

    /// End the temp file's name with `suffix` (`.tmp` by default), so a clean-up that
    /// goes by name finds one a kill left behind.
    pub const fn temp_suffix(self, suffix: &'static str) -> WriteOptions {
        WriteOptions { temp_suffix: suffix, ..self }
    }
}

/// A write that failed, naming the file it was to replace; that file is unchanged and
/// no temp file is left.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl From<WriteError> for io::Error {
    /// The same kind, the message naming the file.
    fn from(e: WriteError) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// Replace `path` with `bytes` atomically (see the module's doc).
pub fn write_atomic(path: &Path, bytes: &[u8], options: WriteOptions) -> Result<(), WriteError> {
    stage(path, bytes, options)?.commit()
}

/// The new bytes written to a temp file beside the target, not yet in its place.
/// Dropped without [`Staged::commit`], the temp file is removed.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    durable: bool,
}

/// Write `bytes` to a temp file beside `path` (with the mode, owner and sync asked
/// for), ready to be renamed over it.
pub fn stage(path: &Path, bytes: &[u8], options: WriteOptions) -> Result<Staged, WriteError> {
    let failed = |source| WriteError { path: path.to_path_buf(), source };
    let replaced = match options.keep_existing {
        true => existing(path).map_err(failed)?,
        false => None,
    };
    let staged =
        Staged { temp: temp_path(path, options.temp_suffix), target: path.to_path_buf(), durable: options.durable };
    // The name is unique among live processes: one there is a dead process's leftover.
    let _ = std::fs::remove_file(&staged.temp);
    let mut file = create_new(&staged.temp, options.mode).map_err(failed)?;
    let written = (|| {
        file.write_all(bytes)?;
        if let Some(replaced) = &replaced {
            take_owner(&file, replaced)?;
            file.set_permissions(replaced.permissions())?;
        }
        if options.durable {
            file.sync_all()?;
        }
        Ok(())
    })();
    written.map(|()| staged).map_err(failed)
}

impl Staged {
    /// Rename the temp file over the target (then sync the folder, when durable).
    pub fn commit(self) -> Result<(), WriteError> {
        std::fs::rename(&self.temp, &self.target).map_err(|source| WriteError { path: self.target.clone(), source })?;
        if self.durable {
            // The rename is durable once the folder is. It has happened either way, so a
            // folder that cannot be synced (some file systems refuse) is not an error.
            if let Ok(dir) = File::open(parent_of(&self.target)) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a commit the temp name is gone and this finds nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `.<name>.<pid>.<n><suffix>` beside `path`.
fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    parent_of(path).join(format!(".{name}.{}.{n}{suffix}", std::process::id()))
}

/// The metadata of the file `path` names (through a link), `None` when there is none.
fn existing(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Create `path`, never over anything already there (a planted link included).
fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Give `file` the owner and group of the file `replaced` describes (a no-op when it
/// has them). Refused
/// unless we are root or the owner; the owner may not give a group they are not in,
/// and then the file keeps theirs.
pub fn take_owner(file: &File, replaced: &Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let now = file.metadata()?;
        if (now.uid(), now.gid()) == (replaced.uid(), replaced.gid()) {
            return Ok(());
        }
        match std::os::unix::fs::fchown(file, Some(replaced.uid()), Some(replaced.gid())) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && now.uid() == replaced.uid() => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = (file, replaced);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    const CHILD_TARGET: &str = "LOCAL_MLX_TEST_STAGE_THEN_WAIT";

    /// Run in a child process (this test binary, re-run with [`CHILD_TARGET`] set): stage
    /// new bytes over the target, say so on stdout, and wait to be killed before the rename.
    #[test]
    #[ignore = "the child process of a_writer_killed_between_write_and_rename_…, run by it"]
    fn child_stages_a_write_and_waits_to_be_killed() {
        let target = std::env::var_os(CHILD_TARGET).expect("run by the test that kills it");
        let staged = stage(Path::new(&target), b"new bytes, never renamed", WriteOptions::private()).unwrap();
        println!("staged");
        std::io::stdout().flush().unwrap();
        let _ = std::io::stdin().read_line(&mut String::new()); // the kill comes first
        drop(staged);
        unreachable!("the parent kills this process before it reads a line");
    }

    #[test]
    fn a_writer_killed_between_write_and_rename_leaves_the_old_bytes_and_only_a_hidden_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("settings.json");
        std::fs::write(&target, b"old bytes").unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fs::atomic::tests::child_stages_a_write_and_waits_to_be_killed",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_TARGET, &target)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "staged" {
            line.clear();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "the child ended before staging");
        }
        child.kill().unwrap(); // SIGKILL: no destructor runs
        child.wait().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"old bytes");
        let names = names(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].starts_with(".settings.json.") && names[0].ends_with(".tmp"), "{names:?}");
        assert_eq!(names[1], "settings.json");
        // The next write over a leftover still lands whole.
        write_atomic(&target, b"newer", WriteOptions::private()).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"newer");
    }

    #[test]
    fn a_failed_rename_or_a_dropped_stage_leaves_the_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let error = write_atomic(&target, b"new", WriteOptions::private()).unwrap_err();
        assert_eq!(error.path, target);
        assert!(target.join("inside").exists());
        assert_eq!(names(dir.path()), ["occupied"], "the temp file is removed on error");

        let file = dir.path().join("file");
        std::fs::write(&file, b"old").unwrap();
        drop(stage(&file, b"new", WriteOptions::private()).unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["file", "occupied"]);
    }

    #[test]
    fn a_folder_that_cannot_be_written_gives_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_folder = dir.path().join("plain-file");
        std::fs::write(&not_a_folder, b"").unwrap();
        for target in [dir.path().join("missing/settings.json"), not_a_folder.join("settings.json")] {
            let error = write_atomic(&target, b"x", WriteOptions::private()).unwrap_err();
            assert!(error.to_string().starts_with(&format!("cannot write {}: ", target.display())), "{error}");
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            let locked = dir.path().join("locked");
            std::fs::create_dir(&locked).unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
            let error = write_atomic(&locked.join("a"), b"x", WriteOptions::private()).unwrap_err();
            assert_eq!(error.source.kind(), io::ErrorKind::PermissionDenied, "{error}");
            assert!(error.to_string().contains(&locked.join("a").display().to_string()), "{error}");
        }
    }

    #[test]
    fn a_new_file_gets_the_mode_asked_and_a_replaced_one_keeps_its_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        write_atomic(&new, b"x", WriteOptions::private()).unwrap();
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o600);

        let kept = dir.path().join("kept");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            std::os::unix::fs::chown(&kept, Some(4321), Some(4322)).unwrap();
        }
        let before = std::fs::metadata(&kept).unwrap();
        write_atomic(&kept, b"new", WriteOptions::private().keep_existing()).unwrap();
        let after = std::fs::metadata(&kept).unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), b"new");
        assert_ne!(after.ino(), before.ino(), "replaced, not rewritten in place");
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        if root {
            assert_eq!((after.uid(), after.gid()), (4321, 4322));
        }

        // Without keep_existing the new file has the mode asked, not the old one's.
        write_atomic(&kept, b"newer", WriteOptions::private()).unwrap();
        assert_eq!(std::fs::metadata(&kept).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn concurrent_writers_each_land_whole_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ref");
        let writes: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 4096]).collect();
        let (writes, target) = (&writes, &target);
        std::thread::scope(|scope| {
            for bytes in writes {
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(target, bytes, WriteOptions::new(0o644)).unwrap();
                        let read = std::fs::read(target).unwrap();
                        assert!(writes.contains(&read), "a mix of two writes");
                    }
                });
            }
        });
        assert_eq!(names(dir.path()), ["ref"]);
    }

    #[test]
    fn a_temp_suffix_names_the_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("abc.ranges.incomplete");
        let staged = stage(&target, b"x", WriteOptions::new(0o644).not_synced().temp_suffix(".incomplete")).unwrap();
        let names = names(dir.path());
        assert!(names[0].starts_with(".abc.ranges.incomplete.") && names[0].ends_with(".incomplete"), "{names:?}");
        staged.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }
}
