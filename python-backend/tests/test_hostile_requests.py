"""Hostile request bodies against a real sidecar: each gets a 4xx naming what was wrong,
and the server neither reads nor holds more than it must."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import AUTH, Sidecar, chat

LONE_SURROGATE = "\\ud800"  # as JSON writes it: valid JSON, no UTF-8 can hold it


def _raw_post(s: Sidecar, path: str, body: str):
    return s.client.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("field", ["messages.0.content", "messages.1.content"])
def test_a_lone_surrogate_in_the_prompt_is_400_naming_the_field(
    shared: Sidecar, field: str
) -> None:
    texts = {"messages.0.content": ("a@b", "hello"), "messages.1.content": ("be brief", "a@b")}[
        field
    ]
    body = json.dumps({"messages": chat(texts[1], texts[0]), "max_tokens": 2})
    r = _raw_post(shared, "/generate", body.replace("@", LONE_SURROGATE))
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"{field} is not valid text") and "surrogate at character 1" in detail
    assert shared.generate(messages=chat("still fine"), max_tokens=2)["tokens_generated"] <= 2


def test_a_lone_surrogate_in_model_path_is_400_and_keeps_the_model(
    shared: Sidecar, tiny: Path
) -> None:
    r = _raw_post(shared, "/load", f'{{"model_path": "/tmp/{LONE_SURROGATE}"}}')
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("model_path is not valid text")
    assert shared.status()["model_path"] == str(tiny)


@pytest.mark.parametrize(
    "raw,says",
    [
        (b"{not json", "the body is not valid JSON (Expecting property name"),
        (b"\xff\xfe", "the body is not valid JSON"),
        (b'{"prompt": "x",}', "the body is not valid JSON"),
        (b"", "the body is empty; send a JSON object"),
    ],
)
def test_a_body_that_is_not_json_says_so(shared: Sidecar, raw: bytes, says: str) -> None:
    r = shared.client.post("/generate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"], r.json()
    assert r.json()["errors"][0]["field"] == "body"


def _send_head(s: Sidecar, content_length: str | None, chunked: bool = False) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    head = (
        "POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH['Authorization']}\r\n"
    )
    if content_length is not None:
        head += f"Content-Length: {content_length}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    sock.sendall((head + "\r\n").encode())
    return sock


def _response(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_declared_huge_body_is_413_before_it_is_sent(shared: Sidecar) -> None:
    sock = _send_head(shared, str(100 * 2**20))
    sock.sendall(b'{"prompt": "')  # and nothing more: the answer must not wait for it
    data = _response(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b"larger than 16 MiB" in data


def test_a_chunked_huge_body_is_413_once_past_the_limit(shared: Sidecar) -> None:
    sock = _send_head(shared, None, chunked=True)
    chunk = b"x" * 2**20
    sent = 0
    try:
        while sent < 100 * 2**20:  # the server stops reading at 16 MiB and answers
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except OSError:  # the server answered and closed: the rest is refused
        pass
    data = _response(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert sent < 100 * 2**20, "the server read the whole 100 MiB body"
    assert shared.generate(messages=chat("still fine"), max_tokens=2)["tokens_generated"] <= 2


def test_a_request_without_the_token_gets_no_keep_alive(shared: Sidecar) -> None:
    sock = socket.create_connection(("127.0.0.1", shared.port), timeout=60)
    sock.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = _response(sock)  # returns only because the server closes the connection
    sock.close()
    assert data.startswith(b"HTTP/1.1 401") and b"connection: close" in data.lower()
