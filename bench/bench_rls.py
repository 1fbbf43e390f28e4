"""Row-level security and permission checks benchmark: the map callbacks' data functions and the
report API with them on vs off, side by side in one run, on the demo dataset. Target (issue #10):
at most 10 % more.

- **on** — the real server path: the app role, as the server connects (the policies evaluated, the
  scope set per transaction), and the checks of who is asking: a map callback runs inside a request
  the dashboard's gate lets through (the ``gw_session`` cookie → the account's principal, cached as
  the gate caches it; the page's capability; then ``current_context``), an API call carries
  ``Authorization: Bearer <token>`` (the token looked up, the principal loaded, the operation's
  capability required, the principal's scope set on the transaction);
- **off** — the same queries (the same ``Scope`` in every query's own conditions), but a role with
  ``BYPASSRLS`` (a member of the app role: the same privileges) and no permission checks: the
  callbacks run inside a request to the same route too (as any server runs them) but get the
  viewer's context ready-made, without the before-request hooks (no session looked up, no
  capability checked); the API's principal is handed over without a token lookup or capability
  check, and no scope is set on its transaction. (Until 2026-12-03 the callbacks' off side ran
  outside any request, so the on side also paid for building Flask's request context — a cost of
  serving, not of checking: 4–8 % of the callbacks' time.)

Each case runs on and off alternately (the order flips every repetition, so drift hits both), for
two viewers, each a signed-in account: the command centre (an operator: every grid, phones) and a
community leader (one community, phones, linked to an official of it: their responsibility chain
too). The callbacks' bodies are what Dash runs (``dashboard.pages.map.callbacks.*_outputs``:
queries + shaping + Dash's JSON); the report API is ``POST /api/v1/issues`` (a resident; the
viewer) and ``GET /api/v1/issues`` (the viewer's first page; the community's) through the Flask
test client. Per case: the median of on, of off, their ratio, and the median of the paired ratios
(on/off of the same repetition); per group the ratio of the summed medians. Writes
bench/results/rls.json.

Needs a superuser (the embedded cluster) to create the ``BYPASSRLS`` role.

    python -m bench rls [--reps N] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import tempfile
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
        conn.execute(f"ALTER ROLE {BYPASS_ROLE} SET plan_cache_mode = force_custom_plan")


def _setup(engine, ctx) -> dict[str, Any]:
    """What the cases select, found once as the viewer: their top grid (the street, or their
    community), a community of theirs, an issue of it."""
    from geodata.db import open_session
    from geodata.maps import layers as map_layers
    from geodata.workflow import filters, queries

    scope = ctx.scope
    with open_session(engine, scope=scope) as s:
        community = map_layers.grid_layer(s, scope, 2)["features"][0]["properties"]["code"]
        top = map_layers.grid_detail(s, scope, map_layers.street_code(s, scope) or community)
        cd = map_layers.grid_detail(s, scope, community)
        issue_id = queries.latest_issues(s, scope, filters.IssueFilter(), community, 1, tz=ctx.tz)[0].id
    return {"community": community, "issue_id": issue_id,
            "sel_top": {"code": top.code, "level": top.level, "parent": top.parent_code, "bbox": list(top.bbox)},
            "sel_comm": {"code": community, "level": 2, "parent": cd.parent_code, "bbox": list(cd.bbox)}}


def _cases(svc, run: Callable[[Callable], Any], at: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The map page's callback bodies for one viewer; ``run(body)`` calls ``body(ctx)`` with the
    request's context (on: through the gate; off: ready-made)."""
    from dashboard.pages.map import callbacks as cb
    from dashboard.pages.map.presenters import filter_from_controls

    sel_top, sel_comm, community, issue_id = at["sel_top"], at["sel_comm"], at["community"], at["issue_id"]
    w, so, e, n = sel_top["bbox"]
    cw, cs, ce, cn = sel_comm["bbox"]
    flt = filter_from_controls("problem", [], [], "year", False, "overdue_open")
    k = [0]

    def fresh() -> str:   # a new live stamp each call: the per-stamp cache never answers for the database
        k[0] += 1
        return f"b{k[0]}"

    bodies: dict[str, Callable[[Any], Any]] = {
        "body (layout data)": lambda ctx: cb.context_data(svc, ctx, fresh()),
        "select(url)": lambda ctx: cb.selection_outputs(svc, ctx, f"?grid={community}", fresh()),
        "choropleth(top)": lambda ctx: cb.choropleth_outputs(svc, ctx, sel_top, None),
        "choropleth(community, filter)": lambda ctx: cb.choropleth_outputs(svc, ctx, sel_comm, flt),
        "markers(top)": lambda ctx: cb.marker_outputs(svc, ctx, [[so, w], [n, e]], None, sel_top),
        "markers(community, filter)": lambda ctx: cb.marker_outputs(svc, ctx, [[cs, cw], [cn, ce]], flt, sel_comm),
        "heat(legend)": lambda ctx: cb.heat_outputs(svc, ctx, flt, fresh()),
        "panel(top)": lambda ctx: cb.panel_outputs(svc, ctx, sel_top, None, fresh()),
        "panel(community, filter)": lambda ctx: cb.panel_outputs(svc, ctx, sel_comm, flt, fresh()),
        "timeline": lambda ctx: cb.timeline_outputs(svc, ctx, issue_id),
        "search": lambda ctx: cb.search_outputs(svc, ctx, "社区"),
        "live": lambda ctx: cb.live_outputs(svc, ctx, "x"),
    }
    return {name: (lambda body=body: run(body)) for name, body in bodies.items()}


