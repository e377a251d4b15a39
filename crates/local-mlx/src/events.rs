//! `MlxModelStateEvent`, the provider's one event type, and the `EventSink` the faces implement.
//!
//! Its TypeScript type is the contract with the UI: `{ event_type, model_id, progress?,
//! error? }`, plus on download progress the byte counts and speed and on loading the
//! phase, absent from every other event. The core never knows who listens.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The provider's `event_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxEventType"))]
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

/// A model state change notification, exactly the provider's `MlxModelStateEvent`
/// plus optional progress details.
///
/// A field skipped when `None` is never `null` on the wire, so with the `specta` feature
/// it is exported as `field?: T` (`specta(type = T)` drops the `| null` of `Option<T>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct MlxModelStateEvent {
    pub event_type: EventType,
    pub model_id: String,
    /// 0.0 – 1.0, only on `download_progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub progress: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub downloaded_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub bytes_per_second: Option<f64>,
    /// On `loading_started`: what the load is waiting for now
    /// (`syncing_environment`, `starting_server`, `loading_model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = LoadPhase))]
    pub phase: Option<LoadPhase>,
}

/// The steps of getting a model ready, reported on `loading_started` events so a UI
/// can say why the first use takes long (a first run syncs a Python environment; a large model loads for seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxLoadPhase"))]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// First run: uv installs the sidecar's Python packages (minutes).
    SyncingEnvironment,
    /// The sidecar process starts (seconds).
    StartingServer,
    /// The weights are read into memory.
    LoadingModel,
}

impl MlxModelStateEvent {
    /// An event with just a type and a model.
    pub fn new(event_type: EventType, model_id: impl Into<String>) -> Self {
        MlxModelStateEvent {
            event_type,
            model_id: model_id.into(),
            progress: None,
            error: None,
            downloaded_bytes: None,
            total_bytes: None,
            bytes_per_second: None,
            phase: None,
        }
    }

    /// A `loading_started` event saying which step the load is in.
    pub fn loading(model_id: impl Into<String>, phase: LoadPhase) -> Self {
        MlxModelStateEvent { phase: Some(phase), ..Self::new(EventType::LoadingStarted, model_id) }
    }

    /// An `error` event carrying the message.
    pub fn error(model_id: impl Into<String>, message: impl Into<String>) -> Self {
        MlxModelStateEvent { error: Some(message.into()), ..Self::new(EventType::Error, model_id) }
    }

    /// A `download_progress` event.
    pub fn progress(model_id: impl Into<String>, done: u64, total: u64, bytes_per_second: f64) -> Self {
        let fraction = if total == 0 { 0.0 } else { (done as f64 / total as f64).min(1.0) };
        MlxModelStateEvent {
            progress: Some(fraction),
            downloaded_bytes: Some(done),
            total_bytes: Some(total),
            bytes_per_second: Some(bytes_per_second),
            ..Self::new(EventType::DownloadProgress, model_id)
        }
    }
}

/// Where the core sends its events. Implementations must be cheap and never block:
/// they are called from the download's progress ticker.
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: MlxModelStateEvent);
}

/// Drops every event (for callers that only want results).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: MlxModelStateEvent) {}
}

/// Any `Fn(MlxModelStateEvent)` is a sink.
impl<F> EventSink for F
where
    F: Fn(MlxModelStateEvent) + Send + Sync + 'static,
{
    fn emit(&self, event: MlxModelStateEvent) {
        self(event)
    }
}

/// Keeps every event in memory, in order (tests, and scripts that want a log).
#[derive(Debug, Default, Clone)]
pub struct RecordingSink {
    events: Arc<Mutex<Vec<MlxModelStateEvent>>>,
}

impl RecordingSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything received so far.
    pub fn events(&self) -> Vec<MlxModelStateEvent> {
        self.events.lock().expect("sink poisoned").clone()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: MlxModelStateEvent) {
        self.events.lock().expect("sink poisoned").push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fields_serialize_and_absent_options_are_omitted() {
        let json = serde_json::to_value(MlxModelStateEvent::new(EventType::LoadingStarted, "a/b")).unwrap();
        assert_eq!(json, serde_json::json!({"event_type": "loading_started", "model_id": "a/b"}));
        let json = serde_json::to_value(MlxModelStateEvent::error("a/b", "boom")).unwrap();
        assert_eq!(json, serde_json::json!({"event_type": "error", "model_id": "a/b", "error": "boom"}));
    }

    #[test]
    fn progress_is_a_fraction_with_byte_details() {
        let event = MlxModelStateEvent::progress("a/b", 25, 100, 5.0);
        assert_eq!(event.progress, Some(0.25));
        assert_eq!(event.total_bytes, Some(100));
        let zero_total = MlxModelStateEvent::progress("a/b", 0, 0, 0.0);
        assert_eq!(zero_total.progress, Some(0.0));
    }
}
