"""One generation at a time, a bounded queue, /status at once, loads de-duplicated,
/unload waiting for a generation, cancelling on disconnect. Real processes."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import AUTH, Sidecar, chat

LONG = {
    "messages": chat("go on and on"),
    "max_tokens": 8000,
}  # ~10+ s on the long-context tiny model


def open_stream(s: Sidecar, body: dict[str, Any]) -> socket.socket:
    """Start a streaming /generate over a raw socket and return once the first token
    line arrived; closing the socket is a client that goes away."""
    payload = json.dumps({**body, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    sock.sendall(
        b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: {AUTH['Authorization']}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    data = b""
    while b'"event": "token"' not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    return sock


class Background:
    """Run a call in a thread; keep its result (or exception) and when it finished."""

    def __init__(self, fn, *args: Any, **kw: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kw) -> None:
        try:
            self.result = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001
            self.error = e
        self.finished_at = time.monotonic()

    def join(self, timeout: float = 60) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        if self.error:
            raise self.error
        return self.result


def timed_status(s: Sidecar) -> tuple[float, dict[str, Any]]:
    t = time.monotonic()
    st = s.status()
    return time.monotonic() - t, st


def test_status_answers_at_once_during_a_generation_and_disconnect_cancels(
    spawn, long_tiny: Path
) -> None:
    s = spawn()
    s.load(long_tiny)
    sock = open_stream(s, LONG)
    for _ in range(5):
        took, st = timed_status(s)
        assert took < 0.5 and st["generating"] is True and st["state"] == "ready"
    sock.close()  # the client goes away: the generation stops
    s.wait_until(lambda st: not st["generating"], timeout=5, what="the generation to stop")
    assert s.generate(messages=chat("next"), max_tokens=2)["tokens_generated"] <= 2


def test_non_streaming_client_that_times_out_cancels_its_generation(spawn, long_tiny: Path) -> None:
    s = spawn()
    s.load(long_tiny)
    s.generate(messages=chat("warm"), max_tokens=2)
    try:
        httpx.post(s.url + "/generate", json=LONG, headers=AUTH, timeout=1.5)
        raise AssertionError("expected a client timeout")
    except httpx.ReadTimeout:
        pass
    s.wait_until(lambda st: not st["generating"], timeout=5, what="the generation to stop")


def test_bounded_queue_503(spawn, long_tiny: Path) -> None:
    s = spawn("--max-queue", "1")
    s.load(long_tiny)
    running = open_stream(s, LONG)
    waiting = Background(s.generate, messages=chat("short"), max_tokens=3)
    s.wait_until(lambda st: st["queued"] == 1, timeout=10, what="one queued generation")
    t = time.monotonic()
    r = s.client.post("/generate", json={"messages": chat("one too many"), "max_tokens": 3})
    assert time.monotonic() - t < 1
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert "queue is full" in r.json()["detail"]
    r = s.client.post(
        "/generate", json={"messages": chat("one too many"), "max_tokens": 3, "stream": True}
    )
    assert r.status_code == 503
    # /status, /load of the loaded model, and the queue are unaffected.
    took, st = timed_status(s)
    assert took < 0.5 and st["generating"] and st["queued"] == 1
    running.close()  # frees the worker: the waiting one runs
    assert waiting.join(30)["tokens_generated"] <= 3
    assert s.generate(messages=chat("room again"), max_tokens=2)["tokens_generated"] <= 2


def test_requests_are_served_in_order(spawn, tiny: Path) -> None:
    s = spawn()  # default queue: 4 waiting
    s.load(tiny)
    jobs = [Background(s.generate, messages=chat(f"request {i}"), max_tokens=4) for i in range(5)]
    results = [j.join(60) for j in jobs]
    assert all(r["tokens_generated"] <= 4 for r in results)


def test_unload_during_a_generation_waits_for_it(spawn, long_tiny: Path) -> None:
    s = spawn()
    s.load(long_tiny)
    events: list[dict[str, Any]] = []

    def stream() -> float:
        with s.client.stream(
            "POST", "/generate", json={"messages": chat("go"), "max_tokens": 300, "stream": True}
        ) as r:
            for line in r.iter_lines():
                events.append(json.loads(line))
        return time.monotonic()

    gen = Background(stream)
    while not events:
        time.sleep(0.01)
    unload = Background(s.client.post, "/unload")
    st = s.wait_until(lambda st: st["unloads_queued"] == 1, timeout=30, what="the /unload to queue")
    assert st["generating"], "the /unload waits behind the generation"
    # Sent after the /unload: refused, there will be no model.
    r = s.client.post("/generate", json={"messages": chat("late"), "max_tokens": 2})
    assert r.status_code == 409
    gen_done_at = gen.join(60)
    assert unload.join(60).status_code == 200
    # The unload answered only once the generation was over (the two responses race to
    # the client by a few milliseconds) ...
    assert unload.finished_at >= gen_done_at - 0.1
    # ... and the generation finished normally, not cut off.
    assert events[-1]["event"] == "done", events[-1]
    done = events[-1]
    assert done["finish_reason"] == "stop" or done["tokens_generated"] == 300
    st = s.status()
    assert st["model_loaded"] is False and st["state"] == "idle"


def test_generation_sent_during_a_load_waits_for_it(spawn, tiny: Path) -> None:
    s = spawn()  # sent at once: the load also waits for the MLX import
    load = Background(s.load, tiny)
    st = s.wait_until(lambda st: st["loads_queued"] == 1, timeout=30, what="the /load to queue")
    assert not st["model_loaded"], "the generation is sent while the load is under way"
    r = s.generate(messages=chat("after the load"), max_tokens=2)
    assert r["tokens_generated"] <= 2
    assert load.join()["status"] == "loaded"


def test_concurrent_loads_of_one_model_load_it_once(spawn, smol: Path) -> None:
    s = spawn()
    s.wait_until(lambda st: st["mlx_ready"], timeout=60, what="mlx import")
    first = Background(s.load, smol)
    st = s.wait_until(lambda st: st["state"] == "loading", timeout=30, what="the load to start")
    assert st["model_loaded"] is False and st["model_path"] is None
    assert st["loading_path"] == str(smol)
    second = Background(s.load, smol)
    took, _ = timed_status(s)
    assert took < 0.5
    assert first.join(120)["status"] == "loaded"
    assert second.join(120)["status"] == "loaded"
    assert s.stderr().count("loading model from") == 1
    st = s.status()
    assert st["state"] == "ready" and st["model_path"] == str(smol)
