"""Schemathesis over the served OpenAPI document (WSGI, in process): no 5xx, responses conform to
the document (schema, status code, content type). Bounded: few examples per operation."""
from __future__ import annotations

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.api import openapi
from tests.conftest import SUFFIX
from tests.factories import scratch_api

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzz_api(server_url, tmp_path_factory):
    name = f"gridwatch_test_fuzz{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var"), max_body_bytes=2_000_000) as a:
        # a few issues so that reads and transitions find something
        c = a.client()
        for lon, lat in ((113.625, 34.755), (113.635, 34.745)):
            c.post("/api/v1/issues", json={"domain": "sanitation", "title": "示例", "lon": lon, "lat": lat})
        yield a


#: The document as served (it is generated from the models, without a database); checked below to
#: be byte-identical to what /api/v1/openapi.json serves.
schema = schemathesis.openapi.from_dict(orjson.loads(openapi()))


def test_fuzzed_document_is_the_served_one(fuzz_api):
    served = fuzz_api.client().get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.data == openapi()


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_conforming_responses(case, fuzz_api):
    # Half of the generated identities are mapped onto real officials, so that authorised paths
    # (operators, grid leaders, …) are exercised too; the rest stay arbitrary (unknown officials).
    oid = (case.headers or {}).get("X-Official-Id")
    if isinstance(oid, int) and oid % 2 == 0:
        ids = sorted(fuzz_api.world.ids.values())
        case.headers["X-Official-Id"] = ids[oid % len(ids)]
    case.call_and_validate(app=fuzz_api.app, checks=CHECKS)
