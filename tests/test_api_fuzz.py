"""The REST API against its own OpenAPI document, fuzzed by schemathesis on a small demo workspace: no request it
can build gets a 500, and every answer (its status, content type and body) is one the document describes.

An admin's read-write token reaches every endpoint. The admin has a name no generator would make up, so the
fuzzed `POST /api/users` and `DELETE /api/users/{name}` (which run: they are part of what is checked) never change
or remove the user the test acts as; they create and remove throwaway users only. `DELETE /api/customers/{id}`
erases made-up ids, which match no demo customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks

from touchlens.demo_workspace import build_demo
from touchlens.store import keys as key_store
from touchlens.store import users as user_store
from touchlens.web.app import create_app

pytestmark = pytest.mark.slow

ADMIN = "fuzz-admin-4c1e"
EXAMPLES = 12  # per operation: the whole file stays near a minute on two cores
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app over a 150-customer demo workspace, and the Authorization header for each path prefix."""
    root = Path(tmp_path_factory.mktemp("fuzz")) / "demo"
    ws = build_demo(root, customers=150, seed=3).workspace
    engine = ws.meta_engine()
    user_store.add_user(engine, ADMIN, "fuzz password 1", "admin")
    token = user_store.add_token(engine, ADMIN, ("read", "write"), "fuzz")
    _, key = key_store.add_key(engine, "ingest", "fuzz", "fuzz", ADMIN)
    engine.dispose()
    app = create_app(root)
    yield app, {"/api/": f"Bearer {token}", "/v1/": f"Bearer {key}"}
    if app.state.web.live is not None:
        app.state.web.live.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[FastAPI, dict[str, str]]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/api/openapi.json", fuzzed[0])


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's fixture-loaded schemas read `node._nodeid`, which pytest 9.2 no longer keeps."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_answers_every_request_as_its_document_says(
    case: schemathesis.Case, fuzzed: tuple[FastAPI, dict[str, str]]
) -> None:
    auth = next(value for prefix, value in fuzzed[1].items() if case.path.startswith(prefix))
    samples = str((case.query or {}).get("samples", ""))
    if case.path == "/api/drivers" and samples.isdigit() and int(samples) > 5:
        # Each resample refits the model: 1000 of them take seconds even here. Few keep the file fast; the
        # bound itself (at most 1000) is FastAPI's to enforce.
        case.query["samples"] = 5
    case.call_and_validate(headers={"Authorization": auth}, checks=CHECKS)
