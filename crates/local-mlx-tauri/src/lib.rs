//! local-mlx-tauri: what a Tauri v2 app registers to offer the MLX Local AI Provider.
//!
//! The core crate, `local-mlx`, knows nothing of Tauri; this crate is the thin layer that
//! makes its `MlxModelManager` callable from a webview. An app adds it in four places:
//!
//! 1. one dependency line (`local-mlx-tauri = { ... }`; the core comes with it, as
//!    `local_mlx_tauri::local_mlx`);
//! 2. the commands of [`commands`] in its own `collect_commands![...]`
//!    (`local_mlx_tauri::commands::mlx_list_models`, ...);
//! 3. [`MlxModelStateEvent`] in its own `collect_events![...]`;
//! 4. one `manage()` call in `setup`, after `mount_events`:
//!    `app.manage(Arc::new(MlxModelManager::new(config, local_mlx_tauri::event_sink(app.handle()))?))`.
//!
//! `docs/INTEGRATING.md` does this for Handy, and `examples/handy_snippets.rs` compiles
//! the Rust it shows against stand-ins for Handy's own items.
//!
//! The decision this crate embodies: the TypeScript types come from the core's own types
//! (its `specta` feature derives `specta::Type` on them), not from a mirror kept by hand
//! here, so the generated bindings can only say what the core really sends: a field the
//! core skips when empty is `field?: T`, a path is a `string`. Every exported name that
//! is not already named `Mlx…` is prefixed `Mlx` so it cannot clash with an
//! embedding app's own types (Handy exports a `ModelUnloadTimeout`; ours is
//! `MlxModelUnloadTimeout`); `tests/bindings.rs` checks that against Handy's list.
//!
//! The commands stay one call each over the manager, so the core can change under them
//! without this crate growing logic of its own; errors reach the frontend as
//! [`MlxCommandError`] `{ kind, message }`.

pub mod commands;
mod error;
mod events;

/// The core, so an app needs only this crate as a dependency.
pub use local_mlx;

pub use error::{MlxCommandError, MlxCommandResult};
pub use events::{event_sink, MlxModelStateEvent, TauriSink};

/// A tauri-specta builder holding exactly this crate's commands and event: for an app
/// whose only commands are these, and for exporting this crate's bindings on their own
/// (tests). An app with commands of its own lists these in its own `collect_commands!`.
pub fn specta_builder<R: tauri::Runtime>() -> tauri_specta::Builder<R> {
    use commands::*;
    tauri_specta::Builder::<R>::new()
        .commands(tauri_specta::collect_commands![
            mlx_list_models,
            mlx_get_model_status,
            mlx_download_model,
            mlx_cancel_download,
            mlx_retry_download,
            mlx_delete_model,
            mlx_process_text,
            mlx_process_text_detailed,
            mlx_warm_up,
            mlx_platform,
            mlx_unload_model,
            mlx_get_settings,
            mlx_update_settings,
        ])
        .events(tauri_specta::collect_events![MlxModelStateEvent])
}
