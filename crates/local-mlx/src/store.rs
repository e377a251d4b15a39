//! `ModelStore`: which models exist, what state each is in, and the one download at a time.
//!
//! Downloaded / not downloaded is read from the cache on every question, so a model
//! another tool deleted is `NotDownloaded` at once; only the passing states
//! (`Downloading`, `Loading`, `Ready`) live in memory. Every change goes through
//! [`ModelState::next`], so an illegal move is refused in one place, and every change
//! is announced to the [`EventSink`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, ModelSpec};
use crate::error::{Error, Result};
use crate::events::{EventSink, EventType, MlxModelStateEvent};
use crate::hub::{DeleteReport, Downloader, HubConfig, Outcome, Progress};
use crate::state::{ModelState, Transition};

/// A model's state and, while downloading, its progress (the seed's `MlxModelStatus`).
/// Fields skipped when `None` are exported as `field?: T`, as on [`MlxModelStateEvent`](crate::MlxModelStateEvent).
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
}

/// A model of the list (the seed's `MlxModelInfo`).
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
    /// Only the passing states; the rest come from the cache.
    passing: HashMap<String, ModelState>,
    active: Option<ActiveDownload>,
    /// Models whose generation is under way (delete is refused).
    generating: HashMap<String, usize>,
    last_failed: Option<ModelSpec>,
    errors: HashMap<String, String>,
    /// Custom models asked about in this process, listed after the catalog.
    custom: Vec<ModelSpec>,
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

    /// The catalog, then custom models seen in this process, each with its status.
    pub fn list_models(&self) -> Vec<MlxModelInfo> {
        let custom = self.lock().custom.clone();
        catalog::builtin_models().into_iter().chain(custom).map(|spec| self.info(&spec)).collect()
    }

    /// The spec of `model_id` (catalog or custom), remembering custom ones for the list.
    pub fn spec(&self, model_id: &str) -> Result<ModelSpec> {
        let spec = catalog::resolve(model_id)?;
        if !spec.is_builtin {
            let mut inner = self.lock();
            if !inner.custom.iter().any(|s| s.id == spec.id) {
                inner.custom.push(spec.clone());
            }
        }
        Ok(spec)
    }

    pub fn model_status(&self, model_id: &str) -> Result<MlxModelStatus> {
        let spec = self.spec(model_id)?;
        Ok(self.status_of(&spec))
    }

    /// The state of a model right now.
    pub fn state(&self, spec: &ModelSpec) -> ModelState {
        self.state_with(spec, || self.snapshot(spec).is_some())
    }

    /// The passing state, else downloaded or not as `on_disk` says (asked only then).
    fn state_with(&self, spec: &ModelSpec, on_disk: impl FnOnce() -> bool) -> ModelState {
        if let Some(state) = self.lock().passing.get(&spec.id) {
            return *state;
        }
        if on_disk() {
            ModelState::Downloaded
        } else {
            ModelState::NotDownloaded
        }
    }

    /// The complete snapshot folder of a model, if downloaded.
    pub fn snapshot(&self, spec: &ModelSpec) -> Option<PathBuf> {
        self.downloader.cache().repo(&spec.repo).complete_snapshot(&spec.revision)
    }

    /// Download a model (the seed's `mlx_download_model`). Runs until the download
    /// completes, fails after its attempts, or is cancelled.
    pub async fn download(&self, model_id: &str) -> Result<DownloadOutcome> {
        let spec = self.spec(model_id)?;
        let cancel = {
            let mut inner = self.lock();
            if let Some(active) = &inner.active {
                return Err(Error::DownloadInProgress {
                    in_progress: active.model_id.clone(),
                    requested: spec.id.clone(),
                });
            }
            if let Some(snapshot) = self.snapshot(&spec) {
                return Ok(DownloadOutcome::AlreadyDownloaded { snapshot });
            }
            if self.config().offline {
                return Err(Error::Offline { model_id: spec.id.clone(), cache: self.config().cache_dir.clone() });
            }
            let from = inner.passing.get(&spec.id).copied().unwrap_or(ModelState::NotDownloaded);
            let to = next(&spec.id, from, Transition::StartDownload)?;
            inner.passing.insert(spec.id.clone(), to);
            inner.errors.remove(&spec.id);
            let cancel = CancellationToken::new();
            inner.active = Some(ActiveDownload { model_id: spec.id.clone(), cancel: cancel.clone() });
            cancel
        };
        self.sink.emit(MlxModelStateEvent::new(EventType::DownloadStarted, &spec.id));
        let on_progress = self.progress_reporter(&spec.id);
        let result = self.downloader.download(&spec.repo, &spec.revision, on_progress, &cancel).await;
        self.finish_download(&spec, result)
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

    fn finish_download(&self, spec: &ModelSpec, result: Result<Outcome>) -> Result<DownloadOutcome> {
        let mut inner = self.lock();
        inner.active = None;
        inner.passing.remove(&spec.id);
        *self.progress.lock().expect("progress poisoned") = None;
        match result {
            Ok(Outcome::Completed { snapshot, fetched_bytes }) => {
                next(&spec.id, ModelState::Downloading, Transition::DownloadCompleted)?;
                inner.last_failed = None;
                drop(inner);
                self.sink.emit(MlxModelStateEvent::new(EventType::DownloadCompleted, &spec.id));
                Ok(DownloadOutcome::Downloaded { snapshot, fetched_bytes })
            }
            Ok(Outcome::Cancelled) => {
                next(&spec.id, ModelState::Downloading, Transition::DownloadCancelled)?;
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
                next(&spec.id, ModelState::Downloading, Transition::DownloadFailed)?;
                inner.last_failed = Some(spec.clone());
                inner.errors.insert(spec.id.clone(), error.to_string());
                drop(inner);
                self.sink.emit(MlxModelStateEvent::error(&spec.id, error.to_string()));
                Err(error)
            }
        }
    }

    /// Stop the download in progress (the seed's `mlx_cancel_download`). Returns at
    /// once; the download call returns `Cancelled` within a second.
    pub fn cancel_download(&self) -> Result<String> {
        let inner = self.lock();
        let active = inner.active.as_ref().ok_or(Error::NoActiveDownload)?;
        active.cancel.cancel();
        Ok(active.model_id.clone())
    }

    /// Start the last failed download again with fresh attempts, resuming (the seed's
    /// `mlx_retry_download`).
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        let spec = self.lock().last_failed.clone().ok_or(Error::NothingToRetry)?;
        self.download(&spec.id).await
    }

    /// The model whose download is in progress, if any.
    pub fn active_download(&self) -> Option<String> {
        self.lock().active.as_ref().map(|a| a.model_id.clone())
    }

    /// Delete a model's files (the seed's `mlx_delete_model`). Refused while it is
    /// downloading, loading, loaded or generating. A model with only partial files
    /// left by a cancelled download has those removed.
    pub fn delete_model(&self, model_id: &str) -> Result<DeleteReport> {
        let spec = self.spec(model_id)?;
        let inner = self.lock();
        let state = inner.passing.get(&spec.id).copied().unwrap_or(ModelState::Downloaded);
        let generating = inner.generating.get(&spec.id).is_some_and(|n| *n > 0);
        if generating || state != ModelState::Downloaded {
            return Err(Error::Busy {
                model_id: spec.id.clone(),
                state: if generating { "generating".to_string() } else { state.to_string() },
                action: "deleting it",
            });
        }
        // Holding the lock: no download or load can start on this model meanwhile.
        let repo = self.downloader.cache().repo(&spec.repo);
        let downloaded = repo.complete_snapshot(&spec.revision).is_some();
        if !downloaded && repo.partial_bytes() == 0 {
            return Err(Error::NotDownloaded { model_id: spec.id.clone() });
        }
        if downloaded {
            next(&spec.id, ModelState::Downloaded, Transition::Delete)?;
        }
        repo.delete_revision(&spec.revision)
    }

    /// Move a model through a load/unload transition (used by the manager).
    pub fn transition(&self, model_id: &str, transition: Transition) -> Result<ModelState> {
        let spec = self.spec(model_id)?;
        let from = self.state(&spec);
        let to = next(&spec.id, from, transition)?;
        let mut inner = self.lock();
        match to {
            ModelState::Loading | ModelState::Ready | ModelState::Downloading => {
                inner.passing.insert(spec.id.clone(), to)
            }
            _ => inner.passing.remove(&spec.id),
        };
        drop(inner);
        let event = match transition {
            Transition::StartLoad => Some(MlxModelStateEvent::new(EventType::LoadingStarted, &spec.id)),
            Transition::LoadCompleted => Some(MlxModelStateEvent::new(EventType::LoadingCompleted, &spec.id)),
            Transition::Unload => Some(MlxModelStateEvent::new(EventType::Unloaded, &spec.id)),
            _ => None,
        };
        if let Some(event) = event {
            self.sink.emit(event);
        }
        Ok(to)
    }

    /// Whether a generation is under way on `model_id`.
    pub fn is_generating(&self, model_id: &str) -> bool {
        self.lock().generating.get(model_id).is_some_and(|n| *n > 0)
    }

    /// Mark a generation as started on `model_id`; dropping the guard ends it.
    pub fn generating(self: &Arc<Self>, model_id: &str) -> GeneratingGuard {
        *self.lock().generating.entry(model_id.to_string()).or_default() += 1;
        GeneratingGuard { store: self.clone(), model_id: model_id.to_string() }
    }

    fn info(&self, spec: &ModelSpec) -> MlxModelInfo {
        let status = self.status_of(spec);
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

    fn status_of(&self, spec: &ModelSpec) -> MlxModelStatus {
        // One look at the snapshot serves both the state and the path.
        let snapshot = self.snapshot(spec);
        let state = self.state_with(spec, || snapshot.is_some());
        let is_active = self.lock().active.as_ref().is_some_and(|a| a.model_id == spec.id);
        let progress = if is_active { *self.progress.lock().expect("progress poisoned") } else { None };
        let error = self.lock().errors.get(&spec.id).cloned();
        MlxModelStatus {
            model_id: spec.id.clone(),
            state,
            progress: progress.map(|p| if p.total == 0 { 0.0 } else { p.done as f64 / p.total as f64 }),
            downloaded_bytes: progress.map(|p| p.done),
            total_bytes: progress.map(|p| p.total),
            bytes_per_second: progress.map(|p| p.bytes_per_second),
            partial_bytes: self.downloader.cache().repo(&spec.repo).partial_bytes(),
            error,
            snapshot_path: snapshot,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("model store poisoned")
    }
}

/// Ends a generation mark when dropped (RAII, so an early return cannot leak it).
pub struct GeneratingGuard {
    store: Arc<ModelStore>,
    model_id: String,
}

impl Drop for GeneratingGuard {
    fn drop(&mut self) {
        let mut inner = self.store.lock();
        if let Some(count) = inner.generating.get_mut(&self.model_id) {
            *count = count.saturating_sub(1);
        }
    }
}

fn next(model_id: &str, from: ModelState, transition: Transition) -> Result<ModelState> {
    from.next(transition).ok_or_else(|| Error::IllegalTransition { model_id: model_id.to_string(), from, transition })
}
