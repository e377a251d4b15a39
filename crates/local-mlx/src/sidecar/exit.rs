//! [`ExitInfo`]: how a process ended, told the way a user reads it (uv's 128 + N exit
//! codes named as the signal they stand for).

use std::process::ExitStatus;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    /// The signal that ended it (Unix).
    pub signal: Option<i32>,
}

impl From<ExitStatus> for ExitInfo {
    fn from(status: ExitStatus) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        ExitInfo { code: status.code(), signal }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // uv reports a child killed by signal N as exit code 128 + N, like a shell.
        let signal = match (self.code, self.signal) {
            (Some(code), _) if (129..160).contains(&code) => {
                write!(f, "exit code {code}, the Python server was ")?;
                code - 128
            }
            (Some(code), _) => return write!(f, "exit code {code}"),
            (None, Some(signal)) => signal,
            (None, None) => return f.write_str("ended"),
        };
        match signal {
            9 => f.write_str("killed by signal 9, SIGKILL: out of memory, or killed by another program"),
            15 => f.write_str("stopped by signal 15, SIGTERM"),
            _ => write!(f, "killed by signal {signal}"),
        }
    }
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    ExitInfo::from(status).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_reported_as_an_exit_code_is_named() {
        let info = |code, signal| ExitInfo { code, signal }.to_string();
        assert_eq!(info(Some(3), None), "exit code 3");
        assert!(info(Some(137), None).starts_with("exit code 137, the Python server was killed by signal 9, SIGKILL"));
        assert!(info(None, Some(9)).starts_with("killed by signal 9"));
        assert_eq!(info(None, Some(15)), "stopped by signal 15, SIGTERM");
    }
}