def _through_gate(server, settings, session_cookie: str) -> Callable[[Callable], Any]:
    """on: each call inside a request to a data route of the dashboard, signed in by cookie: the
    server's before-request hooks (caps, the gate: session → principal, the page's capability), then
    the request's context as every callback builds it."""
    from dashboard.auth import SESSION_COOKIE
    from dashboard.context import current_context

    headers = {"Cookie": f"{SESSION_COOKIE}={session_cookie}", "Sec-Fetch-Site": "same-origin"}

    def run(body: Callable) -> Any:
        with server.test_request_context("/_dash-layout", headers=headers):
            refused = server.preprocess_request()
            assert refused is None, refused
            return body(current_context(settings, "zh"))
    return run


def _ready_made(server, ctx) -> Callable[[Callable], Any]:
    """off: each call inside a request to the same route (a server serves a callback inside a
    request whether it checks or not), but no before-request hook run and the viewer's context
    handed over: no session looked up, no capability checked."""

    def run(body: Callable) -> Any:
        with server.test_request_context("/_dash-layout", headers={"Sec-Fetch-Site": "same-origin"}):
            return body(ctx)
    return run


@contextlib.contextmanager
def _unchecked(principal):
    """off, for the API: the caller's principal handed over (no token looked up), no capability
    required, no scope set on the transaction (``dashboard.api.core``'s hooks, for the call)."""
    from dashboard.api import core

    saved = core.principal_from_request, core.require, core.set_scope
    core.principal_from_request = lambda _session, _api_key=None: principal
    core.require = lambda *_a, **_k: None
    core.set_scope = lambda *_a, **_k: None
    try:
        yield
    finally:
        core.principal_from_request, core.require, core.set_scope = saved


def _api_cases(client, wrap, viewer_token: str | None, viewer_principal, resident, community: str,
               points: list[tuple[float, float]]) -> dict[str, Callable]:
    """``wrap(principal)``: a context manager around each call (on: nothing; off: :func:`_unchecked`)."""
    it = iter(points * 200)
    auth = {"Authorization": f"Bearer {viewer_token}"}

    def report(headers: dict, who) -> Callable[[], Any]:
        def go():
            lon, lat = next(it)
            with wrap(who):
                r = client.post("/api/v1/issues", json={"kind": "problem", "domain": "sanitation", "title": "基准测试",
                                                        "lon": lon, "lat": lat}, headers=headers)
            assert r.status_code == 201, r.data
        return go

    def listing(query: dict) -> Callable[[], Any]:
        def go():
            with wrap(viewer_principal):
                r = client.get("/api/v1/issues", query_string={**query, "page_size": 50}, headers=auth)
            assert r.status_code == 200, r.data
        return go

    return {"POST /issues (resident)": report({}, resident),
            "POST /issues (viewer)": report(auth, viewer_principal),
            "GET /issues (viewer's first page)": listing({}),
            "GET /issues?grid=community": listing({"grid": community})}


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
        paired = statistics.median(a / b for a, b in zip(times["on"], times["off"], strict=True))
        out[name] = {"on_p50_ms": round(med_on, 2), "off_p50_ms": round(med_off, 2),
                     "ratio": round(med_on / med_off, 3), "paired_ratio": round(paired, 3), "n": reps}
    return out


