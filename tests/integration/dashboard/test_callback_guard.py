"""Every malformed Dash callback request is a 4xx JSON error, for every callback the app registers.

The callbacks are enumerated from ``app.callback_map`` (a page added later is covered without a
change here). Each request goes through Flask's test client to the real app on the demo database;
each test checks the answer's status and error format, that the log got exactly one line with no
traceback, that neither the answer nor the log repeats the raw input, and that no table changed.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from dash._utils import split_callback_id
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import text as sql

from dashboard import guard
from dashboard.components import ids as app_ids
from dashboard.pages.assessment import ids as assessment_ids
from dashboard.pages.map import ids
from dashboard.pages.planner import ids as planner_ids
from geodata.settings import Settings
from tests.world import sign_in_every_client

PATH = "/_dash-update-component"
MARK = "zq-raw-marker"      # in every generated bad value: must never come back, nor reach the log
ABSENT = object()           # a property the browser has no value for: the renderer drops 'value'
TABLES = ("grid", "official", "grid_assignment", "domain", "issue", "issue_event", "issue_photo",
          "patrol_diary", "activity", "outbox", "idempotency_key")
CJK = re.compile(r"[\u4e00-\u9fff]")

#: properties whose values are free text (a string of any content is valid there)
FREE_TEXT = {(app_ids.URL, "search"), (ids.VIEW_SOURCE, "data"), (ids.SEARCH, "search_value"), (app_ids.STAMP, "data"),
             (planner_ids.REASON, "value"),
             (planner_ids.UPLOAD, "filename"),
             (assessment_ids.URL, "search"),   # a link's query: parsed on the server, invalid values named   # any name: its suffix is checked by the import (a message)
             # the assessment page's 定性 form: checked by geodata (a bilingual message in the form)
             (assessment_ids.Q_SCORE, "value"), (assessment_ids.Q_COMMENT, "value")}
#: boolean properties
BOOLEAN = {(ids.F_OVERDUE, "value"), (app_ids.OUTAGE, "data")}

#: values no property accepts (a bool is fine where a bool belongs; a string where free text does)
BAD_VALUES: dict[str, Any] = {
    "bool": True,
    "int beyond 64 bits": 2**70,
    "negative": -1,
    "fraction": 0.5,
    "NaN-ish string": f"NaN {MARK}",
    "list instead of a value": [MARK, 2**70],
    "dict": {MARK: [2**70]},
    "100 kB string": MARK + "x" * 100_000,
}


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(demo_app_url, demo_app_engine, demo_engine, tmp_path_factory):
    from dashboard import create_dash
    from dashboard.api import register_api

    settings = Settings(database_url=demo_app_url, basemap_url="", basemap_path=None,
                        var_dir=tmp_path_factory.mktemp("var"))
    dash_app = create_dash(settings, demo_app_engine)
    register_api(dash_app.server, settings, demo_app_engine)   # as app.create_app wires it
    sign_in_every_client(dash_app.server, demo_engine)     # the command centre (the guard is the subject)
    assert dash_app.server.test_client().get("/").status_code == 200   # Dash's first-request set-up
    return dash_app


@pytest.fixture(scope="module")
def client(app):
    return app.server.test_client()


def row_counts(engine) -> dict[str, int]:
    with engine.connect() as c:
        return {t: c.execute(sql(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


@pytest.fixture
def unchanged(demo_engine) -> Iterator[None]:
    before = row_counts(demo_engine)
    yield
    assert row_counts(demo_engine) == before


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def server_callbacks(app) -> list[tuple[str, dict[str, Any]]]:
    cbs = [(out, cb) for out, cb in app.callback_map.items() if "callback" in cb]
    assert len(cbs) >= 14   # the map page's; more as pages are added
    return cbs


def dep_names(cb: dict[str, Any]) -> list[str]:
    return [f"{d['id']}.{d['property']}" for d in cb["inputs"] + cb["state"]]


def payload(output: str, cb: dict[str, Any], values: dict[int, Any] | None = None) -> dict[str, Any]:
    """A request as dash-renderer sends it; ``values`` by position in inputs + state (default: none)."""
    values = values or {}

    def item(i: int, dep: dict[str, Any]) -> dict[str, Any]:
        d = {"id": dep["id"], "property": dep["property"]}
        if values.get(i, ABSENT) is not ABSENT:
            d["value"] = values[i]
        return d

    n = len(cb["inputs"])
    body: dict[str, Any] = {
        "output": output, "outputs": split_callback_id(output),
        "inputs": [item(i, d) for i, d in enumerate(cb["inputs"])],
        "changedPropIds": [f"{cb['inputs'][0]['id']}.{cb['inputs'][0]['property']}"],
    }
    body["parsedChangedPropsIds"] = list(body["changedPropIds"])
    if cb["state"]:
        body["state"] = [item(n + i, d) for i, d in enumerate(cb["state"])]
    return body


def post(client, body: Any = None, *, data: bytes | str | None = None,
         content_type: str = "application/json"):
    return client.post(PATH, data=json.dumps(body) if data is None else data, content_type=content_type)


def assert_rejected(resp, log, field: str | None = None, status: int | None = None) -> dict[str, Any]:
    """A 4xx in the API's error format naming ``field``; one log line, no traceback, no raw input."""
    text = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, text[:300])
    if status is not None:
        assert resp.status_code == status, text[:300]
    assert resp.mimetype == "application/json"
    err = resp.get_json()["error"]
    assert set(err) >= {"code", "message_zh", "message_en", "field"}
    assert CJK.search(err["message_zh"]) and err["message_en"] and err["code"]
    if field is not None:
        assert err["field"] == field or str(err["field"]).startswith(field + "."), (field, err)
    assert MARK not in text
    # refused by the guard, or (size) by dashboard.api.limits before it
    lines = [r for r in log.records if r.name in (guard.log.name, "gridwatch.http")]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in log.records]
    assert "Traceback" not in log.text and MARK not in log.text
    assert not any(r.levelno >= logging.ERROR for r in log.records), log.text[-2000:]
    return err


