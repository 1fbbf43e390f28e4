"""The phone app's server side on a real PostGIS: device sign-in / sign-out / me, the issue's
``allowed_actions``, a patrol recorded as it goes (track batches, end), and the /m/ shell, manifest,
service worker and icons."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import text

from geodata.access import accounts
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.world import B11, bearer, scratch_api

PASSWORD = "a long phone passphrase"


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    from dashboard.phone import register_phone

    name = f"gridwatch_test_phone{SUFFIX}"
    with scratch_api(server_url, name, tmp_path_factory.mktemp("var")) as a:
        register_phone(a.app, a.settings)
        with session_scope(a.engine) as s:
            for key in ("b11_leader", "operator"):
                accounts.set_password(s, a.world.accounts[key], PASSWORD)
        yield a


def err(resp) -> dict:
    assert resp.mimetype == "application/json", resp.data[:200]
    e = resp.get_json()["error"]
    assert e["message_zh"] and e["message_en"] and e["code"]
    return e


def sign_in(api, login="b11_leader", password=PASSWORD):
    return api.app.test_client().post("/api/v1/device/sign-in", json={"login": login, "password": password})


# -- device sign-in, me, sign-out ------------------------------------------------------------------
def test_device_sign_in_gives_a_phone_token_that_works_until_signed_out(api):
    r = sign_in(api)
    assert r.status_code == 201, r.data
    out = r.get_json()
    tok = out["token"]
    assert tok.startswith("gw_") and out["me"]["login"] == "b11_leader"
    assert out["me"]["blocks"] == [B11] and out["me"]["official_id"] == api.world.ids["b11_leader"]
    assert {"report", "sign", "handle"} <= set(out["me"]["capabilities"]) and "verify" not in out["me"]["capabilities"]
    with api.engine.connect() as c:
        label = c.execute(text("SELECT label FROM api_token WHERE account_id = :a ORDER BY id DESC LIMIT 1"),
                          {"a": api.world.accounts["b11_leader"]}).scalar_one()
    assert label == "phone"
    c = api.app.test_client()
    me = c.get("/api/v1/me", headers=bearer(tok))
    assert me.status_code == 200 and me.get_json()["login"] == "b11_leader"
    out = c.post("/api/v1/device/sign-out", headers=bearer(tok))
    assert out.status_code == 200 and out.get_json() == {"revoked": True}
    gone = c.get("/api/v1/me", headers=bearer(tok))
    assert gone.status_code == 401 and err(gone)["code"] == "invalid_token"
    # the other tokens of the account are untouched
    assert c.get("/api/v1/me", headers=bearer(api.world.tokens["b11_leader"])).status_code == 200


def test_wrong_password_is_a_bilingual_401_and_counts_towards_the_lockout(api):
    aid = api.world.accounts["operator"]
    r = sign_in(api, "operator", "not the password")
    assert r.status_code == 401
    e = err(r)
    assert e["code"] == "bad_credentials" and e["field"] == "password" and "密码" in e["message_zh"]
    with api.engine.connect() as c:
        assert c.execute(text("SELECT failed_attempts FROM account WHERE id = :a"), {"a": aid}).scalar_one() == 1
    assert "token" not in r.get_json()
    unknown = sign_in(api, "nobody-here", "whatever it is")
    assert unknown.status_code == 401 and err(unknown)["code"] == "bad_credentials"
    ok = sign_in(api, "operator")   # no backoff after a single failure
    assert ok.status_code == 201


def test_sign_in_documents_its_lockout_and_backoff_answers(api):
    doc = api.app.test_client().get("/api/v1/openapi.json").get_json()
    assert {"201", "401", "422", "423", "429"} <= set(doc["paths"]["/api/v1/device/sign-in"]["post"]["responses"])


@pytest.mark.parametrize("body, field", [({"password": "x"}, "login"), ({"login": "b11_leader"}, "password"),
                                         ({"login": "", "password": "x"}, "login"),
                                         ({"login": "b11_leader", "password": "x", "extra": 1}, "extra")])
def test_device_sign_in_bad_input_names_the_field(api, body, field):
    r = api.app.test_client().post("/api/v1/device/sign-in", json=body)
    assert r.status_code == 422 and err(r)["field"] == field


def test_me_and_sign_out_need_a_token(api):
    c = api.app.test_client()
    for method, path in (("get", "/api/v1/me"), ("post", "/api/v1/device/sign-out")):
        r = getattr(c, method)(path)
        assert r.status_code == 401 and err(r)["code"] == "sign_in_required"


# -- allowed_actions: the one workflow rule -----------------------------------------------------------
def test_allowed_actions_follow_the_workflow_and_the_grants(api):
    c = api.app.test_client()
    gl, op = api.world.tokens["b11_leader"], api.world.tokens["operator"]
    r = c.post("/api/v1/issues", headers=bearer(gl), json={"kind": "problem", "domain": "sanitation", "title": "楼道堆物",
                                                          "lon": 113.625, "lat": 34.755})
    assert r.status_code == 201, r.data
    iid = r.get_json()["id"]
    assert "assign" in c.get(f"/api/v1/issues/{iid}", headers=bearer(op)).get_json()["allowed_actions"]
    assert c.get(f"/api/v1/issues/{iid}", headers=bearer(gl)).get_json()["allowed_actions"] == []
    r = c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(op),
               json={"action": "assign", "version": 1, "assignee_id": api.world.ids["b11_leader"]})
    assert r.status_code == 200, r.data
    mine = c.get(f"/api/v1/issues/{iid}", headers=bearer(gl)).get_json()
    assert mine["allowed_actions"] == ["sign", "request_extension"]
    theirs = c.get(f"/api/v1/issues/{iid}", headers=bearer(op)).get_json()
    assert "sign" not in theirs["allowed_actions"] and "reassign" in theirs["allowed_actions"]
    # what it lists is what a transition accepts
    assert c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(gl),
                  json={"action": "sign", "version": mine["version"]}).status_code == 200
    assert c.get(f"/api/v1/issues/{iid}", headers=bearer(gl)).get_json()["allowed_actions"] == [
        "handle", "request_extension"]


def test_the_assignee_asks_for_an_extension_and_the_approver_grants_it(api):
    """申请延期 from the phone: the assignee asks (a date, a reason), nothing else changes; the date
    asked for is on the event for the approver, who extends; nobody else may ask."""
    import datetime as dt

    c = api.app.test_client()
    gl, op = api.world.tokens["b11_leader"], api.world.tokens["operator"]
    iid = c.post("/api/v1/issues", headers=bearer(gl), json={"kind": "problem", "domain": "sanitation",
                 "title": "围墙破损", "lon": 113.625, "lat": 34.755}).get_json()["id"]
    a = c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(op),
               json={"action": "assign", "version": 1, "assignee_id": api.world.ids["b11_leader"]}).get_json()
    assert "request_extension" not in a["allowed_actions"]   # the operator is not the assignee
    later = (dt.date.today() + dt.timedelta(days=40)).isoformat()
    # refused, nothing written: no reason; no date; a date not after the deadline; not the assignee
    for who, body, status, fld in [(gl, {"new_due": later}, 422, "note"), (gl, {"note": "需采购材料"}, 422, "new_due"),
                                   (gl, {"new_due": "2020-01-01", "note": "x"}, 422, "new_due"),
                                   (op, {"new_due": later, "note": "x"}, 403, None)]:
        r = c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(who),
                   json={"action": "request_extension", "version": a["version"], **body})
        assert r.status_code == status, (body, r.data)
        assert fld is None or err(r)["field"] == fld
    r = c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(gl),
               json={"action": "request_extension", "version": a["version"], "new_due": later, "note": "需采购材料"})
    assert r.status_code == 200, r.data
    asked = r.get_json()
    assert asked["status"] == "assigned" and asked["due_at"] == a["due_at"]   # only asked
    ev = c.get(f"/api/v1/issues/{iid}", headers=bearer(op)).get_json()["timeline"][-1]
    assert (ev["action"], ev["action_zh"], ev["note"]) == ("request_extension", "申请延期", "需采购材料")
    assert ev["data"]["requested_due"].startswith(later)
    r = c.post(f"/api/v1/issues/{iid}/transitions", headers=bearer(op),
               json={"action": "extend", "version": asked["version"], "new_due": later, "note": "同意"})
    assert r.status_code == 200 and r.get_json()["due_at"].startswith(later)


# -- a patrol as it goes -------------------------------------------------------------------------------
def test_patrol_track_batches_are_appended_once_and_the_entry_ends(api):
    c = api.app.test_client()
    gl = bearer(api.world.tokens["b11_leader"])
    r = c.post("/api/v1/diary", headers={**gl, "Idempotency-Key": "patrol-start-1"},
               json={"kind": "patrol", "started_at": "2026-11-27T09:00:00+08:00",
                     "track": {"type": "Point", "coordinates": [113.621, 34.751]}})
    assert r.status_code == 201, r.data
    did = r.get_json()["id"]
    again = c.post("/api/v1/diary", headers={**gl, "Idempotency-Key": "patrol-start-1"},
                   json={"kind": "patrol", "started_at": "2026-11-27T09:00:00+08:00",
                         "track": {"type": "Point", "coordinates": [113.621, 34.751]}})
    assert again.status_code == 201 and again.get_json()["id"] == did
    batch = {"points": [[113.622, 34.752], [113.623, 34.753]]}
    for _ in range(2):   # a retry of the same batch (same key) is not appended twice
        r = c.post(f"/api/v1/diary/{did}/track", headers={**gl, "Idempotency-Key": "batch-1"}, json=batch)
        assert r.status_code == 200, r.data
    assert r.get_json()["track"] == {"type": "LineString", "coordinates": [[113.621, 34.751], [113.622, 34.752],
                                                                           [113.623, 34.753]]}
    other = c.post(f"/api/v1/diary/{did}/track", headers=bearer(api.world.tokens["b12_leader"]), json=batch)
    assert other.status_code in (403, 404) and err(other)
    r = c.post(f"/api/v1/diary/{did}/end", headers=gl, json={"households": 5, "shops": 2, "firms": 1,
                                                           "findings": "3号楼楼道堆物"})
    assert r.status_code == 200, r.data
    out = r.get_json()
    assert out["ended_at"] and (out["households"], out["shops"], out["firms"]) == (5, 2, 1)
    late = c.post(f"/api/v1/diary/{did}/track", headers=gl, json=batch)
    assert late.status_code == 409 and err(late)["code"] == "diary_ended"
    with api.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM patrol_diary WHERE official_id = :o AND started_at = "
                              "'2026-11-27T01:00:00Z'"), {"o": api.world.ids["b11_leader"]}).scalar_one()
    assert n == 1


@pytest.mark.parametrize("body, field", [
    ({"points": []}, "points"), ({"points": [[113.62]]}, "points.0"), ({"points": [[200.0, 34.75]]}, "points[0].lon"),
    ({"points": [[113.62, 34.75]], "crs": "bd09"}, "crs"), ({"points": "x"}, "points")])
def test_track_bad_input_is_a_bilingual_4xx_naming_the_field(api, body, field):
    c = api.app.test_client()
    gl = bearer(api.world.tokens["b11_leader"])
    did = c.post("/api/v1/diary", headers=gl, json={"kind": "patrol", "started_at": "2026-11-27T10:00:00+08:00"}).get_json()["id"]
    r = c.post(f"/api/v1/diary/{did}/track", headers=gl, json=body)
    assert 400 <= r.status_code < 500
    assert err(r)["field"] == field
    assert c.post("/api/v1/diary/999999/track", headers=gl, json={"points": [[113.62, 34.75]]}).status_code == 404


def test_end_bad_input(api):
    c = api.app.test_client()
    gl = bearer(api.world.tokens["b11_leader"])
    did = c.post("/api/v1/diary", headers=gl, json={"kind": "patrol", "started_at": "2026-11-27T10:00:00+08:00"}).get_json()["id"]
    for body, field in (({"households": -1}, "households"), ({"ended_at": "2026-11-27T09:00:00+08:00"}, "ended_at"),
                        ({"ended_at": "2099-01-01T00:00:00+08:00"}, "ended_at"), ({"ended_at": "2026-11-27T12:00:00"}, "ended_at")):
        r = c.post(f"/api/v1/diary/{did}/end", headers=gl, json=body)
        assert 400 <= r.status_code < 500 and err(r)["field"] == field, (body, r.data)


# -- the shell -------------------------------------------------------------------------------------------
def test_the_shell_manifest_service_worker_and_icons_are_served(api):
    c = api.app.test_client()
    assert c.get("/m").status_code == 301
    r = c.get("/m/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert 'rel="manifest"' in page and "/m/vendor/leaflet.js?v=" in page and "gwPhone" in page   # the app, inlined
    from dashboard.phone import script_hash
    csp = r.headers["Content-Security-Policy"]
    assert script_hash() in csp and "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "cdn" not in page.lower() and "https://" not in page
    texts = json.loads(page.split('id="m-texts">', 1)[1].split("</script>", 1)[0])
    assert texts["tab_report"] == ["上报", "Report"]
    man = c.get("/m/manifest.webmanifest").get_json(force=True)
    assert man["name"].startswith("网格员") and man["start_url"] == "/m/" and man["display"] == "standalone"
    sizes = set()
    for icon in man["icons"]:
        img = c.get(icon["src"])
        assert img.status_code == 200 and img.mimetype == "image/png"
        w, h = Image.open(io.BytesIO(img.data)).size
        assert f"{w}x{h}" == icon["sizes"]
        sizes.add(icon["sizes"])
    assert sizes == {"192x192", "512x512"}
    sw = c.get("/m/sw.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    from dashboard.phone import shell_urls, version
    body = sw.get_data(as_text=True)
    assert f"gw-m-{version()}" in body
    for url in shell_urls():   # every file the worker caches is served
        assert url in body and c.get(url).status_code == 200, url
    assert c.get("/m/static/nope.js").status_code == 404
    assert c.get("/m/static/..%2Fapp.py").status_code == 404
