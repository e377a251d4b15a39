//! Binding the listening sockets and serving until told to stop.
//!
//! `localhost` is bound on both 127.0.0.1 and ::1, on the same port, because clients
//! resolve it to either (Handy's reqwest may try ::1 first); a machine without IPv6 just
//! gets the first. A port in use is its own error naming the flag that changes it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// How long in-flight requests may finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// Bind `host:port` (`port` 0: the OS picks one).
pub async fn bind(host: &str, port: u16) -> Result<Listeners, BindError> {
    let addrs: Vec<SocketAddr> = if crate::config::is_localhost(host) {
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

/// Serve `router` on every listener until `stop` resolves, then give in-flight requests
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(listeners: Listeners, router: Router, stop: impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners.listeners {
        let mut rx = rx.clone();
        let router = router.clone();
        servers.spawn(async move {
            let stopped = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
                tracing::error!(%error, "the server stopped");
            }
        });
    }
    stop.await;
    let _ = tx.send(true);
    let drained = async { while servers.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        tracing::warn!("requests still running after the grace period were cut off");
    }
}
