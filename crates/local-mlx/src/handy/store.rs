//! Handy's settings store on disk: where it is, reading it whole (every key, known or
//! not, kept as parsed), the timestamped backup beside it, and the atomic replace.
//!
//! Handy's store is tauri-plugin-store's JSON file: an object whose `"settings"` key
//! holds `AppSettings`. We parse it into `serde_json::Value`s and change only the
//! values a plan names, so everything else is written back as it was parsed. Without
//! serde_json's `preserve_order` (Handy builds without it too) keys come out sorted, as
//! Handy writes them.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::schema::{IDENTIFIER, SETTINGS_KEY, STORE_FILE};
use crate::error::{Error, Result};
use crate::settings::create_private_file;

/// Overrides Handy's folder (the one holding `settings_store.json`), as `--handy-dir`.
pub const HANDY_DIR_ENV: &str = "LOCAL_MLX_HANDY_DIR";

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
}

impl HandyStore {
    /// Read the store at `path`: missing is [`Error::HandyNotFound`], anything but a
    /// JSON object with a `"settings"` object is [`Error::HandyStoreCorrupt`].
    pub fn load(path: &Path) -> Result<HandyStore> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::HandyNotFound { path: path.to_path_buf() })
            }
            Err(e) => return Err(Error::io("read Handy's settings", path, e)),
        };
        let store = Self::parse(path, &bytes)?;
        Ok(store)
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
        Ok(HandyStore { path: path.to_path_buf(), root, pretty: bytes.contains(&b'\n') })
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

    /// Refuse before anything is written when the file is read-only: the rename would
    /// replace it all the same, against the owner's evident wish.
    pub fn check_writable(&self) -> Result<()> {
        let metadata = std::fs::metadata(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        if metadata.permissions().readonly() {
            return Err(Error::HandyStoreReadOnly { path: self.path.clone() });
        }
        Ok(())
    }

    /// Copy the file as it is now to `<file>.before-<action>-<UTC time>.json` beside it
    /// (0600: it holds Handy's API keys), then replace the file with this store: a temp
    /// file in the same folder, synced, with the old file's permissions, renamed over it.
    /// Returns the backup's path.
    pub fn save_with_backup(&self, action: &str) -> Result<PathBuf> {
        self.check_writable()?;
        // Write through a link to the file it points at, keeping the link.
        let target =
            std::fs::canonicalize(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        let original = std::fs::read(&target).map_err(|e| Error::io("read Handy's settings", &target, e))?;
        let backup = backup_path(&target, action, SystemTime::now());
        write_new_private(&backup, &original)
            .map_err(|e| Error::io("write a backup of Handy's settings to", &backup, e))?;

        let bytes = if self.pretty { serde_json::to_vec_pretty(&self.root) } else { serde_json::to_vec(&self.root) }
            .expect("JSON values serialize");
        let tmp = target.with_extension(format!("json.local-mlx-tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp); // a leftover would keep its old mode
        let written = (|| {
            let mut file = create_private_file(&tmp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            let permissions = std::fs::metadata(&target)?.permissions();
            file.set_permissions(permissions)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("write Handy's settings to", &target, e));
        }
        Ok(backup)
    }

    /// The newest backup `save_with_backup(action)` made beside this store, read.
    pub fn latest_backup(&self, action: &str) -> Result<Option<HandyStore>> {
        let target =
            std::fs::canonicalize(&self.path).map_err(|e| Error::io("read Handy's settings", &self.path, e))?;
        let (dir, prefix) = backup_prefix(&target, action);
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
        let newest = entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(".json"))
            .max();
        newest.map(|name| HandyStore::load(&dir.join(name))).transpose()
    }
}

fn backup_prefix(target: &Path, action: &str) -> (PathBuf, String) {
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, format!("{name}.before-{action}-"))
}

/// `<dir>/<file>.before-<action>-<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.json`: names sort
/// by time.
fn backup_path(target: &Path, action: &str, now: SystemTime) -> PathBuf {
    let (dir, prefix) = backup_prefix(target, action);
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    dir.join(format!("{prefix}{}.{:09}Z.json", utc_timestamp(since.as_secs()), since.subsec_nanos()))
}

/// `YYYYMMDDTHHMMSS` in UTC for seconds since the epoch (days to civil date after
/// Howard Hinnant's algorithm; one formatter does not justify a date crate).
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Create `path` (never over an existing file) as 0600 with `bytes`, synced.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "19700101T000000");
        assert_eq!(utc_timestamp(951_782_400), "20000229T000000"); // a leap day
        assert_eq!(utc_timestamp(1_796_434_200), "20261205T013000");
        assert_eq!(utc_timestamp(4_107_542_399), "21000228T235959");
    }

    #[test]
    fn backups_sort_by_time() {
        let target = Path::new("/x/settings_store.json");
        let at = |secs, nanos| backup_path(target, "connect", UNIX_EPOCH + std::time::Duration::new(secs, nanos));
        let (early, later, next_second) = (at(1_796_434_200, 5), at(1_796_434_200, 40), at(1_796_434_201, 0));
        assert!(early < later && later < next_second);
        assert_eq!(early.file_name().unwrap(), "settings_store.json.before-connect-20261205T013000.000000005Z.json");
    }
}
