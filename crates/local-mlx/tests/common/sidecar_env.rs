//! Set-up for end-to-end tests through the real sidecar: the fixture models served by a
//! real test-hub, downloaded into a temp cache, and a manager whose sidecar runs the
//! workspace's python-backend.
#![allow(dead_code)]

use std::sync::Arc;

use local_mlx::manager::{ManagerConfig, SidecarConfig};
use local_mlx::settings::{MlxSettings, ModelUnloadTimeout};
use local_mlx::{EventSink, MlxModelManager, RecordingSink};
use test_hub::TestHub;
use test_support::fixture;

use super::{test_config, workspace_root};

pub struct SidecarEnv {
    pub tmp: tempfile::TempDir,
    pub hub: TestHub,
    pub sink: RecordingSink,
    pub manager: Arc<MlxModelManager>,
    pub model: String,
}

impl SidecarEnv {
    /// The fixture `key` downloaded and selected, with `timeout` for idle unload.
    pub async fn new(key: &str, timeout: ModelUnloadTimeout) -> SidecarEnv {
        Self::with_sink(key, timeout, |sink| Arc::new(sink)).await
    }

    /// [`SidecarEnv::new`] with the manager's sink wrapped by `wrap` (which must pass
    /// events on to the recording sink it is given).
    pub async fn with_sink(
        key: &str,
        timeout: ModelUnloadTimeout,
        wrap: impl FnOnce(RecordingSink) -> Arc<dyn EventSink>,
    ) -> SidecarEnv {
        let fixture = tokio::task::spawn_blocking({
            let key = key.to_string();
            move || fixture(&key)
        })
        .await
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let hub = TestHub::start(&fixture.repos).await.unwrap();
        let sink = RecordingSink::new();
        let mut sidecar = SidecarConfig::in_dir(workspace_root().join("python-backend"));
        sidecar.log_path = Some(tmp.path().join("config/sidecar.log"));
        // The embedder's settings, passed in: the manager keeps no file.
        let settings = MlxSettings {
            selected_model: fixture.repo_id.clone(),
            model_unload_timeout: timeout,
            // The tests read the model's own answers: none is cut on a busy machine.
            answer_within_seconds: None,
            ..MlxSettings::default()
        };
        let config = ManagerConfig {
            hub: test_config(&hub.url(), &tmp.path().join("hf/hub")),
            sidecar,
            settings,
            custom_models: Vec::new(),
        };
        let manager = Arc::new(MlxModelManager::new(config, wrap(sink.clone())).unwrap());
        manager.download(&fixture.repo_id).await.unwrap();
        SidecarEnv { tmp, hub, sink, manager, model: fixture.repo_id }
    }
}
