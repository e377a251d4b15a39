"""The anchor of bench/process_bench: mlx-lm used directly, in one plain Python process.

Reads a JSON job from argv[1]: {"model": path, "systems": [str], "users": [str], "tokens": [int]}.
Imports mlx-lm, loads the model, then for each user text pre-fills the same chat-templated
prompt the sidecar builds and generates exactly that many tokens (generate_step does not
stop at EOS, so the token count matches ours). Prints one JSON line of timings (seconds).
"""

import json
import sys
import time

t0 = time.perf_counter()
job = json.loads(sys.argv[1])
import mlx.core as mx  # noqa: E402
from mlx_lm import load  # noqa: E402
from mlx_lm.generate import generate_step  # noqa: E402
from mlx_lm.sample_utils import make_logits_processors, make_sampler  # noqa: E402

t_import = time.perf_counter()
model, tokenizer = load(job["model"])
t_load = time.perf_counter()
sampler = make_sampler(temp=0.0, top_p=0.8)  # greedy, as the manager asks
processors = make_logits_processors(repetition_penalty=1.15)
generate = []
for system, user, n in zip(job["systems"], job["users"], job["tokens"]):
    start = time.perf_counter()
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, enable_thinking=False
    )
    tokens = 0
    for _token, _ in generate_step(
        mx.array(prompt), model, max_tokens=n, sampler=sampler, logits_processors=processors
    ):
        tokens += 1
    generate.append(time.perf_counter() - start)
print(
    json.dumps(
        {
            "import": t_import - t0,
            "load": t_load - t_import,
            "generate": generate,
            "total": time.perf_counter() - t0,
        }
    )
)
