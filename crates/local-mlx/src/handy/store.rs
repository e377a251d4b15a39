//! Handy's settings store on disk: where it is, reading it whole (every key, known or
//! not, kept as parsed), and the atomic replace after a backup (`backups`).
//!
//! Handy's store is tauri-plugin-store's JSON file: an object whose `"settings"` key
//! holds `AppSettings`. We parse it into `serde_json::Value`s and change only the
//! values a plan names, so everything else is written back as it was parsed. Without
//! serde_json's `preserve_order` (Handy builds without it too) keys come out sorted, as
//! Handy writes them.
//!
//! The store and its backups are read as untrusted files: only a regular file (opened
//! non-blocking, so a FIFO never hangs us), at most [`MAX_STORE_BYTES`]; a backup is
//! never read through a link. What we write keeps the store's owner and group (a
//! `sudo local-mlx handy connect` must not hand Handy's settings to root).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::as_read::AsRead;
use super::backups::{backup_path, backup_prefix, backups, prune_backups, record_path};
use super::schema::{IDENTIFIER, SETTINGS_KEY, STORE_FILE};
use crate::error::{Error, Result};
use crate::settings::create_private_file;

/// Overrides Handy's folder (the one holding `settings_store.json`), as `--handy-dir`.
pub const HANDY_DIR_ENV: &str = "LOCAL_MLX_HANDY_DIR";

/// The largest store (or backup) we read: Handy's is a few kB.
pub const MAX_STORE_BYTES: u64 = 4 << 20;

pub use super::backups::KEPT_BACKUPS;

/// Handy's app-data folder: `LOCAL_MLX_HANDY_DIR`, else Tauri's `app_data_dir()` for
/// `com.pais.handy`: `~/Library/Application Support/com.pais.handy` on macOS,
/// `%APPDATA%\com.pais.handy` on Windows, `$XDG_DATA_HOME/com.pais.handy` (default
/// `~/.local/share`) elsewhere. A portable Handy keeps it in `Data` next to its
/// executable: pass that folder.
pub fn default_handy_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(HANDY_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = || std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let data = if cfg!(target_os = "macos") {
        home().join("Library/Application Support")
    } else if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from).unwrap_or_else(|| home().join("AppData/Roaming"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".local/share"))
    };
    data.join(IDENTIFIER)
}

/// The store file in `handy_dir` (or in [`default_handy_dir`]).
pub fn store_path(handy_dir: Option<&Path>) -> PathBuf {
    handy_dir.map(Path::to_path_buf).unwrap_or_else(default_handy_dir).join(STORE_FILE)
}

/// Handy's store as parsed: the whole file, its `settings` object reachable.
#[derive(Debug, Clone)]
pub struct HandyStore {
    pub path: PathBuf,
    root: Map<String, Value>,
    /// Written as it was read: pretty (with newlines) or compact.
    pretty: bool,
    /// The text each member was read as, written back for the members not changed.
    as_read: Option<AsRead>,
}

impl HandyStore {
    /// Read the store at `path` (through a link, as Handy does): missing is
    /// [`Error::HandyNotFound`]; anything but a regular file of at most
    /// [`MAX_STORE_BYTES`] holding a JSON object with a `"settings"` object is
    /// [`Error::HandyStoreCorrupt`].
    pub fn load(path: &Path) -> Result<HandyStore> {
        let (bytes, _) = read_store_file(path, Links::Follow)?;
        Self::parse(path, &bytes)
    }

    /// Read a backup: as [`HandyStore::load`], but never through a link (we wrote it
    /// as a file; a link there is not ours).
    fn load_backup(path: &Path) -> Result<HandyStore> {
        let (bytes, _) = read_store_file(path, Links::Refuse)?;
        Self::parse(path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<HandyStore> {
        let corrupt = |reason: String| Error::HandyStoreCorrupt { path: path.to_path_buf(), reason };
        let root = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(root)) => root,
            Ok(_) => return Err(corrupt("it is JSON but not an object".into())),
            Err(e) => return Err(corrupt(format!("it is not JSON ({e})"))),
        };
        match root.get(SETTINGS_KEY) {
            Some(Value::Object(_)) => {}
            Some(_) => return Err(corrupt(format!("its \"{SETTINGS_KEY}\" is not an object"))),
            None => return Err(corrupt(format!("it has no \"{SETTINGS_KEY}\" (has Handy been opened once?)"))),
        }
        let as_read = AsRead::read(bytes);
        Ok(HandyStore { path: path.to_path_buf(), root, pretty: bytes.contains(&b'\n'), as_read })
    }

    /// The whole file as a value (for comparing trees).
    pub fn root(&self) -> &Map<String, Value> {
        &self.root
    }

    /// `AppSettings` as stored.
    pub fn settings(&self) -> &Map<String, Value> {
        self.root[SETTINGS_KEY].as_object().expect("checked at load")
    }

    pub fn settings_mut(&mut self) -> &mut Map<String, Value> {
        self.root.get_mut(SETTINGS_KEY).and_then(Value::as_object_mut).expect("checked at load")
    }

