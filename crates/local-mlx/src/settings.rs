//! The provider's settings: id `local-mlx`, the selected model, Handy's
//! `ModelUnloadTimeout`, the prompt template, and where uv lives.
//!
//! Owns the one settings file reader and writer ([`load_json`], [`save_json`]) that
//! the core, the CLI and the app use for every settings file: written atomically (a
//! unique 0600 temp file, fsync, rename) in a 0700 folder, as the prompt can be
//! private; unknown or missing fields fall back to defaults; a damaged file is moved
//! to a backup and reported with its path, never silently replaced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::DEFAULT_MODEL_ID;
use crate::error::{Error, Result};
/// The private-folder helper, where the CLI's service code has always found it.
pub use crate::fs::create_private_dir;
use crate::fs::UserDir;
use crate::postprocess::DEFAULT_PROMPT;
use crate::sidecar::EngineChoice;

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

/// How long a loaded model may sit idle before it is unloaded and the sidecar stopped:
/// a settings value ([`ModelUnloadTimeout`]) or any duration (a server's `--keep-alive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    Never,
    Immediately,
    After(Duration),
}

impl KeepAlive {
    /// How long the model may sit idle; `None` keeps it loaded.
    pub fn idle_limit(self) -> Option<Duration> {
        match self {
            KeepAlive::Never => None,
            KeepAlive::Immediately => Some(Duration::ZERO),
            KeepAlive::After(limit) => Some(limit),
        }
    }
}

impl From<ModelUnloadTimeout> for KeepAlive {
    fn from(timeout: ModelUnloadTimeout) -> Self {
        match timeout.idle_limit() {
            None => KeepAlive::Never,
            Some(Duration::ZERO) => KeepAlive::Immediately,
            Some(limit) => KeepAlive::After(limit),
        }
    }
}

/// `never`, `immediately`, or the duration in the largest unit that divides it (`90s`, `10m`).
impl std::fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepAlive::Never => f.write_str("never"),
            KeepAlive::Immediately => f.write_str("immediately"),
            KeepAlive::After(limit) => {
                let secs = limit.as_secs();
                match secs {
                    s if s > 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
                    s if s > 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
                    s if limit.subsec_nanos() == 0 => write!(f, "{s}s"),
                    _ => write!(f, "{}ms", limit.as_millis()),
                }
            }
        }
    }
}

/// Handy's `ModelUnloadTimeout` names (`never`, `immediately`, `sec15`, `min2`, `min5`,
/// `min10`, `min15`, `hour1`) or a plain duration: a whole number and `ms`, `s`, `m` or
/// `h` (`90s`, `10m`, `1h`). Hand-written: four units do not justify a dependency.
impl std::str::FromStr for KeepAlive {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let named = ModelUnloadTimeout::ALL
            .into_iter()
            .find(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(|n| n == text)).unwrap_or(false));
        if let Some(timeout) = named {
            return Ok(timeout.into());
        }
        let bad = || {
            format!(
                "'{text}' is not a keep-alive: use never, immediately, sec15, min2, min5, min10, min15, hour1, \
                 or a duration like 90s, 10m or 1h"
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let limit = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        Ok(if limit.is_zero() { KeepAlive::Immediately } else { KeepAlive::After(limit) })
    }
}

/// How long a clean-up may take, model load and queue included, before the transcript
/// is handed back as it came (a dictation app waits on it; Handy's client never gives
/// up by itself). Parsed like [`KeepAlive`]: `never`, `sec15`, `min2`, or a duration
/// like `15s`, `1500ms`; zero is refused, as it would never let the model answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerWithin(Option<Duration>);

impl AnswerWithin {
    /// What a dictation should wait at most: a warm model cleans a minute of speech
    /// well within it, a cold load on a busy machine may not.
    pub const DEFAULT: AnswerWithin = AnswerWithin(Some(Duration::from_secs(15)));
    pub const NEVER: AnswerWithin = AnswerWithin(None);

    /// A deadline of `seconds`; `None` or zero: none.
    pub fn seconds(seconds: Option<u32>) -> AnswerWithin {
        AnswerWithin(seconds.filter(|&s| s > 0).map(|s| Duration::from_secs(s.into())))
    }

    /// The deadline, if any.
    pub fn deadline(self) -> Option<Duration> {
        self.0
    }
}

