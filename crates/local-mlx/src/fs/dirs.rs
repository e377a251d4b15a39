//! Where a user's folders are: the home folder, the XDG base folders, and the
//! platform's folder for an app's config and data. Every lookup of `HOME`, `XDG_*` or
//! `APPDATA` goes through here; a lookup that tests drive takes the variables as a
//! function instead of reading the process's environment.

use std::ffi::OsString;
use std::path::PathBuf;

/// A kind of per-user folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDir {
    /// Settings (`XDG_CONFIG_HOME`, `~/.config`).
    Config,
    /// What an app writes besides settings (`XDG_DATA_HOME`, `~/.local/share`).
    Data,
    /// What can be fetched again (`XDG_CACHE_HOME`, `~/.cache`).
    Cache,
}

impl UserDir {
    fn xdg_var(self) -> &'static str {
        match self {
            UserDir::Config => "XDG_CONFIG_HOME",
            UserDir::Data => "XDG_DATA_HOME",
            UserDir::Cache => "XDG_CACHE_HOME",
        }
    }

    fn under_home(self) -> &'static str {
        match self {
            UserDir::Config => ".config",
            UserDir::Data => ".local/share",
            UserDir::Cache => ".cache",
        }
    }
}

/// A variable's value, unset when empty (as the XDG spec and `huggingface_hub` read them).
fn set(var: &dyn Fn(&str) -> Option<OsString>, name: &str) -> Option<PathBuf> {
    var(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// `$HOME`, `None` when it is unset or empty.
pub fn home_dir() -> Option<PathBuf> {
    set(&env, "HOME")
}

/// The XDG base folder of `kind` over the variables `var` gives: `$XDG_*_HOME` when set,
/// else its default under `$HOME` (the current folder without one). The same on every
/// platform, as `huggingface_hub` and systemd read it.
pub(crate) fn xdg_dir_with(kind: UserDir, var: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    set(var, kind.xdg_var()).unwrap_or_else(|| home_with(var).join(kind.under_home()))
}

/// Where a user folder of `kind` is, from the process's environment (`HOME`,
/// `XDG_*_HOME`; `xdg_dir_with` takes the lookup as an argument).
pub fn xdg_dir(kind: UserDir) -> PathBuf {
    xdg_dir_with(kind, &env)
}

/// The platform's folder for an app's files of `kind`: `~/Library/Application Support`
/// (config and data) or `~/Library/Caches` on macOS, `%APPDATA%` on Windows (config and
/// data), the XDG folder elsewhere.
pub(super) fn app_dir_with(kind: UserDir, var: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    if cfg!(target_os = "macos") {
        let under = if kind == UserDir::Cache { "Library/Caches" } else { "Library/Application Support" };
        return home_with(var).join(under);
    }
    if cfg!(windows) && kind != UserDir::Cache {
        return set(var, "APPDATA").unwrap_or_else(|| home_with(var).join("AppData/Roaming"));
    }
    xdg_dir_with(kind, var)
}

/// This app's folder of `kind`, from the process's environment (`app_dir_with` takes
/// the lookup as an argument).
pub fn app_dir(kind: UserDir) -> PathBuf {
    app_dir_with(kind, &env)
}

fn home_with(var: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    set(var, "HOME").unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn xdg_folders_take_their_variable_else_a_default_under_home() {
        let home = vars(&[("HOME", "/h")]);
        assert_eq!(xdg_dir_with(UserDir::Config, &home), PathBuf::from("/h/.config"));
        assert_eq!(xdg_dir_with(UserDir::Data, &home), PathBuf::from("/h/.local/share"));
        assert_eq!(xdg_dir_with(UserDir::Cache, &home), PathBuf::from("/h/.cache"));
        let set = vars(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/c"), ("XDG_DATA_HOME", ""), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(xdg_dir_with(UserDir::Config, &set), PathBuf::from("/c"));
        assert_eq!(xdg_dir_with(UserDir::Data, &set), PathBuf::from("/h/.local/share"), "empty is unset");
        assert_eq!(xdg_dir_with(UserDir::Cache, &set), PathBuf::from("/x"));
        assert_eq!(xdg_dir_with(UserDir::Cache, &vars(&[("HOME", "")])), PathBuf::from("./.cache"));
    }

    #[test]
    fn app_folders_are_the_platforms() {
        let env = vars(&[("HOME", "/h"), ("XDG_DATA_HOME", "/d"), ("APPDATA", "/a")]);
        let data = app_dir_with(UserDir::Data, &env);
        if cfg!(target_os = "macos") {
            assert_eq!(data, PathBuf::from("/h/Library/Application Support"));
        } else if cfg!(windows) {
            assert_eq!(data, PathBuf::from("/a"));
        } else {
            assert_eq!(data, PathBuf::from("/d"));
            assert_eq!(app_dir_with(UserDir::Config, &env), PathBuf::from("/h/.config"));
        }
    }
}
