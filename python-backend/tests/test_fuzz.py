"""Schema-driven fuzzing: schemathesis generates requests from the sidecar's own OpenAPI
schema, valid ones and invalid ones, and sends them to a real process. No request may
get a 5xx, every answer must match the schema, and the server must still be up.

The model is the tiny one with a 64-token context, so that no generation (whatever
``max_tokens`` the fuzzer picks) runs longer than a fraction of a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import AUTH, Sidecar
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
POS, NEG = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (method, path, mode, examples): ~300 requests; /generate first, while the model is loaded.
# /status and /unload take no input, so they have no invalid form to send.
PLAN = [
    ("POST", "/generate", POS, 100),
    ("POST", "/generate", NEG, 100),
    ("POST", "/load", POS, 40),
    ("POST", "/load", NEG, 40),
    ("GET", "/status", POS, 10),
    ("POST", "/unload", POS, 5),
]


@pytest.fixture(scope="module")
def fuzz_target(spawn_module, short_tiny: Path) -> tuple[Sidecar, Any]:
    s = spawn_module()
    s.load(short_tiny)
    schema = schemathesis.openapi.from_dict(s.client.get("/openapi.json").json())
    return s, schema


@pytest.fixture(scope="module")
def spawn_module(tmp_path_factory: pytest.TempPathFactory):
    started: list[Sidecar] = []
    tmp = tmp_path_factory.mktemp("fuzz")

    def make(*args: str) -> Sidecar:
        s = Sidecar(tuple(args), stderr_path=tmp / f"sidecar-{len(started)}.stderr")
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.mark.parametrize("method,path,mode,examples", PLAN)
def test_fuzz(fuzz_target, short_tiny: Path, method: str, path: str, mode, examples: int) -> None:
    s, schema = fuzz_target
    if path == "/generate":
        s.load(short_tiny)  # an earlier /unload case may have unloaded it
    operation = schema[path][method]
    sent = {"n": 0, "codes": {}}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.generate],  # no shrinking, no example database: bounded time
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:
        response = case.call(base_url=s.url, headers=AUTH, timeout=30)
        sent["n"] += 1
        sent["codes"][response.status_code] = sent["codes"].get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.body, response.text)
        case.validate_response(response, checks=CHECKS)

    t = time.monotonic()
    run()
    assert time.monotonic() - t < 60
    assert sent["n"] > 0
    print(method, path, mode.value, sent)
    # Still up, still answering.
    assert s.status()["status"] == "running"
    assert s.proc.poll() is None, s.stderr()
