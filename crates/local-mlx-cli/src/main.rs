//! `local-mlx`: the command-line face of the MLX Local AI Provider.
//!
//! Thin over [`local_mlx::MlxModelManager`]: parse arguments, call one manager method,
//! print the result for a person (tables, a progress bar) or for a script (`--json`).
//! Errors end the program with a one-line message on stderr and a non-zero code.

mod commands;
mod handy;
mod manager;
mod progress;
mod serve_options;
mod service;
mod setup;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use local_mlx::error::{escape_controls, source_chain};

/// This build's version and the commit it was built from (see build.rs).
pub const VERSION: &str = env!("LOCAL_MLX_VERSION");

/// Run small LLMs locally with MLX to clean up dictated text.
#[derive(Debug, Parser)]
#[command(name = "local-mlx", version = VERSION, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make this machine ready for the first dictation: sync the Python environment,
    /// download the model (default: the selected one), load it and clean up a sample
    /// sentence; the model becomes the selected one. Running it again only re-checks.
    Setup {
        /// A catalog id or any Hugging Face repo id (org/name).
        model: Option<String>,
    },
    /// List the models on offer and whether each is downloaded.
    Models,
    /// Download a model into the Hugging Face cache (Ctrl-C cancels; rerun resumes).
    Pull {
        /// A catalog id or any Hugging Face repo id (org/name).
        model: String,
    },
    /// Delete a downloaded model (and any partial download of it).
    Rm { model: String },
    /// Show the state of one model, or of all of them.
    Status { model: Option<String> },
    /// Clean up a transcript with the local model: the text from the argument or stdin,
    /// the result on stdout, progress and timings on stderr.
    ///
    /// The sidecar lives as long as this command, so there is no separate `warm` or
    /// `unload` here: they matter to long-running embedders (the desktop app).
    Process {
        /// The transcript; read from stdin when absent or `-`.
        text: Option<String>,
        /// Use this model instead of the selected one.
        #[arg(long)]
        model: Option<String>,
        /// Use this prompt template (`${output}` is the transcript) instead of the saved one.
        #[arg(long)]
        prompt: Option<String>,
        /// Print the transcript as it came when the model has no finished answer after
        /// this long, model load included (15s, 1500ms, 1m, never); default: the
        /// settings' `answer_within_seconds` (15).
        #[arg(long)]
        answer_within: Option<String>,
    },
    /// Serve an OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`, `/health`)
    /// for Handy's "Custom" post-processing provider or any OpenAI client. The first
    /// line on stdout is `local-mlx serve: <base URL>`; Ctrl-C or SIGTERM stops it.
    Serve(serve_options::ServeOptions),
    /// Run `local-mlx serve` at login with the options given: a LaunchAgent on macOS, a
    /// systemd user unit on Linux (`install`, `uninstall`, `restart`, `status`).
    Service(service::ServiceArgs),
    /// See what Handy still needs to post-process with local-mlx, and connect it.
    #[command(subcommand)]
    Handy(handy::HandyCommand),
}

impl Command {
    /// The `--json` kind of a failure of the CLI's own in this command (a core error
    /// keeps the core's kind): which command failed, never a bare `"error"`.
    fn own_failure(&self) -> &'static str {
        match self {
            Command::Setup { .. } => "setup_failed",
            Command::Models => "models_failed",
            Command::Pull { .. } => "pull_failed",
            Command::Rm { .. } => "rm_failed",
            Command::Status { .. } => "status_failed",
            Command::Process { .. } => "process_failed",
            Command::Serve(_) => "serve_failed",
            Command::Service(_) => "service_failed",
            Command::Handy(_) => "handy_failed",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server's log (a service's log file) keeps its warnings: a clean-up refused or cut
    // at its deadline, and why; a one-shot command prints only errors.
    let default_level = if matches!(cli.command, Command::Serve(_)) { "warn" } else { "error" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCAL_MLX_LOG").unwrap_or_else(|_| default_level.into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let own_kind = cli.command.own_failure();
    match runtime.block_on(commands::run(cli.command, cli.json)) {
        Ok(code) => code,
        Err(error) => {
            // Each cause once, and no control character from remote text (a hub's file
            // name, a repo id typed with escapes) reaches the terminal raw.
            let message = escape_controls(&source_chain(error.as_ref()));
            if cli.json {
                let kind =
                    match (error.downcast_ref::<local_mlx::Error>(), error.downcast_ref::<local_mlx_handy::Error>()) {
                        (Some(core), _) => core.kind().as_str(),
                        (None, Some(handy)) => handy.kind(),
                        (None, None) => own_kind,
                    };
                println!("{}", serde_json::json!({"error": {"kind": kind, "message": message}}));
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
