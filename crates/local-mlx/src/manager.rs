//! `MlxModelManager`: the one facade every face (CLI, Tauri app) calls.
//!
//! It holds the model store today; the sidecar supervisor and `process_text` join it
//! here, so the faces never reach past it. Each method is one of the seed's commands.

use std::sync::Arc;

use crate::error::Result;
use crate::events::EventSink;
use crate::hub::{DeleteReport, HubConfig};
use crate::store::{DownloadOutcome, MlxModelInfo, MlxModelStatus, ModelStore};

/// The MLX Local AI Provider.
pub struct MlxModelManager {
    store: Arc<ModelStore>,
}

impl MlxModelManager {
    /// A manager over the hub and cache in `config`, reporting to `sink`.
    pub fn new(config: HubConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        Ok(MlxModelManager {
            store: Arc::new(ModelStore::new(config, sink)?),
        })
    }

    /// A manager configured from `HF_*` environment variables.
    pub fn from_env(sink: Arc<dyn EventSink>) -> Result<Self> {
        Self::new(HubConfig::from_env(), sink)
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }

    /// `mlx_list_models`
    pub fn list_models(&self) -> Vec<MlxModelInfo> {
        self.store.list_models()
    }

    /// `mlx_get_model_status`
    pub fn model_status(&self, model_id: &str) -> Result<MlxModelStatus> {
        self.store.model_status(model_id)
    }

    /// `mlx_download_model`
    pub async fn download(&self, model_id: &str) -> Result<DownloadOutcome> {
        self.store.download(model_id).await
    }

    /// `mlx_cancel_download`: returns the id of the model whose download stops.
    pub fn cancel_download(&self) -> Result<String> {
        self.store.cancel_download()
    }

    /// `mlx_retry_download`
    pub async fn retry_download(&self) -> Result<DownloadOutcome> {
        self.store.retry_download().await
    }

    /// `mlx_delete_model`
    pub fn delete_model(&self, model_id: &str) -> Result<DeleteReport> {
        self.store.delete_model(model_id)
    }
}
