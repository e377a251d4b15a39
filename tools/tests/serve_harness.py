"""Start the real parts behind `local-mlx serve`: a test hub serving a fixture model, a
fresh HF cache, `local-mlx pull`, then `local-mlx serve --port 0`.

Shared by tools/tests/test_serve_openai.py and bench/serve_bench.py, so both drive the
server exactly as a user would: separate processes on 127.0.0.1, nothing in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"

# Handy's default prompt (its src-tauri/src/settings.rs), transcript first.
HANDY_PROMPT = (ROOT / "eval" / "prompts" / "handy-default.txt").read_text().rstrip("\n")
# The headers Handy's "Custom" provider sends when no API key is set.
HANDY_HEADERS = {
    "Content-Type": "application/json",
    "Referer": "https://github.com/cjpais/Handy",
    "User-Agent": "Handy/1.0 (+https://github.com/cjpais/Handy)",
    "X-Title": "Handy",
}


def handy_body(model: str, template: str, transcript: str) -> bytes:
    """Handy's body as serde_json writes it: these fields, this order, compact."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": template.replace("${output}", transcript)}],
        "stream": False,
        "reasoning_effort": "none",
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def handy_ask(url: str, body: bytes) -> tuple[float, dict]:
    """One request as Handy sends it (no client timeout, as in Handy): seconds, answer."""
    request = urllib.request.Request(f"{url}/chat/completions", data=body, headers=HANDY_HEADERS)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{url}: HTTP {error.code}: {error.read().decode()}") from error
    return time.perf_counter() - t0, answer


def build_binaries(profile: str = "debug") -> Path:
    """Build (or find up to date) `local-mlx` and `test-hub`; return their folder."""
    args = ["cargo", "build", "--quiet", "-p", "local-mlx-cli", "-p", "test-hub"]
    if profile == "release":
        args.append("--release")
    subprocess.run(args, cwd=ROOT, check=True)
    # Cargo decides where binaries go (CARGO_TARGET_DIR, .cargo/config): ask it.
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(json.loads(metadata)["target_directory"]) / profile


def fixture(key: str) -> tuple[str, Path]:
    """(repo id, model folder) of a fixture model, built or found cached."""
    out = subprocess.run(
        [sys.executable, str(TOOLS / "build_fixtures.py"), key],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith(f"{key}\t"))
    _, repo_id, path = line.split("\t")
    return repo_id, Path(path)


@dataclass
class Stack:
    """A hub, a cache and, once `serve` ran, a server."""

    bin_dir: Path
    home: Path
    hub: subprocess.Popen
    hub_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("LOCAL_MLX_API_KEY", None)
        env.pop("HF_HUB_OFFLINE", None)
        env.update(
            HF_ENDPOINT=self.hub_url,
            HF_HUB_CACHE=str(self.home / "cache"),
            LOCAL_MLX_CONFIG_DIR=str(self.home / "config"),
            LOCAL_MLX_BACKEND_DIR=str(ROOT / "python-backend"),
        )
        env.update(extra)
        return env

    def pull(self, repo_id: str) -> None:
        subprocess.run(
            [str(self.bin_dir / "local-mlx"), "pull", repo_id],
            env=self.env(),
            check=True,
            capture_output=True,
        )

    def serve(self, *args: str, **env: str) -> tuple[subprocess.Popen, str]:
        """`local-mlx serve --port 0 ARGS`; the base URL from its first stdout line."""
        proc = subprocess.Popen(
            [str(self.bin_dir / "local-mlx"), "serve", "--port", "0", *args],
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.processes.append(proc)
        line = proc.stdout.readline()
        prefix = "local-mlx serve: "
        assert line.startswith(prefix), f"first line of local-mlx serve: {line!r}"
        return proc, line[len(prefix) :].strip()

    def close(self) -> None:
        for proc in [*self.processes, self.hub]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def start(home: Path, repos: Path, profile: str = "debug") -> Stack:
    """A test hub serving `repos` (stopped when its stdin closes) over a cache in `home`."""
    bin_dir = build_binaries(profile)
    hub = subprocess.Popen(
        [str(bin_dir / "test-hub"), "--repos", str(repos), "--port", "0", "--exit-on-stdin-close"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = hub.stdout.readline()
    assert line.startswith("TEST_HUB_READY url="), f"test-hub said {line!r}"
    return Stack(bin_dir=bin_dir, home=home, hub=hub, hub_url=line.strip().split("=", 1)[1])
