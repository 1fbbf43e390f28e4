"""Map benchmark: time to a drawn map, p95 of each map query and Dash callback, viewport payload
growth from the demo data to 10× and 100× more issues. Writes bench/results/map.json.

Runs in a scratch database (``gridwatch_bench_map``) on the configured server (the embedded cluster
unless GRIDWATCH_DATABASE_URL is set); the demo data is loaded there, then issues generated with SQL
``generate_series`` inside the street polygon. Targets (issue #3): payload ≤ 500 KB and ≤ 1.5×
from demo to 100×; map callback p95 ≤ 150 ms on the demo data; page open to drawn map ≤ 3 s.

    python -m bench map [--quick] [--keep]
"""
from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import plotly
from sqlalchemy import Engine, create_engine, text

RESULTS = Path(__file__).resolve().parent / "results" / "map.json"
DB_NAME = "gridwatch_bench_map"
CHROMIUM = "/usr/bin/chromium"


def _tz():
    from geodata.clock import zone
    from geodata.settings import DEFAULT_TIMEZONE

    return zone(DEFAULT_TIMEZONE)


TZ = _tz()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TARGETS = {"payload_max_bytes": 500_000, "payload_growth_max": 1.5, "callback_p95_ms": 150,
           "open_to_drawn_s": 3.0}


def p95(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)]


def _summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(p95(ms), 1),
            "max_ms": round(max(ms), 1)}


def generate_issues(engine: Engine, n: int) -> float:
    """n more issues, uniformly inside the street polygon, each in the block that contains it
    (``engine``: the owner's, working in every grid's scope)."""
    from geodata.access import rls
    from geodata.access.scope import Scope

    t0 = time.perf_counter()
    with engine.begin() as conn:
        rls.apply(conn, Scope.everything())   # row-level security: the numbering counts every issue
        conn.execute(text("""
            WITH street AS (SELECT geom FROM grid WHERE level = 1 AND valid_to IS NULL LIMIT 1),
            pts AS (SELECT (ST_Dump(ST_GeneratePoints(street.geom, :n, 7))).geom AS p FROM street),
            located AS (SELECT p, g.code, g.parent_code, row_number() OVER () AS k
                        FROM pts JOIN grid g ON g.level = 3 AND g.valid_to IS NULL AND ST_Intersects(g.geom, p))
            INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code,
                               community_code, status, reported_at, due_at, closed_at, updated_at, synthetic)
            SELECT 'BENCH' || lpad((k + (SELECT count(*) FROM issue))::text, 10, '0'),
                   CASE WHEN k % 4 = 0 THEN 'sentiment' ELSE 'problem' END,
                   (ARRAY['safety','sanitation','city_order','disputes','public_security','livelihood',
                          'illegal_building'])[1 + (k % 7)],
                   '生成的问题 ' || k || '：路面破损需要修复，请尽快处理', '', 'patrol', p, code, parent_code,
                   CASE WHEN k % 50 = 0 THEN 'handling' ELSE 'closed' END,
                   now() - (k % 365) * interval '1 day', now() - (k % 365) * interval '1 day' + interval '5 days',
                   CASE WHEN k % 50 = 0 THEN NULL ELSE now() - (k % 365) * interval '1 day' + interval '3 days' END,
                   now(), true
            FROM located"""), {"n": n})
        conn.execute(text("ANALYZE issue"))
    return time.perf_counter() - t0


