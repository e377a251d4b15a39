//! [`TestHub`]: a running hub on 127.0.0.1, its shared state, and its shutdown.
//!
//! The hub is started in the caller's tokio runtime, so a `#[tokio::test]` owns its hub and
//! nothing outlives the test. Faults and stats are plain synchronous calls on the handle
//! because tests flip them between requests; only what may hash files is async.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::faults::{Fault, Faults};
use crate::rate_cap::RateCap;
use crate::repo::RepoIndex;
use crate::routes;
use crate::stats::{FileStats, Stats, StatsRecorder};

/// How long [`TestHub::shutdown`] waits for open connections before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to start a hub.
#[derive(Clone, Debug)]
pub struct Config {
    /// `repos_dir/<org>/<name>/...` is the repo `org/name`.
    pub repos_dir: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
    /// If set, every request except `/_test/...` and `/_lfs/...` must carry
    /// `Authorization: Bearer <token>` or gets 401.
    pub require_token: Option<String>,
    /// Bytes per second each file response may send at most, on its own: like a CDN
    /// edge that caps every connection, so parallel ranged requests add up.
    pub rate_cap: Option<u64>,
}

impl Config {
    pub fn new(repos_dir: impl Into<PathBuf>) -> Self {
        Config { repos_dir: repos_dir.into(), port: 0, require_token: None, rate_cap: None }
    }

    pub fn rate_cap(mut self, bytes_per_sec: u64) -> Self {
        self.rate_cap = Some(bytes_per_sec);
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn require_token(mut self, token: impl Into<String>) -> Self {
        self.require_token = Some(token.into());
        self
    }
}

/// What the routes share.
pub(crate) struct HubState {
    pub index: RepoIndex,
    pub faults: Faults,
    pub stats: StatsRecorder,
    pub require_token: Option<String>,
    pub addr: SocketAddr,
    pub shutdown: watch::Receiver<bool>,
    pub rate_cap: RateCap,
}

/// A running hub. Dropping it stops the server (connections close as their bodies notice).
pub struct TestHub {
    state: Arc<HubState>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestHub {
    /// Serves `repos_dir` on `127.0.0.1:<free port>`.
    pub async fn start(repos_dir: impl Into<PathBuf>) -> Result<TestHub> {
        Self::start_with(Config::new(repos_dir)).await
    }

    pub async fn start_with(config: Config) -> Result<TestHub> {
        let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
        let bind_error = |source| Error::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(HubState {
            index: RepoIndex::new(config.repos_dir),
            faults: Faults::default(),
            stats: StatsRecorder::default(),
            require_token: config.require_token,
            addr,
            shutdown: shutdown_rx.clone(),
            rate_cap: RateCap::new(config.rate_cap),
        });
        let app = routes::router(state.clone());
        let mut signal = shutdown_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|down| *down).await;
                })
                .await
        });
        tracing::info!(%addr, repos = %state.index.root().display(), "test hub listening");
        Ok(TestHub { state, shutdown, task: Some(task) })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: what `HF_ENDPOINT` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    pub fn repos_dir(&self) -> &Path {
        self.state.index.root()
    }

    /// Replaces the armed faults.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.state.faults.set(faults);
    }

    /// The armed faults, with what is left of their `times`.
    pub fn faults(&self) -> Vec<Fault> {
        self.state.faults.list()
    }

    /// Caps every file response at `bytes_per_sec` on its own (`None`: no cap).
    pub fn set_rate_cap(&self, bytes_per_sec: Option<u64>) {
        self.state.rate_cap.set(bytes_per_sec);
    }

    pub fn clear_faults(&self) {
        self.state.faults.set(Vec::new());
    }

    pub fn stats(&self) -> Stats {
        self.state.stats.snapshot()
    }

    /// Counters of one file (`repo` is `org/name`); zeros if it was never requested.
    pub fn file_stats(&self, repo: &str, path: &str) -> FileStats {
        self.state.stats.file_stats(repo, path)
    }

    pub fn reset_stats(&self) {
        self.state.stats.reset();
    }

    /// The current commit of `org/name` (hashes its files if not yet done).
    pub async fn commit(&self, repo: &str) -> Result<String> {
        Ok(self.state.index.snapshot(repo).await?.commit.clone())
    }

    /// Stops accepting, ends stalled bodies, and waits a bounded time for connections.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
