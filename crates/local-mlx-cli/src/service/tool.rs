//! Running the service manager's tool (`launchctl`, `systemctl`, found on `PATH`, so a
//! test can put a stand-in first) and what its answers mean to `service`.

/// The outcome of one service-manager command.
pub enum ToolRun {
    /// The program is not installed here.
    Missing,
    /// It ran and failed: its exit code, its stdout, and a message with what it said.
    Failed { code: Option<i32>, stdout: String, message: String },
    /// It succeeded: its stdout.
    Done(String),
}

/// Why the service manager did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ManagerError {
    /// No service manager to talk to here (a container, or no launchd): the files are
    /// right, and starting them is for where one runs.
    Absent(String),
    /// The service manager is there and it failed: the service is not running.
    Failed(String),
}

impl ManagerError {
    pub fn reason(&self) -> &str {
        match self {
            ManagerError::Absent(reason) | ManagerError::Failed(reason) => reason,
        }
    }
}

/// A run that was neither done nor anticipated by the caller, as an error.
pub fn unexpected(run: ToolRun, program: &str) -> ManagerError {
    match run {
        ToolRun::Missing => ManagerError::Absent(format!("{program} is not installed here")),
        ToolRun::Failed { message, .. } => ManagerError::Failed(message),
        ToolRun::Done(_) => ManagerError::Failed(format!("{program} succeeded where it was expected to fail")),
    }
}

pub fn run_tool(program: &str, args: &[&str]) -> ToolRun {
    match std::process::Command::new(program).args(args).stdin(std::process::Stdio::null()).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ToolRun::Missing,
        Err(e) => ToolRun::Failed { code: None, stdout: String::new(), message: format!("cannot run {program}: {e}") },
        Ok(output) if output.status.success() => ToolRun::Done(String::from_utf8_lossy(&output.stdout).into()),
        Ok(output) => {
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
            let message = format!("`{program} {}` failed ({}): {said}", args.join(" "), output.status);
            ToolRun::Failed { code: output.status.code(), stdout, message }
        }
    }
}

/// `text` quoted for a POSIX shell when it needs it (for commands printed to copy).
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_leaves_plain_paths_alone() {
        assert_eq!(shell_quote("/a/b.plist"), "/a/b.plist");
        assert_eq!(shell_quote("/Users/a b/it's"), r"'/Users/a b/it'\''s'");
    }
}