# -- query timings -------------------------------------------------------------------------------
def time_queries(engine: Engine, scope: Any, reps: int) -> dict[str, Any]:
    from dashboard.tiles import render_heat_png
    from geodata.db import open_session
    from geodata.maps import heat as map_heat
    from geodata.maps import layers as map_layers
    from geodata.maps import live as map_live
    from geodata.maps import markers as map_markers
    from geodata.maps import metrics as map_metrics
    from geodata.maps import search as map_search
    from geodata.workflow import queries
    from geodata.workflow.filters import IssueFilter

    flt = IssueFilter()
    problem_week = IssueFilter(kind="problem", preset="month")
    with open_session(engine, scope=scope) as s:
        street = map_layers.street_code(s, scope)
        sd = map_layers.grid_detail(s, scope, street)
        community = map_layers.grid_layer(s, scope, 2)["features"][0]["properties"]["code"]
        cd = map_layers.grid_detail(s, scope, community)
        block = map_layers.grid_layer(s, scope, 3)["features"][0]["properties"]["code"]
        issue_id = queries.latest_issues(s, scope, flt, None, 1, tz=TZ)[0].id
        z = 15
        n = 2 ** z
        lon, lat = (sd.bbox[0] + sd.bbox[2]) / 2, (sd.bbox[1] + sd.bbox[3]) / 2
        tx = int((lon + 180) / 360 * n)
        ty = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        scale = map_heat.heat_scale(s, scope, flt, tz=TZ)
        cases: dict[str, Callable[[], Any]] = {
            "grid_layer_l2": lambda: map_layers.grid_layer(s, scope, 2),
            "grid_layer_l3": lambda: map_layers.grid_layer(s, scope, 3),
            "grid_detail_block": lambda: map_layers.grid_detail(s, scope, block),
            "grid_metrics_street": lambda: map_metrics.grid_metrics(s, scope, flt, 2, street, tz=TZ),
            "grid_metrics_community": lambda: map_metrics.grid_metrics(s, scope, flt, 3, community, tz=TZ),
            "grid_counts_street": lambda: map_metrics.grid_counts(s, scope, flt, street, tz=TZ),
            "grid_counts_filtered": lambda: map_metrics.grid_counts(s, scope, problem_week, community, tz=TZ),
            "latest_issues": lambda: queries.latest_issues(s, scope, flt, community, 50, tz=TZ),
            "markers_street": lambda: map_markers.markers(s, scope, flt, sd.bbox, 2000, tz=TZ),
            "markers_community": lambda: map_markers.markers(s, scope, flt, cd.bbox, 2000, tz=TZ),
            "heat_scale": lambda: map_heat.heat_scale(s, scope, flt, tz=TZ),
            "heat_tile": lambda: render_heat_png(map_heat.heat_grid(s, scope, flt, z, tx, ty, tz=TZ), scale),
            "search": lambda: map_search.search(s, scope, "社区", 8),
            "issue_timeline": lambda: queries.issue_detail(s, scope, issue_id),
            "latest_change": lambda: map_live.latest_change(s, scope),
        }
        out = {}
        for name, fn in cases.items():
            fn()  # warm
            ms = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                ms.append((time.perf_counter() - t0) * 1000)
            out[name] = _summary(ms)
    return out


