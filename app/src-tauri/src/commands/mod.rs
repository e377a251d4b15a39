//! The commands the webview may call: the seed's `mlx_*` commands and what the
//! settings page needs. Each is a few lines over `MlxModelManager` or the app settings.

pub mod app;
pub mod mlx;
