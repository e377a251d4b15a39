//! The sidecar supervisor and client against the real python-backend sidecar (uv, FastAPI,
//! mlx-lm on the CPU) and the real tiny model, plus small stand-in servers for the ways a
//! sidecar can fail to start. uv must be installed: these tests fail, never skip, without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use local_mlx::error::SidecarError;
use local_mlx::internals::sidecar::{
    FinishReason, GenerateChunk, GenerateRequest, Phase, ServerState, SidecarSupervisor, UvSearch,
};
use local_mlx::manager::SidecarConfig;

use local_mlx::chat::ChatMessage;
use test_support::workspace_root;

fn uv() -> PathBuf {
    local_mlx::manager::SidecarConfig::find_uv(None)
        .expect("uv must be installed to run the sidecar tests (see .ci/run)")
}

/// The tiny random-weight model, built once by tools/build_fixtures.py (cached on disk).
fn tiny_model() -> PathBuf {
    static TINY: OnceLock<PathBuf> = OnceLock::new();
    TINY.get_or_init(|| test_support::fixture("tiny").path).clone()
}

/// The tiny model with a 32k context: a generation of 8000 tokens runs for seconds.
fn long_tiny(tmp: &Path) -> PathBuf {
    let dst = tmp.join("tiny-long");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(tiny_model()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let config = dst.join("config.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json["max_position_embeddings"] = 32768.into();
    std::fs::write(&config, json.to_string()).unwrap();
    dst
}

fn config(tmp: &Path) -> SidecarConfig {
    let mut config = SidecarConfig::in_dir(workspace_root().join("python-backend"));
    config.log_path = Some(tmp.join("sidecar.log"));
    config.ready_timeout = Duration::from_secs(120);
    config
}

/// A phase recorder for `ensure_running`.
#[derive(Clone, Default)]
struct Phases(Arc<Mutex<Vec<Phase>>>);

impl Phases {
    fn record(&self) -> impl FnMut(Phase) + Send + 'static {
        let phases = self.0.clone();
        move |phase| phases.lock().unwrap().push(phase)
    }
    fn take(&self) -> Vec<Phase> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Gone, or a zombie waiting for a parent that is not ours to reap it.
fn is_gone(pid: u32) -> bool {
    !test_support::process_alive(pid)
}

async fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    is_gone(pid)
}

fn kill9(pid: u32) {
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
}

/// A backend folder of our own: a pyproject without dependencies, its lock, and `server`.
fn fake_backend(tmp: &Path, server: &str) -> PathBuf {
    fake_backend_with(tmp, server, "")
}

/// A backend folder with `dependencies` (a TOML list's inside), its lock, and `server`.
fn fake_backend_with(tmp: &Path, server: &str, dependencies: &str) -> PathBuf {
    let dir = tmp.join("backend");
    std::fs::create_dir_all(&dir).unwrap();
    let pyproject = format!(
        "[project]\nname = \"fake-sidecar\"\nversion = \"0\"\nrequires-python = \">=3.10\"\n\
         dependencies = [{dependencies}]\n\n[tool.uv]\npackage = false\n"
    );
    std::fs::write(dir.join("pyproject.toml"), pyproject).unwrap();
    std::fs::write(dir.join("server.py"), server).unwrap();
    let lock = Command::new(uv())
        .args(["lock", "--offline", "--project"])
        .arg(&dir)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(lock.status.success(), "uv lock: {}", String::from_utf8_lossy(&lock.stderr));
    dir
}

/// A stdlib stand-in that keeps the process contract (token, ready line, /status, stdin).
const CONTRACT_SERVER: &str = r#"
import http.server, json, os, sys, threading
token = os.environ.pop("LOCAL_MLX_TOKEN")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer " + token
        body = json.dumps({"status": "running", "model_loaded": False, "model_path": None, "pid": os.getpid()} if ok else {"detail": "no"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print("fake sidecar starting", file=sys.stderr, flush=True)
print(f"LOCAL_MLX_READY port={srv.server_address[1]}", flush=True)
srv.serve_forever()
"#;

#[tokio::test]
async fn spawns_reads_the_ready_line_and_answers_status() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    assert!(!supervisor.is_running());
    let phases = Phases::default();
    let client = supervisor.ensure_running(phases.record()).await.unwrap();
    let seen = phases.take();
    assert!(seen.ends_with(&[Phase::StartingServer, Phase::Ready]), "{seen:?}");

    let status = client.status().await.unwrap();
    assert_eq!(status.status, "running");
    assert!(!status.model_loaded);
    assert_eq!(status.state, Some(ServerState::Idle));
    assert!(supervisor.is_running());

    // A live sidecar is reused, silently.
    let again = supervisor.ensure_running(phases.record()).await.unwrap();
    assert_eq!(again.port(), client.port());
    assert!(phases.take().is_empty());

    let log = std::fs::read_to_string(tmp.path().join("sidecar.log")).unwrap();
    assert!(log.contains("serving on"), "the log holds the sidecar's stderr:\n{log}");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    let raw = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/status", client.base_url());
    assert_eq!(raw.get(&url).send().await.unwrap().status(), 401);
    let wrong = raw.get(&url).bearer_auth("0".repeat(64)).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let load = raw
        .post(format!("{}/load", client.base_url()))
        .json(&serde_json::json!({"model_path": tiny_model()}))
        .send()
        .await
        .unwrap();
    assert_eq!(load.status(), 401);
    assert!(!client.status().await.unwrap().model_loaded, "a refused request does nothing");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn loads_generates_streams_and_unloads_the_tiny_model() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    let tiny = tiny_model();

    let loaded = client.load(&tiny).await.unwrap();
    assert_eq!(loaded.status, "loaded");
    assert_eq!(Path::new(&loaded.model_path), tiny);
    assert_eq!(client.status().await.unwrap().state, Some(ServerState::Ready));

    let mut request = GenerateRequest::new(vec![ChatMessage::user("Fix this: hello world")]);
    request.max_tokens = 12;
    let answer = client.generate(&request).await.unwrap();
    assert!(answer.tokens_generated >= 1 && answer.tokens_generated <= 12, "{answer:?}");
    assert!(answer.prompt_tokens.unwrap() > 0);
    assert!(answer.finish_reason.is_some());
    assert!(!answer.response.is_empty(), "{answer:?}");

    let mut stream = client.generate_stream(&request).await.unwrap();
    let (mut pieces, mut done) = (Vec::new(), None);
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            GenerateChunk::Token(text) => pieces.push(text),
            GenerateChunk::Done(response) => done = Some(response),
        }
    }
    let done = done.expect("the stream ends with the final answer");
    assert!(!pieces.is_empty());
    assert_eq!(pieces.concat(), done.response);

    let mut called = String::new();
    let with = client.generate_with(&request, |piece| called.push_str(piece)).await.unwrap();
    assert_eq!(called, with.response);

    let unloaded = client.unload().await.unwrap();
    assert_eq!(unloaded.status, "unloaded");
    assert!(!unloaded.model_loaded);
    let status = client.status().await.unwrap();
    assert!(!status.model_loaded && status.model_path.is_none());
    let err = client.generate(&request).await.unwrap_err();
    assert!(matches!(err, SidecarError::NoModelLoaded), "{err:?}");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn on_linux_the_sidecar_runs_mlx_with_openblas_and_fp32_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    client.load(&tiny_model()).await.unwrap();
    let status = client.status().await.unwrap();
    let blas = status.blas.clone().expect("the status names the BLAS once MLX is imported");
    let weights = status.weights.clone().expect("the status names the weights' dtype");
    let openblas = cfg!(target_os = "linux") && local_mlx::internals::sidecar::blas::missing_warning().is_none();
    if openblas {
        // tools/ensure-system-deps.sh installs it: the supervisor must have preloaded it.
        assert!(blas.starts_with("OpenBLAS ("), "{status:?}");
        assert_eq!(weights, "float32", "{status:?}");
    } else {
        assert!(!blas.starts_with("OpenBLAS"), "{status:?}");
        assert_eq!(weights, "4-bit", "{status:?}");
    }
    let mut request = GenerateRequest::new(vec![ChatMessage::user("Fix this: hello world")]);
    request.max_tokens = 4;
    assert!(client.generate(&request).await.unwrap().tokens_generated >= 1);
    supervisor.shutdown().await;
}