def time_callback_bodies(engine: Engine, settings: Any, ctx: Any, reps: int) -> dict[str, Any]:
    """Each map callback's body as Dash runs it (mapdata queries + shaping + Dash's JSON encoding),
    one at a time: the server cost without browser rendering competing for the CPUs."""
    import dash._utils as dash_utils

    from dashboard.pages.map import callbacks as cb
    from dashboard.pages.map.presenters import filter_from_controls
    from dashboard.services import Services
    from geodata.db import open_session
    from geodata.maps import layers as map_layers
    from geodata.workflow import filters, queries

    svc = Services(engine=engine, settings=settings)

    def at(lang: str):   # the signed-in viewer's context, in the page's language
        return ctx.with_lang(lang)

    scope = ctx.scope
    with open_session(engine, scope=scope) as s:
        street = map_layers.street_code(s, scope)
        sd = map_layers.grid_detail(s, scope, street)
        community = map_layers.grid_layer(s, scope, 2)["features"][0]["properties"]["code"]
        cd = map_layers.grid_detail(s, scope, community)
        issue_id = queries.latest_issues(s, scope, filters.IssueFilter(), community, 1, tz=TZ)[0].id
    sel_street = {"code": street, "level": 1, "parent": None, "bbox": list(sd.bbox)}
    sel_comm = {"code": community, "level": 2, "parent": street, "bbox": list(cd.bbox)}
    w, so, e, n = sd.bbox
    cw, cs, ce, cn = cd.bbox
    flt = filter_from_controls("problem", [], [], "year", False, "overdue_open")
    cases: dict[str, Callable[[], Any]] = {
        "select(url)": lambda: cb.selection_outputs(svc, at("zh"), f"?grid={community}"),
        "choropleth(street)": lambda: cb.choropleth_outputs(svc, at("zh"), sel_street, None),
        "choropleth(community, filter)": lambda: cb.choropleth_outputs(svc, at("zh"), sel_comm, flt),
        "markers(street)": lambda: cb.marker_outputs(svc, at("zh"), [[so, w], [n, e]], None, sel_street),
        "markers(community)": lambda: cb.marker_outputs(svc, at("zh"), [[cs, cw], [cn, ce]], None, sel_comm),
        "markers(community, filter)": lambda: cb.marker_outputs(svc, at("zh"), [[cs, cw], [cn, ce]], flt, sel_comm),
        "heat(url, legend)": lambda: cb.heat_outputs(svc, at("zh"), flt, str(time.perf_counter())),
        "panel(street)": lambda: cb.panel_outputs(svc, at("zh"), sel_street, None),
        "panel(community, filter)": lambda: cb.panel_outputs(svc, at("zh"), sel_comm, flt),
        "timeline": lambda: cb.timeline_outputs(svc, at("zh"), issue_id),
        "search": lambda: cb.search_outputs(svc, at("zh"), "社区"),
        "live": lambda: cb.live_outputs(svc, at("zh"), "x"),
        "body(lang switch)": lambda: cb.body_outputs(svc, at("en"), None),
    }
    out = {}
    for name, fn in cases.items():
        dash_utils.to_json(fn())
        ms = []
        for _ in range(reps):
            t0 = time.perf_counter()
            dash_utils.to_json(fn())
            ms.append((time.perf_counter() - t0) * 1000)
        out[name] = _summary(ms)
    return out


# -- payloads ------------------------------------------------------------------------------------
def _dash_json(value: Any) -> int:
    return len(json.dumps(value, cls=plotly.utils.PlotlyJSONEncoder).encode())


def viewport_payloads(engine: Engine, settings: Any, ctx: Any) -> dict[str, Any]:
    """Bytes of the map callbacks' outputs (as Dash serialises them) for three viewports."""
    from dashboard.pages.map.callbacks import choropleth_outputs, marker_outputs
    from dashboard.services import Services
    from geodata.db import open_session
    from geodata.maps import layers as map_layers

    svc = Services(engine=engine, settings=settings)
    scope = ctx.scope
    with open_session(engine, scope=scope) as s:
        street = map_layers.street_code(s, scope)
        sd = map_layers.grid_detail(s, scope, street)
        community = map_layers.grid_layer(s, scope, 2)["features"][0]["properties"]["code"]
        cd = map_layers.grid_detail(s, scope, community)
        block = next(f["properties"]["code"] for f in map_layers.grid_layer(s, scope, 3)["features"]
                 if f["properties"]["parent_code"] == community)
        bd = map_layers.grid_detail(s, scope, block)
        total = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
    out: dict[str, Any] = {"issues": total}
    for name, d in (("street", sd), ("community", cd), ("block", bd)):
        w, so, e, n = d.bbox
        sel = {"code": d.code, "level": d.level, "parent": d.parent_code, "bbox": list(d.bbox)}
        pts, bins, note = marker_outputs(svc, ctx, [[so, w], [n, e]], None, sel)
        choro = choropleth_outputs(svc, ctx, sel, None)
        markers_b = _dash_json([pts, bins, note])
        out[name] = {"markers_bytes": markers_b, "choropleth_bytes": _dash_json(list(choro)),
                     "total_bytes": markers_b + _dash_json(list(choro)),
                     "mode": "points" if pts["features"] else "bins",
                     "features": len(pts["features"]) or len(bins["features"])}
    return out


