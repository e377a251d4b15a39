"""The sidecar's engine behind the native worker's protocol, for bench/engine_bench.py.

It runs what the sidecar runs for a request (python-backend's Engine: load with its CPU
weights choice, chat template, tokenizer, instruction-prefix cache, pre-fill step) and
mlx-lm's stream_generate, greedy, with the transcript constraint's logits processor
(constrain.py, as engine.py adds it) when a request sets constrain_to_input, so both engines can be
driven and timed the same way. Its start is the sidecar's Python imports without the
HTTP server (FastAPI/uvicorn), so it starts faster than the real sidecar: the cold
start ratio it gives is in the sidecar's favour.
Commands/events: one JSON object per line (crates/local-mlx-engine/src/protocol.rs);
no cancel.
"""

import json
import os
import sys
import time

import mlx.core as mx
from local_mlx_sidecar.constrain import input_only_processor
from local_mlx_sidecar.engine import Engine
from local_mlx_sidecar.model_dir import validate_model_dir
from mlx_lm.generate import stream_generate
from mlx_lm.sample_utils import make_sampler


def send(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


engine = Engine()
engine.warm_up()
send({"event": "ready", "pid": os.getpid(), "mlx_version": mx.__version__})
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "load":
        t = time.perf_counter()
        engine.load(validate_model_dir(cmd["path"]))
        ms = (time.perf_counter() - t) * 1000
        send({"event": "loaded", "load_ms": ms, "weights": engine.weights, "context_length": None})
    elif cmd["op"] == "generate":
        t = time.perf_counter()
        prompt = engine.tokenize(engine.render(cmd["messages"]))
        cache, reused = engine._take_cache(prompt)
        processors = []
        if cmd.get("constrain_to_input"):
            # engine.py's _sampling: the last user message's words.
            msgs = cmd["messages"]
            user = next(m["content"] for m in reversed(msgs) if m["role"] == "user")
            processors = [input_only_processor(engine.tokenizer, user)]
        tokens, first = [], None
        for r in stream_generate(
            engine.model,
            engine.tokenizer,
            mx.array(prompt[reused:]),
            max_tokens=cmd["max_tokens"],
            sampler=make_sampler(temp=0.0),
            logits_processors=processors,
            prompt_cache=cache,
            prefill_step_size=engine.prefill_step,
        ):
            if first is None:
                first = time.perf_counter()
            if r.finish_reason == "stop":
                break
            tokens.append(r.token)
        engine._keep_cache(cache, prompt)
        end = time.perf_counter()
        answer = {
            "text": engine.tokenizer.decode(tokens).strip(),
            "tokens": tokens,
            "prompt_tokens": len(prompt),
            "cached_tokens": reused,
            "finish_reason": "stop" if len(tokens) < cmd["max_tokens"] else "length",
            "prefill_ms": ((first or end) - t) * 1000,
            "decode_ms": (end - (first or end)) * 1000,
        }
        send({"event": "answer", "id": cmd["id"], "answer": answer})
