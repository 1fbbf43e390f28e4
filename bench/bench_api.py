"""API benchmark: report latency through a live server, and bulk point → block assignment.

Run with ``python -m bench api`` (options: ``--points N --sample N --reports N --repeat N --keep``).
Everything runs in one scratch database (``gridwatch_bench_api``, the demo dataset loaded fresh) on
the configured server (embedded cluster, or GRIDWATCH_DATABASE_URL's), and is measured in the same
run; results go to ``bench/results/api.json``.

1. **Report latency**: a live server on 127.0.0.1 (``app.create_app`` — the dashboard's Flask server
   with the API; falls back to the API alone if the dashboard cannot be built), sequential
   ``POST /api/v1/issues`` with an ``Idempotency-Key`` each, over a keep-alive connection; p50/p95/p99.
   Also ``GET /api/v1/issues/{id}`` and a community query, for context.
2. **Bulk assignment** of N random points (the street's bounding box grown by 5 %, so some fall
   outside) to the block grids:
   - set-wise in PostGIS (``geodata.grids.bulk``): the stored raster cell index of the current
     blocks (its cold build timed once; then looked up, like any index) + ONE ``CREATE UNLOGGED
     TABLE … AS SELECT`` (parallel workers; cell found by arithmetic as array subscripts, exact
     ``ST_Covers`` only in edge cells) writing every point's code, committed. Timed from points
     already in a table ("join") and with the binary ``COPY`` of the points from memory added
     ("total"); the INSERT … SELECT form once for comparison;
   - the textbook GiST spatial join (``method="gist"``), same INSERT … SELECT shape, for reference;
   - per-point round trips: one ``INSERT … SELECT`` per point over a prepared statement (the lean
     baseline: no ORM), measured on a sample and extrapolated linearly to N;
   - in-memory shapely: ``intersects_xy`` (boundary-inclusive like ``ST_Covers``) per prepared block
     polygon with a bounding-box prefilter, lowest code first — the points already in numpy arrays,
     nothing written (for the agreement check); ``contains_xy`` (the yardstick of the 3× target) is
     timed in every repeat right before the set-wise run, and each ratio is taken within a repeat.
   All methods must agree; mismatches are counted and reported.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import struct
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "api.json"
DB_NAME = "gridwatch_bench_api"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def summary_ms(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 2), "p95_ms": round(pct(values, 95) * 1000, 2),
            "p99_ms": round(pct(values, 99) * 1000, 2), "mean_ms": round(statistics.fmean(values) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2)}


# -- 1. report latency ----------------------------------------------------------------------------
def _serve(url: str, var_dir: Path):
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines while timing

    from geodata.db.roles import APP_ROLE, role_url
    from geodata.settings import Settings

    settings = Settings(database_url=role_url(url, APP_ROLE), var_dir=var_dir)   # the app role, as served
    kind = "dashboard+api"
    try:
        from app import create_app

        flask_app = create_app(settings).server
    except Exception as exc:
        from flask import Flask
        from sqlalchemy import create_engine

        from dashboard.api import register_api

        kind = f"api only (dashboard failed to build: {type(exc).__name__})"
        flask_app = Flask("gridwatch-bench")
        register_api(flask_app, settings, create_engine(settings.database_url, pool_size=10))
    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}", kind


def bench_reports(url: str, n: int, warmup: int = 30) -> dict:
    import requests
    import shapely
    from shapely import wkb
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as c:
        blocks = [(code, wkb.loads(bytes(g))) for code, g in c.execute(text(
            "SELECT code, ST_AsBinary(geom) FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY code"))]
        leaders = [r[0] for r in c.execute(text("SELECT official_id FROM grid_assignment WHERE role = 'grid_leader'"))]
        domains = [r[0] for r in c.execute(text("SELECT code FROM domain ORDER BY sort"))]
        community = c.execute(text("SELECT code FROM grid WHERE level = 2 ORDER BY code LIMIT 1")).scalar_one()
        operator = c.execute(text("SELECT official_id FROM grid_assignment WHERE role = 'operator' "
                                  "ORDER BY official_id LIMIT 1")).scalar_one()
    tokens = _official_tokens(engine, leaders[:8])   # the API takes bearer tokens (accounts)
    reader = _official_tokens(engine, [operator])[0]   # the command centre reads every issue
    engine.dispose()
    rng = np.random.default_rng(11)

    def point() -> tuple[float, float]:
        _code, poly = blocks[int(rng.integers(len(blocks)))]
        x0, y0, x1, y1 = poly.bounds
        while True:
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if shapely.contains_xy(poly, x, y):
                return float(x), float(y)

    with tempfile.TemporaryDirectory() as tmp:
        server, base, kind = _serve(url, Path(tmp))
        try:
            s = requests.Session()
            times: list[float] = []
            ids: list[int] = []
            for i in range(warmup + n):
                lon, lat = point()
                official = i % 2 == 0
                body = {"kind": "problem" if i % 4 else "sentiment", "domain": domains[i % len(domains)],
                        "title": f"基准测试上报 {i}", "description": "bench", "lon": lon, "lat": lat,
                        "source": "patrol" if official else "resident"}
                headers = {"Idempotency-Key": uuid.uuid4().hex}
                if official:
                    headers["Authorization"] = f"Bearer {tokens[i % len(tokens)]}"
                t = time.perf_counter()
                r = s.post(f"{base}/api/v1/issues", json=body, headers=headers, timeout=30)
                dt_ = time.perf_counter() - t
                if r.status_code != 201:
                    raise RuntimeError(f"report failed: {r.status_code} {r.text[:300]}")
                if i >= warmup:
                    times.append(dt_)
                    ids.append(r.json()["id"])
            gets, queries = [], []
            for k in range(100):
                t = time.perf_counter()
                r = s.get(f"{base}/api/v1/issues/{ids[k % len(ids)]}", timeout=30,
                          headers={"Authorization": f"Bearer {reader}"})
                gets.append(time.perf_counter() - t)
                assert r.status_code == 200
                t = time.perf_counter()
                r = s.get(f"{base}/api/v1/issues", params={"grid": community, "page_size": 50, "overdue": "true"},
                          timeout=30, headers={"Authorization": f"Bearer {reader}"})
                queries.append(time.perf_counter() - t)
                assert r.status_code == 200
        finally:
            server.shutdown()
    return {"server": kind, "warmup": warmup, "post_report": summary_ms(times), "get_issue": summary_ms(gets),
            "query_community_overdue": summary_ms(queries)}


def _official_tokens(engine, official_ids: list[int]) -> list[str]:
    """An API token for each official (an account granted what their assignments suggest)."""
    from sqlalchemy import select

    from geodata.access import accounts
    from geodata.access.capabilities import grant_for_assignment
    from geodata.access.models import Account
    from geodata.db import session_scope
    from geodata.models import GridAssignment

    out = []
    with session_scope(engine) as s:
        for oid in official_ids:
            aid = s.scalar(select(Account.id).where(Account.official_id == oid))
            if aid is None:
                rows = s.execute(select(GridAssignment.role, GridAssignment.grid_code)
                                 .where(GridAssignment.official_id == oid)).all()
                grants = {(g.role, g.grid_code) for r, c in rows if (g := grant_for_assignment(r, c))}
                aid = accounts.create_account(s, f"bench-{oid}", official_id=oid, grants=tuple(sorted(grants)))
            out.append(accounts.issue_token(s, aid, "bench"))
    return out


# -- 2. bulk assignment ---------------------------------------------------------------------------
def _copy_points(conn, ids, lon, lat) -> None:
    from sqlalchemy import text

    from etl.points_io import copy_points

    conn.execute(text("DROP TABLE IF EXISTS bench_points"))
    conn.execute(text("CREATE UNLOGGED TABLE bench_points (id bigint, lon float8, lat float8)"))
    copy_points(conn, "bench_points", lon, lat, ids=ids)
    conn.commit()
    # a loaded table at rest: hint bits set and visibility map written (what stored issues look like);
    # without this the first full scan — the assignment — pays for setting 1 M hint bits
    raw = conn.connection.driver_connection
    raw.autocommit = True
    try:
        raw.execute("VACUUM (ANALYZE) bench_points")
    finally:
        raw.autocommit = False


#: points per row of the chunked load: 3 arrays × (20 + 200 × 12) bytes ≈ 7.3 KB, under
#: toast_tuple_target = 8160, so each row stays inline (no compression attempt, no TOAST), one a page
CHUNK = 200


def _chunk_bytes(ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, m: int = CHUNK) -> bytes:
    """Binary COPY payload for (ids int8[], lon float8[], lat float8[]), ``m`` points a row, with numpy."""
    def block(a_ids, a_lon, a_lat) -> bytes:
        rows, k = a_ids.shape
        hdr = np.dtype([("alen", ">i4"), ("ndim", ">i4"), ("hasnull", ">i4"), ("oid", ">i4"), ("dim", ">i4"),
                        ("lb", ">i4")])
        rec = np.dtype([("nf", ">i2"), ("ha", hdr), ("a", np.dtype([("l", ">i4"), ("v", ">i8")]), (k,)),
                        ("hb", hdr), ("b", np.dtype([("l", ">i4"), ("v", ">f8")]), (k,)),
                        ("hc", hdr), ("c", np.dtype([("l", ">i4"), ("v", ">f8")]), (k,))])
        r = np.empty(rows, dtype=rec)
        r["nf"] = 3
        for h, oid, name, src in (("ha", 20, "a", a_ids), ("hb", 701, "b", a_lon), ("hc", 701, "c", a_lat)):
            r[h]["alen"], r[h]["ndim"], r[h]["hasnull"], r[h]["oid"], r[h]["dim"], r[h]["lb"] = 20 + k * 12, 1, 0, oid, k, 1
            r[name]["l"], r[name]["v"] = 8, src
        return r.tobytes()

    full = len(ids) // m * m
    parts = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
    if full:
        parts.append(block(ids[:full].reshape(-1, m), lon[:full].reshape(-1, m), lat[:full].reshape(-1, m)))
    if full < len(ids):
        parts.append(block(ids[full:].reshape(1, -1), lon[full:].reshape(1, -1), lat[full:].reshape(1, -1)))
    return b"".join(parts) + struct.pack(">h", -1)


def _copy_chunks(conn, ids, lon, lat) -> None:
    """The points as ~5 000 rows of parallel arrays (binary COPY) + commit; no VACUUM/ANALYZE needed
    (5 000 tuples; ANALYZE would build element statistics of the arrays, which costs more than the load)."""
    from sqlalchemy import text

    from etl.points_io import copy_binary

    conn.execute(text("DROP TABLE IF EXISTS bench_point_chunks"))
    conn.execute(text("CREATE UNLOGGED TABLE bench_point_chunks (ids int8[], lon float8[], lat float8[]) "
                      "WITH (toast_tuple_target = 8160)"))
    copy_binary(conn, "COPY bench_point_chunks (ids, lon, lat) FROM STDIN (FORMAT binary)",
                _chunk_bytes(ids, lon, lat))
    conn.commit()


def _fresh_result(conn, table: str) -> None:
    from sqlalchemy import text

    conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(text(f"CREATE UNLOGGED TABLE {table} (point_id bigint, grid_code varchar(14))"))


def shapely_pass(codes: list[str], polys: list, lon: np.ndarray, lat: np.ndarray, predicate: str) -> np.ndarray:
    """Index of the owning block per point (-1 outside), lowest code first (``codes`` sorted)."""
    import shapely

    fn = shapely.intersects_xy if predicate == "intersects" else shapely.contains_xy
    out = np.full(len(lon), -1, dtype=np.int32)
    for k, poly in enumerate(polys):
        shapely.prepare(poly)
        x0, y0, x1, y1 = poly.bounds
        m = np.flatnonzero((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1) & (out < 0))
        hit = fn(poly, lon[m], lat[m])
        out[m[hit]] = k
    return out


def bench_bulk(url: str, n: int, sample: int, repeat: int) -> dict:
    import psycopg
    from shapely import wkb
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from geodata.grids.bulk import assign_points_setwise, build_cell_index

    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.execute(text("SELECT code, ST_AsBinary(geom) FROM grid WHERE level = 3 AND valid_to IS NULL "
                              "ORDER BY code")).all()
        x0, y0, x1, y1 = c.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                        "(SELECT ST_Extent(geom)::geometry e FROM grid WHERE level = 1) s")).one()
    codes = [r[0] for r in rows]
    polys = [wkb.loads(bytes(r[1])) for r in rows]
    gx, gy = (x1 - x0) * 0.05, (y1 - y0) * 0.05
    rng = np.random.default_rng(20131)
    ids = np.arange(1, n + 1, dtype=np.int64)
    lon = rng.uniform(x0 - gx, x1 + gx, n)
    lat = rng.uniform(y0 - gy, y1 + gy, n)

    import shapely

    # the cell index is kept in the database like any index: built once per set of current blocks (timed
    # here cold, forced), then looked up by every assignment (the lookup is inside the timed join below)
    with engine.connect() as conn:
        t = time.perf_counter()
        idx = build_cell_index(conn, force=True)
        conn.commit()
        index_cold_s = time.perf_counter() - t
    for poly in polys:
        shapely.prepare(poly)
    # interleaved: each repeat times shapely contains_xy, then the set-wise paths, back to back, so that
    # each ratio compares runs made under the same machine conditions (this VM's speed drifts ±30 %)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        shapely_pass(codes, polys, lon, lat, "contains")
        contains_s = time.perf_counter() - t
        with engine.connect() as conn:
            t0 = time.perf_counter()
            _copy_points(conn, ids, lon, lat)
            conn.commit()
            t1 = time.perf_counter()
            conn.execute(text("DROP TABLE IF EXISTS bench_assignment"))
            conn.commit()
            t2 = time.perf_counter()
            written = assign_points_setwise(conn, "bench_points", "bench_assignment", create=True)
            conn.commit()
            t3 = time.perf_counter()
        assert written == n
        # the same points loaded as chunks of arrays, then the same single CTAS reading them element by element
        with engine.connect() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_assignment_chunked"))
            conn.commit()
            t7 = time.perf_counter()
            _copy_chunks(conn, ids, lon, lat)
            t8 = time.perf_counter()
            assert assign_points_setwise(conn, "bench_point_chunks", "bench_assignment_chunked",
                                         create=True, points_chunked=True) == n
            conn.commit()
            t9 = time.perf_counter()
        runs.append({"contains_xy_s": contains_s, "copy_s": t1 - t0, "join_s": t3 - t2,
                     "chunk_load_s": t8 - t7, "chunk_assign_write_s": t9 - t8,
                     "join_over_contains_xy": (t3 - t2) / contains_s,
                     "total_over_contains_xy": (t1 - t0 + t3 - t2) / contains_s,
                     "chunked_total_over_contains_xy": (t9 - t7) / contains_s})
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    worst = {k: max(r[k] for r in runs) for k in runs[0]}
    setwise_join = med["join_s"]
    setwise_total = med["copy_s"] + setwise_join
    chunked_total = med["chunk_load_s"] + med["chunk_assign_write_s"]
    # same, but INSERT … SELECT into a result table created beforehand (no parallel workers possible)
    with engine.connect() as conn:
        chunk_diff = conn.execute(text(
            "SELECT count(*) FROM bench_assignment a FULL JOIN bench_assignment_chunked b USING (point_id) "
            "WHERE a.grid_code IS DISTINCT FROM b.grid_code OR a.point_id IS NULL OR b.point_id IS NULL")).scalar_one()
        _fresh_result(conn, "bench_assignment_ins")
        conn.commit()
        t = time.perf_counter()
        assign_points_setwise(conn, "bench_points", "bench_assignment_ins")
        conn.commit()
        insert_s = time.perf_counter() - t
        ins_diff = conn.execute(text(
            "SELECT count(*) FROM bench_assignment a JOIN bench_assignment_ins b USING (point_id) "
            "WHERE a.grid_code IS DISTINCT FROM b.grid_code")).scalar_one()

    # set-wise, GiST spatial join (reference), on the same copied points
    with engine.connect() as conn:
        _fresh_result(conn, "bench_assignment_gist")
        conn.commit()
        t = time.perf_counter()
        assign_points_setwise(conn, "bench_points", "bench_assignment_gist", method="gist")
        conn.commit()
        gist_s = time.perf_counter() - t
        gist_diff = conn.execute(text(
            "SELECT count(*) FROM bench_assignment a JOIN bench_assignment_gist b USING (point_id) "
            "WHERE a.grid_code IS DISTINCT FROM b.grid_code")).scalar_one()
        db_codes = dict(conn.execute(text("SELECT point_id, grid_code FROM bench_assignment")).all())

    # per-point round trips on a sample (prepared statement, one transaction), extrapolated
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as pc:
        pc.execute("DROP TABLE IF EXISTS bench_assignment_pp")
        pc.execute("CREATE UNLOGGED TABLE bench_assignment_pp (point_id bigint, grid_code varchar(14))")
        pc.commit()
        sql = ("INSERT INTO bench_assignment_pp (point_id, grid_code) SELECT %s, (SELECT min(g.code) FROM grid g "
               "WHERE g.level = 3 AND g.valid_to IS NULL AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)))")
        cur = pc.cursor()
        t = time.perf_counter()
        for k in range(sample):
            cur.execute(sql, (int(ids[k]), float(lon[k]), float(lat[k])), prepare=True)
        pc.commit()
        pp_s = time.perf_counter() - t
        pp_codes = dict(pc.execute("SELECT point_id, grid_code FROM bench_assignment_pp").fetchall())
    per_point_rate = sample / pp_s
    per_point_extrapolated = n / per_point_rate
    pp_diff = sum(1 for k in range(sample) if pp_codes[int(ids[k])] != db_codes[int(ids[k])])

    # shapely intersects_xy (boundary-inclusive like ST_Covers): the answers, for the agreement check
    sh_times = []
    for _ in range(repeat):
        t = time.perf_counter()
        owner = shapely_pass(codes, polys, lon, lat, "intersects")
        sh_times.append(time.perf_counter() - t)
    shapely_s = statistics.median(sh_times)
    sh_codes = np.array([None, *codes], dtype=object)[owner + 1]
    sh_diff = int(sum(1 for k in range(n) if sh_codes[k] != db_codes[int(ids[k])]))
    assigned = int((owner >= 0).sum())

    with engine.connect() as conn:
        for t_ in ("bench_points", "bench_assignment", "bench_assignment_ins", "bench_assignment_gist",
                   "bench_assignment_pp", "bench_point_chunks", "bench_assignment_chunked"):
            conn.execute(text(f"DROP TABLE IF EXISTS {t_}"))
        conn.commit()
    engine.dispose()
    r3 = lambda x: round(x, 3)
    r2 = lambda x: round(x, 2)
    contains_s = med["contains_xy_s"]
    return {
        "points": n, "inside_street": assigned, "outside": n - assigned, "repeat": repeat,
        "cell_index": {"cold_build_s": r3(index_cold_s), "cells": idx["cells"], "edge_cells": idx["edge_cells"],
                       "cell_deg": idx["cell_deg"], "coarse_deg": idx["coarse_deg"], "fine": idx["fine"],
                       "raster": f"{idx['ni']}×{idx['nj']}"},
        "setwise_cells": {
            "copy_s": r3(med["copy_s"]), "join_s": r3(setwise_join), "total_incl_copy_s": r3(setwise_total),
            "insert_select_variant_s": r3(insert_s),
            "chunk_load_s": r3(med["chunk_load_s"]), "chunk_assign_write_s": r3(med["chunk_assign_write_s"]),
            "chunked_total_incl_load_s": r3(chunked_total),
            "includes": {
                "cold_build_s": "building and storing the cell index (once per set of current blocks: after a "
                                "boundary change the next assignment pays it)",
                "copy_s": "binary COPY of (id, lon, lat) from numpy into an UNLOGGED table + commit + "
                          "VACUUM (ANALYZE) (sets hint bits: the table at rest)",
                "join_s": "assign_points_setwise: blocks' fingerprint + stored index lookup + ONE CREATE UNLOGGED "
                          "TABLE … AS SELECT (parallel workers) writing (point_id, grid_code) for every point + "
                          "commit: points already in a table → codes in a table",
                "total_incl_copy_s": "copy_s + join_s: points in memory → codes in a table",
                "insert_select_variant_s": "INSERT … SELECT into a pre-created UNLOGGED table (one run)",
                "chunk_load_s": f"the same points as rows of {CHUNK}-point arrays (ids int8[], lon float8[], "
                                "lat float8[]): payload built with numpy + binary COPY into an UNLOGGED table "
                                "+ commit (no VACUUM/ANALYZE)",
                "chunk_assign_write_s": "the same single CREATE UNLOGGED TABLE … AS SELECT reading the chunks "
                                        "element by element (points_chunked=True) + commit"},
            "runs": [{k: (r2(v) if "over" in k else r3(v)) for k, v in r.items()} for r in runs]},
        "setwise_gist_join_s": r3(gist_s),
        "per_point": {"sample": sample, "sample_s": r3(pp_s), "points_per_s": round(per_point_rate, 1),
                      "extrapolated_s": round(per_point_extrapolated, 1),
                      "note": "measured on the sample, extrapolated linearly to all points"},
        "shapely": {"contains_xy_s": r3(contains_s), "intersects_xy_s": r3(shapely_s),
                    "includes": "points already in numpy arrays, polygons prepared → owner index in a numpy "
                                "array; nothing written"},
        "ratios": {
            "per_point_over_setwise_total": round(per_point_extrapolated / setwise_total, 1),
            "setwise_join_over_contains_xy": r2(med["join_over_contains_xy"]),
            "setwise_join_over_contains_xy_worst": r2(worst["join_over_contains_xy"]),
            "setwise_join_incl_cold_index_over_contains_xy": r2((setwise_join + index_cold_s) / contains_s),
            "setwise_total_over_contains_xy": r2(med["total_over_contains_xy"]),
            "chunked_total_over_contains_xy": r2(med["chunked_total_over_contains_xy"]),
            "per_point_over_chunked_total": round(per_point_extrapolated / chunked_total, 1),
            "gist_join_over_contains_xy": r2(gist_s / contains_s),
            "per_point_over_gist_join": round(per_point_extrapolated / gist_s, 1),
        },
        "agreement": {"cells_vs_gist_mismatches": int(gist_diff), "cells_vs_per_point_mismatches": pp_diff,
                      "cells_vs_shapely_mismatches": sh_diff, "ctas_vs_insert_select_mismatches": int(ins_diff),
                      "rows_vs_chunked_mismatches": int(chunk_diff)},
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench api")
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--sample", type=int, default=2000)
    p.add_argument("--reports", type=int, default=300)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    from sqlalchemy import create_engine, text

    from etl.demo import load_demo
    from geodata.db import admin_url
    from geodata.db.admin import create_database, drop_database
    from geodata.settings import get_settings

    server_url = admin_url(get_settings())
    url = create_database(server_url, DB_NAME)
    engine = create_engine(url)
    t = time.perf_counter()
    load_demo(engine, progress=False)
    demo_s = time.perf_counter() - t
    with engine.connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
        postgis = c.execute(text("SELECT PostGIS_Lib_Version()")).scalar_one()
        issues = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
    engine.dispose()
    try:
        print(f"report latency ({args.reports} reports through a live server)…", flush=True)
        report = bench_reports(url, args.reports)
        print(f"bulk assignment of {args.points:,} points…", flush=True)
        bulk = bench_bulk(url, args.points, args.sample, args.repeat)
    finally:
        if not args.keep:
            drop_database(server_url, DB_NAME)
    targets = {
        "report_p95_le_100ms": report["post_report"]["p95_ms"] <= 100,
        "setwise_ge_20x_per_point": bulk["ratios"]["per_point_over_setwise_total"] >= 20,
        "setwise_within_3x_contains_xy": bulk["ratios"]["setwise_join_over_contains_xy"] <= 3,
        "setwise_within_3x_contains_xy_every_run": bulk["ratios"]["setwise_join_over_contains_xy_worst"] <= 3,
    }
    result = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "postgres": pg, "postgis": postgis},
        "dataset": {"demo_load_s": round(demo_s, 2), "issues_before": issues},
        "report": report, "bulk": bulk, "targets": targets,
        "notes": [
            "set-wise = the stored raster cell index of the current blocks (built once per set of blocks, "
            "looked up after; cell found by integer arithmetic as array subscripts, exact ST_Covers only in "
            "edge cells) + ONE CREATE UNLOGGED TABLE … AS SELECT writing every point's code, committed; "
            "'join' = from points already in a table, 'total' adds the binary COPY of the points",
            "per-point = one prepared INSERT … SELECT round trip per point, measured on the sample and "
            "extrapolated linearly to all points",
            "shapely = in-memory contains_xy per prepared block polygon with a bbox prefilter; points already "
            "in numpy arrays, results not written anywhere",
            "ratios against shapely are per repeat (shapely and PostGIS timed back to back), then the median "
            "and the worst of the repeats; all methods give identical assignments (see agreement)",
            "tried and dropped (measured no gain on 2 cores): splitting the write over 2 connections; a "
            "hash join against a cell table instead of array subscripts; JIT",
            "chunked = the points loaded as 200-point array rows instead of one row per point; the result is "
            "still one (point_id, grid_code) row per point in a plain UNLOGGED table",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    r, b = report["post_report"], bulk
    print(f"POST /api/v1/issues: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms "
          f"({report['server']})")
    print(f"bulk {b['points']:,} points: cell index cold build {b['cell_index']['cold_build_s']} s (once); "
          f"set-wise join {b['setwise_cells']['join_s']} s (+ {b['setwise_cells']['copy_s']} s COPY); chunked "
          f"load {b['setwise_cells']['chunked_total_incl_load_s']} s incl. load; GiST join {b['setwise_gist_join_s']} s; "
          f"per-point ≈ {b['per_point']['extrapolated_s']} s (extrapolated from {b['per_point']['sample']}); "
          f"shapely contains_xy {b['shapely']['contains_xy_s']} s")
    print("ratios:", json.dumps(b["ratios"]), "agreement:", json.dumps(b["agreement"]))
    print("targets:", json.dumps(targets))
    print(f"→ {args.out}")
    return 0
