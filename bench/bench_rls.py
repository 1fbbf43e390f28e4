"""Row-level security benchmark: the map callbacks' data functions and the report API with RLS on
vs off, side by side in one run, on the demo dataset. Target (issue #10): at most 10 % more.

- **on**: the app role, as the server connects (policies evaluated, the scope set per transaction);
- **off**: the same code, the same privileges (a member of the app role) but ``BYPASSRLS``, so
  PostgreSQL skips the policies; the scope settings are still sent (one round trip each side).

Each case runs on and off alternately (the order flips every repetition, so drift hits both), for
two viewers: the command centre (every grid, phones: the dashboard's viewer today) and a community
official (one community, phones; what accounts will bring). The callbacks' bodies are what Dash
runs (``dashboard.pages.map.callbacks.*_outputs``: queries + shaping + Dash's JSON); the report API
is ``POST /api/v1/issues`` (a resident, and an official of that community) and the community's
``GET /api/v1/issues`` through the Flask test client. Ratio = median on / median off per case; the
total is the ratio of the summed medians. Writes bench/results/rls.json.

Needs a superuser (the embedded cluster) to create the ``BYPASSRLS`` role.

    python -m bench rls [--reps N] [--keep]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "rls.json"
DB_NAME = "gridwatch_bench_rls"
BYPASS_ROLE = "gridwatch_bench_bypass"
TARGET_RATIO = 1.10


def _bypass_role(admin: str) -> None:
    from geodata.db.admin import _admin
    from geodata.db.roles import APP_ROLE

    with _admin(admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BYPASS_ROLE,)).fetchone():
            conn.execute(f"CREATE ROLE {BYPASS_ROLE} LOGIN BYPASSRLS")
        conn.execute(f"GRANT {APP_ROLE} TO {BYPASS_ROLE}")        # the app's privileges, nothing more
        conn.execute(f"ALTER ROLE {BYPASS_ROLE} SET jit = off")   # as the app role (geodata.db.roles)


def _cases(svc, ctx, s_setup) -> dict[str, Callable[[], Any]]:
    """The map page's callback bodies for one viewer (ids and boxes found once, as that viewer)."""
    from dashboard.pages.map import callbacks as cb
    from dashboard.pages.map.presenters import filter_from_controls
    from geodata.maps import layers as map_layers
    from geodata.workflow import filters, queries

    scope = ctx.scope
    s = s_setup
    communities = [f["properties"]["code"] for f in map_layers.grid_layer(s, scope, 2)["features"]]
    community = communities[0]
    top = map_layers.grid_detail(s, scope, map_layers.street_code(s, scope) or community)
    cd = map_layers.grid_detail(s, scope, community)
    issue_id = queries.latest_issues(s, scope, filters.IssueFilter(), community, 1, tz=ctx.tz)[0].id
    sel_top = {"code": top.code, "level": top.level, "parent": top.parent_code, "bbox": list(top.bbox)}
    sel_comm = {"code": community, "level": 2, "parent": cd.parent_code, "bbox": list(cd.bbox)}
    w, so, e, n = top.bbox
    cw, cs, ce, cn = cd.bbox
    flt = filter_from_controls("problem", [], [], "year", False, "overdue")
    k = [0]

    def fresh() -> str:   # a new live stamp each call: the per-stamp cache never answers for the database
        k[0] += 1
        return f"b{k[0]}"

    return {
        "body (layout data)": lambda: cb.context_data(svc, ctx, fresh()),
        "select(url)": lambda: cb.selection_outputs(svc, ctx, f"?grid={community}", fresh()),
        "choropleth(top)": lambda: cb.choropleth_outputs(svc, ctx, sel_top, None),
        "choropleth(community, filter)": lambda: cb.choropleth_outputs(svc, ctx, sel_comm, flt),
        "markers(top)": lambda: cb.marker_outputs(svc, ctx, [[so, w], [n, e]], None, sel_top),
        "markers(community, filter)": lambda: cb.marker_outputs(svc, ctx, [[cs, cw], [cn, ce]], flt, sel_comm),
        "heat(legend)": lambda: cb.heat_outputs(svc, ctx, flt, fresh()),
        "panel(top)": lambda: cb.panel_outputs(svc, ctx, sel_top, None, fresh()),
        "panel(community, filter)": lambda: cb.panel_outputs(svc, ctx, sel_comm, flt, fresh()),
        "timeline": lambda: cb.timeline_outputs(svc, ctx, issue_id),
        "search": lambda: cb.search_outputs(svc, ctx, "社区"),
        "live": lambda: cb.live_outputs(svc, ctx, "x"),
    }


def _api_cases(client, official: int, community: str, points: list[tuple[float, float]]) -> dict[str, Callable]:
    it = iter(points * 100)

    def report(headers: dict) -> Callable[[], Any]:
        def go():
            lon, lat = next(it)
            r = client.post("/api/v1/issues", json={"kind": "problem", "domain": "sanitation", "title": "基准测试",
                                                    "lon": lon, "lat": lat}, headers=headers)
            assert r.status_code == 201, r.data
        return go

    def listing():
        r = client.get("/api/v1/issues", query_string={"grid": community, "page_size": 50},
                       headers={"X-Official-Id": str(official)})
        assert r.status_code == 200, r.data

    return {"POST /issues (resident)": report({}),
            "POST /issues (official)": report({"X-Official-Id": str(official)}),
            "GET /issues?grid=community (official)": listing}


