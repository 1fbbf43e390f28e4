"""Open311 GeoReport v2: services, POST a request and read it back, filters, errors."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import SUFFIX
from tests.world import B22, scratch_api


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    name = f"gridwatch_test_o311{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var")) as a:
        yield a


def o311_error(resp) -> dict:
    body = resp.get_json()
    assert isinstance(body, list) and body[0]["code"] == resp.status_code and body[0]["description"]
    return body[0]["error"]


def test_services_map_domains(api):
    r = api.client().get("/open311/v2/services.json")
    assert r.status_code == 200
    services = r.get_json()
    assert len(services) == 14
    codes = {s["service_code"] for s in services}
    assert {"problem.sanitation", "sentiment.sanitation", "problem.illegal_building"} <= codes
    s = next(s for s in services if s["service_code"] == "problem.sanitation")
    assert s["metadata"] is False and s["type"] == "realtime" and "环境卫生" in s["service_name"]
    assert s["group"].startswith("问题")


def test_api_key_is_an_officials_token(api):
    """GeoReport v2 ``api_key``: a token makes the report an official's (not a resident's); a key
    that is no live token is refused, never taken for a resident."""
    form = {"service_code": "problem.sanitation", "lat": "34.755", "long": "113.625", "description": "垃圾"}
    r = api.client().post("/open311/v2/requests.json", data={**form, "api_key": api.world.tokens["b11_leader"]})
    assert r.status_code == 201, r.data
    rid = r.get_json()[0]["service_request_id"]
    with api.engine.connect() as c:
        source = c.execute(text("SELECT source FROM issue WHERE number = :n"), {"n": rid}).scalar_one()
    assert source == "patrol"
    bad = api.client().post("/open311/v2/requests.json", data={**form, "api_key": "gw_revoked-or-made-up"})
    assert bad.status_code == 401 and bad.get_json()[0]["error"]["field"] == "api_key"
    got = api.client().get("/open311/v2/services.json", query_string={"api_key": "nonsense"})
    assert got.status_code == 401
    assert api.client().get("/open311/v2/services.json",
                            query_string={"api_key": api.world.tokens["operator"]}).status_code == 200


def test_round_trip_form_encoded(api):
    form = {"service_code": "problem.city_order", "lat": "34.745", "long": "113.635",
            "description": "占道经营\n夜市摊位占用人行道", "address_string": "东社区南门", "first_name": "明",
            "last_name": "王", "phone": "13655556666", "email": "w@example.com",
            "jurisdiction_id": "410102001"}
    r = api.client().post("/open311/v2/requests.json", data=form)
    assert r.status_code == 201, r.data
    created = r.get_json()
    assert isinstance(created, list) and len(created) == 1
    rid = created[0]["service_request_id"]
    assert rid.startswith("WT") and B22 in created[0]["service_notice"]
    got = api.client().get(f"/open311/v2/requests/{rid}.json")
    assert got.status_code == 200
    req = got.get_json()[0]
    assert req["service_request_id"] == rid and req["service_code"] == "problem.city_order"
    assert req["status"] == "open" and req["description"].startswith("占道经营")
    assert req["lat"] == 34.745 and req["long"] == 113.635 and req["address"] == "东社区南门"
    assert req["requested_datetime"].endswith("+08:00")
    assert b"13655556666" not in got.data and "王" not in got.data.decode()
    # stored as personal data, visible to an entitled official through /api/v1 only
    with api.engine.connect() as c:
        name, phone, source = c.execute(text("SELECT r.name, r.phone, i.source FROM issue i "
                                             "JOIN issue_reporter r ON r.issue_id = i.id WHERE number = :n"),
                                        {"n": rid}).one()
    assert (name, phone, source) == ("王 明", "13655556666", "resident")
    listed = api.client().get("/open311/v2/requests.json", query_string={"service_request_id": rid}).get_json()
    assert [x["service_request_id"] for x in listed] == [rid]


def test_round_trip_json_and_filters(api):
    body = {"service_code": "sentiment.livelihood", "lat": 34.755, "long": 113.625, "description": "希望增设健身器材"}
    r = api.client().post("/open311/v2/requests.json", json=body)
    assert r.status_code == 201
    rid = r.get_json()[0]["service_request_id"]
    assert rid.startswith("SQ")
    c = api.client()
    by_code = c.get("/open311/v2/requests.json", query_string={"service_code": "sentiment.livelihood"}).get_json()
    assert rid in [x["service_request_id"] for x in by_code]
    assert all(x["service_code"] == "sentiment.livelihood" for x in by_code)
    assert rid in [x["service_request_id"] for x in c.get("/open311/v2/requests.json",
                                                          query_string={"status": "open"}).get_json()]
    assert rid not in [x["service_request_id"] for x in c.get("/open311/v2/requests.json",
                                                              query_string={"status": "closed"}).get_json()]
    future = c.get("/open311/v2/requests.json", query_string={"start_date": "2099-01-01T00:00:00Z"}).get_json()
    assert future == []
    by_id = c.get(f"/open311/v2/requests/{r.get_json()[0]['service_request_id']}.json").get_json()
    assert by_id[0]["status_notes"].startswith("已上报")


def test_idempotent_open311_post(api):
    body = {"service_code": "problem.safety", "lat": 34.745, "long": 113.625, "description": "消防通道堵塞"}
    h = {"Idempotency-Key": "311-client-42"}
    a = api.client().post("/open311/v2/requests.json", json=body, headers=h)
    b = api.client().post("/open311/v2/requests.json", json=body, headers=h)
    assert a.status_code == b.status_code == 201 and a.get_json() == b.get_json()


@pytest.mark.parametrize("form,status,code,field", [
    ({"service_code": "problem.weather", "lat": "34.75", "long": "113.63"}, 404, "unknown_service", "service_code"),
    ({"service_code": "problem.safety", "address_string": "某路1号"}, 422, "location_required", "lat"),
    ({"service_code": "problem.safety", "lat": "113.63", "long": "34.75"}, 422, "coordinates_swapped", "lat"),
    ({"service_code": "problem.safety", "lat": "north", "long": "113.63"}, 422, None, "lat"),
    ({"service_code": "problem.safety", "lat": "34.75", "long": "114.5"}, 422, "outside_grids", "lon"),
    ({"lat": "34.75", "long": "113.63"}, 422, None, "service_code"),
])
def test_open311_errors(api, form, status, code, field):
    with api.engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
    r = api.client().post("/open311/v2/requests.json", data=form)
    assert r.status_code == status, r.data
    e = o311_error(r)
    assert e["field"] == field and (code is None or e["code"] == code)
    with api.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM issue")).scalar_one() == before


def test_open311_unknown_request_and_paths(api):
    c = api.client()
    r = c.get("/open311/v2/requests/WT1999999999.json")
    assert r.status_code == 404 and o311_error(r)["code"] == "not_found"
    assert c.get("/open311/v2/discovery.xml").status_code == 404
    assert c.post("/open311/v2/requests.json", data="x", content_type="text/plain").status_code == 415
    r = c.get("/open311/v2/requests.json", query_string={"start_date": "soon"})
    assert r.status_code == 422 and o311_error(r)["field"] == "start_date"


@pytest.mark.parametrize("path", ["/open311/v2/services.json", "/open311/v2/requests.json",
                                  "/open311/v2/requests/WT2026000001.json"])
@pytest.mark.parametrize("fmt", ["xml", "XML", "html", ""])
def test_format_other_than_json_is_406_naming_format(api, path, fmt):
    r = api.client().get(path, query_string={"format": fmt})
    assert r.status_code == 406 and r.mimetype == "application/json"
    item = r.get_json()[0]
    assert item["code"] == 406 and item["error"]["field"] == "format" and "XML" in item["error"]["message_en"]
    assert api.client().get(path, query_string={"format": "json"}).status_code in (200, 404)


def test_one_rule_says_which_requests_are_open311():
    """The limits (refusals before routing) and the server's error handler ask the same question."""
    from flask import Flask

    from dashboard.api.core import OPEN311_PREFIX, is_open311_request
    from dashboard.api.open311 import bp

    assert bp.url_prefix == OPEN311_PREFIX
    app = Flask(__name__)
    for path, yes in [("/open311/v2", True), ("/open311/v2/requests.json", True), ("/open311/v2/", True),
                      ("/open311/v20/requests.json", False), ("/api/v1/issues", False), ("/", False)]:
        with app.test_request_context(path):
            assert is_open311_request() is yes, path
    assert is_open311_request() is False    # outside a request
