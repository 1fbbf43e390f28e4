"""The /assessment page through the real app on the demo database: the page gate, the callbacks
(posted as dash-renderer posts them, through the callback guard, as signed-in accounts under
row-level security), the records behind a number, the 定性 form and the bulletin route.

Expected numbers are counted independently with plain SQL on the demo (not through the registry)."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from dash._utils import split_callback_id
from sqlalchemy import text as sql

from dashboard.components import ids as app_ids
from dashboard.i18n import t
from dashboard.pages.assessment import ids
from geodata.settings import Settings
from tests.world import sign_in

PATH = "/_dash-update-component"
OCT = {"period": "2026-10", "level": "grid:3"}


@pytest.fixture(scope="module")
def app(demo_app_url, demo_app_engine, tmp_path_factory):
    from app import wire_bulletins
    from dashboard import create_dash
    from dashboard.api import register_api

    settings = Settings(database_url=demo_app_url, basemap_url="", basemap_path=None,
                        var_dir=tmp_path_factory.mktemp("var"))
    dash_app = create_dash(settings, demo_app_engine)
    register_api(dash_app.server, settings, demo_app_engine)
    wire_bulletins(dash_app.server, settings, demo_app_engine)   # as app.create_app wires it
    return dash_app


def free_official(c) -> int:
    """An active official with no account yet (an account is linked to one official, and back)."""
    return c.execute(sql("SELECT o.id FROM official o WHERE o.active AND NOT EXISTS (SELECT 1 FROM account a"
                         " WHERE a.official_id = o.id) ORDER BY o.id LIMIT 1")).scalar_one()


@pytest.fixture
def officer(demo_engine) -> int:
    with demo_engine.connect() as c:
        return free_official(c)


def client_as(app, demo_engine, role: str, grid: str | None = None, official_id: int | None = None):
    c = app.server.test_client()
    sign_in(c, demo_engine, role, grid, official_id)
    assert c.get("/").status_code == 200   # Dash's first-request set-up
    return c


def callback(app, output_prefix: str) -> tuple[str, dict[str, Any]]:
    out = next(o for o in app.callback_map if o.startswith(output_prefix) and "callback" in app.callback_map[o])
    return out, app.callback_map[out]


def post(client, app, output_prefix: str, values: dict[str, Any], trigger: str | None = None):
    """A callback request with ``values`` by "id.property" (the rest absent), as the renderer sends it."""
    resp = send(client, app, output_prefix, values, trigger)
    assert resp.status_code in (200, 204), (resp.status_code, resp.get_data(as_text=True)[:500])
    return resp.get_json()["response"] if resp.status_code == 200 else None


def send(client, app, output_prefix: str, values: dict[str, Any], trigger: str | None = None):
    out, cb = callback(app, output_prefix)

    def item(d):
        key = f"{d['id']}.{d['property']}"
        return {"id": d["id"], "property": d["property"], **({"value": values[key]} if key in values else {})}

    first = f"{cb['inputs'][0]['id']}.{cb['inputs'][0]['property']}"
    body = {"output": out, "outputs": split_callback_id(out), "inputs": [item(d) for d in cb["inputs"]],
            "changedPropIds": [trigger or first]}
    body["parsedChangedPropsIds"] = body["changedPropIds"]
    if cb["state"]:
        body["state"] = [item(d) for d in cb["state"]]
    return client.post(PATH, data=json.dumps(body), content_type="application/json")


def ranking(client, app, chosen=OCT, lang="zh", version: int = 0) -> dict[str, Any]:
    return post(client, app, f"..{ids.RANKING}.rowData", {f"{ids.CHOSEN}.data": chosen,
                                                          f"{ids.Q_VERSION}.data": version,
                                                          f"{app_ids.LANG}.value": lang})


def trace(client, app, col: str, key: str, chosen=OCT, lang="zh") -> dict[str, Any]:
    cell = {"value": 1, "colId": col, "rowIndex": 0, "rowId": key, "timestamp": 1764000000000}
    return post(client, app, f"..{ids.TRACE}.is_open...", {f"{ids.RANKING}.cellClicked": cell,
                                                          f"{ids.CHOSEN}.data": chosen, f"{app_ids.LANG}.value": lang})


def save(client, app, subject, score, comment, chosen=OCT, lang="zh", clicks=1) -> dict[str, Any]:
    return post(client, app, f"..{ids.Q_RESULT}.children", {
        f"{ids.Q_SAVE}.n_clicks": clicks, f"{ids.CHOSEN}.data": chosen, f"{ids.Q_SUBJECT}.value": subject,
        f"{ids.Q_SCORE}.value": score, f"{ids.Q_COMMENT}.value": comment, f"{ids.Q_VERSION}.data": 0,
        f"{app_ids.LANG}.value": lang})


def _text(component: Any) -> str:
    return json.dumps(component, ensure_ascii=False)


# -- who may open the page ------------------------------------------------------------------------------
def test_the_page_is_for_leaders_and_assessors(app, demo_engine, db):
    block = db.execute(sql("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY code LIMIT 1")
                       ).scalar_one()
    for role, grid in (("assessor", None), ("street_leader", None), ("operator", None)):
        r = client_as(app, demo_engine, role, grid).get("/assessment")
        assert r.status_code == 200, role
    leader = client_as(app, demo_engine, "grid_leader", block)
    r = leader.get("/assessment")
    assert r.status_code == 403
    page = r.get_data(as_text=True)
    assert t("no_page_access", "zh") in page and t("no_page_access", "en") in page
    # and its callbacks answer nothing: the ranking is empty for a grid leader who posts them anyway
    res = ranking(leader, app)
    assert res[ids.RANKING]["rowData"] == []
    assert app.server.test_client().get("/assessment").status_code == 302   # anonymous: sign in first


# -- the ranking, its numbers and their records -------------------------------------------------------------
def _oct_reported(db) -> dict[str, int]:
    rows = db.execute(sql("""SELECT grid_code, count(*) FROM issue
        WHERE reported_at >= '2026-10-01 00:00:00+08' AND reported_at < '2026-11-01 00:00:00+08'
        GROUP BY grid_code""")).all()
    return dict(rows)


def test_the_ranking_lists_every_block_with_its_counted_cases(app, demo_engine, db):
    c = client_as(app, demo_engine, "assessor")
    res = ranking(c, app)
    rows = res[ids.RANKING]["rowData"]
    blocks = db.execute(sql("SELECT count(*) FROM grid WHERE level = 3 AND valid_to IS NULL")).scalar_one()
    assert len(rows) == blocks == 59
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows) and rows[0]["rank"] == 1
    finals = [r["final"] for r in rows]
    assert finals == sorted(finals, reverse=True)
    counted = _oct_reported(db)
    assert {r["key"]: r["reported"] for r in rows} == {r["key"]: float(counted.get(r["key"], 0)) for r in rows}
    assert sum(counted.get(r["key"], 0) for r in rows) > 100
    cols = {d["field"] for d in res[ids.RANKING]["columnDefs"]}
    assert {"rank", "name", "final", "reported", "on_time_rate", "overdue_open"} <= cols
    assert res[ids.EXCELLENT]["children"] and res[ids.NAMED]["children"]
    assert "按期结案率" in _text(res[ids.KPIS]["children"])
    en = ranking(c, app, lang="en")
    assert "On-time closure rate" in _text(en[ids.KPIS]["children"])


def test_a_number_opens_the_cases_behind_it(app, demo_engine, db):
    c = client_as(app, demo_engine, "street_leader")
    rows = ranking(c, app)[ids.RANKING]["rowData"]
    row = max(rows, key=lambda r: r["reported"])
    res = trace(c, app, "reported", row["key"])
    assert res[ids.TRACE]["is_open"] is True
    body = _text(res[ids.TRACE_BODY]["children"])
    links = re.findall(r'"href": "/\?issue=(\d+)"', body)
    assert len(links) == row["reported"] == int(re.search(r'"data-count": "(\d+)"', body)[1])
    ids_sql = db.execute(sql("""SELECT id FROM issue WHERE grid_code = :g
        AND reported_at >= '2026-10-01 00:00:00+08' AND reported_at < '2026-11-01 00:00:00+08' ORDER BY id"""),
                         {"g": row["key"]}).scalars().all()
    assert sorted(int(x) for x in links) == ids_sql
    # a rate: numerator and denominator listed, their ratio is the number shown
    rated = next(r for r in rows if r["on_time_rate"] is not None)
    body = _text(trace(c, app, "on_time_rate", rated["key"])[ids.TRACE_BODY]["children"])
    num, den = (int(x) for x in re.findall(r'"data-count": "(\d+)"', body))
    assert den > 0 and round(100 * num / den, 2) == rated["on_time_rate"]
    en = trace(c, app, "reported", row["key"], lang="en")
    assert "Records counted" in _text(en[ids.TRACE_BODY]["children"])


# -- the score map and the scorecard ----------------------------------------------------------------------
def card(client, app, subject: str | None, chosen=OCT, lang="zh") -> dict[str, Any]:
    return post(client, app, f"..{ids.MAP_L2}.hideout", {f"{ids.CHOSEN}.data": chosen, f"{ids.SUBJECT}.data": subject,
                                                         f"{ids.Q_VERSION}.data": 0, f"{app_ids.LANG}.value": lang})


def click(code: str, level: int = 3) -> dict[str, Any]:
    """dash-leaflet's clickData for a grid polygon (the geometry and bounds left out, as allowed)."""
    return {"type": "Feature", "properties": {"code": code, "level": level, "name": "x"}}


