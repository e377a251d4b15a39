"""Connection limits: no local process can exhaust the sidecar's file descriptors.

Any local process can connect to the loopback port, token or not. Before this module, a
few thousand connections that each sent one unfinished header line held a descriptor
each for ever, until ``accept`` failed with "Too many open files" and the real client
could no longer get in. Two rules close that:

* **A request deadline.** A connection must deliver a complete request (head and body)
  within ``REQUEST_READ_SECONDS`` of opening, or of its previous response; otherwise it
  is closed. Time spent answering (a long generation) does not count.
* **A connection cap.** At most ``max_connections`` are kept. A new connection over the
  cap closes the oldest one that is *idle* (waiting for a request), preferring one that
  has never completed a request: the real client's request is never refused to keep an
  idle stranger. Only when every kept connection is busy with a request is the new one
  closed.

Why hand-written: uvicorn (0.54) has ``timeout_keep_alive``, which runs only *after* a
response (never for a connection's first request, and any byte restarts it), and
``limit_concurrency``, which answers 503 to the newest request once the connection
count is reached, so it refuses the real client and keeps the idle strangers;
``h11_max_incomplete_event_size`` bounds a head's size, not the number of heads. So
``GuardedH11Protocol`` extends uvicorn's own h11 protocol with the two rules above.

Unauthenticated requests cannot linger either: ``app.BearerAuth`` answers 401 with
``Connection: close``. Accept errors (should descriptors still run out, say under a low
``ulimit -n``) are logged at most once per ``ACCEPT_LOG_EVERY`` seconds, with a count.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("local_mlx_sidecar")

REQUEST_READ_SECONDS = 10.0
MAX_CONNECTIONS = 64  # the real client uses a handful; descriptors are precious
ACCEPT_LOG_EVERY = 10.0
_WAITING = (h11.IDLE, h11.SEND_BODY)  # the client still owes us (part of) a request


def connection_cap() -> int:
    """``MAX_CONNECTIONS``, or fewer under a low open-file limit (model files, the log
    and the runtime need descriptors too)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft // 8))


class _Registry:
    """The live connections of one server, for choosing whom to evict."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live: dict[GuardedH11Protocol, None] = {}  # insertion order = age
        self.order = itertools.count()


def guarded_protocol(
    cap: int | None = None, read_seconds: float = REQUEST_READ_SECONDS
) -> type[H11Protocol]:
    """A uvicorn ``http`` protocol class with the deadline and the cap (its own registry)."""
    registry = _Registry(cap if cap is not None else connection_cap())
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"registry": registry, "read_seconds": read_seconds},
    )


class GuardedH11Protocol(H11Protocol):
    registry: _Registry
    read_seconds: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._served = False  # completed a request (401s close, so: an authorized client)
        self._idle_since = next(self.registry.order)
        self.registry.live[self] = None
        self._arm()
        if len(self.registry.live) > self.registry.cap:
            victim = self._victim()
            log.debug("connection cap (%d) reached: closing one", self.registry.cap)
            victim.transport.close()
            self._forget(victim)

    def _victim(self) -> GuardedH11Protocol:
        """The oldest idle connection, strangers first; then the oldest one still sending
        its request; else (all are being answered) this new one."""
        waiting = [c for c in self.registry.live if c is not self and c._waiting()]
        if not waiting:
            return self
        return min(
            waiting,
            key=lambda c: (c.conn.their_state is h11.SEND_BODY, c._served, c._idle_since),
        )

    def _waiting(self) -> bool:
        return self.conn.their_state in _WAITING

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget(self)
        super().connection_lost(exc)

    @staticmethod
    def _forget(conn: GuardedH11Protocol) -> None:
        conn.registry.live.pop(conn, None)
        if conn._deadline is not None:
            conn._deadline.cancel()
            conn._deadline = None

    def handle_events(self) -> None:
        super().handle_events()
        if not self._waiting() and self._deadline is not None:
            self._deadline.cancel()  # the whole request is in: answering takes its time
            self._deadline = None

    def on_response_complete(self) -> None:
        self._served = True
        self._idle_since = next(self.registry.order)
        super().on_response_complete()  # may start the next cycle (handle_events)
        if self._waiting() and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_seconds, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._waiting() and not self.transport.is_closing():
            log.debug("closing a connection that sent no complete request in time")
            self.transport.close()


class AcceptErrorLog:
    """An asyncio exception handler that logs accept failures at most once per
    ``every`` seconds (with how many were left out) and everything else as asyncio does."""

    def __init__(self, every: float = ACCEPT_LOG_EVERY) -> None:
        self.every = every
        self._last = -float("inf")
        self._skipped = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith("socket.accept()"):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.every:
            self._skipped += 1
            return
        skipped, self._skipped, self._last = self._skipped, 0, now
        log.error(
            "cannot accept connections: %s%s",
            context.get("exception"),
            f" ({skipped} more since the last report)" if skipped else "",
        )
