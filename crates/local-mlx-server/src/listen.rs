//! Binding the listening sockets and serving until told to stop (each connection
//! under the limits of [`crate::connections`]).
//!
//! `localhost` is bound on both 127.0.0.1 and ::1, on the same port, because clients
//! resolve it to either (Handy's reqwest may try ::1 first); a machine without IPv6 just
//! gets the first. A port in use is its own error naming the flag that changes it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::connections::{connection_cap, serve_connection, Registry};

/// How long in-flight requests may finish after a stop signal.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// After the grace, how long the 503s that replace unfinished answers have to go out.
const CUT_ANSWER_WRITE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("port {port} is already in use on {host} (another `local-mlx serve`?): choose another one with --port")]
    PortInUse { host: String, port: u16 },

    #[error("--host {host} is reachable from other machines: give an API key in LOCAL_MLX_API_KEY or with --api-key-file, or use --host 127.0.0.1")]
    KeyRequired { host: String },

    #[error("cannot resolve --host {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The bound sockets and the base URL clients use.
#[derive(Debug)]
pub struct Listeners {
    pub listeners: Vec<TcpListener>,
    pub base_url: String,
}

/// `localhost`, with or without the root's trailing dot.
pub(crate) fn is_localhost(host: &str) -> bool {
    host.strip_suffix('.').unwrap_or(host).eq_ignore_ascii_case("localhost")
}

/// Bind `host:port` (`port` 0: the OS picks one).
pub async fn bind(host: &str, port: u16) -> Result<Listeners, BindError> {
    let addrs: Vec<SocketAddr> = if is_localhost(host) {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]
    } else {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| BindError::Resolve { host: host.to_string(), source })?
            .take(1)
            .collect()
    };
    let first = *addrs.first().ok_or_else(|| BindError::Resolve {
        host: host.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })?;
    let listener = TcpListener::bind(first).await.map_err(|source| bind_error(host, first, source))?;
    let port = listener.local_addr().map_err(|source| BindError::Bind { addr: first, source })?.port();
    let mut listeners = vec![listener];
    for addr in addrs.iter().skip(1) {
        // The same port on the other loopback family; without IPv6 the first one serves alone.
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => listeners.push(listener),
            Err(error) => tracing::debug!(%addr, %error, "not listening on the second loopback address"),
        }
    }
    let shown = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    Ok(Listeners { listeners, base_url: format!("http://{shown}:{port}/v1") })
}

fn bind_error(host: &str, addr: SocketAddr, source: std::io::Error) -> BindError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        BindError::PortInUse { host: host.to_string(), port: addr.port() }
    } else {
        BindError::Bind { addr, source }
    }
}

/// Serve `router` on every listener until `stop` resolves, then give running answers
/// `SHUTDOWN_GRACE` to finish; whatever still runs then is cut off (its generation
/// cancelled). Connections are limited as `connections.rs` says.
pub async fn serve(listeners: Listeners, router: Router, stop: impl Future<Output = ()> + Send + 'static) {
    let mut stop = std::pin::pin!(stop);
    // Polled once before the first answer, so a signal handler it installs is in place:
    // a SIGTERM just after an answer then stops the server instead of killing it.
    if futures_util::FutureExt::now_or_never(stop.as_mut()).is_some() {
        return;
    }
    let registry = Registry::new(connection_cap());
    let (stopping, stopped) = watch::channel(false);
    let (to_serve, mut accepted) = mpsc::channel::<TcpStream>(64);
    let mut acceptors = JoinSet::new();
    for listener in listeners.listeners {
        acceptors.spawn(accept_loop(listener, to_serve.clone()));
    }
    drop(to_serve);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.as_mut() => break,
            Some(stream) = accepted.recv() => {
                connections.spawn(serve_connection(stream, router.clone(), registry.clone(), stopped.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    acceptors.abort_all();
    drop(accepted);
    let _ = stopping.send(true);
    let grace = tokio::time::timeout(SHUTDOWN_GRACE, drain(&mut connections)).await;
    if grace.is_err() {
        tracing::warn!(running = registry.len(), "answers still running after the grace period were cut off");
        registry.cut_answers();
        // Time to write those 503s; a stream already under way is closed after it.
        if tokio::time::timeout(CUT_ANSWER_WRITE, drain(&mut connections)).await.is_err() {
            registry.kill_all();
            connections.shutdown().await;
        }
    }
}

/// Wait for every connection task to end.
async fn drain(connections: &mut JoinSet<()>) {
    while connections.join_next().await.is_some() {}
}

/// How often a failing `accept` (out of descriptors) is logged.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Accept connections for ever, handing each to the serving loop.
async fn accept_loop(listener: TcpListener, to_serve: mpsc::Sender<TcpStream>) {
    let mut logged: Option<tokio::time::Instant> = None;
    let mut failures = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                if to_serve.send(stream).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                failures += 1;
                if logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                    tracing::warn!(%error, failures, "cannot accept a connection (out of file descriptors?)");
                    logged = Some(tokio::time::Instant::now());
                    failures = 0;
                }
                // The cause (no free descriptor) lasts a while: no busy loop meanwhile.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