def test_the_score_map_and_a_blocks_card(app, demo_engine, db):
    c = client_as(app, demo_engine, "street_leader")
    rows = {r["key"]: r for r in ranking(c, app)[ids.RANKING]["rowData"]}
    res = card(c, app, None)
    blocks = res[ids.MAP_L3]["hideout"]
    assert res[ids.MAP_L2]["hideout"] == {"show": False} and blocks["show"] is True
    assert blocks["values"] == {k: r["final"] for k, r in rows.items()} and blocks["picked"] == []
    assert "as-card-empty" in _text(res[ids.CARD]["children"])
    # a block picked: its card, its outline, and its cases by domain and handling time — counted here in SQL
    key = max(rows, key=lambda k: rows[k]["reported"])
    res = card(c, app, key)
    assert res[ids.MAP_L3]["hideout"]["picked"] == [key]
    text = _text(res[ids.CARD]["children"])
    assert rows[key]["name"] in text and f"{rows[key]['final']:.2f}" in text
    by_domain = dict(db.execute(sql("""SELECT d.name_zh, count(*) FROM issue i JOIN domain d ON d.code = i.domain_code
        WHERE i.grid_code = :g AND i.reported_at >= '2026-10-01 00:00:00+08' AND i.reported_at < '2026-11-01 00:00:00+08'
        GROUP BY d.name_zh"""), {"g": key}).all())
    bars = res[ids.DOMAINS]["figure"]["data"][0]
    assert dict(zip(bars["x"], bars["y"])) == by_domain and sum(by_domain.values()) == rows[key]["reported"]
    closed = db.execute(sql("""SELECT count(*) FROM issue WHERE grid_code = :g AND status IN ('closed', 'evaluated')
        AND closed_at >= '2026-10-01 00:00:00+08' AND closed_at < '2026-11-01 00:00:00+08'"""), {"g": key}).scalar_one()
    assert sum(res[ids.HOURS]["figure"]["data"][0]["y"]) == closed > 0
    en = card(c, app, key, lang="en")
    assert "Scorecard" not in _text(en[ids.CARD]["children"]) and "Points earned" in _text(en[ids.CARD]["children"])
    assert "cases by domain" in en[ids.DOMAINS]["figure"]["layout"]["title"]["text"]


