//! `local-mlx service install | uninstall | restart | status`: `local-mlx serve` started
//! at login by the user's service manager, a LaunchAgent on macOS ([`launchd`]) and a
//! systemd user unit on Linux ([`systemd`]).
//!
//! This module owns the flow both share: the options (checked here as `serve` would
//! check them, so a service never starts only to fail), the files ([`files`]: written
//! all-or-nothing, and only over files `install` wrote), starting, and `status`'s
//! questions; [`spec`] owns what the service runs with. `LOCAL_MLX_SERVICE_MANAGER`
//! (`launchd` or `systemd`) picks the manager on any machine and its tool is found on
//! `PATH`, so the tests drive the macOS path on Linux with a stand-in `launchctl`. Where
//! no service manager runs (a container), `install` writes the files, says how to start
//! them by hand, and succeeds; where one runs and the start fails, it exits non-zero.

mod files;
mod launchd;
pub mod log;
mod spec;
mod systemd;
mod tool;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use local_mlx::settings::{config_dir, create_private_dir};
use local_mlx_server::ApiKey;

use crate::serve_options::ServeOptions;
use files::{ours, remove_ours, write_all, NewFile};
use serde_json::json;
use spec::Spec;
use tool::ManagerError;

/// `local-mlx service …`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Install `local-mlx serve` with these options as a login service and start it.
    Install(InstallArgs),
    /// Stop the service and remove the files `install` wrote.
    Uninstall,
    /// Restart the service (after `uv tool upgrade local-mlx`: the new version runs).
    Restart,
    /// Whether the service is installed and running, whether its URL answers, and
    /// whether it runs the version installed.
    Status,
}

/// `serve`'s options, for the service to run with.
#[derive(Debug, Args)]
struct InstallArgs {
    #[command(flatten)]
    serve: ServeOptions,
    /// Replace an installed service (it restarts with the new options).
    #[arg(long)]
    force: bool,
}

/// Picks the service manager instead of this machine's (`launchd` or `systemd`): the
/// tests drive the macOS path on Linux with it.
const MANAGER_ENV: &str = "LOCAL_MLX_SERVICE_MANAGER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Launchd,
    Systemd,
}

impl Manager {
    /// [`MANAGER_ENV`]'s choice, else this machine's.
    fn chosen() -> Result<Manager> {
        match std::env::var(MANAGER_ENV).unwrap_or_default().as_str() {
            "" if cfg!(target_os = "macos") => Ok(Manager::Launchd),
            "" => Ok(Manager::Systemd),
            "launchd" => Ok(Manager::Launchd),
            "systemd" => Ok(Manager::Systemd),
            other => bail!("{MANAGER_ENV}={other:?} is neither `launchd` nor `systemd`: unset it, or name one"),
        }
    }
}

/// Where a manager's files live, and what `install` writes there.
struct Layout {
    manager: Manager,
    /// The LaunchAgent plist or the systemd unit.
    service_file: PathBuf,
    /// The 0600 file holding the secrets beside the unit (systemd), if any.
    env_file: Option<PathBuf>,
    /// Where the service's output goes (launchd writes it; journald with systemd).
    log: Option<PathBuf>,
}

impl Layout {
    fn new(manager: Manager) -> Result<Layout> {
        let home = local_mlx::fs::home_dir()
            .context("HOME is not set: the service files go into your home folder")?;
        Ok(match manager {
            Manager::Launchd => Layout {
                manager,
                service_file: launchd::plist_path(&home),
                env_file: None,
                log: Some(home.join("Library/Logs/local-mlx/serve.log")),
            },
            Manager::Systemd => Layout {
                manager,
                service_file: systemd::unit_path(),
                env_file: Some(config_dir().join("serve.env")),
                log: None,
            },
        })
    }

    /// The files for `spec`, in the order they are written (a secret before the file
    /// that names it).
    fn files(&self, spec: &Spec) -> Result<Vec<NewFile>> {
        Ok(match self.manager {
            Manager::Launchd => {
                let log = self.log.as_deref().expect("a launchd layout has a log");
                vec![NewFile { path: self.service_file.clone(), contents: launchd::plist(spec, log), mode: 0o600 }]
            }
            Manager::Systemd => {
                systemd::check_program(&spec.program).map_err(anyhow::Error::msg)?;
                let env_file = self.env_file.as_deref().filter(|_| !spec.secret_env.is_empty());
                let mut files = Vec::new();
                if let Some(path) = env_file {
                    files.push(NewFile {
                        path: path.to_path_buf(),
                        contents: systemd::env_file(&spec.secret_env),
                        mode: 0o600,
                    });
                }
                files.push(NewFile {
                    path: self.service_file.clone(),
                    contents: systemd::unit(spec, env_file),
                    mode: 0o644,
                });
                files
            }
        })
    }

