//! `local-mlx setup [MODEL]`: make this machine ready for the first dictation.
//!
//! Three phases, each skipped when already done, so running it again only re-checks:
//! the Python environment (synced now, not inside the first dictation), the model
//! (pulled with a progress bar), and a check (the model loaded and one sample sentence
//! cleaned up). The model becomes the selected one in the CLI's settings. Progress goes
//! to stderr; the summary to stdout, or one JSON object with `--json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use local_mlx::manager::{ProcessOptions, ProcessOutput};
use local_mlx::settings::{config_dir, MlxSettings};
use local_mlx::DownloadOutcome;
use local_mlx::{EventSink, MlxModelManager, MlxModelStateEvent};
use serde::Serialize;

use crate::progress::{ProcessProgress, PullProgress};

/// What the check cleans up: short (the CPU path is slow), with fillers to drop.
pub const SAMPLE: &str = "um so this is a quick test of the uh dictation clean up";

/// The summary `--json` prints.
#[derive(Debug, Serialize)]
struct SetupReport {
    model_id: String,
    /// Seconds the sync took; `null` when the environment was already synced.
    environment_sync_s: Option<f64>,
    /// Bytes downloaded now (0 when the model was already there).
    downloaded_bytes: u64,
    download_s: f64,
    /// The sidecar's start and the model's load, then the sample's generation.
    start_s: f64,
    load_s: f64,
    generate_s: f64,
    sample: String,
    cleaned: String,
    /// Why the check kept the sample as it was, if it did (a small model may).
    warnings: Vec<String>,
    snapshot: String,
    /// When the login service answers with another version than this binary (after
    /// `uv tool upgrade local-mlx`): what to do.
    service_note: Option<String>,
    next_steps: Vec<String>,
}

/// Download events to the pull bar, load phases as lines (both on stderr); nothing
/// with `--json`, whose stdout is the one report.
struct SetupProgress {
    pull: Option<PullProgress>,
    phases: ProcessProgress,
}

impl EventSink for SetupProgress {
    fn emit(&self, event: MlxModelStateEvent) {
        if let Some(pull) = &self.pull {
            self.phases.emit(event.clone());
            pull.emit(event);
        }
    }
}

pub async fn setup(model: Option<String>, json: bool) -> Result<ExitCode> {
    let settings_path = config_dir().join("settings.json");
    let settings = MlxSettings::load(&settings_path)?;
    let model = model.unwrap_or_else(|| settings.selected_model.clone());
    let progress =
        Arc::new(SetupProgress { pull: (!json).then(|| PullProgress::new(false)), phases: ProcessProgress::new(json) });
    let manager = crate::manager::manager_with(progress.clone(), settings.clone())?;
    let model = manager.add_custom_model(&model)?.id;
    let say = |line: String| {
        if !json {
            eprintln!("{line}");
        }
    };

    let environment_sync = sync_environment(&manager, &say).await?;
    say(format!("[2/3] model {model}"));
    let pulled = pull(&manager, &progress, &model).await?;
    say(if pulled.bytes > 0 {
        format!("      downloaded {} in {}", local_mlx::error::human_bytes(pulled.bytes), seconds(pulled.took))
    } else {
        "      already downloaded".to_string()
    });
    say("[3/3] check: loading the model and cleaning up a sample sentence".to_string());
    let output = check(&manager, &model).await?;

    if settings.selected_model != model {
        MlxSettings { selected_model: model.clone(), ..settings }.save(&settings_path)?;
    }
    let service_note = crate::service::stale_service_note().await;
    let t = &output.timings;
    let report = SetupReport {
        model_id: model.clone(),
        environment_sync_s: environment_sync.map(|d| d.as_secs_f64()),
        downloaded_bytes: pulled.bytes,
        download_s: pulled.took.as_secs_f64(),
        start_s: t.start_ms as f64 / 1000.0,
        load_s: t.load_ms as f64 / 1000.0,
        generate_s: t.generate_ms as f64 / 1000.0,
        sample: SAMPLE.to_string(),
        cleaned: output.text.clone(),
        warnings: output.clean_up.warnings.clone(),
        snapshot: pulled.snapshot.display().to_string(),
        next_steps: next_steps(service_note.is_some()),
        service_note,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report, &output);
    }
    Ok(ExitCode::SUCCESS)
}

/// Phase 1: sync the sidecar's Python environment if it needs it; how long that took.
async fn sync_environment(manager: &MlxModelManager, say: &impl Fn(String)) -> Result<Option<Duration>> {
    let sidecar = manager.sidecar_backend().describe();
    say(format!("[1/3] Python environment of the sidecar at {sidecar}"));
    say("      syncing if needed (the first time downloads about 250 MB of Python packages)...".to_string());
    let environment_sync = manager.sync_environment().await?;
    say(match environment_sync {
        Some(took) => format!("      synced in {}", seconds(took)),
        None => "      already synced".to_string(),
    });
    Ok(environment_sync)
}

/// What phase 2 fetched.
struct Pulled {
    /// 0 when the model was already there.
    bytes: u64,
    snapshot: PathBuf,
    took: Duration,
}

/// Phase 2: download the model unless it is there.
async fn pull(manager: &MlxModelManager, progress: &SetupProgress, model: &str) -> Result<Pulled> {
    let started = Instant::now();
    let outcome = manager.download(model).await;
    if let Some(pull) = &progress.pull {
        pull.finish();
    }
    let (bytes, snapshot) = match outcome? {
        DownloadOutcome::Downloaded { snapshot, fetched_bytes } => (fetched_bytes, snapshot),
        DownloadOutcome::AlreadyDownloaded { snapshot } => (0, snapshot),
        DownloadOutcome::Cancelled { .. } => anyhow::bail!("the download of {model} was cancelled"),
    };
    Ok(Pulled { bytes, snapshot, took: started.elapsed() })
}

/// Phase 3: load the model and clean up [`SAMPLE`], then stop the sidecar.
async fn check(manager: &MlxModelManager, model: &str) -> Result<ProcessOutput> {
    // A check that the model works, not a dictation: it waits for the whole answer
    // however long a first load takes.
    let options = ProcessOptions {
        model: Some(model.to_string()),
        answer_within: Some(local_mlx::settings::AnswerWithin::NEVER),
        ..Default::default()
    };
    let checked = manager.process_text_with(SAMPLE, options).await;
    manager.shutdown().await;
    checked.context("the model was downloaded but could not clean up the sample sentence")
}

/// What to run next: a restart when the login service runs another version, else
/// the service and Handy's connection.
fn next_steps(service_is_stale: bool) -> Vec<String> {
    if service_is_stale {
        return vec!["local-mlx service restart   # the service runs the version just set up".to_string()];
    }
    vec![
        "local-mlx service install   # serve it at login on http://localhost:8397/v1".to_string(),
        "local-mlx handy connect     # point Handy's post-processing at it".to_string(),
    ]
}

/// The human summary on stdout.
fn print_summary(report: &SetupReport, output: &ProcessOutput) {
    let t = &output.timings;
    println!("  in:  {SAMPLE}");
    println!("  out: {}", output.text);
    for warning in &output.clean_up.warnings {
        println!("  note: {warning}");
    }
    println!(
        "ready: {} (sidecar start {}, model load {}, sample {})",
        report.model_id,
        seconds(Duration::from_millis(t.start_ms)),
        seconds(Duration::from_millis(t.load_ms)),
        seconds(Duration::from_millis(t.generate_ms)),
    );
    if let Some(note) = &report.service_note {
        println!("note: {note}");
    }
    println!("next:");
    for step in &report.next_steps {
        println!("  {step}");
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
