#!/usr/bin/env bash
# Builds the `local-mlx` wheel for this machine from the checkout (maturin, the binary
# inside, uv as its dependency) and prints the wheel's path on stdout. It is tagged
# where MLX has wheels (mlx, mlx-metal, mlx-cpu publish no sdist): macOS 14.0 on Apple
# Silicon, glibc 2.35 on Linux (maturin checks the binary needs no newer glibc).
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
tag=()
case "$(uname -s)" in
    Darwin) export MACOSX_DEPLOYMENT_TARGET=14.0 ;;
    Linux) tag=(--compatibility manylinux_2_35) ;;
esac
uv run --frozen --project tools maturin build --quiet --locked --profile "$profile" "${tag[@]}" \
    --manifest-path crates/local-mlx-cli/Cargo.toml --out "$out" >&2
ls "$out"/local_mlx-*.whl