    /// What `spec` needs from this layout: launchd's job names its log (it rotates it).
    fn complete(&self, spec: &mut Spec) -> Result<()> {
        if let Some(log) = &self.log {
            let log = log.to_str().context("the log's path is not UTF-8 text")?;
            spec.env.push((log::LOG_ENV.to_string(), log.to_string()));
        }
        Ok(())
    }

    /// Load (or reload) and start the service.
    fn start(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::start(&self.service_file),
            Manager::Systemd => systemd::start(),
        }
    }

    fn restart(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::restart(&self.service_file),
            Manager::Systemd => systemd::restart(),
        }
    }

    /// Stop and unload the service.
    fn stop(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::stop(),
            Manager::Systemd => systemd::stop(),
        }
    }

    /// After the files are removed: the service manager forgets them.
    fn forget(&self) {
        if self.manager == Manager::Systemd {
            systemd::forget();
        }
    }

    /// What to type where the service manager runs.
    fn start_by_hand(&self) -> String {
        match self.manager {
            Manager::Launchd => launchd::start_command(&self.service_file),
            Manager::Systemd => systemd::start_command(),
        }
    }

    /// Whether it runs.
    fn running(&self) -> Result<bool, ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::running(),
            Manager::Systemd => systemd::running(),
        }
    }

    /// The arguments after the program in an installed service file, if it has them.
    fn installed_args(&self, text: &str) -> Option<Vec<String>> {
        let mut words = match self.manager {
            Manager::Launchd => launchd::program_arguments(text)?,
            Manager::Systemd => systemd::exec_start(text)?,
        };
        (!words.is_empty()).then(|| words.split_off(1))
    }

    fn log_hint(&self) -> String {
        match &self.log {
            Some(log) => log.display().to_string(),
            None => format!("journalctl --user -u {}", systemd::UNIT),
        }
    }
}

pub async fn run(args: ServiceArgs, json: bool) -> Result<ExitCode> {
    let layout = Layout::new(Manager::chosen()?)?;
    match args.action {
        Action::Install(options) => install(&layout, options, json),
        Action::Uninstall => uninstall(&layout, json),
        Action::Restart => restart(&layout, json),
        Action::Status => status(&layout, json).await,
    }
}

