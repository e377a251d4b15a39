//! The pull progress bar (indicatif), or one JSON line per event with `--json`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use local_mlx::{EventSink, EventType, MlxModelStateEvent};

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
