"""The `local-mlx` wheel as a user gets it: built from the checkout, installed with
`uv tool install` into a fresh HOME and tool folder (its `uv` dependency from the
package registry, nothing of the source tree on PATH), then `local-mlx setup` against a
test hub, a second `setup` that changes nothing, `local-mlx serve` answering Handy's
exact request offline, and `uv tool uninstall` leaving nothing of ours in the tool folder.

The wheel is tools/build-wheel.sh's (`LOCAL_MLX_WHEEL` names one already built, as
tools/test.sh does); it is built with the dev profile there: this checks packaging, and
an optimized build would only take longer.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_harness  # noqa: E402

ROOT = serve_harness.ROOT
TRANSCRIPT = "um so i think we should uh meet tomorrow"


@pytest.fixture(scope="module")
def wheel() -> Path:
    given = os.environ.get("LOCAL_MLX_WHEEL")
    if given:
        return Path(given)
    out = subprocess.run(
        [str(ROOT / "tools" / "build-wheel.sh"), "--profile", "dev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    repo_id, path = serve_harness.fixture("tiny")
    stack = serve_harness.start(tmp_path_factory.mktemp("hub"), path.parents[1])
    try:
        yield repo_id, stack.hub_url
    finally:
        stack.close()


@contextlib.contextmanager
def older_server():
    """A real listener on 127.0.0.1 answering `/health` as local-mlx 0.0.1 would."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            body = json.dumps({"status": "idle", "version": "0.0.1 (commit 0123abc)"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class User:
    """A fresh HOME whose PATH holds only the system's folders and uv's tool bin."""

    def __init__(self, home: Path, hub_url: str):
        self.home = home
        self.tools = home / "uv-tools"
        self.bin = home / "bin"
        self.uv = shutil.which("uv")
        assert self.uv, "uv runs the install (tools/ensure-uv.sh puts it on PATH)"
        # The download cache is shared so the test does not fetch ~250 MB again; it
        # holds packages only, nothing of ours.
        uv_cache = subprocess.run(
            [self.uv, "cache", "dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.env = {
            "HOME": str(home),
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "UV_TOOL_DIR": str(self.tools),
            "UV_TOOL_BIN_DIR": str(self.bin),
            "UV_CACHE_DIR": uv_cache,
            "UV_PYTHON_DOWNLOADS": "never",
            "HF_ENDPOINT": hub_url,
        }
        for name in (
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "PIP_CERT",
            "UV_INDEX_URL",
            "UV_DEFAULT_INDEX",
        ):
            if name in os.environ:
                self.env[name] = os.environ[name]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=1800,
        )

    def local_mlx(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return self.run(str(self.bin / "local-mlx"), *args, **extra)


def test_wheel_is_tagged_where_mlx_runs_and_carries_license_readme_and_bounds(wheel):
    """Issue 26 items 1 and 2: MLX has wheels only for macOS 14+ and glibc 2.35+."""
    import platform
    import zipfile

    expected = "macosx_14_0_arm64" if sys.platform == "darwin" else "manylinux_2_35_"
    assert expected in wheel.name, wheel.name
    assert f"manylinux_2_35_{platform.machine()}" in wheel.name or sys.platform == "darwin"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        license_file = next(n for n in names if n.endswith("/licenses/LICENSE"))
        assert archive.read(license_file).decode().startswith("MIT License")
    headers = text.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: MIT" in headers, headers
    assert "Requires-Python: >=3.8" in headers, headers
    assert "Requires-Dist: uv>=0.9.0,<0.14" in headers, headers
    assert "Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM" in headers
    assert "macOS 14+ on Apple Silicon" in text, "the README is the long description"


def test_installed_wheel_sets_up_serves_handy_offline_and_uninstalls(wheel, hub, tmp_path):
    repo_id, hub_url = hub
    user = User(tmp_path / "home", hub_url)

    installed = user.run(user.uv, "tool", "install", str(wheel))
    assert installed.returncode == 0, installed.stderr
    command = user.bin / "local-mlx"
    assert command.resolve().is_relative_to(user.tools), "the command is the tool's own copy"
    assert (command.resolve().parent / "uv").is_file(), "uv came along as the wheel's dependency"
    version = user.local_mlx("--version")
    assert version.returncode == 0 and version.stdout.startswith("local-mlx "), version
    assert "(commit " in version.stdout, version.stdout

    first = user.local_mlx("setup", repo_id, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["model_id"] == repo_id
    assert report["environment_sync_s"] is not None, "a fresh HOME has no environment yet"
    assert report["downloaded_bytes"] > 0
    assert isinstance(report["cleaned"], str) and report["cleaned"]
    data = user.home / ".local" / "share" / "local-mlx"
    servers = list((data / "sidecar").glob("*/server.py"))
    assert len(servers) == 1, "the sidecar's files were written from the binary, once"
    assert str(ROOT) not in first.stdout + first.stderr, "nothing comes from the source tree"

    assert report["service_note"] is None, "no service installed yet"

    # Issue 26 item 12: after an upgrade the login service still runs the old version,
    # and `setup` says so. The service is installed (no user manager here, so it is
    # written, not started) on the port of a server answering as an older local-mlx.
    with older_server() as port:
        installed = user.local_mlx("service", "install", "--port", str(port))
        assert installed.returncode == 0, installed.stderr
        again = user.local_mlx("setup", repo_id, "--json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["environment_sync_s"] is None, "nothing to sync the second time"
    assert second["downloaded_bytes"] == 0, "nothing to download the second time"
    note = second["service_note"] or ""
    assert "the service runs local-mlx 0.0.1 (commit 0123abc), older than" in note, second
    assert second["next_steps"][0].startswith("local-mlx service restart"), second
    assert user.local_mlx("service", "uninstall").returncode == 0

    log_path = user.home / ".config" / "local-mlx" / "sidecar.log"
    syncs_before = log_path.read_text().count("--- uv sync")
    assert syncs_before == 1, "the first setup synced, the second did not"
    serve = subprocess.Popen(
        [str(command), "serve", "--port", "0"],
        env={**user.env, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = serve.stdout.readline()
        assert line.startswith("local-mlx serve: "), line + serve.stderr.read()
        url = line.split(": ", 1)[1].strip()
        _, answer = serve_harness.handy_ask(
            url, serve_harness.handy_body(repo_id, serve_harness.HANDY_PROMPT, TRANSCRIPT)
        )
        assert answer["choices"][0]["message"]["content"], answer
        syncs = log_path.read_text().count("--- uv sync")
        assert syncs == syncs_before, "the first request after setup paid no environment sync"
    finally:
        serve.terminate()
        serve.wait(timeout=60)

    removed = user.run(user.uv, "tool", "uninstall", "local-mlx")
    assert removed.returncode == 0, removed.stderr
    assert not command.exists()
    left = [p for p in user.tools.rglob("*") if "local-mlx" in p.name or "local_mlx" in p.name]
    assert left == [], f"left in the tool folder: {left}"


def test_setup_without_network_names_what_to_do(wheel, hub, tmp_path):
    repo_id, _ = hub
    user = User(tmp_path / "home", "http://127.0.0.1:9")
    assert user.run(user.uv, "tool", "install", str(wheel)).returncode == 0
    offline = user.local_mlx("process", "--model", repo_id, "hello", HF_HUB_OFFLINE="1")
    assert offline.returncode != 0
    assert f"local-mlx setup {repo_id}" in offline.stderr, offline.stderr
    unreachable = user.local_mlx("setup", repo_id)
    assert unreachable.returncode != 0
    assert "127.0.0.1:9" in unreachable.stderr and "network" in unreachable.stderr, (
        unreachable.stderr
    )
    assert not list((user.home / ".cache" / "huggingface" / "hub").glob("models--*/refs/*")), (
        "no model looks downloaded"
    )


def test_a_uvx_copy_refuses_to_install_the_login_service(wheel, tmp_path):
    """Issue 26 item 11: `uvx` runs a copy in uv's cache, which `uv cache clean` deletes."""
    user = User(tmp_path / "home", "http://127.0.0.1:9")
    run = user.run(
        user.uv,
        "tool",
        "run",
        "--from",
        str(wheel),
        "local-mlx",
        "service",
        "install",
        LOCAL_MLX_SERVICE_MANAGER="systemd",
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "install it first: `uv tool install local-mlx`" in run.stderr, run.stderr
    assert not (user.home / ".config" / "systemd").exists(), "nothing was written"
