"""The JSON API under generated requests: schemathesis reads the app's OpenAPI schema and builds
requests from it, valid ones and invalid ones, sent with an admin's token so that every route is
reachable. No answer may be a 5xx, and every answer must match the schema.

In-process (ASGI transport, no network), bounded by a number of examples a route and mode: well
under a minute in all.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

OPERATIONS = [("GET", "/api/next"), ("POST", "/api/labels"), ("POST", "/api/undo"), ("POST", "/api/skip"),
              ("GET", "/api/status"), ("GET", "/api/review"), ("POST", "/api/review/{review_id}"),
              ("POST", "/api/review/scan"),
              ("GET", "/api/admin/overview"), ("GET", "/api/export"), ("POST", "/api/import"),
              ("GET", "/media/{path}")]
EXAMPLES = 20


@pytest.fixture
def fuzzed_web(make_web):
    web = make_web()
    web.schema = schemathesis.openapi.from_asgi("/openapi.json", web.app)
    return web


def test_the_fuzzed_operations_are_all_the_schema_has(fuzzed_web):
    """A new route is fuzzed too: the list above is every operation of the schema."""
    operations = [result.ok() for result in fuzzed_web.schema.get_all_operations()]
    found = {(operation.method.upper(), operation.path) for operation in operations}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(fuzzed_web, method, path, mode):
    operation = fuzzed_web.schema[path][method]
    headers = fuzzed_web.auth("admin")

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

    send()
