//! The provider's settings: id `local-mlx`, the selected model, Handy's
//! `ModelUnloadTimeout`, the prompt template, and where uv lives.
//!
//! Stored as one JSON file, written atomically (temp file + rename) so a crash mid-save
//! never leaves a half-written file; unknown or missing fields fall back to defaults so
//! an older or newer version's file still loads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::DEFAULT_MODEL_ID;
use crate::error::{Error, Result};
use crate::postprocess::DEFAULT_PROMPT;

/// The provider id Handy's settings use for us.
pub const PROVIDER_ID: &str = "local-mlx";

/// Handy's `ModelUnloadTimeout`, with its serde names. The names with digits are spelled
/// out because specta's snake_case would export `Min2` as `min_2` where serde sends `min2`;
/// exported as `MlxModelUnloadTimeout` because Handy exports its own `ModelUnloadTimeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxModelUnloadTimeout"))]
#[serde(rename_all = "snake_case")]
pub enum ModelUnloadTimeout {
    Never,
    Immediately,
    #[serde(rename = "min2")]
    Min2,
    #[default]
    #[serde(rename = "min5")]
    Min5,
    #[serde(rename = "min10")]
    Min10,
    #[serde(rename = "min15")]
    Min15,
    #[serde(rename = "hour1")]
    Hour1,
    /// For debugging and tests.
    #[serde(rename = "sec15")]
    Sec15,
}

impl ModelUnloadTimeout {
    /// How long the model may sit idle; `None` keeps it loaded.
    pub fn idle_limit(self) -> Option<Duration> {
        let secs = match self {
            ModelUnloadTimeout::Never => return None,
            ModelUnloadTimeout::Immediately => 0,
            ModelUnloadTimeout::Min2 => 120,
            ModelUnloadTimeout::Min5 => 300,
            ModelUnloadTimeout::Min10 => 600,
            ModelUnloadTimeout::Min15 => 900,
            ModelUnloadTimeout::Hour1 => 3600,
            ModelUnloadTimeout::Sec15 => 15,
        };
        Some(Duration::from_secs(secs))
    }

    /// Every value, in the order a settings menu shows them.
    pub const ALL: [ModelUnloadTimeout; 8] = [
        ModelUnloadTimeout::Never,
        ModelUnloadTimeout::Immediately,
        ModelUnloadTimeout::Min2,
        ModelUnloadTimeout::Min5,
        ModelUnloadTimeout::Min10,
        ModelUnloadTimeout::Min15,
        ModelUnloadTimeout::Hour1,
        ModelUnloadTimeout::Sec15,
    ];
}

/// What the user chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct MlxSettings {
    pub selected_model: String,
    pub model_unload_timeout: ModelUnloadTimeout,
    /// Template with `${output}` for the transcript.
    pub prompt: String,
    /// An explicit uv binary; otherwise the bundled one, then `PATH`.
    pub uv_path: Option<PathBuf>,
}

impl Default for MlxSettings {
    fn default() -> Self {
        MlxSettings {
            selected_model: DEFAULT_MODEL_ID.to_string(),
            model_unload_timeout: ModelUnloadTimeout::default(),
            prompt: DEFAULT_PROMPT.to_string(),
            uv_path: None,
        }
    }
}

impl MlxSettings {
    /// Read `path`; a missing file gives the defaults, an unreadable one an error.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::io("read the settings in", path, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                Ok(Self::default())
            }
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Write `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(self).expect("settings serialize");
        std::fs::write(&tmp, json).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("write", path, e))
    }
}

/// Where local-mlx keeps its settings and logs: `LOCAL_MLX_CONFIG_DIR`, else the
/// platform's config folder (`~/Library/Application Support/local-mlx` on macOS,
/// `$XDG_CONFIG_HOME/local-mlx` or `~/.config/local-mlx` elsewhere).
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCAL_MLX_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/local-mlx");
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("local-mlx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_timeouts_use_handys_names_and_durations() {
        let names: Vec<String> = ModelUnloadTimeout::ALL.iter().map(|t| serde_json::to_string(t).unwrap()).collect();
        assert_eq!(
            names,
            [
                "\"never\"",
                "\"immediately\"",
                "\"min2\"",
                "\"min5\"",
                "\"min10\"",
                "\"min15\"",
                "\"hour1\"",
                "\"sec15\""
            ]
        );
        assert_eq!(ModelUnloadTimeout::default(), ModelUnloadTimeout::Min5);
        assert_eq!(ModelUnloadTimeout::Never.idle_limit(), None);
        assert_eq!(ModelUnloadTimeout::Immediately.idle_limit(), Some(Duration::ZERO));
        assert_eq!(ModelUnloadTimeout::Hour1.idle_limit(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn settings_round_trip_and_missing_fields_get_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        assert_eq!(MlxSettings::load(&path).unwrap(), MlxSettings::default());
        let settings = MlxSettings {
            selected_model: "a/b".into(),
            model_unload_timeout: ModelUnloadTimeout::Never,
            ..Default::default()
        };
        settings.save(&path).unwrap();
        assert_eq!(MlxSettings::load(&path).unwrap(), settings);
        std::fs::write(&path, r#"{"selected_model": "x/y", "future_field": 1}"#).unwrap();
        let loaded = MlxSettings::load(&path).unwrap();
        assert_eq!(loaded.selected_model, "x/y");
        assert_eq!(loaded.prompt, DEFAULT_PROMPT);
    }

    #[test]
    fn a_corrupt_settings_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = MlxSettings::load(&path).unwrap_err();
        assert!(err.to_string().contains("settings.json"), "{err}");
    }
}
