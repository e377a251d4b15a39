#!/usr/bin/env bash
# A cold `local-mlx process` end to end, native engine vs the Python sidecar, in one
# run: release builds of local-mlx, test-hub and local-mlx-engine; smol served by
# test-hub and pulled into a temp cache; then, alternating, REPS cold runs of each
#   LOCAL_MLX_ENGINE=<engine> local-mlx process --json --answer-within never --model <smol> "$TEXT"
# (the default prompt, so the transcript constraint is on, as in a dictation; no deadline,
# so a slow cold start is measured, not cut). The sidecar runs from python-backend/ (LOCAL_MLX_BACKEND_DIR; its venv synced) with OpenBLAS
# preloaded by the supervisor as usual; the worker gets the same BLAS plan.
# Prints one line per run: engine, wall ms, and process's own timings.
#   bench/engine_process_cold.sh [REPS]
# PROFILE=debug builds local-mlx and test-hub without optimizations (quicker to build;
# the worker is always the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
source tools/ensure-uv.sh
source tools/ensure-mlx.sh
uv sync --quiet --frozen --project python-backend
uv run --frozen --project tools python tools/build_fixtures.py smol >/dev/null
target=${CARGO_TARGET_DIR:-target}
profile=${PROFILE:-release}
cargo build --release --quiet -p local-mlx-engine
if [ "$profile" = release ]; then
    cargo build --release --quiet -p local-mlx-cli -p test-hub
else
    cargo build --quiet -p local-mlx-cli -p test-hub
fi
repos="${LOCAL_MLX_FIXTURES:-$HOME/.cache/local-mlx/fixtures}/repos"
coproc HUB { exec "$target/$profile/test-hub" --repos "$repos" --exit-on-stdin-close; }
read -r ready <&"${HUB[0]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_ENDPOINT="${ready#*url=}" HF_HUB_CACHE="$tmp/cache" LOCAL_MLX_CONFIG_DIR="$tmp/config"
export LOCAL_MLX_BACKEND_DIR="$PWD/python-backend" LOCAL_MLX_ENGINE_BIN="$target/release/local-mlx-engine"
model=local-mlx-test/SmolLM2-135M-Instruct-Q4
"$target/$profile/local-mlx" pull "$model" >/dev/null 2>&1
TEXT="um so i think we should uh meet tomorrow"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$reps"); do
    for engine in native sidecar; do
        start=$(date +%s%N)
        out=$(LOCAL_MLX_ENGINE=$engine "$target/$profile/local-mlx" process --json --answer-within never --model "$model" "$TEXT" 2>/dev/null)
        wall=$((($(date +%s%N) - start) / 1000000))
        echo "$engine wall_ms=$wall $(python3 -c 'import json,sys; j=json.load(sys.stdin); t=j["timings"]; print(" ".join(f"{k}={t[k]}" for k in ("start_ms","load_ms","generate_ms")), "tokens=%d" % j["tokens_generated"], repr(j["text"]))' <<<"$out")"
    done
done
