//! `local-mlx serve` as a user (or launchd, systemd, a script) runs it: the real binary
//! on port 0, the real sidecar and the *tiny* model pulled from a real test hub.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use test_support::process_alive;

use serde_json::{json, Value};

mod common;

use common::Env;

/// `local-mlx serve --port 0 <extra>` with no key from the caller's environment, and
/// the base URL from its first stdout line.
fn serve(env: &Env, extra: &[&str]) -> (Child, String) {
    serve_with_stdin(env, extra, None)
}

async fn chat(url: &str, model: &str) -> (u16, Value) {
    let body = json!({"model": model, "max_tokens": 6, "messages": [{"role": "user", "content": "hello"}]});
    let response = reqwest::Client::new().post(format!("{url}/chat/completions")).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Every process below `root` (children, grandchildren...), from /proc's parent links.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after_name = stat.rsplit_once(") ")?.1;
            let mut fields = after_name.split(' ');
            let state = fields.next()?;
            let parent = fields.next()?.parse().ok()?;
            (state != "Z").then_some((pid, parent))
        })
        .collect();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    found.remove(0);
    found
}

/// Wait (a hang guard, generous for a loaded machine) until none of `pids` is alive.
async fn wait_gone(pids: &[u32], within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|pid| process_alive(*pid)) {
        let left: Vec<_> = pids.iter().filter(|pid| process_alive(**pid)).collect();
        assert!(Instant::now() < deadline, "{what}: still running {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn signal(child: &Child, signal: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// One answered request, then the sidecar's processes (which that request started).
async fn answer_and_find_the_sidecar(child: &Child, url: &str, model: &str) -> Vec<u32> {
    let (status, answer) = chat(url, model).await;
    assert_eq!(status, 200, "{answer}");
    let sidecar = descendants(child.id());
    assert!(!sidecar.is_empty(), "a request starts the sidecar");
    sidecar
}

/// Send `signal`, expect a clean exit (code 0) and the sidecar gone.
async fn stop_cleanly(mut child: Child, signal_number: i32, sidecar: &[u32], what: &str) {
    signal(&child, signal_number);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{what} is a clean stop: {status:?}");
    wait_gone(sidecar, Duration::from_secs(10), what).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_its_url_first_answers_and_sigterm_leaves_no_sidecar() {
    let env = Env::new().await;
    let (child, url) = serve(&env, &[]);
    let sidecar = answer_and_find_the_sidecar(&child, &url, &env.model).await;
    stop_cleanly(child, libc::SIGTERM, &sidecar, "SIGTERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_with_sigkill_leaves_no_sidecar() {
    let env = Env::new().await;
    let (mut child, url) = serve(&env, &[]);
    let sidecar = answer_and_find_the_sidecar(&child, &url, &env.model).await;
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    // The sidecar exits when the pipe from its parent closes.
    wait_gone(&sidecar, Duration::from_secs(20), "after SIGKILL").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_stops_the_sidecar_when_idle_and_the_next_request_starts_it() {
    let env = Env::new().await;
    let (child, url) = serve(&env, &["--keep-alive", "sec15"]);
    let first = answer_and_find_the_sidecar(&child, &url, &env.model).await;
    // 15 s of idleness, then the unload and the stop: a few seconds more at most.
    wait_gone(&first, Duration::from_secs(15 + 20), "after the keep-alive expired").await;
    let health: Value = reqwest::get(url.replace("/v1", "/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "idle", "{health}");

    // The next request starts the sidecar again; Ctrl-C stops it as cleanly as SIGTERM.
    let second = answer_and_find_the_sidecar(&child, &url, &env.model).await;
    stop_cleanly(child, libc::SIGINT, &second, "Ctrl-C").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_or_an_open_host_without_a_key_is_one_clear_line_and_exit_1() {
    let env = Env::new().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = env.command(&["serve", "--host", "127.0.0.1", "--port", &port]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&port) && err.contains("--port"), "{err}");
    assert!(output.stdout.is_empty(), "no URL line for a server that never started");

    let output = env.command(&["serve", "--host", "0.0.0.0", "--port", "0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--api-key") && err.contains("LOCAL_MLX_API_KEY"), "{err}");

    let output = env.command(&["serve", "--port", "0", "--keep-alive", "sometimes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--keep-alive"));

    let output = env.command(&["serve", "--port", "0", "--answer-within", "immediately"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--answer-within") && err.contains("never let the model answer"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_on_the_command_line_is_warned_about_and_an_empty_key_variable_is_unset() {
    let env = Env::new().await;
    // A port in use ends `serve` right after its options are read.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let key_file = env.tmp.path().join("api-key");
    std::fs::write(&key_file, "file-key-42\n").unwrap();
    let key_file = key_file.to_str().unwrap();
    let stderr = |extra: &[&str], key_env: Option<&str>| {
        let mut args = vec!["serve", "--host", "127.0.0.1", "--port", &port];
        args.extend_from_slice(extra);
        let mut command = env.command(&args);
        command.env_remove("LOCAL_MLX_API_KEY");
        if let Some(value) = key_env {
            command.env("LOCAL_MLX_API_KEY", value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let warned = stderr(&["--api-key", "sk-in-argv"], None);
    let warning = warned.lines().find(|l| l.starts_with("warning: --api-key")).unwrap_or_else(|| panic!("{warned}"));
    assert!(warning.contains("ps") && warning.contains("LOCAL_MLX_API_KEY") && warning.contains("--api-key-file"));
    assert!(!warned.contains("sk-in-argv"), "the warning does not repeat the key: {warned}");
    for (extra, key_env) in [(vec![], Some("sk-env")), (vec!["--api-key-file", key_file], Some(""))] {
        let err = stderr(&extra, key_env);
        assert!(!err.contains("warning:"), "{extra:?}: {err}");
        assert!(err.contains(&port) && !err.contains("not both"), "{extra:?}: only the port is wrong: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_from_the_environment_is_required_and_never_printed() {
    let env = Env::new().await;
    let key = "sk-local-7f3a9c";
    let mut command = env.command(&["serve", "--port", "0"]);
    command.env("LOCAL_MLX_API_KEY", key).env("LOCAL_MLX_LOG", "debug");
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim_end().strip_prefix("local-mlx serve: ").unwrap().to_string();
    let client = reqwest::Client::new();
    let denied = client.get(format!("{url}/models")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = client.get(format!("{url}/models")).bearer_auth("sk-local-7f3a9d").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed: Value =
        client.get(format!("{url}/models")).bearer_auth(key).send().await.unwrap().json().await.unwrap();
    assert_eq!(allowed["data"][0]["id"], env.model);

    signal(&child, libc::SIGTERM);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let mut printed = line;
    std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    assert!(!printed.contains(key), "the key was printed:\n{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_with_a_key_any_host_name_is_answered_but_only_with_the_key() {
    let env = Env::new().await;
    let mut child = env
        .command(&["serve", "--host", "0.0.0.0", "--port", "0"])
        .env("LOCAL_MLX_API_KEY", "lan-key")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = first_url(&mut child);
    let port = first.strip_prefix("http://0.0.0.0:").unwrap().strip_suffix("/v1").unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/models");
    let client = reqwest::Client::new();
    // Clients on the LAN use the machine's name: the key, not the Host, is the guard here.
    let with_key = client.get(&url).header("host", "my-mac.lan").bearer_auth("lan-key").send().await.unwrap();
    assert_eq!(with_key.status(), 200);
    let without = client.get(&url).header("host", "my-mac.lan").send().await.unwrap();
    assert_eq!(without.status(), 401);
    signal(&child, libc::SIGTERM);
    assert!(tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap().success());
}

/// [`serve`] with `stdin` written to its standard input (then closed), when given.
fn serve_with_stdin(env: &Env, extra: &[&str], stdin: Option<&str>) -> (Child, String) {
    let mut args = vec!["serve", "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = env
        .command(&args)
        .env_remove("LOCAL_MLX_API_KEY")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut pipe, text.as_bytes()).unwrap();
    }
    let url = first_url(&mut child);
    (child, url)
}

/// The base URL from `serve`'s first stdout line.
fn first_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    line.strip_prefix("local-mlx serve: ").unwrap_or_else(|| panic!("first line: {line:?}")).trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_read_from_stdin_or_a_file_is_required_and_never_in_the_arguments() {
    let env = Env::new().await;
    let key_file = env.tmp.path().join("api-key");
    std::fs::write(&key_file, "file-key-42\n").unwrap();
    let key_file = key_file.to_str().unwrap().to_string();
    for (extra, stdin, key) in [
        (vec!["--api-key", "-"], "stdin-key-17\n", "stdin-key-17"),
        (vec!["--api-key-file", &key_file], "", "file-key-42"),
    ] {
        let (child, url) = serve_with_stdin(&env, &extra, Some(stdin));
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(key), "{extra:?}: the key is in ps");
        let client = reqwest::Client::new();
        assert_eq!(client.get(format!("{url}/models")).send().await.unwrap().status(), 401, "{extra:?}");
        let allowed = client.get(format!("{url}/models")).bearer_auth(key).send().await.unwrap();
        assert_eq!(allowed.status(), 200, "{extra:?}");
        signal(&child, libc::SIGTERM);
        let mut child = child;
        assert!(tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap().success());
    }

    // An empty stdin is refused in one clear line, not taken as "no key".
    let output = env.run(&["serve", "--port", "0", "--api-key", "-"], Some("")).await;
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("stdin") && err.contains("empty"), "{err}");
    let output = env.run(&["serve", "--port", "0", "--api-key", "k", "--api-key-file", &key_file], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not both"));
}

/// A hang guard for the waits below, not a speed check (the deadlines are 10 and 20 s).
const HANG: Duration = Duration::from_secs(120);

/// Read until the server closes the connection (EOF or reset); what it sent.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = tokio::time::timeout(HANG, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    });
    read.await.expect("the server never closed the connection");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn under_256_open_files_idle_strangers_neither_starve_clients_nor_stay_open() {
    use std::os::unix::process::CommandExt;
    use tokio::io::AsyncWriteExt;
    let env = Env::new().await;
    let mut command = env.command(&["serve", "--port", "0"]);
    // launchd's default limit.
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command
        .env_remove("LOCAL_MLX_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = first_url(&mut child);
    let addr = url.strip_prefix("http://localhost").unwrap().strip_suffix("/v1").unwrap();
    let addr = format!("127.0.0.1{addr}");

    // 374 connections that hold a descriptor: silent, half a header, a body that
    // promises 1 GB, an idle keep-alive after an answer.
    let mut strangers = Vec::new();
    for i in 0..374 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let opening: &[u8] = match i % 4 {
            0 => b"",
            1 => b"GET /v1/models HTTP/1.1\r\nHost: loc",
            2 => b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n{\"mod",
            _ => b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
        };
        // A write may fail once the server closed an evicted one: that is the point.
        let _ = stream.write_all(opening).await;
        strangers.push(stream);
    }
    // Every legitimate request is answered (before: 0 of 8). A connection accepted while
    // the server still drains the strangers from its backlog can be evicted before its
    // request is read, like any silent one; a client retries that once or twice.
    let mut attempts = 0;
    for n in 0..8 {
        let response = loop {
            attempts += 1;
            let request = reqwest::Client::new().get(format!("{url}/models")).send();
            match tokio::time::timeout(HANG, request).await.unwrap_or_else(|_| panic!("request {n} hangs")) {
                Ok(response) => break response,
                Err(error) if attempts < 16 => eprintln!("request {n}: closed before an answer ({error}); again"),
                Err(error) => panic!("request {n}: {error}"),
            }
        };
        assert_eq!(response.status(), 200, "request {n}");
    }
    assert!(attempts <= 16, "8 requests took {attempts} attempts");

    // And no connection stays open without sending a request in time: half a header,
    // a keep-alive after its answer, a body that stops coming (a 408). The strangers go
    // first, so these three meet the time limits alone, not the eviction of the cap
    // (which could close the keep-alive before its answer, as the newest idle one).
    drop(strangers);
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /v1/models HTTP/1.1\r\nHost: loc").await.unwrap();
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut trickle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    trickle
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"model\"")
        .await
        .unwrap();
    let (half, kept, trickle) =
        tokio::join!(until_closed(&mut half), until_closed(&mut kept), until_closed(&mut trickle));
    assert_eq!(half, "", "no answer to half a header");
    assert!(kept.starts_with("HTTP/1.1 200"), "answered, then closed when idle: {kept}");
    assert!(trickle.starts_with("HTTP/1.1 408"), "{trickle}");

    signal(&child, libc::SIGTERM);
    assert!(tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_long_answer_cuts_it_after_the_grace_and_leaves_no_sidecar() {
    let env = Env::new().await;
    let (mut child, url) = serve(&env, &[]);
    // As long an answer as a request may ask for: minutes of generation.
    let body = json!({"model": env.model, "stream": true, "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Write a very long story."}]});
    let mut response = reqwest::Client::new().post(format!("{url}/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains("\"content\"") {
        let chunk = response.chunk().await.unwrap().expect("a first piece of text");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let sidecar = descendants(child.id());
    assert!(!sidecar.is_empty(), "the answer runs in the sidecar");

    signal(&child, libc::SIGTERM);
    while let Ok(Some(chunk)) = response.chunk().await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("[DONE]"), "the stop waited for the whole answer");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    wait_gone(&sidecar, Duration::from_secs(20), "SIGTERM during an answer").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_before_an_answer_is_ready_answers_503_with_retry_after_not_a_closed_connection() {
    let env = Env::new().await;
    let (mut child, url) = serve(&env, &[]);
    let body = json!({"model": env.model, "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Write a very long story."}]});
    let request = tokio::spawn(reqwest::Client::new().post(format!("{url}/chat/completions")).json(&body).send());
    // The request is being answered once the server starts loading the model for it.
    let health_url = format!("{}/health", url.trim_end_matches("/v1"));
    loop {
        let health: Value = reqwest::get(&health_url).await.unwrap().json().await.unwrap();
        if health["status"] != "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, libc::SIGTERM);
    let response = tokio::time::timeout(HANG, request).await.expect("an answer").unwrap().expect("an HTTP answer");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "shutting_down", "{answer}");
    let sidecar = descendants(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    wait_gone(&sidecar, Duration::from_secs(20), "SIGTERM before an answer").await;
}

/// Handy's request shape: the transcript in `<transcript>` tags, then the instructions.
fn clean_up_request(model: &str, transcript: &str) -> Value {
    let prompt = format!("<transcript>\n{transcript}\n</transcript>\n\nThe above is a transcript. Clean it up.");
    json!({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": false})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_up_late_for_its_deadline_is_the_transcript_and_the_log_says_how_far_it_got() {
    let env = Env::new().await;
    // The stand-in sidecar, whose model load takes 20 s: far past a 1 s deadline.
    let script = env.tmp.path().join("slow-load.json");
    std::fs::write(&script, r#"[{"load_when": "models--", "seconds": 20}]"#).unwrap();
    let mut child = env
        .command(&["serve", "--port", "0", "--answer-within", "1s"])
        .env("LOCAL_MLX_BACKEND_DIR", test_support::workspace_root().join("tools/scripted-sidecar"))
        .env("LOCAL_MLX_SCRIPT", &script)
        .env_remove("LOCAL_MLX_API_KEY")
        .env_remove("LOCAL_MLX_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = first_url(&mut child);
    let transcript = "um so we meet at ten";
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        let response = reqwest::Client::new()
            .post(format!("{url}/chat/completions"))
            .json(&clean_up_request(&env.model, transcript))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    })
    .await
    .expect("an answer by the deadline, not after the load");
    assert_eq!(answer["choices"][0]["message"]["content"], transcript, "{answer}");
    assert_eq!(answer["local_mlx"]["clean_up"]["kept_original"], "deadline", "{answer}");
    // The log line, with how far the request got (still starting or loading).
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr).lines().map_while(Result::ok).find(|line| line.contains("no answer within 1 s"))
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line).await.expect("the log line").unwrap();
    let line = line.expect("a log line about the deadline");
    assert!(line.contains("WARN") && (line.contains("loading") || line.contains("starting")), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}
