//! Connection limits: no local process can exhaust `serve`'s file descriptors, and a
//! stop ends every connection within the grace period.
//!
//! Any local process can connect to the loopback port, key or not. Without limits a
//! connection that sent half a header, trickles a body, or idles after a response held
//! a descriptor for ever, and under launchd's default of 256 open files a few hundred
//! of them left no room for the real client. Three rules close that, the sidecar's
//! (python-backend's `connections.py`) in Rust:
//!
//! * **A request deadline.** A connection must deliver a request head within
//!   [`REQUEST_READ`] of opening or of its previous response (a half-sent header and an
//!   idle keep-alive alike), or it is closed. Time spent answering does not count. The
//!   body has its own deadline ([`BODY_READ`]), enforced where it is read.
//! * **A connection cap** ([`connection_cap`]): a new connection over it closes the
//!   oldest *waiting* one (no request in progress), preferring one that never had a
//!   successful answer, then the oldest one still sending a request body, so a real
//!   client is never refused to keep an idle stranger; only when every kept connection
//!   is being answered is the new one closed.
//! * **A hard stop.** On a stop signal every connection is asked to finish its answer
//!   and close; after the grace period an answer whose head is not sent yet becomes a
//!   503 with `Retry-After` (the client gets an answer, not a closed connection), its
//!   handler dropped so its generation stops; a moment later the rest are dropped.
//!
//! Why hand-written: `axum::serve` has none of these knobs, and hyper's own
//! `header_read_timeout` does not see the connections between two requests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;

/// How long a connection may take to send a request head, from opening or from its
/// previous answer.
pub(crate) const REQUEST_READ: Duration = Duration::from_secs(10);
/// How long a request body may take once its head is in (a 1 MiB body at 50 KiB/s).
pub(crate) const BODY_READ: Duration = Duration::from_secs(20);
/// At most this many connections are kept (the real client uses a handful).
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// [`MAX_CONNECTIONS`], or fewer under a low open-file limit (the model files, the
/// sidecar's pipes and the runtime need descriptors too): an eighth of the soft limit,
/// at least 8.
pub(crate) fn connection_cap() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return MAX_CONNECTIONS;
    }
    (limit.rlim_cur as usize / 8).clamp(8, MAX_CONNECTIONS)
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head since then: the deadline runs.
    Waiting(Instant),
    /// The head is in and its body still arriving (its deadline is the handler's).
    Body,
    /// A request is being answered.
    Busy,
}

/// One live connection, as the registry and its own task see it.
struct Conn {
    phase: watch::Sender<Phase>,
    /// Had a successful answer: a client, not a stranger.
    served: std::sync::atomic::AtomicBool,
    /// When it last started waiting, in registry order (smaller is older).
    idle_since: AtomicU64,
    /// Closes the connection at once (evicted, or the grace is over).
    kill: CancellationToken,
}

/// The live connections of one server.
pub(crate) struct Registry {
    cap: usize,
    live: Mutex<BTreeMap<u64, Arc<Conn>>>,
    order: AtomicU64,
    /// The grace is over: answers not begun become [`ApiError::ShuttingDown`].
    cut: CancellationToken,
}

impl Registry {
    pub(crate) fn new(cap: usize) -> Arc<Registry> {
        Arc::new(Registry {
            cap,
            live: Mutex::new(BTreeMap::new()),
            order: AtomicU64::new(0),
            cut: CancellationToken::new(),
        })
    }

    /// Live connections now.
    pub(crate) fn len(&self) -> usize {
        self.live.lock().expect("registry poisoned").len()
    }

    /// Answer every request still being worked on with a 503 (its work dropped).
    pub(crate) fn cut_answers(&self) {
        self.cut.cancel();
    }

    /// Close every connection at once.
    pub(crate) fn kill_all(&self) {
        for conn in self.live.lock().expect("registry poisoned").values() {
            conn.kill.cancel();
        }
    }

    /// Register a new connection, making room under the cap; `None` when every kept
    /// connection is being answered and the new one must go.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let id = self.order.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: watch::Sender::new(Phase::Waiting(Instant::now())),
            served: false.into(),
            idle_since: AtomicU64::new(id),
            kill: CancellationToken::new(),
        });
        let mut live = self.live.lock().expect("registry poisoned");
        if live.len() >= self.cap {
            let victim = live
                .iter()
                .filter(|(_, c)| *c.phase.borrow() != Phase::Busy)
                .min_by_key(|(_, c)| {
                    let sending = *c.phase.borrow() == Phase::Body;
                    (sending, c.served.load(Ordering::Relaxed), c.idle_since.load(Ordering::Relaxed))
                })
                .map(|(id, c)| (*id, c.kill.clone()));
            let (victim_id, kill) = victim?;
            tracing::debug!(cap = self.cap, "connection cap reached: closing the oldest waiting connection");
            kill.cancel();
            live.remove(&victim_id);
        }
        live.insert(id, conn.clone());
        Some((id, conn))
    }

    fn forget(&self, id: u64) {
        self.live.lock().expect("registry poisoned").remove(&id);
    }
}

