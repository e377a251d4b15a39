"""What a dictation costs Handy when the model is too slow: `local-mlx serve --answer-within`.

Handy's exact request (its headers, its default prompt, no client timeout) against
`local-mlx serve`, whose sidecar is `tools/scripted-sidecar` answering from a table
slowly: a load that takes a minute (a cold start on a busy machine), an answer of one
word a second (a runaway answer), and, as the anchor, an answer at once. For each
deadline the wall time of the request is measured; the server must answer with the
transcript (`kept_original: deadline`) within the deadline plus one second.

Run from the repository root (the fixture, test hub and binaries are built as needed):

    uv run --frozen --project tools python bench/deadline_cost.py --deadlines 2s 5s 15s
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "tests"))

import serve_harness  # noqa: E402

TRANSCRIPT = "um so i think we should uh meet tomorrow at ten"
SLOW = "so this dictation takes the model forever to clean"
FAST_ANSWER = "I think we should meet tomorrow at 10."
SLOW_ANSWER = " ".join(["So this dictation takes the model forever to clean."] * 6)
LOAD_SECONDS = 60


def seconds(deadline: str) -> float:
    """`2s`, `1500ms`, `1m` as seconds (the forms this script is given)."""
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if deadline.endswith(unit) and deadline[: -len(unit)].isdigit():
            return int(deadline[: -len(unit)]) * scale
    raise SystemExit(f"{deadline!r}: give a deadline like 2s, 1500ms or 1m")


def script(path: Path, slow_load: bool) -> Path:
    rows = [
        {"when": TRANSCRIPT, "answer": FAST_ANSWER},
        {"when": SLOW, "answer": SLOW_ANSWER, "seconds_per_word": 1.0},
    ]
    if slow_load:
        rows.append({"load_when": "models--", "seconds": LOAD_SECONDS})
    path.write_text(json.dumps(rows))
    return path


def ask(url: str, model: str, transcript: str) -> tuple[float, dict]:
    body = serve_harness.handy_body(model, serve_harness.HANDY_PROMPT, transcript)
    return serve_harness.handy_ask(url, body)


def kept(answer: dict) -> str:
    """`deadline`, the clean-up check's reason for keeping the transcript (`cut_off`,
    `answers_question`, …), or `answered` for a clean-up the model gave in time."""
    check = answer.get("local_mlx", {}).get("clean_up") or {}
    return check.get("kept_original") or "answered"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadlines", nargs="+", default=["2s", "5s", "15s"])
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    repo_id, model_dir = serve_harness.fixture("tiny")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        stack = serve_harness.start(home, model_dir.parents[1])
        try:
            stack.pull(repo_id)
            backend = str(ROOT / "tools" / "scripted-sidecar")
            for deadline in args.deadlines:
                limit = seconds(deadline)
                env = {
                    "LOCAL_MLX_BACKEND_DIR": backend,
                    "LOCAL_MLX_SCRIPT": str(script(home / "slow-load.json", True)),
                }
                proc, url = stack.serve("--answer-within", deadline, **env)
                took, answer = ask(url, repo_id, TRANSCRIPT)
                rows.append(("cold, a load of 60 s", deadline, limit, took, kept(answer)))
                proc.terminate()
                proc.wait()
                env["LOCAL_MLX_SCRIPT"] = str(script(home / "fast-load.json", False))
                proc, url = stack.serve("--answer-within", deadline, **env)
                ask(url, repo_id, TRANSCRIPT)  # loaded: the sidecar's start and load are behind us
                took, answer = ask(url, repo_id, TRANSCRIPT)
                rows.append(
                    ("warm, an answer at once (anchor)", deadline, limit, took, kept(answer))
                )
                took, answer = ask(url, repo_id, SLOW)
                rows.append(("warm, one word a second (60 s)", deadline, limit, took, kept(answer)))
                proc.terminate()
                proc.wait()
        finally:
            stack.close()
    print("| case | --answer-within | request took | over the deadline | answer |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for case, deadline, limit, took, how in rows:
        over = took - limit
        if how == "deadline":
            worst = max(worst, over)
        print(f"| {case} | {deadline} | {took:.2f} s | {over:+.2f} s | {how} |")
    print(f"\nmost over a deadline: {worst:+.2f} s (must stay under +1 s)")
    if args.out:
        keys = ("case", "deadline", "deadline_s", "took_s", "answer")
        args.out.write_text(
            json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=1)
        )
    if worst >= 1.0:
        raise SystemExit("a request cost more than its deadline plus one second")


if __name__ == "__main__":
    main()
