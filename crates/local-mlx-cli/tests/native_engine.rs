//! `LOCAL_MLX_ENGINE=native`: `local-mlx process` runs the model in the native engine's
//! worker (`local-mlx-engine`, built beside `local-mlx` by `cargo test --workspace`)
//! and answers as the sidecar does, with the same timings filled in.

mod common;

use common::{sigkill_mid_process_leaves_nothing, Env};

/// A prompt of the user's own: the transcript constraint is off for it.
const PROMPT: &str = "Clean up this dictation: ${output}";

fn worker() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_local-mlx")).with_file_name("local-mlx-engine");
    assert!(
        path.is_file(),
        "{} is missing: `cargo build -p local-mlx-engine` (after `source tools/ensure-mlx.sh`)",
        path.display()
    );
    path
}

async fn process_json(env: &Env, engine: &str, prompt: Option<&str>) -> std::process::Output {
    let mut args = vec!["process", "--model", &env.model, "--json"];
    if let Some(p) = prompt {
        args.extend(["--prompt", p]);
    }
    let mut command = env.command(&args);
    command.env("LOCAL_MLX_ENGINE", engine).env("LOCAL_MLX_ENGINE_BIN", worker());
    tokio::task::spawn_blocking(move || {
        command.stdin(std::process::Stdio::piped());
        let mut child =
            command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"um so the printer is uh broken again\n").unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `process --json` with `prompt` (`None`: the default one) through both engines: the
/// same answer, and the native one fills the same timings.
async fn assert_native_answers_as_the_sidecar(prompt: Option<&str>) {
    let env = Env::new().await;
    let native = process_json(&env, "native", prompt).await;
    assert!(native.status.success(), "{}", String::from_utf8_lossy(&native.stderr));
    let sidecar = process_json(&env, "sidecar", prompt).await;
    assert!(sidecar.status.success(), "{}", String::from_utf8_lossy(&sidecar.stderr));
    let (n, s): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&native.stdout).unwrap(), serde_json::from_slice(&sidecar.stdout).unwrap());
    for key in ["text", "tokens_generated", "prompt_tokens"] {
        assert_eq!(n[key], s[key], "{key}: native {n} vs sidecar {s}");
    }
    assert!(n["tokens_generated"].as_u64().unwrap() > 0);
    for timing in ["start_ms", "load_ms", "generate_ms"] {
        assert!(n["timings"][timing].is_u64(), "timings.{timing} missing: {n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn process_with_the_native_engine_answers_as_the_sidecar_does() {
    assert_native_answers_as_the_sidecar(Some(PROMPT)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_default_prompt_the_native_engine_constrains_as_the_sidecar_does() {
    assert_native_answers_as_the_sidecar(None).await; // the default prompt: constraint on
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_cli_with_sigkill_leaves_no_native_worker_behind() {
    let env = Env::new().await;
    let worker = worker();
    let vars = [("LOCAL_MLX_ENGINE", "native".as_ref()), ("LOCAL_MLX_ENGINE_BIN", worker.as_os_str())];
    let args = ["--prompt", PROMPT];
    sigkill_mid_process_leaves_nothing(&env, &args, &vars, 2, "local-mlx-engine: loaded", "native worker").await;
}

/// The settings' `engine` field chooses the engine, `LOCAL_MLX_ENGINE` overrides it, and
/// `status` says which is in use and who chose it.
#[tokio::test(flavor = "multi_thread")]
async fn the_settings_engine_field_chooses_the_engine_and_the_variable_overrides_it() {
    let env = Env::new().await;
    let status_line = |variable: Option<&str>| {
        let mut command = env.command(&["status"]);
        command.env_remove("LOCAL_MLX_ENGINE");
        if let Some(engine) = variable {
            command.env("LOCAL_MLX_ENGINE", engine);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr
            .lines()
            .find(|l| l.starts_with("engine: "))
            .unwrap_or_else(|| panic!("no engine line: {stderr}"))
            .to_string()
    };
    assert_eq!(status_line(None), "engine: sidecar (Python, mlx-lm), the settings' engine");
    let settings = env.tmp.path().join("config/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, r#"{"engine": "native"}"#).unwrap();
    assert_eq!(status_line(None), "engine: native (local-mlx-engine, MLX from Rust), the settings' engine");
    assert_eq!(status_line(Some("sidecar")), "engine: sidecar (Python, mlx-lm), set by LOCAL_MLX_ENGINE");

    // `process` with only the setting runs the native worker (its load line in the log).
    let mut command = env.command(&["process", "--model", &env.model, "--prompt", PROMPT, "um so hello there"]);
    command.env_remove("LOCAL_MLX_ENGINE").env("LOCAL_MLX_ENGINE_BIN", worker());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = std::fs::read_to_string(env.tmp.path().join("config/sidecar.log")).unwrap();
    assert!(log.contains("local-mlx-engine: loaded"), "the native worker did not run: {log}");
}
