"""Hostile model folders fail fast with a 400 naming what is wrong, before mlx-lm reads
them, and the sidecar serves the next request. Real processes, real copies of the tiny
model with one thing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Sidecar, chat

LOOP_FOREVER = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _copy(tiny: Path, dst: Path, config: dict | None = None) -> Path:
    shutil.copytree(tiny, dst)
    if config is not None:
        cfg = json.loads((dst / "config.json").read_text())
        cfg.update(config)
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def _with_template(tiny: Path, dst: Path, template: str) -> Path:
    _copy(tiny, dst)
    path = dst / "tokenizer_config.json"
    tc = json.loads(path.read_text())
    tc["chat_template"] = template
    path.write_text(json.dumps(tc))
    return dst


def _refused(s: Sidecar, folder: Path) -> str:
    r = s.client.post("/load", json={"model_path": str(folder)})
    assert r.status_code == 400, r.text
    return r.json()["detail"]


@pytest.mark.parametrize(
    "config,says",
    [
        ({"num_hidden_layers": 20_000}, "num_hidden_layers = 20000 with hidden_size = 64"),
        ({"vocab_size": 10**9}, "vocab_size = 1000000000 with hidden_size = 64"),
        ({"hidden_size": 10**6}, "num_hidden_layers = 2 with hidden_size = 1000000"),
        ({"text_config": {"num_layers": 10**6, "d_model": 64}}, "text_config.num_layers"),
        ({"num_hidden_layers": "2"}, "num_hidden_layers must be a positive integer"),
        ({"vocab_size": -1}, "vocab_size must be a positive integer"),
    ],
)
def test_a_config_the_weights_cannot_hold_is_400_naming_the_field(
    shared: Sidecar, tiny: Path, tmp_path: Path, config: dict, says: str
) -> None:
    detail = _refused(shared, _copy(tiny, tmp_path / "m", config))
    assert says in detail and "config.json" in detail, detail
    assert shared.status()["model_path"] == str(tiny), "a refused folder keeps the model"


def test_a_huge_config_is_refused_unread(shared: Sidecar, tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path / "m", {"padding": "x" * (20 * 2**20)})
    detail = _refused(shared, folder)
    assert "config.json is 20 MiB, more than the 8 MiB" in detail, detail


def test_a_config_nested_200000_deep_is_400(shared: Sidecar, tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path / "m")
    depth = 200_000
    (folder / "config.json").write_text(
        '{"model_type": "qwen3", "x": ' + "[" * depth + "]" * depth + "}"
    )
    assert "config.json is nested too deeply" in _refused(shared, folder)
    assert shared.generate(messages=chat("still fine"), max_tokens=2)["tokens_generated"] <= 2


def test_a_chat_template_that_loops_is_refused_at_load(spawn, tiny: Path, tmp_path: Path) -> None:
    s = spawn()
    detail = _refused(s, _with_template(tiny, tmp_path / "m", LOOP_FOREVER))
    assert "chat_template" in detail and "did not finish rendering" in detail, detail
    assert s.status()["model_loaded"] is False
    s.load(tiny)  # the worker is free again: the next load is served
    assert s.generate(messages=chat("fine again"), max_tokens=2)["tokens_generated"] <= 2


def test_a_chat_template_that_loops_on_some_input_is_400_and_the_next_request_runs(
    spawn, tiny: Path, tmp_path: Path
) -> None:
    """A template that passes the load's check but loops for a long prompt."""
    template = (
        "{% if messages[-1].content | length > 100 %}" + LOOP_FOREVER + "{% endif %}"
        "{% for m in messages %}{{ m.content }}\n{% endfor %}"
    )
    s = spawn()
    s.load(_with_template(tiny, tmp_path / "m", template))
    r = s.client.post("/generate", json={"messages": chat("word " * 50), "max_tokens": 2})
    assert r.status_code == 400, r.text
    assert "did not finish rendering" in r.json()["detail"]
    assert s.generate(messages=chat("short"), max_tokens=2)["tokens_generated"] <= 2
    s.load(tiny)
    assert s.status()["model_path"] == str(tiny)