# -- browser -------------------------------------------------------------------------------------
class _Server:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app.server, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def browser_timings(settings: Any, engine: Engine, session_cookie: str, scope: Any, opens: int,
                    rounds: int) -> dict[str, Any]:
    """Open → drawn map (cold browser context each time, signed in with ``session_cookie``), and the
    round trip of every ``_dash-update-component`` call while drilling down, filtering and switching
    metric."""
    import logging

    from playwright.sync_api import sync_playwright

    from dashboard import create_dash
    from dashboard.auth import SESSION_COOKIE
    from geodata.db import open_session
    from geodata.maps import layers as map_layers

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_dash(settings, engine)
    server_ms: dict[str, list[float]] = defaultdict(list)

    import flask

    @app.server.before_request
    def _t0() -> None:
        flask.g.gw_t0 = time.perf_counter()

    @app.server.after_request
    def _t1(resp):
        if flask.request.path.startswith("/_dash-update-component"):
            body = flask.request.get_json(silent=True) or {}
            key = str(body.get("output", "?")).strip(".").split("...")[0][:80]
            server_ms[key].append((time.perf_counter() - flask.g.gw_t0) * 1000)
        return resp

    server = _Server(app)
    with open_session(engine, scope=scope) as s:
        communities = [f["properties"]["code"] for f in map_layers.grid_layer(s, scope, 2)["features"]]
        blocks = {f["properties"]["parent_code"]: f["properties"]["code"]
                  for f in map_layers.grid_layer(s, scope, 3)["features"]}
    calls: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, list[int]] = defaultdict(list)
    opens_s: list[float] = []
    # predicates are functions: the page's CSP forbids the eval Playwright uses for string expressions
    cookie = {"name": SESSION_COOKIE, "value": session_cookie, "url": server.url, "httpOnly": True,
              "secure": True, "sameSite": "Lax"}   # as the sign-in page sets it
    drawn_js = ("() => document.querySelectorAll('path.gw-grid-l2').length === 14 && "
                "document.querySelectorAll('.gw-bin, .gw-cluster, .gw-marker').length > 0")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for _ in range(opens):
                ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                ctx.add_cookies([cookie])
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(server.url + "/")
                page.wait_for_function(drawn_js, timeout=30000, polling=20)
                opens_s.append(time.perf_counter() - t0)
                ctx.close()

            ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
            ctx.add_cookies([cookie])
            page = ctx.new_page()

            def on_finished(req):
                if "_dash-update-component" not in req.url:
                    return
                try:
                    body = json.loads(req.post_data or "{}")
                    output = body.get("output", "?")
                    timing = req.timing
                    ms = timing["responseEnd"] - timing["requestStart"]
                    resp = req.response()
                    size = len(resp.body()) if resp else 0
                except Exception:
                    return
                key = output.strip(".").split("...")[0][:80]
                calls[key].append(ms)
                sizes[key].append(size)

            page.on("requestfinished", on_finished)
            page.goto(server.url + "/")
            page.wait_for_function(drawn_js, timeout=30000)

            def settle() -> None:
                page.wait_for_timeout(150)
                page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')",
                                       timeout=30000)

            for r in range(rounds):
                c = communities[r % len(communities)]
                page.locator(f"path.gw-grid-{c}").dispatch_event("click")
                settle()
                page.locator(f"path.gw-grid-{blocks[c]}").dispatch_event("click")
                settle()
                page.locator("#map-f-kind label").nth(1 + r % 2).click()
                settle()
                page.locator("#map-f-date").click()   # a dropdown: open it, pick a period
                page.get_by_role("option").nth(r % 5).click()
                settle()
                page.locator("#map-f-overdue").click()
                settle()
                page.locator("#map-f-overdue").click()
                settle()
                page.go_back()
                settle()
            browser.close()
    finally:
        server.stop()
    per_cb = {k: {**_summary(v), "max_response_bytes": max(sizes[k]),
                  "server_p95_ms": round(p95(server_ms[k]), 1) if server_ms.get(k) else None}
              for k, v in sorted(calls.items())}
    return {"open_to_drawn_s": {"n": len(opens_s), "median": round(statistics.median(opens_s), 3),
                                "max": round(max(opens_s), 3)},
            "callbacks": per_cb}