def test_a_block_clicked_picks_its_grid_or_its_leader(app, demo_engine, db):
    c = client_as(app, demo_engine, "assessor")
    block = db.execute(sql("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY code LIMIT 1")).scalar_one()
    pick = lambda chosen, feature: post(c, app, f"{ids.SUBJECT}.data", {
        f"{ids.MAP_L3}.clickData": feature, f"{ids.CHOSEN}.data": chosen, f"{ids.Q_VERSION}.data": 0,
        f"{app_ids.LANG}.value": "zh"}, trigger=f"{ids.MAP_L3}.clickData")
    assert pick(OCT, click(block))[ids.SUBJECT]["data"] == block
    leaders = {"period": "2026-10", "level": "official:grid_leader"}
    leader = pick(leaders, click(block))[ids.SUBJECT]["data"]
    held = db.execute(sql("""SELECT official_id::text FROM grid_assignment WHERE grid_code = :g AND role = 'grid_leader'
        AND valid_from < '2026-11-01 00:00:00+08' AND (valid_to IS NULL OR valid_to > '2026-10-01 00:00:00+08')"""),
                      {"g": block}).scalars().all()
    assert leader in held
    res = card(c, app, leader, chosen=leaders)
    assert block in res[ids.MAP_L3]["hideout"]["picked"] and "负责网格" in _text(res[ids.CARD]["children"])
    # a grid of no subject: nothing changes; a malformed click is refused by the guard, naming the field
    assert ids.SUBJECT not in (pick(OCT, click("41019999999999")) or {})
    bad = send(c, app, f"{ids.SUBJECT}.data", {f"{ids.MAP_L3}.clickData": click("<script>"),
                                               f"{ids.CHOSEN}.data": OCT}, trigger=f"{ids.MAP_L3}.clickData")
    assert bad.status_code == 422 and ids.MAP_L3 in bad.get_json()["error"]["field"]


