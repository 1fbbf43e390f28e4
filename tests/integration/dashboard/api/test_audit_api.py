"""Acceptance-audit regressions for the field API (issue 4): inputs that used to give a 5xx or an
error without a field, logs that could carry request values, and the OpenAPI document's validity."""
from __future__ import annotations

import logging

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from dashboard.api import openapi
from tests.conftest import SUFFIX
from tests.world import scratch_api

REPORT = {"kind": "problem", "domain": "sanitation", "title": "楼道堆物", "lon": 113.625, "lat": 34.755}


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    name = f"gridwatch_test_audit_api{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var")) as a:
        yield a


def counts(api) -> tuple[int, int]:
    with api.engine.connect() as c:
        return tuple(c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("issue", "issue_event"))


def error_of(resp) -> dict:
    body = resp.get_json()
    e = body[0]["error"] if isinstance(body, list) else body["error"]
    assert e["message_zh"] and e["message_en"]
    return e


@pytest.mark.parametrize("end_date", ["0001-01-01T00:00:00", "0001-01-03T00:00:00Z", "0001-03-01"])
def test_open311_end_date_near_year_one_is_not_a_server_error(api, end_date):
    # the default window is the 90 days before end_date; it must not overflow
    r = api.client().get("/open311/v2/requests.json", query_string={"end_date": end_date})
    assert r.status_code == 200 and r.get_json() == []


@pytest.mark.parametrize("key", ["%00", "WT%002026", "a%20b", "%E4%B8%AD"])
def test_odd_issue_keys_are_unknown_issues(api, key):
    before = counts(api)
    c = api.client("operator")
    for r in (c.get(f"/api/v1/issues/{key}"), c.get(f"/api/v1/issues/{key}/timeline"),
              c.post(f"/api/v1/issues/{key}/transitions", json={"action": "sign", "version": 1}),
              c.get(f"/open311/v2/requests/{key}.json")):
        assert r.status_code == 404, (key, r.data)
        e = error_of(r)
        assert e["code"] == "not_found" and e["field"] == "id"
    assert counts(api) == before


@pytest.mark.parametrize("body", [b"{bad", b"", b"[]", b"null", b'"text"'])
def test_whole_body_errors_name_the_body(api, body):
    before = counts(api)
    r = api.client().post("/api/v1/issues", data=body, content_type="application/json")
    assert 400 <= r.status_code < 500
    assert error_of(r)["field"] == "body"
    assert counts(api) == before


def test_unhandled_errors_log_no_request_values(api, monkeypatch, caplog):
    """A database error's text lists the statement's parameters (a reporter's phone); the log must
    not. The client gets a JSON 500 and nothing is written."""
    import dashboard.api.issues as issues_api

    def boom(*_a, **kw):
        raise ProgrammingError("INSERT INTO issue (reporter_phone) VALUES (%(p)s)",
                               {"p": kw.get("reporter_phone")}, Exception("simulated"))

    monkeypatch.setattr(issues_api, "report_issue", boom)
    caplog.set_level(logging.DEBUG)
    before = counts(api)
    r = api.client().post("/api/v1/issues", json={**REPORT, "reporter_name": "钱先生",
                                                  "reporter_phone": "13911112222"})
    assert r.status_code == 500 and error_of(r)["code"] == "internal_error"
    logged = caplog.text  # formatted records, tracebacks included
    assert "ProgrammingError" in logged  # the failure is still visible to operators
    assert "13911112222" not in logged and "钱先生" not in logged
    assert counts(api) == before


def test_openapi_document_is_valid_openapi_31():
    import jsonschema_rs
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    doc = orjson.loads(openapi())
    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(doc)] == []
    schemas = doc["components"]["schemas"]
    refs: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    missing = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
    assert not missing, missing
    for name in schemas:  # every component compiles as JSON Schema 2020-12, its $refs resolving
        jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                            "components": {"schemas": schemas}})


def test_multipart_photos_as_text_is_refused_not_dropped(api):
    before = counts(api)
    form = {k: str(v) for k, v in REPORT.items()} | {"photos": "not-a-file"}
    r = api.client().post("/api/v1/issues", data=form, content_type="multipart/form-data")
    assert r.status_code == 422 and error_of(r)["field"] == "photos"
    assert counts(api) == before
