//! `ModelStore`: what is on disk, and the one download at a time.
//!
//! Downloaded / not downloaded is read from the cache on every question, so a model
//! another tool deleted is `NotDownloaded` at once. The store's only memory is one
//! value, [`Downloads`]: the [`Download`] (idle, or active with its progress) and the
//! last [`Failure`], published through a `tokio::sync::watch` and changed in one atomic
//! step each time, so a status is computed from one snapshot of it. Each download move is
//! checked with [`ModelState::checked_next`] and announced to the [`EventSink`].
//! Loading, Ready and generating belong to the manager's session, which hands its part
//! in ([`InSession`]); the status is then complete, with the answers of the rules
//! (delete, disk space, one download at a time, the retry and its attempts) as
//! [`Refusal`]s `{ kind, message }`, so no face decides them again.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, ModelSpec};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{EventSink, EventType, MlxModelStateEvent};
use crate::hub::{DeleteReport, Downloader, HubConfig, Outcome, Progress, RefState, RepoLock};
use crate::state::{delete_refusal, ModelState, Transition};

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
    /// Why deleting is refused now (kind `busy`: downloading, loading, generating), or
    /// `None` when it may go ahead: the core's answer, so a UI need not decide it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = Refusal))]
    pub delete_blocked: Option<Refusal>,
    /// Bytes a download still has to fetch (the size less what is kept); 0 when
    /// downloaded or when the size is not known before the download.
    pub bytes_needed: u64,
    /// Free bytes where the cache is (its nearest existing folder), when measurable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = u64))]
    pub bytes_free: Option<u64>,
    /// The download's own refusal, said before it starts (kind `insufficient_disk`):
    /// `bytes_needed` does not fit in `bytes_free` (the rule the download checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = Refusal))]
    pub disk_warning: Option<Refusal>,
    /// Why Download (or Retry) of this model is refused now (kind
    /// `download_in_progress`: one download at a time); the refusal `download` would give.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = Refusal))]
    pub download_blocked: Option<Refusal>,
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

/// A rule's answer in a status: the refusal the action would give now, as the
/// `{ kind, message }` its error carries (the kind a UI branches on, the sentence it
/// shows), so the status and the click never disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxRefusal"))]
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<&Error> for Refusal {
    fn from(error: &Error) -> Self {
        Refusal { kind: error.kind(), message: error.to_string() }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::from(&error)
    }
}

/// What the session does with one model, read by the manager from one look at its slot:
/// the part of a status the store cannot know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InSession {
    /// `Loading` or `Ready` while the session holds the model; `None` otherwise.
    pub state: Option<ModelState>,
    pub generating: bool,
}

/// The store's one download: none, or one under way with its last progress sample.
#[derive(Debug, Clone, Default)]
pub enum Download {
    #[default]
    Idle,
    Active(ActiveDownload),
}

impl Download {
    /// The model downloading, if any.
    pub fn model_id(&self) -> Option<&str> {
        match self {
            Download::Idle => None,
            Download::Active(active) => Some(&active.model_id),
        }
    }

    /// The progress of `model_id`'s download, when it is the one under way (`None`
    /// too before its first sample).
    fn progress_of(&self, model_id: &str) -> Option<Progress> {
        match self {
            Download::Active(active) if active.model_id == model_id => active.progress,
            _ => None,
        }
    }
}

/// The download under way.
#[derive(Debug, Clone)]
pub struct ActiveDownload {
    pub model_id: String,
    /// The last progress sample; `None` until the first.
    pub progress: Option<Progress>,
    /// Stops it; private, so a subscriber reads the download but cannot cancel it.
    cancel: CancellationToken,
}

/// The last download that failed: what `retry_download` starts again and the error the
/// model's status shows, until that model's next attempt or another failure.
#[derive(Debug, Clone)]
pub struct Failure {
    pub spec: ModelSpec,
    pub message: String,
}

/// All the store keeps in memory, as one value published through a `watch`: a reader
/// sees the download and the last failure of one moment, never one updated without
/// the other.
#[derive(Debug, Clone, Default)]
pub struct Downloads {
    pub download: Download,
    pub last_failure: Option<Failure>,
}

impl Downloads {
    /// The error `model_id`'s last download ended with, until its next attempt.
    fn failure_of(&self, model_id: &str) -> Option<&Failure> {
        self.last_failure.as_ref().filter(|failure| failure.spec.id == model_id)
    }
}

/// How a download start went, decided in one change of [`Downloads`].
enum Start {
    AlreadyDownloaded(PathBuf),
    Began { cancel: CancellationToken, repo_lock: RepoLock },
}

/// The model store. Cheap to share: wrap it in an `Arc`.
pub struct ModelStore {
    downloader: Downloader,
    sink: Arc<dyn EventSink>,
    /// The one memory of the store; written only by [`ModelStore::change`] and the
    /// progress reporter, each in one atomic step.
    downloads: Arc<watch::Sender<Downloads>>,
}

