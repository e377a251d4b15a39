//! The core's `EventSink`, implemented by forwarding every `MlxModelStateEvent` to the
//! webview on the app's one event channel.
//!
//! The core calls `emit` from its download ticker (about 10 times a second), so this
//! only converts and hands the event to Tauri, which queues it; it never blocks.

use tauri::{AppHandle, Runtime};
use tauri_specta::Event;

use crate::types::MlxModelStateEvent;

pub struct TauriSink<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> TauriSink<R> {
    pub fn new(app: AppHandle<R>) -> Self {
        TauriSink { app }
    }
}

impl<R: Runtime> local_mlx::EventSink for TauriSink<R> {
    fn emit(&self, event: local_mlx::MlxModelStateEvent) {
        let event = MlxModelStateEvent::from(event);
        if let Err(error) = event.emit(&self.app) {
            tracing::warn!(%error, "cannot forward a model state event to the window");
        }
    }
}
