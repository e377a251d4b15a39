//! The app's own settings, the ones Handy keeps in its settings rather than the
//! provider's: whether post-processing is on, which provider does it, and the custom
//! models the user added (so they are listed again after a restart).
//!
//! Stored as `app-settings.json` beside the provider's `settings.json`, read and
//! written by the core's one settings writer (`local_mlx::settings::{load_json,
//! save_json}`: 0600, atomic; a damaged file is moved to a backup and reported).

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use specta::Type;

use local_mlx::settings::{load_json, save_json, PROVIDER_ID};
use local_mlx::PlatformSupport;

/// The post-processing providers this app offers: only the local one (Handy's cloud
/// providers are out of scope here).
pub const PROVIDERS: [(&str, &str); 1] = [(PROVIDER_ID, "Local (MLX)")];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(default)]
pub struct AppSettings {
    pub post_process_enabled: bool,
    pub post_process_provider_id: String,
    /// Hugging Face repo ids added with "Add model", in the order added.
    pub custom_models: Vec<String>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            // This app exists to post-process, so it starts on (Handy's default is off).
            post_process_enabled: true,
            post_process_provider_id: PROVIDER_ID.to_string(),
            custom_models: Vec::new(),
        }
    }
}

/// A post-processing provider the settings page can offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct ProviderOption {
    pub id: String,
    pub label: String,
    /// Why this machine cannot use the provider (it is shown disabled); `null` when it can.
    pub disabled_reason: Option<String>,
    /// What to expect where it runs but not at its best (Linux: CPU only).
    pub note: Option<String>,
}

/// The providers, judged for a machine like `platform`. Unlike Handy's compile-time
/// gate of Apple Intelligence, an unusable provider stays in the list, disabled, so
/// the page can say why instead of silently offering nothing.
pub fn provider_options(platform: &PlatformSupport) -> Vec<ProviderOption> {
    PROVIDERS
        .iter()
        .map(|(id, label)| ProviderOption {
            id: id.to_string(),
            label: label.to_string(),
            disabled_reason: platform.unsupported_reason().map(str::to_string),
            note: platform.note.clone().filter(|_| platform.supported),
        })
        .collect()
}

/// The settings file and its current contents.
pub struct AppSettingsStore {
    path: PathBuf,
    current: Mutex<AppSettings>,
}

impl AppSettingsStore {
    /// Load `path` (missing: the defaults); a damaged file is an error naming its backup.
    pub fn open(path: PathBuf) -> local_mlx::Result<Self> {
        let current = load_json(&path)?;
        Ok(AppSettingsStore { path, current: Mutex::new(current) })
    }

    pub fn get(&self) -> AppSettings {
        self.current.lock().expect("app settings poisoned").clone()
    }

    /// Apply `change`, save, and return the new settings.
    pub fn update(&self, change: impl FnOnce(&mut AppSettings)) -> local_mlx::Result<AppSettings> {
        let mut current = self.current.lock().expect("app settings poisoned");
        let mut next = current.clone();
        change(&mut next);
        save_json(&self.path, &next)?;
        *current = next.clone();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use local_mlx::platform::support;

    #[test]
    fn the_provider_is_disabled_with_the_reason_where_mlx_cannot_run() {
        let windows = provider_options(&support("windows", "x86_64"));
        let reason = windows[0].disabled_reason.as_deref().unwrap_or_default();
        assert!(reason.contains("MLX needs an Apple Silicon Mac"), "{reason:?}");
        assert_eq!(windows[0].note, None);

        let mac = provider_options(&support("macos", "aarch64"));
        assert_eq!((mac[0].disabled_reason.as_deref(), mac[0].note.as_deref()), (None, None));

        let linux = provider_options(&support("linux", "x86_64"));
        assert_eq!(linux[0].disabled_reason, None);
        assert!(linux[0].note.as_deref().unwrap_or_default().contains("CPU only"));
    }

    #[test]
    fn changes_persist_privately_and_a_damaged_file_is_an_error_naming_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app-settings.json");
        let store = AppSettingsStore::open(path.clone()).unwrap();
        assert_eq!(store.get(), AppSettings::default());
        store.update(|s| s.custom_models.push("org/model".into())).unwrap();
        assert_eq!(AppSettingsStore::open(path.clone()).unwrap().get().custom_models, ["org/model"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "{broken").unwrap();
        let error = AppSettingsStore::open(path.clone()).err().expect("a damaged file is an error");
        assert_eq!(error.kind(), local_mlx::ErrorKind::SettingsCorrupt);
        assert!(error.to_string().contains(".damaged-"), "{error}");
        assert_eq!(AppSettingsStore::open(path).unwrap().get(), AppSettings::default());
    }
}
