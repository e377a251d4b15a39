"""The HTTP API: routes, bearer-token check, error bodies, streaming.

Every error body is ``{"detail": "<one readable sentence>"}`` (422 adds ``errors``, a
list of ``{"field", "message"}``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import threading
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from .engine import GenerateParams, GenerationResult
from .errors import ApiError, Cancelled
from .schemas import (
    DEFAULT_REPETITION_PENALTY,
    DEFAULT_TOP_P,
    MAX_PROMPT_CHARS,
    MAX_REPETITION_PENALTY,
    MAX_STOP,
    MAX_TEMPERATURE,
    MAX_TOKENS_CAP,
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    LoadRequest,
    LoadResponse,
    StatusResponse,
    UnloadResponse,
    ValidationErrorResponse,
)
from .service import Service

log = logging.getLogger("local_mlx_sidecar")

NDJSON = "application/x-ndjson"
# Request bodies above this get 413 unread: the longest valid request (MAX_PROMPT_CHARS,
# each written as a 12-byte surrogate-pair escape at worst) fits.
MAX_BODY_BYTES = 16 * 2**20
_ERRORS = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {
        "model": ValidationErrorResponse,
        "description": "A field is missing or of the wrong type.",
    },
    413: {"model": ErrorResponse, "description": "The request body is larger than 16 MiB."},
}


class BearerAuth:
    """Pure ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>``.

    It answers 401 before routing, so a refused request does nothing at all.
    """

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self._ok(scope):
            # A peer without the token gets no keep-alive connection to hold.
            await _send_and_close(
                send, 401, "missing or wrong bearer token", ((b"www-authenticate", b"Bearer"),)
            )
            return
        await self.app(scope, receive, send)

    def _ok(self, scope: dict) -> bool:
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, credential = values[0].partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token)


class BodyLimit:
    """Pure ASGI middleware: a request body larger than ``limit`` bytes gets 413.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is
    read; a chunked body is read up to the limit and refused as soon as it passes it.
    The body is then handed to the app whole, so nothing bigger is ever held.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared and declared[0].isdigit() and int(declared[0]) > self.limit:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: no one to answer
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _too_large(self, send: Any) -> None:
        detail = (
            f"the request body is larger than {self.limit // 2**20} MiB, more than any valid "
            "request needs; send a shorter prompt"
        )
        await _send_and_close(send, 413, detail)  # the rest of the body is never read


async def _send_and_close(
    send: Any, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """An error answered by the middleware itself, before routing; the connection closes."""
    body = json.dumps({"detail": detail}).encode()
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], receive: Any) -> Any:
    """A ``receive`` that gives ``messages`` first, then defers to the real one."""
    pending = list(messages)

    async def replayed() -> dict:
        return pending.pop(0) if pending else await receive()

    return replayed


def _text(field: str, value: str | None) -> None:
    """400 for a string JSON can carry but no UTF-8 can: a lone surrogate (``"\\ud800"``)."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ApiError(
            400,
            f"{field} is not valid text: it holds a lone UTF-16 surrogate at character "
            f"{e.start}; send well-formed Unicode",
        ) from None


class _ClientGone(Exception):
    pass


async def _wait(aw: Awaitable[Any], request: Request, cancel: Any) -> Any:
    """Await ``aw``; if the client disconnects meanwhile, cancel its generation."""
    task = asyncio.ensure_future(aw)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            cancel.set()
            task.cancel()
            raise _ClientGone()


def _params(req: GenerateRequest) -> GenerateParams:
    """Range checks (400); the types were checked by pydantic (422)."""

    def bad(msg: str) -> ApiError:
        return ApiError(400, msg)

    if not 1 <= req.max_tokens <= MAX_TOKENS_CAP:
        raise bad(f"max_tokens must be between 1 and {MAX_TOKENS_CAP}, got {req.max_tokens}")
    if not (math.isfinite(req.temperature) and 0 <= req.temperature <= MAX_TEMPERATURE):
        raise bad(f"temperature must be between 0 and {MAX_TEMPERATURE:g}, got {req.temperature}")
    top_p = DEFAULT_TOP_P if req.top_p is None else req.top_p
    if not (math.isfinite(top_p) and 0 < top_p <= 1):
        raise bad(f"top_p must be in (0, 1], got {top_p}")
    rp = DEFAULT_REPETITION_PENALTY if req.repetition_penalty is None else req.repetition_penalty
    if not (math.isfinite(rp) and 0 < rp <= MAX_REPETITION_PENALTY):
        raise bad(f"repetition_penalty must be in (0, {MAX_REPETITION_PENALTY:g}], got {rp}")
    messages = _messages(req)
    chars = sum(len(m["content"]) for m in messages)
    if chars > MAX_PROMPT_CHARS:
        raise bad(
            f"the prompt is {chars} characters long, more than the {MAX_PROMPT_CHARS} accepted "
            "(and longer than any model's context)"
        )
    stop = req.stop or []
    if len(stop) > MAX_STOP or not all(stop):
        raise bad(f"stop must be a list of at most {MAX_STOP} non-empty strings, got {stop!r}")
    for i, text in enumerate(stop):
        _text(f"stop.{i}", text)
    if req.seed is not None and not 0 <= req.seed < 2**64:
        raise bad(f"seed must be between 0 and 2**64-1, got {req.seed}")
    return GenerateParams(
        messages=messages,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        top_p=top_p,
        repetition_penalty=rp,
        enable_thinking=req.enable_thinking,
        stop=stop,
        seed=req.seed,
        constrain_to_input=req.constrain_to_input,
    )


def _messages(req: GenerateRequest) -> list[dict[str, str]]:
    """The conversation, each message's text checked."""
    if not req.messages:
        raise ApiError(400, "`messages` is empty: send at least one message")
    for i, m in enumerate(req.messages):
        _text(f"messages.{i}.content", m.content)
    return [{"role": m.role, "content": m.content} for m in req.messages]


