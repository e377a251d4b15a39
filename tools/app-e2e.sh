#!/usr/bin/env bash
# End-to-end test of the desktop app in a real window: builds the .deb (tools/app-build.sh),
# unpacks it as an install would lay it out, builds test-hub and the test models, then
# drives the unpacked app under Xvfb through tauri-driver + WebKitWebDriver
# (app/e2e/app.test.mjs). Screenshots of each state land in docs/screenshots/.
#   APP_DEB=path.deb   test this package instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
source tools/ensure-uv.sh

for tool in tauri-driver WebKitWebDriver xvfb-run; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (see .ci/run for the packages)" >&2; exit 1; }
done

deb="${APP_DEB:-$(tools/app-build.sh | tail -n1)}"
echo "== desktop app: unpacking $deb"
unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$deb" "$unpacked"
test -x "$unpacked/usr/bin/local-mlx-app" && test -x "$unpacked/usr/bin/uv" \
    && test -f "$unpacked/usr/lib/local-mlx/python-backend/server.py" \
    || { echo "error: the package lacks the app, uv or python-backend:" >&2; find "$unpacked" -maxdepth 5 >&2; exit 1; }

echo "== desktop app: test-hub and the test models"
cargo build --quiet -p test-hub
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
fixtures="$(uv run --frozen --project tools python tools/build_fixtures.py tiny smol)"
repo_of() { printf '%s\n' "$fixtures" | awk -F'\t' -v k="$1" '$1 == k { print $2 }'; }
path_of() { printf '%s\n' "$fixtures" | awk -F'\t' -v k="$1" '$1 == k { print $3 }'; }
tiny_path="$(path_of tiny)"

export LOCAL_MLX_APP_BIN="$unpacked/usr/bin/local-mlx-app"
export TEST_HUB_BIN="$target/debug/test-hub"
export FIXTURE_TINY="$(repo_of tiny)" FIXTURE_SMOL="$(repo_of smol)"
export FIXTURE_REPOS="${tiny_path%/"$FIXTURE_TINY"}"
export SCREENSHOT_DIR="$root/docs/screenshots"
export NO_AT_BRIDGE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1

echo "== desktop app: end-to-end in the real window (Xvfb, tauri-driver, WebKitWebDriver)"
xvfb-run --auto-servernum --server-args="-screen 0 1280x1024x24" \
    node --test --test-concurrency=1 app/e2e/app.test.mjs
