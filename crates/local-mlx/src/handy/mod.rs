//! Handy, the dictation app, seen from outside: what it still needs before it
//! post-processes with `local-mlx serve`, and connecting it in one step.
//!
//! Handy keeps its settings in a tauri-plugin-store file ([`store`]); its post-processing
//! hides behind several switches and a prompt and shortcut chosen elsewhere
//! ([`requirements`] checks each). [`connect()`] writes exactly the fields that set them
//! ([`connect::Field`]), after a backup, and only while Handy is not running
//! ([`process`]): it rewrites its store on exit and would undo the change. [`disconnect`]
//! puts back only the fields that still hold what `connect` wrote. Field names and
//! defaults are Handy's at one commit ([`schema`]).

mod as_read;
mod backups;
pub mod connect;
pub mod process;
pub mod requirements;
pub mod schema;
pub mod store;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use connect::{Change, Field, Kept};
pub use requirements::{Requirement, ServerProbe};
pub use store::HandyStore;

use crate::error::{Error, Result};

/// The base URL Handy should use: `http://localhost:<port>/v1`.
pub fn default_url(port: u16) -> String {
    format!("http://localhost:{port}/v1")
}

/// `url` checked and normalised, the one form `connect` stores and `status` compares:
/// http or https with a host; no user name or password (Handy would send them to
/// every provider call and show them in its settings), query, fragment, whitespace or
/// control character; surrounding spaces and a trailing `/` dropped; the host in lower
/// case and a default port left out, as the URL standard writes them.
pub fn check_url(url: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidUrl { url: crate::text::escape_controls(url), reason: reason.to_string() };
    let trimmed = url.trim();
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds a space or a control character"));
    }
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("it is not http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it holds a user name or password: give the server's key to Handy's API Key field instead"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it has a query (`?`) or a fragment (`#`): Handy adds paths to it"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Every requirement at once, for `local-mlx handy status`.
#[derive(Debug, Clone, Serialize)]
pub struct HandyStatus {
    pub store: PathBuf,
    pub url: String,
    /// Every requirement met.
    pub ready: bool,
    pub requirements: Vec<Requirement>,
    /// The keys that dictate with post-processing (`Option+Shift+Space`), when bound.
    pub shortcut: Option<String>,
}

/// Check Handy's store at `store_path` against the server at `url`. No Handy is a
/// status (its one requirement unmet), an unreadable or corrupt store an error.
pub async fn status(store_path: &Path, url: &str) -> Result<HandyStatus> {
    let url = check_url(url)?;
    let store = match HandyStore::load(store_path) {
        Ok(store) => store,
        Err(Error::HandyNotFound { path }) => {
            let missing = Requirement {
                id: "handy_found",
                ok: false,
                what: format!("Handy not found: no {}", path.display()),
                fix: Some(requirements::INSTALL_HANDY.to_string()),
            };
            return Ok(HandyStatus { store: path, url, ready: false, requirements: vec![missing], shortcut: None });
        }
        Err(e) => return Err(e),
    };
    let settings = store.settings();
    let key = settings
        .get(schema::API_KEYS)
        .and_then(|keys| keys.get(schema::CUSTOM_PROVIDER_ID))
        .and_then(|key| key.as_str());
    let probe = requirements::probe_server(&url, key).await;
    let found =
        Requirement { id: "handy_found", ok: true, what: format!("Handy found: {}", store.path.display()), fix: None };
    let mut checks = vec![found];
    checks.extend(requirements::check(settings, &url, &probe));
    Ok(HandyStatus {
        store: store.path.clone(),
        url,
        ready: checks.iter().all(|c| c.ok),
        requirements: checks,
        shortcut: requirements::post_process_keys(settings),
    })
}

/// What `connect` or `disconnect` did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub store: PathBuf,
    /// Empty when every field was already right (then nothing was written).
    pub changes: Vec<Change>,
    /// Fields `disconnect` left because the user changed them after `connect`.
    pub kept: Vec<Kept>,
    /// The copy of the store as it was, when something was written (the newest
    /// [`store::KEPT_BACKUPS`] backups are kept).
    pub backup: Option<PathBuf>,
    /// The keys that dictate with post-processing, when bound.
    pub shortcut: Option<String>,
}