impl std::str::FromStr for AnswerWithin {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| format!("'{}' is not a deadline: {why}", text.trim());
        match text.parse::<KeepAlive>() {
            Ok(KeepAlive::Never) => Ok(AnswerWithin::NEVER),
            Ok(KeepAlive::After(limit)) => Ok(AnswerWithin(Some(limit))),
            Ok(KeepAlive::Immediately) => Err(bad("zero would never let the model answer; use 15s, or never")),
            Err(_) => Err(bad("use never, sec15, min2, or a duration like 15s, 1500ms or 1m")),
        }
    }
}

impl std::fmt::Display for AnswerWithin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("never"),
            Some(limit) => KeepAlive::After(limit).fmt(f),
        }
    }
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
    /// Hand the transcript back as it came when the clean-up has no answer after this
    /// many seconds, model load included; `null` (or 0): wait as long as it takes.
    pub answer_within_seconds: Option<u32>,
    /// Which engine runs the models (`sidecar` by default); `LOCAL_MLX_ENGINE`
    /// overrides it. Read when the manager is built.
    pub engine: EngineChoice,
}

impl Default for MlxSettings {
    fn default() -> Self {
        MlxSettings {
            selected_model: DEFAULT_MODEL_ID.to_string(),
            model_unload_timeout: ModelUnloadTimeout::default(),
            prompt: DEFAULT_PROMPT.to_string(),
            uv_path: None,
            answer_within_seconds: AnswerWithin::DEFAULT.deadline().map(|d| d.as_secs() as u32),
            engine: EngineChoice::default(),
        }
    }
}

impl MlxSettings {
    /// Read `path` (see [`load_json`]).
    pub fn load(path: &Path) -> Result<Self> {
        load_json(path)
    }

    /// Write `path` (see [`save_json`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_json(path, self)
    }

    /// The clean-up deadline these settings ask for.
    pub fn answer_within(&self) -> AnswerWithin {
        AnswerWithin::seconds(self.answer_within_seconds)
    }
}

/// Read a JSON settings file. A missing file gives the defaults; unknown or missing
/// fields fall back to them. A file that does not parse is moved aside to
/// `<name>.damaged-<unix seconds>` and reported with that path, so nothing is lost and
/// the next start begins from the defaults.
pub fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(T::default())
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    serde_json::from_slice(&bytes).or_else(|parse| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut backup = path.as_os_str().to_owned();
        backup.push(format!(".damaged-{secs}"));
        let backup = PathBuf::from(backup);
        std::fs::rename(path, &backup).map_err(|e| Error::io("move the damaged settings file aside to", &backup, e))?;
        Err(Error::SettingsCorrupt { path: path.to_path_buf(), backup, reason: parse.to_string() })
    })
}

/// The one settings writer: the folder created 0700, the JSON written to a new 0600
/// file of a unique name beside `path`, flushed to disk, then renamed over `path`, so
/// a crash leaves the old file or the new one, never half of one, and two writers
/// never share a temp file.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(parent).map_err(|e| Error::io("create", parent, e))?;
    let json = serde_json::to_vec_pretty(value).expect("settings serialize");
    Ok(crate::fs::write_atomic(path, &json, crate::fs::WriteOptions::private())?)
}

/// Refuse a prompt template that would not clean up the transcript: an empty one lets
/// the model chat, and one without `${output}` never tells it what the transcript is for.
pub fn check_prompt(prompt: &str) -> Result<()> {
    let reason = if prompt.trim().is_empty() {
        "it is empty"
    } else if !prompt.contains(crate::postprocess::OUTPUT_PLACEHOLDER) {
        "it has no ${output} where the transcript goes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidPrompt { reason })
}

/// Where local-mlx keeps its settings and logs: `LOCAL_MLX_CONFIG_DIR`, else the
/// platform's config folder (`~/Library/Application Support/local-mlx` on macOS,
/// `$XDG_CONFIG_HOME/local-mlx` or `~/.config/local-mlx` elsewhere).
pub fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCAL_MLX_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::fs::app_dir(UserDir::Config).join("local-mlx")
}

