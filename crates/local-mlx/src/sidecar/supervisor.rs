//! `SidecarSupervisor`: at most one live sidecar, started on demand, restarted after death.
//!
//! [`SidecarSupervisor::ensure_running`] is the one way in: it returns the client of
//! the live process, or finds uv, syncs the environment if needed and spawns a new one,
//! reporting each [`Phase`] to the caller so a first run that downloads Python packages
//! is never a silent hang. Starts are serialized, so two callers racing get the same
//! process. [`SidecarSupervisor::shutdown`] cancels a start in progress instead of
//! waiting behind it (a first-run sync can take minutes).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, BackendSource, SyncMode};
use super::client::Client;
use super::exit::ExitInfo;
use super::log_file::LogSink;
use super::native::EngineChoice;
use super::spawn::Sidecar;
use super::timeouts::Timeouts;
use super::uv::UvSearch;
use super::{Result, SidecarError};

/// What the sidecar supervisor needs to know; the manager fills it from settings.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// The uv path set in settings; searched for when unset or wrong (see [`SidecarConfig::find_uv`]).
    pub uv_path: Option<PathBuf>,
    /// Where the sidecar's files come from (see [`SidecarConfig::in_data_dir`]).
    pub backend: BackendSource,
    /// Where the Python environment lives (`UV_PROJECT_ENVIRONMENT`); `None` is the
    /// folder's `.venv` (the embedded copy's shared `venv`). Set it when the folder is
    /// read-only (an app bundle).
    pub venv_dir: Option<PathBuf>,
    /// The sidecar's stderr (and uv sync's output) is appended here across restarts; at
    /// 8 MiB the file becomes `<name>.1`. `None`: only the last lines, in memory, for
    /// error messages.
    pub log_path: Option<PathBuf>,
    /// From spawn to the first `/status` answer (the ready line comes before).
    pub ready_timeout: Duration,
    /// The first-run `uv sync`, which downloads the Python packages.
    pub sync_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub shutdown_grace: Duration,
    pub timeouts: Timeouts,
    /// The Python sidecar, or the native engine's worker (`LOCAL_MLX_ENGINE`; the
    /// manager sets it from [`ChosenEngine`](super::native::ChosenEngine)).
    pub engine: EngineChoice,
}

impl SidecarConfig {
    /// Defaults: uv searched for, the venv beside the sidecar's files, no log file, 180 s to
    /// become ready, 30 min to sync, 3 s of grace.
    pub fn new(backend: BackendSource) -> Self {
        SidecarConfig {
            uv_path: None,
            backend,
            venv_dir: None,
            log_path: None,
            ready_timeout: Duration::from_secs(180),
            sync_timeout: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(3),
            timeouts: Timeouts::default(),
            engine: EngineChoice::from_env().unwrap_or_default(),
        }
    }

    /// [`Self::new`] over a python-backend folder on disk.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self::new(BackendSource::Dir(dir.into()))
    }

    /// [`Self::new`] for an embedder whose data folder is `data_dir`: the sidecar's files
    /// from `LOCAL_MLX_BACKEND_DIR`, else the copy built into this binary, unpacked there.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(super::backend::default_backend(data_dir))
    }

    /// uv as a sidecar started now would find it: `explicit` (the settings' `uv_path`)
    /// first, then beside this executable, on `PATH` and in the usual places.
    pub fn find_uv(explicit: Option<&Path>) -> super::Result<PathBuf> {
        super::uv::find_uv(explicit)
    }
}

/// Where a start is; each is reported once per start, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// First run (or a new `uv.lock`): uv is installing the Python packages. Minutes.
    SyncingEnvironment,
    /// The server is starting: Python imports, then the ready line. Seconds.
    StartingServer,
    /// The server answers; the client is ready for use.
    Ready,
}

/// Keeps at most one sidecar alive. Share it in an `Arc`; dropping it kills the sidecar.
#[derive(Debug)]
pub struct SidecarSupervisor {
    config: SidecarConfig,
    current: Mutex<Option<Sidecar>>,
    /// Held for the whole of a start, so starts never overlap.
    starting: tokio::sync::Mutex<()>,
    /// Cancelled by `shutdown`, which aborts a start in progress.
    cancel: Mutex<CancellationToken>,
}