# -- history size: demo, 10⁵, 10⁶ issues in one run ------------------------------------------------
SCALE_RESULTS = Path(__file__).resolve().parent / "results" / "map_scale.json"
SCALE_DB = "gridwatch_bench_map_scale"
SCALE_SIZES = (100_000, 1_000_000)


def scale_cases(s: Any, scope: Any) -> dict[str, Callable[[], Any]]:
    """The map's data queries whose cost could grow with the history; ``*_raw`` is the same count
    read from every issue row (the baseline, ``use_rollup=False``), measured beside it."""
    from dashboard.tiles import render_heat_png
    from geodata.maps import heat as map_heat
    from geodata.maps import layers as map_layers
    from geodata.maps import live as map_live
    from geodata.maps import markers as map_markers
    from geodata.maps import metrics as map_metrics
    from geodata.maps import search as map_search
    from geodata.workflow.filters import IssueFilter

    flt = IssueFilter()
    year = IssueFilter(kind="problem", preset="year")
    street = map_layers.street_code(s, scope)
    sd = map_layers.grid_detail(s, scope, street)
    community = map_layers.grid_layer(s, scope, 2)["features"][0]["properties"]["code"]
    z = 15
    n = 2 ** z
    lon, lat = (sd.bbox[0] + sd.bbox[2]) / 2, (sd.bbox[1] + sd.bbox[3]) / 2
    tx = int((lon + 180) / 360 * n)
    ty = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    scale = map_heat.heat_scale(s, scope, flt, tz=TZ)
    out: dict[str, Callable[[], Any]] = {}
    for name, f in (("", flt), ("_year", year)):
        for raw in (False, True):
            sfx = name + ("_raw" if raw else "")
            out[f"choropleth_street{sfx}"] = (lambda f=f, raw=raw: map_metrics.grid_metrics(
                s, scope, f, 2, street, tz=TZ, use_rollup=not raw))
            out[f"choropleth_community{sfx}"] = (lambda f=f, raw=raw: map_metrics.grid_metrics(
                s, scope, f, 3, community, tz=TZ, use_rollup=not raw))
            out[f"panel_counts_street{sfx}"] = (lambda f=f, raw=raw: map_metrics.grid_counts(
                s, scope, f, street, tz=TZ, use_rollup=not raw))
    out.update({
        "markers_street": lambda: map_markers.markers(s, scope, flt, sd.bbox, 2000, tz=TZ),
        "markers_street_year": lambda: map_markers.markers(s, scope, year, sd.bbox, 2000, tz=TZ),
        "heat_tile": lambda: render_heat_png(map_heat.heat_grid(s, scope, flt, z, tx, ty, tz=TZ), scale),
        # z17: finer than a cell, read from the rows in the tile
        "heat_tile_z17": lambda: render_heat_png(map_heat.heat_grid(s, scope, flt, z + 2, 4 * tx + 1, 4 * ty + 1,
                                                                    tz=TZ), scale),
        "heat_scale": lambda: map_heat.heat_scale(s, scope, flt, tz=TZ),
        "search_title": lambda: map_search.search(s, scope, "垃圾", 8),
        "search_number": lambda: map_search.search(s, scope, "2026000", 8),
        "live_stamp": lambda: map_live.latest_change(s, scope),
    })
    return out