# -- 定性 scores --------------------------------------------------------------------------------------------
@pytest.fixture
def no_qualitative_left(demo_engine):
    yield
    with demo_engine.begin() as c:
        c.execute(sql("DELETE FROM assessment_qualitative WHERE period_key = '2026-10' AND comment LIKE 'zq-test%'"))


def _qual_count(demo_engine) -> int:
    with demo_engine.connect() as c:
        return c.execute(sql("SELECT count(*) FROM assessment_qualitative")).scalar_one()


def test_a_qualitative_score_changes_the_composite(app, demo_engine, officer, no_qualitative_left):
    c = client_as(app, demo_engine, "assessor", None, officer)
    before = {r["key"]: r for r in ranking(c, app)[ids.RANKING]["rowData"]}
    key = sorted(before)[0]
    res = save(c, app, key, "40", "zq-test 工作不够主动")
    assert "已保存" in _text(res[ids.Q_RESULT]["children"]) and res[ids.Q_VERSION]["data"] == 1
    # the saved score bumps the page's version: the ranking is read again, not from the cache
    after = {r["key"]: r for r in ranking(c, app, version=res[ids.Q_VERSION]["data"])[ids.RANKING]["rowData"]}
    assert after[key]["qualitative"] == 40
    assert after[key]["final"] == round(0.7 * before[key]["quantitative"] + 0.3 * 40, 2) != before[key]["final"]
    assert all(after[k]["final"] == before[k]["final"] for k in before if k != key)


@pytest.mark.parametrize("score,comment,lang,field,says", [
    ("abc", "zq-test x", "zh", "score", "0–100"),
    ("150", "zq-test x", "en", "score", "number from 0 to 100"),
    ("", "zq-test x", "zh", "score", "请填写定性得分"),
    ("80", "   ", "en", "comment", "needs a comment"),
    ("-5", "zq-test x", "zh", "score", "0–100"),
])
def test_a_bad_qualitative_score_is_said_and_nothing_written(app, demo_engine, officer, score, comment, lang, field,
                                                              says, no_qualitative_left):
    c = client_as(app, demo_engine, "assessor", None, officer)
    key = ranking(c, app)[ids.RANKING]["rowData"][0]["key"]
    n = _qual_count(demo_engine)
    res = save(c, app, key, score, comment, lang=lang)
    msg = res[ids.Q_RESULT]["children"]
    assert says in _text(msg) and msg["props"]["data-field"] == field and msg["props"]["role"] == "alert"
    assert _qual_count(demo_engine) == n


def test_only_assessors_enter_qualitative_scores(app, demo_engine, officer, no_qualitative_left):
    n = _qual_count(demo_engine)
    leader = client_as(app, demo_engine, "street_leader")
    key = ranking(leader, app)[ids.RANKING]["rowData"][0]["key"]
    res = save(leader, app, key, "90", "zq-test 很好")
    assert "无权" in _text(res[ids.Q_RESULT]["children"])
    # an assessor of one community may not score a block of another
    with demo_engine.connect() as cx:
        community, other = cx.execute(sql("SELECT code FROM grid WHERE level = 2 AND valid_to IS NULL ORDER BY code"
                                          " LIMIT 2")).scalars().all()
    with demo_engine.connect() as cx:
        local = client_as(app, demo_engine, "assessor", community, free_official(cx))
    foreign = other[:12] + "01"
    res = save(local, app, foreign, "90", "zq-test 很好", lang="en")
    assert "not yours to see" in _text(res[ids.Q_RESULT]["children"])
    # not linked to an official: no assessor of record
    unlinked = client_as(app, demo_engine, "assessor")
    res = save(unlinked, app, key, "90", "zq-test 很好", lang="en")
    assert "not linked to an official" in _text(res[ids.Q_RESULT]["children"])
    assert _qual_count(demo_engine) == n


