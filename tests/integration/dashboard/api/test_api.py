"""HTTP API contract tests (Flask test client on a real PostGIS scratch database)."""
from __future__ import annotations

import base64
import io
import logging
import os
import re
import threading

import orjson
import pytest
from sqlalchemy import text

from dashboard.api import openapi
from tests.conftest import DEMO_END, SUFFIX
from tests.world import B11, B21, B22, C1, STREET, bearer, official_token, png_bytes, scratch_api

PHONE_RE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    name = f"gridwatch_test_api{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var"), max_photo_bytes=20_000,
                     max_body_bytes=200_000) as a:
        yield a


def counts(api) -> tuple[int, int, int]:
    with api.engine.connect() as c:
        return tuple(c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                     for t in ("issue", "issue_event", "issue_photo"))


REPORT = {"kind": "problem", "domain": "sanitation", "title": "楼道堆物", "description": "3号楼一单元楼道堆放杂物",
          "lon": 113.625, "lat": 34.755}


def post_report(api, body=None, headers=None, **kw):
    b = dict(REPORT)
    b.update(body or {})
    return api.client().post("/api/v1/issues", json=b, headers=headers or {}, **kw)


def err(resp) -> dict:
    assert resp.mimetype == "application/json", resp.data[:200]
    e = resp.get_json()["error"]
    assert set(e) >= {"code", "message_zh", "message_en", "field"} and e["message_zh"] and e["message_en"]
    return e


