//! `local-mlx service install | uninstall | status`: `local-mlx serve` started at login
//! by the user's service manager, a LaunchAgent on macOS ([`launchd`]) and a systemd user
//! unit on Linux ([`systemd`]).
//!
//! This module owns what both share: the options (checked here as `serve` would check
//! them, so a service never starts only to fail), the command line and environment the
//! service runs with, writing the files all-or-nothing, and `status`'s questions. The
//! service runs the installed binary by its real path with a `PATH` that reaches the uv
//! the sidecar needs. An API key is never written into a file others can read: see
//! [`launchd`] and [`systemd`] for where each keeps it. Where no service manager runs
//! (a container), `install` writes the files, says how to start them by hand, and
//! succeeds: only a failed write is a failure.

mod launchd;
mod systemd;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use local_mlx::settings::{config_dir, create_private_dir, MlxSettings};
use local_mlx_server::ApiKey;

use crate::serve_options::ServeOptions;
use serde_json::json;

/// `local-mlx service …`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: Action,
    /// Write and read the files of this platform's service manager instead of this
    /// machine's (for tests: the macOS LaunchAgent is generated and checked on Linux).
    #[arg(long, global = true, hide = true, value_enum)]
    platform: Option<Platform>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Install `local-mlx serve` with these options as a login service and start it.
    Install(InstallArgs),
    /// Stop the service and remove the files `install` wrote.
    Uninstall,
    /// Whether the service is installed and running, and whether its URL answers.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Platform {
    Macos,
    Linux,
}

/// The variable `serve` reads its API key from.
const API_KEY_ENV: &str = "LOCAL_MLX_API_KEY";

/// Variables that decide which models `serve` finds and where it keeps its settings: set
/// when `install` runs, they are set for the service too, so it serves what the shell's
/// `local-mlx` sees. None of them is a secret.
const PASSED_ON: [&str; 9] = [
    "LOCAL_MLX_CONFIG_DIR",
    "LOCAL_MLX_BACKEND_DIR",
    "LOCAL_MLX_EXTRA_MODELS",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "XDG_CACHE_HOME",
    "HF_ENDPOINT",
    "HF_HUB_OFFLINE",
];

/// The folders after uv's on the service's `PATH`.
const SYSTEM_PATH: [&str; 5] = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// What the service runs: the program, its arguments, and its environment.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    program: PathBuf,
    args: Vec<String>,
    /// Readable by anyone who can read the service file (`PATH` first).
    env: Vec<(String, String)>,
    /// Kept in a file readable by the user alone (the API key).
    secret_env: Vec<(String, String)>,
}

/// One file `install` writes.
#[derive(Debug)]
struct NewFile {
    path: PathBuf,
    contents: String,
    /// 0600 files go into a folder created 0700 (it holds the settings too).
    mode: u32,
}

/// Where a platform's files live, and what `install` writes there.
struct Layout {
    platform: Platform,
    /// The LaunchAgent plist or the systemd unit.
    service_file: PathBuf,
    /// The 0600 file holding the API key beside the unit (Linux), if any.
    env_file: Option<PathBuf>,
    /// Where the service's output goes (launchd writes it; journald on Linux).
    log: Option<PathBuf>,
}

