"""Property-based tests over the OpenAPI schema (schemathesis): for every operation, generated
requests (valid ones and, for negative mode, invalid ones) never get a 5xx, and successful
responses match the documented schema. SQLite and Postgres, with the admin key (which opens every
tier), on the backtest data; the checkpoint is restored afterwards.

Needs ``schemathesis`` (a dev dependency); skipped with a message when it is not installed.
``API_SCHEMATHESIS_EXAMPLES`` (default 25) sets the examples per operation and backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip(
    "schemathesis",
    reason="schemathesis is not installed: add it to the dev dependency group to run the "
    "OpenAPI property tests (uv add --dev schemathesis)",
)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlmodel import Session  # noqa: E402

from coordinator_core.db.tables import Checkpoint  # noqa: E402
from tests.integration import test_api_support as support  # noqa: E402
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, make_client  # noqa: E402

api_db = support.api_db  # the shared fixture

ADMIN_KEY = "schemathesis-admin"
EXAMPLES = int(os.environ.get("API_SCHEMATHESIS_EXAMPLES", "25"))  # per operation and backend


def _restore(data: Dataset) -> None:
    with Session(data.engine) as session:
        session.connection().execute(
            update(Checkpoint.__table__)
            .where(Checkpoint.__table__.c.id == CHECKPOINT_ID)
            .values(status="PENDING", tx_hash=None, submitted_at=None)
        )
        session.commit()


def _operations() -> list[tuple[str, str]]:
    from api.app import create_app
    from coordinator_core.config import load_settings

    paths = create_app(load_settings(database_url="sqlite://")).openapi()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api_schema(api_db: Dataset) -> Iterator[Any]:
    client = make_client(api_db, api_admin_keys=ADMIN_KEY, api_read_keys="schemathesis-read")
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    schema.config.generation.update(allow_x00=True)
    yield schema
    _restore(api_db)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_errors(api_schema: Any, method: str, path: str) -> None:
    """Valid and invalid generated requests: never a 5xx; a 2xx GET matches its response schema."""
    from schemathesis.specs.openapi.checks import response_schema_conformance

    operation = api_schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    known = {
        name: value
        for name, value in (("checkpoint_id", CHECKPOINT_ID), ("model_id", "noisy"))
        if "{" + name + "}" in path
    }
    if known:  # also aim at rows that exist, so the handlers run past their lookups
        strategy = strategy | operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": ADMIN_KEY}
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        if 200 <= response.status_code < 300 and method == "GET":
            case.validate_response(response, checks=[response_schema_conformance])

    run()
