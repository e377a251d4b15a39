//! `local-mlx-engine`: the native engine's worker process. Commands arrive on stdin,
//! events leave on stdout (src/protocol.rs); logs go to stderr. All MLX work runs on
//! the main thread (MLX ties a stream to the thread that made it); a reader thread
//! parses stdin, marks cancels at once, and ends the process when stdin closes — so
//! the worker never outlives the supervisor, even one killed with SIGKILL, and an
//! unload by exit gives every byte back.
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use local_mlx_engine::protocol::{Command, Event};
use local_mlx_engine::{Engine, Request, WeightsMode};

/// No generation is cancelled (ids start at 1... any id the parent never uses).
const NONE: u64 = u64::MAX;

fn send(event: &Event) {
    let mut out = std::io::stdout().lock();
    // A parent that closed our stdout is gone: the reader thread ends us on stdin EOF.
    let _ = serde_json::to_writer(&mut out, event);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn weights_from_env() -> WeightsMode {
    match std::env::var("LOCAL_MLX_CPU_WEIGHTS").unwrap_or_default().trim().to_lowercase().as_str() {
        "fp32" => WeightsMode::Fp32,
        "quantized" => WeightsMode::Quantized,
        _ => WeightsMode::Auto,
    }
}

fn main() {
    let cancelled = Arc::new(AtomicU64::new(NONE));
    let (tx, rx) = mpsc::channel::<Command>();
    let reader_cancel = cancelled.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Command>(&line) {
                Ok(Command::Cancel { id }) => reader_cancel.store(id, Ordering::SeqCst),
                Ok(command) => {
                    if tx.send(command).is_err() {
                        break;
                    }
                }
                Err(e) => send(&Event::Error { id: None, message: format!("not a command: {e}: {line}") }),
            }
        }
        // stdin closed: the supervisor is gone or wants us gone. Exit now, even in the
        // middle of an MLX call (the OS frees the model's memory). `_exit`, not
        // `process::exit`: libmlx's static destructors must not run while the main
        // thread is still inside MLX (they can wait on it, and the worker would outlive
        // its parent).
        // SAFETY: `_exit` ends the process at once; no Rust state is touched after it.
        unsafe { libc::_exit(0) };
    });

    send(&Event::Ready { pid: std::process::id(), mlx_version: local_mlx_engine::array::version_or_none() });
    let mut engine: Option<Engine> = None;
    for command in rx {
        match command {
            Command::Load { path, weights } => {
                engine = None; // release the old model first
                let started = Instant::now();
                match Engine::load(Path::new(&path), weights.unwrap_or_else(weights_from_env)) {
                    Ok(e) => {
                        eprintln!("local-mlx-engine: loaded {path} ({}; {})", e.weights, e.timings);
                        send(&Event::Loaded {
                            load_ms: started.elapsed().as_secs_f64() * 1000.0,
                            weights: e.weights.clone(),
                            context_length: e.context_length(),
                        });
                        engine = Some(e);
                    }
                    Err(e) => {
                        send(&Event::Error { id: None, message: format!("could not load the model at {path}: {e}") })
                    }
                }
            }
            Command::Unload => {
                engine = None;
                local_mlx_engine::array::clear_cache();
                send(&Event::Unloaded);
            }
            Command::Generate { id, messages, max_tokens, constrain_to_input } => {
                let Some(engine) = engine.as_mut() else {
                    send(&Event::Error { id: Some(id), message: "no model is loaded: load one first".into() });
                    continue;
                };
                let is_cancelled = || cancelled.load(Ordering::SeqCst) == id;
                let request = Request { messages, max_tokens, constrain_to_input };
                match engine.generate(&request, &is_cancelled, &mut |token| send(&Event::Token { id, token })) {
                    Ok(answer) => send(&Event::Answer { id, answer }),
                    Err(local_mlx_engine::Error::Cancelled) => send(&Event::Cancelled { id }),
                    Err(e) => send(&Event::Error { id: Some(id), message: e.to_string() }),
                }
            }
            Command::Cancel { .. } => unreachable!("the reader handles cancels"),
        }
    }
}
