#!/usr/bin/env bash
# Start the desktop app against a local Hugging-Face-compatible hub that serves the test
# models, so the whole path (download, load, enhance) works offline in a minute:
# the window lists "SmolLM2-135M-Instruct-Q4" and "tiny-random-qwen3"; Download the
# first, Select it, and use "Try it". Uses the installed app (`local-mlx-app` from the
# .deb) if there is one, else the build of tools/app-build.sh. Models and settings of
# this demo live in ~/.cache/local-mlx/app-demo, apart from your real HF cache.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ensure-uv.sh

target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
app="$(command -v local-mlx-app || true)"
app="${app:-$target/release/local-mlx-app}"
[ -x "$app" ] || { echo "error: no app: run tools/app-build.sh (and install its .deb) first" >&2; exit 1; }

echo "== building the test models (once) and the test hub"
fixtures="$(uv run --frozen --project tools python tools/build_fixtures.py tiny smol)"
cargo build --quiet -p test-hub
tiny="$(printf '%s\n' "$fixtures" | awk -F'\t' '$1 == "tiny" { print $2 }')"
smol="$(printf '%s\n' "$fixtures" | awk -F'\t' '$1 == "smol" { print $2 }')"
tiny_path="$(printf '%s\n' "$fixtures" | awk -F'\t' '$1 == "tiny" { print $3 }')"

# The hub lives as long as this script: it exits when its stdin (our pipe) closes.
coproc HUB { exec "$target/debug/test-hub" --repos "${tiny_path%/"$tiny"}" --exit-on-stdin-close; }
read -r ready <&"${HUB[0]}"
hub_url="${ready##*url=}"
echo "== test hub at $hub_url; starting $app"

demo="$HOME/.cache/local-mlx/app-demo"
HF_ENDPOINT="$hub_url" HF_HUB_CACHE="$demo/hub" LOCAL_MLX_CONFIG_DIR="$demo/config" \
    LOCAL_MLX_EXTRA_MODELS="$smol,$tiny" "$app"