def heat_tile_http(settings: Any, engine: Engine, session_cookie: str, scope: Any, reps: int) -> dict[str, Any]:
    """A z15 heat tile at the street's centre through the server, as the browser asks for it
    (``/tiles/heat/…png?v=<live stamp>``, signed in): uncached — a new data version each time, so
    the tile is computed — and cached (the same URL again: the server's tile cache). Each with the
    request's whole path: the session gate, the viewer's context, the response."""
    from dashboard import create_dash
    from dashboard.auth import SESSION_COOKIE
    from geodata.db import open_session
    from geodata.maps import layers as map_layers

    with open_session(engine, scope=scope) as s:
        sd = map_layers.grid_detail(s, scope, map_layers.street_code(s, scope))
    z, n = 15, 2 ** 15
    lon, lat = (sd.bbox[0] + sd.bbox[2]) / 2, (sd.bbox[1] + sd.bbox[3]) / 2
    tx = int((lon + 180) / 360 * n)
    ty = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    client = create_dash(settings, engine).server.test_client()
    client.set_cookie(SESSION_COOKIE, session_cookie)
    url = f"/tiles/heat/{z}/{tx}/{ty}.png"
    times: dict[str, list[float]] = {"uncached": [], "cached": []}
    for i in range(reps + 3):
        for kind, version in (("uncached", f"bench-{i}"), ("cached", "bench-cached")):
            t0 = time.perf_counter()
            r = client.get(url, query_string={"v": version})
            ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200 and r.mimetype == "image/png", r.status_code
            if i >= 3:
                times[kind].append(ms)
    return {k: _summary(v) for k, v in times.items()}


def _time_cases(cases: dict[str, Callable[[], Any]], reps: int) -> dict[str, Any]:
    out = {}
    for name, fn in cases.items():
        fn()
        ms = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1000)
        out[name] = _summary(ms)
    return out


def explain_rollup(engine: Engine, scope: Any) -> dict[str, str]:
    """EXPLAIN ANALYZE of the street choropleth's three statements (open issues, closed totals) as
    the app role runs them: proof of the indexes they use."""
    from sqlalchemy.dialects import postgresql

    from geodata.db import open_session
    from geodata.maps import layers as map_layers
    from geodata.maps import metrics as map_metrics

    captured: list[Any] = []
    with open_session(engine, scope=scope) as s:
        street = map_layers.street_code(s, scope)
        real = s.execute

        def spy(stmt, *a, **kw):
            captured.append(stmt)
            return real(stmt, *a, **kw)

        s.execute = spy
        from geodata.workflow.filters import IssueFilter

        map_metrics.grid_metrics(s, scope, IssueFilter(), 2, street, tz=TZ)
        s.execute = real
        plans = {}
        for k, stmt in enumerate(captured):
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            if "issue" not in sql:
                continue
            rows = s.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)).scalars().all()
            plans[f"statement_{k}"] = "\n".join(rows)
    return plans


