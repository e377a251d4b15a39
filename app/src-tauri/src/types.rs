//! The types the frontend sees, mirrored from the core with `specta::Type` so the
//! TypeScript bindings are generated from Rust, never written by hand.
//!
//! The core crate knows nothing of Tauri or specta, so each type here is a plain copy
//! of its core twin with a `From` conversion. Every conversion destructures the core
//! struct without `..`: a field added to the core fails this crate's build until it is
//! mirrored here, so the frontend can never silently miss one. Paths travel as strings
//! and optional fields as `null` (not absent), which is what the generated types say.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use specta::Type;

use local_mlx::manager::{ProcessOutput as CoreOutput, Timings as CoreTimings};
use local_mlx::settings::{MlxSettings as CoreSettings, ModelUnloadTimeout as CoreTimeout};
use local_mlx::store::{DownloadOutcome as CoreOutcome, MlxModelInfo as CoreInfo, MlxModelStatus as CoreStatus};
use local_mlx::{
    EventType as CoreEventType, LoadPhase as CorePhase, MlxModelStateEvent as CoreEvent, ModelState as CoreState,
    PlatformSupport as CorePlatform,
};

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The seed's per-model states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    NotDownloaded,
    Downloading,
    Downloaded,
    Loading,
    Ready,
}

impl From<CoreState> for ModelState {
    fn from(state: CoreState) -> Self {
        match state {
            CoreState::NotDownloaded => ModelState::NotDownloaded,
            CoreState::Downloading => ModelState::Downloading,
            CoreState::Downloaded => ModelState::Downloaded,
            CoreState::Loading => ModelState::Loading,
            CoreState::Ready => ModelState::Ready,
        }
    }
}

/// A model's state and, while downloading, its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct MlxModelStatus {
    pub model_id: String,
    pub state: ModelState,
    /// 0.0 – 1.0 while downloading.
    pub progress: Option<f64>,
    pub downloaded_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub bytes_per_second: Option<f64>,
    /// Bytes of an interrupted download waiting to be resumed.
    pub partial_bytes: u64,
    /// The last download error, until the next attempt.
    pub error: Option<String>,
    pub snapshot_path: Option<String>,
    /// Files on disk (a snapshot or partial bytes): the model card offers Delete.
    pub has_files: bool,
    /// Why Delete is refused right now (the core's one delete rule), or `null`.
    pub delete_blocked: Option<String>,
}

impl From<CoreStatus> for MlxModelStatus {
    fn from(status: CoreStatus) -> Self {
        let CoreStatus {
            model_id,
            state,
            progress,
            downloaded_bytes,
            total_bytes,
            bytes_per_second,
            partial_bytes,
            error,
            snapshot_path,
            has_files,
            delete_blocked,
        } = status;
        MlxModelStatus {
            model_id,
            state: state.into(),
            progress,
            downloaded_bytes,
            total_bytes,
            bytes_per_second,
            partial_bytes,
            error,
            snapshot_path: snapshot_path.as_deref().map(path_string),
            has_files,
            delete_blocked,
        }
    }
}

/// A model of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct MlxModelInfo {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub repo: String,
    pub revision: String,
    /// Approximate download size (0 when unknown: custom models).
    pub size_bytes: u64,
    /// Approximate memory needed to run it (0 when unknown).
    pub ram_bytes: u64,
    pub is_default: bool,
    pub is_builtin: bool,
    pub status: MlxModelStatus,
}

impl From<CoreInfo> for MlxModelInfo {
    fn from(info: CoreInfo) -> Self {
        let CoreInfo {
            id,
            display_name,
            description,
            repo,
            revision,
            size_bytes,
            ram_bytes,
            is_default,
            is_builtin,
            status,
        } = info;
        MlxModelInfo {
            id,
            display_name,
            description,
            repo,
            revision,
            size_bytes,
            ram_bytes,
            is_default,
            is_builtin,
            status: status.into(),
        }
    }
}

/// How a download ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DownloadOutcome {
    Downloaded { snapshot: String, fetched_bytes: u64 },
    AlreadyDownloaded { snapshot: String },
    Cancelled { partial_bytes: u64 },
}

impl From<CoreOutcome> for DownloadOutcome {
    fn from(outcome: CoreOutcome) -> Self {
        match outcome {
            CoreOutcome::Downloaded { snapshot, fetched_bytes } => {
                DownloadOutcome::Downloaded { snapshot: path_string(&snapshot), fetched_bytes }
            }
            CoreOutcome::AlreadyDownloaded { snapshot } => {
                DownloadOutcome::AlreadyDownloaded { snapshot: path_string(&snapshot) }
            }
            CoreOutcome::Cancelled { partial_bytes } => DownloadOutcome::Cancelled { partial_bytes },
        }
    }
}

/// The seed's `event_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    DownloadStarted,
    DownloadProgress,
    DownloadCompleted,
    LoadingStarted,
    LoadingCompleted,
    Unloaded,
    Error,
}

