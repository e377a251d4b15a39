"""local-mlx's Python sidecar: a FastAPI server that runs one MLX model with mlx-lm.

Run it:  LOCAL_MLX_TOKEN=<secret> uv run --project python-backend python python-backend/server.py --port 0

Process contract (what the Rust supervisor relies on)
-----------------------------------------------------
* Listens on 127.0.0.1 only, on ``--port`` (0, the default, lets the OS pick).
* Once it can serve, it prints exactly one line on stdout and then closes stdout:
  ``LOCAL_MLX_READY port=<port>``. Everything else (logs) goes to stderr. MLX and
  mlx-lm are imported on the worker thread meanwhile; ``/status`` says ``mlx_ready``,
  and a ``/load`` sent before then simply waits for the import.
* Every request needs ``Authorization: Bearer <token>`` where the token is the value of
  the environment variable ``LOCAL_MLX_TOKEN`` set by the parent. Without that variable
  it refuses to start (exit code 2). A request without the right token gets 401 and
  does nothing.
* It exits by itself, with code 0, when its stdin reaches end of file (the parent died
  or closed the pipe) and on SIGTERM or SIGINT: generations are cancelled, and if it is
  not gone within 2 s (MLX busy in a long pre-fill) it ends itself hard. The parent must
  therefore give it a pipe on stdin and keep it open (``--ignore-stdin`` turns this off,
  for running it by hand with stdin at /dev/null).
* If MLX or mlx-lm cannot be imported it logs why and exits with code 3.
* One generation runs at a time; up to ``--max-queue`` (default 4) more wait in order;
  one more gets 503 at once (``Retry-After: 1``). ``/status`` answers at once even
  during a load or a generation.
* A ``/load`` of the model being loaded waits for that load instead of starting another
  (unless a ``/load`` of another model or an ``/unload`` came in between: then it loads
  again after those, so "loaded" always names the model that stays loaded);
  a ``/load`` of the model already loaded returns at once; a ``/load`` of another model
  releases the current one before loading (so a load that fails leaves none loaded; a
  path that is refused with 400 before loading keeps the current one).
* ``/unload`` during a generation waits for it (and for any queued before it) to finish
  normally, then unloads; generations sent after the ``/unload`` get 409.
* A client that disconnects cancels its generation (queued or running).
* Other local processes cannot stall it (see ``local_mlx_sidecar/connections.py``): a
  connection must send a complete request within 10 s, at most 64 are kept (one more
  closes the oldest idle one), a 401 closes its connection. Bodies over 16 MiB get 413
  unread. A hard open-file limit below 4,096 is tolerated.

API (the original one, exactly, plus optional extensions)
---------------------------------------------------
``POST /load`` ``{"model_path": str}`` -> ``{"status": "loaded", "model_path": str,
"context_length": int|null}``.

``POST /generate`` ``{"messages": [{"role": "system"|"user"|"assistant", "content": str},
...], "max_tokens": 150, "temperature": 0.7}`` (at least one message) plus ``top_p``
(0.8), ``repetition_penalty`` (1.15) and ``stream`` (false) -> ``{"response":
str, "tokens_generated": int, "reasoning": str|null, "prompt_tokens": int,
"cached_tokens": int, "finish_reason": "stop"|"length", "prompt_tps": float,
"generation_tps": float, "peak_memory": float (GB)}``.
Further options: ``enable_thinking`` (false), ``stop`` (up to 4 non-empty strings: the
answer ends before the first one it contains, which is not returned; ``finish_reason``
is then ``stop``) and ``seed`` (0..2**64-1, seeds MLX's sampler). The chat template is
applied with ``enable_thinking`` as given; a ``<think>...</think>`` block the model opens its answer
with never reaches ``response`` (tags elsewhere are answer text), which is trimmed; with thinking on, the think text is in ``reasoning``
(null otherwise). ``max_tokens`` must be 1..8192 and is lowered to what fits in the
model's context. The KV cache of the previous prompt is reused for the longest common
prefix (``cached_tokens`` of the ``prompt_tokens`` were not pre-filled again).

With ``"stream": true`` the answer is ``application/x-ndjson``, one JSON object a line::

    {"event": "token", "text": "Hel"}          zero or more; answer text, leading think block removed
    {"event": "done", "response": ..., ...}    last line: the same fields as without stream
    {"event": "error", "status": 500, "detail": "..."}   last line instead, if it failed

Errors found before the stream starts (400, 409, 503) are ordinary HTTP errors. The
``text`` pieces concatenated equal ``response``.

``POST /unload`` -> ``{"status": "unloaded", "model_loaded": false}`` (memory is given back
to the system: references dropped, garbage collected, ``mlx.core.clear_cache()``).

``GET /status`` -> ``{"status": "running", "model_loaded": bool, "model_path": str|null,
"state": "idle"|"loading"|"ready", "loading_path", "generating", "queued",
"mlx_ready", "context_length", "active_memory_bytes", "peak_memory_bytes",
"cache_memory_bytes", "pid"}``.

Errors: ``{"detail": str}``. 422: a field missing or of the wrong JSON type (the field
is named; no coercion, ``"150"`` is not a number). 400: values out of range, a prompt
longer than the model's context, a ``model_path`` that does not exist or is not a model
folder (the path and what is missing are named), a ``config.json`` over 8 MiB, nested too
deep or with sizes its weight files cannot hold, a chat template that fails or renders
longer than 5 s, weights mlx-lm cannot load, a lone surrogate in a message
or in ``model_path``. 413: a body over 16 MiB. 409:
``/generate`` with no model loaded. 503: the queue is full. 401: the token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from local_mlx_sidecar import contract  # noqa: E402
from local_mlx_sidecar.service import DEFAULT_MAX_QUEUE  # noqa: E402

log = logging.getLogger("local_mlx_sidecar")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="local-mlx sidecar (see the module docstring)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 = OS-chosen")
    ap.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help="generations that may wait behind the running one (default %(default)s)",
    )
    ap.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error("--port must be 0..65535")
    if args.max_queue < 0:
        ap.error("--max-queue must be >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the Hub
    contract.tolerate_low_file_limit()  # before the worker imports mlx-lm
    token = contract.read_token()
    ready_fd = contract.claim_stdout()
    try:
        sock = contract.bind_loopback(args.port)
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", contract.HOST, args.port, e)
        sys.exit(1)
    port = sock.getsockname()[1]

    import uvicorn
    from local_mlx_sidecar.app import create_app
    from local_mlx_sidecar.connections import AcceptErrorLog, guarded_protocol
    from local_mlx_sidecar.service import Service

    service = Service(max_queue=args.max_queue)
    app = create_app(service, token)

    class SidecarServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
            asyncio.get_running_loop().set_exception_handler(AcceptErrorLog())
            await super().startup(sockets=sockets)
            if not self.should_exit:
                contract.announce_ready(ready_fd, port)
                log.info("serving on http://%s:%d", contract.HOST, port)

        @contextmanager
        def capture_signals(self) -> Iterator[None]:  # our handlers, installed below
            yield

    config = uvicorn.Config(
        app,
        http=guarded_protocol(),  # request deadline and connection cap (see connections.py)
        backlog=contract.LISTEN_BACKLOG,  # uvicorn listens again with this; keep ours
        log_config=None,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = SidecarServer(config)

    def stop() -> None:
        service.cancel_all()
        server.should_exit = True

    shutdown = contract.Shutdown(stop)
    contract.install_signal_handlers(shutdown.request)
    if not args.ignore_stdin:
        contract.watch_stdin(shutdown.request)

    def warm_done(f) -> None:  # type: ignore[no-untyped-def]
        if f.exception() is not None:
            log.error("cannot import MLX / mlx-lm: %r", f.exception())
            logging.shutdown()
            os._exit(3)

    service.warm.add_done_callback(warm_done)
    server.run(sockets=[sock])
    service.shutdown()
    logging.shutdown()
    os._exit(0)  # do not wait for the MLX worker thread


if __name__ == "__main__":
    main()
