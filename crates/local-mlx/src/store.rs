//! `ModelStore`: what is on disk, and the one download at a time.
//!
//! Downloaded / not downloaded is read from the cache on every question, so a model
//! another tool deleted is `NotDownloaded` at once; the only state kept in memory is the
//! active download (`Downloading`). Loading, Ready and generating belong to the manager's
//! session, which overlays them on this status. Each download move is checked with
//! [`ModelState::checked_next`] and announced to the [`EventSink`]. A status also
//! carries the answers of the download's rules (disk space, one download at a time,
//! the retry and its attempts), so no face decides them again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, ModelSpec};
use crate::error::{Error, Result};
use crate::events::{EventSink, EventType, MlxModelStateEvent};
use crate::hub::{DeleteReport, Downloader, HubConfig, Outcome, Progress, RefState, RepoLock};
use crate::state::{ModelState, Transition};

/// A model's state and, while downloading, its progress (the provider's `MlxModelStatus`).
/// Fields skipped when `None` are exported as `field?: T`, as on [`MlxModelStateEvent`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct MlxModelStatus {
    pub model_id: String,
    pub state: ModelState,
    /// 0.0 – 1.0 while downloading.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub progress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub downloaded_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub bytes_per_second: Option<f64>,
    /// Bytes of an interrupted download waiting to be resumed.
    pub partial_bytes: u64,
    /// The last download error, until the next attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub error: Option<String>,
    /// The snapshot folder, when downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub snapshot_path: Option<PathBuf>,
    /// Whether there is anything to delete: a complete snapshot, a download under way,
    /// or a partial download.
    pub has_files: bool,
    /// Why deleting is refused now (downloading, loading, generating), or `None` when
    /// it may go ahead: the core's answer, so a UI need not decide it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub delete_blocked: Option<String>,
    /// Bytes a download still has to fetch (the size less what is kept); 0 when
    /// downloaded or when the size is not known before the download.
    pub bytes_needed: u64,
    /// Free bytes where the cache is (its nearest existing folder), when measurable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub bytes_free: Option<u64>,
    /// The download's own refusal, said before it starts: `bytes_needed` does not fit
    /// in `bytes_free` (the rule the download checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub disk_warning: Option<String>,
    /// Why Download (or Retry) of this model is refused now: another model is
    /// downloading (one download at a time); the refusal `download` would give.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub download_blocked: Option<String>,
    /// Present when this model's download failed and `retry_download` would start it
    /// again: how many attempts that retry makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub retry_attempts: Option<u32>,
}

/// A model of the list (the provider's `MlxModelInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct MlxModelInfo {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub repo: String,
    pub revision: String,
    pub size_bytes: u64,
    pub ram_bytes: u64,
    pub is_default: bool,
    pub is_builtin: bool,
    pub status: MlxModelStatus,
}

/// How `download` ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxDownloadOutcome"))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DownloadOutcome {
    Downloaded { snapshot: PathBuf, fetched_bytes: u64 },
    AlreadyDownloaded { snapshot: PathBuf },
    Cancelled { partial_bytes: u64 },
}

struct ActiveDownload {
    model_id: String,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Inner {
    /// The one download under way (the only `Downloading` model).
    active: Option<ActiveDownload>,
    last_failed: Option<ModelSpec>,
    /// The last download error of each model, until its next attempt.
    errors: HashMap<String, String>,
}

/// The model store. Cheap to share: wrap it in an `Arc`.
pub struct ModelStore {
    downloader: Downloader,
    sink: Arc<dyn EventSink>,
    inner: Mutex<Inner>,
    /// The active download's last progress sample, written by its ticker task.
    progress: Arc<Mutex<Option<Progress>>>,
}

impl ModelStore {
    pub fn new(config: HubConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        Ok(ModelStore {
            downloader: Downloader::new(config)?,
            sink,
            inner: Mutex::new(Inner::default()),
            progress: Arc::default(),
        })
    }