    /// Refuse before anything is written when the file is read-only (the rename would
    /// replace it all the same, against the owner's evident wish) or another user's
    /// while we are not root (the new file could not be given back to them).
    pub fn check_writable(&self) -> Result<()> {
        let metadata = std::fs::metadata(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        if metadata.permissions().readonly() {
            return Err(Error::HandyStoreReadOnly { path: self.path.clone() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let user = unsafe { libc::geteuid() };
            if user != 0 && user != metadata.uid() {
                return Err(Error::HandyStoreNotOwned { path: self.path.clone(), owner: metadata.uid() });
            }
        }
        Ok(())
    }

    /// Copy the file as it is now to `<file>.before-<action>-<UTC time>.json` beside it
    /// (0600: it holds Handy's API keys), with `record` (what this write changes) next
    /// to it, then replace the file with this store: a temp file in the same folder,
    /// synced, with the old file's owner, group and permissions, renamed over it. The
    /// backups beyond the newest [`KEPT_BACKUPS`] are removed after. Returns the
    /// backup's path. On an error nothing is left behind and the store is unchanged.
    pub fn save_with_backup(&self, action: &str, record: Option<&[u8]>) -> Result<PathBuf> {
        self.check_writable()?;
        // Write through a link to the file it points at, keeping the link.
        let target =
            std::fs::canonicalize(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        let (original, metadata) = read_store_file(&target, Links::Follow)?;
        let owner = Owner::of(&metadata);
        let backup = backup_path(&target, action, SystemTime::now());
        let record_file = record_path(&backup);
        let bytes = match &self.as_read {
            Some(as_read) => as_read.write(&self.root, self.pretty),
            None if self.pretty => serde_json::to_vec_pretty(&self.root).expect("JSON values serialize"),
            None => serde_json::to_vec(&self.root).expect("JSON values serialize"),
        };
        let tmp = target.with_extension(format!("json.local-mlx-tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp); // a leftover would keep its old mode
        let written = (|| {
            write_new_private(&backup, &original, owner)
                .map_err(|e| ("write a backup of Handy's settings to", &backup, e))?;
            if let Some(record) = record {
                write_new_private(&record_file, record, owner)
                    .map_err(|e| ("write a record of the change beside", &backup, e))?;
            }
            let replace = || {
                let mut file = create_private_file(&tmp)?;
                std::io::Write::write_all(&mut file, &bytes)?;
                owner.give(&file)?;
                file.set_permissions(metadata.permissions())?;
                file.sync_all()?;
                std::fs::rename(&tmp, &target)
            };
            replace().map_err(|e| ("write Handy's settings to", &target, e))
        })();
        if let Err((action, path, e)) = written {
            for leftover in [&tmp, &backup, &record_file] {
                let _ = std::fs::remove_file(leftover);
            }
            return Err(Error::io(action, path, e));
        }
        if let Err(e) = prune_backups(&target) {
            tracing::warn!(store = %target.display(), "cannot remove old backups of Handy's settings: {e}");
        }
        Ok(backup)
    }

    /// The newest backup `save_with_backup(action, …)` made beside this store, read,
    /// with the record saved beside it (`None` when there is none or it is unreadable).
    pub fn latest_backup(&self, action: &str) -> Result<Option<(HandyStore, Option<Vec<u8>>)>> {
        let target =
            std::fs::canonicalize(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        let (dir, prefix) = backup_prefix(&target, action);
        let newest = backups(&dir, &target)?.into_iter().filter(|name| name.starts_with(&prefix)).max();
        let Some(name) = newest else { return Ok(None) };
        let backup = HandyStore::load_backup(&dir.join(name))?;
        let record = read_store_file(&record_path(&backup.path), Links::Refuse).ok().map(|(bytes, _)| bytes);
        Ok(Some((backup, record)))
    }
}

/// Whether reading a path may go through a symbolic link.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    Follow,
    Refuse,
}

/// The bytes of a regular file of at most [`MAX_STORE_BYTES`], and its metadata.
/// Opened non-blocking: a FIFO planted as the store is refused, never waited on.
fn read_store_file(path: &Path, links: Links) -> Result<(Vec<u8>, std::fs::Metadata)> {
    let corrupt = |reason: String| Error::HandyStoreCorrupt { path: path.to_path_buf(), reason };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        let nofollow = if links == Links::Refuse { libc::O_NOFOLLOW } else { 0 };
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK | nofollow);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::HandyNotFound { path: path.to_path_buf() })
        }
        #[cfg(unix)]
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(corrupt("it is a symbolic link, not the file local-mlx wrote".into()))
        }
        Err(e) => return Err(Error::io("read Handy's settings", path, e)),
    };
    let metadata = file.metadata().map_err(|e| Error::io("read Handy's settings", path, e))?;
    if !metadata.is_file() {
        return Err(corrupt("it is not a regular file (a folder, a FIFO or a device)".into()));
    }
    let too_big = || corrupt(format!("it is larger than {} MiB (Handy's is a few kB)", MAX_STORE_BYTES >> 20));
    if metadata.len() > MAX_STORE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // Bounded again: the file may grow after the look at its length.
    file.take(MAX_STORE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io("read Handy's settings", path, e))?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(too_big());
    }
    Ok((bytes, metadata))
}

/// The user and group that own the store: what we write beside it or over it gets them.
#[derive(Clone, Copy)]
struct Owner {
    #[cfg(unix)]
    uid: u32,
    #[cfg(unix)]
    gid: u32,
}

impl Owner {
    fn of(metadata: &std::fs::Metadata) -> Owner {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Owner { uid: metadata.uid(), gid: metadata.gid() }
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Owner {}
        }
    }

    /// Give `file` this owner and group (a no-op when it has them). Refused unless we
    /// are root or the owner, and then nothing is renamed into place; the owner may
    /// not give a group they are not in, and then the file keeps theirs.
    fn give(self, file: &std::fs::File) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let now = file.metadata()?;
            if (now.uid(), now.gid()) == (self.uid, self.gid) {
                return Ok(());
            }
            match std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid)) {
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && now.uid() == self.uid => {}
                other => other?,
            }
        }
        let _ = file;
        Ok(())
    }
}

/// Create `path` (never over an existing file or link) as 0600 with `bytes` and
/// `owner`, synced.
fn write_new_private(path: &Path, bytes: &[u8], owner: Owner) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    owner.give(&file)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()
}
