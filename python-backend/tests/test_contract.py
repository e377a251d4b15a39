"""The process contract, through real processes: ready line, token, loopback, exit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import AUTH, ROOT, SERVER, TOKEN, Sidecar, _clean_env, chat


def test_ready_line_is_the_only_stdout(spawn) -> None:
    s = spawn()
    assert s.ready_line == f"LOCAL_MLX_READY port={s.port}\n"
    assert s.status()["status"] == "running"
    # stdout was closed right after the line, long before the process ends.
    assert s.proc.stdout.read() == b""
    assert s.proc.poll() is None
    assert s.stop() == 0


def test_uv_run_entry_point(tmp_path: Path) -> None:
    """The way the Rust side starts it: `uv run --project python-backend ...` (offline)."""
    cmd = [
        "uv",
        "run",
        "--project",
        "python-backend",
        "--offline",
        "--frozen",
        "python",
        "python-backend/server.py",
        "--port",
        "0",
    ]
    s = Sidecar(
        cmd=cmd, cwd=ROOT, env=_clean_env(LOCAL_MLX_TOKEN=TOKEN), stderr_path=tmp_path / "err"
    )
    try:
        st = s.status()
        assert st["model_loaded"] is False and st["state"] == "idle"
        python_pid = st["pid"]
        s.signal(signal.SIGTERM)  # to uv, which forwards it to python
        assert s.proc.wait(10) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{s.url}/status", headers=AUTH, timeout=2)
        assert (
            not Path(f"/proc/{python_pid}").exists()
            or "zombie" in Path(f"/proc/{python_pid}/status").read_text()
        )
    finally:
        s.stop()


def test_binds_loopback_only(spawn) -> None:
    s = spawn()
    with socket.create_connection(("127.0.0.1", s.port), timeout=2):
        pass
    with pytest.raises(OSError):  # another loopback address: nothing listens there
        socket.create_connection(("127.0.0.2", s.port), timeout=2).close()
    listening = [
        line.split()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == s.port
    ]
    assert listening and all(entry[1].split(":")[0] == "0100007F" for entry in listening)


@pytest.mark.parametrize("token", [None, "", "   "])
def test_refuses_to_start_without_token(token: str | None) -> None:
    env = _clean_env()
    if token is not None:
        env["LOCAL_MLX_TOKEN"] = token
    proc = subprocess.run(
        [sys.executable, str(SERVER), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "LOCAL_MLX_TOKEN" in proc.stderr


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(SERVER), "--port", str(port)],
            env=_clean_env(LOCAL_MLX_TOKEN=TOKEN),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.PIPE,
        )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"127.0.0.1:{port}" in proc.stderr


BAD_AUTH = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer"},
    {"X-Token": TOKEN},
]


def test_every_request_needs_the_token(spawn, tiny: Path) -> None:
    s = spawn()
    requests = [
        ("GET", "/status", None),
        ("POST", "/load", {"model_path": str(tiny)}),
        ("POST", "/generate", {"messages": chat("hi")}),
        ("POST", "/unload", None),
        ("GET", "/openapi.json", None),
        ("GET", "/no-such-path", None),
    ]
    bare = httpx.Client(base_url=s.url, timeout=10)  # no token
    for headers in BAD_AUTH:
        for method, path, body in requests:
            r = bare.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, path, r.text)
            assert r.json() == {"detail": "missing or wrong bearer token"}
            assert r.headers["www-authenticate"] == "Bearer"
    # A token in the query string is not a token.
    r = bare.get(f"/status?token={TOKEN}")
    assert r.status_code == 401
    # A refused /load did nothing.
    assert s.status()["model_loaded"] is False
    assert "loading model" not in s.stderr()
    # The scheme is case-insensitive; the token is not.
    r = bare.get("/status", headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200
    r = bare.get("/status", headers={"Authorization": f"Bearer {TOKEN.upper()}"})
    assert r.status_code == 401
    bare.close()


def test_refused_unload_does_nothing(shared: Sidecar) -> None:
    r = httpx.post(shared.url + "/unload", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert shared.status()["model_loaded"] is True


def _start_long_generation(s: Sidecar) -> threading.Thread:
    """Stream a long generation in the background; return once it produces tokens."""
    started = threading.Event()

    def run() -> None:
        try:
            with httpx.stream(
                "POST",
                s.url + "/generate",
                headers=AUTH,
                timeout=120,
                json={"messages": chat("go on"), "max_tokens": 8000, "stream": True},
            ) as r:
                for _ in r.iter_lines():
                    started.set()
        except httpx.HTTPError:
            pass
        started.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(60)
    assert s.status()["generating"] is True
    return t


def test_exits_when_stdin_closes(spawn, long_tiny: Path) -> None:
    s = spawn()
    s.load(long_tiny)
    _start_long_generation(s)  # even in the middle of a generation
    t = time.monotonic()
    s.proc.stdin.close()
    assert s.proc.wait(5) == 0
    assert time.monotonic() - t < 3.5
    assert "stdin closed" in s.stderr()


def test_exits_on_sigterm(spawn, long_tiny: Path) -> None:
    s = spawn()
    s.load(long_tiny)
    _start_long_generation(s)
    t = time.monotonic()
    s.signal(signal.SIGTERM)
    assert s.proc.wait(5) == 0
    assert time.monotonic() - t < 3.5
    assert "SIGTERM" in s.stderr()


def test_exits_on_sigterm_when_idle(spawn) -> None:
    s = spawn()
    s.signal(signal.SIGTERM)
    assert s.proc.wait(5) == 0


def test_ignore_stdin_flag_keeps_running(spawn) -> None:
    s = spawn("--ignore-stdin")
    s.proc.stdin.close()
    time.sleep(1)
    assert s.proc.poll() is None
    assert s.status()["status"] == "running"
    s.signal(signal.SIGTERM)
    assert s.proc.wait(5) == 0


def test_openapi_schema_is_served(shared: Sidecar) -> None:
    schema = shared.client.get("/openapi.json").json()
    assert {"/load", "/generate", "/unload", "/status"} <= set(schema["paths"])
    json.dumps(schema)


def test_the_limits_the_core_passes_at_spawn_are_the_ones_checked(spawn, tiny: Path) -> None:
    from local_mlx_sidecar.schemas import LIMITS_ENV, STANDALONE_LIMITS

    limits = {**STANDALONE_LIMITS, "max_tokens_cap": 5, "default_top_p": 1.0}
    s = spawn(env=_clean_env(LOCAL_MLX_TOKEN=TOKEN, **{LIMITS_ENV: json.dumps(limits)}))
    s.load(tiny)
    messages = [{"role": "user", "content": "hi"}]
    refused = httpx.post(
        f"{s.url}/generate", headers=AUTH, json={"messages": messages, "max_tokens": 6}, timeout=30
    )
    assert refused.status_code == 400 and "between 1 and 5" in refused.text, refused.text
    ok = httpx.post(
        f"{s.url}/generate", headers=AUTH, json={"messages": messages, "max_tokens": 5}, timeout=60
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "value", ["not json", "[]", '{"max_tokens_cap": 5}', '{"max_tokens_cap": true}']
)
def test_limits_from_another_version_are_refused_at_start(value: str) -> None:
    from local_mlx_sidecar.schemas import LIMITS_ENV, STANDALONE_LIMITS, limits_from

    if value == '{"max_tokens_cap": true}':
        value = json.dumps({**STANDALONE_LIMITS, "max_tokens_cap": True})
    with pytest.raises(ValueError, match=LIMITS_ENV):
        limits_from({LIMITS_ENV: value})
    assert limits_from({}) == STANDALONE_LIMITS
