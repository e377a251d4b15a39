"""Benchmark of the Linux CPU path (not a test): OpenBLAS under MLX, fp32 weights.

    uv run --project python-backend python bench/cpu_bench.py [--reps 3]

from the repository root, on Linux with OpenBLAS installed (tools/ensure-system-deps.sh).
It uses the *smol* fixture model (SmolLM2-135M-Instruct, 4-bit), built by
tools/build_fixtures.py, and runs the real sidecar (``server.py``) in four modes, in
turn within each repetition so that a noisy machine hits them alike:

- ``before``: MLX's bundled reference BLAS, 4-bit weights (what every start did before);
- ``openblas only``: OpenBLAS preloaded as the supervisor does, weights kept 4-bit;
- ``fp32 only``: the reference BLAS, weights dequantized to fp32;
- ``after``: OpenBLAS and fp32 (what the supervisor now starts on Linux).

For each: a ~200-token prompt pre-filled from scratch (a nonce first defeats the prompt
cache), pre-fill time = prompt tokens / the sidecar's ``prompt_tps``; one decode step =
1 / ``generation_tps`` over 8 greedy tokens; the sidecar's RSS (VmRSS, and its peak
VmHWM) after the requests. It prints a Markdown table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sidecar_bench import smol_path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "python-backend"
SERVER = BACKEND / "server.py"
TOKEN = secrets.token_hex(16)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENTENCE = "so um I was thinking that we could uh maybe meet tomorrow at the office and "
DECODE_TOKENS = 8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def openblas() -> dict[str, str]:
    soname = ctypes.util.find_library("openblasp") or ctypes.util.find_library("openblas")
    if not soname:
        sys.exit("OpenBLAS is not installed: apt-get install libopenblas0-pthread")
    return {"LD_PRELOAD": soname, "OPENBLAS_NUM_THREADS": str(len(os.sched_getaffinity(0)))}


MODES = {
    "before": {"LOCAL_MLX_CPU_WEIGHTS": "quantized"},
    "openblas only": {"LOCAL_MLX_CPU_WEIGHTS": "quantized", "BLAS": "1"},
    "fp32 only": {"LOCAL_MLX_CPU_WEIGHTS": "fp32"},
    "after": {"LOCAL_MLX_CPU_WEIGHTS": "auto", "BLAS": "1"},
}


def env(mode: dict[str, str]) -> dict[str, str]:
    e = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "LD_PRELOAD", "OPENBLAS_NUM_THREADS")
    }
    e.update(LOCAL_MLX_TOKEN=TOKEN, LOCAL_MLX_CPU_WEIGHTS=mode["LOCAL_MLX_CPU_WEIGHTS"])
    if mode.get("BLAS"):
        e.update(openblas())
    return e


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def run(mode: dict[str, str], smol: Path) -> dict[str, float | str]:
    p = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0"],
        cwd=BACKEND,
        env=env(mode),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        line = p.stdout.readline().decode()
        assert line.startswith("LOCAL_MLX_READY port="), line
        c = httpx.Client(
            base_url=f"http://127.0.0.1:{int(line.split('=')[1])}", headers=AUTH, timeout=900
        )
        c.post("/load", json={"model_path": str(smol)}).raise_for_status()
        st = c.get("/status").json()
        r = c.post(
            "/generate",
            json={
                "messages": [
                    {"role": "user", "content": secrets.token_hex(4) + " " + SENTENCE * 11}
                ],
                "max_tokens": DECODE_TOKENS + 1,
                "temperature": 0,
                "repetition_penalty": 1.0,
            },
        )
        r.raise_for_status()
        g = r.json()
        assert g["cached_tokens"] == 0, g
        pid = st["pid"]
        result = {
            "prompt_tokens": g["prompt_tokens"],
            "prefill_s": g["prompt_tokens"] / g["prompt_tps"],
            "decode_ms": 1000 / g["generation_tps"],
            "rss_mib": kib(pid, "VmRSS") / 1024,
            "hwm_mib": kib(pid, "VmHWM") / 1024,
            "weights": st["weights"],
            "blas": st["blas"],
        }
        c.close()
        return result
    finally:
        p.stdin.close()
        p.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    smol = smol_path()
    rows: dict[str, list[dict]] = {name: [] for name in MODES}
    for i in range(args.reps):
        for name, mode in MODES.items():
            t = time.perf_counter()
            rows[name].append(run(mode, smol))
            log(
                f"rep {i + 1}/{args.reps} {name}: {rows[name][-1]} ({time.perf_counter() - t:.0f} s)"
            )
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("prefill_s", "decode_ms")}
        for name, rs in rows.items()
    }
    base = med["before"]
    print(
        f"| mode (smol, medians of {args.reps}) | weights | BLAS | pre-fill "
        f"({rows['before'][0]['prompt_tokens']} tokens) | vs before | one decode step | "
        "vs before | sidecar RSS (peak) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in rows.items():
        m = med[name]
        print(
            f"| {name} | {rs[0]['weights']} | {rs[0]['blas']} | {m['prefill_s']:.2f} s | "
            f"{base['prefill_s'] / m['prefill_s']:.1f}× | {m['decode_ms']:.0f} ms | "
            f"{base['decode_ms'] / m['decode_ms']:.2f}× | "
            f"{max(r['rss_mib'] for r in rs):.0f} MiB ({max(r['hwm_mib'] for r in rs):.0f} MiB) |"
        )


if __name__ == "__main__":
    main()
