"""Benchmark of the Python sidecar (not a test): what the sidecar costs over mlx-lm itself.

    uv run --project python-backend python bench/sidecar_bench.py [--reps 3] [--tokens 32]

from the repository root. It uses the *smol* fixture model (SmolLM2-135M-Instruct, 4-bit),
built by tools/build_fixtures.py, and measures in one run:

1. Generation: the sidecar's ``POST /generate`` (client-side wall time, HTTP included)
   against mlx-lm's ``stream_generate`` called directly in one Python process, for the
   same chat-templated prompt, sampling settings and token count (greedy, so both
   produce the same tokens). Before each timed sidecar request the model is unloaded and
   loaded again (untimed), so that its prompt cache is empty and both sides pre-fill the
   whole prompt (``cached`` = 0): like for like.
2. Startup: spawn to the ready line (the sidecar's venv python, and through
   ``uv run --offline --frozen``) against a bare ``python -c "import mlx_lm"``; and spawn
   to a loaded model (ready line + ``/load``) against ``import mlx_lm; mlx_lm.load(...)``.
3. The prompt cache: the same long system prompt twice with different user text.

It prints a Markdown report on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "python-backend"
SERVER = BACKEND / "server.py"
TOKEN = secrets.token_hex(16)
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PROMPTS = [
    "Write a short story about a cat who learns to sail.",
    "Describe a busy morning at a train station in a small town.",
    "Explain to a child why the sky changes colour at sunset.",
    "List some reasons people enjoy gardening and explain each.",
    "Tell me about a day in the life of a lighthouse keeper.",
    "Describe the smell and sounds of a bakery early in the morning.",
]
SYSTEM = (
    "You are a careful editor for dictated text. Correct grammar, spelling and punctuation. "
    "Keep the speaker's words and meaning, keep the language they spoke, remove filler words "
    "such as um and uh, and answer with the corrected text only, without any comment."
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    e.update(LOCAL_MLX_TOKEN=TOKEN, UV_PYTHON_DOWNLOADS="never")
    return e


def smol_path() -> Path:
    out = subprocess.run(
        ["uv", "run", "--project", "tools", "python", "tools/build_fixtures.py", "smol"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env(),
    ).stdout
    return Path(out.strip().split("\t")[2])


class Proc:
    def __init__(self, cmd: list[str], cwd: Path = BACKEND) -> None:
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        line = self.p.stdout.readline().decode()
        self.ready = time.perf_counter() - self.t0
        assert line.startswith("LOCAL_MLX_READY port="), line
        self.url = f"http://127.0.0.1:{int(line.split('=')[1])}"
        self.c = httpx.Client(base_url=self.url, headers=AUTH, timeout=600)

    def stop(self) -> None:
        self.c.close()
        self.p.stdin.close()
        self.p.wait(30)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_startup(smol: Path, reps: int) -> list[tuple[str, float]]:
    py = sys.executable
    rows: dict[str, list[float]] = {
        k: [] for k in ("bare", "ready", "ready_uv", "mlx_ready", "bare_load", "ready_load")
    }
    for i in range(reps):
        log(f"startup rep {i + 1}/{reps}")
        t = time.perf_counter()
        subprocess.run([py, "-c", "import mlx_lm"], check=True, env=env())
        rows["bare"].append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(
            [py, "-c", f"import mlx_lm; mlx_lm.load({str(smol)!r})"], check=True, env=env()
        )
        rows["bare_load"].append(time.perf_counter() - t)

        s = Proc([py, str(SERVER), "--port", "0"])
        rows["ready"].append(s.ready)
        while not s.c.get("/status").json()["mlx_ready"]:
            time.sleep(0.005)
        rows["mlx_ready"].append(time.perf_counter() - s.t0)
        s.stop()

        s = Proc([py, str(SERVER), "--port", "0"])
        s.c.post("/load", json={"model_path": str(smol)}).raise_for_status()
        rows["ready_load"].append(time.perf_counter() - s.t0)
        s.stop()

        s = Proc(
            [
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
            ],
            cwd=ROOT,
        )
        rows["ready_uv"].append(s.ready)
        s.stop()
    return [(k, median(v)) for k, v in rows.items()]


def direct_generate(model, tokenizer, prompt: str, max_tokens: int) -> tuple[float, int, str]:
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_logits_processors, make_sampler

    t = time.perf_counter()
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    tokens = tokenizer.encode(text, add_special_tokens=False)
    out, n = "", 0
    for r in stream_generate(
        model,
        tokenizer,
        tokens,
        max_tokens=max_tokens,
        sampler=make_sampler(temp=0.0, top_p=0.8),
        logits_processors=make_logits_processors(repetition_penalty=1.15),
    ):
        out += r.text
        n = r.generation_tokens - (1 if r.finish_reason == "stop" else 0)
    return time.perf_counter() - t, n, out


def bench_generate(smol: Path, reps: int, max_tokens: int) -> list[dict]:
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(smol))
    s = Proc([sys.executable, str(SERVER), "--port", "0"])
    s.c.post("/load", json={"model_path": str(smol)}).raise_for_status()
    body = {"max_tokens": max_tokens, "temperature": 0.0}
    # Warm both up (first calls are slower), with a prompt not used below.
    s.c.post(
        "/generate", json={"messages": [{"role": "user", "content": "Hello!"}], **body}
    ).raise_for_status()
    direct_generate(model, tokenizer, "Hello!", max_tokens)
    rows = []
    for i in range(reps):
        prompt = PROMPTS[i % len(PROMPTS)]
        log(f"generate rep {i + 1}/{reps}")
        s.c.post("/unload").raise_for_status()  # empty the prompt cache (untimed)
        s.c.post("/load", json={"model_path": str(smol)}).raise_for_status()
        t = time.perf_counter()
        r = s.c.post("/generate", json={"messages": [{"role": "user", "content": prompt}], **body})
        side = time.perf_counter() - t
        r.raise_for_status()
        j = r.json()
        direct, n, text = direct_generate(model, tokenizer, prompt, max_tokens)
        rows.append(
            {
                "prompt_tokens": j["prompt_tokens"],
                "cached": j["cached_tokens"],
                "tokens": j["tokens_generated"],
                "direct_tokens": n,
                "sidecar": side,
                "direct": direct,
                "same_text": j["response"] == text.strip(),
            }
        )
    # The prompt cache: one long system prompt, two transcripts.
    log("prompt cache")
    cache_rows = []
    for user in (
        "um so the meeting is moved to thursday i think",
        "uh please send me the report by friday",
    ):
        t = time.perf_counter()
        j = s.c.post(
            "/generate",
            json={
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user},
                ],
                "max_tokens": 8,
                "temperature": 0.0,
            },
        ).json()
        cache_rows.append(
            {
                "wall": time.perf_counter() - t,
                "prompt_tokens": j["prompt_tokens"],
                "cached": j["cached_tokens"],
                "tokens": j["tokens_generated"],
            }
        )
    s.stop()
    return rows, cache_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    smol = smol_path()
    log(f"smol model: {smol}")
    startup = bench_startup(smol, args.reps)
    gen, cache = bench_generate(smol, args.reps, args.tokens)

    print(f"Model: smol (SmolLM2-135M-Instruct, 4-bit), {os.cpu_count()} CPU cores, mlx[cpu].\n")
    print(f"### /generate against mlx-lm directly ({args.tokens} new tokens, greedy)\n")
    print(
        "| prompt tokens | cached | tokens (sidecar / direct) | same text | sidecar s | direct s | ratio |"
    )
    print("| ---: | ---: | ---: | :---: | ---: | ---: | ---: |")
    for r in gen:
        print(
            f"| {r['prompt_tokens']} | {r['cached']} | {r['tokens']} / {r['direct_tokens']} | "
            f"{'yes' if r['same_text'] else 'no'} | {r['sidecar']:.2f} | {r['direct']:.2f} | "
            f"{r['sidecar'] / r['direct']:.3f} |"
        )
    ratio = sum(r["sidecar"] for r in gen) / sum(r["direct"] for r in gen)
    print(f"\nSidecar / direct, total time: **{ratio:.3f}**\n")
    names = {
        "bare": 'bare `python -c "import mlx_lm"` (to exit)',
        "ready": "sidecar spawn → ready line (venv python)",
        "ready_uv": "sidecar spawn → ready line (`uv run --offline --frozen`)",
        "mlx_ready": "sidecar spawn → `mlx_ready` (MLX imported on the worker)",
        "bare_load": "bare `import mlx_lm; mlx_lm.load(smol)` (to exit)",
        "ready_load": "sidecar spawn → ready → `/load` smol done",
    }
    print(f"### Startup (median of {args.reps})\n")
    print("| what | seconds |")
    print("| --- | ---: |")
    for k, v in startup:
        print(f"| {names[k]} | {v:.2f} |")
    d = dict(startup)
    print(
        f"\nReady line / bare import: **{d['ready'] / d['bare']:.2f}**; "
        f"spawn→loaded / bare import+load: **{d['ready_load'] / d['bare_load']:.2f}**\n"
    )
    print("### Prompt (KV) cache: the same system prompt twice (8 new tokens)\n")
    print("| request | prompt tokens | cached | seconds |")
    print("| --- | ---: | ---: | ---: |")
    for i, r in enumerate(cache, 1):
        print(f"| {i} | {r['prompt_tokens']} | {r['cached']} | {r['wall']:.2f} |")


if __name__ == "__main__":
    main()
