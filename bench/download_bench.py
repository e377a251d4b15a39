"""Download benchmark: `local-mlx pull` against Python `huggingface_hub.snapshot_download`.

Both fetch the same repos from the same `test-hub` on 127.0.0.1 into fresh caches, in one
run, so the ratio is what matters (the machine is shared and noisy; absolute seconds are
not comparable between runs). Reported per repo:

* full download time of each client, best of `--repeat` runs, and the ratio ours/theirs;
* bytes re-fetched after an interrupted download: the client is SIGKILLed once the hub
  has served about half of the largest file, then rerun to completion; the hub's own
  byte counter gives what was served in total, minus the file size = served twice.

Run (builds release binaries and the fixtures first):

    uv run --project tools python bench/download_bench.py --repeat 3

Prints a Markdown table for docs/BENCHMARKS.md.

`--capped` runs the ranged-parts benchmark instead: single-file repos of 512 MiB and
1 GiB (random bytes, written under ~/.cache/local-mlx/bench-parts and deleted after)
served by a hub that caps every response at `--cap-mib` MiB/s on its own, like a CDN
edge; `local-mlx pull` against single-stream `huggingface_hub`, bytes re-fetched after
a SIGKILL at 50 %, and, uncapped on loopback, this build against `--baseline-bin`
(a `local-mlx` built from main) in the same run.

`--plain` runs the fast-link benchmark: one single-file repo of `--plain-mib` MiB served
on loopback by `PlainHub` below (Python's `http.server`, ranges and all, not `test-hub`),
`local-mlx pull` (defaults, and one connection; and `--baseline-bin` the same way when
given) against `huggingface_hub`, interleaved within each repetition so all see the same
load.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BIN = TARGET / "release"
PY_DOWNLOAD = (
    "import sys; from huggingface_hub import snapshot_download; "
    "snapshot_download(sys.argv[1], cache_dir=sys.argv[2], "
    "allow_patterns=['*.json','model*.safetensors','tokenizer.model','*.tiktoken','*.txt','*.jsonl','*.jinja'])"
)


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kw)


def build() -> dict[str, str]:
    print("building release binaries and fixtures...", file=sys.stderr)
    sh("cargo", "build", "--release", "-p", "local-mlx-cli", "-p", "test-hub", cwd=ROOT)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/build_fixtures.py"),
            "smol",
            "synthetic",
            "--synthetic-mib",
            "1024",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return {line.split("\t")[0]: line.split("\t")[1] for line in out.strip().splitlines()}


class Hub:
    """The `test-hub` binary serving the fixture repos."""

    def __init__(self, repos: Path):
        self.proc = subprocess.Popen(
            [str(BIN / "test-hub"), "--repos", str(repos), "--exit-on-stdin-close"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        assert line.startswith("TEST_HUB_READY url="), line
        self.url = line.split("=", 1)[1]

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def served(self, repo: str) -> dict[str, int]:
        files = self.call("GET", "/_test/stats")["files"]
        return {
            k[len(repo) + 1 :]: v["bytes_served"]
            for k, v in files.items()
            if k.startswith(repo + "/")
        }

    def set_rate_cap(self, bytes_per_sec: int | None):
        self.call("PUT", "/_test/rate_cap", {"bytes_per_sec": bytes_per_sec})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def ours(repo: str, cache: Path, hub: Hub) -> list[str]:
    return [str(BIN / "local-mlx"), "pull", repo]


def theirs(repo: str, cache: Path, hub: Hub) -> list[str]:
    return [sys.executable, "-c", PY_DOWNLOAD, repo, str(cache)]


def client_env(hub: Hub, cache: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        HF_ENDPOINT=hub.url,
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(cache.parent / "hf_home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    env.pop("HF_HUB_OFFLINE", None)
    return env


def timed_download(make_cmd, repo: str, hub: Hub) -> float:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        cache = Path(tmp) / "hub"
        start = time.perf_counter()
        sh(
            *make_cmd(repo, cache, hub),
            env=client_env(hub, cache),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def refetched_after_kill(
    make_cmd, repo: str, hub: Hub, big_file: str, size: int, throttle: bool = True
) -> int:
    """SIGKILL at ~half of `big_file`, rerun; bytes of it served beyond its size."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        cache = Path(tmp) / "hub"
        env = client_env(hub, cache)
        hub.call("POST", "/_test/reset_stats")
        if throttle:
            # Slow enough that "half" is hit precisely, for both clients alike.
            hub.call(
                "POST",
                "/_test/faults",
                [{"kind": "throttle", "bytes_per_sec": 200 << 20, "path": big_file}],
            )
        proc = subprocess.Popen(
            make_cmd(repo, cache, hub),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while hub.served(repo).get(big_file, 0) < size // 2:
            if proc.poll() is not None:
                raise RuntimeError("client finished before it could be interrupted")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        hub.call("DELETE", "/_test/faults")
        sh(
            *make_cmd(repo, cache, hub),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return hub.served(repo)[big_file] - size


def biggest_file(repo_dir: Path) -> tuple[str, int]:
    files = [p for p in repo_dir.rglob("*") if p.is_file()]
    big = max(files, key=lambda p: p.stat().st_size)
    return str(big.relative_to(repo_dir)), big.stat().st_size


MIB = 1 << 20
PARTS_ROOT = Path.home() / ".cache/local-mlx/bench-parts"


def single_file_repo(repos: Path, mib: int) -> str:
    """`local-mlx-bench/single-<mib>mib`: config.json and one random model.safetensors."""
    repo = f"local-mlx-bench/single-{mib}mib"
    folder = repos / repo
    weights = folder / "model.safetensors"
    if not weights.exists() or weights.stat().st_size != mib * MIB:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text('{"model_type": "qwen3"}')
        with open(weights, "wb") as out:
            for _ in range(mib // 8):
                out.write(os.urandom(8 * MIB))
    return repo


def hash_seconds_per_gib(path: Path) -> float:
    """sha256 of a file already in the page cache (OpenSSL, SHA-NI here), per GiB."""
    import hashlib

    digest = hashlib.sha256()
    start = time.perf_counter()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return (time.perf_counter() - start) * (1 << 30) / path.stat().st_size


def capped(args) -> None:
    sh("cargo", "build", "--release", "-p", "local-mlx-cli", "-p", "test-hub", cwd=ROOT)
    repos_dir = PARTS_ROOT / "repos"
    repos = [single_file_repo(repos_dir, mib) for mib in (512, 1024)]
    baseline = Path(args.baseline_bin)

    def main_bin(repo: str, cache: Path, hub: Hub) -> list[str]:
        return [str(baseline), "pull", repo]

    hub = Hub(repos_dir)
    rows, loopback = [], []
    try:
        for repo in repos:
            size = (repos_dir / repo / "model.safetensors").stat().st_size
            hub.set_rate_cap(None)
            timed_download(ours, repo, hub)  # warm the hub's hash cache and the page cache
            t_main = min(timed_download(main_bin, repo, hub) for _ in range(args.repeat))
            t_new = min(timed_download(ours, repo, hub) for _ in range(args.repeat))
            loopback.append((repo, size, t_main, t_new))
            hub.set_rate_cap(args.cap_mib * MIB)
            t_ours = min(timed_download(ours, repo, hub) for _ in range(args.repeat))
            t_theirs = min(timed_download(theirs, repo, hub) for _ in range(args.repeat))
            r_ours = refetched_after_kill(
                ours, repo, hub, "model.safetensors", size, throttle=False
            )
            rows.append((repo, size, t_ours, t_theirs, r_ours))
            print(
                f"{repo}: capped ours {t_ours:.2f}s theirs {t_theirs:.2f}s refetched {r_ours}; "
                f"loopback main {t_main:.2f}s ours {t_new:.2f}s",
                file=sys.stderr,
            )
        per_gib = hash_seconds_per_gib(repos_dir / repos[-1] / "model.safetensors")
    finally:
        hub.close()
        if not args.keep:
            shutil.rmtree(PARTS_ROOT, ignore_errors=True)
    print(
        f"| repo (one file) | local-mlx, {args.cap_mib} MiB/s per connection | huggingface_hub | speed-up | "
        "re-fetched after SIGKILL at 50% |"
    )
    print("|---|---|---|---|---|")
    for repo, size, t_ours, t_theirs, r_ours in rows:
        print(
            f"| {repo} ({size // MIB} MiB) | {t_ours:.2f} s | {t_theirs:.2f} s | {t_theirs / t_ours:.1f}× | "
            f"{r_ours / 1e6:.2f} MB ({100 * r_ours / size:.2f}%) |"
        )
    print()
    print("| repo, uncapped loopback | main's local-mlx | this local-mlx | ratio (this/main) |")
    print("|---|---|---|---|")
    for repo, _size, t_main, t_new in loopback:
        print(f"| {repo} | {t_main:.2f} s | {t_new:.2f} s | {t_new / t_main:.2f} |")
    print()
    print(f"sha256 of a page-cached file: {per_gib:.2f} s per GiB")


class PlainHub:
    """A small Hub-compatible server on Python's `http.server`: the info and tree API
    and `resolve` (HEAD, GET, single `Range`), serving one folder of repos from disk in
    1 MiB reads and writes, one thread per connection. Every file is given an LFS
    sha256 and a git blob sha1, computed once at start."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, repos: Path, repo: str):
        self.repo, self.folder = repo, repos / repo
        self.files = {}
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            sha256, sha1 = hashlib.sha256(), hashlib.sha1()
            sha1.update(f"blob {path.stat().st_size}\0".encode())
            with open(path, "rb") as f:
                while chunk := f.read(4 * MIB):
                    sha256.update(chunk)
                    sha1.update(chunk)
            name = str(path.relative_to(self.folder))
            self.files[name] = (path, path.stat().st_size, sha256.hexdigest(), sha1.hexdigest())
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(body=False)

            def do_GET(self):
                self.answer(body=True)

            def json(self, value):
                raw = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def answer(self, body: bool):
                path = self.path.split("?", 1)[0]
                api = f"/api/models/{hub.repo}/"
                if path.startswith(api + "revision/"):
                    siblings = [{"rfilename": name} for name in hub.files]
                    return self.json({"id": hub.repo, "sha": hub.COMMIT, "siblings": siblings})
                if path.startswith(api + "tree/"):
                    return self.json(
                        [
                            {
                                "type": "file",
                                "path": n,
                                "size": s,
                                "oid": oid,
                                "lfs": {"oid": lfs, "size": s, "pointerSize": 134},
                            }
                            for n, (_, s, lfs, oid) in hub.files.items()
                        ]
                    )
                prefix = f"/{hub.repo}/resolve/"
                name = path[len(prefix) :].split("/", 1)[-1] if path.startswith(prefix) else None
                if name not in hub.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                file, size, sha256, _ = hub.files[name]
                start, end = 0, size - 1
                ranged = self.headers.get("Range", "").strip()
                if ranged.startswith("bytes=") and "," not in ranged:
                    first, _, last = ranged[6:].partition("-")
                    start = int(first) if first else max(size - int(last), 0)
                    end = min(int(last), size - 1) if first and last else size - 1
                    if start > end:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{sha256}"')
                self.send_header("X-Linked-Etag", f'"{sha256}"')
                self.send_header("X-Linked-Size", str(size))
                self.send_header("X-Repo-Commit", hub.COMMIT)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                if not body:
                    return
                with open(file, "rb") as f:
                    f.seek(start)
                    left = end - start + 1
                    while left > 0:
                        chunk = f.read(min(MIB, left))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        left -= len(chunk)

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def plain(args) -> None:
    sh("cargo", "build", "--release", "-p", "local-mlx-cli", cwd=ROOT)
    repos_dir = PARTS_ROOT / "repos"
    repo = single_file_repo(repos_dir, args.plain_mib)
    hub = PlainHub(repos_dir, repo)

    def one_connection(repo: str, cache: Path, hub) -> list[str]:
        return ["env", "LOCAL_MLX_DOWNLOAD_CONNECTIONS=1", *ours(repo, cache, hub)]

    clients = {"local-mlx": ours, "local-mlx, 1 connection": one_connection}
    if args.baseline_bin:
        baseline = str(Path(args.baseline_bin))

        def main_bin(repo: str, cache: Path, hub) -> list[str]:
            return [baseline, "pull", repo]

        def main_one(repo: str, cache: Path, hub) -> list[str]:
            return ["env", "LOCAL_MLX_DOWNLOAD_CONNECTIONS=1", baseline, "pull", repo]

        clients |= {"baseline local-mlx": main_bin, "baseline, 1 connection": main_one}
    clients["huggingface_hub"] = theirs
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        timed_download(ours, repo, hub)  # warm the page cache
        for run in range(args.repeat):
            for name, make_cmd in clients.items():
                times[name].append(timed_download(make_cmd, repo, hub))
            print(
                f"run {run + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()),
                file=sys.stderr,
            )
    finally:
        hub.close()
        if not args.keep:
            shutil.rmtree(PARTS_ROOT, ignore_errors=True)
    print(f"| {repo}, PlainHub on loopback | best | per run | ratio theirs/ours per run |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(ts, times["huggingface_hub"]))
        print(f"| {name} | {min(ts):.2f} s | {', '.join(f'{t:.2f}' for t in ts)} s | {ratios} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--capped", action="store_true", help="the ranged-parts benchmark")
    parser.add_argument("--cap-mib", type=int, default=20, help="per-connection cap, MiB/s")
    parser.add_argument(
        "--baseline-bin",
        help="`local-mlx` built from main (needed by --capped, optional with --plain)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated repos")
    parser.add_argument("--plain", action="store_true", help="the fast-link benchmark on PlainHub")
    parser.add_argument("--plain-mib", type=int, default=1024, help="file size for --plain")
    args = parser.parse_args()
    if args.plain:
        plain(args)
        return
    if args.capped:
        if not args.baseline_bin:
            parser.error("--capped needs --baseline-bin")
        capped(args)
        return
    repos = build()
    fixtures = Path(os.environ.get("LOCAL_MLX_FIXTURES", Path.home() / ".cache/local-mlx/fixtures"))
    hub = Hub(fixtures / "repos")
    rows = []
    try:
        for key in ("smol", "synthetic"):
            repo = repos[key]
            big_file, size = biggest_file(fixtures / "repos" / repo)
            total = sum(
                p.stat().st_size for p in (fixtures / "repos" / repo).rglob("*") if p.is_file()
            )
            timed_download(ours, repo, hub)  # warm the hub's hash cache and the page cache
            t_ours = min(timed_download(ours, repo, hub) for _ in range(args.repeat))
            t_theirs = min(timed_download(theirs, repo, hub) for _ in range(args.repeat))
            r_ours = refetched_after_kill(ours, repo, hub, big_file, size)
            r_theirs = refetched_after_kill(theirs, repo, hub, big_file, size)
            rows.append((repo, total, t_ours, t_theirs, r_ours, r_theirs, size))
            print(
                f"{repo}: ours {t_ours:.2f}s theirs {t_theirs:.2f}s; refetched ours {r_ours} theirs {r_theirs}",
                file=sys.stderr,
            )
    finally:
        hub.close()
    print(
        "| repo | size | local-mlx | huggingface_hub | ratio (ours/theirs) | re-fetched after kill at 50%: local-mlx | huggingface_hub |"
    )
    print("|---|---|---|---|---|---|---|")
    for repo, total, t_ours, t_theirs, r_ours, r_theirs, size in rows:
        print(
            f"| {repo} | {total / 1e6:.0f} MB | {t_ours:.2f} s | {t_theirs:.2f} s | {t_ours / t_theirs:.2f} | "
            f"{r_ours / 1e6:.2f} MB ({100 * r_ours / size:.2f}%) | {r_theirs / 1e6:.1f} MB ({100 * r_theirs / size:.1f}%) |"
        )


if __name__ == "__main__":
    main()
