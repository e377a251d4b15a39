#!/usr/bin/env bash
# Put the uv binary the desktop app bundles (Tauri `externalBin`) at
# app/src-tauri/binaries/uv-<host triple>: taken from the uv wheel on PyPI for this
# machine's platform, at the version tools/ensure-uv.sh pins. Skips the download when
# the right version is already there. The binary is never committed (.gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

version="${UV_VERSION:-$(grep -o "uv==[0-9.]*" tools/ensure-uv.sh | head -n1 | cut -d= -f3)}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
dest="app/src-tauri/binaries/uv-$triple"

if [ -x "$dest" ] && "$dest" --version 2>/dev/null | grep -q "^uv $version "; then
    echo "== bundled uv: $dest is uv $version already"
    exit 0
fi

echo "== bundled uv: fetching uv $version for $triple from PyPI"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp" "uv==$version"
wheel="$(ls "$tmp"/uv-*.whl)"
python3 - "$wheel" "$dest" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv") or n.endswith(".data/scripts/uv.exe"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with z.open(name) as src, open(dest + ".tmp", "wb") as out:
        out.write(src.read())
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PY
"$dest" --version
