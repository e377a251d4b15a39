//! The core's [`EventSink`](local_mlx::EventSink), forwarding every model state change to
//! the webview as one tauri-specta event, [`MlxModelStateEvent`] (channel
//! `mlx-model-state-event`).
//!
//! The event is a transparent, inlined wrapper around the core's own
//! `local_mlx::MlxModelStateEvent`: the wrapper exists only because `tauri_specta::Event`
//! must be implemented in a crate that knows Tauri, and being inlined it adds no second
//! TypeScript type (two types named `MlxModelStateEvent` would fail the export). The core
//! calls `emit` from its download ticker about 10 times a second, so forwarding only hands
//! the event to Tauri, which queues it; it never blocks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use specta::Type;
use tauri::{AppHandle, Runtime};
use tauri_specta::Event;

/// The provider's `MlxModelStateEvent`, as the frontend receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type, Event)]
#[serde(transparent)]
#[specta(transparent, inline)]
pub struct MlxModelStateEvent(pub local_mlx::MlxModelStateEvent);

/// Forwards the core's events to the app's windows.
pub struct TauriSink<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> local_mlx::EventSink for TauriSink<R> {
    fn emit(&self, event: local_mlx::MlxModelStateEvent) {
        if let Err(error) = MlxModelStateEvent(event).emit(&self.app) {
            tracing::warn!(%error, "cannot forward a model state event to the window");
        }
    }
}

/// The sink to build the app's `MlxModelManager` with. The app must register
/// [`MlxModelStateEvent`] in its `collect_events!` and call `mount_events` first:
/// tauri-specta refuses to emit an event it was not told about.
pub fn event_sink<R: Runtime>(app: &AppHandle<R>) -> Arc<dyn local_mlx::EventSink> {
    Arc::new(TauriSink { app: app.clone() })
}
