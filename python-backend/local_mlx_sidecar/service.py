"""Scheduling: one MLX worker thread, a bounded generation queue, load de-duplication.

All model work runs in submission order (FIFO) on a single worker thread; the asyncio
event loop only validates, queues and waits, so ``/status`` answers at once during a
load or a generation.

* At most one generation runs; at most ``max_queue`` more wait. Another one is refused
  with 503 at once.
* ``/load`` of the model that is being loaded waits for that load, unless a ``/load`` of
  another model or an ``/unload`` was queued after it (then it queues a load of its own,
  so "loaded" is only answered for the model that stays loaded); ``/load`` of the model
  that is (or will be, once the queue has run) loaded returns at once.
* ``/unload`` is queued like everything else: it waits for the generations queued before
  it, which finish normally; generations queued after it get 409.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .engine import Engine, GenerateParams, GenerationResult
from .errors import ApiError
from .model_dir import validate_model_dir

log = logging.getLogger("local_mlx_sidecar")

DEFAULT_MAX_QUEUE = 4


class Service:
    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()
        self.max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlx-worker")
        # What /status reports; written by the worker thread, read by the event loop.
        self.state = "idle"  # idle | loading | ready
        self.model_path: str | None = None  # as the client spelled it
        self.loading_path: str | None = None
        self.generating = False
        # Event-loop bookkeeping.
        self._gens = 0  # generations running or waiting
        self._target: str | None = None  # real path loaded once the queue has run
        self._seq = 0  # numbers /load and /unload requests
        self._unloads = 0  # /unload requests received and not done
        # real path -> (its _seq, the load under way)
        self._loads: dict[str, tuple[int, asyncio.Future]] = {}
        self._cancels: set[threading.Event] = set()
        self.warm: Future = self._executor.submit(self.engine.warm_up)

    # -- status --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        ready = self.state == "ready"
        return {
            "status": "running",
            "model_loaded": ready,
            "model_path": self.model_path if ready else None,
            "state": self.state,
            "loading_path": self.loading_path,
            "generating": self.generating,
            "queued": max(0, self._gens - (1 if self.generating else 0)),
            "loads_queued": len(self._loads),
            "unloads_queued": self._unloads,
            "mlx_ready": self.warm.done() and self.warm.exception() is None,
            "context_length": self.engine.context_length if ready else None,
            "weights": self.engine.weights if ready else None,
            "blas": self.engine.blas,
            **self._memory(),
            "pid": os.getpid(),
        }

    def _memory(self) -> dict[str, int | None]:
        mx = sys.modules.get("mlx.core") if self.warm.done() else None
        if mx is None:
            return {
                "active_memory_bytes": None,
                "peak_memory_bytes": None,
                "cache_memory_bytes": None,
            }
        return {
            "active_memory_bytes": int(mx.get_active_memory()),
            "peak_memory_bytes": int(mx.get_peak_memory()),
            "cache_memory_bytes": int(mx.get_cache_memory()),
        }

    # -- worker ------------------------------------------------------------------------
    def _submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        return asyncio.wrap_future(self._executor.submit(fn, *args))

    def cancel_all(self) -> None:
        for c in list(self._cancels):
            c.set()

    def shutdown(self) -> None:
        self.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- load / unload -------------------------------------------------------------------
    async def load(self, path: str) -> tuple[str, int | None]:
        real = validate_model_dir(path)
        seq, pending = self._loads.get(real, (None, None))
        if seq != self._seq:
            # A /load of another model or an /unload was queued after that load: joining
            # it would answer "loaded" while the later request decides what stays loaded.
            pending = None
        if pending is None and self._target == real:
            return path, self.engine.context_length  # already loaded: at once
        if pending is None:
            self._seq += 1
            seq = self._seq
            self._target = real
            pending = self._submit(self._load_job, real, path)
            self._loads[real] = (seq, pending)

            def done(f: asyncio.Future, real: str = real, seq: int = seq) -> None:
                if self._loads.get(real, (None, None))[1] is f:
                    del self._loads[real]
                if (f.cancelled() or f.exception() is not None) and self._seq == seq:
                    # A load that failed in mlx-lm has already released the old model;
                    # one refused before that (the folder changed) has kept it.
                    self._target = self.engine.path

            pending.add_done_callback(done)
        context = await asyncio.shield(pending)
        return path, context

    def _load_job(self, real: str, path: str) -> int | None:
        validate_model_dir(real)  # the folder may have changed while we waited
        self.loading_path = path
        self.model_path = None
        self.state = "loading"
        try:
            self.engine.load(real)
            try:  # a template that loops or fails would fail every generation: say so now
                self.engine.render(
                    [
                        {"role": "system", "content": "Reply briefly."},
                        {"role": "user", "content": "Hello."},
                    ]
                )
            except ApiError:
                self.engine.unload()
                raise
            self.model_path = path
            self.state = "ready"
            return self.engine.context_length
        except BaseException:
            self.state = "idle"
            raise
        finally:
            self.loading_path = None

    async def unload(self) -> None:
        self._seq += 1
        self._target = None
        job = self._submit(self._unload_job)
        self._unloads += 1

        def done(_: asyncio.Future) -> None:
            self._unloads -= 1

        job.add_done_callback(done)
        await asyncio.shield(job)

    def _unload_job(self) -> None:
        self.engine.unload()
        self.model_path = None
        self.state = "idle"

    # -- generate --------------------------------------------------------------------
    def admit(self) -> None:
        """Refuse a generation at once if the queue is full.

        "No model loaded" is decided in one place, the engine, when the generation
        runs: a request queued behind a load or an unload gets the answer that is true
        by then, and the answer reaches the client before any text (it is checked
        before ``on_start``).
        """
        if self._gens >= 1 + self.max_queue:
            raise ApiError(
                503,
                f"busy: one generation is running and {self.max_queue} are waiting "
                "(the queue is full); retry later",
            )

    def start_generation(
        self,
        params: GenerateParams,
        on_start: Callable[[], None] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[asyncio.Future, threading.Event]:
        """Queue a generation (after ``admit``); returns its future and cancel flag.

        ``on_start`` and ``on_text`` are called on the worker thread.
        """
        self.admit()
        cancel = threading.Event()
        self._cancels.add(cancel)
        self._gens += 1
        fut = self._submit(self._generate_job, params, cancel, on_start, on_text)

        def done(f: asyncio.Future) -> None:
            self._gens -= 1
            self._cancels.discard(cancel)
            if not f.cancelled():
                f.exception()  # consumed: a client that went away never asks for it

        fut.add_done_callback(done)
        return fut, cancel

    def _generate_job(
        self,
        params: GenerateParams,
        cancel: threading.Event,
        on_start: Callable[[], None] | None,
        on_text: Callable[[str], None] | None,
    ) -> GenerationResult:
        self.generating = True
        try:
            return self.engine.generate(params, cancel, on_start, on_text)
        finally:
            self.generating = False