# -- bulletins -----------------------------------------------------------------------------------------------
def _csrf(tree: Any) -> str:
    """The CSRF token of the first form in a component tree."""
    if isinstance(tree, dict):
        if tree.get("name") == "csrf_token" and tree.get("value"):
            return tree["value"]
        found = [_csrf(v) for v in tree.values()]
    elif isinstance(tree, list):
        found = [_csrf(v) for v in tree]
    else:
        return ""
    return next((f for f in found if f), "")


def test_the_bulletin_route_checks_who_and_what(app, demo_engine):
    c = client_as(app, demo_engine, "assessor")
    token = _csrf(ranking(c, app, chosen={"period": "2026-10", "level": "grid:3"})[ids.BULLETIN_PDF]["children"])
    assert token
    bad = c.post("/assessment/bulletin", data={"csrf_token": token, "period": "2026-13", "level": "3",
                                               "format": "pdf"})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "period"
    bad = c.post("/assessment/bulletin", data={"csrf_token": token, "period": "2026-10", "level": "3",
                                               "format": "doc"})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "format"
    bad = c.post("/assessment/bulletin", data={"csrf_token": "x", "period": "2026-10", "level": "3", "format": "pdf"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "csrf_token"
    leader = client_as(app, demo_engine, "street_leader")
    res = ranking(leader, app)
    assert res[ids.BULLETIN_PDF]["children"] == []   # no buttons for a viewer who may not issue
    own = _csrf(leader.get("/_dash-layout", headers={"Referer": "http://localhost/assessment"}).get_json())
    assert own   # the sign-out form's token: valid for this client
    r = leader.post("/assessment/bulletin", data={"csrf_token": own, "period": "2026-10", "level": "3",
                                                  "format": "pdf"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_capability"


def test_the_bulletin_button_issues_the_months_pdf_and_workbook(app, demo_engine):
    c = client_as(app, demo_engine, "assessor")
    chosen = {"period": "2025-12", "level": "grid:3"}   # a month no other test issues
    token = _csrf(ranking(c, app, chosen=chosen)[ids.BULLETIN_PDF]["children"])
    with demo_engine.connect() as cx:
        before = cx.execute(sql("SELECT count(*) FROM assessment_bulletin")).scalar_one()
    r = c.post("/assessment/bulletin", data={"csrf_token": token, "period": "2025-12", "level": "3", "format": "pdf"})
    assert r.status_code == 200 and r.data[:5] == b"%PDF-" and r.mimetype == "application/pdf"
    assert 'filename="bulletin-2025-12-L3-' in r.headers["Content-Disposition"]
    with demo_engine.connect() as cx:
        assert cx.execute(sql("SELECT count(*) FROM assessment_bulletin")).scalar_one() == before + 1


def test_a_kpi_number_opens_the_levels_records(app, demo_engine, db):
    """A KPI tile (the level's total) opens every record behind it: for 上报数, October's cases of
    all blocks, counted here in SQL; a rate's numerator and denominator give the tile's value."""
    c = client_as(app, demo_engine, "street_leader")
    res = ranking(c, app)
    kpis = _text(res[ids.KPIS]["children"])
    assert "indicator=reported" in kpis and "period=2026-10" in kpis   # each tile is a link to its records

    out_key = next(o for o, cb in app.callback_map.items()
                   if "callback" in cb and any(d["id"] == ids.OPEN_TRACE for d in cb["inputs"]))

    def opened(indicator: str) -> str:
        out = post(c, app, out_key, {f"{ids.OPEN_TRACE}.data": {"indicator": indicator},
                                                          f"{ids.CHOSEN}.data": OCT, f"{ids.Q_VERSION}.data": 0,
                                                          f"{app_ids.LANG}.value": "zh"},
                   trigger=f"{ids.OPEN_TRACE}.data")
        assert out[ids.TRACE]["is_open"] is True and ids.SUBJECT not in out   # no subject picked by it
        return _text(out[ids.TRACE_BODY]["children"])

    counted = db.execute(sql("""SELECT count(*) FROM issue WHERE reported_at >= '2026-10-01 00:00:00+08'
        AND reported_at < '2026-11-01 00:00:00+08'""")).scalar_one()
    body = opened("reported")
    assert int(re.search(r'"data-count": "(\d+)"', body)[1]) == counted > 100
    num, den = (int(x) for x in re.findall(r'"data-count": "(\d+)"', opened("on_time_rate")))
    assert den > 0 and f"{100 * num / den:.2f}%" in kpis   # the tile's own value
