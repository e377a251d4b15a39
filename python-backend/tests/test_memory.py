"""/unload really gives the memory back: MLX's active memory falls to where it was."""

from __future__ import annotations

from pathlib import Path

from conftest import Sidecar, chat


def _weights_bytes(model: Path) -> int:
    return sum(f.stat().st_size for f in model.glob("model*.safetensors"))


def _memory_round_trip(s: Sidecar, model: Path, generate: bool) -> None:
    base = s.wait_until(lambda st: st["mlx_ready"], timeout=60, what="mlx import")
    s.load(model)
    loaded = s.status()
    assert loaded["active_memory_bytes"] - base["active_memory_bytes"] > 0.5 * _weights_bytes(model)
    if generate:  # so that a KV cache and MLX's buffer cache exist too
        s.generate(messages=chat("Hi"), max_tokens=2)
    r = s.client.post("/unload")
    assert r.status_code == 200
    after = s.status()
    assert after["active_memory_bytes"] <= base["active_memory_bytes"] + 64 * 1024, (base, after)
    assert after["cache_memory_bytes"] == 0


def test_unload_releases_memory(spawn, smol: Path) -> None:
    s = spawn()
    _memory_round_trip(s, smol, generate=True)
    _memory_round_trip(s, smol, generate=False)  # and again: nothing accumulates


def test_replacing_a_model_releases_the_old_one(spawn, tiny: Path, smol: Path) -> None:
    s = spawn()
    base = s.wait_until(lambda st: st["mlx_ready"], timeout=60, what="mlx import")
    s.load(smol)
    s.load(tiny)
    st = s.status()
    extra = st["active_memory_bytes"] - base["active_memory_bytes"]
    assert extra < 0.5 * _weights_bytes(smol)
