"""A soak of `local-mlx serve` under Handy-like use: one request every few seconds for
ten minutes with `--keep-alive sec15` (so the model unloads in the pauses and loads
again), some clients that hang up mid-request, and one SIGKILL of the sidecar midway.

What must hold: every completed request is answered (200) or refused with a clear
OpenAI-shaped error; the server's memory stays flat; after SIGTERM no process of the
server's tree is left. The run is seeded, bounded in count and time, and talks only to
127.0.0.1.

    uv run --frozen --project tools python bench/serve_soak.py [--minutes 10] [--model tiny]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "tests"))

import serve_harness  # noqa: E402
from serve_bench import TRANSCRIPTS, tree_pids, tree_rss_mib  # noqa: E402


def sidecar_pid(serve_pid: int) -> int | None:
    """The Python process running the sidecar's server.py under `serve`."""
    for pid in tree_pids(serve_pid)[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"server.py") for arg in cmdline) and b"python" in cmdline[0]:
            return pid
    return None


def hang_up(url: str, body: bytes, after: float) -> str:
    """Send Handy's request, then close the connection before the answer."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=after)
    conn.request("POST", f"{parts.path}/chat/completions", body, serve_harness.HANDY_HEADERS)
    try:
        conn.getresponse().read()
        outcome = "answered before the hang-up"
    except (TimeoutError, OSError):
        outcome = "hung up"
    conn.close()
    return outcome


def ask(url: str, body: bytes) -> tuple[int, str]:
    """Status and (for an error) its message."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    conn.request("POST", f"{parts.path}/chat/completions", body, serve_harness.HANDY_HEADERS)
    response = conn.getresponse()
    data = json.loads(response.read() or b"{}")
    conn.close()
    if response.status == 200:
        return 200, data["choices"][0]["message"]["content"]
    return response.status, data.get("error", {}).get("message", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="tiny", choices=["tiny", "smol"])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    repo_id, path = serve_harness.fixture(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        stack = serve_harness.start(Path(tmp), path.parents[1])
        try:
            stack.pull(repo_id)
            proc, url = stack.serve("--keep-alive", "sec15", "--answer-within", "never")
            run(proc, url, repo_id, args.minutes * 60, rng)
        finally:
            stack.close()


def run(proc, url: str, repo_id: str, seconds: float, rng: random.Random) -> None:
    start = time.monotonic()
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    rss: list[tuple[float, float]] = []
    killed = None
    pauses = {seconds / 3, 2 * seconds / 3}
    while (now := time.monotonic() - start) < seconds:
        body = serve_harness.handy_body(
            repo_id, serve_harness.HANDY_PROMPT, rng.choice(TRANSCRIPTS)
        )
        if killed is None and now > seconds / 2:
            pid = sidecar_pid(proc.pid)
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed = round(now, 1)
                print(f"{now:6.1f} s: SIGKILL to the sidecar (pid {pid})", flush=True)
        if rng.random() < 0.2:
            outcome = hang_up(url, body, rng.uniform(0.1, 1.5))
        else:
            status, text = ask(url, body)
            outcome = "200" if status == 200 else f"{status}"
            if status != 200:
                errors.append(f"{status}: {text}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        rss.append((round(now, 1), round(tree_rss_mib(proc.pid), 1)))
        print(f"{now:6.1f} s: {outcome}, serve tree {rss[-1][1]:.0f} MiB", flush=True)
        pause = next((p for p in pauses if now >= p), None)
        if pause is not None:
            pauses.discard(pause)
            time.sleep(20)  # past --keep-alive sec15: the model unloads, the sidecar stops
        else:
            time.sleep(rng.uniform(2, 6))
    tree = tree_pids(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(1)
    left = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
    idle = [mib for _, mib in rss]
    summary = {
        "requests": sum(outcomes.values()),
        "outcomes": outcomes,
        "errors": sorted(set(errors)),
        "sidecar_killed_at_s": killed,
        "serve_tree_rss_mib": {"first": idle[0], "max": max(idle), "last": idle[-1]},
        "processes_left_after_sigterm": left,
    }
    print(json.dumps(summary, indent=2))
    bad = [e for e in errors if not e.split(": ", 1)[1]]
    if left or bad:
        raise SystemExit(f"soak failed: processes left {left}, errors without a message {bad}")


if __name__ == "__main__":
    main()
