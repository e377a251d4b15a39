//! The sidecar's log file ([`LogSink`]) and the copying of a child's pipe into it and
//! into its [`Tail`] ([`copy_lines`]). The file is capped at [`LOG_CAP_BYTES`], then
//! rotated to `<name>.1` (one old file kept), with runs of identical lines written once,
//! so a process that floods its stderr cannot fill the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::tail::Tail;

/// The log file's size before it is rotated; with the one old file, the log never
/// takes more than twice this.
pub(super) const LOG_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// Longer lines are cut in the log file too (a line is not a place for megabytes).
const LOG_LINE_BYTES: usize = 64 * 1024;

/// The sidecar's log file: size-capped and rotated, identical lines collapsed.
///
/// Hand-written because it is small and specific: log-rotation crates rotate by time or
/// manage whole `tracing` subscribers, while this copies another process's lines and
/// must also collapse repeats (a flood is one line over and over).
#[derive(Debug)]
pub(crate) struct LogSink {
    path: PathBuf,
    file: Option<std::fs::File>,
    written: u64,
    cap: u64,
    last: Option<String>,
    repeats: u64,
}

impl LogSink {
    /// Append to `file`, which is open at `path` (rotation renames it and opens a new one).
    pub(crate) fn new(file: std::fs::File, path: &Path) -> Self {
        Self::with_cap(file, path, LOG_CAP_BYTES)
    }

    fn with_cap(file: std::fs::File, path: &Path, cap: u64) -> Self {
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        LogSink { path: path.to_path_buf(), file: Some(file), written, cap, last: None, repeats: 0 }
    }

    /// Write one line; a repeat of the previous line is only counted.
    fn line(&mut self, line: &str) {
        if self.last.as_deref() == Some(line) {
            self.repeats += 1;
            return;
        }
        self.flush_repeats();
        self.write(line);
        self.last = Some(line.to_string());
    }

    /// Say how often the last line was repeated, if it was.
    fn flush_repeats(&mut self) {
        if self.repeats > 0 {
            let note = format!("(the line above was repeated {} more times)", self.repeats);
            self.repeats = 0;
            self.write(&note);
        }
    }

    fn write(&mut self, line: &str) {
        let cut;
        let line = if line.len() > LOG_LINE_BYTES {
            let end = (0..=LOG_LINE_BYTES).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            cut = format!("{} [... {} more bytes]", &line[..end], line.len() - end);
            &cut
        } else {
            line
        };
        let len = line.len() as u64 + 1;
        if self.written > 0 && self.written + len > self.cap {
            self.rotate();
        }
        if let Some(file) = &mut self.file {
            if writeln!(file, "{line}").is_ok() {
                self.written += len;
            }
        }
    }

    /// `<name>` becomes `<name>.1` (replacing the older one) and a new `<name>` starts.
    fn rotate(&mut self) {
        self.file = None;
        let mut previous = self.path.as_os_str().to_owned();
        previous.push(".1");
        let _ = std::fs::rename(&self.path, previous);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600); // it can quote prompts
        match options.open(&self.path) {
            Ok(file) => self.file = Some(file),
            Err(e) => tracing::warn!(path = %self.path.display(), "cannot rotate the sidecar log ({e}); it stops here"),
        }
        self.written = 0;
    }
}

/// Copy a pipe line by line into the log file and the tail; mark the tail closed at EOF.
pub(super) async fn copy_lines(
    pipe: impl AsyncRead + Unpin,
    tail: Arc<Tail>,
    log: Option<Arc<Mutex<LogSink>>>,
    prefix: &'static str,
    marks_close: bool,
) {
    let mut lines = BufReader::new(pipe).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let line = String::from_utf8_lossy(&line);
        let line = format!("{prefix}{}", line.trim_end_matches('\r'));
        if let Some(log) = &log {
            log.lock().unwrap_or_else(|e| e.into_inner()).line(&line);
        }
        tail.push(&line);
    }
    if let Some(log) = &log {
        log.lock().unwrap_or_else(|e| e.into_inner()).flush_repeats();
    }
    if marks_close {
        tail.mark_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &Path, cap: u64) -> (LogSink, PathBuf) {
        let path = dir.join("sidecar.log");
        (LogSink::with_cap(std::fs::File::create(&path).unwrap(), &path, cap), path)
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn a_flood_on_stderr_is_capped_and_rotated_keeping_one_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cap = 64 * 1024;
        let (log, path) = sink(tmp.path(), cap);
        // 50 MB of distinct lines, as a traceback flood with timestamps would be.
        let flood: String =
            (0..500_000).map(|i| format!("{i:08} OSError: [Errno 24] Too many open files ...........\n")).collect();
        let tail = Arc::new(Tail::new());
        copy_lines(flood.as_bytes(), tail.clone(), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert!(
            size(&path) <= cap && size(&path.with_extension("log.1")) <= cap,
            "{} {}",
            size(&path),
            size(&path.with_extension("log.1"))
        );
        let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(
            newest.ends_with("00499999 OSError: [Errno 24] Too many open files ...........\n"),
            "the newest lines are kept"
        );
        assert!(tail.text().ends_with("00499999 OSError: [Errno 24] Too many open files ..........."));
    }

    #[tokio::test]
    async fn repeated_identical_lines_are_written_once_with_a_count() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        let input = format!("start\n{}end\n", "socket.accept() out of system resource\n".repeat(100_000));
        copy_lines(input.as_bytes(), Arc::new(Tail::new()), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "start\nsocket.accept() out of system resource\n(the line above was repeated 99999 more times)\nend\n"
        );
        let trailing = "x\ny\ny\ny\n";
        let (log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        copy_lines(trailing.as_bytes(), Arc::new(Tail::new()), Some(Arc::new(Mutex::new(log))), "", true).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "x\ny\n(the line above was repeated 2 more times)\n",
            "counted at the end too"
        );
    }

    #[test]
    fn a_huge_line_is_cut_in_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, path) = sink(tmp.path(), LOG_CAP_BYTES);
        log.line(&"é".repeat(1_000_000));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < LOG_LINE_BYTES + 100 && text.ends_with(" more bytes]\n"), "{}", text.len());
    }

    #[cfg(unix)]
    #[test]
    fn a_rotated_log_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, path) = sink(tmp.path(), 10);
        log.line("first line, longer than the cap");
        log.line("second");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