impl Layout {
    fn new(platform: Platform) -> Result<Layout> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .context("HOME is not set: the service files go into your home folder")?;
        Ok(match platform {
            Platform::Macos => Layout {
                platform,
                service_file: launchd::plist_path(&home),
                env_file: None,
                log: Some(config_dir().join("serve.log")),
            },
            Platform::Linux => Layout {
                platform,
                service_file: systemd::unit_path(&home),
                env_file: Some(config_dir().join("serve.env")),
                log: None,
            },
        })
    }

    /// The files for `spec`, in the order they are written (a secret before the file
    /// that names it).
    fn files(&self, spec: &Spec) -> Result<Vec<NewFile>> {
        Ok(match self.platform {
            Platform::Macos => {
                let log = self.log.as_deref().expect("a launchd layout has a log");
                vec![NewFile { path: self.service_file.clone(), contents: launchd::plist(spec, log), mode: 0o600 }]
            }
            Platform::Linux => {
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

    /// Load (or reload) and start the service; `Err` says why it was not started.
    fn start(&self) -> std::result::Result<(), String> {
        match self.platform {
            Platform::Macos => launchd::start(&self.service_file),
            Platform::Linux => systemd::start(),
        }
    }

    /// Stop and unload the service; `Err` says why that could not be done.
    fn stop(&self) -> std::result::Result<(), String> {
        match self.platform {
            Platform::Macos => launchd::stop(),
            Platform::Linux => systemd::stop(),
        }
    }

    /// After the files are removed: the service manager forgets them.
    fn forget(&self) {
        if self.platform == Platform::Linux {
            systemd::forget();
        }
    }

    /// What to type where the service manager runs.
    fn start_by_hand(&self) -> String {
        match self.platform {
            Platform::Macos => launchd::start_command(&self.service_file),
            Platform::Linux => systemd::start_command(),
        }
    }

    /// Whether it runs: `Err` says why that is unknown.
    fn running(&self) -> std::result::Result<bool, String> {
        match self.platform {
            Platform::Macos => launchd::running(),
            Platform::Linux => systemd::running(),
        }
    }

    /// The arguments after the program in an installed service file, if it has them.
    fn installed_args(&self, text: &str) -> Option<Vec<String>> {
        let mut words = match self.platform {
            Platform::Macos => launchd::program_arguments(text)?,
            Platform::Linux => systemd::exec_start(text)?,
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
    let platform = args.platform.unwrap_or(if cfg!(target_os = "macos") { Platform::Macos } else { Platform::Linux });
    let layout = Layout::new(platform)?;
    match args.action {
        Action::Install(options) => install(&layout, options, json),
        Action::Uninstall => uninstall(&layout, json),
        Action::Status => status(&layout, json).await,
    }
}

fn install(layout: &Layout, options: InstallArgs, json: bool) -> Result<ExitCode> {
    let api_key = options.serve.api_key()?;
    check_options(&options.serve, api_key.clone())?;
    if layout.service_file.exists() && !options.force {
        bail!(
            "the service is already installed ({}): use `local-mlx service uninstall` first, or \
             `local-mlx service install --force` to replace it",
            layout.service_file.display()
        );
    }
    let (spec, uv_warning) = spec(&options.serve, api_key)?;
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
    // A key from an earlier install that this one does not use goes with it.
    let mut removed = Vec::new();
    if let Some(env_file) = layout.env_file.as_ref().filter(|f| files.iter().all(|n| &n.path != *f)) {
        if remove_if_present(env_file)? {
            removed.push(env_file.clone());
        }
    }
    let url = base_url(&options.serve.host, options.serve.port);
    let started = layout.start();
    let written: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    if json {
        println!(
            "{}",
            json!({
                "installed": true,
                "files": written,
                "removed": removed,
                "started": started.is_ok(),
                "not_started_because": started.as_ref().err(),
                "start_by_hand": started.is_err().then(|| layout.start_by_hand()),
                "url": url,
                "log": layout.log_hint(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    for file in &files {
        let note = if file.mode == 0o600 { " (readable by you alone)" } else { "" };
        println!("wrote {}{note}", file.path.display());
    }
    for path in &removed {
        println!("removed {} (no API key this time)", path.display());
    }
    match started {
        Ok(()) => println!("started: it answers on {url} (`local-mlx service status` checks it)"),
        Err(reason) => {
            println!("not started: {reason}");
            println!("start it by hand where the service manager runs: {}", layout.start_by_hand());
        }
    }
    println!("log: {}", layout.log_hint());
    Ok(ExitCode::SUCCESS)
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

/// What the service runs: this binary by its real path, `serve` with the options, and a
/// `PATH` that reaches uv. The second value says why uv was not found, if it was not.
fn spec(options: &ServeOptions, api_key: Option<ApiKey>) -> Result<(Spec, Option<String>)> {
    let exe = std::env::current_exe().context("cannot find the path of this program")?;
    let program = std::fs::canonicalize(&exe).with_context(|| format!("cannot resolve {}", exe.display()))?;
    let mut args: Vec<String> =
        ["serve", "--host", &options.host, "--port", &options.port.to_string(), "--keep-alive", &options.keep_alive]
            .map(String::from)
            .to_vec();
    if options.no_clean_up_check {
        args.push("--no-clean-up-check".into());
    }
    args.extend(["--answer-within".to_string(), options.answer_within.clone()]);
    let settings = MlxSettings::load(&config_dir().join("settings.json"))?;
    let (path, uv_warning) = match local_mlx::sidecar::find_uv(settings.uv_path.as_deref()) {
        Ok(uv) => (service_path(uv.parent()), None),
        Err(error) => (service_path(None), Some(error.to_string())),
    };
    let mut env = vec![("PATH".to_string(), path)];
    for name in PASSED_ON {
        if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
            let value = value.into_string().map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))?;
            env.push((name.to_string(), value));
        }
    }
    let secret_env = api_key.map(|key| vec![(API_KEY_ENV.to_string(), key.secret().to_string())]).unwrap_or_default();
    let spec = Spec { program, args, env, secret_env };
    check_writable(&spec)?;
    Ok((spec, uv_warning))
}

/// uv's folder, then the system's, each once.
fn service_path(uv_dir: Option<&Path>) -> String {
    let mut dirs: Vec<String> = uv_dir.map(|d| d.display().to_string()).into_iter().collect();
    for dir in SYSTEM_PATH {
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_string());
        }
    }
    dirs.join(":")
}

/// A control character (a newline in a path, say) has no faithful spelling in a unit
/// file line or in XML 1.0: refuse it instead of writing a file that means something else.
fn check_writable(spec: &Spec) -> Result<()> {
    let program = spec.program.to_str().context("the path of this program is not UTF-8 text")?;
    let named = std::iter::once(("the path of this program", program))
        .chain(spec.args.iter().map(|a| ("an option", a.as_str())))
        .chain(spec.env.iter().chain(&spec.secret_env).map(|(name, value)| (name.as_str(), value.as_str())));
    for (what, text) in named {
        if text.chars().any(char::is_control) {
            bail!("{what} holds a control character, which a service file cannot carry: {text:?}");
        }
    }
    Ok(())
}

/// Write every file or none: each goes to a temp file in its own folder first, and only
/// when all are written are they renamed into place. On failure no temp file is left.
fn write_all(files: &[NewFile]) -> Result<()> {
    let mut temps: Vec<PathBuf> = Vec::new();
    let result = write_temps(files, &mut temps).and_then(|()| {
        for (file, temp) in files.iter().zip(&temps) {
            std::fs::rename(temp, &file.path)
                .with_context(|| format!("cannot move {} to {}", temp.display(), file.path.display()))?;
        }
        Ok(())
    });
    if result.is_err() {
        for temp in &temps {
            let _ = std::fs::remove_file(temp);
        }
    }
    result.context("nothing was installed")
}

fn write_temps(files: &[NewFile], temps: &mut Vec<PathBuf>) -> Result<()> {
    for file in files {
        let dir = file.path.parent().unwrap_or(Path::new("."));
        let created = if file.mode == 0o600 { create_private_dir(dir) } else { std::fs::create_dir_all(dir) };
        created.with_context(|| format!("cannot create the folder {}", dir.display()))?;
        let name = file.path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&temp); // a leftover would keep its old mode
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, file.mode);
        let mut handle = options.open(&temp).with_context(|| format!("cannot write {}", temp.display()))?;
        temps.push(temp.clone());
        handle
            .write_all(file.contents.as_bytes())
            .and_then(|()| handle.sync_all())
            .with_context(|| format!("cannot write {}", temp.display()))?;
    }
    Ok(())
}

/// Remove `path`; `false` when it was not there.
fn remove_if_present(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn uninstall(layout: &Layout, json: bool) -> Result<ExitCode> {
    let installed = layout.service_file.exists();
    // Stopped even without its file (deleted by hand), so nothing keeps running.
    let stopped = layout.stop();
    let mut removed = Vec::new();
    for path in std::iter::once(&layout.service_file).chain(&layout.env_file) {
        if remove_if_present(path)? {
            removed.push(path.clone());
        }
    }
    layout.forget();
    if json {
        println!(
            "{}",
            json!({"was_installed": installed, "removed": removed, "stopped": stopped.is_ok(),
                   "not_stopped_because": stopped.as_ref().err()})
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !installed {
        println!("the service was not installed (no {})", layout.service_file.display());
    }
    for path in &removed {
        println!("removed {}", path.display());
    }
    if let (true, Err(reason)) = (installed, &stopped) {
        println!("not stopped: {reason}");
    }
    if let Some(log) = layout.log.as_ref().filter(|log| log.exists()) {
        println!("kept its log {}", log.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(layout: &Layout, json: bool) -> Result<ExitCode> {
    let text = match std::fs::read_to_string(&layout.service_file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", layout.service_file.display())),
    };
    let running = layout.running();
    let url = text.as_deref().and_then(|text| layout.installed_args(text)).map(|args| {
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let host = value("--host").unwrap_or_else(|| "localhost".into());
        let port = value("--port").and_then(|p| p.parse().ok()).unwrap_or(local_mlx_server::DEFAULT_PORT);
        (base_url(&host, port), health_url(&host, port))
    });
    let health = match &url {
        Some((_, health_url)) => Some(ask_health(health_url).await),
        None => None,
    };
    let healthy = matches!(health, Some(Ok(_)));
    if json {
        println!(
            "{}",
            json!({
                "installed": text.is_some(),
                "running": running.as_ref().ok(),
                "url": url.as_ref().map(|(base, _)| base),
                "healthy": healthy,
                "health": health.as_ref().and_then(|h| h.as_ref().ok()),
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
        Err(reason) => println!("running:   unknown ({reason})"),
    }
    if let (Some((base, _)), Some(health)) = (&url, &health) {
        println!("url:       {base}");
        match health {
            Ok(state) => println!("health:    answers ({state})"),
            Err(error) => println!("health:    not answering ({error})"),
        }
    }
    if text.is_some() {
        println!("log:       {}", layout.log_hint());
    }
    Ok(ExitCode::SUCCESS)
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

/// `GET /health` with a short timeout: the state it reports (`idle`, `ready`...).
async fn ask_health(url: &str) -> std::result::Result<String, String> {
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
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    Ok(body["status"].as_str().unwrap_or("answered").to_string())
}

/// The outcome of one service-manager command.
enum ToolRun {
    /// The program is not installed here.
    Missing,
    /// It ran and failed: its exit code, its stdout, and a message with what it said.
    Failed { code: Option<i32>, stdout: String, message: String },
    /// It succeeded: its stdout.
    Done(String),
}

fn run_tool(program: &str, args: &[&str]) -> ToolRun {
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
fn shell_quote(text: &str) -> String {
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
    fn the_path_puts_uvs_folder_first_and_names_each_folder_once() {
        assert_eq!(
            service_path(Some(Path::new("/home/u/.local/bin"))),
            "/home/u/.local/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        );
        assert_eq!(service_path(Some(Path::new("/usr/bin"))), "/usr/bin:/usr/local/bin:/bin:/usr/sbin:/sbin");
        assert_eq!(service_path(None), SYSTEM_PATH.join(":"));
    }

    #[test]
    fn urls_bracket_ipv6_and_ask_wildcards_on_loopback() {
        assert_eq!(base_url("localhost", 8397), "http://localhost:8397/v1");
        assert_eq!(base_url("::1", 80), "http://[::1]:80/v1");
        assert_eq!(health_url("0.0.0.0", 1), "http://127.0.0.1:1/health");
        assert_eq!(health_url("::", 1), "http://[::1]:1/health");
        assert_eq!(health_url("[::1]", 1), "http://[::1]:1/health");
    }

    #[test]
    fn shell_quoting_leaves_plain_paths_alone() {
        assert_eq!(shell_quote("/a/b.plist"), "/a/b.plist");
        assert_eq!(shell_quote("/Users/a b/it's"), r"'/Users/a b/it'\''s'");
    }
}
