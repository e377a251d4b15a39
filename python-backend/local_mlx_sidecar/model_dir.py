"""A model folder checked before mlx-lm reads it: it exists, holds a config and weights,
and its config is small and agrees with the weights' size, so a hostile repo fails fast
with a 400 instead of ballooning or wedging the sidecar; and its trained context length.

Never touches the network: mlx-lm would take a path that does not exist for a Hub repo id
and download it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ApiError

# What a model folder may ask for, checked before mlx-lm reads it (a hostile repo must
# fail fast with a 400, not balloon or wedge the sidecar).
MAX_CONFIG_BYTES = 8 * 2**20  # real configs are kilobytes; per-layer quantization: ~1 MB
# config.json's size fields, under the names model families use (text_config too).
_LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
_WIDTH = ("hidden_size", "d_model", "n_embd")
_VOCAB = ("vocab_size", "n_vocab", "padded_vocab_size")
# Every layer holds at least a width x width matrix and the embedding vocab x width, at
# no less than 1 bit a parameter (mlx quantizes to 2 bits at the least): weight files
# smaller than that cannot hold the model the config describes.
_BITS_PER_PARAMETER_AT_LEAST = 1
# Keys under which model configs give the trained context length, in order of trust.
_CONTEXT_KEYS = (
    "max_position_embeddings",
    "max_sequence_length",
    "seq_length",
    "n_positions",
    "max_seq_len",
    "n_ctx",
)


def validate_model_dir(path: str) -> str:
    """Check that ``path`` is a local model folder mlx-lm can load; return its real path.

    Raises ApiError(400) naming the path and what is missing. Never touches the network:
    mlx-lm would treat a path that does not exist as a Hub repo id and download it.
    """
    if not path or not path.strip():
        raise ApiError(400, "model_path is empty")
    try:
        p = Path(path)
        if not p.exists():
            raise ApiError(400, f"model_path does not exist: {path}")
        if not p.is_dir():
            raise ApiError(400, f"model_path is not a directory: {path}")
        config = p / "config.json"
        if not config.is_file():
            raise ApiError(400, f"{path} is not a model folder: config.json is missing")
        size = config.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ApiError(
                400,
                f"{path}/config.json is {size / 2**20:.0f} MiB, more than the "
                f"{MAX_CONFIG_BYTES // 2**20} MiB a model config can need",
            )
        try:
            cfg = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"{path}/config.json is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError(400, f"{path}/config.json is nested too deeply to be a config") from None
        if not isinstance(cfg, dict) or "model_type" not in cfg:
            raise ApiError(400, f"{path}/config.json has no model_type")
        weights = sorted(p.glob("model*.safetensors"))
        if not weights:
            raise ApiError(400, f"{path} is not a model folder: no model*.safetensors weight files")
        for w in weights:
            if not w.exists():  # a snapshot symlink whose blob is missing
                raise ApiError(400, f"weight file {w} is a broken link (blob missing)")
        _check_sizes(cfg, sum(w.stat().st_size for w in weights), path)
        names = [c.name for c in p.iterdir()]
        if not any(n.startswith(("tokenizer", "vocab")) or n.endswith(".tiktoken") for n in names):
            raise ApiError(
                400,
                f"{path} is not a model folder: no tokenizer files "
                "(tokenizer.json, tokenizer.model, tokenizer_config.json, ...)",
            )
        return os.path.realpath(p)
    except ApiError:
        raise
    except (OSError, ValueError) as e:  # ENAMETOOLONG, embedded NUL byte, EACCES, ...
        raise ApiError(400, f"model_path {path!r} cannot be used: {e}") from None


def _check_sizes(cfg: dict, weight_bytes: int, path: str) -> None:
    """400 naming the field if config.json describes a model its weight files cannot hold.

    mlx-lm builds one Python object per layer before it reads a weight: a config that
    claims a million layers grows the process by gigabytes before any check of the
    weights could fail.
    """
    for where, section in (("", cfg), ("text_config.", cfg.get("text_config"))):
        if not isinstance(section, dict):
            continue
        sizes = {}
        for names in (_LAYERS, _WIDTH, _VOCAB):
            for name in names:
                value = section.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ApiError(
                        400, f"{path}/config.json: {where}{name} must be a positive integer"
                    )
                sizes[names] = (f"{where}{name}", value)
        if _WIDTH not in sizes:
            continue
        width_name, width = sizes[_WIDTH]
        # Parameters per layer, and per vocabulary entry.
        for names, per_unit in ((_LAYERS, width * width), (_VOCAB, width)):
            if names not in sizes:
                continue
            name, value = sizes[names]
            needed = value * per_unit * _BITS_PER_PARAMETER_AT_LEAST // 8
            if needed > weight_bytes:
                raise ApiError(
                    400,
                    f"{path}/config.json: {name} = {value} with {width_name} = {width} "
                    f"describes at least {_bytes(needed)} of weights, but the weight files "
                    f"hold {_bytes(weight_bytes)}; the config does not match the weights",
                )


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def context_length_of(config: dict) -> int | None:
    for cfg in (config, config.get("text_config") or {}):
        if not isinstance(cfg, dict):
            continue
        for key in _CONTEXT_KEYS:
            v = cfg.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None
