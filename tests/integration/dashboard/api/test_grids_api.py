"""/api/v1 boundary change sets: live validation, proposals, apply (and the second planner's 409),
revert, as-of grids, diff, the planner check and bad input in the API's error format."""
from __future__ import annotations

import pytest
from shapely.geometry import box, mapping

from dashboard.api import openapi
from tests.conftest import SUFFIX
from tests.world import B11, B12, scratch_api, seed_issues


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_grids_api{SUFFIX}", tmp_path_factory.mktemp("var")) as a:
        from geodata.db import session_scope

        with session_scope(a.engine) as s:
            seed_issues(s, a.world)
        yield a


def shift(lat: float) -> list[dict]:
    return [{"code": B11, "geometry": mapping(box(113.62, lat, 113.63, 34.76))},
            {"code": B12, "geometry": mapping(box(113.62, 34.74, 113.63, lat))}]


def test_the_operations_are_in_the_document():
    import orjson

    paths = orjson.loads(openapi())["paths"]
    for p in ("/api/v1/grid-proposals/validate", "/api/v1/grid-proposals", "/api/v1/grid-proposals/{proposal_id}/apply",
              "/api/v1/grid-change-sets", "/api/v1/grid-change-sets/{change_set_id}/revert", "/api/v1/grids",
              "/api/v1/grids/diff"):
        assert p in paths, p


def test_only_planners_change_boundaries(api):
    c = api.client()
    r = c.post("/api/v1/grid-proposals/validate", json={"grids": shift(34.752)})
    assert r.status_code == 401 and r.json["error"]["code"] == "sign_in_required"
    for who in ("b11_leader", "operator"):   # the command centre dispatches; planners plan
        r = c.post("/api/v1/grid-proposals/validate", json={"grids": shift(34.752)}, headers=api.hdr(who))
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_capability", who
    assert c.get("/api/v1/grids?level=3", headers=api.hdr("b11_leader")).status_code == 200  # as the map
    assert c.get("/api/v1/grids?level=3").status_code == 401


def test_live_validation_names_the_gap_and_its_shape(api):
    c = api.client()
    r = c.post("/api/v1/grid-proposals/validate", headers=api.hdr("planner"),
               json={"grids": shift(34.752)[:1], "impact": False})
    assert r.status_code == 200 and r.json["valid"] is False and r.json["impact"] is None
    (gap,) = r.json["problems"]
    assert gap["kind"] == "gap" and B11 in gap["message_en"] and B12 in gap["message_zh"]
    assert gap["geometry"]["type"] == "Polygon"
    ok = c.post("/api/v1/grid-proposals/validate", headers=api.hdr("planner"), json={"grids": shift(34.752)})
    assert ok.json["valid"] is True and {f["properties"]["code"] for f in ok.json["grids"]["features"]} == {B11, B12}
    assert ok.json["impact"]["issues"]["open"] >= 1


@pytest.mark.parametrize("body, status, field", [
    ({"grids": [{"code": B11, "geometry": {"type": "Polygon", "coordinates": "x"}}]}, 422, "grids[0].geometry"),
    ({"grids": [{"code": "41010200100109", "geometry": mapping(box(1, 1, 2, 2))}]}, 422, "grids[0].name"),
    ({"operations": [{"op": "merge", "codes": [B11]}]}, 422, "codes"),
    ({"operations": [{"op": "split", "code": B11, "line": mapping(box(0, 0, 1, 1))}]}, 422, "line"),
    ({"grids": [{"code": "x"}]}, 422, "grids.0.code"),
])
def test_bad_drafts_are_4xx_in_the_error_format(api, body, status, field):
    r = api.client().post("/api/v1/grid-proposals/validate", json=body, headers=api.hdr("planner"))
    assert r.status_code == status, r.json
    assert r.json["error"]["field"] == field and r.json["error"]["message_zh"] and r.json["error"]["message_en"]


def test_save_apply_second_planner_revert_history_and_diff(api):
    c, op = api.client(), api.hdr("planner")
    grids = c.get("/api/v1/grids?level=3", headers=op).json["features"]
    base = {f["properties"]["code"]: f["properties"]["version_id"] for f in grids
            if f["properties"]["code"] in (B11, B12)}
    first = c.post("/api/v1/grid-proposals", headers=op, json={"grids": shift(34.753), "base": base,
                                                               "reason": "沿路调整"})
    second = c.post("/api/v1/grid-proposals", headers=op, json={"grids": shift(34.751), "base": base,
                                                                "reason": "另一方案"})
    assert first.status_code == second.status_code == 201 and first.json["problems"] == []
    # a draft's edits may be replaced until it is applied
    put = c.put(f"/api/v1/grid-proposals/{second.json['id']}", headers=op,
                json={"grids": shift(34.7515), "base": base, "reason": "另一方案（改）"})
    assert put.status_code == 200 and put.json["reason"] == "另一方案（改）" and put.json["problems"] == []
    before = c.get("/api/v1/grids?level=3", headers=op).json
    applied = c.post(f"/api/v1/grid-proposals/{first.json['id']}/apply", headers=op, json={})
    assert applied.status_code == 201 and applied.json["issues_moved"] >= 1
    cs_id = applied.json["id"]
    refused = c.post(f"/api/v1/grid-proposals/{second.json['id']}/apply", headers=op, json={})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "grids_changed"
    assert f"#{cs_id}" in refused.json["error"]["message_zh"] and refused.json["error"]["detail"]["change_sets"] == [cs_id]
    # a client still drawing on the old versions is told at once
    stale = c.post("/api/v1/grid-proposals/validate", headers=op, json={"grids": shift(34.751), "base": base})
    assert stale.status_code == 409
    listed = c.get(f"/api/v1/grid-change-sets?code={B11}", headers=op).json["items"]
    assert [x["id"] for x in listed] == [cs_id]
    t_before = before["features"][0]["properties"]["valid_from"]
    diff = c.get("/api/v1/grids/diff", headers=op, query_string={"from": t_before, "to": "2100-01-01T00:00:00+08:00",
                                                     "level": 3})
    assert diff.status_code == 200 and {d["code"] for d in diff.json["items"]} == {B11, B12}
    back = c.post(f"/api/v1/grid-change-sets/{cs_id}/revert", headers=op, json={})
    assert back.status_code == 201 and back.json["reverts_id"] == cs_id
    after = {f["properties"]["code"]: f["geometry"] for f in c.get("/api/v1/grids?level=3", headers=op).json["features"]}
    assert after[B11] == {f["properties"]["code"]: f["geometry"] for f in before["features"]}[B11]
    exported = c.get(f"/api/v1/grid-proposals/{first.json['id']}/export", headers=op)
    assert exported.status_code == 200 and exported.json["type"] == "FeatureCollection"
    assert c.get("/api/v1/grid-proposals/999999", headers=op).status_code == 404