def assert_served(resp, log) -> None:
    assert resp.status_code in (200, 204), (resp.status_code, resp.get_data(as_text=True)[:500])
    assert "Traceback" not in log.text and not [r for r in log.records if r.name == guard.log.name]


# -- valid requests still work --------------------------------------------------------------------
def test_every_callback_serves_a_request_without_values(app, client, log, unchanged):
    """The browser sends no value (or null) for a property not set yet: always valid."""
    for output, cb in server_callbacks(app):
        log.clear()
        assert_served(post(client, payload(output, cb)), log)
        nulls = dict.fromkeys(range(len(dep_names(cb))))
        log.clear()
        assert_served(post(client, payload(output, cb, nulls)), log)


def test_realistic_requests_are_served(app, client, log, unchanged, db):
    from dashboard.pages.map.presenters import filter_from_controls

    code = db.execute(sql("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL "
                          "ORDER BY code LIMIT 1")).scalar_one()
    issue = db.execute(sql("SELECT id FROM issue ORDER BY id LIMIT 1")).scalar_one()
    flt = filter_from_controls("problem", ["safety"], ["reported"], "custom", True, "per_km2",
                                  "2026-01-01", "2026-11-27")
    filter_out = "..map-filter.data...map-f-date.value.."
    select_out = ("..map-selected.data...map-leaflet.viewport...map-breadcrumb.children...map-layer-community.hideout"
                  "...map-layer-block.hideout...map-layer-markers.hideout..")
    timeline_out = next(o for o in app.callback_map if o.startswith(
        "..map-timeline.is_open...map-timeline-title.children...map-timeline-body.children...app-url.search@"))
    markers_out = "..map-layer-markers.data...map-layer-bins.data...map-marker-note.children.."
    cell = {"value": "x", "colId": "title", "rowIndex": 0, "rowId": str(issue), "timestamp": 1764000000000}
    selected = {"code": code, "level": 3, "parent": code[:11] + "000", "bbox": [113.6, 34.7, 113.7, 34.8],
                "issue": issue}
    cases = [
        (filter_out, {0: "problem", 1: ["safety"], 2: ["reported"], 3: "custom", 4: True, 5: "per_km2",
                      6: "2026-01-01", 7: "2026-11-27T00:00:00", 8: flt}),
        (select_out, {0: f"?grid={code}&issue={issue}", 1: 3, 2: "en", 3: "1|2|3|4"}),
        (timeline_out, {0: cell, 1: None, 2: None, 3: f"?grid={code}", 4: "zh"}),
        (timeline_out, {0: None, 1: {"id": issue, "n": 3}, 2: None, 3: "", 4: "en"}),
        (markers_out, {0: [[34.70, 113.60], [34.80, 113.70]], 1: flt, 2: "s", 3: selected, 4: "zh"}),
    ]
    for output, values in cases:
        log.clear()
        resp = post(client, payload(output, app.callback_map[output], values))
        assert_served(resp, log)
        assert resp.status_code == 200 and "response" in resp.get_json()
        if output == timeline_out and values[0]:   # the timeline opened on the clicked issue
            assert resp.get_json()["response"][ids.TIMELINE]["is_open"] is True, resp.get_json()


