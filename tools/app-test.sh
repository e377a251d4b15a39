#!/usr/bin/env bash
# Every test of the desktop app, in the order a failure is cheapest to see: the .deb
# build, the Rust unit tests (the generated TypeScript bindings must be up to date),
# the type check and component tests (vitest, Tauri's IPC mocked), then the end-to-end
# test in the real window (tools/app-e2e.sh), which also refreshes docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== desktop app: build (frontend, Rust release, .deb with uv and python-backend)"
started=$SECONDS
deb="$(tools/app-build.sh)"
echo "== desktop app: built $deb in $((SECONDS - started)) s"

echo "== desktop app: Rust tests (the app and crates/local-mlx-tauri)"
# The same features as `tauri build`, so the release artifacts are reused.
cargo test --release --locked -p local-mlx-app -p local-mlx-tauri --features local-mlx-app/custom-protocol

echo "== desktop app: clippy (warnings are errors)"
cargo clippy --release --locked -p local-mlx-app -p local-mlx-tauri --features local-mlx-app/custom-protocol --all-targets -- -D warnings

echo "== desktop app: type check and component tests (vitest)"
(cd app && npx tsc --noEmit && npx vitest run)

APP_DEB="$deb" tools/app-e2e.sh