    pub fn config(&self) -> &HubConfig {
        self.downloader.config()
    }

    /// Every model complete in the cache: the catalog's and any repo another process
    /// pulled, with its disk status (a query, no side effect).
    pub fn downloaded_models(&self) -> Vec<MlxModelInfo> {
        let builtin = catalog::builtin_models();
        let cached = self.downloader.cache().repo_ids().into_iter().filter_map(|id| catalog::resolve(&id).ok());
        let mut specs: Vec<ModelSpec> = builtin.into_iter().chain(cached).collect();
        let mut seen = std::collections::HashSet::new();
        specs.retain(|spec| seen.insert(spec.id.clone()));
        specs.iter().map(|spec| self.info(spec)).filter(|info| info.status.snapshot_path.is_some()).collect()
    }

    /// `Downloading` for the active download, else downloaded or not as `on_disk` says
    /// (asked only then).
    fn disk_state(&self, spec: &ModelSpec, on_disk: impl FnOnce() -> bool) -> ModelState {
        if self.active_download().is_some_and(|id| id == spec.id) {
            ModelState::Downloading
        } else if on_disk() {
            ModelState::Downloaded
        } else {
            ModelState::NotDownloaded
        }
    }

    /// The repo's shared cross-process lock (see [`RepoLock`]), held while its files are
    /// in use by a generation.
    pub fn share_repo(&self, spec: &ModelSpec) -> Result<RepoLock> {
        RepoLock::shared(&self.downloader.cache().repo(&spec.repo))
    }

    /// The complete snapshot folder of a model, if downloaded.
    pub fn snapshot(&self, spec: &ModelSpec) -> Option<PathBuf> {
        self.downloader.cache().repo(&spec.repo).complete_snapshot(&spec.revision)
    }

    /// Download a model (the provider's `mlx_download_model`). Runs until the download
    /// completes, fails after its attempts, or is cancelled.
    pub async fn download(&self, spec: &ModelSpec) -> Result<DownloadOutcome> {
        let repo_lock;
        let cancel = {
            let mut inner = self.lock();
            if let Some(active) = &inner.active {
                return Err(Error::DownloadInProgress {
                    in_progress: active.model_id.clone(),
                    requested: spec.id.clone(),
                });
            }
            if let Some(snapshot) = self.snapshot(spec) {
                return Ok(DownloadOutcome::AlreadyDownloaded { snapshot });
            }
            if self.config().offline {
                return Err(Error::Offline { model_id: spec.id.clone(), cache: self.config().cache_dir.clone() });
            }
            ModelState::NotDownloaded.checked_next(&spec.id, Transition::StartDownload)?;
            // Held until the download ends: `rm` in another process waits its turn.
            repo_lock = RepoLock::shared(&self.downloader.cache().repo(&spec.repo))?;
            inner.errors.remove(&spec.id);
            let cancel = CancellationToken::new();
            inner.active = Some(ActiveDownload { model_id: spec.id.clone(), cancel: cancel.clone() });
            cancel
        };
        self.sink.emit(MlxModelStateEvent::new(EventType::DownloadStarted, &spec.id));
        let on_progress = self.progress_reporter(&spec.id);
        let result = self.downloader.download(&spec.repo, &spec.revision, on_progress, &cancel).await;
        drop(repo_lock);
        self.finish_download(spec, result.map_err(|e| self.explain_vanished(spec, e)))
    }

