# Sourced by tools/*.sh (and by hand: `source tools/ensure-mlx.sh`): make libmlx available
# to the native engine (crates/local-mlx-engine). Installs MLX's own wheel from PyPI —
# mlx-cpu on Linux, mlx-metal on macOS, the version the sidecar pins — into
# ~/.cache/local-mlx/mlx-<version>/ (once; a rerun does nothing) and exports
# LOCAL_MLX_MLX_DIR, which the engine's build script compiles and links against
# (mlx/include, mlx/lib/libmlx.{so,dylib}). No Python runs: the wheel is only unpacked.
# shellcheck shell=bash
LOCAL_MLX_MLX_VERSION=0.32.4 # = python-backend/uv.lock's mlx / mlx-cpu
_mlx_dir="${LOCAL_MLX_CACHE:-$HOME/.cache/local-mlx}/mlx-$LOCAL_MLX_MLX_VERSION"
case "$(uname -s)" in
Darwin) _mlx_wheel=mlx-metal _mlx_lib=libmlx.dylib ;;
*) _mlx_wheel=mlx-cpu _mlx_lib=libmlx.so ;;
esac
if [ ! -f "$_mlx_dir/mlx/lib/$_mlx_lib" ] || [ ! -f "$_mlx_dir/mlx/include/mlx/mlx.h" ]; then
    source "$(dirname "${BASH_SOURCE[0]}")/ensure-uv.sh"
    echo "== installing libmlx ($_mlx_wheel==$LOCAL_MLX_MLX_VERSION from PyPI) into $_mlx_dir" >&2
    rm -rf "$_mlx_dir.tmp"
    # --no-deps: only the library, headers and CMake files (mlx-metal's pure-Python
    # sibling `mlx` is not needed to link).
    uv pip install --quiet --no-deps --target "$_mlx_dir.tmp" "$_mlx_wheel==$LOCAL_MLX_MLX_VERSION" >&2 &&
        [ -f "$_mlx_dir.tmp/mlx/lib/$_mlx_lib" ] &&
        rm -rf "$_mlx_dir" && mv "$_mlx_dir.tmp" "$_mlx_dir" || {
        echo "error: could not install $_mlx_wheel==$LOCAL_MLX_MLX_VERSION into $_mlx_dir" >&2
        return 1 2>/dev/null || exit 1
    }
fi
export LOCAL_MLX_MLX_DIR="$_mlx_dir"
unset _mlx_dir _mlx_wheel _mlx_lib
