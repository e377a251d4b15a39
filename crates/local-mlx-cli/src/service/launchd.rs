//! macOS: the LaunchAgent `~/Library/LaunchAgents/dev.localmlx.serve.plist`, loaded into
//! the login session with `launchctl bootstrap gui/<uid>`.
//!
//! The plist XML is written here by hand, with XML escaping, rather than with a plist
//! crate: it is a handful of fixed keys with string values, and a dependency would add
//! more code than it saves. Python's `plistlib` checks the result in the tests.
//!
//! The API key: launchd has no counterpart to systemd's `EnvironmentFile`, and a wrapper
//! script that reads a key file would have to parse and quote it in shell, and would
//! make the program launchd runs a script instead of `local-mlx`. So the key goes into
//! the plist's `EnvironmentVariables`, and the plist is written 0600 (always, so a later
//! key never lands in a file that was readable): launchd and `launchctl` read it as the
//! user, so nothing else needs to.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::spec::Spec;
use super::tool::{run_tool, shell_quote, unexpected, ManagerError, ToolRun};

/// The job's label (reverse-DNS like the desktop app's `dev.localmlx.app`).
pub const LABEL: &str = "dev.localmlx.serve";

pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents").join(format!("{LABEL}.plist"))
}

/// The LaunchAgent: started at login, restarted when it fails (not when stopped
/// cleanly), its stdout and stderr in `log`.
pub fn plist(spec: &Spec, log: &Path) -> String {
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
        "<!-- Written by `local-mlx service install`; `local-mlx service uninstall` removes it. -->\n",
        "<plist version=\"1.0\">\n<dict>\n",
    ));
    let string = |out: &mut String, indent: &str, text: &str| {
        out.push_str(&format!("{indent}<string>{}</string>\n", escape(text)))
    };
    let key =
        |out: &mut String, indent: &str, text: &str| out.push_str(&format!("{indent}<key>{}</key>\n", escape(text)));
    key(&mut out, "\t", "Label");
    string(&mut out, "\t", LABEL);
    key(&mut out, "\t", "ProgramArguments");
    out.push_str("\t<array>\n");
    string(&mut out, "\t\t", &spec.program.to_string_lossy());
    for arg in &spec.args {
        string(&mut out, "\t\t", arg);
    }
    out.push_str("\t</array>\n");
    key(&mut out, "\t", "EnvironmentVariables");
    out.push_str("\t<dict>\n");
    for (name, value) in spec.env.iter().chain(&spec.secret_env) {
        key(&mut out, "\t\t", name);
        string(&mut out, "\t\t", value);
    }
    out.push_str("\t</dict>\n");
    // launchd throttles a background agent's CPU and I/O; a dictation waits on this one.
    key(&mut out, "\t", "ProcessType");
    string(&mut out, "\t", "Interactive");
    key(&mut out, "\t", "RunAtLoad");
    out.push_str("\t<true/>\n");
    key(&mut out, "\t", "KeepAlive");
    out.push_str("\t<dict>\n");
    key(&mut out, "\t\t", "SuccessfulExit");
    out.push_str("\t\t<false/>\n\t</dict>\n");
    for name in ["StandardOutPath", "StandardErrorPath"] {
        key(&mut out, "\t", name);
        string(&mut out, "\t", &log.to_string_lossy());
    }
    out.push_str("</dict>\n</plist>\n");
    out
}

