//! `local-mlx process`, the main job, as a user runs it: the real sidecar, the tiny
//! fixture model from a real hub, and the parent killed on purpose.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{processes_with, Env};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn process_prints_the_text_on_stdout_and_the_phases_on_stderr() {
    let env = Env::new().await;
    let output = env
        .run(
            &["process", "--model", &env.model, "--answer-within", "never", "um so i think we should uh meet tomorrow"],
            None,
        )
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let err = text(&output.stderr);
    for phase in ["starting the sidecar", "loading", "generating", "done in"] {
        assert!(err.contains(phase), "missing {phase:?} in:\n{err}");
    }
    // The random tiny model never finishes its answer, so the guard keeps the input.
    assert!(err.contains("warning:") && err.contains("kept the original"), "{err}");
    assert_eq!(text(&output.stdout).trim(), "um so i think we should uh meet tomorrow");
}

#[tokio::test(flavor = "multi_thread")]
async fn process_reads_stdin_and_json_has_text_timings_tokens_and_warnings() {
    let env = Env::new().await;
    let output = env
        .run(&["process", "--model", &env.model, "--answer-within", "never", "--json"], Some("hello there my friend\n"))
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["text"], "hello there my friend");
    assert!(json["tokens_generated"].as_u64().unwrap() > 0);
    assert!(json["timings"]["load_ms"].as_u64().unwrap() > 0);
    assert!(json["warnings"].as_array().unwrap().len() == 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn process_of_empty_text_or_a_missing_model_starts_nothing() {
    let env = Env::new().await;
    let output = env.run(&["process", "--model", &env.model, "   "], None).await;
    assert!(output.status.success());
    assert!(!text(&output.stderr).contains("starting the sidecar"));

    let output = env.run(&["process", "--model", "mlx-community/Qwen3-0.6B-4bit", "hello"], None).await;
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(err.contains("local-mlx pull mlx-community/Qwen3-0.6B-4bit"), "{err}");
    assert!(err.contains("local-mlx setup mlx-community/Qwen3-0.6B-4bit"), "the one command that gets it ready: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_cli_with_sigkill_leaves_no_sidecar_behind() {
    let env = Env::new().await;
    let marker = format!("{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let transcript = "so um we should probably uh move the meeting to thursday ".repeat(40);
    let mut child = env
        .command(&["process", "--model", &env.model, &transcript])
        .env("LOCAL_MLX_TEST_MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the sidecar (a descendant carrying the marker) is up and has said in
    // its log that the model is loaded: the CLI is then killed mid-call.
    let log = env.tmp.path().join("config/sidecar.log");
    let loaded = || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("model loaded in"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while processes_with(&marker).len() < 3 || !loaded() {
        assert!(Instant::now() < deadline, "the sidecar never loaded the model");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs in the CLI
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = processes_with(&marker);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orphaned sidecar processes: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
