"""Concurrent /load requests: the answer "loaded" always names the model that the queue
leaves loaded. In-process, with the real Engine and mlx-lm: the order in which requests
reach the service must be exact, which only the event loop itself can guarantee."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from local_mlx_sidecar.service import Service


def test_load_a_then_b_then_a_again_ends_with_a_loaded(tiny: Path, short_tiny: Path) -> None:
    service = Service()
    service.warm.result(timeout=120)

    async def scenario() -> list:
        # Created in this order, each reaches its first await (the queue) in this order.
        a1 = asyncio.ensure_future(service.load(str(tiny)))
        b = asyncio.ensure_future(service.load(str(short_tiny)))
        a2 = asyncio.ensure_future(service.load(str(tiny)))
        return await asyncio.gather(a1, b, a2)

    try:
        results = asyncio.run(scenario())
        assert [r[0] for r in results] == [str(tiny), str(short_tiny), str(tiny)]
        assert results[1][1] == 64 and results[2][1] == 4096  # each its own context
        st = service.status()
        assert (st["model_path"], st["state"]) == (str(tiny), "ready"), st
        assert service.engine.path == os.path.realpath(tiny)
    finally:
        service.shutdown()
