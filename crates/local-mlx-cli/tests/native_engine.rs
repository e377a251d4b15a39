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
