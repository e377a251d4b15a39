//! [`Tail`]: the last [`TAIL_LINES`] lines of a process's stderr, which every error about
//! the process quotes, and whether stderr has closed (so an error waits for the last words).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// Lines of stderr kept for error messages.
pub(super) const TAIL_LINES: usize = 50;
/// Longer lines are cut in the tail (the log file keeps them whole).
const TAIL_LINE_CHARS: usize = 1000;

/// The last lines of some output, as one string for an error message.
pub(crate) fn tail_of<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> String {
    let mut last: Vec<&str> = lines.rev().take(TAIL_LINES).collect();
    last.reverse();
    if last.iter().all(|l| l.trim().is_empty()) {
        return "(no output)".into();
    }
    last.join("\n")
}

/// The last lines of a process's stderr, and whether stderr has closed.
#[derive(Debug)]
pub(crate) struct Tail {
    lines: Mutex<VecDeque<String>>,
    closed: watch::Sender<bool>,
}

impl Tail {
    pub(super) fn new() -> Self {
        Tail { lines: Mutex::new(VecDeque::with_capacity(TAIL_LINES)), closed: watch::channel(false).0 }
    }

    pub(super) fn push(&self, line: &str) {
        let mut cut: String = line.chars().take(TAIL_LINE_CHARS).collect();
        if cut.len() < line.len() {
            cut.push_str(" [...]");
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(cut);
    }

    /// stderr has closed: [`Self::settled`] waits for this.
    pub(super) fn mark_closed(&self) {
        self.closed.send_replace(true);
    }

    pub(crate) fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        tail_of(lines.iter().map(String::as_str))
    }

    /// Wait (briefly) until stderr has closed, so the tail holds the last words.
    pub(crate) async fn settled(&self, within: Duration) -> String {
        let mut closed = self.closed.subscribe();
        let _ = tokio::time::timeout(within, closed.wait_for(|c| *c)).await;
        self.text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_and_cuts_long_ones() {
        let tail = Tail::new();
        for i in 0..(TAIL_LINES + 10) {
            tail.push(&format!("line {i}"));
        }
        tail.push(&"x".repeat(5000));
        let text = tail.text();
        assert!(!text.contains("line 10\n"));
        assert!(text.starts_with("line 11\n"), "{text}");
        assert!(text.ends_with(" [...]"));
        assert_eq!(text.lines().count(), TAIL_LINES);
    }
}
