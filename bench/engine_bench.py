"""Native engine (crates/local-mlx-engine) vs the sidecar's engine, in one run.

    source tools/ensure-mlx.sh
    cargo build --release -p local-mlx-engine
    python-backend/.venv/bin/python bench/engine_bench.py [--limit N] [--modes quantized,fp32]
        [--models smol,tiny] [--soak 500] [--constrain]

Both engines run as worker processes driven the same way over the same line protocol
(the sidecar's side: bench/engine_sidecar_worker.py, python-backend's Engine + mlx-lm).
For each model and weights mode (quantized; fp32 with OpenBLAS preloaded, as the
supervisor starts the sidecar):

* parity: every transcript of eval/transcripts.jsonl (the first --limit) with the
  default clean-up prompt (eval/prompts/v2.txt) and `max_tokens_for`, one model load,
  in order (so the instruction-prefix cache is used as in real use); the generated
  token ids must be equal; each difference is listed; --constrain sets the transcript
  constraint (constrain_to_input) on each;
* cold start: process start -> model loaded (median of --starts; with --starts-only the
  two engines alternate, start by start);
* speed: pre-fill of a ~200-token prompt (the prefix cache defeated) and decode ms/token;
* memory: VmRSS after load, VmHWM at the end.

--speed-ab N: only the speed, both engines loaded at once and N requests each,
alternating.

--soak N (native only, tiny): N requests, every 10th cancelled during its pre-fill, then
a SIGKILL mid-answer and a fresh worker; RSS before/after. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("LOCAL_MLX_FIXTURES", Path.home() / ".cache/local-mlx/fixtures"))
MODELS = {
    "smol": FIXTURES / "repos/local-mlx-test/SmolLM2-135M-Instruct-Q4",
    "tiny": FIXTURES / "repos/local-mlx-test/tiny-random-qwen3",
}
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
NATIVE = [str(TARGET / "release/local-mlx-engine")]
SIDECAR = [sys.executable, str(ROOT / "bench/engine_sidecar_worker.py")]
OPENBLAS = "/lib/x86_64-linux-gnu/libopenblas.so.0"
MAX_OUTPUT_TOKENS = 4096


def max_tokens_for(transcript: str) -> int:
    """crates/local-mlx/src/postprocess.rs's budget."""
    return min((len(transcript) + 3) // 4 * 3 // 2 + 64, MAX_OUTPUT_TOKENS)


def instructions() -> str:
    return (ROOT / "eval/prompts/v2.txt").read_text().strip().removesuffix("${output}").strip()


def messages(system: str, user: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class Worker:
    """One engine process, spoken to over its stdin/stdout."""

    def __init__(self, cmd: list[str], mode: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "python-backend"), LOCAL_MLX_CPU_WEIGHTS=mode)
        if mode == "fp32":
            env.update(LD_PRELOAD=OPENBLAS, OPENBLAS_NUM_THREADS=str(os.cpu_count() or 1))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        self.ready = self.next()
        assert self.ready["event"] == "ready", self.ready
        self.next_id = 0

    def next(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited: {self.proc.wait()}")
        return json.loads(line)

    def send(self, cmd: dict) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def load(self, path: Path) -> tuple[float, dict]:
        self.send({"op": "load", "path": str(path)})
        event = self.next()
        assert event["event"] == "loaded", event
        return (time.perf_counter() - self.started) * 1000, event

    def generate(
        self, msgs: list[dict], max_tokens: int, cancel: bool = False, constrain: bool = False
    ) -> dict:
        self.next_id += 1
        self.send(
            {
                "op": "generate",
                "id": self.next_id,
                "messages": msgs,
                "max_tokens": max_tokens,
                "constrain_to_input": constrain,
            }
        )
        if cancel:
            self.send({"op": "cancel", "id": self.next_id})
        while True:
            event = self.next()
            if event["event"] != "token":
                return event

    def status(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
        return -1

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def cold_starts(
    engines: list[list[str]], model: Path, mode: str, starts: int
) -> list[tuple[list[float], int]]:
    """Start → loaded for `starts` fresh processes of each engine, alternating (so a
    change in the machine's load hits both alike), and each one's last RSS after load."""
    out: list[tuple[list[float], int]] = [([], -1) for _ in engines]
    for _ in range(starts):
        for i, cmd in enumerate(engines):
            w = Worker(cmd, mode)
            ms, _ = w.load(model)
            out[i][0].append(ms)
            out[i] = (out[i][0], w.status("VmRSS"))
            w.close()
    return out


def run_engine(
    name: str,
    cmd: list[str],
    model: Path,
    mode: str,
    rows: list[dict],
    starts: int,
    constrain: bool,
):
    out: dict = {"starts": [], "answers": []}
    for _ in range(starts):  # cold starts: a fresh process each
        w = Worker(cmd, mode)
        ms, _ = w.load(model)
        out["starts"].append(ms)
        w.close()
    w = Worker(cmd, mode)
    ms, loaded = w.load(model)
    out["starts"].append(ms)
    out["weights"] = loaded["weights"]
    out["rss_loaded"] = w.status("VmRSS")
    system = instructions()
    for row in rows:
        msgs = messages(system, row["raw"])
        event = w.generate(msgs, max_tokens_for(row["raw"]), constrain=constrain)
        assert event["event"] == "answer", event
        out["answers"].append(event["answer"])
    # Speed: a ~200-token prompt the prefix cache cannot help (a new first word each).
    long_user = " ".join(r["raw"] for r in rows[:12])[:760]
    prefill, decode = [], []
    for i in range(3):
        user = [{"role": "user", "content": f"Run {i}: {long_user}"}]
        a = w.generate(user, 32)["answer"]
        prefill.append((a["prefill_ms"], a["prompt_tokens"]))
        if len(a["tokens"]) > 1:
            decode.append(a["decode_ms"] / (len(a["tokens"]) - 1))
    out["prefill"] = prefill
    out["decode_ms_per_token"] = statistics.median(decode) if decode else None
    out["rss_peak"] = w.status("VmHWM")
    w.close()
    print(f"  {name}: done", file=sys.stderr, flush=True)
    return out


def speed_ab(model: Path, mode: str, rows: list[dict], rounds: int) -> list[str]:
    """Pre-fill and decode with both engines loaded at once, request by request
    alternating (so a change in the machine's load hits both alike)."""
    workers = {"native": Worker(NATIVE, mode), "sidecar": Worker(SIDECAR, mode)}
    for w in workers.values():
        w.load(model)
    long_user = " ".join(r["raw"] for r in rows[:12])[:760]
    got: dict[str, dict[str, list[float]]] = {n: {"prefill": [], "decode": []} for n in workers}
    tokens = 0
    for i in range(rounds):
        for name, w in workers.items():
            a = w.generate([{"role": "user", "content": f"Run {i}: {long_user}"}], 32)["answer"]
            tokens = a["prompt_tokens"]
            got[name]["prefill"].append(a["prefill_ms"])
            if len(a["tokens"]) > 1:
                got[name]["decode"].append(a["decode_ms"] / (len(a["tokens"]) - 1))
    for w in workers.values():
        w.close()
    n, s = got["native"], got["sidecar"]
    npf, spf = statistics.median(n["prefill"]), statistics.median(s["prefill"])
    nd, sd = statistics.median(n["decode"]), statistics.median(s["decode"])
    return [
        f"| pre-fill, {tokens}-token prompt, median of {rounds} (ms) | {npf:.0f} | {spf:.0f} | {npf / spf:.2f} |",
        f"| decode, median of {rounds} (ms/token) | {nd:.1f} | {sd:.1f} | {nd / sd:.2f} |",
    ]


def compare(rows, native, sidecar) -> list[str]:
    diffs = []
    for row, a, b in zip(rows, native["answers"], sidecar["answers"]):
        if a["tokens"] != b["tokens"]:
            at = next((i for i, (x, y) in enumerate(zip(a["tokens"], b["tokens"])) if x != y), None)
            diffs.append(
                f"{row['id']}: first difference at token {at}: {a['text']!r} vs {b['text']!r}"
            )
    return diffs


def soak(n: int) -> list[str]:
    model = MODELS["tiny"]
    w = Worker(NATIVE, "quantized")
    w.load(model)
    system = instructions()
    w.generate(messages(system, "warm up"), 8)
    rss0 = w.status("VmRSS")
    counts = {"answer": 0, "cancelled": 0, "error": 0}
    for i in range(n):
        cancel = i % 10 == 0
        e = w.generate(messages(system, f"request {i} " + "word " * (i % 50)), 16, cancel=cancel)
        counts[e["event"]] = counts.get(e["event"], 0) + 1
    rss1 = w.status("VmRSS")
    # SIGKILL mid-answer: a long answer, killed after its first token.
    w.send({"op": "generate", "id": 10**6, "messages": messages(system, "x"), "max_tokens": 4000})
    assert w.next()["event"] == "token"
    os.kill(w.proc.pid, signal.SIGKILL)
    code = w.proc.wait()
    w2 = Worker(NATIVE, "quantized")
    w2.load(model)
    after = w2.generate(messages(system, "after the kill"), 8)
    w2.close()
    return [
        f"| requests | {n} ({counts['answer']} answered, {counts['cancelled']} cancelled in pre-fill, "
        f"{counts['error']} errors) |",
        f"| worker RSS after warm-up → after {n} requests | {rss0} MiB → {rss1} MiB |",
        f"| SIGKILL mid-answer | worker exit {code}; a new worker answered: {after['event']} |",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=85)
    ap.add_argument("--models", default="smol,tiny")
    ap.add_argument("--modes", default="quantized,fp32")
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--soak", type=int, default=0)
    ap.add_argument("--starts-only", action="store_true", help="cold starts and RSS only")
    ap.add_argument("--constrain", action="store_true", help="parity with the constraint on")
    ap.add_argument(
        "--speed-ab", type=int, default=0, help="only pre-fill/decode, N alternating rounds"
    )
    args = ap.parse_args()
    rows = [json.loads(line) for line in (ROOT / "eval/transcripts.jsonl").read_text().splitlines()]
    if args.speed_ab:
        for mode in args.modes.split(","):
            model_key = args.models.split(",")[0]
            print(f"\n### {model_key}, {mode}: speed, alternating\n")
            print("| measure | native | sidecar engine | native / sidecar |\n|---|---|---|---|")
            print("\n".join(speed_ab(MODELS[model_key], mode, rows, args.speed_ab)))
        return 0
    rows = rows[: args.limit]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}", file=sys.stderr)
    for model_key in args.models.split(","):
        for mode in args.modes.split(","):
            print(f"== {model_key} {mode}", file=sys.stderr, flush=True)
            model = MODELS[model_key]
            if args.starts_only:
                (nt, nr), (st, sr) = cold_starts([NATIVE, SIDECAR], model, mode, args.starts)
                ns, ss = statistics.median(nt), statistics.median(st)
                print(
                    f"| {model_key} {mode} | {ns:.0f} ({min(nt):.0f}–{max(nt):.0f}) | {ss:.0f} ({min(st):.0f}–{max(st):.0f}) | {ns / ss:.2f} | {nr} / {sr} MiB |"
                )
                continue
            native = run_engine("native", NATIVE, model, mode, rows, args.starts, args.constrain)
            sidecar = run_engine("sidecar", SIDECAR, model, mode, rows, args.starts, args.constrain)
            diffs = compare(rows, native, sidecar)
            ns, ss = statistics.median(native["starts"]), statistics.median(sidecar["starts"])
            npf = statistics.median(ms for ms, _ in native["prefill"])
            spf = statistics.median(ms for ms, _ in sidecar["prefill"])
            nd, sd = native["decode_ms_per_token"], sidecar["decode_ms_per_token"]
            constraint = "on" if args.constrain else "off"
            print(
                f"\n### {model_key}, {mode}, constraint {constraint}"
                f" (native weights: {native['weights']})\n"
            )
            print("| measure | native | sidecar engine | native / sidecar |")
            print("|---|---|---|---|")
            print(f"| identical token ids | {len(rows) - len(diffs)}/{len(rows)} | | |")
            print(
                f"| start → loaded, median of {args.starts + 1} (ms) | {ns:.0f} | {ss:.0f} | {ns / ss:.2f} |"
            )
            ptoks = native["prefill"][0][1]
            print(
                f"| pre-fill, {ptoks}-token prompt, median of 3 (ms) | {npf:.0f} | {spf:.0f} | {npf / spf:.2f} |"
            )
            if nd and sd:
                print(f"| decode (ms/token) | {nd:.1f} | {sd:.1f} | {nd / sd:.2f} |")
            print(
                f"| RSS after load (MiB) | {native['rss_loaded']} | {sidecar['rss_loaded']} | {native['rss_loaded'] / sidecar['rss_loaded']:.2f} |"
            )
            print(
                f"| peak RSS (MiB) | {native['rss_peak']} | {sidecar['rss_peak']} | {native['rss_peak'] / sidecar['rss_peak']:.2f} |"
            )
            for d in diffs:
                print(f"- differs: {d}")
            sys.stdout.flush()
    if args.soak:
        print("\n### Robustness (native worker, tiny)\n\n| | |\n|---|---|")
        print("\n".join(soak(args.soak)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
