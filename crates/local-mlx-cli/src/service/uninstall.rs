//! `service uninstall`: the service stopped and the files `install` wrote removed,
//! nothing touched unless every file there is ours.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::files::{ours, remove_ours};
use super::layout::Layout;
use super::tool::ManagerError;

pub(super) fn uninstall(layout: &Layout, json: bool) -> Result<ExitCode> {
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