#[tokio::test]
async fn bad_requests_become_errors_a_user_understands() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();

    let missing = tmp.path().join("no-such-model");
    let err = client.load(&missing).await.unwrap_err();
    assert!(matches!(err, SidecarError::ModelLoad { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

    let err = client.generate(&GenerateRequest::new(vec![ChatMessage::user("hi")])).await.unwrap_err();
    assert!(matches!(err, SidecarError::NoModelLoaded), "{err:?}");
    assert_eq!(
        local_mlx::Error::from(err).kind(),
        local_mlx::ErrorKind::NoModelLoaded,
        "the frontend can branch on it"
    );

    client.load(&tiny_model()).await.unwrap();
    let mut request = GenerateRequest::new(vec![ChatMessage::user("hi")]);
    request.max_tokens = 0;
    let err = client.generate(&request).await.unwrap_err();
    assert!(matches!(err, SidecarError::BadRequest { .. }), "{err:?}");
    assert!(err.to_string().contains("max_tokens must be between 1 and 8192"), "{err}");
    let err = client.generate_stream(&request).await.err().expect("refused before streaming");
    assert!(matches!(err, SidecarError::BadRequest { .. }), "{err:?}");
    supervisor.shutdown().await;
}

#[test]
fn uv_not_found_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("no").join("uv");
    let search = UvSearch {
        explicit: Some(bogus.clone()),
        exe_dir: Some(tmp.path().to_path_buf()),
        path_var: Some(std::ffi::OsString::new()),
        home: Some(tmp.path().to_path_buf()),
        system_dirs: vec![],
    };
    let err = search.find().unwrap_err();
    assert!(matches!(err, SidecarError::UvNotFound { .. }), "{err:?}");
    let message = err.to_string();
    for needle in ["pip install uv", "https://docs.astral.sh/uv/", "settings", &bogus.display().to_string()] {
        assert!(message.contains(needle), "{needle:?} missing from: {message}");
    }
}

#[tokio::test]
async fn a_missing_backend_folder_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(SidecarConfig::in_dir(tmp.path().join("nowhere")));
    let err = supervisor.ensure_running(|_| {}).await.unwrap_err();
    assert!(matches!(err, SidecarError::BackendNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("LOCAL_MLX_BACKEND_DIR"), "{err}");
}

#[tokio::test]
async fn a_first_run_reports_the_environment_sync_then_skips_it() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = fake_backend(tmp.path(), CONTRACT_SERVER);
    let mut config = SidecarConfig::in_dir(&backend);
    config.log_path = Some(tmp.path().join("sidecar.log"));
    let supervisor = SidecarSupervisor::new(config);
    let phases = Phases::default();
    let client = supervisor.ensure_running(phases.record()).await.unwrap();
    assert_eq!(phases.take(), [Phase::SyncingEnvironment, Phase::StartingServer, Phase::Ready]);
    assert!(backend.join(".venv/pyvenv.cfg").is_file());
    assert_eq!(client.status().await.unwrap().status, "running");
    let log = std::fs::read_to_string(tmp.path().join("sidecar.log")).unwrap();
    assert!(log.contains("uv sync") && log.contains("fake sidecar starting"), "{log}");
    // The log can hold the prompt: readable by the user alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tmp.path().join("sidecar.log")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    supervisor.shutdown().await;
    assert!(!supervisor.is_running());
    supervisor.ensure_running(phases.record()).await.unwrap();
    assert_eq!(phases.take(), [Phase::StartingServer, Phase::Ready], "synced once is enough");
    let log = std::fs::read_to_string(tmp.path().join("sidecar.log")).unwrap();
    assert_eq!(log.matches("fake sidecar starting").count(), 2, "both starts in one log: {log}");
    assert!(!tmp.path().join("sidecar.log.1").exists(), "no rotation below the size cap");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_failing_sync_returns_uvs_own_message() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = fake_backend(tmp.path(), CONTRACT_SERVER);
    std::fs::remove_file(backend.join("uv.lock")).unwrap();
    let supervisor = SidecarSupervisor::new(SidecarConfig::in_dir(&backend));
    let phases = Phases::default();
    let err = supervisor.ensure_running(phases.record()).await.unwrap_err();
    assert_eq!(phases.take(), [Phase::SyncingEnvironment]);
    assert!(matches!(err, SidecarError::SyncFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("uv.lock"), "uv's own words: {err}");
}

/// A uv path from settings that runs but fails (a broken or wrong program) is named in
/// the error, so the user knows which setting to fix; uv found on the machine is not.
#[tokio::test]
async fn a_failing_uv_from_settings_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = fake_backend(tmp.path(), CONTRACT_SERVER);
    let broken_uv = tmp.path().join("broken-uv");
    std::fs::write(&broken_uv, "#!/bin/sh\necho 'not really uv' >&2\nexit 7\n").unwrap();
    std::fs::set_permissions(&broken_uv, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut config = SidecarConfig::in_dir(&backend);
    config.uv_path = Some(broken_uv.clone());
    let err = SidecarSupervisor::new(config).ensure_running(|_| {}).await.unwrap_err();
    assert!(matches!(err, SidecarError::SyncFailed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&broken_uv.display().to_string()) && message.contains("from settings"), "{message}");
    assert!(message.contains("not really uv"), "uv's own words are kept: {message}");
}

#[tokio::test]
async fn a_server_that_crashes_at_start_gives_exited_with_its_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let server = "import sys\nprint('boom: cannot import mlx', file=sys.stderr)\nsys.exit(3)\n";
    let backend = fake_backend(tmp.path(), server);
    let supervisor = SidecarSupervisor::new(SidecarConfig::in_dir(&backend));
    let err = supervisor.ensure_running(|_| {}).await.unwrap_err();
    assert!(matches!(err, SidecarError::Exited { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("exit code 3") && message.contains("boom: cannot import mlx"), "{message}");
    assert!(!supervisor.is_running());
}

/// A backend whose server imports `helper`, a package installed from a wheel built here
/// (a zip; no build backend, no network).
fn backend_with_a_package(tmp: &Path, server: &str) -> PathBuf {
    let wheel = tmp.join("helper-0-py3-none-any.whl");
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("helper.py", "VALUE = 42\n")
    z.writestr("helper-0.dist-info/METADATA", "Metadata-Version: 2.1\nName: helper\nVersion: 0\n")
    z.writestr("helper-0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("helper-0.dist-info/RECORD", "helper.py,,\nhelper-0.dist-info/METADATA,,\nhelper-0.dist-info/WHEEL,,\nhelper-0.dist-info/RECORD,,\n")
"#;
    let built = Command::new(uv())
        .args(["run", "--no-project", "--offline", "python", "-c", script])
        .arg(&wheel)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    fake_backend_with(tmp, server, &format!("\"helper @ file://{}\"", wheel.display()))
}

/// `helper.py` deleted from the venv, its metadata kept: uv (and a plain sync) still
/// count the package as installed.
fn delete_helper_module(backend: &Path) {
    let lib = backend.join(".venv/lib");
    let python = std::fs::read_dir(&lib).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(python.join("site-packages/helper.py")).unwrap();
}

#[tokio::test]
async fn a_module_deleted_from_the_venv_is_reinstalled_by_one_resync() {
    let tmp = tempfile::tempdir().unwrap();
    let server = format!("import helper\n{CONTRACT_SERVER}");
    let backend = backend_with_a_package(tmp.path(), &server);
    let mut config = SidecarConfig::in_dir(&backend);
    config.log_path = Some(tmp.path().join("sidecar.log"));
    let supervisor = SidecarSupervisor::new(config);
    supervisor.ensure_running(|_| {}).await.unwrap();
    supervisor.shutdown().await;

    delete_helper_module(&backend);
    let phases = Phases::default();
    let client = supervisor.ensure_running(phases.record()).await.unwrap();
    assert_eq!(
        phases.take(),
        [Phase::StartingServer, Phase::SyncingEnvironment, Phase::StartingServer, Phase::Ready],
        "one failed start, one re-sync, one start"
    );
    assert_eq!(client.status().await.unwrap().status, "running");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_server_that_still_fails_after_the_resync_names_its_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let server = "import sys\nprint('boom: cannot import mlx', file=sys.stderr)\nsys.exit(3)\n";
    let backend = fake_backend(tmp.path(), server);
    let mut config = SidecarConfig::in_dir(&backend);
    config.log_path = Some(tmp.path().join("sidecar.log"));
    let supervisor = SidecarSupervisor::new(config);
    // The first start syncs (no venv yet): its failure is the server's, not re-synced.
    let first = supervisor.ensure_running(|_| {}).await.unwrap_err();
    assert!(matches!(first, SidecarError::Exited { .. }), "{first:?}");
    // The next start has a synced venv: it fails, re-syncs once, fails again.
    let phases = Phases::default();
    let err = supervisor.ensure_running(phases.record()).await.unwrap_err();
    assert_eq!(phases.take(), [Phase::StartingServer, Phase::SyncingEnvironment, Phase::StartingServer]);
    let message = err.to_string();
    let venv = backend.join(".venv");
    assert!(message.contains(&venv.display().to_string()) && message.contains("local-mlx setup"), "{message}");
    assert!(message.contains("boom: cannot import mlx"), "{message}");
    let log = std::fs::read_to_string(tmp.path().join("sidecar.log")).unwrap();
    assert_eq!(log.matches("--- uv sync").count(), 2, "one sync, one re-sync: {log}");
    assert!(!supervisor.is_running());
}

#[tokio::test]
async fn a_server_that_never_gets_ready_is_killed_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let server = "import os, sys, time\n\
                  open(os.path.join(os.path.dirname(__file__), 'pid'), 'w').write(str(os.getpid()))\n\
                  print('warming up forever', file=sys.stderr, flush=True)\n\
                  time.sleep(600)\n";
    let backend = fake_backend(tmp.path(), server);
    let mut config = SidecarConfig::in_dir(&backend);
    config.ready_timeout = Duration::from_secs(3);
    let supervisor = SidecarSupervisor::new(config);
    let started = Instant::now();
    let err = supervisor.ensure_running(|_| {}).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SidecarError::NeverReady { secs: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("warming up forever"), "{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let pid: u32 = std::fs::read_to_string(backend.join("pid")).unwrap().parse().unwrap();
    assert!(wait_gone(pid, Duration::from_secs(2)).await, "python {pid} outlived the timeout");
}

#[tokio::test]
async fn shutdown_during_a_start_cancels_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = "import os, time\n\
                  open(os.path.join(os.path.dirname(__file__), 'pid'), 'w').write(str(os.getpid()))\n\
                  time.sleep(600)\n";
    let backend = fake_backend(tmp.path(), server);
    let supervisor = Arc::new(SidecarSupervisor::new(SidecarConfig::in_dir(&backend)));
    let starting = tokio::spawn({
        let supervisor = supervisor.clone();
        async move { supervisor.ensure_running(|_| {}).await }
    });
    let pid_file = backend.join("pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pid_file.is_file() || std::fs::read_to_string(&pid_file).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the server never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let started = Instant::now();
    assert!(supervisor.shutdown().await.is_none(), "nothing was running yet");
    let err = starting.await.unwrap().unwrap_err();
    assert!(matches!(err, SidecarError::Stopped { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(wait_gone(pid, Duration::from_secs(2)).await, "python {pid} outlived the cancelled start");
}

#[tokio::test]
async fn a_killed_sidecar_is_restarted_by_ensure_running() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let first = supervisor.ensure_running(|_| {}).await.unwrap();
    let python = first.status().await.unwrap().pid.unwrap();
    let uv_pid = supervisor.pid().unwrap();
    kill9(python);
    assert!(wait_gone(uv_pid, Duration::from_secs(5)).await, "uv follows its python");
    assert!(!supervisor.is_running());

    let phases = Phases::default();
    let second = supervisor.ensure_running(phases.record()).await.unwrap();
    assert_eq!(phases.take(), [Phase::StartingServer, Phase::Ready]);
    let new_python = second.status().await.unwrap().pid.unwrap();
    assert_ne!(new_python, python);
    assert_ne!(supervisor.pid().unwrap(), uv_pid);
    let err = first.status().await.unwrap_err();
    assert!(err.process_died() || matches!(err, SidecarError::Unreachable { .. }), "{err:?}");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    let python = client.status().await.unwrap().pid.unwrap();
    let uv_pid = supervisor.pid().unwrap();
    let started = Instant::now();
    let exit = supervisor.shutdown().await.expect("it was running");
    assert_eq!(exit.code, Some(0), "a clean exit on SIGTERM: {exit}");
    assert!(started.elapsed() < Duration::from_secs(3), "SIGTERM was enough: {:?}", started.elapsed());
    assert!(!supervisor.is_running());
    assert!(is_gone(uv_pid), "uv {uv_pid} is still running");
    assert!(wait_gone(python, Duration::from_secs(1)).await, "python {python} is still running");
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, SidecarError::Stopped { .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_the_supervisor_leaves_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    let python = client.status().await.unwrap().pid.unwrap();
    let uv_pid = supervisor.pid().unwrap();
    drop(supervisor);
    assert!(is_gone(uv_pid), "uv {uv_pid} is still running");
    assert!(wait_gone(python, Duration::from_secs(1)).await, "python {python} is still running");
}

#[tokio::test]
async fn a_request_in_flight_when_the_sidecar_dies_is_crashed() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    client.load(&long_tiny(tmp.path())).await.unwrap();
    let python = client.status().await.unwrap().pid.unwrap();

    let mut request = GenerateRequest::new(vec![ChatMessage::user("go on and on")]);
    request.max_tokens = 8000;
    let generating = tokio::spawn({
        let client = client.clone();
        async move { client.generate(&request).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.status().await.unwrap().generating != Some(true) {
        assert!(Instant::now() < deadline, "the generation never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill9(python);
    let err = generating.await.unwrap().unwrap_err();
    assert!(matches!(err, SidecarError::Crashed { what: "generate", .. }), "{err:?}");
    assert!(err.process_died());
    let message = err.to_string();
    assert!(message.contains("died during generate") && message.contains("restarted"), "{message}");
    assert!(message.contains("mlx and mlx-lm imported"), "the stderr tail is quoted: {message}");

    let again = supervisor.ensure_running(|_| {}).await.unwrap();
    assert!(!again.status().await.unwrap().model_loaded, "a new process starts empty");
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_by_a_dying_sidecar_ends_in_crashed() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    client.load(&long_tiny(tmp.path())).await.unwrap();
    let python = client.status().await.unwrap().pid.unwrap();
    let mut request = GenerateRequest::new(vec![ChatMessage::user("go on and on")]);
    request.max_tokens = 8000;
    let mut stream = client.generate_stream(&request).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(GenerateChunk::Token(_)))));
    kill9(python);
    let last = loop {
        match stream.next().await.expect("the stream ends with an error, not silently") {
            Ok(GenerateChunk::Token(_)) => continue,
            Ok(GenerateChunk::Done(done)) => panic!("finished despite the kill: {done:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(last, SidecarError::Crashed { .. }), "{last:?}");
    assert!(stream.next().await.is_none());
    supervisor.shutdown().await;
}

#[tokio::test]
async fn finish_reason_length_when_max_tokens_is_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let supervisor = SidecarSupervisor::new(config(tmp.path()));
    let client = supervisor.ensure_running(|_| {}).await.unwrap();
    client.load(&long_tiny(tmp.path())).await.unwrap();
    let mut request = GenerateRequest::new(vec![ChatMessage::user("go on")]);
    request.max_tokens = 3;
    request.temperature = 0.0;
    let answer = client.generate(&request).await.unwrap();
    assert_eq!(answer.finish_reason, Some(FinishReason::Length), "{answer:?}");
    assert_eq!(answer.tokens_generated, 3);
    supervisor.shutdown().await;
}
