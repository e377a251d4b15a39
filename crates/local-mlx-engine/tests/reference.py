"""The sidecar's token ids for the parity tests: its own Engine (load, CPU weights
choice, chat template, tokenizer, pre-fill step) driving mlx-lm's stream_generate,
greedy, with the transcript constraint's logits processor (constrain.py, as engine.py
adds it) when a request sets constrain_to_input. Run with python-backend's venv:

    reference.py MODEL_DIR < requests.jsonl > answers.jsonl

Each request line: {"messages": [...], "max_tokens": N, "constrain_to_input": bool}; each answer line:
{"prompt": [ids], "tokens": [ids], "cached": N} (the stop token left out, as the native engine does).
"""

import json
import sys

import mlx.core as mx
from local_mlx_sidecar.constrain import input_only_processor
from local_mlx_sidecar.engine import Engine
from local_mlx_sidecar.model_dir import validate_model_dir
from mlx_lm.generate import stream_generate
from mlx_lm.sample_utils import make_sampler

engine = Engine()
engine.warm_up()
engine.load(validate_model_dir(sys.argv[1]))
for line in sys.stdin:
    req = json.loads(line)
    prompt = engine.tokenize(engine.render(req["messages"]))
    cache, reused = engine._take_cache(prompt)  # the instruction-prefix cache, as generate()
    processors = []
    if req.get("constrain_to_input"):
        # engine.py's _sampling: the last user message's words.
        user = next(m["content"] for m in reversed(req["messages"]) if m["role"] == "user")
        processors = [input_only_processor(engine.tokenizer, user)]
    out = []
    for r in stream_generate(
        engine.model,
        engine.tokenizer,
        mx.array(prompt[reused:]),
        max_tokens=req["max_tokens"],
        sampler=make_sampler(temp=0.0),
        logits_processors=processors,
        prompt_cache=cache,
        prefill_step_size=engine.prefill_step,
    ):
        if r.finish_reason == "stop":
            break
        out.append(r.token)
    engine._keep_cache(cache, prompt)
    print(
        json.dumps({"prompt": prompt, "tokens": out, "cached": reused, "weights": engine.weights}),
        flush=True,
    )