fn install(layout: &Layout, options: InstallArgs, json: bool) -> Result<ExitCode> {
    let api_key = options.serve.api_key()?;
    check_options(&options.serve, api_key.clone())?;
    if ours(&layout.service_file)? && !options.force {
        bail!(
            "the service is already installed ({}): use `local-mlx service uninstall` first, or \
             `local-mlx service install --force` to replace it",
            layout.service_file.display()
        );
    }
    let (mut spec, uv_warning) = spec::spec(&options.serve, api_key)?;
    layout.complete(&mut spec)?;
    check_writable(layout, &spec)?;
    // A secrets file is written or removed below: only if it is ours.
    if let Some(env_file) = &layout.env_file {
        ours(env_file)?;
    }
    if let Some(warning) = &uv_warning {
        eprintln!("warning: {warning}; the service starts, but its first request fails until uv is installed");
    }
    if let Some(log) = &layout.log {
        // launchd opens the log but does not create its folder.
        let dir = log.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).with_context(|| format!("cannot create the folder {} for the log", dir.display()))?;
    }
    let files = layout.files(&spec)?;
    write_all(&files)?;
    // Secrets from an earlier install that this one does not use go with it.
    let mut removed = Vec::new();
    if let Some(env_file) = layout.env_file.as_ref().filter(|f| files.iter().all(|n| &n.path != *f)) {
        if remove_ours(env_file)? {
            removed.push(env_file.clone());
        }
    }
    let url = base_url(&options.serve.host, options.serve.port);
    let started = layout.start();
    let failed = matches!(started, Err(ManagerError::Failed(_)));
    let written: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    if json {
        println!(
            "{}",
            json!({
                "installed": true,
                "files": written,
                "removed": removed,
                "started": started.is_ok(),
                "not_started_because": started.as_ref().err().map(ManagerError::reason),
                "start_by_hand": started.is_err().then(|| layout.start_by_hand()),
                "url": url,
                "log": layout.log_hint(),
            })
        );
    } else {
        for file in &files {
            let note = if file.mode == 0o600 { " (readable by you alone)" } else { "" };
            println!("wrote {}{note}", file.path.display());
        }
        for path in &removed {
            println!("removed {} (no secret to keep this time)", path.display());
        }
        match &started {
            Ok(()) => println!("started: it answers on {url} (`local-mlx service status` checks it)"),
            Err(ManagerError::Absent(reason)) => {
                println!("not started: {reason}");
                println!("start it by hand where the service manager runs: {}", layout.start_by_hand());
            }
            Err(ManagerError::Failed(reason)) => {
                eprintln!("error: the service is installed but did not start: {reason}");
                eprintln!("its log: {}; `local-mlx service restart` tries again", layout.log_hint());
            }
        }
        println!("log: {}", layout.log_hint());
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Refuse what `serve` would refuse at every start, and a port clients could not know.
fn check_options(options: &ServeOptions, api_key: Option<ApiKey>) -> Result<()> {
    if options.port == 0 {
        bail!("--port 0 picks a different port at every start, which no client could know: give a fixed port");
    }
    options.keep_alive()?;
    options.server_config(api_key)?;
    Ok(())
}

/// Every text that reaches a service file, checked before anything is written.
fn check_writable(layout: &Layout, spec: &Spec) -> Result<()> {
    let program = spec.program.to_str().context("the path of this program is not UTF-8 text")?;
    let paths: Vec<(&str, &str)> = [("the log's path", &layout.log), ("the secrets file's path", &layout.env_file)]
        .into_iter()
        .filter_map(|(what, path)| Some((what, path.as_deref()?.to_str()?)))
        .collect();
    spec::check_writable(
        std::iter::once(("the path of this program", program))
            .chain(paths)
            .chain(spec.args.iter().map(|a| ("an option", a.as_str())))
            .chain(spec.env.iter().chain(&spec.secret_env).map(|(name, value)| (name.as_str(), value.as_str()))),
    )
}

fn uninstall(layout: &Layout, json: bool) -> Result<ExitCode> {
    // Nothing is stopped or removed unless every file there is ours.
    let installed = ours(&layout.service_file)?;
    if let Some(env_file) = &layout.env_file {
        ours(env_file)?;
    }
    // Stopped even without its file (deleted by hand), so nothing keeps running.
    let stopped = layout.stop();
    let mut removed = Vec::new();
    for path in std::iter::once(&layout.service_file).chain(&layout.env_file) {
        if remove_ours(path)? {
            removed.push(path.clone());
        }
    }
    layout.forget();
    let failed = matches!(stopped, Err(ManagerError::Failed(_))) && installed;
    if json {
        println!(
            "{}",
            json!({"was_installed": installed, "removed": removed, "stopped": stopped.is_ok(),
                   "not_stopped_because": stopped.as_ref().err().map(ManagerError::reason)})
        );
    } else {
        if !installed {
            println!("the service was not installed (no {})", layout.service_file.display());
        }
        for path in &removed {
            println!("removed {}", path.display());
        }
        if let (true, Err(reason)) = (installed, &stopped) {
            println!("not stopped: {}", reason.reason());
        }
        if let Some(log) = layout.log.as_ref().filter(|log| log.exists()) {
            println!("kept its log {}", log.display());
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn restart(layout: &Layout, json: bool) -> Result<ExitCode> {
    if !ours(&layout.service_file)? {
        bail!(
            "the service is not installed (no {}): `local-mlx service install` installs and starts it",
            layout.service_file.display()
        );
    }
    let restarted = layout.restart();
    if json {
        println!(
            "{}",
            json!({"restarted": restarted.is_ok(), "not_restarted_because": restarted.as_ref().err().map(ManagerError::reason)})
        );
    }
    match restarted {
        Ok(()) => {
            if !json {
                println!("restarted: `local-mlx service status` checks that it answers");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: the service did not restart: {}", error.reason());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What the installed service answers at `/health`: its URL and the answer.
struct Probe {
    url: String,
    health: Result<serde_json::Value, String>,
}

impl Probe {
    /// `None` when the service file is missing or names no program.
    async fn of(layout: &Layout, text: &str) -> Option<Probe> {
        let args = layout.installed_args(text)?;
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let host = value("--host").unwrap_or_else(|| "localhost".into());
        let port = value("--port").and_then(|p| p.parse().ok()).unwrap_or(local_mlx_server::DEFAULT_PORT);
        Some(Probe { url: base_url(&host, port), health: ask_health(&health_url(&host, port)).await })
    }

    /// When the server answering runs another version than this binary: what to do.
    fn version_note(&self) -> Option<String> {
        let running = self.health.as_ref().ok()?["version"].as_str().unwrap_or("(too old to say)");
        let ours = crate::VERSION;
        if running == ours {
            return None;
        }
        let how = match version_order(running, ours) {
            Some(std::cmp::Ordering::Less) => "older than",
            Some(std::cmp::Ordering::Greater) => "newer than",
            _ => "not",
        };
        Some(format!(
            "the service runs local-mlx {running}, {how} the installed {ours}: `local-mlx service restart` runs the installed one"
        ))
    }
}

/// The order of two `X.Y.Z (commit …)` versions by their numbers; `None` when one has none.
fn version_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let numbers =
        |v: &str| -> Option<Vec<u64>> { v.split_whitespace().next()?.split('.').map(|n| n.parse().ok()).collect() };
    Some(numbers(a)?.cmp(&numbers(b)?))
}

async fn status(layout: &Layout, json: bool) -> Result<ExitCode> {
    let text = match std::fs::read_to_string(&layout.service_file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", layout.service_file.display())),
    };
    let running = layout.running();
    let probe = match &text {
        Some(text) => Probe::of(layout, text).await,
        None => None,
    };
    let health = probe.as_ref().and_then(|p| p.health.as_ref().ok());
    let note = probe.as_ref().and_then(Probe::version_note);
    if json {
        println!(
            "{}",
            json!({
                "installed": text.is_some(),
                "running": running.as_ref().ok(),
                "url": probe.as_ref().map(|p| &p.url),
                "healthy": health.is_some(),
                "health": health.map(|h| h["status"].as_str().unwrap_or("answered")),
                "version": health.map(|h| &h["version"]),
                "installed_version": crate::VERSION,
                "version_note": note,
                "file": layout.service_file,
                "log": layout.log_hint(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &text {
        Some(_) => println!("installed: yes ({})", layout.service_file.display()),
        None => {
            println!("installed: no (no {}; `local-mlx service install` installs it)", layout.service_file.display())
        }
    }
    match &running {
        Ok(true) => println!("running:   yes"),
        Ok(false) => println!("running:   no"),
        Err(reason) => println!("running:   unknown ({})", reason.reason()),
    }
    if let Some(probe) = &probe {
        println!("url:       {}", probe.url);
        match &probe.health {
            Ok(state) => println!(
                "health:    answers ({}, local-mlx {})",
                state["status"].as_str().unwrap_or("answered"),
                state["version"].as_str().unwrap_or("of an unknown version")
            ),
            Err(error) => println!("health:    not answering ({error})"),
        }
    }
    if let Some(note) = &note {
        println!("note:      {note}");
    }
    if text.is_some() {
        println!("log:       {}", layout.log_hint());
    }
    Ok(ExitCode::SUCCESS)
}

/// For `setup`: when the installed service answers with another version than this
/// binary, what to do about it; `None` otherwise (or when there is no service).
pub async fn stale_service_note() -> Option<String> {
    let layout = Layout::new(Manager::chosen().ok()?).ok()?;
    let text = std::fs::read_to_string(&layout.service_file).ok()?;
    Probe::of(&layout, &text).await?.version_note()
}

/// The base URL clients use, as `serve` prints it.
fn base_url(host: &str, port: u16) -> String {
    format!("http://{}:{port}/v1", bracketed(host))
}

/// `/health` on the service: a wildcard address is asked on loopback.
fn health_url(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let host = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1",
        Ok(ip) if ip.is_unspecified() => "::1",
        _ => host,
    };
    format!("http://{}:{port}/health", bracketed(host))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `GET /health` with a short timeout: what it answers (`status`, `version`...).
async fn ask_health(url: &str) -> std::result::Result<serde_json::Value, String> {
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build().map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_connect() {
            format!("nothing answers at {url}")
        } else if e.is_timeout() {
            format!("no answer from {url} within 3 s")
        } else {
            local_mlx::error::source_chain(&e)
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    local_mlx::small_answer::read_small_json(response).await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6_and_ask_wildcards_on_loopback() {
        assert_eq!(base_url("localhost", 8397), "http://localhost:8397/v1");
        assert_eq!(base_url("::1", 80), "http://[::1]:80/v1");
        assert_eq!(health_url("0.0.0.0", 1), "http://127.0.0.1:1/health");
        assert_eq!(health_url("::", 1), "http://[::1]:1/health");
        assert_eq!(health_url("[::1]", 1), "http://[::1]:1/health");
    }

    #[test]
    fn versions_order_by_their_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("0.1.0 (commit a)", "0.2.0 (commit b)"), Some(Less));
        assert_eq!(version_order("0.10.0", "0.9.9 (commit b)"), Some(Greater));
        assert_eq!(version_order("0.1.0 (commit a)", "0.1.0 (commit b)"), Some(Equal));
        assert_eq!(version_order("(too old to say)", "0.1.0"), None);
    }
}
