"""Schemathesis over the served OpenAPI document (WSGI, in process): no 5xx, responses conform to
the document (schema, status code, content type). A second, negative run sends what the document
forbids (wrong types, out-of-range ids, odd header values): still never a 5xx, a 4xx in the
documented error format, and the log — at most one line per request — holds no traceback and none
of the request's values. Bounded: few examples per operation."""
from __future__ import annotations

import logging

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.api import openapi
from tests.conftest import SUFFIX
from tests.world import scratch_api

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
    # Two cases in three carry a real official's token (picked by the case's own values, so the
    # run is deterministic), so that authorised paths (operators, grid leaders, …) are exercised
    # too; the rest are anonymous (public operations answer, the others 401 in the error format).
    import zlib

    n = zlib.crc32(repr((case.path, case.method, case.path_parameters, case.query, case.body)).encode())
    if n % 3:
        keys = sorted(fuzz_api.world.tokens)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {fuzz_api.world.tokens[keys[n % len(keys)]]}"}
    case.call_and_validate(app=fuzz_api.app, checks=CHECKS)


#: The same document, generating requests that violate it.
negative = schemathesis.openapi.from_dict(orjson.loads(openapi()))
negative.config.generation.update(modes=[GenerationMode.NEGATIVE])


def _without_inputs(doc: dict) -> list[tuple[str, str]]:
    """The operations that take nothing (no parameter, no body): nothing about a request to them can
    violate the document, so the negative run has no case to send (the positive run covers them)."""
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters" and not (ops.get("parameters") or op.get("parameters") or op.get("requestBody")):
                out.append((method.upper(), path))
    return out


WITHOUT_INPUTS = _without_inputs(orjson.loads(openapi()))
for _method, _path in WITHOUT_INPUTS:
    negative = negative.exclude(method=_method, path=_path)
NEGATIVE_CHECKS = [not_a_server_error, content_type_conformance]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if isinstance(value, int) and not isinstance(value, bool) else []


@negative.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_invalid_requests_are_clean_4xx(case, fuzz_api, caplog):
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        resp = case.call(app=fuzz_api.app)
    case.validate_response(resp, checks=NEGATIVE_CHECKS)
    code = ""
    if resp.status_code >= 400:
        body = resp.json()
        err = body[0]["error"] if isinstance(body, list) else body["error"]
        assert err["code"] and err["message_zh"] and err["message_en"]
        code = err["code"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in text and len(caplog.records) <= 1, text
    values = _strings(case.path_parameters) + _strings(case.query) + _strings(case.headers) + _strings(case.body)
    for v in values:
        # a value as long as a word, not the route's text nor the logged error code (a generated
        # "invalid_" is no leak in "→ 422 invalid_field")
        if len(v) >= 8 and v.strip() and v not in case.path and v not in code:
            assert v not in text, (v, text)


def test_only_operations_without_inputs_are_left_out_of_the_negative_run():
    # the exclusion above is derived from the document; it must stay these operations about nothing
    # but the caller (a new one here is a decision, not an accident)
    assert sorted(WITHOUT_INPUTS) == [("GET", "/api/v1/me"), ("GET", "/api/v1/meta"),
                                      ("GET", "/open311/v2/services.json"), ("POST", "/api/v1/device/sign-out")]