    fn progress_reporter(&self, model_id: &str) -> impl Fn(Progress) + Send + Sync + 'static {
        let sink = self.sink.clone();
        let model_id = model_id.to_string();
        // The ticker runs on its own task, so it reports through a shared slot instead
        // of borrowing the store.
        let slot = self.progress.clone();
        move |p: Progress| {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(p);
            }
            sink.emit(MlxModelStateEvent::progress(&model_id, p.done, p.total, p.bytes_per_second));
        }
    }

    /// A file that vanished mid-download because the repo folder went (another tool
    /// deleted the model) is reported as that, not as a raw "no such file".
    fn explain_vanished(&self, spec: &ModelSpec, error: Error) -> Error {
        let vanished = matches!(&error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
        let repo = self.downloader.cache().repo(&spec.repo);
        if vanished && !repo.blobs_dir().exists() {
            return Error::DeletedWhileDownloading { model_id: spec.id.clone(), dir: repo.dir().to_path_buf() };
        }
        error
    }

    fn finish_download(&self, spec: &ModelSpec, result: Result<Outcome>) -> Result<DownloadOutcome> {
        let mut inner = self.lock();
        inner.active = None;
        *self.progress.lock().expect("progress poisoned") = None;
        match result {
            Ok(Outcome::Completed { snapshot, fetched_bytes }) => {
                ModelState::Downloading.checked_next(&spec.id, Transition::DownloadCompleted)?;
                inner.last_failed = None;
                drop(inner);
                self.sink.emit(MlxModelStateEvent::new(EventType::DownloadCompleted, &spec.id));
                Ok(DownloadOutcome::Downloaded { snapshot, fetched_bytes })
            }
            Ok(Outcome::Cancelled) => {
                ModelState::Downloading.checked_next(&spec.id, Transition::DownloadCancelled)?;
                drop(inner);
                let partial_bytes = self.downloader.cache().repo(&spec.repo).partial_bytes();
                self.sink.emit(MlxModelStateEvent::error(
                    &spec.id,
                    format!(
                        "download cancelled; {partial_bytes} bytes are kept and the next download resumes from them"
                    ),
                ));
                Ok(DownloadOutcome::Cancelled { partial_bytes })
            }
            Err(error) => {
                ModelState::Downloading.checked_next(&spec.id, Transition::DownloadFailed)?;
                inner.last_failed = Some(spec.clone());
                inner.errors.insert(spec.id.clone(), error.to_string());
                drop(inner);
                self.sink.emit(MlxModelStateEvent::error(&spec.id, error.to_string()));
                Err(error)
            }
        }
    }

    /// Stop the download in progress (the provider's `mlx_cancel_download`). Returns at
    /// once; the download call returns `Cancelled` within a second.
    pub fn cancel_download(&self) -> Result<String> {
        let inner = self.lock();
        let active = inner.active.as_ref().ok_or(Error::NoActiveDownload)?;
        active.cancel.cancel();
        Ok(active.model_id.clone())
    }

    /// Start the last failed download again with fresh attempts, resuming (the
    /// provider's `mlx_retry_download`).
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        let spec = self.lock().last_failed.clone().ok_or(Error::NothingToRetry)?;
        self.download(&spec).await
    }

    /// The model whose download is in progress, if any.
    pub fn active_download(&self) -> Option<String> {
        self.lock().active.as_ref().map(|a| a.model_id.clone())
    }

    /// Delete a model's files, complete or partial. The manager calls this once the
    /// session has released the model; the store refuses only what it owns: a download
    /// of this model under way, or nothing on disk to delete.
    pub fn delete_files(&self, spec: &ModelSpec) -> Result<DeleteReport> {
        let inner = self.lock();
        if inner.active.as_ref().is_some_and(|a| a.model_id == spec.id) {
            return Err(crate::state::delete_refusal(&spec.id, ModelState::Downloading, false)
                .expect("a download blocks deleting"));
        }
        // Holding the lock: no download of this model can start meanwhile; the repo lock
        // keeps out other processes' downloads and generations.
        let repo = self.downloader.cache().repo(&spec.repo);
        let Some(_repo_lock) = RepoLock::try_exclusive(&repo)? else {
            return Err(Error::Busy {
                model_id: spec.id.clone(),
                state: "in use by another process (downloading or generating)".to_string(),
                action: "deleting it",
            });
        };
        let downloaded = repo.complete_snapshot(&spec.revision).is_some();
        // A corrupt ref, or a snapshot with a damaged file (not complete any more), still
        // leaves files that `rm` must be able to remove.
        if !downloaded && !repo.has_revision_files(&spec.revision) && repo.partial_bytes() == 0 {
            return Err(Error::NotDownloaded { model_id: spec.id.clone() });
        }
        if downloaded {
            ModelState::Downloaded.checked_next(&spec.id, Transition::Delete)?;
        }
        repo.delete_revision(&spec.revision)
    }

    /// A model of the list with its disk status (the manager overlays the session's).
    pub fn info(&self, spec: &ModelSpec) -> MlxModelInfo {
        let status = self.status(spec);
        // A custom model's size is unknown until it is on disk; then it is exact.
        let size_bytes = match (&status.snapshot_path, spec.approx_size_bytes) {
            (Some(snapshot), 0) => crate::hub::cache::snapshot_bytes(snapshot),
            _ => spec.approx_size_bytes,
        };
        MlxModelInfo {
            id: spec.id.clone(),
            display_name: spec.display_name.clone(),
            description: spec.description.clone(),
            repo: spec.repo.clone(),
            revision: spec.revision.clone(),
            size_bytes,
            ram_bytes: spec.ram_bytes,
            is_default: spec.id == catalog::DEFAULT_MODEL_ID,
            is_builtin: spec.is_builtin,
            status,
        }
    }

    /// What is on disk for `spec`, and the download's progress while it runs.
    pub fn status(&self, spec: &ModelSpec) -> MlxModelStatus {
        // One look at the snapshot serves both the state and the path.
        let snapshot = self.snapshot(spec);
        let state = self.disk_state(spec, || snapshot.is_some());
        let active = self.active_download();
        let is_active = active.as_deref() == Some(spec.id.as_str());
        let download_blocked = active
            .filter(|id| *id != spec.id)
            .map(|in_progress| Error::DownloadInProgress { in_progress, requested: spec.id.clone() }.to_string());
        let progress = if is_active { *self.progress.lock().expect("progress poisoned") } else { None };
        let repo = self.downloader.cache().repo(&spec.repo);
        let error = self.lock().errors.get(&spec.id).cloned().or_else(|| match repo.read_ref(&spec.revision) {
            RefState::Corrupt(content) => Some(
                Error::CorruptRef { model_id: spec.id.clone(), path: repo.ref_path(&spec.revision), content }
                    .to_string(),
            ),
            RefState::Missing | RefState::Commit(_) => None,
        });
        let partial_bytes = repo.partial_bytes();
        let bytes_needed =
            if state == ModelState::NotDownloaded { spec.approx_size_bytes.saturating_sub(partial_bytes) } else { 0 };
        let cache_dir = &self.config().cache_dir;
        let bytes_free = crate::hub::download::free_space(cache_dir)
            .inspect_err(|e| tracing::debug!("no free space for the status: {e}"))
            .ok()
            .flatten();
        let disk_warning = bytes_free
            .and_then(|free| crate::hub::download::disk_refusal(cache_dir, bytes_needed, free))
            .map(|e| e.to_string());
        let can_retry = state == ModelState::NotDownloaded
            && error.is_some()
            && self.lock().last_failed.as_ref().is_some_and(|failed| failed.id == spec.id);
        MlxModelStatus {
            model_id: spec.id.clone(),
            state,
            progress: progress.map(|p| if p.total == 0 { 0.0 } else { p.done as f64 / p.total as f64 }),
            downloaded_bytes: progress.map(|p| p.done),
            total_bytes: progress.map(|p| p.total),
            bytes_per_second: progress.map(|p| p.bytes_per_second),
            partial_bytes,
            error,
            // A download under way counts even before its first byte lands: its Delete
            // is shown (refused, with the reason), not hidden.
            has_files: state != ModelState::NotDownloaded
                || partial_bytes > 0
                || repo.has_revision_files(&spec.revision),
            snapshot_path: snapshot,
            delete_blocked: None,
            bytes_needed,
            bytes_free,
            disk_warning,
            download_blocked,
            retry_attempts: can_retry.then_some(self.config().max_attempts),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("model store poisoned")
    }
}
