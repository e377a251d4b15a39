//! The app's own commands (the provider's come from `local_mlx_tauri::commands`): the
//! post-processing switch, the provider choice and the custom models, each a few lines
//! over the app settings.

pub mod app;
