# Sourced by tools/*.sh: make sure `uv` is on PATH (installed from PyPI when missing),
# and that uv never downloads a Python build (the machine's own Python is used).
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
    echo "== installing uv from PyPI (python3 -m pip install uv)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'uv==0.13.9' >&2
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
    export PATH
    command -v uv >/dev/null || { echo "error: uv is still not on PATH after installing it" >&2; exit 1; }
fi
