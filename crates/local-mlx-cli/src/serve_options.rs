//! The options `serve` runs with, declared once: `local-mlx serve` takes them, and
//! `local-mlx service install` takes the same ones and writes them into the service.

use anyhow::Result;
use clap::Args;
use local_mlx::settings::{AnswerWithin, KeepAlive};
use local_mlx_server::{ApiKey, ServerConfig};

/// The environment variable that holds the API key.
pub const API_KEY_ENV: &str = "LOCAL_MLX_API_KEY";

#[derive(Debug, Args)]
pub struct ServeOptions {
    /// Where to listen; `localhost` is 127.0.0.1 and ::1. Any non-loopback host
    /// needs an API key.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// The port (0: any free port; a login service needs a fixed one).
    #[arg(long, default_value_t = local_mlx_server::DEFAULT_PORT)]
    pub port: u16,
    /// Require `Authorization: Bearer <KEY>` on every request; `-` reads the key
    /// from stdin. Prefer LOCAL_MLX_API_KEY or --api-key-file: a key written here
    /// shows in every local user's `ps`.
    #[arg(long, env = API_KEY_ENV, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Read the API key from the first line of this file.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Unload the model and stop the Python sidecar after this long without a
    /// request: never, immediately, sec15, min2, min5, min10, min15, hour1, or a
    /// duration like 90s, 10m, 1h.
    #[arg(long, default_value = "min5")]
    pub keep_alive: String,
    /// Pass answers on as the model wrote them. By default, when the prompt wraps
    /// the transcript in `<transcript>` tags (Handy's default prompt does), an answer
    /// that is not a clean-up of it (an answered question, a followed instruction,
    /// a translation, a ramble) is replaced by the transcript itself. Use this flag
    /// for prompts that are meant to translate or rewrite.
    #[arg(long = "no-clean-up-check", alias = "no-guard")]
    pub no_clean_up_check: bool,
    /// When the prompt wraps the transcript in `<transcript>` tags and the model has
    /// no finished answer after this long (model load included), stop it and answer
    /// with the transcript itself, so a dictation app never waits forever: a
    /// duration like 15s, 1500ms, 1m, or never.
    #[arg(long, default_value = "15s")]
    pub answer_within: String,
}

impl ServeOptions {
    /// The key from `--api-key` (`-`: stdin), `LOCAL_MLX_API_KEY` or `--api-key-file`.
    /// An empty `LOCAL_MLX_API_KEY` is no key at all (as every empty `LOCAL_MLX_*`).
    pub fn api_key(&self) -> Result<Option<ApiKey>> {
        let arg = self.api_key.as_deref().filter(|key| !key.is_empty());
        Ok(ApiKey::from_cli(arg, self.api_key_file.as_deref(), std::io::stdin())?)
    }

    /// The warning for a key written on the command line (other local users see it in
    /// `ps`), `None` when it came from `LOCAL_MLX_API_KEY`, a file or stdin.
    pub fn api_key_in_argv_warning(&self) -> Option<&'static str> {
        let key = self.api_key.as_deref().filter(|key| !key.is_empty() && *key != "-")?;
        let from_env = std::env::var(API_KEY_ENV).is_ok_and(|env| env == key);
        (!from_env).then_some(
            "warning: --api-key puts the key on the command line, where every local user can read it (`ps`); \
             use LOCAL_MLX_API_KEY, --api-key-file PATH or --api-key - (stdin) instead",
        )
    }

    pub fn keep_alive(&self) -> Result<KeepAlive> {
        self.keep_alive.parse().map_err(|error| anyhow::anyhow!("--keep-alive {:?}: {error}", self.keep_alive))
    }

    pub fn answer_within(&self) -> Result<AnswerWithin> {
        self.answer_within.parse().map_err(|error| anyhow::anyhow!("--answer-within: {error}"))
    }

    /// What the server enforces with these options and `key`: refuses what `serve`
    /// refuses at start (a host beyond loopback without a key).
    pub fn server_config(&self, key: Option<ApiKey>) -> Result<ServerConfig> {
        Ok(ServerConfig {
            check_clean_up: !self.no_clean_up_check,
            answer_within: self.answer_within()?.deadline(),
            ..ServerConfig::for_host(&self.host, key)?
        })
    }
}
