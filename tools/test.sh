#!/usr/bin/env bash
# README's test command: every test of local-mlx, Rust and Python, against real parts
# (a hub-compatible server on 127.0.0.1, real files, real mlx-lm on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/ensure-system-deps.sh
source tools/ensure-uv.sh
# libmlx for the native engine (crates/local-mlx-engine), built and tested with the rest.
source tools/ensure-mlx.sh
echo "== syncing Python environments (tools/, python-backend/)"
uv sync --quiet --frozen --project tools
uv sync --quiet --frozen --project python-backend

echo "== formatters and linters (rustfmt, clippy, ruff)"
tools/lint.sh

echo "== building fixture models (cached in \${LOCAL_MLX_FIXTURES:-~/.cache/local-mlx/fixtures})"
uv run --frozen --project tools python tools/build_fixtures.py tiny smol

echo "== Rust tests (the desktop app's come with its own build below)"
cargo test --workspace --locked --exclude local-mlx-app --exclude local-mlx-tauri

echo "== Python tests: fixture builder"
uv run --frozen --project tools pytest -q tools/tests

echo "== Python tests: sidecar"
uv run --frozen --project python-backend pytest -q python-backend/tests

echo "== desktop app: .deb build, Rust and component tests, end-to-end in the real window"
tools/app-test.sh