# -- malformed values -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(BAD_VALUES))
def test_every_input_refuses_a_bad_value(app, client, log, unchanged, kind):
    bad = BAD_VALUES[kind]
    checked = 0
    for output, cb in server_callbacks(app):
        deps = cb["inputs"] + cb["state"]
        for i, name in enumerate(dep_names(cb)):
            key = (deps[i]["id"], deps[i]["property"])
            log.clear()
            resp = post(client, payload(output, cb, {i: bad}))
            if (kind == "bool" and key in BOOLEAN) or (kind == "NaN-ish string" and key in FREE_TEXT):
                assert_served(resp, log)    # valid there
                continue
            assert_rejected(resp, log, field=name, status=422)
            checked += 1
    assert checked > 30


def test_nan_and_infinity_literals_are_refused(app, client, log, unchanged):
    out = "..map-layer-markers.data...map-layer-bins.data...map-marker-note.children.."
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps(payload(out, app.callback_map[out], {0: [[1.0, 2.0], [3.0, 4.0]]}))
        raw = raw.replace("[[1.0, 2.0]", f"[[{literal}, 2.0]")
        log.clear()
        assert_rejected(post(client, data=raw), log, field="map-view.data", status=422)


def test_ranges_and_nested_values_are_refused(app, client, log, unchanged):
    sel = "..map-selected.data...map-leaflet.viewport...map-breadcrumb.children...map-layer-community.hideout" \
          "...map-layer-block.hideout...map-layer-markers.hideout.."
    tl = next(o for o in app.callback_map if o.startswith(
        "..map-timeline.is_open...map-timeline-title.children...map-timeline-body.children...app-url.search@"))
    nav = "..map-url-nav.data...map-search.value...map-leaflet.viewport@"
    nav = next(o for o in app.callback_map if o.startswith(nav))
    choro = "..map-layer-choro-community.hideout...map-layer-choro-block.hideout...map-legend-choro.children.."
    cases = [
        (choro, {0: {"issue": 2**63}}, "map-selected.data.issue"),
        (choro, {0: {"issue": 0}}, "map-selected.data.issue"),
        (choro, {0: {"code": "1" * 15}}, "map-selected.data.code"),
        (tl, {0: {"rowId": str(2**63)}}, "map-issues.cellClicked.rowId"),
        (tl, {0: {"rowId": "²"}}, "map-issues.cellClicked.rowId"),
        (tl, {1: {"id": 2**63, "n": 1}}, "map-open-issue.data.id"),
        (tl, {1: {"id": 5, "n": 1, MARK: 1}}, "map-open-issue.data"),
        (nav, {2: f"issue:{2**64}:41010200100100"}, "map-search.value"),
        (sel, {1: 2**31}, "app-body-version.data"),
        ("..map-filter.data...map-f-date.value..", {6: "2026-02-30"}, "map-f-range.start_date"),
        ("..map-filter.data...map-f-date.value..", {8: {"statuses": ["reported", MARK]}},
         "map-filter.data.statuses.1"),
        (nav, {3: {"geometry": {"type": MARK, "coordinates": []}}}, "map-layer-community.clickData.geometry"),
        (nav, {4: {"geometry": {"type": "Polygon", "coordinates": [[[500.0, 1.0]]]}}},
         "map-layer-block.clickData.geometry"),
        (nav, {4: {"properties": {"code": "41010200100100", MARK: 1}}}, "map-layer-block.clickData.properties"),
        (nav, {0: -1}, "map-layer-community.n_clicks"),
    ]
    for output, values, field in cases:
        log.clear()
        resp = post(client, payload(output, app.callback_map[output], values))
        assert_rejected(resp, log, field=field, status=422)
        for v in values.values():    # not even the digits of a refused id come back
            leaf = v
            while isinstance(leaf, (dict, list)) and leaf:
                leaf = list(leaf.values())[-1] if isinstance(leaf, dict) else leaf[-1]
            assert str(leaf) not in resp.get_data(as_text=True) or len(str(leaf)) < 5
    # a URL is typed by people: an id out of range is ignored like any other junk in it
    log.clear()
    assert_served(post(client, payload(sel, app.callback_map[sel], {0: f"?issue={2**70}"})), log)
    log.clear()
    assert_served(post(client, payload(sel, app.callback_map[sel], {0: "?issue=²"})), log)


