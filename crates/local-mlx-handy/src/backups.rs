//! The backups `connect` and `disconnect` leave beside Handy's store: their names
//! (`<file>.before-<action>-<UTC time>.json`, which sort by time), the record of what
//! the write after each changed (`….record`), and keeping only the newest
//! [`KEPT_BACKUPS`] (each holds every API key Handy has).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Backups kept beside the store: the newest five.
pub const KEPT_BACKUPS: usize = 5;

pub(super) fn backup_prefix(target: &Path, action: &str) -> (PathBuf, String) {
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    (dir, format!("{}{action}-", all_backups_prefix(target)))
}

/// `<file>.before-`: what every backup's name starts with.
fn all_backups_prefix(target: &Path) -> String {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{name}.before-")
}

/// `<dir>/<file>.before-<action>-<YYYYMMDD>T<HHMMSS>.<nanoseconds>Z.json`: names sort
/// by time.
pub(super) fn backup_path(target: &Path, action: &str, now: SystemTime) -> PathBuf {
    let (dir, prefix) = backup_prefix(target, action);
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    dir.join(format!("{prefix}{}.{:09}Z.json", utc_timestamp(since.as_secs()), since.subsec_nanos()))
}

/// The record of what the write after a backup changed: the backup's name with
/// `.record` for `.json`.
pub(super) fn record_path(backup: &Path) -> PathBuf {
    backup.with_extension("record")
}

/// The names of every backup of `target` in `dir`, of any action.
pub(super) fn backups(dir: &Path, target: &Path) -> Result<Vec<String>> {
    let prefix = all_backups_prefix(target);
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    Ok(entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(".json"))
        .collect())
}

/// Remove the backups (and their records) beyond the newest [`KEPT_BACKUPS`] of any
/// action; the newest `connect` backup always stays, as `disconnect` reads it.
pub(super) fn prune_backups(target: &Path) -> Result<()> {
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let mut names = backups(&dir, target)?;
    // The time is the name's last `-`-separated part; newest first.
    names.sort_by(|a, b| b.rsplit('-').next().cmp(&a.rsplit('-').next()));
    let (_, connect) = backup_prefix(target, crate::CONNECT);
    let newest_connect = names.iter().find(|name| name.starts_with(&connect)).cloned();
    for name in names.into_iter().skip(KEPT_BACKUPS).filter(|name| Some(name) != newest_connect.as_ref()) {
        let path = dir.join(&name);
        for file in [record_path(&path), path] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove an old backup", &file, e)),
            }
        }
    }
    Ok(())
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
