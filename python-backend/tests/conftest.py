"""Fixtures: the test models (built by tools/build_fixtures.py) and real sidecar processes."""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

BACKEND = Path(__file__).resolve().parents[1]
if str(BACKEND) not in sys.path:  # for `pytest` run from elsewhere than python-backend/
    sys.path.insert(0, str(BACKEND))
ROOT = BACKEND.parent
SERVER = BACKEND / "server.py"
TOKEN = "test-" + secrets.token_hex(16)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY = re.compile(r"^LOCAL_MLX_READY port=(\d+)\n$")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smol: uses the SmolLM2-135M test model (slower, real text)")


def _openblas_env() -> dict[str, str]:
    """What the supervisor adds on Linux (crates/local-mlx/src/sidecar/blas.rs): OpenBLAS
    preloaded under MLX, so that sidecars under test run as they do in the product."""
    if sys.platform != "linux" or "LD_PRELOAD" in os.environ:
        return {}
    soname = ctypes.util.find_library("openblasp") or ctypes.util.find_library("openblas")
    if not soname:
        return {}
    env = {"LD_PRELOAD": soname}
    if not os.environ.get("OPENBLAS_NUM_THREADS"):
        env["OPENBLAS_NUM_THREADS"] = str(len(os.sched_getaffinity(0)))
    return env


OPENBLAS_ENV = _openblas_env()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "LOCAL_MLX_TOKEN")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.update(OPENBLAS_ENV)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def models() -> dict[str, Path]:
    """``{"tiny": Path, "smol": Path}`` from the fixture builder (cached between runs)."""
    cmd = ["uv", "run", "--project", "tools", "python", "tools/build_fixtures.py", "tiny", "smol"]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            found[parts[0]] = Path(parts[2])
    missing = {"tiny", "smol"} - found.keys()
    if missing:
        pytest.fail(f"the fixture builder did not report {missing}; stdout was:\n{proc.stdout}")
    return found


@pytest.fixture(scope="session")
def tiny(models: dict[str, Path]) -> Path:
    return models["tiny"]


@pytest.fixture(scope="session")
def smol(models: dict[str, Path]) -> Path:
    return models["smol"]


@pytest.fixture(scope="session")
def long_tiny(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a 32k context, for generations that run long enough
    (several seconds) to be interrupted, queued behind or cancelled."""
    dst = tmp_path_factory.mktemp("long") / "tiny-long"
    shutil.copytree(tiny, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["max_position_embeddings"] = 32768
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.fixture(scope="session")
def short_tiny(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a 64-token context, to reach the context limit cheaply."""
    dst = tmp_path_factory.mktemp("short") / "tiny-short"
    shutil.copytree(tiny, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["max_position_embeddings"] = 64
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def chat(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """A request's ``messages``: the user's ``prompt``, after ``system`` when one is given."""
    messages = [{"role": "user", "content": prompt}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


class Sidecar:
    """A real sidecar process: spawned, its ready line read, spoken to over HTTP."""

    def __init__(
        self,
        args: tuple[str, ...] = (),
        *,
        cmd: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path = BACKEND,
        stderr_path: Path | None = None,
        ready_timeout: float = 60,
    ) -> None:
        self.stderr_path = stderr_path or Path(os.devnull)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            cmd or [sys.executable, str(SERVER), "--port", "0", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env=env if env is not None else _clean_env(LOCAL_MLX_TOKEN=TOKEN),
        )
        self.started = time.monotonic()
        self.ready_line = self._read_ready(ready_timeout)
        m = READY.match(self.ready_line)
        assert m, f"bad ready line {self.ready_line!r}; stderr:\n{self.stderr()}"
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, headers=AUTH, timeout=120)

    def _read_ready(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"no ready line in {timeout} s; stderr:\n{self.stderr()}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise AssertionError(
                    f"stdout closed before the ready line (exit {self.proc.poll()}); stderr:\n{self.stderr()}"
                )
            buf += chunk
        sel.close()
        return buf.decode()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def status(self) -> dict[str, Any]:
        r = self.client.get("/status", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def load(self, path: Path | str) -> dict[str, Any]:
        r = self.client.post("/load", json={"model_path": str(path)})
        assert r.status_code == 200, r.text
        return r.json()

    def generate(self, **body: Any) -> dict[str, Any]:
        r = self.client.post("/generate", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_until(self, pred, timeout: float = 30, what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last status {st}")
            time.sleep(0.02)

    def stop(self) -> int:
        """Close stdin (the contract's way to say "parent gone") and wait; kill if stuck."""
        self.client.close()
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stdin):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        self._stderr.close()
        return self.proc.returncode

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Start fresh sidecars (stopped at the end of the test): ``spawn(*args, **kw)``."""
    started: list[Sidecar] = []

    def make(*args: str, **kw: Any) -> Sidecar:
        kw.setdefault("stderr_path", tmp_path / f"sidecar-{len(started)}.stderr")
        s = Sidecar(tuple(args), **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def shared(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """One sidecar with the tiny model loaded, shared by the tests that leave it loaded."""
    s = Sidecar(stderr_path=tmp_path_factory.mktemp("shared") / "sidecar.stderr")
    s.load(tiny)
    yield s
    s.stop()
