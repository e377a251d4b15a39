"""What the clean-up decoding constraint costs (a benchmark, not a test).

Times, in one run on one model: building the mask the first time (decoding the whole
vocabulary) and again for a short and a long transcript, one processor step, and, as the
anchor, one forward step of the model with a KV cache.

Run: `uv run --frozen --project python-backend python bench/constrain_cost.py MODEL_DIR`
(MODEL_DIR: e.g. the smol fixture's folder, printed by `tools/build_fixtures.py smol`).
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python-backend"))

import mlx.core as mx  # noqa: E402
from local_mlx_sidecar import constrain  # noqa: E402
from mlx_lm import load  # noqa: E402
from mlx_lm.models.cache import make_prompt_cache  # noqa: E402

STEPS = 50


def main() -> None:
    model, tok = load(sys.argv[1])
    lines = (ROOT / "eval/transcripts.jsonl").read_text().splitlines()
    long = json.loads(lines[-1])["raw"]
    short = "um so i was thinking we could uh move the meeting to friday"
    width = len(tok._tokenizer)
    t = time.perf_counter()
    constrain.input_only_processor(tok, short)
    res = {"vocab": width, "first_build_s": time.perf_counter() - t}
    for name, text in [("short", short), ("long", long)]:
        t = time.perf_counter()
        proc = constrain.input_only_processor(tok, text)
        res[f"build_{name}_s"] = time.perf_counter() - t
        tokens = [1]
        t = time.perf_counter()
        for i in tok.encode(text)[:STEPS]:
            mx.eval(proc(mx.array(tokens), mx.zeros((1, width))))
            tokens.append(i)
        res[f"step_{name}_ms"] = (time.perf_counter() - t) / STEPS * 1000
    cache = make_prompt_cache(model)
    y = mx.array([[1]])
    mx.eval(model(y, cache=cache))
    t = time.perf_counter()
    for _ in range(20):
        mx.eval(model(y, cache=cache))
    res["forward_step_ms"] = (time.perf_counter() - t) / 20 * 1000
    print(json.dumps(res))


if __name__ == "__main__":
    main()