impl ModelStore {
    pub fn new(config: HubConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        Ok(ModelStore {
            downloader: Downloader::new(config)?,
            sink,
            downloads: Arc::new(watch::Sender::new(Downloads::default())),
        })
    }

    pub fn config(&self) -> &HubConfig {
        self.downloader.config()
    }

    /// The store's memory now and every change after it: what a test waits on instead
    /// of polling (a face gets the same news as events).
    #[cfg(feature = "test-support")]
    pub fn subscribe(&self) -> watch::Receiver<Downloads> {
        self.downloads.subscribe()
    }

    /// Run `change` on the value with every other writer and reader held off; it returns
    /// its answer and whether it changed anything (subscribers are woken only then).
    fn change<R>(&self, change: impl FnOnce(&mut Downloads) -> (R, bool)) -> R {
        let mut answer = None;
        self.downloads.send_if_modified(|downloads| {
            let (result, changed) = change(downloads);
            answer = Some(result);
            changed
        });
        answer.expect("send_if_modified runs its closure")
    }

    /// Every model complete in the cache: the catalog's and any repo another process
    /// pulled, with its disk status (a query, no side effect; the session's part is
    /// not laid over it).
    pub fn downloaded_models(&self) -> Vec<MlxModelInfo> {
        let builtin = catalog::builtin_models();
        let cached = self.downloader.cache().repo_ids().into_iter().filter_map(|id| catalog::resolve(&id).ok());
        let mut specs: Vec<ModelSpec> = builtin.into_iter().chain(cached).collect();
        let mut seen = std::collections::HashSet::new();
        specs.retain(|spec| seen.insert(spec.id.clone()));
        specs
            .iter()
            .map(|spec| self.info(spec, InSession::default()))
            .filter(|info| info.status.snapshot_path.is_some())
            .collect()
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
        let start = self.change(|downloads| {
            let start = self.start(downloads, spec);
            let began = matches!(start, Ok(Start::Began { .. }));
            (start, began)
        });
        let (cancel, repo_lock) = match start? {
            Start::AlreadyDownloaded(snapshot) => return Ok(DownloadOutcome::AlreadyDownloaded { snapshot }),
            Start::Began { cancel, repo_lock } => (cancel, repo_lock),
        };
        self.sink.emit(MlxModelStateEvent::new(EventType::DownloadStarted, &spec.id));
        let on_progress = self.progress_reporter(&spec.id);
        let result = self.downloader.download(&spec.repo, &spec.revision, on_progress, &cancel).await;
        drop(repo_lock);
        self.finish_download(spec, result.map_err(|e| self.explain_vanished(spec, e)))
    }

    /// Start `spec`'s download in `downloads` if the rules allow it now: it becomes the
    /// active download and its last failure is over.
    fn start(&self, downloads: &mut Downloads, spec: &ModelSpec) -> Result<Start> {
        if let Some(in_progress) = downloads.download.model_id() {
            return Err(Error::DownloadInProgress { in_progress: in_progress.to_string(), requested: spec.id.clone() });
        }
        if let Some(snapshot) = self.snapshot(spec) {
            return Ok(Start::AlreadyDownloaded(snapshot));
        }
        if self.config().offline {
            return Err(Error::Offline { model_id: spec.id.clone(), cache: self.config().cache_dir.clone() });
        }
        ModelState::NotDownloaded.checked_next(&spec.id, Transition::StartDownload)?;
        // Held until the download ends: `rm` in another process waits its turn.
        let repo_lock = RepoLock::shared(&self.downloader.cache().repo(&spec.repo))?;
        let cancel = CancellationToken::new();
        let active = ActiveDownload { model_id: spec.id.clone(), progress: None, cancel: cancel.clone() };
        downloads.download = Download::Active(active);
        downloads.last_failure = downloads.last_failure.take().filter(|failure| failure.spec.id != spec.id);
        Ok(Start::Began { cancel, repo_lock })
    }