/// Where the CLI keeps what it writes besides settings (the sidecar's files and Python
/// environment, a few hundred MB): `LOCAL_MLX_DATA_DIR`, else `LOCAL_MLX_CONFIG_DIR`
/// (one folder for everything, as tests and portable set-ups want), else the
/// platform's data folder (`~/Library/Application Support/local-mlx` on macOS,
/// `$XDG_DATA_HOME/local-mlx` or `~/.local/share/local-mlx` elsewhere).
pub fn data_dir() -> PathBuf {
    for var in ["LOCAL_MLX_DATA_DIR", "LOCAL_MLX_CONFIG_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    crate::fs::app_dir(UserDir::Data).join("local-mlx")
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
    fn a_deadline_takes_the_keep_alive_syntax_but_never_zero() {
        let parse = |s: &str| s.parse::<AnswerWithin>().map(AnswerWithin::deadline);
        assert_eq!(parse("15s"), Ok(Some(Duration::from_secs(15))));
        assert_eq!(parse("sec15"), Ok(Some(Duration::from_secs(15))));
        assert_eq!(parse("1500ms"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(parse("never"), Ok(None));
        for bad in ["0s", "immediately", "soon", "-1s"] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(bad) && error.contains("15s"), "{error}");
        }
        assert_eq!(AnswerWithin::DEFAULT.to_string(), "15s");
        assert_eq!(MlxSettings::default().answer_within(), AnswerWithin::DEFAULT);
        assert_eq!(AnswerWithin::seconds(Some(0)), AnswerWithin::NEVER, "0 in a settings file waits");
        let old: MlxSettings = serde_json::from_str(r#"{"selected_model": "a/b"}"#).unwrap();
        assert_eq!(old.answer_within(), AnswerWithin::DEFAULT, "settings written before the field get the default");
    }

    #[test]
    fn keep_alive_takes_handys_names_and_plain_durations() {
        let parse = |s: &str| s.parse::<KeepAlive>();
        assert_eq!(parse("never"), Ok(KeepAlive::Never));
        assert_eq!(parse("immediately"), Ok(KeepAlive::Immediately));
        assert_eq!(parse("sec15"), Ok(KeepAlive::After(Duration::from_secs(15))));
        assert_eq!(parse("min5"), Ok(KeepAlive::After(Duration::from_secs(300))));
        assert_eq!(parse("hour1"), Ok(KeepAlive::After(Duration::from_secs(3600))));
        assert_eq!(parse("90s"), Ok(KeepAlive::After(Duration::from_secs(90))));
        assert_eq!(parse("10m"), Ok(KeepAlive::After(Duration::from_secs(600))));
        assert_eq!(parse("1h"), Ok(KeepAlive::After(Duration::from_secs(3600))));
        assert_eq!(parse("250ms"), Ok(KeepAlive::After(Duration::from_millis(250))));
        assert_eq!(parse("0s"), Ok(KeepAlive::Immediately));
        for bad in [
            "",
            "5",
            "m5",
            "5 minutes",
            "-5s",
            "1.5h",
            "forever",
            "99999999999999999999h",
            "9999999999999999999h",
            "999999999999999999m",
            "MIN5",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("not a keep-alive") && err.contains("90s"), "{bad:?}: {err}");
        }
        for timeout in ModelUnloadTimeout::ALL {
            assert_eq!(KeepAlive::from(timeout).idle_limit(), timeout.idle_limit());
        }
        for shown in ["never", "immediately", "15s", "90s", "2m", "1h", "250ms"] {
            assert_eq!(parse(shown).unwrap().to_string(), shown);
        }
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

    #[cfg(unix)]
    #[test]
    fn settings_are_created_readable_by_the_user_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/local-mlx/settings.json");
        MlxSettings::default().save(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(path.parent().unwrap().parent().unwrap()), 0o700);
    }

    #[test]
    fn a_prompt_without_the_placeholder_or_empty_is_refused() {
        for bad in ["", "   \n", "Clean this up."] {
            let err = check_prompt(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidPrompt, "{bad:?}");
            assert!(err.to_string().contains("${output}"), "{err}");
        }
        check_prompt(DEFAULT_PROMPT).unwrap();
        check_prompt("Fix: ${output}").unwrap();
    }

    #[test]
    fn a_corrupt_settings_file_is_an_error_naming_it_and_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = MlxSettings::load(&path).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::SettingsCorrupt);
        let Error::SettingsCorrupt { backup, .. } = &err else { unreachable!() };
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert!(err.to_string().contains(&backup.display().to_string()), "{err}");
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "{not json", "the damaged bytes are kept");
        assert_eq!(MlxSettings::load(&path).unwrap(), MlxSettings::default(), "the next start has the defaults");
    }

    #[test]
    fn writes_leave_no_temp_file_and_concurrent_writers_never_share_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::thread::scope(|scope| {
            for i in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    let settings = MlxSettings { selected_model: format!("org/m{i}"), ..Default::default() };
                    settings.save(path).unwrap();
                });
            }
        });
        let loaded = MlxSettings::load(&path).unwrap();
        assert!(loaded.selected_model.starts_with("org/m"), "one whole write won: {loaded:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["settings.json"], "no temp file is left behind");
    }
}
