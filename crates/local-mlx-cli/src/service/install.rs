//! `service install`: the options checked as `serve` would check them, the files
//! written all or none, the service started (or how to start it by hand).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use local_mlx::fs::create_private_dir;
use local_mlx_server::ApiKey;
use serde_json::json;

use super::files::{ours, remove_ours, write_all};
use super::health::base_url;
use super::layout::Layout;
use super::spec::{self, Spec};
use super::tool::ManagerError;
use super::InstallArgs;
use crate::serve_options::ServeOptions;

pub(super) fn install(layout: &Layout, options: InstallArgs, json: bool) -> Result<ExitCode> {
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
