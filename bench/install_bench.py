"""From nothing to the first cleaned answer: the `local-mlx` wheel against mlx-lm's own
server, in a fresh HOME each, on the *smol* fixture served by a local test hub.

    ours:   uv tool install <wheel>  →  local-mlx setup <smol>  →  local-mlx serve + Handy's request
    theirs: uv venv + uv pip install mlx-lm (+ mlx[cpu] on Linux)  →  python -m mlx_lm.server
            --model <smol> (it downloads the model at start-up)  + Handy's request

Both install from the same warm package cache (uv's), so neither pays the registry's
download speed; the split says where each one's time goes. The first request after
`setup` must not include an environment sync: the sidecar log is checked for one.

    uv run --frozen --project tools python bench/install_bench.py [--wheel PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "tests"))

import serve_harness  # noqa: E402
from serve_bench import free_port, listening  # noqa: E402

TRANSCRIPT = "um so i think we should uh meet tomorrow at ten"


def fresh_env(home: Path, hub_url: str, uv_cache: str) -> dict[str, str]:
    env = {
        "HOME": str(home),
        "PATH": f"{home / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "UV_TOOL_DIR": str(home / "uv-tools"),
        "UV_TOOL_BIN_DIR": str(home / "bin"),
        "UV_CACHE_DIR": uv_cache,
        "UV_PYTHON_DOWNLOADS": "never",
        "HF_ENDPOINT": hub_url,
    }
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


def first_answer(proc: subprocess.Popen, url: str, repo_id: str) -> tuple[float, str]:
    """Seconds from now to the first answer of Handy's request, and its text."""
    t0 = time.perf_counter()
    while not listening(url):
        if proc.poll() is not None:
            raise SystemExit(f"the server at {url} exited before listening")
        time.sleep(0.05)
    body = serve_harness.handy_body(repo_id, serve_harness.HANDY_PROMPT, TRANSCRIPT)
    _, answer = serve_harness.handy_ask(url, body)
    return time.perf_counter() - t0, answer["choices"][0]["message"]["content"]


def ours(uv: str, wheel: Path, home: Path, hub_url: str, cache: str, repo_id: str) -> dict:
    env = fresh_env(home, hub_url, cache)
    result = {"install": timed([uv, "tool", "install", str(wheel)], env)}
    local_mlx = str(home / "bin" / "local-mlx")
    result["setup"] = timed([local_mlx, "setup", repo_id], env)
    log = home / ".config" / "local-mlx" / "sidecar.log"
    syncs = log.read_text().count("--- uv sync")
    proc = subprocess.Popen(
        [local_mlx, "serve", "--port", "0"],
        env={**env, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().split(": ", 1)[1].strip()
        result["first_request"], result["answer"] = first_answer(proc, url, repo_id)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    result["synced_at_first_request"] = log.read_text().count("--- uv sync") > syncs
    return result


def theirs(uv: str, home: Path, hub_url: str, cache: str, repo_id: str) -> dict:
    env = fresh_env(home, hub_url, cache)
    venv = home / "mlx-env"
    packages = ["mlx-lm"] + (["mlx[cpu]"] if sys.platform == "linux" else [])
    t0 = time.perf_counter()
    subprocess.run([uv, "venv", "--quiet", str(venv)], env=env, check=True)
    timed(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *packages], env
    )
    result = {"install": time.perf_counter() - t0, "setup": 0.0}
    port = free_port()
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "python"),
            "-m",
            "mlx_lm.server",
            "--model",
            repo_id,
            "--port",
            str(port),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result["first_request"], result["answer"] = first_answer(
            proc, f"http://127.0.0.1:{port}/v1", repo_id
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wheel", type=Path, help="a built wheel (default: tools/build-wheel.sh's release build)"
    )
    args = parser.parse_args()
    wheel = args.wheel
    if wheel is None:
        out = subprocess.run(
            [str(ROOT / "tools" / "build-wheel.sh")], check=True, capture_output=True, text=True
        )
        wheel = Path(out.stdout.strip().splitlines()[-1])
    uv = shutil.which("uv")
    cache = subprocess.run(
        [uv, "cache", "dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    repo_id, path = serve_harness.fixture("smol")
    with tempfile.TemporaryDirectory() as tmp:
        stack = serve_harness.start(Path(tmp) / "hub", path.parents[1])
        try:
            rows = {
                "ours": ours(uv, wheel, Path(tmp) / "ours", stack.hub_url, cache, repo_id),
                "theirs": theirs(uv, Path(tmp) / "theirs", stack.hub_url, cache, repo_id),
            }
        finally:
            stack.close()
    for name, row in rows.items():
        row["total"] = row["install"] + row["setup"] + row["first_request"]
        print(
            f"{name}: install {row['install']:.1f} s, setup {row['setup']:.1f} s, "
            f"first request {row['first_request']:.1f} s, total {row['total']:.1f} s: {row['answer']!r}"
        )
    print(f"ours synced at the first request: {rows['ours']['synced_at_first_request']}")
    for key in ("total", "first_request"):
        print(f"ratio ours/theirs {key}: {rows['ours'][key] / rows['theirs'][key]:.2f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
