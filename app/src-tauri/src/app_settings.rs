//! The app's own settings, the ones Handy keeps in its settings rather than the
//! provider's: whether post-processing is on, which provider does it, and the custom
//! models the user added (so they are listed again after a restart).
//!
//! Stored as `app-settings.json` beside the provider's `settings.json`, written
//! atomically (temp file + rename); missing or unknown fields fall back to defaults.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use specta::Type;

use local_mlx::settings::PROVIDER_ID;
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
    /// Load `path`; a missing or unreadable file gives the defaults (logged), so a
    /// damaged file never keeps the app from starting.
    pub fn open(path: PathBuf) -> Self {
        let current = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "app settings unreadable; using defaults");
                AppSettings::default()
            }),
            Err(_) => AppSettings::default(),
        };
        AppSettingsStore { path, current: Mutex::new(current) }
    }

    pub fn get(&self) -> AppSettings {
        self.current.lock().expect("app settings poisoned").clone()
    }

    /// Apply `change`, save, and return the new settings.
    pub fn update(&self, change: impl FnOnce(&mut AppSettings)) -> std::io::Result<AppSettings> {
        let mut current = self.current.lock().expect("app settings poisoned");
        let mut next = current.clone();
        change(&mut next);
        save(&self.path, &next)?;
        *current = next.clone();
        Ok(next)
    }
}

fn save(path: &Path, settings: &AppSettings) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(settings).expect("settings serialize"))?;
    std::fs::rename(&tmp, path)
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
    fn changes_persist_and_a_damaged_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app-settings.json");
        let store = AppSettingsStore::open(path.clone());
        assert_eq!(store.get(), AppSettings::default());
        store.update(|s| s.custom_models.push("org/model".into())).unwrap();
        assert_eq!(AppSettingsStore::open(path.clone()).get().custom_models, ["org/model"]);
        std::fs::write(&path, "{broken").unwrap();
        assert_eq!(AppSettingsStore::open(path).get(), AppSettings::default());
    }
}
