//! What the terminal shows for bad or hostile input: each cause once, no raw control
//! characters, and a message that names what was wrong (stdin, the prompt, the endpoint,
//! a corrupt cache entry). None of these needs the sidecar; none of them starts it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { tmp: tempfile::tempdir().unwrap() }
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    /// Runs `local-mlx` with `stdin` piped in; the endpoint is nowhere reachable.
    fn run_with(&self, args: &[&str], stdin: &[u8], envs: &[(&str, &Path)]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-mlx"))
            .args(args)
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("HF_HUB_CACHE", self.cache())
            .env("LOCAL_MLX_CONFIG_DIR", self.tmp.path().join("config"))
            // A backend folder that does not exist: starting the sidecar would fail loudly.
            .env("LOCAL_MLX_BACKEND_DIR", self.tmp.path().join("no-backend"))
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, b"", &[])
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One line, `error: ` first, and no control character but the final newline.
fn assert_clean_error(output: &Output) -> String {
    assert!(!output.status.success());
    let err = stderr(output);
    assert!(err.starts_with("error: ") && err.ends_with('\n'), "{err:?}");
    assert!(!err.trim_end_matches('\n').chars().any(char::is_control), "raw control characters: {err:?}");
    err
}

#[test]
fn an_os_error_is_printed_once() {
    let env = Env::new();
    // A file where the cache folder should be.
    std::fs::write(env.tmp.path().join("file"), b"x").unwrap();
    let cache = env.tmp.path().join("file").join("hub");
    let output = env.run_with(&["rm", "test-org/model"], b"", &[("HF_HUB_CACHE", &cache)]);
    let err = assert_clean_error(&output);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(err.contains("Not a directory"), "{err}");

    let output = env.run_with(&["rm", "test-org/model", "--json"], b"", &[("HF_HUB_CACHE", &cache)]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = json["error"]["message"].as_str().unwrap();
    assert_eq!(message.matches("os error").count(), 1, "{message}");
}

#[test]
fn control_characters_in_what_we_echo_are_escaped() {
    let env = Env::new();
    let output = env.run(&["pull", "org/\u{1b}]0;pwned\u{7}\u{1b}[2J"]);
    let err = assert_clean_error(&output);
    assert!(err.contains(r"\u{1b}[2J"), "{err}");
}

#[test]
fn status_says_a_ref_is_corrupt_escaped_and_what_to_do() {
    let env = Env::new();
    let refs = env.cache().join("models--test-org--model").join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("main"), "../../\u{1b}[31mother").unwrap();
    let output = env.run(&["status", "test-org/model"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("corrupt") && out.contains("local-mlx pull test-org/model"), "{out}");
    assert!(!out.trim_end().lines().any(|l| l.chars().any(char::is_control)), "{out:?}");
}

#[test]
fn invalid_utf8_on_stdin_names_stdin() {
    let env = Env::new();
    let output = env.run_with(&["process", "--model", "test-org/model"], b"caf\xe9 \xff", &[]);
    let err = assert_clean_error(&output);
    assert!(err.contains("stdin") && err.contains("UTF-8"), "{err}");
    // A failure of the CLI's own says whose it is with --json, not a bare "error".
    let output = env.run_with(&["process", "--model", "test-org/model", "--json"], b"caf\xe9 \xff", &[]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "process_failed", "{json}");
}

#[test]
fn a_prompt_that_is_empty_or_lacks_the_placeholder_is_refused() {
    let env = Env::new();
    for prompt in ["", "Fix the grammar."] {
        let output = env.run(&["process", "--model", "test-org/model", "--prompt", prompt, "hello there"]);
        let err = assert_clean_error(&output);
        assert!(err.contains("${output}") && err.contains("prompt"), "{prompt:?}: {err}");
        assert!(!err.contains("not downloaded"), "the prompt is checked first: {err}");
    }
}

#[test]
fn an_endpoint_that_is_not_a_url_is_named_and_not_retried() {
    let env = Env::new();
    let output = env.run_with(&["pull", "test-org/model"], b"", &[("HF_ENDPOINT", Path::new("not a url"))]);
    let err = assert_clean_error(&output);
    assert!(err.contains("HF_ENDPOINT") && err.contains("not a url"), "{err}");
    assert!(!err.contains("attempts"), "{err}");
}
