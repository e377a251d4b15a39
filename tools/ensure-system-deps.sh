# Sourced by tools/test.sh and .ci/run: the Debian packages and tools the tests need,
# installed only when missing (so a developer's machine is left alone once set up).
#   build tools for -sys crates; OpenBLAS, which the sidecar preloads under MLX on Linux
#   (pre-fill ~10x faster, see docs/BENCHMARKS.md); procps for process checks in tests; systemd for
#   systemd-analyze, which checks the unit `local-mlx service install` writes;
#   WebKitGTK/GTK to build the desktop app; Xvfb, xauth and WebKitWebDriver to drive
#   its window; tauri-driver (crates.io) between WebDriver and the app.
system_packages=(pkg-config build-essential libopenblas0-pthread procps ca-certificates systemd
    libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev webkit2gtk-driver xvfb xauth)
missing=()
for package in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "== installing system packages: ${missing[*]}" >&2
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v tauri-driver >/dev/null 2>&1; then
    echo "== installing tauri-driver (cargo install)" >&2
    cargo install tauri-driver --locked --quiet
fi
