"""Bad input gets a clear error and the server keeps running (and keeps its model)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import Sidecar, chat

MISTYPED = [
    ({}, "messages", "Field required"),
    ({"messages": [{"role": "user", "content": ["a"]}]}, "messages.0.content", "valid string"),
    ({"messages": chat("x"), "max_tokens": "150"}, "max_tokens", "valid integer"),
    ({"messages": chat("x"), "max_tokens": 1.5}, "max_tokens", "valid integer"),
    ({"messages": chat("x"), "max_tokens": 10.0}, "max_tokens", "valid integer"),
    ({"messages": chat("x"), "max_tokens": True}, "max_tokens", "valid integer"),
    ({"messages": chat("x"), "temperature": "hot"}, "temperature", "valid number"),
    ({"messages": chat("x"), "temperature": False}, "temperature", "valid number"),
    ({"messages": chat("x"), "top_p": "0.5"}, "top_p", "valid number"),
    ({"messages": chat("x"), "repetition_penalty": []}, "repetition_penalty", "valid number"),
    ({"messages": chat("x"), "stream": "yes"}, "stream", "valid boolean"),
]


@pytest.mark.parametrize("body,field,message", MISTYPED)
def test_generate_mistyped_or_missing_field_is_422(shared: Sidecar, body, field, message) -> None:
    r = shared.client.post("/generate", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("invalid request: ") and field in detail and message in detail
    assert any(e["field"] == field for e in r.json()["errors"])


@pytest.mark.parametrize(
    "raw,ctype",
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"prompt"', "application/json"),
        (b"prompt=hi", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_generate_body_that_is_not_an_object_is_422(
    shared: Sidecar, raw: bytes, ctype: str
) -> None:
    r = shared.client.post("/generate", content=raw, headers={"content-type": ctype})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("invalid request")


@pytest.mark.parametrize("body", [{}, {"model_path": None}, {"model_path": 7}, {"path": "/x"}])
def test_load_mistyped_or_missing_field_is_422(shared: Sidecar, body) -> None:
    r = shared.client.post("/load", json=body)
    assert r.status_code == 422
    assert "model_path" in r.json()["detail"]


OUT_OF_RANGE = [
    ({"max_tokens": 0}, "max_tokens must be between 1 and 8192, got 0"),
    ({"max_tokens": -5}, "max_tokens must be between 1 and 8192, got -5"),
    ({"max_tokens": 8193}, "max_tokens must be between 1 and 8192, got 8193"),
    ({"max_tokens": 10**30}, "max_tokens must be between 1 and 8192"),
    ({"temperature": -0.1}, "temperature must be between 0 and 2"),
    ({"temperature": 2.5}, "temperature must be between 0 and 2"),
    ({"top_p": 0}, "top_p must be in (0, 1]"),
    ({"top_p": 1.01}, "top_p must be in (0, 1]"),
    ({"repetition_penalty": 0}, "repetition_penalty must be in (0, 10]"),
    ({"repetition_penalty": -1.0}, "repetition_penalty must be in (0, 10]"),
    ({"repetition_penalty": 11}, "repetition_penalty must be in (0, 10]"),
]


@pytest.mark.parametrize("extra,message", OUT_OF_RANGE)
def test_generate_out_of_range_is_400(shared: Sidecar, extra, message) -> None:
    r = shared.client.post("/generate", json={"messages": chat("x"), **extra})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]


def test_nan_and_infinity_are_400(shared: Sidecar) -> None:
    for raw in (
        '{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
        '{"messages": [{"role": "user", "content": "x"}], "top_p": Infinity}',
        '{"messages": [{"role": "user", "content": "x"}], "repetition_penalty": -Infinity}',
    ):
        r = shared.client.post(
            "/generate", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text


def test_max_tokens_cap_boundary(spawn) -> None:
    s = spawn()  # no model: a request that passes validation gets 409
    ok = s.client.post("/generate", json={"messages": chat("x"), "max_tokens": 8192})
    assert ok.status_code == 409
    assert (
        s.client.post("/generate", json={"messages": chat("x"), "max_tokens": 1}).status_code == 409
    )
    too_many = s.client.post("/generate", json={"messages": chat("x"), "max_tokens": 8193})
    assert too_many.status_code == 400


def test_context_limits(spawn, short_tiny: Path) -> None:
    """max_tokens is lowered to what fits in the context; a prompt that fills it is 400."""
    s = spawn()
    s.load(short_tiny)
    r = s.generate(messages=chat("x"), max_tokens=8192, temperature=0.0)
    assert r["tokens_generated"] <= 64 - r["prompt_tokens"]
    prompt = " ".join(["word"] * 80)
    resp = s.client.post("/generate", json={"messages": chat(prompt), "max_tokens": 5})
    assert resp.status_code == 400
    detail = resp.json()["detail"]
    assert "longer than the model's context of 64 tokens" in detail, detail
    # A prompt past the character limit is refused before it is tokenized.
    resp = s.client.post("/generate", json={"messages": chat("a" * 1_000_001)})
    assert resp.status_code == 400 and "characters" in resp.json()["detail"]
    assert s.generate(messages=chat("still fine"), max_tokens=2)["tokens_generated"] <= 2


def _bad_folders(tmp: Path, tiny: Path) -> list[tuple[str, str]]:
    """(path, what the error must say) for paths that are not loadable model folders."""
    cases: list[tuple[str, str]] = []
    cases.append((str(tmp / "does-not-exist"), "does not exist"))
    (tmp / "file.txt").write_text("x")
    cases.append((str(tmp / "file.txt"), "not a directory"))
    (tmp / "empty").mkdir()
    cases.append((str(tmp / "empty"), "config.json is missing"))
    (tmp / "badjson").mkdir()
    (tmp / "badjson" / "config.json").write_text("{oops")
    cases.append((str(tmp / "badjson"), "config.json is not valid JSON"))
    (tmp / "notype").mkdir()
    (tmp / "notype" / "config.json").write_text("{}")
    cases.append((str(tmp / "notype"), "no model_type"))
    noweights = tmp / "noweights"
    shutil.copytree(tiny, noweights)
    for w in noweights.glob("model*.safetensors"):
        w.unlink()
    cases.append((str(noweights), "no model*.safetensors"))
    notok = tmp / "notokenizer"
    shutil.copytree(tiny, notok)
    for f in notok.iterdir():
        if f.name.startswith(("tokenizer", "vocab")) or f.name.endswith(".tiktoken"):
            f.unlink()
    cases.append((str(notok), "no tokenizer files"))
    broken = tmp / "broken-link"
    shutil.copytree(tiny, broken)
    weights = sorted(broken.glob("model*.safetensors"))[0]
    weights.unlink()
    os.symlink(tmp / "blobs" / "missing-blob", weights)
    cases.append((str(broken), "broken link"))
    cases.append(("", "model_path is empty"))
    cases.append(("nul\x00byte", "does not exist"))
    cases.append(("/" + "x" * 5000, "cannot be used"))
    cases.append(("mlx-community/Qwen3-1.7B-4bit", "does not exist"))  # never a Hub download
    return cases


def test_load_bad_paths_is_400_and_keeps_the_model(
    shared: Sidecar, tiny: Path, tmp_path: Path
) -> None:
    for path, message in _bad_folders(tmp_path, tiny):
        r = shared.client.post("/load", json={"model_path": path})
        assert r.status_code == 400, (path, r.text)
        detail = r.json()["detail"]
        assert message in detail, (path, detail)
        if path and "\x00" not in path and len(path) < 1000:
            assert path in detail or repr(path) in detail
    st = shared.status()
    assert st["model_loaded"] is True and st["model_path"] == str(tiny)
    assert shared.generate(messages=chat("still here"), max_tokens=2)["tokens_generated"] <= 2


def _corrupt_copies(tmp: Path, tiny: Path) -> list[Path]:
    out = []
    for how in ("truncated", "garbled-header", "random-bytes", "wrong-shapes"):
        d = tmp / how
        shutil.copytree(tiny, d)
        w = sorted(d.glob("model*.safetensors"))[0]
        data = w.read_bytes()
        if how == "truncated":
            w.write_bytes(data[: len(data) // 2])
        elif how == "garbled-header":
            w.write_bytes(data[:8] + b"GARBAGE!" * 16 + data[136:])
        elif how == "random-bytes":
            w.write_bytes(os.urandom(len(data)))  # as large as real weights, not one
        else:
            cfg = json.loads((d / "config.json").read_text())
            cfg["hidden_size"] = cfg["hidden_size"] * 2
            (d / "config.json").write_text(json.dumps(cfg))
        out.append(d)
    return out


def test_corrupt_weights_are_400_and_a_good_model_loads_after(
    spawn, tiny: Path, tmp_path: Path
) -> None:
    s = spawn()
    s.load(tiny)
    for bad in _corrupt_copies(tmp_path, tiny):
        r = s.client.post("/load", json={"model_path": str(bad)})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"could not load the model at {bad}"), detail
        st = s.status()
        # The old model was released first, so nothing is loaded now.
        assert (st["state"], st["model_loaded"], st["model_path"]) == ("idle", False, None)
        r = s.client.post("/generate", json={"messages": chat("x")})
        assert r.status_code == 409
        s.load(tiny)
        assert s.generate(messages=chat("fine again"), max_tokens=2)["tokens_generated"] <= 2
    assert s.proc.poll() is None