/// The strings of the `ProgramArguments` array, unescaped (what [`plist`] wrote).
pub fn program_arguments(plist: &str) -> Option<Vec<String>> {
    let after = plist.split_once("<key>ProgramArguments</key>")?.1.trim_start();
    let array = after.strip_prefix("<array>")?;
    let array = &array[..array.find("</array>")?];
    let strings = array.split("<string>").skip(1);
    strings.map(|s| s.split_once("</string>").map(|(value, _)| unescape(value))).collect()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    const ENTITIES: [(&str, char); 5] =
        [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"'), ("&apos;", '\'')];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match ENTITIES.iter().find(|(entity, _)| rest.starts_with(entity)) {
            Some((entity, plain)) => {
                out.push(*plain);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `gui/<uid>`: the login session's domain.
fn domain() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("gui/{}", unsafe { libc::getuid() })
}

/// `gui/<uid>/<label>`: the job.
fn target() -> String {
    format!("{}/{LABEL}", domain())
}

fn launchctl(args: &[&str]) -> ToolRun {
    run_tool("launchctl", args)
}

/// What `launchctl` exits with for a label that is not loaded (ESRCH on older macOS,
/// "Could not find specified service" on newer).
const NOT_LOADED: [i32; 2] = [3, 113];
/// `bootout` while an earlier `bootout` of the label is still under way (EINPROGRESS).
const STOPPING: i32 = 36;
/// `bootstrap` while launchd still holds the label of a job booted out a moment ago:
/// EIO, or EALREADY while the old process is still exiting.
const STILL_HELD: [i32; 2] = [5, 37];
/// How long launchd gets to let go of a booted-out label (it takes seconds, longer
/// while `serve` finishes a request and stops its sidecar).
const LET_GO_WITHIN: Duration = Duration::from_secs(20);

/// Polls of `launchctl` while launchd catches up: short at first, then every second,
/// until [`LET_GO_WITHIN`] has passed.
struct Patience {
    until: Instant,
    next: Duration,
}

impl Patience {
    fn new() -> Patience {
        Patience { until: Instant::now() + LET_GO_WITHIN, next: Duration::from_millis(50) }
    }

    /// Wait before the next try; `false` when the time is up.
    fn wait(&mut self) -> bool {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(self.next.min(left));
        self.next = (self.next * 2).min(Duration::from_secs(1));
        true
    }
}

/// Unload an earlier copy of the job (waiting until launchd has let go of it), enable
/// the label (one disabled in Login Items otherwise refuses to load), then load and
/// start this plist, retrying while launchd still holds the old job.
pub fn start(plist: &Path) -> Result<(), ManagerError> {
    stop()?;
    match launchctl(&["enable", &target()]) {
        ToolRun::Done(_) => {}
        other => return Err(unexpected(other, "launchctl")),
    }
    let plist = plist.to_string_lossy();
    let mut patience = Patience::new();
    loop {
        match launchctl(&["bootstrap", &domain(), &plist]) {
            ToolRun::Done(_) => return Ok(()),
            ToolRun::Failed { code: Some(code), message, .. } if STILL_HELD.contains(&code) => {
                if !patience.wait() {
                    return Err(ManagerError::Failed(format!(
                        "{message}, still after {} s of retrying (launchd kept the old job loaded): `launchctl print {}` shows what launchd has",
                        LET_GO_WITHIN.as_secs(),
                        target()
                    )));
                }
            }
            other => return Err(unexpected(other, "launchctl")),
        }
    }
}

pub fn start_command(plist: &Path) -> String {
    format!(
        "launchctl enable {} && launchctl bootstrap {} {}",
        target(),
        domain(),
        shell_quote(&plist.to_string_lossy())
    )
}

/// Stop and unload the job, and wait until launchd has let go of its label: `bootout`
/// returns while the job is still loaded. A job that is not loaded is already stopped.
pub fn stop() -> Result<(), ManagerError> {
    match launchctl(&["bootout", &target()]) {
        ToolRun::Done(_) => {}
        ToolRun::Failed { code: Some(STOPPING), .. } => {}
        ToolRun::Failed { code: Some(code), .. } if NOT_LOADED.contains(&code) => return Ok(()),
        other => return Err(unexpected(other, "launchctl")),
    }
    let mut patience = Patience::new();
    loop {
        match launchctl(&["print", &target()]) {
            ToolRun::Failed { code: Some(code), .. } if NOT_LOADED.contains(&code) => return Ok(()),
            ToolRun::Done(_) => {
                if !patience.wait() {
                    return Err(ManagerError::Failed(format!(
                        "launchd still has {LABEL} loaded {} s after `launchctl bootout`",
                        LET_GO_WITHIN.as_secs()
                    )));
                }
            }
            other => return Err(unexpected(other, "launchctl")),
        }
    }
}

/// Restart the running job (`kickstart -k`); a job that is not loaded is loaded.
pub fn restart(plist: &Path) -> Result<(), ManagerError> {
    match launchctl(&["kickstart", "-k", &target()]) {
        ToolRun::Done(_) => Ok(()),
        ToolRun::Failed { code: Some(code), .. } if NOT_LOADED.contains(&code) => start(plist),
        other => Err(unexpected(other, "launchctl")),
    }
}

pub fn running() -> Result<bool, ManagerError> {
    match launchctl(&["print", &target()]) {
        ToolRun::Done(out) => Ok(out.lines().any(|line| line.trim() == "state = running")),
        ToolRun::Failed { code: Some(code), .. } if NOT_LOADED.contains(&code) => Ok(false),
        other => Err(unexpected(other, "launchctl")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_through_program_arguments() {
        let tricky = "/Users/a&b/<x> \"q\" 's' &amp; é/local-mlx";
        let spec = Spec {
            program: PathBuf::from(tricky),
            args: vec!["serve".into(), "--host".into(), "a<b>&c".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
            secret_env: vec![],
        };
        let text = plist(&spec, Path::new("/tmp/log"));
        assert!(!text.contains("<x>") && text.contains("&lt;x&gt;"), "{text}");
        assert_eq!(program_arguments(&text).unwrap(), [tricky, "serve", "--host", "a<b>&c"]);
    }

    #[test]
    fn a_plist_without_program_arguments_has_none() {
        assert_eq!(program_arguments("<plist><dict></dict></plist>"), None);
    }
}
