"""Tests of tools/build_fixtures.py.

tiny and smol are built into the default fixtures root ($LOCAL_MLX_FIXTURES or
~/.cache/local-mlx/fixtures) so the build is shared with every other test suite and is
cached across runs; everything that must start from scratch uses a temp root.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
SCRIPT = TOOLS / "build_fixtures.py"
sys.path.insert(0, str(TOOLS))

from fixtures import smol, synthetic, tiny  # noqa: E402

TINY_ID = "local-mlx-test/tiny-random-qwen3"
SMOL_ID = "local-mlx-test/SmolLM2-135M-Instruct-Q4"


def run_builder(*args: str) -> tuple[list[list[str]], float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    return lines, elapsed


def snapshot(path: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in [path, *path.iterdir()]}


def sha256_tree(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


@pytest.fixture(scope="session")
def built() -> dict[str, Path]:
    lines, _ = run_builder()  # no args = tiny smol, default root
    return {key: Path(path) for key, _, path in lines}


@pytest.fixture(scope="session")
def tiny_model(built):
    from mlx_lm import load

    return load(str(built["tiny"]))


def test_output_lines_name_key_repo_id_and_absolute_path(built):
    lines, _ = run_builder("tiny", "smol")
    assert [(k, r) for k, r, _ in lines] == [("tiny", TINY_ID), ("smol", SMOL_ID)]
    for key, repo_id, path in lines:
        p = Path(path)
        assert p.is_absolute() and p.is_dir()
        assert p.parts[-3:] == ("repos", *repo_id.split("/"))
        assert built[key] == p


def test_repo_folders_hold_only_repo_files(built):
    assert {p.name for p in built["tiny"].iterdir()} == tiny.FILES
    assert {p.name for p in built["smol"].iterdir()} == smol.FILES
    root = built["tiny"].parents[2]
    for path, spec_name in (
        (built["tiny"], "tiny-random-qwen3"),
        (built["smol"], "SmolLM2-135M-Instruct-Q4"),
    ):
        assert (root / "stamps" / f"{spec_name}.done").is_file()
        leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(f".{spec_name}.")]
        assert leftovers == []


def test_rerun_is_a_fast_noop(built):
    before = {k: snapshot(p) for k, p in built.items()}
    stamp = built["tiny"].parents[2] / "stamps" / "tiny-random-qwen3.done"
    stamp_mtime = stamp.stat().st_mtime_ns
    lines, elapsed = run_builder("tiny", "smol")
    assert {k: snapshot(Path(p)) for k, _, p in lines} == before
    assert stamp.stat().st_mtime_ns == stamp_mtime
    assert elapsed < 1.5, f"cached run took {elapsed:.2f}s"


def test_tiny_is_small_and_quantized(built):
    total = sum(p.stat().st_size for p in built["tiny"].iterdir())
    assert total < 1_000_000
    config = json.loads((built["tiny"] / "config.json").read_text())
    assert config["model_type"] == "qwen3"
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 64
    assert config["quantization"] == {"group_size": 64, "bits": 4}


def test_tiny_loads_and_generates_exactly_max_tokens(tiny_model):
    import mlx.nn as nn
    from mlx_lm import stream_generate

    model, tok = tiny_model
    assert isinstance(model.model.layers[0].self_attn.q_proj, nn.QuantizedLinear)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hello there"}],
        add_generation_prompt=True,
        enable_thinking=False,
    )
    t0 = time.monotonic()
    results = list(stream_generate(model, tok, prompt, max_tokens=24))
    elapsed = time.monotonic() - t0
    # The random model never emits EOS or other added tokens, so it always runs to max_tokens.
    assert len(results) == 24 and results[-1].finish_reason == "length"
    text = "".join(r.text for r in results)
    assert text.strip() and text.isascii()
    assert all(c.isprintable() or c == "\n" for c in text), repr(text)
    assert elapsed < 10
    # deterministic under greedy decoding
    again = "".join(r.text for r in stream_generate(model, tok, prompt, max_tokens=24))
    assert again == text


def test_tiny_chat_template_honours_enable_thinking(tiny_model):
    _, tok = tiny_model
    msgs = [{"role": "system", "content": "Fix the text."}, {"role": "user", "content": "hi"}]
    off = tok.apply_chat_template(
        msgs, add_generation_prompt=True, enable_thinking=False, tokenize=False
    )
    on = tok.apply_chat_template(
        msgs, add_generation_prompt=True, enable_thinking=True, tokenize=False
    )
    assert off == (
        "<|im_start|>system\nFix the text.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert on.endswith("<|im_start|>assistant\n") and "<think>" not in on
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, enable_thinking=False)
    vocab = tok.get_vocab()
    for special in ("<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        assert vocab[special] in ids
    assert tok.eos_token == "<|im_end|>" and vocab["<|im_end|>"] in tok.eos_token_ids
    assert tok.has_thinking
    # past assistant turns lose their think block, as in Qwen3's own template
    hist = msgs + [
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHi!"},
        {"role": "user", "content": "x"},
    ]
    text = tok.apply_chat_template(hist, add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>assistant\nHi!<|im_end|>" in text and "hmm" not in text


def test_smol_is_converted_with_mixed_quantization(built):
    config = json.loads((built["smol"] / "config.json").read_text())
    assert config["model_type"] == "llama" and config["rope_traditional"] is True
    assert config["quantization"] == {
        "group_size": 32,
        "bits": 4,
        "model.embed_tokens": {"group_size": 32, "bits": 8},
    }
    assert config["tie_word_embeddings"] is True and config["eos_token_id"] == 2


def test_smol_answers_a_factual_question(built):
    from mlx_lm import load, stream_generate

    model, tok = load(str(built["smol"]))
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_ids == {2}
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True
    )
    text = "".join(r.text for r in stream_generate(model, tok, prompt, max_tokens=10))
    assert "Paris" in text, text


def test_synthetic_repo(tmp_path):
    lines, _ = run_builder("synthetic", "--synthetic-mib", "1", "--root", str(tmp_path))
    assert lines == [
        [
            "synthetic",
            "local-mlx-test/synthetic-1mib",
            str(tmp_path / "repos/local-mlx-test/synthetic-1mib"),
        ]
    ]
    repo = tmp_path / "repos/local-mlx-test/synthetic-1mib"
    assert {p.name for p in repo.iterdir()} == {"config.json", "model-00001-of-00001.safetensors"}
    shard = repo / "model-00001-of-00001.safetensors"
    data = shard.read_bytes()
    assert len(data) == 1 << 20
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    assert header["blob"]["data_offsets"] == [0, len(data) - 8 - n]
    assert (tmp_path / "stamps/synthetic-1mib.done").is_file()
    assert synthetic.shard_sizes(1030) == [512 << 20, 512 << 20, 6 << 20]


def test_concurrent_builds_share_one_result(tmp_path):
    args = ("synthetic", "--synthetic-mib", "2", "--root", str(tmp_path))
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: run_builder(*args)[0], range(3)))
    assert results[0] == results[1] == results[2]
    org = tmp_path / "repos/local-mlx-test"
    assert [p.name for p in org.iterdir()] == ["synthetic-2mib"]


def test_crash_leftovers_are_cleaned_and_rebuild_is_byte_identical(built, tmp_path):
    org = tmp_path / "repos/local-mlx-test"
    stale = org / ".tiny-random-qwen3.tmp-99999"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half written")
    # a complete-looking folder without a stamp is not trusted either
    (org / "tiny-random-qwen3").mkdir()
    (org / "tiny-random-qwen3" / "config.json").write_text("{}")
    lines, _ = run_builder("tiny", "--root", str(tmp_path))
    assert [p.name for p in org.iterdir()] == ["tiny-random-qwen3"]
    assert sha256_tree(Path(lines[0][2])) == sha256_tree(built["tiny"])


def test_root_from_environment(tmp_path):
    env = dict(os.environ, LOCAL_MLX_FIXTURES=str(tmp_path / "envroot"))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "synthetic", "--synthetic-mib", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\t")[2].strip() == str(
        tmp_path / "envroot/repos/local-mlx-test/synthetic-1mib"
    )