impl SidecarSupervisor {
    pub fn new(config: SidecarConfig) -> Self {
        SidecarSupervisor {
            config,
            current: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
            cancel: Mutex::new(CancellationToken::new()),
        }
    }

    pub fn config(&self) -> &SidecarConfig {
        &self.config
    }

    fn current(&self) -> MutexGuard<'_, Option<Sidecar>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client of the live sidecar, starting one if there is none or it died.
    /// `on_phase` hears [`Phase::SyncingEnvironment`] (only when a sync is needed),
    /// [`Phase::StartingServer`] and [`Phase::Ready`]; nothing when one is already live.
    pub async fn ensure_running(&self, mut on_phase: impl FnMut(Phase) + Send) -> Result<Arc<Client>> {
        if let Some(client) = self.client() {
            return Ok(client);
        }
        let cancel = self.cancel.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _starting = tokio::select! {
            guard = self.starting.lock() => guard,
            _ = cancel.cancelled() => return Err(SidecarError::Stopped { what: "start-up" }),
        };
        // Someone else may have started it while we waited.
        if let Some(client) = self.client() {
            return Ok(client);
        }
        let dead = self.current().take();
        if let Some(dead) = dead {
            tracing::warn!(
                pid = dead.pid(),
                exit = %dead.exit_info().map(|e| e.to_string()).unwrap_or_default(),
                "the sidecar died; starting a new one. Its last output:\n{}",
                dead.stderr_tail()
            );
        }
        let sidecar = tokio::select! {
            started = self.start(&mut on_phase) => started?,
            _ = cancel.cancelled() => return Err(SidecarError::Stopped { what: "start-up" }),
        };
        let client = sidecar.client();
        *self.current() = Some(sidecar);
        on_phase(Phase::Ready);
        Ok(client)
    }

    /// Sync the Python environment now if it needs it, as the next start would, without
    /// starting the server (`local-mlx setup`). Returns how long the sync took; `None`
    /// when it was already synced.
    pub async fn sync_environment(&self) -> Result<Option<Duration>> {
        let _starting = self.starting.lock().await;
        let mut synced = None;
        self.prepare_environment(&mut |_| {}, &mut synced).await?;
        Ok(synced)
    }

    /// uv and the backend, synced (reporting [`Phase::SyncingEnvironment`] when a sync
    /// runs, and how long it took in `synced`).
    async fn prepare_environment(
        &self,
        on_phase: &mut (impl FnMut(Phase) + Send),
        synced: &mut Option<Duration>,
    ) -> Result<(PathBuf, Backend, Option<std::fs::File>)> {
        let config = &self.config;
        let uv = UvSearch::from_env(config.uv_path.as_deref()).find()?;
        super::uv::check_version(&uv)?;
        let backend = config.backend.resolve(config.venv_dir.as_deref())?;
        let log = config.log_path.as_deref().and_then(open_log);
        if backend.needs_sync() {
            on_phase(Phase::SyncingEnvironment);
            tracing::info!(backend = %backend.dir.display(), "syncing the sidecar's Python environment");
            let took = backend
                .sync(&uv, config.sync_timeout, log.as_ref(), SyncMode::KeepInstalled)
                .await
                .map_err(|e| self.naming_uv(e, &uv))?;
            tracing::info!("environment synced in {:.1} s", took.as_secs_f64());
            *synced = Some(took);
        }
        Ok((uv, backend, log))
    }

    /// A failure of the uv from settings names it (the user set that path).
    fn naming_uv(&self, error: SidecarError, uv: &std::path::Path) -> SidecarError {
        if self.config.uv_path.as_deref() == Some(uv) {
            error.naming_uv_from_settings(uv)
        } else {
            error
        }
    }