    fn progress_reporter(&self, model_id: &str) -> impl Fn(Progress) + Send + Sync + 'static {
        let sink = self.sink.clone();
        let model_id = model_id.to_string();
        // The ticker runs on its own task, so it holds the channel instead of borrowing
        // the store; a sample arriving after the download ended changes nothing.
        let downloads = self.downloads.clone();
        move |p: Progress| {
            downloads.send_if_modified(|downloads| match &mut downloads.download {
                Download::Active(active) if active.model_id == model_id => {
                    active.progress = Some(p);
                    true
                }
                _ => false,
            });
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

    /// The download is over: idle again and, when it failed, the failure, in one change.
    fn finish_download(&self, spec: &ModelSpec, result: Result<Outcome>) -> Result<DownloadOutcome> {
        self.change(|downloads| {
            downloads.download = Download::Idle;
            if let Err(error) = &result {
                downloads.last_failure = Some(Failure { spec: spec.clone(), message: error.to_string() });
            }
            ((), true)
        });
        match result {
            Ok(Outcome::Completed { snapshot, fetched_bytes }) => {
                ModelState::Downloading.checked_next(&spec.id, Transition::DownloadCompleted)?;
                self.sink.emit(MlxModelStateEvent::new(EventType::DownloadCompleted, &spec.id));
                Ok(DownloadOutcome::Downloaded { snapshot, fetched_bytes })
            }
            Ok(Outcome::Cancelled) => {
                ModelState::Downloading.checked_next(&spec.id, Transition::DownloadCancelled)?;
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
                self.sink.emit(MlxModelStateEvent::error(&spec.id, error.to_string()));
                Err(error)
            }
        }
    }

    /// Stop the download in progress (the provider's `mlx_cancel_download`). Returns at
    /// once; the download call returns `Cancelled` within a second.
    pub fn cancel_download(&self) -> Result<String> {
        match &self.downloads.borrow().download {
            Download::Active(active) => {
                active.cancel.cancel();
                Ok(active.model_id.clone())
            }
            Download::Idle => Err(Error::NoActiveDownload),
        }
    }

    /// Start the last failed download again with fresh attempts, resuming (the
    /// provider's `mlx_retry_download`).
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        let failed = self.downloads.borrow().last_failure.as_ref().map(|failure| failure.spec.clone());
        self.download(&failed.ok_or(Error::NothingToRetry)?).await
    }

    /// Delete a model's files, complete or partial. The manager calls this once the
    /// session has released the model; the store refuses only what it owns: a download
    /// of this model under way, or nothing on disk to delete.
    pub fn delete_files(&self, spec: &ModelSpec) -> Result<DeleteReport> {
        // Inside a change that changes nothing: no download of this model can start
        // meanwhile; the repo lock keeps out other processes' downloads and generations.
        self.change(|downloads| (self.delete_idle(downloads, spec), false))
    }

    fn delete_idle(&self, downloads: &Downloads, spec: &ModelSpec) -> Result<DeleteReport> {
        if downloads.download.model_id() == Some(spec.id.as_str()) {
            return Err(crate::state::delete_refusal(&spec.id, ModelState::Downloading, false)
                .expect("a download blocks deleting"));
        }
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

    /// A model of the list with its status (see [`Self::status`]).
    pub fn info(&self, spec: &ModelSpec, session: InSession) -> MlxModelInfo {
        let status = self.status(spec, session);
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

    /// `spec`'s whole status: what is on disk, the download's progress while it runs,
    /// the session's state laid over it, and the rules' answers for that state.
    ///
    /// The memory is read once, before the disk: a download writes its ref and only
    /// then goes idle, so an idle snapshot followed by a look at the disk never misses a
    /// download that just completed, and a downloading one is never also failed.
    pub fn status(&self, spec: &ModelSpec, session: InSession) -> MlxModelStatus {
        let downloads = self.downloads.borrow().clone();
        let snapshot = self.snapshot(spec);
        let disk_state = match downloads.download.model_id() {
            Some(id) if id == spec.id => ModelState::Downloading,
            _ if snapshot.is_some() => ModelState::Downloaded,
            _ => ModelState::NotDownloaded,
        };
        let state = session.state.unwrap_or(disk_state);
        let download_blocked = downloads
            .download
            .model_id()
            .filter(|id| *id != spec.id)
            .map(|in_progress| Error::DownloadInProgress {
                in_progress: in_progress.to_string(),
                requested: spec.id.clone(),
            })
            .map(Refusal::from);
        let progress = downloads.download.progress_of(&spec.id);
        let repo = self.downloader.cache().repo(&spec.repo);
        let failure = downloads.failure_of(&spec.id);
        let error = failure.map(|failure| failure.message.clone()).or_else(|| match repo.read_ref(&spec.revision) {
            RefState::Corrupt(content) => Some(
                Error::CorruptRef { model_id: spec.id.clone(), path: repo.ref_path(&spec.revision), content }
                    .to_string(),
            ),
            RefState::Missing | RefState::Commit(_) => None,
        });
        let partial_bytes = repo.partial_bytes();
        let bytes_needed = if disk_state == ModelState::NotDownloaded {
            spec.approx_size_bytes.saturating_sub(partial_bytes)
        } else {
            0
        };
        let cache_dir = &self.config().cache_dir;
        let bytes_free = crate::hub::download::free_space(cache_dir)
            .inspect_err(|e| tracing::debug!("no free space for the status: {e}"))
            .ok()
            .flatten();
        let disk_warning = bytes_free
            .and_then(|free| crate::hub::download::disk_refusal(cache_dir, bytes_needed, free))
            .map(Refusal::from);
        let can_retry = disk_state == ModelState::NotDownloaded && failure.is_some();
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
            has_files: disk_state != ModelState::NotDownloaded
                || partial_bytes > 0
                || repo.has_revision_files(&spec.revision),
            snapshot_path: snapshot,
            delete_blocked: delete_refusal(&spec.id, state, session.generating).map(Refusal::from),
            bytes_needed,
            bytes_free,
            disk_warning,
            download_blocked,
            retry_attempts: can_retry.then_some(self.config().max_attempts),
        }
    }
}
