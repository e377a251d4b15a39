//! The pull progress bar (indicatif), or one JSON line per event with `--json`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use local_mlx::{EventSink, EventType, LoadPhase, MlxModelStateEvent};

/// An [`EventSink`] that draws download events.
pub struct PullProgress {
    bar: Option<ProgressBar>,
}

impl PullProgress {
    pub fn new(json: bool) -> Self {
        if json {
            return PullProgress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        PullProgress { bar: Some(bar) }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for PullProgress {
    fn emit(&self, event: MlxModelStateEvent) {
        let Some(bar) = &self.bar else {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
            return;
        };
        match event.event_type {
            EventType::DownloadStarted => bar.set_message(format!("pulling {}", event.model_id)),
            EventType::DownloadProgress => {
                if let Some(total) = event.total_bytes {
                    bar.set_length(total);
                }
                if let Some(done) = event.downloaded_bytes {
                    bar.set_position(done);
                }
            }
            _ => {}
        }
    }
}

/// Says on stderr what `process` is waiting for (the first run syncs a Python
/// environment for minutes: never a silent hang).
pub struct ProcessProgress {
    quiet: bool,
}

impl ProcessProgress {
    pub fn new(quiet: bool) -> Self {
        ProcessProgress { quiet }
    }
}

impl EventSink for ProcessProgress {
    fn emit(&self, event: MlxModelStateEvent) {
        if self.quiet {
            return;
        }
        let line = match (event.event_type, event.phase) {
            (EventType::LoadingStarted, Some(LoadPhase::SyncingEnvironment)) => {
                "setting up the Python environment (first run only; this can take a few minutes)...".to_string()
            }
            (EventType::LoadingStarted, Some(LoadPhase::StartingServer)) => "starting the sidecar...".to_string(),
            (EventType::LoadingStarted, Some(LoadPhase::LoadingModel)) => format!("loading {}...", event.model_id),
            (EventType::LoadingCompleted, _) => "generating...".to_string(),
            _ => return,
        };
        eprintln!("{line}");
    }
}