def scale_main(argv: list[str]) -> int:
    """``python -m bench map --scale [--sizes 100000,1000000] [--browser] [--keep]``: the map's data
    queries at demo size and grown (``gridwatch demo --issues N``'s generator) to each size, in one
    run; each count both ways (rollup and the raw baseline); slope = log(time ratio) / log(size
    ratio). With ``--browser``, at each size too: open → drawn map and every callback's browser round
    trip (:func:`browser_timings`), and the viewport payloads (:func:`viewport_payloads`)."""
    from bench.common import account, app_url, context_of, owner_engine, principal, scratch_demo, web_session
    from etl.demo_scale import grow_history
    from geodata.db import open_session
    from geodata.db.admin import drop_database
    from geodata.db.roles import OWNER_ROLE, role_url
    from geodata.settings import Settings

    sizes = SCALE_SIZES
    if "--sizes" in argv:
        sizes = tuple(int(x) for x in argv[argv.index("--sizes") + 1].split(","))
    reps = 10 if "--quick" in argv else 20
    admin, url = scratch_demo(SCALE_DB)
    owner = owner_engine(url)
    engine = create_engine(app_url(url), pool_size=4)
    result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "cpus": __import__("os").cpu_count(), "runs": {}}
    try:
        settings = Settings(database_url=app_url(url), owner_database_url=role_url(url, OWNER_ROLE),
                            basemap_url="", basemap_path=None)
        viewer = account(owner, "operator")
        ctx = context_of(settings, principal(owner, viewer))
        browser = "--browser" in argv
        for size in (0, *sizes):
            grown = grow_history(owner, size, progress=True) if size else None
            with open_session(engine, scope=ctx.scope) as s:
                issues = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
                events = s.execute(text("SELECT count(*) FROM issue_event")).scalar_one()
                rollup_rows = s.execute(text("SELECT (SELECT count(*) FROM issue_closed_rollup), "
                                             "(SELECT count(*) FROM issue_closed_total)")).one()
                print(f"queries at {issues} issues…", flush=True)
                timings = _time_cases(scale_cases(s, ctx.scope), reps)
            result["runs"][str(issues)] = {
                "issues": issues, "events": events, "rollup_rows": list(rollup_rows),
                "load_s": grown["seconds"] if grown else None,
                "load_average_1m": round(__import__("os").getloadavg()[0], 2), "queries": timings}
            run = result["runs"][str(issues)]
            run["heat_tile_http"] = heat_tile_http(settings, engine, web_session(owner, viewer), ctx.scope, reps)
            print(f"  heat tile over HTTP: {run['heat_tile_http']}", flush=True)
            if browser:
                print(f"browser at {issues} issues…", flush=True)
                run = result["runs"][str(issues)]
                run["browser"] = browser_timings(settings, engine, web_session(owner, viewer), ctx.scope,
                                                 opens=3, rounds=8)   # 8 rounds: ≈ 40 samples of the rarer callbacks, so a p95 is not the one slowest
                run["payloads"] = viewport_payloads(engine, settings, ctx)
                cbs = run["browser"]["callbacks"]
                worst = max(cbs.items(), key=lambda kv: kv[1]["p95_ms"])
                print(f"  open → drawn median {run['browser']['open_to_drawn_s']['median']} s; worst callback "
                      f"p95 {worst[1]['p95_ms']} ms ({worst[0]}); largest payload "
                      f"{max(v['total_bytes'] for v in run['payloads'].values() if isinstance(v, dict))} B", flush=True)
        result["explain_street_choropleth"] = explain_rollup(engine, ctx.scope)
        runs = list(result["runs"].values())
        first, last = runs[0], runs[-1]
        result["slope"] = {
            name: round(math.log(max(last["queries"][name]["p50_ms"], 0.01) / max(first["queries"][name]["p50_ms"], 0.01))
                        / math.log(last["issues"] / first["issues"]), 2)
            for name in first["queries"]}
    finally:
        engine.dispose()
        owner.dispose()
        if "--keep" not in argv:
            drop_database(admin, SCALE_DB)
    SCALE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    SCALE_RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    for name in result["slope"]:
        print(f"{name:34s}", "  ".join(f"{r['queries'][name]['p50_ms']:8.1f}/{r['queries'][name]['p95_ms']:8.1f}"
                                       for r in runs), f"  slope {result['slope'][name]}")
    print(f"→ {SCALE_RESULTS}")
    return 0