/// Name of the backups `connect` makes; `disconnect` reads the newest.
pub(crate) const CONNECT: &str = "local-mlx-connect";
const DISCONNECT: &str = "local-mlx-disconnect";

/// Point Handy's Custom provider at `url` with a model (`requested`, else see
/// [`connect::choose_model`] over the `downloaded` ids) and turn on everything it
/// needs. Refused while Handy runs; the store is backed up first.
pub fn connect(store_path: &Path, url: &str, requested: Option<&str>, downloaded: &[String]) -> Result<Outcome> {
    let url = check_url(url)?;
    let mut store = HandyStore::load(store_path)?;
    ensure_writable(&store)?;
    let current = connect::Field::CustomModel.get(store.settings());
    let model = connect::choose_model(requested, current.as_ref().and_then(|m| m.as_str()), downloaded)?;
    let changes = connect::plan_connect(store.settings(), &url, &model);
    write(&mut store, changes, Vec::new(), CONNECT)
}

/// Put back what Handy had before the newest `connect`, field by field, where the
/// field still holds what that `connect` wrote; a field the user changed since is left
/// as it is and listed in [`Outcome::kept`].
pub fn disconnect(store_path: &Path) -> Result<Outcome> {
    let mut store = HandyStore::load(store_path)?;
    ensure_writable(&store)?;
    let (backup, record) =
        store.latest_backup(CONNECT)?.ok_or_else(|| Error::HandyNoBackup { path: store.path.clone() })?;
    let record = record
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| connect::Record::guessed(store.settings(), backup.settings()));
    let (changes, kept) = connect::plan_disconnect(store.settings(), &record);
    write(&mut store, changes, kept, DISCONNECT)
}

/// Refuse while Handy runs (it would write its own values back when it quits) and
/// when the file is read-only, before anything else is decided.
fn ensure_writable(store: &HandyStore) -> Result<()> {
    if let Some(handy) = process::running_handy() {
        return Err(Error::HandyRunning { pid: handy.pid, name: handy.name });
    }
    store.check_writable()
}

/// Apply `changes` and save them after a backup, with the record of what they wrote.
fn write(store: &mut HandyStore, changes: Vec<Change>, kept: Vec<Kept>, action: &str) -> Result<Outcome> {
    let backup = if changes.is_empty() {
        None
    } else {
        connect::apply(store.settings_mut(), &changes);
        let record =
            serde_json::to_vec_pretty(&connect::Record { changes: changes.clone() }).expect("JSON values serialize");
        Some(store.save_with_backup(action, Some(&record))?)
    };
    Ok(Outcome {
        store: store.path.clone(),
        shortcut: requirements::post_process_keys(store.settings()),
        changes,
        kept,
        backup,
    })
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn a_url_is_stored_in_one_normal_form_and_anything_else_is_refused() {
        for (given, stored) in [
            ("http://localhost:8397/v1", "http://localhost:8397/v1"),
            ("  http://LOCALHOST:8397/v1/ ", "http://localhost:8397/v1"),
            ("http://127.0.0.1:80/v1", "http://127.0.0.1/v1"),
            ("https://box.example/v1", "https://box.example/v1"),
        ] {
            assert_eq!(check_url(given).unwrap(), stored, "{given:?}");
        }
        for bad in [
            "localhost:8397",
            "ftp://localhost/v1",
            "http://user:pw@localhost:8397/v1",
            "http://user@localhost:8397/v1",
            "http://localhost:8397/v1?x=1",
            "http://localhost:8397/v1#top",
            "http://local host:8397/v1",
            "http://localhost:8397/v1\u{1b}[2J",
            "http://localhost:8397/\tv1",
        ] {
            let err = check_url(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidUrl, "{bad:?}");
            assert!(!err.to_string().contains('\u{1b}'), "{err}");
        }
    }
}