impl From<CoreEventType> for EventType {
    fn from(event_type: CoreEventType) -> Self {
        match event_type {
            CoreEventType::DownloadStarted => EventType::DownloadStarted,
            CoreEventType::DownloadProgress => EventType::DownloadProgress,
            CoreEventType::DownloadCompleted => EventType::DownloadCompleted,
            CoreEventType::LoadingStarted => EventType::LoadingStarted,
            CoreEventType::LoadingCompleted => EventType::LoadingCompleted,
            CoreEventType::Unloaded => EventType::Unloaded,
            CoreEventType::Error => EventType::Error,
        }
    }
}

/// What a `loading_started` event is waiting for (the seed's Risks 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    SyncingEnvironment,
    StartingServer,
    LoadingModel,
}

impl From<CorePhase> for LoadPhase {
    fn from(phase: CorePhase) -> Self {
        match phase {
            CorePhase::SyncingEnvironment => LoadPhase::SyncingEnvironment,
            CorePhase::StartingServer => LoadPhase::StartingServer,
            CorePhase::LoadingModel => LoadPhase::LoadingModel,
        }
    }
}

/// The seed's `MlxModelStateEvent`, on the app's one event channel
/// (`mlx-model-state-event`), plus the core's optional progress details and phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct MlxModelStateEvent {
    pub event_type: EventType,
    pub model_id: String,
    /// 0.0 – 1.0, on `download_progress`.
    pub progress: Option<f64>,
    pub error: Option<String>,
    pub downloaded_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub bytes_per_second: Option<f64>,
    /// On `loading_started`: which step of getting the model ready is under way.
    pub phase: Option<LoadPhase>,
}

impl From<CoreEvent> for MlxModelStateEvent {
    fn from(event: CoreEvent) -> Self {
        let CoreEvent { event_type, model_id, progress, error, downloaded_bytes, total_bytes, bytes_per_second, phase } =
            event;
        MlxModelStateEvent {
            event_type: event_type.into(),
            model_id,
            progress,
            error,
            downloaded_bytes,
            total_bytes,
            bytes_per_second,
            phase: phase.map(Into::into),
        }
    }
}

/// Handy's `ModelUnloadTimeout`, with its serde names. The names are spelled out
/// because specta's snake_case would export `Min2` as `min_2` while serde sends `min2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
pub enum ModelUnloadTimeout {
    #[serde(rename = "never")]
    Never,
    #[serde(rename = "immediately")]
    Immediately,
    #[serde(rename = "min2")]
    Min2,
    #[serde(rename = "min5")]
    Min5,
    #[serde(rename = "min10")]
    Min10,
    #[serde(rename = "min15")]
    Min15,
    #[serde(rename = "hour1")]
    Hour1,
    #[serde(rename = "sec15")]
    Sec15,
}

impl From<CoreTimeout> for ModelUnloadTimeout {
    fn from(timeout: CoreTimeout) -> Self {
        match timeout {
            CoreTimeout::Never => ModelUnloadTimeout::Never,
            CoreTimeout::Immediately => ModelUnloadTimeout::Immediately,
            CoreTimeout::Min2 => ModelUnloadTimeout::Min2,
            CoreTimeout::Min5 => ModelUnloadTimeout::Min5,
            CoreTimeout::Min10 => ModelUnloadTimeout::Min10,
            CoreTimeout::Min15 => ModelUnloadTimeout::Min15,
            CoreTimeout::Hour1 => ModelUnloadTimeout::Hour1,
            CoreTimeout::Sec15 => ModelUnloadTimeout::Sec15,
        }
    }
}

impl From<ModelUnloadTimeout> for CoreTimeout {
    fn from(timeout: ModelUnloadTimeout) -> Self {
        match timeout {
            ModelUnloadTimeout::Never => CoreTimeout::Never,
            ModelUnloadTimeout::Immediately => CoreTimeout::Immediately,
            ModelUnloadTimeout::Min2 => CoreTimeout::Min2,
            ModelUnloadTimeout::Min5 => CoreTimeout::Min5,
            ModelUnloadTimeout::Min10 => CoreTimeout::Min10,
            ModelUnloadTimeout::Min15 => CoreTimeout::Min15,
            ModelUnloadTimeout::Hour1 => CoreTimeout::Hour1,
            ModelUnloadTimeout::Sec15 => CoreTimeout::Sec15,
        }
    }
}

/// The provider's settings: selected model, unload timeout, prompt template, uv path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct MlxSettings {
    pub selected_model: String,
    pub model_unload_timeout: ModelUnloadTimeout,
    /// Template with `${output}` for the transcript.
    pub prompt: String,
    pub uv_path: Option<String>,
}

