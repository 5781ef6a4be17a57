"""Property-based API testing: schemathesis generates requests from the app's OpenAPI
schema (valid and invalid ones) and sends them to a real server; none may get a 5xx and
every answer must match the schema."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from bench.server import ServiceProcess
from service import Settings, create_app

EXCLUDED = [
    # Schema-valid is not always usable: an edit word must be in the model's vocabulary
    # and an upload must decode as an image; those 4xx answers are right.
    positive_data_acceptance,
]

# The schema needs no running app: the server under test is the live uvicorn process.
schema = schemathesis.openapi.from_dict(create_app(Settings(index=Path("unused"))).openapi())


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case, live_server: ServiceProcess
) -> None:
    case.call_and_validate(base_url=live_server.url, excluded_checks=EXCLUDED)
