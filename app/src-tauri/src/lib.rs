//! local-mlx's desktop app: the seed's Tauri commands and events over
//! `MlxModelManager`, and the settings page that drives them.
//!
//! This crate only wires: the manager is built once at start-up and registered with
//! `manage()` (as Handy registers its managers), every command is a few lines over it
//! ([`commands`]), and the core's events are forwarded to the window on one channel
//! ([`events`]). The frontend's TypeScript bindings are generated from the types here
//! by tauri-specta ([`specta_builder`]); `cargo test -p local-mlx-app` fails when the
//! committed `app/src/bindings.ts` is stale (`UPDATE_BINDINGS=1` rewrites it).

mod app_settings;
mod commands;
mod error;
mod events;
mod setup;
mod types;

use std::sync::Arc;

use local_mlx::MlxModelManager;
use tauri::{Manager, RunEvent};
use tauri_specta::{collect_commands, collect_events};

pub use setup::EXTRA_MODELS_ENV;

/// Every command and event the webview sees; the bindings are generated from this.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    use commands::{app, mlx};
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(collect_commands![
            mlx::mlx_list_models,
            mlx::mlx_get_model_status,
            mlx::mlx_download_model,
            mlx::mlx_cancel_download,
            mlx::mlx_retry_download,
            mlx::mlx_delete_model,
            mlx::mlx_process_text,
            mlx::mlx_process_text_detailed,
            mlx::mlx_warm_up,
            mlx::mlx_unload_model,
            mlx::mlx_get_settings,
            mlx::mlx_update_settings,
            mlx::mlx_disk_space,
            mlx::mlx_add_custom_model,
            mlx::mlx_platform,
            app::get_app_settings,
            app::get_post_process_providers,
            app::set_post_process_enabled,
            app::set_post_process_provider,
        ])
        .events(collect_events![types::MlxModelStateEvent])
        .constant("DEFAULT_PROMPT", local_mlx::postprocess::DEFAULT_PROMPT)
}

/// The TypeScript bindings, as `app/src/bindings.ts` holds them.
pub fn bindings() -> String {
    use specta_typescript::{BigIntExportBehavior, Typescript};
    let language = Typescript::default()
        .bigint(BigIntExportBehavior::Number)
        .header("// Generated from app/src-tauri by tauri-specta: do not edit (UPDATE_BINDINGS=1 cargo test -p local-mlx-app).\n// @ts-nocheck: the generated helpers include some this app does not use.\n/* eslint-disable */");
    specta_builder().export_str(language).expect("bindings export")
}

pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOCAL_MLX_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();

    let builder = specta_builder();
    tauri::Builder::default()
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            let manager = setup::manager(app.handle())?;
            let app_settings = setup::app_settings();
            setup::register_custom_models(&manager, &app_settings);
            app.manage(manager);
            app.manage(app_settings);
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("error while building the app")
        .run(|app, event| {
            if let RunEvent::Exit = event {
                // Unload politely and wait for the sidecar, so no Python process
                // holding the model's memory outlives the app.
                let manager = app.state::<Arc<MlxModelManager>>().inner().clone();
                tauri::async_runtime::block_on(manager.shutdown());
            }
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_bindings_match_the_rust_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/bindings.ts");
        let fresh = super::bindings();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "app/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p local-mlx-app` and commit it"
        );
    }
}