    /// Sync if needed and spawn. A server that exits before it is ready, from an
    /// environment this start did not sync, gets one re-sync that reinstalls every
    /// package (a package deleted from the venv leaves the stamp matching) and one more
    /// try; a second exit names the folders.
    async fn start(&self, on_phase: &mut (impl FnMut(Phase) + Send)) -> Result<Sidecar> {
        let config = &self.config;
        if config.engine == EngineChoice::Native {
            // No Python: neither uv nor the environment is needed.
            on_phase(Phase::StartingServer);
            let log = config.log_path.as_deref().and_then(|path| Some(LogSink::new(open_log(path)?, path)));
            let env = &super::blas::sidecar_plan().env;
            let worker = super::native::worker_path();
            return Sidecar::spawn_native(&worker, env, log, config.ready_timeout, config.timeouts).await;
        }
        let mut synced = None;
        let (uv, backend, log) = self.prepare_environment(on_phase, &mut synced).await?;
        let first = self.spawn(&uv, &backend, log, on_phase).await;
        let exited = match first {
            Err(e @ SidecarError::Exited { .. }) => e,
            other => return other,
        };
        if synced.is_none() {
            tracing::warn!("the sidecar exited before it was ready; syncing its environment once more:\n{exited}");
            on_phase(Phase::SyncingEnvironment);
            let log = self.config.log_path.as_deref().and_then(open_log);
            backend
                .sync(&uv, self.config.sync_timeout, log.as_ref(), SyncMode::Reinstall)
                .await
                .map_err(|e| self.naming_uv(e, &uv))?;
            match self.spawn(&uv, &backend, log, on_phase).await {
                Err(e @ SidecarError::Exited { .. }) => {
                    return Err(e.naming_environment(&backend.dir, &backend.venv_dir()))
                }
                other => return other,
            }
        }
        Err(exited.naming_environment(&backend.dir, &backend.venv_dir()))
    }

    async fn spawn(
        &self,
        uv: &std::path::Path,
        backend: &Backend,
        log: Option<std::fs::File>,
        on_phase: &mut (impl FnMut(Phase) + Send),
    ) -> Result<Sidecar> {
        let config = &self.config;
        on_phase(Phase::StartingServer);
        let started = Instant::now();
        let log = log.zip(config.log_path.as_deref()).map(|(file, path)| LogSink::new(file, path));
        let env = &super::blas::sidecar_plan().env;
        let sidecar = Sidecar::spawn(uv, backend, env, log, config.ready_timeout, config.timeouts)
            .await
            .map_err(|e| self.naming_uv(e, uv))?;
        tracing::info!("sidecar started in {:.1} s", started.elapsed().as_secs_f64());
        Ok(sidecar)
    }

    /// The client of the live sidecar, without starting one.
    pub fn client(&self) -> Option<Arc<Client>> {
        self.current().as_ref().filter(|s| s.is_alive()).map(Sidecar::client)
    }

    /// Whether a sidecar is running now.
    pub fn is_running(&self) -> bool {
        self.current().as_ref().is_some_and(Sidecar::is_alive)
    }

    /// The pid of the live sidecar's `uv run` (its process group).
    pub fn pid(&self) -> Option<u32> {
        self.current().as_ref().filter(|s| s.is_alive()).and_then(Sidecar::pid)
    }

    /// Stop the sidecar (SIGTERM, then SIGKILL after the grace period) and any start in
    /// progress; returns how it ended (`None`: none was running). The next
    /// [`SidecarSupervisor::ensure_running`] starts a new one.
    pub async fn shutdown(&self) -> Option<ExitInfo> {
        let old = std::mem::take(&mut *self.cancel.lock().unwrap_or_else(|e| e.into_inner()));
        old.cancel();
        let _starting = self.starting.lock().await;
        let sidecar = self.current().take()?;
        sidecar.shutdown(self.config.shutdown_grace).await
    }
}

/// Open the log to append to. One file across restarts: an idle unload stops the
/// sidecar and the next use starts a new one, so rotating at each start would lose a
/// crash's lines two restarts later; the log rotates by size instead (`LogSink`, 8 MiB).
fn open_log(path: &std::path::Path) -> Option<std::fs::File> {
    if let Some(dir) = path.parent() {
        let _ = crate::fs::create_private_dir(dir);
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot write the sidecar log ({e}); keeping only its last lines");
            None
        }
    }
}
