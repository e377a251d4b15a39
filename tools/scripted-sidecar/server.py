"""A stand-in for local-mlx's sidecar that answers from a table: tests only.

It speaks the sidecar's process and HTTP contract as ``python-backend/server.py``
documents it, so the real supervisor, manager and ``local-mlx serve`` drive it
unchanged (point ``SidecarConfig::backend_dir`` or ``LOCAL_MLX_BACKEND_DIR`` here): the
ready line ``LOCAL_MLX_READY port=<port>`` on stdout, then stdout closed; the bearer
token of ``LOCAL_MLX_TOKEN`` on every request (401 otherwise; exit 2 without it); exit
0 when stdin closes or on SIGTERM; ``GET /status``, ``POST /load``, ``POST /unload``
and ``POST /generate`` with the same fields, and with ``"stream": true`` the same
NDJSON lines (``token`` events, then one ``done``).

Instead of a model, a table: ``LOCAL_MLX_SCRIPT`` names a JSON file holding a list of
``{"when": str, "answer": str, "finish_reason": "stop"|"length", "seconds_per_word":
float}`` (the last two optional). The first row whose ``when`` occurs in the last user
message (or ``prompt``) gives the answer; with none, ``/generate`` fails with 500 and
says which text had no row. ``seconds_per_word`` makes a slow model: a streamed answer
waits that long after each word, a whole one that long per word before it is sent. A
row ``{"load_when": str, "seconds": float}`` makes a slow load: ``/load`` of a path
holding ``load_when`` takes that long. Only the standard library is used, so the
project has no dependencies to sync.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

READY = "LOCAL_MLX_READY port={}"
CONTEXT_LENGTH = 4096


class State:
    """What the stand-in remembers: the loaded path and the table."""

    def __init__(self, token: str, table: list[dict[str, Any]]) -> None:
        self.token = token
        self.table = table
        self.model_path: str | None = None
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> dict[str, Any] | None:
        messages = body.get("messages") or []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        text = users[-1] if users else ""
        for row in self.table:
            if "when" in row and row["when"] in text:
                return row
        return None

    def load_seconds(self, path: str) -> float:
        for row in self.table:
            if "load_when" in row and row["load_when"] in path:
                return float(row["seconds"])
        return 0.0


def load_table() -> list[dict[str, Any]]:
    path = os.environ.get("LOCAL_MLX_SCRIPT")
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        table = json.load(f)

    def is_row(r: Any) -> bool:
        if not isinstance(r, dict):
            return False
        if isinstance(r.get("load_when"), str):
            return isinstance(r.get("seconds"), (int, float))
        return isinstance(r.get("when"), str) and isinstance(r.get("answer"), str)

    if not isinstance(table, list) or not all(is_row(r) for r in table):
        sys.exit(
            f"{path}: expected a list of {{'when': str, 'answer': str}} or {{'load_when': str, 'seconds': float}} rows"
        )
    return table


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write("scripted-sidecar: " + (format % args) + "\n")

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() == "bearer" and credential.strip() == state.token:
                return True
            self._json(401, {"detail": "missing or wrong bearer token"}, close=True)
            return False

        def _json(self, status: int, body: dict[str, Any], close: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            if self.path != "/status":
                self._json(404, {"detail": f"no route GET {self.path}"})
                return
            loaded = state.model_path is not None
            self._json(
                200,
                {
                    "status": "running",
                    "model_loaded": loaded,
                    "model_path": state.model_path,
                    "state": "ready" if loaded else "idle",
                    "loading_path": None,
                    "generating": False,
                    "queued": 0,
                    "mlx_ready": True,
                    "context_length": CONTEXT_LENGTH if loaded else None,
                    "pid": os.getpid(),
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            body = self._body()
            if self.path == "/load":
                time.sleep(state.load_seconds(str(body["model_path"])))
                state.model_path = str(body["model_path"])
                self._json(
                    200,
                    {
                        "status": "loaded",
                        "model_path": state.model_path,
                        "context_length": CONTEXT_LENGTH,
                    },
                )
            elif self.path == "/unload":
                state.model_path = None
                self._json(200, {"status": "unloaded", "model_loaded": False})
            elif self.path == "/generate":
                self._generate(body)
            else:
                self._json(404, {"detail": f"no route POST {self.path}"})

        def _generate(self, body: dict[str, Any]) -> None:
            if state.model_path is None:
                self._json(409, {"detail": "no model is loaded: POST /load first"})
                return
            row = state.answer(body)
            if row is None:
                self._json(500, {"detail": f"no scripted answer for this request: {body!r}"})
                return
            answer = row["answer"]
            words = answer.split(" ")
            result = {
                "response": answer,
                "tokens_generated": len(words),
                "reasoning": None,
                "prompt_tokens": 10,
                "cached_tokens": 0,
                "finish_reason": row.get("finish_reason", "stop"),
                "prompt_tps": 100.0,
                "generation_tps": 100.0,
                "peak_memory": 0.0,
            }
            pause = float(row.get("seconds_per_word", 0.0))
            if not body.get("stream"):
                time.sleep(pause * len(words))
                self._json(200, result)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [w + " " for w in words[:-1]] + [words[-1]]
            lines = [{"event": "token", "text": p} for p in pieces if p]
            lines.append({"event": "done", **result})
            try:
                for line in lines:
                    data = (json.dumps(line) + "\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    if line["event"] == "token":
                        time.sleep(pause)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a deadline, a closed stream): so does the "model".
                self.close_connection = True

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-queue", type=int, default=4)  # accepted, as the real one does
    ap.add_argument("--ignore-stdin", action="store_true")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args()
    token = os.environ.get("LOCAL_MLX_TOKEN")
    if not token:
        sys.stderr.write("LOCAL_MLX_TOKEN is not set\n")
        sys.exit(2)
    state = State(token, load_table())
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if not args.ignore_stdin:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(1 << 12):
                pass
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(READY.format(server.server_address[1]) + "\n")
    sys.stdout.flush()
    sys.stdout.close()
    try:
        os.close(1)  # the supervisor reads to end of file: no copy may stay open here
    except OSError:
        pass
    server.serve_forever()


if __name__ == "__main__":
    main()
