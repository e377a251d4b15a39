"""Local processes without the token cannot stall the sidecar: half-open connections are
closed after a deadline, and a flood of them evicts the oldest instead of exhausting
file descriptors. Real processes and raw sockets."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import sys
from pathlib import Path

import pytest
from conftest import AUTH, SERVER, Sidecar, chat
from local_mlx_sidecar.connections import REQUEST_READ_SECONDS, AcceptErrorLog

UNFINISHED = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
FLOOD = 2200  # more than the 2,048 descriptors mlx-lm leaves the sidecar


def _half_open(s: Sidecar) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    sock.sendall(UNFINISHED)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def many_descriptors() -> None:
    """This test process needs more than FLOOD sockets of its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FLOOD + 200
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.fail(f"the hard open-file limit ({hard}) is below {want}: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_flood_of_half_open_connections_does_not_lock_out_the_client(
    spawn, many_descriptors
) -> None:
    s = spawn()
    s.wait_until(lambda st: st["mlx_ready"], timeout=120, what="mlx import")  # limit lowered
    flood = []
    try:
        for _ in range(FLOOD):
            flood.append(_half_open(s))
        st = s.status()  # the real client, with the token, on a new connection
        assert st["status"] == "running"
        # The flood was cut down: most of its connections were closed by the server.
        closed = sum(_closed_by_server(sock) for sock in flood[: FLOOD // 2])
        assert closed == FLOOD // 2, f"only {closed} of the oldest {FLOOD // 2} were closed"
    finally:
        for sock in flood:
            sock.close()
    assert s.status()["status"] == "running"
    s.stop()
    log = s.stderr()
    assert "Too many open files" not in log and len(log) < 20_000, log[-2000:]


def test_a_connection_that_never_finishes_its_request_is_closed(spawn) -> None:
    s = spawn()
    head_only = _half_open(s)
    body_short = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    body_short.sendall(  # with the token: past the 401, its body is awaited
        b"POST /load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
        + f"Authorization: {AUTH['Authorization']}\r\n\r\n{{".encode()
    )
    head_only.settimeout(REQUEST_READ_SECONDS * 6)
    body_short.settimeout(REQUEST_READ_SECONDS * 6)
    assert _closed_by_server(head_only)
    assert _closed_by_server(body_short)
    assert s.status()["status"] == "running"


def test_accept_errors_are_logged_once_per_period(caplog) -> None:
    loop = asyncio.new_event_loop()
    handler = AcceptErrorLog(every=3600)
    context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "x")}
    with caplog.at_level(logging.ERROR, logger="local_mlx_sidecar"):
        for _ in range(1000):
            handler(loop, context)
    loop.close()
    assert len(caplog.records) == 1, [r.message for r in caplog.records]
    assert "cannot accept connections" in caplog.records[0].message


def test_a_hard_file_limit_under_4096_does_not_kill_the_sidecar(spawn, tiny) -> None:
    """mlx-lm raises the limit to (2048, 4096) at import; a lower hard limit must not
    make that import, and so the sidecar, fail."""
    lowered = (
        "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    s = spawn(cmd=[sys.executable, "-c", lowered, str(SERVER), "--port", "0"])
    st = s.wait_until(lambda st: st["mlx_ready"] or s.proc.poll() is not None, 120, "mlx import")
    assert st["mlx_ready"], s.stderr()
    s.load(tiny)
    assert s.generate(messages=chat("hi"), max_tokens=2)["tokens_generated"] <= 2
    limits = Path(f"/proc/{st['pid']}/limits")
    if limits.exists():  # Linux: the limit was clamped, not raised
        line = next(x for x in limits.read_text().splitlines() if "open files" in x)
        assert line.split()[3:5] == ["1024", "1024"], line