/// Serve one accepted connection until it ends, misses its deadline, is evicted, or
/// (after `stop`) finishes its answer.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    router: Router,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let Some((id, conn)) = registry.admit() else {
        tracing::debug!("connection cap reached and every connection is busy: refusing a new one");
        return;
    };
    let service = {
        let (conn, order) = (conn.clone(), registry.clone());
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let whole = hyper::body::Body::is_end_stream(request.body());
            conn.phase.send_replace(if whole { Phase::Busy } else { Phase::Body });
            let (router, conn, order) = (router.clone(), conn.clone(), order.clone());
            let request = request.map(|inner| Body::new(Arriving { inner, conn: conn.clone() }));
            async move {
                let response = tokio::select! {
                    response = router.oneshot(request) => response.unwrap_or_else(|never| match never {}),
                    _ = order.cut.cancelled() => ApiError::ShuttingDown.into_response(),
                };
                let success = response.status().is_success();
                let end = AnswerEnd { conn, registry: order, success };
                Ok::<_, Infallible>(response.map(|body| Tracked { inner: body, _end: end }))
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            _ = missed_deadline(conn.phase.subscribe()) => {
                tracing::debug!("a connection sent no request in time: closing it");
                break;
            }
            _ = conn.kill.cancelled() => break,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    registry.forget(id);
}

/// Resolves once the connection has been waiting for a request for [`REQUEST_READ`].
async fn missed_deadline(mut phase: watch::Receiver<Phase>) {
    loop {
        let now = *phase.borrow_and_update();
        match now {
            Phase::Waiting(since) => tokio::select! {
                _ = tokio::time::sleep_until(since + REQUEST_READ) => return,
                changed = phase.changed() => if changed.is_err() { std::future::pending::<()>().await },
            },
            Phase::Body | Phase::Busy => {
                if phase.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Marks the end of an answer when its body is done (sent or dropped): the connection
/// waits for its next request from then on.
struct AnswerEnd {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    success: bool,
}

impl Drop for AnswerEnd {
    fn drop(&mut self) {
        if self.success {
            self.conn.served.store(true, Ordering::Relaxed);
        }
        self.conn.idle_since.store(self.registry.order.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.conn.phase.send_replace(Phase::Waiting(Instant::now()));
    }
}

/// A request body that says when it has all arrived (or was dropped unread): the
/// connection is busy answering from then on.
struct Arriving {
    inner: Incoming,
    conn: Arc<Conn>,
}

impl Arriving {
    fn arrived(&self) {
        self.conn.phase.send_if_modified(|phase| {
            let sending = *phase == Phase::Body;
            if sending {
                *phase = Phase::Busy;
            }
            sending
        });
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.arrived();
    }
}

impl hyper::body::Body for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.arrived();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that says when it is done, unchanged otherwise (length, frames).
struct Tracked {
    inner: Body,
    _end: AnswerEnd,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_open_file_limit() {
        let cap = connection_cap();
        assert!((8..=MAX_CONNECTIONS).contains(&cap), "{cap}");
    }

    #[tokio::test]
    async fn over_the_cap_the_oldest_idle_stranger_goes_and_busy_ones_stay() {
        let registry = Registry::new(3);
        let (a, conn_a) = registry.admit().unwrap();
        let (_, conn_b) = registry.admit().unwrap();
        let (_, conn_c) = registry.admit().unwrap();
        // b had a good answer (a client); c is being answered; a is an idle stranger.
        conn_b.served.store(true, Ordering::Relaxed);
        conn_c.phase.send_replace(Phase::Busy);
        let (_, conn_d) = registry.admit().unwrap();
        assert!(conn_a.kill.is_cancelled(), "the idle stranger goes first");
        assert!(!conn_b.kill.is_cancelled() && !conn_c.kill.is_cancelled());
        assert!(!registry.live.lock().unwrap().contains_key(&a));
        // The next newcomer: the stranger d goes before the client b.
        let (_, conn_e) = registry.admit().unwrap();
        assert!(conn_d.kill.is_cancelled());
        assert!(!conn_b.kill.is_cancelled());
        // With e busy too, the client b is the only one waiting: it goes, never c or e.
        conn_e.phase.send_replace(Phase::Busy);
        let _ = registry.admit().unwrap();
        assert!(conn_b.kill.is_cancelled());
        assert!(!conn_c.kill.is_cancelled() && !conn_e.kill.is_cancelled());
        // One still sending its body goes only after every idle one.
        let (_, conn_f) = registry.admit().unwrap();
        let (_, conn_g) = registry.admit().unwrap_or_else(|| panic!("f is idle"));
        assert!(conn_f.kill.is_cancelled());
        conn_g.phase.send_replace(Phase::Body);
        let (_, conn_h) = registry.admit().unwrap();
        assert!(conn_g.kill.is_cancelled() && !conn_h.kill.is_cancelled());
        // All busy: the newcomer is refused.
        for conn in registry.live.lock().unwrap().values() {
            conn.phase.send_replace(Phase::Busy);
        }
        assert!(registry.admit().is_none());
        assert_eq!(registry.len(), 3);
    }
}