# -- document -------------------------------------------------------------------------------------
def test_openapi_document_is_generated_and_served(api):
    r = api.client().get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.get_json()
    assert doc["openapi"].startswith("3.1") and doc == orjson.loads(openapi())
    for path in ("/api/v1/issues", "/api/v1/issues/{key}", "/api/v1/issues/{key}/transitions",
                 "/api/v1/issues/{key}/evaluation", "/api/v1/responsible", "/api/v1/diary",
                 "/api/v1/diary/{diary_id}/report", "/api/v1/notices/weekly", "/api/v1/outbox",
                 "/open311/v2/services.json", "/open311/v2/requests.json", "/open311/v2/requests/{key}.json"):
        assert path in doc["paths"], path
    schemas = doc["components"]["schemas"]
    assert {"ReportIn", "IssueOut", "TransitionIn", "ErrorOut", "ContactCard"} <= set(schemas)
    # generated from the models: the report body lists exactly ReportIn's fields
    from dashboard.api.schemas.issues import ReportIn
    assert set(schemas["ReportIn"]["properties"]) == set(ReportIn.model_fields)
    post = doc["paths"]["/api/v1/issues"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


def test_meta(api):
    r = api.client().get("/api/v1/meta")
    assert r.status_code == 200
    m = r.get_json()
    assert len(m["domains"]) == 7 and {d["code"] for d in m["domains"]} >= {"sanitation", "safety"}
    assert m["timezone"] == "Asia/Shanghai" and "gcj02" in m["crs"]


# -- reporting ------------------------------------------------------------------------------------
def test_report_and_read_back(api):
    r = post_report(api, {"reporter_name": "李先生", "reporter_phone": "13911112222", "address": "建设路1号"})
    assert r.status_code == 201, r.data
    out = r.get_json()
    assert r.headers["Location"] == f"/api/v1/issues/{out['id']}"
    assert out["grid"]["code"] == B11 and out["status"] == "reported" and out["reporter"] is None
    assert out["six_ones"]["grid_leader"]["name"] == "网格长甲" and out["six_ones"]["grid_leader"]["phone"] is None
    assert out["number"].startswith("WT") and out["version"] == 1
    assert b"13911112222" not in r.data
    anon = api.client().get(f"/api/v1/issues/{out['number']}")   # a stranger reads no issue
    assert anon.status_code == 401 and err(anon)["code"] == "sign_in_required"
    assert anon.headers["WWW-Authenticate"].startswith("Bearer")
    one = api.client().get(f"/api/v1/issues/{out['number']}", headers=api.hdr("b11_leader")).get_json()
    assert one["id"] == out["id"] and [e["action"] for e in one["timeline"]] == ["report"]
    assert one["actions"] == [] and one["reporter"] == {"name": "李先生", "phone": "13911112222"}
    op = api.client().get(f"/api/v1/issues/{out['id']}", headers=api.hdr("operator")).get_json()
    assert op["reporter"] == {"name": "李先生", "phone": "13911112222"}
    assert "assign" in op["actions"]
    assert api.client().get(f"/api/v1/issues/{out['id']}", headers=api.hdr("c2_secretary")).status_code == 404
    tl = api.client("operator").get(f"/api/v1/issues/{out['id']}/timeline").get_json()
    assert [e["action"] for e in tl["items"]] == ["report"]


def test_report_multipart_with_photo(api):
    png = png_bytes()
    form = {k: str(v) for k, v in REPORT.items()}
    form["photos"] = [(__import__("io").BytesIO(png), "p.png", "image/png")]
    r = api.client().post("/api/v1/issues", data=form, content_type="multipart/form-data")
    assert r.status_code == 201, r.data
    out = r.get_json()
    assert len(out["photos"]) == 1 and out["photos"][0]["content_type"] == "image/png"
    got = api.client().get(out["photos"][0]["url"])
    assert got.status_code == 200 and got.mimetype == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    # stored re-encoded (metadata stripped): the same pixels, not necessarily the same bytes
    assert same_pixels(got.data, png)
    files = list((api.settings.var_dir / "uploads").rglob("*.png"))
    assert files and any(f.read_bytes() == got.data for f in files)


def same_pixels(a: bytes, b: bytes) -> bool:
    import io

    from PIL import Image, ImageChops

    with Image.open(io.BytesIO(a)) as x, Image.open(io.BytesIO(b)) as y:
        return x.size == y.size and ImageChops.difference(x.convert("RGBA"), y.convert("RGBA")).getbbox() is None


def test_report_base64_photo_and_limits(api):
    png = png_bytes()
    ok = post_report(api, {"photos": [{"content_type": "image/png", "data": base64.b64encode(png).decode()}]})
    assert ok.status_code == 201 and len(ok.get_json()["photos"]) == 1
    before = counts(api)
    big = os.urandom(30_000)
    cases = [
        ({"photos": [{"data": base64.b64encode(b"\xff\xd8\xff" + big).decode()}]}, 413, "photos[0]"),
        ({"photos": [{"content_type": "image/png", "data": base64.b64encode(b"hello world").decode()}]}, 415,
         "photos[0]"),
        ({"photos": [{"content_type": "image/jpeg", "data": base64.b64encode(png).decode()}]}, 415, "photos[0]"),
        ({"photos": [{"data": "***not base64***"}]}, 422, "photos[0].data"),
        # a JPEG's first bytes, then junk: the head passes, the strict decode of the whole refuses it
        ({"photos": [{"data": base64.b64encode(b"\xff\xd8\xff\xe0" + b"x" * 30).decode() + "*="}]}, 422,
         "photos[0].data"),
        ({"photos": [{"data": base64.b64encode(b"\xff\xd8\xff\xe0" + b"x" * 30).decode() + "QUJD"}]}, 422,
         "photos[0].data"),
        ({"photos": [{"data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 50).decode()}]}, 415, "photos[0]"),
        ({"photos": [{"content_type": "image/gif", "data": "R0lG"}]}, 422, "photos.0.content_type"),
    ]
    for body, status, fld in cases:
        r = post_report(api, body)
        assert r.status_code == status, (body, r.data)
        assert err(r)["field"] == fld
    assert counts(api) == before


def test_body_too_large(api):
    before = counts(api)
    r = post_report(api, {"description": "x" * 300_000})
    assert r.status_code == 413 and err(r)["code"] == "too_large"
    assert counts(api) == before


@pytest.mark.parametrize("body,headers,content_type,status,code,field", [
    ("{bad json", {}, "application/json", 400, "malformed_json", "body"),
    ("", {}, "application/json", 400, "malformed_json", "body"),
    ("title=x", {}, "text/plain", 415, "unsupported_media_type", "Content-Type"),
    ("[1, 2]", {}, "application/json", 422, "invalid_body", "body"),
    ({"title": None}, {}, None, 422, None, "title"),
    ({"lon": "abc"}, {}, None, 422, None, "lon"),
    ({"lon": 34.755, "lat": 113.625}, {}, None, 422, "coordinates_swapped", "lat"),
    ({"lat": 95.0}, {}, None, 422, "coordinate_out_of_range", "lat"),
    ({"lon": 113.70, "lat": 34.75}, {}, None, 422, "outside_grids", "lon"),
    ({"domain": "weather"}, {}, None, 422, "unknown_domain", "domain"),
    ({"kind": "complaint"}, {}, None, 422, None, "kind"),
    ({"crs": "bd09"}, {}, None, 422, None, "crs"),
    ({"color": "red"}, {}, None, 422, None, "color"),
    ({"title": "a\u0000b"}, {}, None, 422, None, "title"),
    ({"title": "x" * 201}, {}, None, 422, None, "title"),
    ({"source": "patrol"}, {}, None, 403, "forbidden_source", "source"),
    ({"nearest_override": True, "lon": 113.645}, {"Authorization": "ROLE:b11_leader"}, None, 403,
     "override_forbidden", "nearest_override"),
    ({}, {"Authorization": "Basic abc"}, None, 401, "invalid_token", "Authorization"),
    ({}, {"Authorization": "Bearer"}, None, 401, "invalid_token", "Authorization"),
    ({}, {"Authorization": "Bearer gw_not-a-token"}, None, 401, "invalid_token", "Authorization"),
    ({}, {"Idempotency-Key": "bad key with spaces"}, None, 400, "invalid_header", "Idempotency-Key"),
])
def test_bad_input_is_4xx_naming_the_field_and_writes_nothing(api, body, headers, content_type, status, code,
                                                              field):
    before = counts(api)
    headers = {k: (f"Bearer {api.world.tokens[v[5:]]}" if isinstance(v, str) and v.startswith("ROLE:") else v)
               for k, v in headers.items()}
    if isinstance(body, dict):
        b = dict(REPORT)
        for k, v in body.items():
            if v is None:
                b.pop(k)
            else:
                b[k] = v
        r = api.client().post("/api/v1/issues", data=orjson.dumps(b), content_type="application/json",
                              headers=headers)
    else:
        r = api.client().post("/api/v1/issues", data=body, content_type=content_type, headers=headers)
    assert r.status_code == status, r.data
    e = err(r)
    if code:
        assert e["code"] == code
    assert e["field"] == field
    assert counts(api) == before


def test_swapped_coordinates_explained(api):
    e = err(post_report(api, {"lon": 34.755, "lat": 113.625}))
    assert "swapped" in e["message_en"] and "填反" in e["message_zh"]


def test_unknown_ids_and_paths(api):
    c = api.client("operator")
    assert err(c.get("/api/v1/issues/999999"))["code"] == "not_found"
    assert c.get("/api/v1/issues/WT1999000001").status_code == 404
    assert c.get("/api/v1/issues/99999999999999999999").status_code == 404
    assert c.post("/api/v1/issues/424242/transitions", json={"action": "sign", "version": 1}).status_code == 404
    assert c.get("/api/v1/photos/424242").status_code == 404
    assert c.get("/api/v1/nothing/here").status_code == 404
    r = c.put("/api/v1/issues")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert c.post("/api/v1/diary/77777/report", json={"domain": "safety", "title": "x"},
                  headers=api.hdr("b11_leader")).status_code == 404


# -- idempotency ----------------------------------------------------------------------------------
def test_idempotent_retry_returns_first_result(api):
    before = counts(api)
    h = {"Idempotency-Key": "phone-123-attempt"}
    first = post_report(api, {"title": "井盖缺失"}, headers=h)
    second = post_report(api, {"title": "井盖缺失"}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json() and second.headers.get("Idempotent-Replayed") == "true"
    assert counts(api)[:2] == (before[0] + 1, before[1] + 1)
    # the same key from an official is that official's own request
    official = {**h, **api.hdr("b11_leader")}
    mine = post_report(api, {"title": "井盖缺失", "source": "patrol"}, headers=official)
    assert mine.status_code == 201 and mine.get_json()["id"] != first.get_json()["id"]
    assert counts(api)[0] == before[0] + 2
    # an official reusing a key for a different request is told so (a client bug)
    other = post_report(api, {"title": "井盖丢失", "source": "patrol"}, headers=official)
    assert other.status_code == 422 and err(other)["code"] == "idempotency_key_reused"
    assert err(other)["field"] == "Idempotency-Key"
    assert counts(api)[0] == before[0] + 2
    # a refused request is not remembered: the client can fix it and retry with the same key
    h2 = {"Idempotency-Key": "fix-and-retry"}
    assert post_report(api, {"domain": "weather"}, headers=h2).status_code == 422
    assert post_report(api, {}, headers=h2).status_code == 201


def test_two_anonymous_residents_with_one_key_do_not_block_each_other(api):
    """Anonymous keys are scoped by the request itself (geodata.workflow.idempotency.idempotency_scope)."""
    before = counts(api)
    h = {"Idempotency-Key": "1"}  # a careless client: every install sends the same key
    a = post_report(api, {"title": "路灯不亮", "reporter_name": "张三", "reporter_phone": "13800000001"}, headers=h)
    b = post_report(api, {"title": "路灯不亮", "reporter_name": "李四", "reporter_phone": "13800000002"}, headers=h)
    c = post_report(api, {"title": "垃圾满溢"}, headers=h)
    assert a.status_code == b.status_code == c.status_code == 201
    assert len({a.get_json()["id"], b.get_json()["id"], c.get_json()["id"]}) == 3
    assert "Idempotent-Replayed" not in b.headers and "Idempotent-Replayed" not in c.headers
    assert counts(api)[0] == before[0] + 3
    # each resident's own retry still replays their own answer
    again = post_report(api, {"title": "路灯不亮", "reporter_name": "李四", "reporter_phone": "13800000002"},
                        headers=h)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == b.get_json()
    assert counts(api)[0] == before[0] + 3


# -- the workflow over HTTP -----------------------------------------------------------------------
def step(api, key, who, action, version, **extra):
    body = {"action": action, "version": version, **extra}
    return api.client().post(f"/api/v1/issues/{key}/transitions", json=body, headers=api.hdr(who))


def test_report_to_evaluation_over_http(api):
    out = post_report(api, {"lon": 113.635, "lat": 34.755}).get_json()  # block B21
    assert out["grid"]["code"] == B21
    key, v = out["number"], out["version"]
    r = step(api, key, "operator", "assign", v)
    assert r.status_code == 200, r.data
    a = r.get_json()
    assert a["status"] == "assigned" and a["six_ones"]["assignee"]["name"] == "东支书"
    assert a["due_at"] and a["sign_deadline"] and len(a["six_ones"]["worksheet"]) == 5
    assert a["six_ones"]["assignee"]["phone"]  # the operator sees phones
    v = a["version"]
    # illegal (wrong state), forbidden (wrong role), stale version, unknown action: 4xx, nothing written
    before = counts(api)
    r = step(api, key, "operator", "close", v)
    assert r.status_code == 409 and err(r)["code"] == "illegal_transition" and err(r)["field"] == "action"
    r = step(api, key, "b21_leader", "sign", v)
    assert r.status_code == 403 and err(r)["code"] == "forbidden"
    r = step(api, key, "c2_secretary", "sign", v - 1)
    assert r.status_code == 409 and err(r)["code"] == "changed_by_someone_else" and err(r)["field"] == "version"
    assert "他人修改" in err(r)["message_zh"]
    r = step(api, key, "c2_secretary", "explode", v)
    assert r.status_code == 422 and err(r)["field"] == "action"
    r = api.client().post(f"/api/v1/issues/{key}/transitions", json={"action": "sign"}, headers=api.hdr("c2_secretary"))
    assert r.status_code == 422 and err(r)["field"] == "version"
    assert counts(api) == before
    for who, action in [("c2_secretary", "sign"), ("c2_secretary", "handle"), ("c2_secretary", "feedback"),
                        ("c2_maintainer", "verify"), ("operator", "close")]:
        if action == "feedback":   # photos as files (multipart), as the phone app sends them
            r = api.client().post(f"/api/v1/issues/{key}/transitions", headers=api.hdr(who), data={
                "action": action, "version": str(v), "note": "已清理",
                "photos": [(io.BytesIO(png_bytes(6)), "after.png", "image/png")]}, content_type="multipart/form-data")
        else:
            r = step(api, key, who, action, v)
        assert r.status_code == 200, (action, r.data)
        v = r.get_json()["version"]
    # a stranger never evaluates; the centre does, on the resident's behalf
    r = api.client().post(f"/api/v1/issues/{key}/evaluation", json={"satisfaction": 1, "version": v})
    assert r.status_code == 401 and err(r)["code"] == "sign_in_required"
    # an official of another grid does not even see the case (scope and row-level security)
    r = api.client("b11_leader").post(f"/api/v1/issues/{key}/evaluation", json={"satisfaction": 1, "version": v})
    assert r.status_code == 404 and err(r)["code"] == "not_found"
    r = api.client("operator").post(f"/api/v1/issues/{key}/evaluation",
                                    json={"satisfaction": 5, "comment": "满意", "version": v})
    assert r.status_code == 200, r.data
    final = api.client("operator").get(f"/api/v1/issues/{key}").get_json()
    assert final["status"] == "evaluated" and final["satisfaction"] == 5
    assert [e["action"] for e in final["timeline"]] == ["report", "assign", "sign", "handle", "feedback", "verify",
                                                        "close", "evaluate"]
    assert [p["stage"] for p in final["photos"]] == ["feedback"]
    r = api.client("operator").post(f"/api/v1/issues/{key}/evaluation",
                                    json={"satisfaction": 9, "version": final["version"]})
    assert r.status_code == 422 and err(r)["field"] == "satisfaction"


def test_answers_showing_officials_phones_are_audited(api):
    """Every answer that showed personal data leaves one row per kind: the issue, a workflow step's
    answer; an answer kept for replay (Idempotency-Key) shows none and leaves none."""
    def audited(via: str) -> list[dict]:
        with api.engine.connect() as c:
            return list(c.execute(text("SELECT detail FROM audit_log WHERE event = 'personal_data_viewed' "
                                       "AND detail->>'via' = :v ORDER BY id"), {"v": via}).scalars())

    out = post_report(api, {"lon": 113.635, "lat": 34.755}).get_json()
    before = len(audited("api.transition"))
    r = step(api, out["number"], "operator", "assign", out["version"])
    assert r.status_code == 200 and r.get_json()["six_ones"]["assignee"]["phone"]
    rows = audited("api.transition")
    assert len(rows) == before + 1
    assert rows[-1]["kind"] == "official_phone" and rows[-1]["record_id"] == out["id"] and rows[-1]["count"] >= 1
    n_issue = len(audited("api.issue"))
    assert api.client("operator").get(f"/api/v1/issues/{out['id']}").status_code == 200
    assert [d["kind"] for d in audited("api.issue")[n_issue:]] == ["official_phone"]
    keyed = api.client().post(f"/api/v1/issues/{out['id']}/transitions", headers={**api.hdr("c2_secretary"),
                              "Idempotency-Key": "audit-sign-1"}, json={"action": "sign", "version": r.get_json()["version"]})
    assert keyed.status_code == 200 and keyed.get_json()["six_ones"]["assignee"]["phone"] is None
    assert len(audited("api.transition")) == before + 1


def test_extend_and_reassign_over_http(api):
    out = post_report(api, {"lon": 113.625, "lat": 34.745}).get_json()
    v = step(api, out["id"], "operator", "assign", 1).get_json()["version"]
    later = (__import__("datetime").date.today() + __import__("datetime").timedelta(days=60)).isoformat()
    r = step(api, out["id"], "operator", "extend", v, new_due=later, note="需协调产权单位")
    assert r.status_code == 200 and r.get_json()["due_at"].startswith(f"{later}T23:59:59+08:00")
    v = r.get_json()["version"]
    r = step(api, out["id"], "operator", "extend", v, new_due="not-a-date", note="x")
    assert r.status_code == 422 and err(r)["field"] == "new_due"
    r = step(api, out["id"], "operator", "reassign", v, assignee_id=api.world.ids["handler"], note="不属于本社区")
    assert r.status_code == 200 and r.get_json()["reassign_count"] == 1


def test_concurrent_transitions_over_http(api):
    out = post_report(api).get_json()
    v = step(api, out["id"], "operator", "assign", 1).get_json()["version"]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def go(who, action, extra):
        client = api.client()
        barrier.wait()
        codes.append(client.post(f"/api/v1/issues/{out['id']}/transitions",
                                 json={"action": action, "version": v, **extra}, headers=api.hdr(who)).status_code)

    ts = [threading.Thread(target=go, args=("c1_secretary", "sign", {})),
          threading.Thread(target=go, args=("operator", "reassign",
                                            {"assignee_id": api.world.ids["handler"], "note": "改派"}))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(codes) == [200, 409]
    tl = api.client("operator").get(f"/api/v1/issues/{out['id']}/timeline").get_json()["items"]
    assert len(tl) == 3


# -- query ----------------------------------------------------------------------------------------
def test_query(api):
    c = api.client("operator")
    mine = post_report(api, {"domain": "disputes", "kind": "sentiment", "lon": 113.635, "lat": 34.745}).get_json()
    r = c.get("/api/v1/issues", query_string={"grid": B22, "domain": "disputes", "kind": "sentiment"})
    assert r.status_code == 200
    page = r.get_json()
    assert mine["id"] in [i["id"] for i in page["items"]]
    assert all(i["grid_code"] == B22 for i in page["items"])
    by_street = c.get("/api/v1/issues", query_string={"grid": STREET, "page_size": 200}).get_json()
    by_c1 = c.get("/api/v1/issues", query_string={"grid": C1, "page_size": 200}).get_json()
    assert by_c1["total"] < by_street["total"] and all(i["community_code"] == C1 for i in by_c1["items"])
    bbox = c.get("/api/v1/issues", query_string={"bbox": "113.63,34.74,113.64,34.75"}).get_json()
    assert all(113.63 <= i["lon"] <= 113.64 and 34.74 <= i["lat"] <= 34.75 for i in bbox["items"])
    two = c.get("/api/v1/issues", query_string={"page_size": 2, "sort": "reported_at"}).get_json()
    assert len(two["items"]) == 2 and two["items"][0]["reported_at"] <= two["items"][1]["reported_at"]
    assert c.get("/api/v1/issues", query_string={"status": "reported,assigned", "overdue": "false"}).status_code == 200
    assert c.get("/api/v1/issues", query_string={"from": "2026-01-01T00:00:00", "to": "2099-01-01"}).status_code == 200
    # the east community's secretary sees only the east community
    east = c.get("/api/v1/issues", query_string={"page_size": 200}, headers=api.hdr("c2_secretary")).get_json()
    assert east["items"] and all(i["grid_code"].startswith(B22[:12]) for i in east["items"])
    for qs, fld in [({"bbox": "1,2,3"}, "bbox"), ({"bbox": "113.64,34.74,113.63,34.75"}, "bbox"),
                    ({"grid": "12345"}, "grid"), ({"status": "lost"}, "status"), ({"domain": "x"}, "domain"),
                    ({"page_size": "1000"}, "page_size"), ({"page": "0"}, "page"), ({"sort": "title"}, "sort"),
                    ({"overdue": "maybe"}, "overdue"), ({"from": "yesterday"}, "from"), ({"colour": "red"}, "colour")]:
        r = c.get("/api/v1/issues", query_string=qs)
        assert r.status_code == 422, (qs, r.data)
        assert err(r)["field"] == fld, qs


# -- 该找谁 -----------------------------------------------------------------------------------------
def test_who_is_responsible(api):
    c = api.client()
    r = c.get("/api/v1/responsible", query_string={"lon": 113.635, "lat": 34.745})
    card = r.get_json()
    # public: the grids, roles and titles; names only if the street publishes them (off by default)
    assert r.status_code == 200 and card["block"]["code"] == B22
    gl = card["six_ones"]["grid_leader"]
    assert gl["role"] == "grid_leader" and gl["title"] == "网格长" and gl["name"] is None and gl["official_id"] is None
    assert all(o["phone"] is None and o["name"] is None for o in card["officials"]) and card["office_phone"] is None
    assert not PHONE_RE.search(r.data.decode()) and "网格长丁" not in r.data.decode()
    priv = c.get("/api/v1/responsible", query_string={"lon": 113.635, "lat": 34.745}, headers=api.hdr("operator"))
    assert priv.get_json()["six_ones"]["grid_leader"]["name"] == "网格长丁"
    assert all(o["phone"] for o in priv.get_json()["officials"])
    # an official elsewhere: names (staff), no phones outside their grids
    west = c.get("/api/v1/responsible", query_string={"lon": 113.635, "lat": 34.745}, headers=api.hdr("b11_leader"))
    assert west.get_json()["six_ones"]["grid_leader"]["name"] == "网格长丁"
    assert all(o["phone"] is None for o in west.get_json()["officials"])
    from geodata.geometry import wgs84_to_gcj02
    glon, glat = (float(v) for v in wgs84_to_gcj02(113.6395, 34.7405))
    g = c.get("/api/v1/responsible", query_string={"lon": glon, "lat": glat, "crs": "gcj02"}).get_json()
    assert g["block"]["code"] == B22
    out = c.get("/api/v1/responsible", query_string={"lon": 113.7, "lat": 34.75})
    assert out.status_code == 422 and err(out)["code"] == "outside_grids"
    assert err(out)["detail"]["nearest_grid"] == B21 or err(out)["detail"]["nearest_grid"] == B22
    assert c.get("/api/v1/responsible", query_string={"lon": 113.6}).status_code == 422
    sw = c.get("/api/v1/responsible", query_string={"lon": 34.75, "lat": 113.63})
    assert err(sw)["code"] == "coordinates_swapped"


# -- patrol diary ---------------------------------------------------------------------------------
def test_patrol_diary_over_http(api):
    c = api.client()
    body = {"kind": "patrol", "started_at": "2026-11-20T08:30:00+08:00", "ended_at": "2026-11-20T10:00:00+08:00",
            "track": {"type": "LineString", "coordinates": [[113.621, 34.751], [113.626, 34.757]]},
            "households": 8, "shops": 2, "findings": "路灯不亮"}
    assert c.post("/api/v1/diary", json=body).status_code == 403
    r = c.post("/api/v1/diary", json=body, headers=api.hdr("b11_leader"))
    assert r.status_code == 201, r.data
    d = r.get_json()
    assert d["grid_code"] == B11 and d["official_name"] == "网格长甲"
    lst = c.get("/api/v1/diary", query_string={"grid": C1}, headers=api.hdr("c1_secretary")).get_json()
    assert d["id"] in [x["id"] for x in lst["items"]]
    rep = c.post(f"/api/v1/diary/{d['id']}/report", json={"domain": "livelihood", "title": "路灯不亮"},
                 headers=api.hdr("b11_leader"))
    assert rep.status_code == 201 and rep.get_json()["source"] == "patrol" and rep.get_json()["diary_id"] == d["id"]
    again = c.post(f"/api/v1/diary/{d['id']}/report", json={"domain": "livelihood", "title": "x"},
                   headers=api.hdr("b11_leader"))
    assert again.status_code == 409 and err(again)["code"] == "already_reported"
    bad = dict(body, track={"type": "Polygon", "coordinates": []})
    r = c.post("/api/v1/diary", json=bad, headers=api.hdr("b11_leader"))
    assert r.status_code == 422 and err(r)["field"].startswith("track")
    r = c.post("/api/v1/diary", json=dict(body, started_at="2026-11-20T08:30:00+08:00",
                                          ended_at="2026-11-19T08:30:00+08:00"), headers=api.hdr("b11_leader"))
    assert r.status_code == 422 and err(r)["field"] == "ended_at"


# -- weekly notices -------------------------------------------------------------------------------
def test_weekly_notices_and_outbox(api):
    c = api.client()
    # an open item in 网格长甲's block, so the test does not depend on reports made by other tests
    made = post_report(api)
    assert made.status_code == 201 and made.get_json()["grid"]["code"] == B11, made.data
    assert c.post("/api/v1/notices/weekly", json={}).status_code == 401
    refused = c.post("/api/v1/notices/weekly", json={}, headers=api.hdr("b11_leader"))
    assert refused.status_code == 403 and err(refused)["code"] == "forbidden_capability"
    r = c.post("/api/v1/notices/weekly", json={}, headers=api.hdr("operator"))
    assert r.status_code == 200, r.data
    run = r.get_json()
    assert run["generated"] == 4 and run["delivered"] == 4
    n11 = next(n for n in run["notices"] if n["official_name"] == "网格长甲")
    assert n11["open_count"] >= 1 and "未办结" in n11["body"] and n11["grid_codes"] == [B11]
    assert n11["priorities"] and n11["priorities"][0]["number"] in n11["body"]
    assert not any(PHONE_RE.search(n["body"]) for n in run["notices"])
    again = c.post("/api/v1/notices/weekly", json={}, headers=api.hdr("operator")).get_json()
    assert again["delivered"] == 0 and again["skipped"] == 4
    dry = c.post("/api/v1/notices/weekly", json={"dry_run": True, "week_of": "2026-01-07"},
                 headers=api.hdr("operator")).get_json()
    assert dry["week_start"] == "2026-01-05" and dry["delivered"] == 0
    box = c.get("/api/v1/outbox", headers=api.hdr("operator")).get_json()
    assert box["total"] == 4 and all(row["channel"] == "sms" for row in box["items"])
    own = c.get("/api/v1/outbox", headers=api.hdr("b11_leader")).get_json()
    assert own["total"] == 1 and own["items"][0]["official_name"] == "网格长甲"
    assert c.get("/api/v1/outbox", query_string={"official_id": api.world.ids["b12_leader"]},
                 headers=api.hdr("b11_leader")).status_code == 403
    assert c.get("/api/v1/outbox").status_code == 401


def test_personal_data_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    post_report(api, {"reporter_name": "赵女士", "reporter_phone": "13700001111"})
    post_report(api, {"reporter_phone": "13700001111", "lat": 95})
    text_logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "13700001111" not in text_logged and "赵女士" not in text_logged


# -- on the demo dataset (loaded fresh into a scratch database of our own) ---------------------------


@pytest.fixture(scope="module")
def demo(server_url, tmp_path_factory):
    from etl.demo import load_demo

    name = f"gridwatch_test_apidemo{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var"), seed_world=False) as a:
        load_demo(a.engine, end=DEMO_END, progress=False)
        yield a


def q1(api, sql, **params):
    with api.engine.connect() as c:
        return c.execute(text(sql), params).one()


def test_demo_report_fills_the_six_ones_chain(demo):
    code, lon, lat = q1(demo, "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grid "
                              "WHERE level = 3 ORDER BY code OFFSET 17 LIMIT 1")
    r = demo.client().post("/api/v1/issues", json={"domain": "city_order", "title": "占道经营", "lon": lon, "lat": lat})
    assert r.status_code == 201, r.data
    out = r.get_json()
    assert out["grid"]["code"] == code and out["community_code"] == code[:12] + "00"
    six = out["six_ones"]
    assert six["leader_in_charge"] and six["responsible"] and six["grid_leader"]
    # numbers run on within the year of the report (whatever year the test runs in)
    last = q1(demo, "SELECT max(number) FROM issue WHERE number LIKE :p AND number <> :n",
              p=out["number"][:6] + "%", n=out["number"])[0]
    assert int(out["number"][6:]) == (int(last[6:]) if last else 0) + 1
    sq = demo.client().post("/api/v1/issues", json={"domain": "livelihood", "kind": "sentiment", "title": "建议",
                                                    "lon": lon, "lat": lat}).get_json()
    assert sq["number"].startswith("SQ")
    leader = q1(demo, "SELECT official_id FROM grid_assignment WHERE grid_code = :c AND role = 'grid_leader' "
                      "ORDER BY rank LIMIT 1", c=code)[0]
    assert six["grid_leader"]["id"] == leader


def test_demo_query_matches_sql(demo):
    community = q1(demo, "SELECT code FROM grid WHERE level = 2 ORDER BY code OFFSET 3 LIMIT 1")[0]
    total = q1(demo, "SELECT count(*) FROM issue WHERE community_code = :c", c=community)[0]
    c = demo.client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {official_token(demo.engine, demo_operator(demo))}"
    page = c.get("/api/v1/issues", query_string={"grid": community, "page_size": 200}).get_json()
    assert page["total"] == total > 0 and all(i["community_code"] == community for i in page["items"])
    overdue_sql = q1(demo, "SELECT count(*) FROM issue WHERE due_at IS NOT NULL AND ((status IN ('closed', "
                           "'evaluated') AND closed_at > due_at) OR (status NOT IN ('closed', 'evaluated') "
                           "AND due_at < now()))")[0]
    od = c.get("/api/v1/issues", query_string={"overdue": "true", "page_size": 1}).get_json()
    assert od["total"] == overdue_sql > 0
    closed = c.get("/api/v1/issues", query_string={"status": "closed,evaluated", "kind": "problem",
                                                   "page_size": 1}).get_json()
    assert closed["total"] >= 3130  # 3130 closed problems in the demo year (plus any closed by tests)


def test_demo_issue_timeline_and_a_transition_by_its_assignee(demo):
    iid, _status, assignee, version = q1(demo, "SELECT id, status, assignee_id, version FROM issue "
                                              "WHERE status = 'assigned' ORDER BY id LIMIT 1")
    auth = bearer(official_token(demo.engine, assignee))
    one = demo.client().get(f"/api/v1/issues/{iid}", headers=auth).get_json()
    n_events = q1(demo, "SELECT count(*) FROM issue_event WHERE issue_id = :i", i=iid)[0]
    assert len(one["timeline"]) == n_events and [e["at"] for e in one["timeline"]] == sorted(
        e["at"] for e in one["timeline"])
    r = demo.client().post(f"/api/v1/issues/{iid}/transitions", json={"action": "sign", "version": version},
                           headers=auth)
    assert r.status_code == 200, r.data
    assert r.get_json()["status"] == "signed" and r.get_json()["timeline"] is None


def test_demo_who_is_responsible(demo):
    code, name, lon, lat = q1(demo, "SELECT code, name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                    "FROM grid WHERE level = 3 ORDER BY code DESC LIMIT 1")
    card = demo.client().get("/api/v1/responsible", query_string={"lon": lon, "lat": lat}).get_json()
    assert card["block"] == {"code": code, "name": name, "level": 3}
    roles = {o["role"] for o in card["officials"]}
    assert {"grid_leader", "direct_responsible", "first_responsible"} <= roles
    assert all(o["phone"] is None for o in card["officials"])


def demo_operator(demo) -> int:
    return q1(demo, "SELECT official_id FROM grid_assignment WHERE role = 'operator' ORDER BY official_id LIMIT 1")[0]


def test_demo_weekly_notices(demo):
    auth = bearer(official_token(demo.engine, demo_operator(demo)))
    leaders = q1(demo, "SELECT count(DISTINCT official_id) FROM grid_assignment WHERE role = 'grid_leader' "
                       "AND valid_to IS NULL")[0]
    r = demo.client().post("/api/v1/notices/weekly", json={"week_of": "2026-11-25"}, headers=auth)
    assert r.status_code == 200, r.data
    run = r.get_json()
    assert run["generated"] == leaders == run["delivered"] and run["week_start"] == "2026-11-23"
    assert sum(n["new_count"] for n in run["notices"]) > 0
    assert not any(PHONE_RE.search(n["body"]) for n in run["notices"])
    box = demo.client().get("/api/v1/outbox", query_string={"page_size": 200}, headers=auth).get_json()
    assert box["total"] == leaders


def test_demo_open311_read(demo):
    r = demo.client().get("/open311/v2/requests.json", query_string={"start_date": "2026-11-01T00:00:00+08:00"})
    assert r.status_code == 200
    reqs = r.get_json()
    assert 0 < len(reqs) <= 1000 and all(x["requested_datetime"] >= "2026-11-01" for x in reqs)
    assert {x["status"] for x in reqs} <= {"open", "closed"}


def test_extreme_values_are_refused_not_crashing(api):
    c = api.client("operator")
    r = c.post("/api/v1/notices/weekly", json={"week_of": "9999-12-31"}, headers=api.hdr("operator"))
    assert r.status_code == 422 and err(r)["field"] == "week_of"
    out = post_report(api).get_json()
    v = step(api, out["id"], "operator", "assign", 1).get_json()["version"]
    r = step(api, out["id"], "operator", "extend", v, new_due="9999-12-31T23:59:59-10:00", note="x")
    assert r.status_code == 422 and err(r)["field"] == "new_due"
    diary = {"kind": "visit", "started_at": "0001-01-01T00:00:00+08:00"}
    r = c.post("/api/v1/diary", json=diary, headers=api.hdr("b11_leader"))
    assert r.status_code == 422 and err(r)["field"] == "started_at"
    assert c.get("/api/v1/issues/%C2%B2").status_code == 404  # a non-ASCII digit
    r = c.get("/api/v1/issues", query_string={"from": "0001-01-01T00:00:00-10:00", "to": "9999-12-31T23:59:59-10:00"})
    assert r.status_code == 200
    track3d = {"type": "Point", "coordinates": [113.625, 34.755, 80.0]}
    r = c.post("/api/v1/diary", json={"kind": "patrol", "started_at": "2026-11-20T08:00:00+08:00", "track": track3d},
               headers=api.hdr("b11_leader"))
    assert r.status_code == 201 and r.get_json()["track"]["coordinates"] == [113.625, 34.755]


def test_same_server_as_the_dashboard(api):
    """``app.create_app`` puts the API on the dashboard's Flask server."""
    from app import create_app

    server = create_app(api.settings).server
    c = server.test_client()
    assert c.get("/api/v1/openapi.json").status_code == 200
    r = c.post("/api/v1/issues", json=REPORT)
    assert r.status_code == 201, r.data
    assert c.get(f"/api/v1/issues/{r.get_json()['id']}", headers=api.hdr("operator")).status_code == 200
    assert c.get("/api/v1/no/such/thing").status_code == 404
    assert c.get("/").status_code == 302  # the dashboard still answers: with its sign-in page
    assert c.get("/login").status_code == 200


# -- photos: metadata stripped, decoded in full ----------------------------------------------------
def jpeg_with_metadata(w: int = 40, h: int = 20) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS, camera and orientation 6 (rotate 90° for display),
    an ICC profile and a comment."""
    import io

    from PIL import Image, ImageCms

    img = Image.new("RGB", (w, h), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, w // 2, h))
    exif = Image.Exif()
    exif[0x0112] = 6                      # Orientation
    exif[0x010F] = "PhoneMaker"           # Make
    exif[0x0110] = "Model X 13800000000"  # Model
    exif.get_ifd(0x8825).update({1: "N", 2: (34.0, 45.0, 18.5), 3: "E", 4: (113.0, 37.0, 30.0)})  # GPS
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"shot at home 13800000000")
    return buf.getvalue()


def test_photo_metadata_is_stripped_and_orientation_applied(api):
    import io

    from PIL import Image

    raw = jpeg_with_metadata()
    with Image.open(io.BytesIO(raw)) as src:  # the fixture really carries what must go
        assert src.getexif().get_ifd(0x8825) and src.info.get("icc_profile") and src.info.get("comment")
    form = {k: str(v) for k, v in REPORT.items()}
    form["photos"] = [(io.BytesIO(raw), "IMG_0001.jpg", "image/jpeg")]
    r = api.client().post("/api/v1/issues", data=form, content_type="multipart/form-data")
    assert r.status_code == 201, r.data
    meta = r.get_json()["photos"][0]
    assert (meta["width"], meta["height"]) == (20, 40)  # orientation 6 applied: 40×20 shown upright
    got = api.client().get(meta["url"])
    assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(got.data)) as out:
        assert out.size == (20, 40)
        assert len(out.getexif()) == 0 and not out.getexif().get_ifd(0x8825)
        assert not {"exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp"} & set(out.info)
        # upright: the blue half (left in the file) is now on top
        assert out.getpixel((10, 5))[2] > 150 and out.getpixel((10, 35))[0] > 150
    assert b"Exif" not in got.data and b"13800000000" not in got.data and b"PhoneMaker" not in got.data


def _claiming(fmt: str, w: int, h: int) -> bytes:
    """A small image whose header claims ``w``×``h`` pixels: the header parses, the data cannot
    fill it (JPEG: the SOF0 frame header; PNG: IHDR, with its CRC fixed)."""
    import io
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, fmt)
    data = bytearray(buf.getvalue())
    size = w.to_bytes(4, "big") + h.to_bytes(4, "big")
    if fmt == "JPEG":
        i = data.index(b"\xff\xc0")
        data[i + 5:i + 9] = h.to_bytes(2, "big") + w.to_bytes(2, "big")
    else:
        i = data.index(b"IHDR")
        data[i + 4:i + 12] = size
        data[i + 17:i + 21] = zlib.crc32(bytes(data[i:i + 17])).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize("fmt,w,h,status,code", [
    ("JPEG", 7000, 7000, 413, "photo_too_many_pixels"), ("PNG", 7000, 7000, 413, "photo_too_many_pixels"),
    ("PNG", 3000, 2000, 415, "photo_invalid"),
])
def test_photo_whose_header_lies_is_refused_naming_the_photo(api, fmt, w, h, status, code):
    """(A JPEG whose data ends early is decoded as libjpeg does, the rest grey: a whole image, and
    stored re-encoded.)"""
    import io

    from PIL import Image

    data = _claiming(fmt, w, h)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (w, h)
        img.verify()  # a header-only check (the old one) accepted it
    before = counts(api)
    r = post_report(api, {"photos": [{"data": base64.b64encode(data).decode()}]})
    assert r.status_code == status, r.data
    assert err(r)["code"] == code and err(r)["field"] == "photos[0]"
    assert counts(api) == before


# -- numbers are numbers, text is visible -----------------------------------------------------------
@pytest.mark.parametrize("body,field", [
    ({"lat": True}, "lat"), ({"lon": False}, "lon"), ({"lat": "34.755"}, "lat"),
    ({"nearest_override": "yes"}, "nearest_override"),
    ({"title": "\u200b\u200c\u200d\ufeff"}, "title"), ({"title": " \u3000\t "}, "title"),
    ({"title": "\u2060\u180e\u3164"}, "title"), ({"title": "楼道\x07堆物"}, "title"),
    ({"title": "楼道\n堆物"}, "title"), ({"title": "a\u2028b"}, "title"), ({"domain": "\u200b"}, "domain"),
    ({"description": "第一行\x1b[31m"}, "description"), ({"reporter_name": "张\x00三"}, "reporter_name"),
])
def test_json_numbers_strict_and_text_normalised(api, body, field):
    before = counts(api)
    r = post_report(api, body)
    assert r.status_code == 422, r.data
    e = err(r)
    assert e["field"] == field
    assert counts(api) == before


def test_satisfaction_must_be_a_number_not_a_boolean(api):
    out = post_report(api).get_json()
    r = api.client().post(f"/api/v1/issues/{out['id']}/evaluation", json={"satisfaction": True, "version": 1},
                          headers=api.hdr("operator"))
    assert r.status_code == 422 and err(r)["field"] == "satisfaction"


def test_text_is_trimmed_of_invisible_characters_and_keeps_line_breaks_where_allowed(api):
    r = post_report(api, {"title": "\ufeff\u200b 井盖缺失 \u200b", "description": "第一行\n第二行\t完"})
    assert r.status_code == 201, r.data
    got = api.client("operator").get(f"/api/v1/issues/{r.get_json()['id']}").get_json()
    assert got["title"] == "井盖缺失" and got["description"] == "第一行\n第二行\t完"
    # zero-width joiners inside a text are kept (emoji sequences, scripts that need them)
    r = post_report(api, {"title": "家庭 👨\u200d👩\u200d👧 求助"})
    assert r.status_code == 201 and "\u200d" in api.client("operator").get(f"/api/v1/issues/{r.get_json()['id']}"
                                                                  ).get_json()["title"]


# -- who calls: bearer tokens ---------------------------------------------------------------------
def test_bearer_tokens_revoked_or_of_a_disabled_account_are_401(api):
    from geodata.access import accounts
    from geodata.access.models import ApiToken
    from geodata.db import session_scope

    with session_scope(api.engine) as s:
        aid = accounts.create_account(s, "api-tokens", grants=(("operator", None),))
        raw = accounts.issue_token(s, aid, "script")
        other = accounts.issue_token(s, aid, "phone")
    c = api.client()
    assert c.get("/api/v1/issues", headers=bearer(raw)).status_code == 200
    with session_scope(api.engine) as s:
        tok = s.query(ApiToken).filter_by(account_id=aid, label="script").one()
        assert tok.last_used_at is not None
        accounts.revoke_token(s, tok.id)
    r = c.get("/api/v1/issues", headers=bearer(raw))
    assert r.status_code == 401 and err(r)["code"] == "invalid_token" and err(r)["field"] == "Authorization"
    assert c.get("/api/v1/issues", headers=bearer(other)).status_code == 200
    with session_scope(api.engine) as s:
        accounts.set_disabled(s, aid)
    assert c.get("/api/v1/issues", headers=bearer(other)).status_code == 401
    # a public operation with a bad token is refused too: a bad token is never a resident
    assert c.get("/api/v1/meta", headers=bearer(other)).status_code == 401


def test_each_operation_declares_its_capability_in_the_document(api):
    doc = api.client().get("/api/v1/openapi.json").get_json()
    ops = {(p, m): o for p, item in doc["paths"].items() for m, o in item.items()}
    assert ops[("/api/v1/issues", "get")]["x-capability"] == "view_issues"
    assert ops[("/api/v1/notices/weekly", "post")]["x-capability"] == "send_notices"
    assert ops[("/api/v1/responsible", "get")]["security"] == [{}, {"bearer": []}]   # public
    assert "bearer" in doc["components"]["securitySchemes"]
    assert not any(p["name"] == "X-Official-Id" for o in ops.values() for p in o["parameters"])
    # a display screen's account reads no issue through the API (the wall is the dashboard's)
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(api.engine) as s:
        wall = accounts.issue_token(s, accounts.create_account(s, "wall-api", kind="display",
                                                               grants=(("display", None),)))
    r = api.client().get("/api/v1/issues", headers=bearer(wall))
    assert r.status_code == 403 and err(r)["code"] == "forbidden_capability"


def _to_closed(api, number: str, version: int) -> int:
    v = version
    for who, action in [("operator", "assign"), ("c2_secretary", "sign"), ("c2_secretary", "handle"),
                        ("c2_secretary", "feedback"), ("c2_maintainer", "verify"), ("operator", "close")]:
        r = step(api, number, who, action, v, **({"note": "已处理"} if action == "feedback" else {}))
        assert r.status_code == 200, (action, r.data)
        v = r.get_json()["version"]
    return v


def test_the_reporter_evaluates_with_their_key_or_their_phone(api):
    """综合评价 by the reporter: the key their report's answer carried (shown once, kept hashed), or the
    phone number they gave; a wrong key or phone is 403 and writes nothing; an official's report
    carries no key."""
    out = post_report(api, {"lon": 113.635, "lat": 34.755}).get_json()
    key = out["evaluation_key"]
    assert key and len(key) >= 24
    v = _to_closed(api, out["number"], out["version"])
    before = counts(api)
    r = api.client().post(f"/api/v1/issues/{out['number']}/evaluation", json={"satisfaction": 2, "version": v,
                                                                            "key": key[:-2] + "xx"})
    assert r.status_code == 403 and err(r)["code"] == "not_the_reporter" and err(r)["field"] == "key"
    assert counts(api) == before
    r = api.client().post(f"/api/v1/issues/{out['number']}/evaluation",
                          json={"satisfaction": 4, "comment": "及时", "version": v, "key": key})
    assert r.status_code == 200, r.data
    assert r.get_json()["status"] == "evaluated" and r.get_json()["satisfaction"] == 4
    # the phone they gave (any punctuation), never someone else's
    other = post_report(api, {"lon": 113.635, "lat": 34.755, "reporter_name": "张三",
                              "reporter_phone": "138-0371-0000"}).get_json()
    v = _to_closed(api, other["number"], other["version"])
    r = api.client().post(f"/api/v1/issues/{other['number']}/evaluation",
                          json={"satisfaction": 1, "version": v, "phone": "13803719999"})
    assert r.status_code == 403 and err(r)["field"] == "phone"
    r = api.client().post(f"/api/v1/issues/{other['number']}/evaluation",
                          json={"satisfaction": 5, "version": v, "phone": "13803710000"})
    assert r.status_code == 200, r.data
    # a key opens only its own issue; an official's report has none
    third = post_report(api, {"lon": 113.635, "lat": 34.755}).get_json()
    v3 = _to_closed(api, third["number"], third["version"])
    r = api.client().post(f"/api/v1/issues/{third['number']}/evaluation", json={"satisfaction": 3, "version": v3,
                                                                              "key": key})
    assert r.status_code == 403
    staff = api.client().post("/api/v1/issues", json={**REPORT, "lon": 113.635, "lat": 34.755},
                              headers=api.hdr("b21_leader")).get_json()
    assert staff.get("evaluation_key") is None