impl From<CoreSettings> for MlxSettings {
    fn from(settings: CoreSettings) -> Self {
        let CoreSettings { selected_model, model_unload_timeout, prompt, uv_path } = settings;
        MlxSettings {
            selected_model,
            model_unload_timeout: model_unload_timeout.into(),
            prompt,
            uv_path: uv_path.as_deref().map(path_string),
        }
    }
}

impl From<MlxSettings> for CoreSettings {
    fn from(settings: MlxSettings) -> Self {
        let MlxSettings { selected_model, model_unload_timeout, prompt, uv_path } = settings;
        CoreSettings {
            selected_model,
            model_unload_timeout: model_unload_timeout.into(),
            prompt,
            uv_path: uv_path.filter(|p| !p.trim().is_empty()).map(PathBuf::from),
        }
    }
}

/// Where the time of one enhancement went, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Timings {
    pub start_ms: u64,
    pub load_ms: u64,
    pub generate_ms: u64,
    pub total_ms: u64,
}

impl From<CoreTimings> for Timings {
    fn from(timings: CoreTimings) -> Self {
        let CoreTimings { start_ms, load_ms, generate_ms, total_ms } = timings;
        Timings { start_ms, load_ms, generate_ms, total_ms }
    }
}

/// One enhanced transcript, with what the "Try it" box shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ProcessOutput {
    pub text: String,
    /// False when a guard kept the original transcript (see `warnings`).
    pub enhanced: bool,
    pub warnings: Vec<String>,
    pub model_id: String,
    pub tokens_generated: u32,
    pub prompt_tokens: u32,
    pub cached_tokens: u32,
    pub timings: Timings,
}

impl From<CoreOutput> for ProcessOutput {
    fn from(output: CoreOutput) -> Self {
        let CoreOutput { text, enhanced, warnings, model_id, tokens_generated, prompt_tokens, cached_tokens, timings } =
            output;
        ProcessOutput {
            text,
            enhanced,
            warnings,
            model_id,
            tokens_generated,
            prompt_tokens,
            cached_tokens,
            timings: timings.into(),
        }
    }
}

/// Free space where models are stored, for the low-disk warning before a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct DiskSpace {
    /// The Hugging Face cache folder models download into.
    pub cache_dir: String,
    pub available_bytes: u64,
}

/// Whether this machine can run the provider, and if not, why (the core's decision
/// table: Apple Silicon Macs and Linux on x86_64 / aarch64 run it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PlatformSupport {
    pub os: String,
    pub arch: String,
    pub supported: bool,
    /// Why not when unsupported; what to expect when it runs on the CPU only.
    pub note: Option<String>,
}

impl From<CorePlatform> for PlatformSupport {
    fn from(platform: CorePlatform) -> Self {
        let CorePlatform { os, arch, supported, note } = platform;
        PlatformSupport { os, arch, supported, note }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_the_seeds_field_names_and_values() {
        let core = CoreEvent::progress("org/model", 25, 100, 10.0);
        let json = serde_json::to_value(MlxModelStateEvent::from(core)).unwrap();
        assert_eq!(json["event_type"], "download_progress");
        assert_eq!(json["model_id"], "org/model");
        assert_eq!(json["progress"], 0.25);
        assert_eq!(json["total_bytes"], 100);
        let loading = MlxModelStateEvent::from(CoreEvent::loading("org/model", CorePhase::SyncingEnvironment));
        let json = serde_json::to_value(loading).unwrap();
        assert_eq!(json["event_type"], "loading_started");
        assert_eq!(json["phase"], "syncing_environment");
    }

    #[test]
    fn unload_timeouts_keep_the_cores_serde_names() {
        for core in CoreTimeout::ALL {
            let mirrored = ModelUnloadTimeout::from(core);
            assert_eq!(serde_json::to_value(mirrored).unwrap(), serde_json::to_value(core).unwrap());
        }
        let ts = crate::bindings();
        assert!(
            ts.contains(r#""never" | "immediately" | "min2" | "min5" | "min10" | "min15" | "hour1" | "sec15""#),
            "{ts}"
        );
    }

    #[test]
    fn settings_round_trip_through_the_core_type() {
        let core = CoreSettings {
            selected_model: "org/model".into(),
            model_unload_timeout: CoreTimeout::Hour1,
            prompt: "Fix: ${output}".into(),
            uv_path: Some(PathBuf::from("/opt/uv")),
        };
        let mirrored = MlxSettings::from(core.clone());
        assert_eq!(serde_json::to_value(&mirrored).unwrap()["model_unload_timeout"], "hour1");
        assert_eq!(CoreSettings::from(mirrored), core);
    }

    #[test]
    fn a_blank_uv_path_means_search_for_uv() {
        let settings = MlxSettings {
            selected_model: "org/model".into(),
            model_unload_timeout: ModelUnloadTimeout::Min5,
            prompt: "${output}".into(),
            uv_path: Some("  ".into()),
        };
        assert_eq!(CoreSettings::from(settings).uv_path, None);
    }
}
