//! The model list and each model's lifecycle on disk: the catalog plus custom models,
//! their statuses (the store's disk status overlaid with the session's slot and the
//! delete rule), downloads and deletes.

use super::{MlxModelManager, Slot};
use crate::catalog::{self, ModelSpec};
use crate::error::Result;
use crate::hub::DeleteReport;
use crate::state::delete_refusal;
use crate::store::{DownloadOutcome, InSession, MlxModelInfo, MlxModelStatus};

impl MlxModelManager {
    /// List a custom model (a Hugging Face repo id) after the catalog, once: adding it
    /// again, or adding a catalog id, changes nothing. Returns its spec.
    pub fn add_custom_model(&self, model_id: &str) -> Result<ModelSpec> {
        let spec = catalog::resolve(model_id)?;
        if !spec.is_builtin {
            let mut custom = self.custom_models.lock().expect("custom models poisoned");
            if !custom.iter().any(|s| s.id == spec.id) {
                custom.push(spec.clone());
            }
        }
        Ok(spec)
    }

    /// `mlx_list_models`: the catalog, then the custom models, each with its status.
    pub fn list_models(&self) -> Vec<MlxModelInfo> {
        let custom = self.custom_models.lock().expect("custom models poisoned").clone();
        // One look at the slot for the whole list.
        let slot = self.session.subscribe().borrow().clone();
        catalog::builtin_models()
            .into_iter()
            .chain(custom)
            .map(|spec| self.store.info(&spec, in_session(&slot, &spec.id)))
            .collect()
    }

    /// The models with a complete snapshot in the cache: the catalog's and any other repo
    /// found there (what `serve` lists and `handy connect` chooses from).
    pub fn downloaded_models(&self) -> Vec<MlxModelInfo> {
        self.store.downloaded_models()
    }

    /// `mlx_get_model_status`: of any catalog id or repo id (asking lists nothing).
    pub fn model_status(&self, model_id: &str) -> Result<MlxModelStatus> {
        let spec = catalog::resolve(model_id)?;
        let slot = self.session.subscribe().borrow().clone();
        Ok(self.store.status(&spec, in_session(&slot, &spec.id)))
    }

    /// Whether a generation is under way on `model_id`.
    pub fn is_generating(&self, model_id: &str) -> bool {
        self.session.is_generating(model_id)
    }

    /// `mlx_download_model`
    pub async fn download(&self, model_id: &str) -> Result<DownloadOutcome> {
        self.ensure_runnable()?;
        self.store.download(&catalog::resolve(model_id)?).await
    }

    /// `mlx_cancel_download`: returns the id of the model whose download stops.
    pub fn cancel_download(&self) -> Result<String> {
        self.store.cancel_download()
    }

    /// `mlx_retry_download`
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        self.ensure_runnable()?;
        self.store.retry_download().await
    }

    /// `mlx_delete_model`: refused while the model downloads, loads or generates (the
    /// rule of `state::delete_refusal`, also given in each status as `delete_blocked`); a
    /// loaded but idle model is unloaded first. The session releases the model (holding
    /// its lock so no load starts meanwhile), then the store deletes the files.
    pub async fn delete_model(&self, model_id: &str) -> Result<DeleteReport> {
        let spec = catalog::resolve(model_id)?;
        let state = self.model_status(&spec.id)?.state;
        if let Some(refusal) = delete_refusal(&spec.id, state, self.session.is_generating(&spec.id)) {
            return Err(refusal);
        }
        let _released = self.session.release_for_delete(&spec.id).await?;
        self.store.delete_files(&spec)
    }
}

/// The session's part of `model_id`'s status, from one look at its slot.
fn in_session(slot: &Slot, model_id: &str) -> InSession {
    match slot.model_id() {
        Some(id) if id == model_id => {
            InSession { state: slot.model_state(), generating: matches!(slot, Slot::Generating { .. }) }
        }
        _ => InSession::default(),
    }
}
