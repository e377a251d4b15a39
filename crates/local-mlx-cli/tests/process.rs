//! `local-mlx process`, the main job, as a user runs it: the real sidecar, the tiny
//! fixture model from a real hub, and the parent killed on purpose.

mod common;

use common::{sigkill_mid_process_leaves_nothing, Env};

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
    // The random tiny model never finishes its answer, so the clean-up check keeps the input.
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
    assert_eq!(json["clean_up"]["kept_original"], "cut_off", "{json}");
    assert!(json["clean_up"]["warnings"].as_array().unwrap().len() == 1);
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
    // uv, Python and the CLI carry the marker.
    sigkill_mid_process_leaves_nothing(&env, &[], &[], 3, "model loaded in", "sidecar").await;
}