# -- malformed requests ---------------------------------------------------------------------------
def _mutations(app, output: str, cb: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(what, request body, the field its error must name) for one callback."""
    names = dep_names(cb)
    base = payload(output, cb)

    def edit(fn) -> dict[str, Any]:
        body = json.loads(json.dumps(base))
        fn(body)
        return body

    yield "missing input", edit(lambda b: b["inputs"].pop()), names[len(cb["inputs"]) - 1]
    yield "extra input", edit(lambda b: b["inputs"].append({"id": MARK, "property": "value"})), "inputs"
    yield "unknown input id", edit(lambda b: b["inputs"][0].update(id=MARK)), names[0]
    yield "unknown input property", edit(lambda b: b["inputs"][0].update(property=MARK)), names[0]
    yield "input without its property", edit(lambda b: b["inputs"][0].pop("property")), names[0]
    yield "unknown key in an input", edit(lambda b: b["inputs"][0].update({MARK: 1})), names[0]
    yield "inputs not a list", edit(lambda b: b.update(inputs={MARK: 1})), "inputs"
    if cb["state"]:
        first_state = names[len(cb["inputs"])]
        yield "missing state", edit(lambda b: b.pop("state")), "state"
        yield "wrong state id", edit(lambda b: b["state"][0].update(id=MARK)), first_state
        yield "extra state", edit(lambda b: b["state"].append({"id": app_ids.LANG, "property": "value"})), "state"
    else:
        yield "state where there is none", edit(lambda b: b.update(state=[])), "body"
    yield "unknown output", edit(lambda b: b.update(output=MARK + ".children")), "output"
    yield "output not a string", edit(lambda b: b.update(output=[MARK])), "output"
    clientside = next(o for o, c in app.callback_map.items() if "callback" not in c)
    yield "clientside output", edit(lambda b: b.update(output=clientside)), "output"
    other = next(o for o in app.callback_map if o not in (output, clientside))
    yield "outputs of another callback", edit(lambda b: b.update(outputs=split_callback_id(other))), "outputs"
    yield "outputs missing", edit(lambda b: b.pop("outputs")), "outputs"
    yield "unknown trigger", edit(lambda b: b.update(changedPropIds=[MARK + ".value"])), "changedPropIds"
    yield "missing output", edit(lambda b: b.pop("output")), "output"
    yield "missing inputs", edit(lambda b: b.pop("inputs")), "inputs"
    yield "unknown top-level key", edit(lambda b: b.update({MARK: [1]})), "body"


def test_every_callback_refuses_malformed_requests(app, client, log, unchanged):
    for output, cb in server_callbacks(app):
        for what, body, field in _mutations(app, output, cb):
            log.clear()
            try:
                assert_rejected(post(client, body), log, field=field, status=422)
            except AssertionError as exc:
                raise AssertionError(f"{output}: {what}: {exc}") from None


@pytest.mark.parametrize("what,data,content_type,status,field", [
    ("not JSON", f"{{{MARK}", "application/json", 400, "body"),
    ("empty body", "", "application/json", 400, "body"),
    ("a JSON array", json.dumps([MARK]), "application/json", 422, "body"),
    ("a JSON string", json.dumps(MARK), "application/json", 422, "body"),
    ("lone surrogate", '{"output": "\\ud800' + MARK + '"}', "application/json", 400, "body"),
    ("deep nesting", '{"output": "x", "inputs": ' + "[" * 5000 + "]" * 5000 + "}", "application/json",
     400, "body"),
    ("form-encoded", f"output={MARK}", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ("plain text", json.dumps({"output": MARK}), "text/plain", 415, "Content-Type"),
])
def test_envelope_errors(client, log, unchanged, what, data, content_type, status, field):
    assert_rejected(post(client, data=data, content_type=content_type), log, field=field, status=status)


def test_payload_size_is_capped(app, client, log, unchanged):
    cap = Settings().max_callback_bytes
    out, cb = server_callbacks(app)[0]
    body = json.dumps(payload(out, cb))
    big = body[:-1] + ', "pad": "' + MARK + "x" * cap + '"}'
    assert_rejected(post(client, data=big), log, field="body", status=413)
    # just under the cap: read and checked (the unknown key is refused, not the size)
    log.clear()
    fits = body[:-1] + ', "pad": "' + "x" * (cap - len(body) - 20) + '"}'
    assert len(fits.encode()) <= cap
    assert_rejected(post(client, data=fits), log, field="body", status=422)


def test_only_post(client, log):
    resp = client.get(PATH)
    assert_rejected(resp, log, status=405)
    assert resp.headers["Allow"] == "POST"


# -- breadth: generated requests ------------------------------------------------------------------
def _vocabulary() -> tuple[list[str], list[Any]]:
    """Object keys and enumerated values of every value type: near-valid values come from them."""
    keys: set[str] = {"id", "property", "value"}
    consts: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            consts.extend(node.get("enum", []))
            if "const" in node:
                consts.append(node["const"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for t in guard.VALUES.values():
        walk(TypeAdapter(t).json_schema())
    return sorted(keys), consts


KEYS, CONSTS = _vocabulary()
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, -1]),
    st.floats(), st.floats(-180, 180), st.text(max_size=20), st.sampled_from(CONSTS),
    st.dates().map(lambda d: d.isoformat()), st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    st.from_regex(r"(grid:|issue:[0-9]{1,20}:)[0-9]{14}", fullmatch=True),
    st.just(MARK + "y" * 70_000))
json_values = st.recursive(
    _scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                      st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                      inner, max_size=5)),
    max_leaves=12)


def _accepts(key: tuple[str, str], value: Any) -> bool:
    try:
        TypeAdapter(guard.VALUES[key] | None).validate_json(json.dumps(value), strict=True)
        return True
    except ValidationError:
        return False


@hsettings(max_examples=120, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_requests_never_fail_the_server(app, client, log, demo_engine, data):
    before = row_counts(demo_engine)
    output, cb = data.draw(st.sampled_from(server_callbacks(app)), label="callback")
    deps = cb["inputs"] + cb["state"]
    values = {i: data.draw(st.one_of(st.just(ABSENT), json_values), label=dep_names(cb)[i])
              for i in range(len(deps))}
    log.clear()
    resp = post(client, payload(output, cb, values))
    refused = [name for i, name in enumerate(dep_names(cb))
               if values[i] is not ABSENT and not _accepts((deps[i]["id"], deps[i]["property"]), values[i])]
    event("refused" if refused else "served")
    if refused:
        assert_rejected(resp, log, field=refused[0], status=422)
    else:
        assert_served(resp, log)
    assert row_counts(demo_engine) == before
