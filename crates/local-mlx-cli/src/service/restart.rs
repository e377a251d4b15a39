//! `service restart`: the installed service restarted (the new version runs after an
//! upgrade).

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use super::files::ours;
use super::layout::Layout;
use super::tool::ManagerError;

pub(super) fn restart(layout: &Layout, json: bool) -> Result<ExitCode> {
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
