//! The worker process: answers over its pipes, cancels, survives a bad request, exits
//! when stdin closes, and dies with a parent killed by SIGKILL.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use local_mlx_engine::protocol::{Command as Cmd, Event};
use local_mlx_engine::Message;

const WORKER: &str = env!("CARGO_BIN_EXE_local-mlx-engine");

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start() -> Worker {
        let mut child = Command::new(WORKER).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut w = Worker { child, stdin, stdout };
        assert!(matches!(w.next(), Event::Ready { .. }));
        w
    }

    fn send(&mut self, command: &Cmd) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{}", serde_json::to_string(command).unwrap()).unwrap();
        stdin.flush().unwrap();
    }

    fn next(&mut self) -> Event {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the worker closed its stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Events up to the end of generation `id` (its answer, cancel or error).
    fn finish(&mut self, id: u64) -> (usize, Event) {
        let mut tokens = 0;
        loop {
            match self.next() {
                Event::Token { id: i, .. } if i == id => tokens += 1,
                end => return (tokens, end),
            }
        }
    }

    fn load(&mut self, path: &std::path::Path) {
        self.send(&Cmd::Load { path: path.display().to_string(), weights: None });
        let event = self.next();
        assert!(matches!(event, Event::Loaded { .. }), "{event:?}");
    }
}

fn generate(id: u64, text: &str, max_tokens: usize) -> Cmd {
    Cmd::Generate {
        id,
        messages: vec![Message { role: "user".into(), content: text.into() }],
        max_tokens,
        constrain_to_input: false,
    }
}

#[test]
fn answers_streams_tokens_cancels_and_goes_on_after_errors() {
    let mut w = Worker::start();
    w.send(&generate(1, "hello", 4));
    assert_eq!(w.finish(1).1, Event::Error { id: Some(1), message: "no model is loaded: load one first".into() });
    w.send(&Cmd::Load { path: "/nonexistent/model".into(), weights: None });
    let Event::Error { message, .. } = w.next() else { panic!("a missing folder must be an error") };
    assert!(message.contains("could not load the model at /nonexistent/model"), "{message}");

    w.load(&common::tiny());
    w.send(&generate(2, "the quick brown fox", 12));
    let (streamed, end) = w.finish(2);
    let Event::Answer { answer, .. } = end else { panic!("{end:?}") };
    assert_eq!(answer.tokens.len(), 12);
    assert_eq!(streamed, 12, "every token is streamed before the answer");

    // A cancel sent with the request stops it before its first pre-fill step.
    w.send(&generate(3, &"a long dictation ".repeat(40), 200));
    w.send(&Cmd::Cancel { id: 3 });
    assert_eq!(w.finish(3).1, Event::Cancelled { id: 3 });
    // The next request works, and gives what it gave before.
    w.send(&generate(4, "the quick brown fox", 12));
    let Event::Answer { answer: again, .. } = w.finish(4).1 else { panic!() };
    assert_eq!(again.tokens, answer.tokens);

    // A cancel for another id does not touch this one.
    w.send(&Cmd::Cancel { id: 99 });
    w.send(&generate(5, "the quick brown fox", 3));
    assert!(matches!(w.finish(5).1, Event::Answer { .. }));

    w.send(&Cmd::Unload);
    assert_eq!(w.next(), Event::Unloaded);
    drop(w.stdin.take());
    let status = w.child.wait().unwrap();
    assert!(status.success(), "closing stdin ends the worker cleanly: {status:?}");
}

#[test]
fn the_worker_dies_with_a_parent_killed_by_sigkill() {
    // The parent: a Python process holding the worker's stdin, the worker's stdout
    // being ours. Once the parent is SIGKILLed and the worker gone, our read sees EOF.
    let parent_code = "import subprocess, sys, time\n\
                       subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE)\n\
                       time.sleep(3600)\n";
    let mut parent = Command::new("python3")
        .args(["-c", parent_code, WORKER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let Ok(Event::Ready { pid, .. }) = serde_json::from_str(&line) else {
        panic!("not the worker's ready line: {line}")
    };
    // A pidfd, taken while the worker surely lives, becomes readable when it ends (it
    // is not our child: we cannot wait for it otherwise).
    // SAFETY: a plain syscall on an integer.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap(); // EOF: the worker closed its stdout
    let mut poll = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
    // SAFETY: a pollfd we own; -1 waits until the worker has ended.
    let ready = unsafe { libc::poll(&mut poll, 1, -1) };
    // SAFETY: our descriptor, closed once.
    unsafe { libc::close(pidfd) };
    assert_eq!(ready, 1, "the worker {pid} ended");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "worker {pid} still runs: {stat}");
}
