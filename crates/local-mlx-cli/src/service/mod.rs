//! `local-mlx service install | uninstall | restart | status`: `local-mlx serve` started
//! at login by the user's service manager, a LaunchAgent on macOS ([`launchd`]) and a
//! systemd user unit on Linux ([`systemd`]).
//!
//! The flow both share is one module per command ([`install`], [`uninstall`],
//! [`restart`], [`status`]): the options checked as `serve` would check them, so a
//! service never starts only to fail; the files ([`files`]: written all-or-nothing, and
//! only over files `install` wrote); starting; `status`'s questions ([`health`]).
//! [`layout`] owns what differs by manager, [`spec`] what the service runs with. `LOCAL_MLX_SERVICE_MANAGER`
//! (`launchd` or `systemd`) picks the manager on any machine and its tool is found on
//! `PATH`, so the tests drive the macOS path on Linux with a stand-in `launchctl`. Where
//! no service manager runs (a container), `install` writes the files, says how to start
//! them by hand, and succeeds; where one runs and the start fails, it exits non-zero.

mod files;
mod health;
mod install;
mod launchd;
mod layout;
pub mod log;
mod restart;
mod spec;
mod status;
mod systemd;
mod tool;
mod uninstall;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::serve_options::ServeOptions;
use layout::{Layout, Manager};
pub use status::stale_service_note;

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

pub async fn run(args: ServiceArgs, json: bool) -> Result<ExitCode> {
    let layout = Layout::new(Manager::chosen()?)?;
    match args.action {
        Action::Install(options) => install::install(&layout, options, json),
        Action::Uninstall => uninstall::uninstall(&layout, json),
        Action::Restart => restart::restart(&layout, json),
        Action::Status => status::status(&layout, json).await,
    }
}
