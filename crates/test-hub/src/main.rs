//! `test-hub --repos DIR [--port 0] [--require-token T] [--rate-cap BYTES_PER_SEC] [--exit-on-stdin-close]`
//!
//! Prints exactly one line on stdout, `TEST_HUB_READY url=http://127.0.0.1:PORT`, once it
//! listens, so a parent process can wait for it; everything else goes to stderr
//! (`TEST_HUB_LOG=debug` logs every request). Exits on SIGTERM, SIGINT, or, with
//! `--exit-on-stdin-close`, when its stdin closes: a parent that dies without cleaning up
//! then takes the hub with it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use test_hub::{Config, TestHub};

#[derive(Parser)]
#[command(about = "A Hugging-Face-Hub-compatible server for tests, with switchable faults")]
struct Args {
    /// Folder whose `<org>/<name>/` subfolders are the repos.
    #[arg(long)]
    repos: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Answer 401 to requests without `Authorization: Bearer <TOKEN>`.
    #[arg(long, value_name = "TOKEN")]
    require_token: Option<String>,
    /// Cap every file response at this many bytes per second, each on its own (like a
    /// CDN edge capping each connection).
    #[arg(long, value_name = "BYTES_PER_SEC")]
    rate_cap: Option<u64>,
    /// Exit when stdin reaches end of file.
    #[arg(long)]
    exit_on_stdin_close: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();

    let mut config = Config::new(args.repos).port(args.port);
    config.require_token = args.require_token;
    config.rate_cap = args.rate_cap;
    let hub = match TestHub::start_with(config).await {
        Ok(hub) => hub,
        Err(err) => {
            eprintln!("test-hub: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "TEST_HUB_READY url={}", hub.url());
    let _ = stdout.flush();
    drop(stdout);

    let reason = wait_for_exit(args.exit_on_stdin_close).await;
    tracing::info!(reason, "test hub stopping");
    hub.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_exit(on_stdin_close: bool) -> &'static str {
    let stdin_closed = async {
        if !on_stdin_close {
            return std::future::pending().await;
        }
        let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
        // A plain thread, not tokio's stdin: a blocked read there would hold up runtime
        // shutdown, while this thread simply ends with the process.
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            let _ = closed_tx.send(());
        });
        let _ = closed.await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = sigterm() => "SIGTERM",
        _ = stdin_closed => "stdin closed",
    }
}

#[cfg(unix)]
async fn sigterm() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn sigterm() {
    std::future::pending().await
}