def _side_by_side(on: dict[str, Callable], off: dict[str, Callable], reps: int, warmup: int = 3) -> dict:
    import dash._utils as dash_utils

    out = {}
    for name in on:
        times: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(warmup + reps):
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for side in order:
                fn = (on if side == "on" else off)[name]
                t0 = time.perf_counter()
                dash_utils.to_json(fn())
                if i >= warmup:
                    times[side].append((time.perf_counter() - t0) * 1000)
        med_on, med_off = statistics.median(times["on"]), statistics.median(times["off"])
        out[name] = {"on_p50_ms": round(med_on, 2), "off_p50_ms": round(med_off, 2),
                     "ratio": round(med_on / med_off, 3), "n": reps}
    return out


def _print(title: str, rows: dict) -> None:
    print(f"  {title}")
    for name, r in rows.items():
        print(f"    {name:<40} on {r['on_p50_ms']:8.2f} ms   off {r['off_p50_ms']:8.2f} ms   ×{r['ratio']:.3f}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench rls")
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    from flask import Flask
    from sqlalchemy import create_engine, text

    from dashboard.api import register_api
    from dashboard.context import COMMAND_CENTRE, Context
    from dashboard.services import Services
    from etl.demo import load_demo
    from geodata.access.scope import Scope
    from geodata.clock import business_zone
    from geodata.db import admin_url, open_session
    from geodata.db.admin import create_database, drop_database
    from geodata.db.roles import APP_ROLE, OWNER_ROLE, role_url
    from geodata.settings import Settings, get_settings

    admin = admin_url(get_settings())
    url = create_database(admin, DB_NAME)
    owner = create_engine(role_url(url, OWNER_ROLE))
    load_demo(owner, progress=False)
    owner.dispose()
    _bypass_role(admin)
    engines, services, apps = {}, {}, {}
    for side, role in (("on", APP_ROLE), ("off", BYPASS_ROLE)):
        settings = Settings(database_url=role_url(url, role), basemap_url="", basemap_path=None,
                            dashboard_personal_data=True)
        engines[side] = create_engine(settings.database_url, pool_size=4)
        services[side] = Services(engine=engines[side], settings=settings)
        flask_app = Flask(f"gridwatch-bench-rls-{side}")
        register_api(flask_app, settings, engines[side])
        apps[side] = flask_app.test_client()
    tz = business_zone(services["on"].settings)
    result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "reps": args.reps,
                              "target_ratio_max": TARGET_RATIO}
    try:
        with engines["off"].connect() as c:
            result["issues"] = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
            community, official = c.execute(text(
                "SELECT a.grid_code, a.official_id FROM grid_assignment a WHERE a.role = 'direct_responsible' "
                "AND a.valid_to IS NULL ORDER BY a.grid_code, a.rank LIMIT 1")).one()
            points = [tuple(r) for r in c.execute(text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 4, 7))).geom p FROM grid "
                "WHERE level = 3 AND valid_to IS NULL AND code LIKE :c) q"), {"c": community[:12] + "%"})]
        viewers = {"command centre (every grid, phones)": Scope.everything(personal_data=True),
                   "community official (one community, phones)": Scope(roots=frozenset({community}),
                                                                      personal_data=True, official_id=official)}
        callbacks, total_on, total_off = {}, 0.0, 0.0
        for label, scope in viewers.items():
            ctx = Context(viewer=COMMAND_CENTRE, scope=scope, lang="zh", tz=tz)
            cases = {}
            for side in ("on", "off"):
                with open_session(engines[side], scope=scope) as s:
                    cases[side] = _cases(services[side], ctx, s)
            print(f"map callbacks, {label}: {args.reps} × on/off…", flush=True)
            callbacks[label] = _side_by_side(cases["on"], cases["off"], args.reps)
            _print(label, callbacks[label])
        print(f"report API: {args.reps} × on/off…", flush=True)
        api = _side_by_side(*(_api_cases(apps[side], official, community, points) for side in ("on", "off")),
                            args.reps)
        _print("report API", api)
        for rows in (*callbacks.values(), api):
            total_on += sum(r["on_p50_ms"] for r in rows.values())
            total_off += sum(r["off_p50_ms"] for r in rows.values())
        result["callbacks"] = callbacks
        result["api"] = api
        map_on = sum(r["on_p50_ms"] for rows in callbacks.values() for r in rows.values())
        map_off = sum(r["off_p50_ms"] for rows in callbacks.values() for r in rows.values())
        api_on, api_off = (sum(r[k] for r in api.values()) for k in ("on_p50_ms", "off_p50_ms"))
        result["ratios"] = {"map_callbacks": round(map_on / map_off, 3), "report_api": round(api_on / api_off, 3),
                            "all": round(total_on / total_off, 3)}
        result["targets_met"] = {k: v <= TARGET_RATIO for k, v in result["ratios"].items()}
        print(f"  ratios (sum of medians, on / off): {result['ratios']}  target ≤ {TARGET_RATIO}", flush=True)
    finally:
        for e in engines.values():
            e.dispose()
        if not args.keep:
            drop_database(admin, DB_NAME)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"→ {args.out}")
    return 0
