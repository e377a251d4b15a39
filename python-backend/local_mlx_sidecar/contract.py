"""The process contract with the parent (see server.py's docstring for the whole of it).

The ready line, the token, the loopback socket, and exiting when the parent goes away.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("local_mlx_sidecar")

TOKEN_ENV = "LOCAL_MLX_TOKEN"
READY_PREFIX = "LOCAL_MLX_READY"
HOST = "127.0.0.1"
LISTEN_BACKLOG = 128
EXIT_GRACE_SECONDS = 2.0  # how long a shutdown may take before the process is ended hard


def read_token() -> str:
    """The bearer token from the environment; the server refuses to start without it.

    The variable is removed from our environment so that nothing we start inherits it.
    """
    token = os.environ.pop(TOKEN_ENV, "").strip()
    if not token:
        sys.stderr.write(
            f"local-mlx sidecar: {TOKEN_ENV} is not set; the parent must set it to the "
            "bearer token that every request will carry. Refusing to start.\n"
        )
        sys.exit(2)
    return token


def claim_stdout() -> int:
    """Keep stdout for the ready line alone: return a private copy of it and point fd 1
    (so ``print`` and C libraries alike) at stderr."""
    sys.stdout.flush()
    ready_fd = os.dup(1)
    os.dup2(2, 1)
    return ready_fd


def announce_ready(ready_fd: int, port: int) -> None:
    """Print the one stdout line, then close stdout for good."""
    try:
        os.write(ready_fd, f"{READY_PREFIX} port={port}\n".encode())
    finally:
        os.close(ready_fd)


def tolerate_low_file_limit() -> None:
    """Let mlx-lm's import survive a hard open-file limit below 4,096.

    ``mlx_lm.utils`` calls ``resource.setrlimit(RLIMIT_NOFILE, (2048, 4096))`` when it is
    imported; under ``ulimit -Hn 1024`` raising the hard limit is not allowed, the call
    raises ``ValueError`` and the import, so the whole sidecar, fails. mlx-lm has no
    option to skip it, so requests for that limit are clamped to the hard limit the
    process has (the model then opens its files within it). Call before importing mlx-lm.
    """
    original = resource.setrlimit
    if getattr(original, "clamps_nofile", False):
        return

    def clamped(which: int, limits: tuple[int, int]) -> None:
        if which == resource.RLIMIT_NOFILE:
            _, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                soft, new_hard = limits

                def fit(n: int) -> int:
                    return hard if n == resource.RLIM_INFINITY else min(n, hard)

                limits = (fit(soft), fit(new_hard))
        original(which, limits)

    clamped.clamps_nofile = True  # type: ignore[attr-defined]
    resource.setrlimit = clamped


def bind_loopback(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (never another interface); port 0 = OS-chosen."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(False)
    return sock


class Shutdown:
    """Exit promptly, once, whatever asked for it (stdin closed, SIGTERM, SIGINT).

    ``request`` tells the server to stop and cancels generations; if the process is still
    alive ``EXIT_GRACE_SECONDS`` later (say MLX is busy in a long pre-fill), it is ended
    with ``os._exit`` so it never lingers holding a model.
    """

    def __init__(self, on_request: Callable[[], None], grace: float = EXIT_GRACE_SECONDS) -> None:
        self._on_request = on_request
        self._grace = grace
        self._lock = threading.Lock()
        self.requested: str | None = None

    def request(self, reason: str) -> None:
        with self._lock:
            if self.requested is not None:
                return
            self.requested = reason
        log.info("shutting down: %s", reason)
        try:
            self._on_request()
        finally:
            t = threading.Timer(self._grace, self._hard_exit)
            t.daemon = True
            t.start()

    def _hard_exit(self) -> None:
        log.warning("still running %.1f s after shutdown was asked: exiting now", self._grace)
        logging.shutdown()
        os._exit(0)


def watch_stdin(on_eof: Callable[[str], None]) -> None:
    """Call ``on_eof`` when stdin reaches end of file: the parent has died or closed it.

    Whatever the parent writes is read and ignored.
    """
    stream = sys.stdin.buffer if sys.stdin is not None else None
    if stream is None:
        log.warning("no stdin: the sidecar cannot notice its parent's death")
        return

    def run() -> None:
        try:
            while stream.read1(65536) if hasattr(stream, "read1") else stream.read(1):
                pass
        except (OSError, ValueError):
            pass
        on_eof("stdin closed (parent gone)")

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def install_signal_handlers(on_signal: Callable[[str], None]) -> None:
    def handler(signum: int, _frame: object) -> None:
        on_signal(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