def main(argv: list[str]) -> int:
    if "--scale" in argv:
        return scale_main(argv)
    from bench.common import account, app_url, context_of, owner_engine, principal, scratch_demo, web_session
    from geodata.db.admin import drop_database
    from geodata.db.roles import OWNER_ROLE, role_url
    from geodata.settings import Settings

    quick = "--quick" in argv
    reps = 10 if quick else 40
    t0 = time.perf_counter()
    admin, url = scratch_demo(DB_NAME)
    # measured as the web server runs: the app role (row-level security), a signed-in command centre
    owner = owner_engine(url)
    engine = create_engine(app_url(url), pool_size=10, max_overflow=10)
    result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "targets": TARGETS}
    try:
        result["demo_load_s"] = round(time.perf_counter() - t0, 1)
        settings = Settings(database_url=app_url(url), owner_database_url=role_url(url, OWNER_ROLE),
                            basemap_url="", basemap_path=None)
        viewer = account(owner, "operator")
        ctx = context_of(settings, principal(owner, viewer))
        result["viewer"] = {"role": "operator", "scope": "every grid", "personal_data": ctx.scope.personal_data}
        print("queries (demo)…", flush=True)
        result["queries_demo"] = time_queries(engine, ctx.scope, reps)
        print("callback bodies (demo)…", flush=True)
        result["callbacks_demo"] = time_callback_bodies(engine, settings, ctx, reps)
        print("browser (demo)…", flush=True)
        result["browser_demo"] = browser_timings(settings, engine, web_session(owner, viewer), ctx.scope,
                                                 opens=3 if quick else 5, rounds=3 if quick else 8)
        print("payloads…", flush=True)
        payload = {"demo": viewport_payloads(engine, settings, ctx)}
        base = payload["demo"]["issues"]
        for factor in (10, 100):
            have = payload["demo"]["issues"] * (10 if factor == 100 else 1)
            gen_s = generate_issues(owner, base * factor - have)
            payload[f"x{factor}"] = viewport_payloads(engine, settings, ctx)
            payload[f"x{factor}"]["generate_s"] = round(gen_s, 1)
        ratios = {}
        for vp in ("street", "community", "block"):
            d = payload["demo"][vp]["total_bytes"]
            ratios[vp] = {f"x{f}": round(payload[f"x{f}"][vp]["total_bytes"] / d, 2) for f in (10, 100)}
        payload["ratios"] = ratios
        result["payload"] = payload
        print("queries (100×)…", flush=True)
        result["queries_x100"] = time_queries(engine, ctx.scope, max(5, reps // 4))

        worst_payload = max(payload[k][vp]["total_bytes"] for k in ("demo", "x10", "x100")
                            for vp in ("street", "community", "block"))
        cb_p95 = max(v["p95_ms"] for v in result["browser_demo"]["callbacks"].values())
        cb_server_p95 = max((v["server_p95_ms"] or 0) for v in result["browser_demo"]["callbacks"].values())
        q_p95 = max(v["p95_ms"] for v in result["queries_demo"].values())
        body_p95 = max(v["p95_ms"] for v in result["callbacks_demo"].values())
        result["verdict"] = {
            "payload_max_bytes": worst_payload,
            "payload_ok": worst_payload <= TARGETS["payload_max_bytes"],
            "growth_street_x100": ratios["street"]["x100"],
            "growth_ok_street": ratios["street"]["x100"] <= TARGETS["payload_growth_max"],
            "growth_worst_x100": max(r["x100"] for r in ratios.values()),
            "callback_body_p95_ms_worst": body_p95,
            "callback_body_ok": body_p95 <= TARGETS["callback_p95_ms"],
            "callback_roundtrip_p95_ms_worst": cb_p95,
            "callback_server_p95_ms_worst": cb_server_p95,
            "query_p95_ms_worst": q_p95,
            "callback_roundtrip_ok": cb_p95 <= TARGETS["callback_p95_ms"],
            "load_average_1m": round(__import__("os").getloadavg()[0], 2),
            "cpus": __import__("os").cpu_count(),
            "open_to_drawn_s_max": result["browser_demo"]["open_to_drawn_s"]["max"],
            "open_ok": result["browser_demo"]["open_to_drawn_s"]["max"] <= TARGETS["open_to_drawn_s"],
        }
    finally:
        engine.dispose()
        owner.dispose()
        if "--keep" not in argv:
            drop_database(admin, DB_NAME)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(json.dumps(result["verdict"], indent=2))
    print(f"→ {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
