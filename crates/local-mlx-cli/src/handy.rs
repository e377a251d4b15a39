//! `local-mlx handy status | connect | disconnect`: the CLI face of
//! [`local_mlx_handy`]. Parse, call it once, print a line per requirement or
//! per change (or `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand};
use local_mlx::error::escape_controls;
use local_mlx::NullSink;
use local_mlx_handy::{self as handy, Change, Outcome};
use serde_json::Value;

/// See what Handy still needs to post-process with local-mlx, and connect it.
#[derive(Debug, Subcommand)]
pub enum HandyCommand {
    /// One line per step Handy needs, each ✓ or ✗ with the fix; exit 0 only when all are ✓.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Write exactly the settings Handy needs (after a backup beside its file; Handy
    /// must be quit): experimental features and post-processing on, provider Custom at
    /// this server with a model, a prompt, the post-process shortcut.
    Connect {
        #[command(flatten)]
        target: Target,
        /// The model Handy should use (default: the one it has if downloaded, else the
        /// catalog's default, else the first downloaded).
        #[arg(long)]
        model: Option<String>,
    },
    /// Put back what Handy had for those settings before the last `connect`, where they
    /// still hold what it wrote (a setting changed in Handy since stays).
    Disconnect {
        #[command(flatten)]
        handy: HandyDir,
    },
}

#[derive(Debug, Args)]
pub struct HandyDir {
    /// Handy's folder holding settings_store.json (default: LOCAL_MLX_HANDY_DIR when
    /// set and not empty, else its app-data folder for com.pais.handy; a portable
    /// Handy: its Data folder).
    #[arg(long)]
    handy_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    handy: HandyDir,
    /// The server's base URL as Handy should use it.
    #[arg(long, default_value_t = handy::default_url(local_mlx_server::DEFAULT_PORT))]
    url: String,
}

pub async fn run(command: HandyCommand, json: bool) -> Result<ExitCode> {
    match command {
        HandyCommand::Status { target } => status(target, json).await,
        HandyCommand::Connect { target, model } => {
            let downloaded: Vec<String> =
                crate::manager::manager(Arc::new(NullSink))?.downloaded_models().into_iter().map(|m| m.id).collect();
            let path = handy::store::store_path(target.handy.handy_dir.as_deref());
            let outcome = handy::connect(&path, &target.url, model.as_deref(), &downloaded)?;
            report(&outcome, json, "connected", &target.url)
        }
        HandyCommand::Disconnect { handy } => {
            let outcome = handy::disconnect(&handy::store::store_path(handy.handy_dir.as_deref()))?;
            report(&outcome, json, "disconnected", "")
        }
    }
}

async fn status(target: Target, json: bool) -> Result<ExitCode> {
    let path = handy::store::store_path(target.handy.handy_dir.as_deref());
    let status = handy::status(&path, &target.url).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        // The lines quote Handy's store: escaped, no value there moves the terminal.
        for requirement in &status.requirements {
            println!("{} {}", if requirement.ok { "✓" } else { "✗" }, escape_controls(&requirement.what));
            if let Some(fix) = &requirement.fix {
                println!("    fix: {}", escape_controls(fix));
            }
        }
        if !status.ready && status.requirements.iter().any(|r| r.id == "handy_found" && r.ok) {
            println!("or quit Handy and run `local-mlx handy connect`: it sets all of Handy's side at once");
        }
    }
    Ok(if status.ready { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn report(outcome: &Outcome, json: bool, done: &str, url: &str) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(ExitCode::SUCCESS);
    }
    if outcome.changes.is_empty() {
        println!("nothing to change in {}", outcome.store.display());
    } else {
        println!("{done} Handy ({}):", outcome.store.display());
        for change in &outcome.changes {
            println!("  {}", describe(change));
        }
        if let Some(backup) = &outcome.backup {
            println!(
                "backup of the file as it was: {} (the newest {} backups are kept)",
                backup.display(),
                handy::store::KEPT_BACKUPS
            );
        }
    }
    if !outcome.kept.is_empty() {
        println!("left as they are, changed in Handy since `local-mlx handy connect`:");
        for kept in &outcome.kept {
            println!("  {}: {} (connect wrote {})", kept.path, show(&kept.now), show(&kept.connected));
        }
    }
    if done == "connected" {
        match &outcome.shortcut {
            Some(keys) => println!("open Handy and press {keys} to dictate with post-processing"),
            None => println!("open Handy and bind its \"Transcribe with Post-Processing\" shortcut"),
        }
        println!(
            "keep the server running: `local-mlx serve` (then `local-mlx handy status --url {url}` checks it all)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `post_process_provider_id: "openai" → "custom"`; a whole entry is shown by its id.
fn describe(change: &Change) -> String {
    format!("{}: {} → {}", change.path, show(&change.before), show(&change.after))
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "(absent)".to_string(),
        Some(Value::Object(entry)) if entry.contains_key("id") => format!("entry {}", entry["id"]),
        Some(value) => value.to_string(),
    }
}
