"""Handy's exact request against `local-mlx serve` and against `mlx_lm.server`.

Both servers answer the same bytes Handy's "Custom" provider sends (its headers, its
body, its default prompt with a one-sentence transcript), on the *smol* fixture model,
from the same HF cache (same files), with the same mlx-lm (python-backend's venv).
Each server is started as a user would start it:

    local-mlx serve --port 0 --keep-alive sec15
    python -m mlx_lm.server --model <repo id> --port <free port>

and measured for: cold (spawn to the first answer, and that first request alone), warm
(the model loaded; a different transcript each time), warm with a template that puts
the transcript last (the instructions become a reusable KV prefix), and the resident
memory of the whole process tree 30 s after the last request.

Run from the repository root (the fixtures, test hub and binaries are built as needed):

    uv run --frozen --project tools python bench/serve_bench.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "tests"))

import serve_harness  # noqa: E402

HANDY_PROMPT = serve_harness.HANDY_PROMPT
HANDY_INSTRUCTIONS = HANDY_PROMPT.split("</transcript>\n\n", 1)[1]
# The same words with the transcript last: everything before it is a shared prefix.
TRANSCRIPT_LAST = (
    HANDY_INSTRUCTIONS.replace("The above is", "Below is")
    + "\n\n<transcript>\n${output}\n</transcript>"
)
TRANSCRIPTS = [
    "um so i think we should uh meet tomorrow at ten",
    "can you send me the the report by friday please",
    "uh the train was late again so i missed the first talk",
    "we need like twenty five chairs for the party on saturday",
    "so basically the new laptop is much faster than the old one",
    "i will call you back after lunch if that works for you",
]
handy_body = serve_harness.handy_body


def ask(url: str, body: bytes) -> tuple[float, dict]:
    """One request as Handy sends it; a failed one ends the run with its reason."""
    try:
        return serve_harness.handy_ask(url, body)
    except AssertionError as error:
        raise SystemExit(str(error)) from error


def listening(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tree_pids(root: int) -> list[int]:
    """`root` and every descendant, from /proc (a process may be gone by the time it is read)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(") ", 1)[1].split()[1])
    pids, index = [root], 0
    while index < len(pids):
        pids += [pid for pid, parent in parents.items() if parent == pids[index]]
        index += 1
    return pids


def tree_rss_mib(root: int) -> float:
    """Resident memory of `root` and every descendant, in MiB."""
    total_kib = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            pass
    return total_kib / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ours(stack: serve_harness.Stack) -> tuple[subprocess.Popen, str]:
    return stack.serve("--keep-alive", "sec15", "--answer-within", "never")


def start_theirs(stack: serve_harness.Stack, repo_id: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    python = ROOT / "python-backend" / ".venv" / "bin" / "python"
    proc = subprocess.Popen(
        [str(python), "-m", "mlx_lm.server", "--model", repo_id, "--port", str(port)],
        env=stack.env(HF_HUB_OFFLINE="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.processes.append(proc)
    url = f"http://127.0.0.1:{port}/v1"
    while not listening(url):
        if proc.poll() is not None:
            raise SystemExit("mlx_lm.server exited before listening")
        time.sleep(0.05)
    return proc, url


def run(name, start, repo_id: str, reps: int, idle_wait: float) -> dict:
    t_spawn = time.perf_counter()
    proc, url = start()
    cold_request, first = ask(url, handy_body(repo_id, HANDY_PROMPT, TRANSCRIPTS[0]))
    cold_total = time.perf_counter() - t_spawn
    print(
        f"{name}: cold {cold_total:.2f} s (request {cold_request:.2f} s): {first['choices'][0]['message']['content']!r}"
    )
    result = {"cold_total": cold_total, "cold_request": cold_request, "warm": [], "last": []}
    for i in range(reps):
        seconds, answer = ask(url, handy_body(repo_id, HANDY_PROMPT, TRANSCRIPTS[1 + i]))
        result["warm"].append(seconds)
        print(f"{name}: warm {seconds:.2f} s, {answer['usage']['completion_tokens']} tokens")
    # One untimed request puts the transcript-last prefix in the cache, then the timed ones.
    ask(url, handy_body(repo_id, TRANSCRIPT_LAST, TRANSCRIPTS[-1]))
    for i in range(reps):
        seconds, answer = ask(url, handy_body(repo_id, TRANSCRIPT_LAST, TRANSCRIPTS[1 + i]))
        result["last"].append(seconds)
        cached = answer.get("usage", {}).get("prompt_tokens_details") or {}
        print(f"{name}: transcript-last {seconds:.2f} s, cached {cached.get('cached_tokens', '?')}")
    result["busy_rss"] = tree_rss_mib(proc.pid)
    time.sleep(idle_wait)
    result["idle_rss"] = tree_rss_mib(proc.pid)
    print(
        f"{name}: RSS {result['busy_rss']:.0f} MiB after the last request, {result['idle_rss']:.0f} MiB {idle_wait:.0f} s later"
    )
    proc.terminate()
    proc.wait(timeout=30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="warm requests per template")
    parser.add_argument("--idle-wait", type=float, default=30.0, help="seconds before the idle RSS")
    parser.add_argument("--profile", default="debug", choices=["debug", "release"])
    parser.add_argument("--model", default="smol", choices=["smol", "tiny"], help="fixture model")
    args = parser.parse_args()

    repo_id, path = serve_harness.fixture(args.model)
    with tempfile.TemporaryDirectory() as home:
        stack = serve_harness.start(Path(home), path.parents[1], args.profile)
        try:
            stack.pull(repo_id)
            ours = run(
                "local-mlx serve", lambda: start_ours(stack), repo_id, args.reps, args.idle_wait
            )
            theirs = run(
                "mlx_lm.server",
                lambda: start_theirs(stack, repo_id),
                repo_id,
                args.reps,
                args.idle_wait,
            )
        finally:
            stack.close()

    med = statistics.median
    rows = [
        ("cold: spawn → first answer (s)", ours["cold_total"], theirs["cold_total"]),
        ("cold: first request alone (s)", ours["cold_request"], theirs["cold_request"]),
        ("warm, Handy's prompt, median (s)", med(ours["warm"]), med(theirs["warm"])),
        ("warm, transcript last, median (s)", med(ours["last"]), med(theirs["last"])),
        ("RSS right after the last request (MiB)", ours["busy_rss"], theirs["busy_rss"]),
        (
            f"RSS {args.idle_wait:.0f} s after the last request (MiB)",
            ours["idle_rss"],
            theirs["idle_rss"],
        ),
    ]
    print(
        f"\n| {args.model}, {args.reps} warm request(s) per template | local-mlx serve | mlx_lm.server | ratio |"
    )
    print("|---|---|---|---|")
    for label, a, b in rows:
        print(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    print(f"\nper request: {json.dumps({'ours': ours, 'theirs': theirs})}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
