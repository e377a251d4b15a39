//! One function per subcommand, each a few lines over the manager.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use local_mlx::DownloadOutcome;
use local_mlx::{MlxModelManager, NullSink};

use crate::manager::manager;
use crate::progress::{ProcessProgress, PullProgress};
use crate::table;
use crate::Command;

/// Exit code for a download stopped by Ctrl-C (the shell's 128 + SIGINT).
const EXIT_CANCELLED: u8 = 130;

pub async fn run(command: Command, json: bool) -> Result<ExitCode> {
    match command {
        Command::Models => models(json),
        Command::Status { model } => status(model.as_deref(), json),
        Command::Rm { model } => rm(&model, json).await,
        Command::Pull { model } => pull(&model, json).await,
        Command::Process { text, model, prompt, answer_within } => {
            process(text, model, prompt, answer_within, json).await
        }
        Command::Serve(options) => serve(&options).await,
        Command::Setup { model } => crate::setup::setup(model, json).await,
        Command::Service(args) => crate::service::run(args, json).await,
        Command::Handy(command) => crate::handy::run(command, json).await,
    }
}

fn models(json: bool) -> Result<ExitCode> {
    let manager = manager(Arc::new(NullSink))?;
    let models = manager.list_models();
    print_platform_note(&manager);
    if json {
        println!("{}", serde_json::to_string_pretty(&models)?);
    } else {
        print!("{}", table::models(&models));
    }
    Ok(ExitCode::SUCCESS)
}

/// Once, on stderr (stdout stays the table or the JSON): why the listed models cannot
/// run here, or what to expect where they run on the CPU only.
fn print_platform_note(manager: &MlxModelManager) {
    let platform = manager.platform();
    match (platform.ensure_supported(), &platform.note) {
        (Err(refusal), _) => eprintln!("note: {refusal}"),
        (Ok(()), Some(note)) => eprintln!("note: {note}"),
        (Ok(()), None) => {}
    }
}

fn status(model: Option<&str>, json: bool) -> Result<ExitCode> {
    let manager = manager(Arc::new(NullSink))?;
    let statuses = match model {
        Some(id) => vec![manager.model_status(id)?],
        None => manager.list_models().into_iter().map(|m| m.status).collect(),
    };
    print_platform_note(&manager);
    // On stderr, as the platform note: stdout stays the table or the JSON.
    eprintln!("engine: {}", manager.engine());
    if json {
        let value =
            if model.is_some() { serde_json::to_value(&statuses[0])? } else { serde_json::to_value(&statuses)? };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", table::statuses(&statuses));
    }
    Ok(ExitCode::SUCCESS)
}

async fn rm(model: &str, json: bool) -> Result<ExitCode> {
    let report = manager(Arc::new(NullSink))?.delete_model(model).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "deleted {model}: {} freed ({} files{})",
            local_mlx::error::human_bytes(report.bytes_freed),
            report.blobs_removed,
            if report.partial_files_removed > 0 {
                format!(", {} partial", report.partial_files_removed)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn pull(model: &str, json: bool) -> Result<ExitCode> {
    let progress = Arc::new(PullProgress::new(json));
    let manager = Arc::new(manager(progress.clone())?);
    let ctrl_c = {
        let manager = manager.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                // Nothing to cancel yet (still resolving) is fine: the pull ends anyway.
                let _ = manager.cancel_download();
            }
        })
    };
    let outcome = manager.download(model).await;
    ctrl_c.abort();
    progress.finish();
    let outcome = outcome?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(match outcome {
        DownloadOutcome::Downloaded { snapshot, fetched_bytes } => {
            if !json {
                eprintln!(
                    "downloaded {model} ({}) to {}",
                    local_mlx::error::human_bytes(fetched_bytes),
                    snapshot.display()
                );
            }
            ExitCode::SUCCESS
        }
        DownloadOutcome::AlreadyDownloaded { snapshot } => {
            if !json {
                eprintln!("{model} is already downloaded at {}", snapshot.display());
            }
            ExitCode::SUCCESS
        }
        DownloadOutcome::Cancelled { partial_bytes } => {
            if !json {
                eprintln!(
                    "cancelled: {} kept; run `local-mlx pull {model}` again to resume",
                    local_mlx::error::human_bytes(partial_bytes)
                );
            }
            ExitCode::from(EXIT_CANCELLED)
        }
    })
}

async fn process(
    text: Option<String>,
    model: Option<String>,
    prompt: Option<String>,
    answer_within: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    // Checked before reading stdin, by the core's rule (`process_text_with` applies it too).
    if let Some(prompt) = &prompt {
        local_mlx::settings::check_prompt(prompt)?;
    }
    let answer_within = answer_within
        .map(|text| text.parse().map_err(|error| anyhow::anyhow!("--answer-within: {error}")))
        .transpose()?;
    let text = match text.filter(|t| t != "-") {
        Some(text) => text,
        None => {
            let mut buffer = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buffer)
                .context("cannot read the transcript from stdin (it must be UTF-8 text)")?;
            buffer
        }
    };
    let manager = manager(Arc::new(ProcessProgress::new(json)))?;
    let options = local_mlx::manager::ProcessOptions { model, prompt, answer_within, ..Default::default() };
    let result = manager.process_text_with(&text, options).await;
    // Stop the sidecar politely before exiting (dropping it would SIGKILL it).
    manager.shutdown().await;
    let output = result?;
    if json {
        println!("{}", serde_json::to_string(&output)?);
        return Ok(ExitCode::SUCCESS);
    }
    for warning in &output.clean_up.warnings {
        eprintln!("warning: {warning}");
    }
    let t = &output.timings;
    eprintln!(
        "done in {:.1} s (server start {:.1} s, model load {:.1} s, generation {:.1} s; {} prompt + {} generated tokens)",
        t.total_ms as f64 / 1000.0,
        t.start_ms as f64 / 1000.0,
        t.load_ms as f64 / 1000.0,
        t.generate_ms as f64 / 1000.0,
        output.prompt_tokens,
        output.tokens_generated
    );
    println!("{}", output.text);
    Ok(ExitCode::SUCCESS)
}

async fn serve(options: &crate::serve_options::ServeOptions) -> Result<ExitCode> {
    crate::service::log::rotate_at_start();
    let keep_alive = options.keep_alive()?;
    if let Some(warning) = options.api_key_in_argv_warning() {
        eprintln!("{warning}");
    }
    let config = local_mlx_server::ServerConfig {
        version: crate::VERSION.to_string(),
        ..options.server_config(options.api_key()?)?
    };
    let manager = Arc::new(manager(Arc::new(NullSink))?);
    manager.set_keep_alive(keep_alive);
    let listeners = local_mlx_server::bind(&options.host, options.port).await?;
    // Scripts and tests read this exact line.
    println!("local-mlx serve: {}", listeners.base_url);
    match manager.downloaded_models().len() {
        0 => eprintln!("no model is downloaded yet: run `local-mlx pull <id>` (the list grows without a restart)"),
        n => eprintln!("serving {n} downloaded model(s); Ctrl-C stops"),
    }
    local_mlx_server::serve(listeners, local_mlx_server::router(manager.clone(), config), stop_signal()).await;
    // Stop the sidecar politely before exiting (dropping it would SIGKILL it).
    manager.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (what launchd, systemd and `kill` send).
async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a tokio runtime with signal support");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
