#!/usr/bin/env bash
# Build the desktop app and its Linux package: the frontend (Vite), the Rust app
# (release), and a .deb that carries uv (Tauri `externalBin`, from PyPI's uv wheel for
# this machine) and python-backend/ (resources, installed to /usr/lib/local-mlx/).
# Progress goes to stderr; stdout gets one line, the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."

{
    tools/app-fetch-uv.sh
    (cd app && npm ci --no-audit --no-fund --loglevel=error)
    (cd app && npx tauri build --bundles deb --ci)
} >&2

target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ls -t "$target"/release/bundle/deb/local-mlx_*.deb | head -n1
