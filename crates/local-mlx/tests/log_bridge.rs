//! An application that logs through the `log` crate and installs no `tracing` subscriber
//! (Handy does, with tauri-plugin-log) must still see the core's messages.

use std::path::PathBuf;
use std::sync::Mutex;

use local_mlx::internals::sidecar::UvSearch;

/// A `log` logger that keeps every record it is given.
struct Capture(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn core_warnings_reach_a_log_logger_when_no_tracing_subscriber_is_installed() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    // A uv path from settings that is not an executable is warned about, then searched past.
    let search = UvSearch { explicit: Some(PathBuf::from("/nonexistent/uv")), ..UvSearch::default() };
    assert!(search.find().is_err(), "an empty world has no uv");

    let records = CAPTURE.0.lock().unwrap();
    assert!(
        records.iter().any(|(level, message)| *level == log::Level::Warn
            && message.contains("the uv path in settings is not an executable file")),
        "the warning did not reach the log logger: {records:?}"
    );
}
