#!/usr/bin/env bash
# Builds the `local-mlx` wheel for this machine from the checkout (maturin, the binary
# inside, uv as its dependency) and prints the wheel's path on stdout.
#
#   tools/build-wheel.sh                  # release build, into <target>/wheels
#   tools/build-wheel.sh --profile dev    # what the tests use: the packaging, built fast
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ensure-uv.sh
profile="release"
if [ "${1:-}" = "--profile" ]; then profile="${2:?--profile needs a name}"; fi
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="$target/wheels/$profile"
rm -rf "$out"
echo "== building the local-mlx wheel ($profile) into $out" >&2
uv run --frozen --project tools maturin build --quiet --locked --profile "$profile" \
    --manifest-path crates/local-mlx-cli/Cargo.toml --out "$out" >&2
ls "$out"/local_mlx-*.whl