def _field_error(err: dict) -> dict:
    """One pydantic error as ``{"field", "message"}``; the body itself is ``body``."""
    kind, loc = err.get("type"), err.get("loc", ())
    if kind == "json_invalid":  # loc is ("body", <character offset>)
        where = loc[1] if len(loc) > 1 else 0
        why = (err.get("ctx") or {}).get("error", "JSON decode error")
        message = f"the body is not valid JSON ({why} at character {where}); send a JSON object"
        return {"field": "body", "message": message}
    if kind == "missing" and tuple(loc) == ("body",):
        return {"field": "body", "message": "the body is empty; send a JSON object"}
    field = ".".join(str(x) for x in loc if x != "body") or "body"
    return {"field": field, "message": str(err.get("msg", "invalid"))}


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _install_error_handlers(api: FastAPI) -> None:
    """Every failure answered as ``{"detail": ...}`` with its status."""

    @api.exception_handler(ApiError)
    async def api_error(_request: Request, e: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if e.status == 503 else None
        return JSONResponse({"detail": e.detail}, status_code=e.status, headers=headers)

    @api.exception_handler(Cancelled)
    async def cancelled(_request: Request, _e: Cancelled) -> JSONResponse:
        return JSONResponse({"detail": "cancelled: the server is shutting down"}, status_code=503)

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [_field_error(err) for err in e.errors()]
        detail = "invalid request: " + "; ".join(f"{x['field']}: {x['message']}" for x in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @api.exception_handler(Exception)
    async def unexpected(_request: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"detail": f"internal error: {type(e).__name__}: {e}"}, status_code=500)


async def _generate_stream(service: Service, params: GenerateParams, request: Request) -> Any:
    """``/generate`` with ``stream: true``: an ordinary HTTP error until the generation
    starts, then newline-delimited JSON events."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def put(item: tuple) -> None:
        loop.call_soon_threadsafe(events.put_nowait, item)

    fut, cancel = service.start_generation(
        params, on_start=lambda: put(("start", None)), on_text=lambda t: put(("text", t))
    )
    fut.add_done_callback(lambda f: events.put_nowait(("end", f)))
    try:
        kind, data = await _wait(events.get(), request, cancel)
    except _ClientGone:
        return Response(status_code=499)
    if kind == "end":  # refused before it started: an ordinary HTTP error
        data.result()  # raises the ApiError
        raise ApiError(500, "generation ended before it started")  # pragma: no cover

    # The background task runs even if the client left before the body was iterated.
    return StreamingResponse(
        _stream_events(events, cancel), media_type=NDJSON, background=BackgroundTask(cancel.set)
    )


async def _stream_events(events: asyncio.Queue, cancel: threading.Event) -> AsyncIterator[bytes]:
    """The NDJSON events of a started generation: tokens, then done or error."""
    try:
        while True:
            kind, data = await events.get()
            if kind == "text":
                yield _line({"event": "token", "text": data})
            elif kind == "end":
                exc = data.exception() if not data.cancelled() else None
                if exc is None and not data.cancelled():
                    yield _line({"event": "done", **data.result().__dict__})
                else:
                    status = (
                        exc.status
                        if isinstance(exc, ApiError)
                        else 503
                        if isinstance(exc, Cancelled)
                        else 500
                    )
                    detail = (
                        exc.detail if isinstance(exc, ApiError) else f"generation failed: {exc!r}"
                    )
                    yield _line({"event": "error", "status": status, "detail": detail})
                return
    finally:
        cancel.set()  # the client went away (or we are done): stop generating


def create_app(service: Service, token: str) -> Any:
    """The ASGI app: the FastAPI routes behind the bearer-token check."""
    if not token:
        raise ValueError("an empty token would let anyone in")
    api = FastAPI(
        title="local-mlx sidecar",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        description="Runs an MLX model for local-mlx. Every request needs `Authorization: Bearer <LOCAL_MLX_TOKEN>`.",
    )
    api.state.service = service

    _install_error_handlers(api)

    @api.get("/status", response_model=StatusResponse, responses=_ERRORS)
    async def status() -> dict:
        return service.status()

    @api.post(
        "/load",
        response_model=LoadResponse,
        responses={
            **_ERRORS,
            400: {"model": ErrorResponse, "description": "Not a loadable model folder."},
        },
    )
    async def load(req: LoadRequest) -> dict:
        _text("model_path", req.model_path)
        path, context = await service.load(req.model_path)
        return {"status": "loaded", "model_path": path, "context_length": context}

    @api.post("/unload", response_model=UnloadResponse, responses=_ERRORS)
    async def unload() -> dict:
        await service.unload()
        return {"status": "unloaded", "model_loaded": False}

    @api.post(
        "/generate",
        response_model=GenerateResponse,
        responses={
            **_ERRORS,
            200: {
                "content": {NDJSON: {"schema": {"type": "string"}}},
                "description": "JSON, or with `stream: true` newline-delimited JSON events.",
            },
            400: {
                "model": ErrorResponse,
                "description": "A value out of range or a prompt too long.",
            },
            409: {"model": ErrorResponse, "description": "No model loaded."},
            503: {"model": ErrorResponse, "description": "The generation queue is full."},
        },
    )
    async def generate(req: GenerateRequest, request: Request) -> Any:
        params = _params(req)
        if not req.stream:
            fut, cancel = service.start_generation(params)
            try:
                result: GenerationResult = await _wait(asyncio.shield(fut), request, cancel)
            except _ClientGone:
                return Response(status_code=499)
            return result.__dict__

        return await _generate_stream(service, params, request)

    return BearerAuth(BodyLimit(api), token)