def _ratio(rows: dict) -> float:
    return round(sum(r["on_p50_ms"] for r in rows.values()) / sum(r["off_p50_ms"] for r in rows.values()), 3)


def _print(title: str, rows: dict) -> None:
    print(f"  {title}  (Σ on/Σ off ×{_ratio(rows):.3f})")
    for name, r in rows.items():
        print(f"    {name:<36} on {r['on_p50_ms']:8.2f} ms   off {r['off_p50_ms']:8.2f} ms   ×{r['ratio']:.3f}"
              f"  (paired ×{r['paired_ratio']:.3f})", flush=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench rls")
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    from flask import Flask
    from sqlalchemy import create_engine, text

    from bench.common import account, api_token, context_of, owner_engine, principal, scratch_demo, web_session
    from dashboard import create_dash
    from dashboard.api import register_api
    from dashboard.services import Services
    from geodata.access.accounts import Principal
    from geodata.db.admin import drop_database
    from geodata.db.roles import APP_ROLE, OWNER_ROLE, role_url
    from geodata.settings import Settings

    admin, url = scratch_demo(DB_NAME)
    owner = owner_engine(url)
    _bypass_role(admin)
    var_dir = Path(tempfile.mkdtemp(prefix="gridwatch-bench-rls-"))
    engines, services, apps, settings = {}, {}, {}, {}
    for side, role in (("on", APP_ROLE), ("off", BYPASS_ROLE)):
        settings[side] = Settings(database_url=role_url(url, role), owner_database_url=role_url(url, OWNER_ROLE),
                                  basemap_url="", basemap_path=None, var_dir=var_dir)
        engines[side] = create_engine(settings[side].database_url, pool_size=4)
        services[side] = Services(engine=engines[side], settings=settings[side])
        flask_app = Flask(f"gridwatch-bench-rls-{side}")
        register_api(flask_app, settings[side], engines[side])
        apps[side] = flask_app.test_client()
    dash_server = create_dash(settings["on"], engines["on"]).server   # the gate in front of the callbacks
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
        viewers = {"command centre (operator: every grid, phones)": account(owner, "operator"),
                   "community leader (one community, phones, an official)":
                       account(owner, "community_leader", community, official)}
        resident = Principal.anonymous()
        callbacks, api = {}, {}
        for label, aid in viewers.items():
            who = principal(owner, aid)
            ctx = context_of(settings["off"], who)
            at = _setup(engines["off"], ctx)
            on = _cases(services["on"], _through_gate(dash_server, settings["on"], web_session(owner, aid)), at)
            off = _cases(services["off"], _ready_made(dash_server, ctx), at)
            print(f"map callbacks, {label}: {args.reps} × on/off…", flush=True)
            callbacks[label] = _side_by_side(on, off, args.reps)
            _print(label, callbacks[label])
            token = api_token(owner, aid)
            on_api = _api_cases(apps["on"], lambda _p: contextlib.nullcontext(), token, who, resident,
                                community, points)
            off_api = _api_cases(apps["off"], _unchecked, token, who, resident, community, points)
            print(f"report API, {label}: {args.reps} × on/off…", flush=True)
            api[label] = _side_by_side(on_api, off_api, args.reps)
            _print(f"report API, {label}", api[label])
        result["callbacks"], result["api"] = callbacks, api
        ratios: dict[str, float] = {}
        for label in viewers:
            ratios[f"map callbacks, {label}"] = _ratio(callbacks[label])
            ratios[f"report API, {label}"] = _ratio(api[label])
        ratios["all"] = _ratio({f"{g} {k}": r for g, rows in (*callbacks.items(), *api.items())
                                for k, r in rows.items()})
        result["ratios"] = ratios
        worst = max(((g, k, r["ratio"]) for g, rows in (*callbacks.items(), *api.items()) for k, r in rows.items()),
                    key=lambda x: x[2])
        result["worst_case"] = {"group": worst[0], "case": worst[1], "ratio": worst[2]}
        result["targets_met"] = {k: v <= TARGET_RATIO for k, v in ratios.items()}
        print(f"  ratios (sum of medians, on / off): {json.dumps(ratios, ensure_ascii=False)}  "
              f"target ≤ {TARGET_RATIO}; worst case {worst}", flush=True)
    finally:
        for e in engines.values():
            e.dispose()
        owner.dispose()
        if not args.keep:
            drop_database(admin, DB_NAME)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"→ {args.out}")
    return 0
