//! Which service manager runs the service ([`Manager`]) and where its files go
//! ([`Layout`]): every place `install`, `uninstall`, `restart` and `status` differ by
//! manager is a method here.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use local_mlx::settings::config_dir;

use super::files::NewFile;
use super::spec::Spec;
use super::tool::ManagerError;
use super::{launchd, log, systemd};

/// Picks the service manager instead of this machine's (`launchd` or `systemd`): the
/// tests drive the macOS path on Linux with it.
pub(super) const MANAGER_ENV: &str = "LOCAL_MLX_SERVICE_MANAGER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Manager {
    Launchd,
    Systemd,
}

impl Manager {
    /// [`MANAGER_ENV`]'s choice, else this machine's.
    pub(super) fn chosen() -> Result<Manager> {
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
pub(super) struct Layout {
    pub(super) manager: Manager,
    /// The LaunchAgent plist or the systemd unit.
    pub(super) service_file: PathBuf,
    /// The 0600 file holding the secrets beside the unit (systemd), if any.
    pub(super) env_file: Option<PathBuf>,
    /// Where the service's output goes (launchd writes it; journald with systemd).
    pub(super) log: Option<PathBuf>,
}

impl Layout {
    pub(super) fn new(manager: Manager) -> Result<Layout> {
        let home = local_mlx::fs::home_dir().context("HOME is not set: the service files go into your home folder")?;
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
    pub(super) fn files(&self, spec: &Spec) -> Result<Vec<NewFile>> {
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
    pub(super) fn complete(&self, spec: &mut Spec) -> Result<()> {
        if let Some(log) = &self.log {
            let log = log.to_str().context("the log's path is not UTF-8 text")?;
            spec.env.push((log::LOG_ENV.to_string(), log.to_string()));
        }
        Ok(())
    }

    /// Load (or reload) and start the service.
    pub(super) fn start(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::start(&self.service_file),
            Manager::Systemd => systemd::start(),
        }
    }

    pub(super) fn restart(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::restart(&self.service_file),
            Manager::Systemd => systemd::restart(),
        }
    }

    /// Stop and unload the service.
    pub(super) fn stop(&self) -> Result<(), ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::stop(),
            Manager::Systemd => systemd::stop(),
        }
    }

    /// After the files are removed: the service manager forgets them.
    pub(super) fn forget(&self) {
        if self.manager == Manager::Systemd {
            systemd::forget();
        }
    }

    /// What to type where the service manager runs.
    pub(super) fn start_by_hand(&self) -> String {
        match self.manager {
            Manager::Launchd => launchd::start_command(&self.service_file),
            Manager::Systemd => systemd::start_command(),
        }
    }

    /// Whether it runs.
    pub(super) fn running(&self) -> Result<bool, ManagerError> {
        match self.manager {
            Manager::Launchd => launchd::running(),
            Manager::Systemd => systemd::running(),
        }
    }

    /// The arguments after the program in an installed service file, if it has them.
    pub(super) fn installed_args(&self, text: &str) -> Option<Vec<String>> {
        let mut words = match self.manager {
            Manager::Launchd => launchd::program_arguments(text)?,
            Manager::Systemd => systemd::exec_start(text)?,
        };
        (!words.is_empty()).then(|| words.split_off(1))
    }

    pub(super) fn log_hint(&self) -> String {
        match &self.log {
            Some(log) => log.display().to_string(),
            None => format!("journalctl --user -u {}", systemd::UNIT),
        }
    }
}
