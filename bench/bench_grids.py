"""Boundary change sets benchmark (issue #15): validating an edit against the demo's 59-block
coverage (target ≤ 200 ms server-side) and applying a change set that re-assigns 10⁵ open issues
(target ≤ 5 s). Writes bench/results/grids.json.

Runs in a scratch database (``gridwatch_bench_grids``) with the demo dataset. The edit moves a
stretch of the boundary two neighbouring blocks share (both neighbours, as the editor sends it);
the apply moves a block holding 10⁵ generated open issues to another community (a new code: every
one of them is re-assigned, with the six-ones chain of the new block).

    python -m bench grids [--issues N] [--reps N] [--keep]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import shapely
from shapely.geometry import mapping
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

RESULTS = Path(__file__).resolve().parent / "results" / "grids.json"
DB_NAME = "gridwatch_bench_grids"
TARGETS = {"validate_p95_ms": 200, "apply_100k_s": 5.0}


def _neighbours(s: Session):
    """Two blocks of one community sharing a boundary longer than 50 m, and that boundary."""
    from geodata.grids import store

    blocks = store.current_grids(s, 3)
    for a in blocks:
        for b in blocks:
            if a.code < b.code and a.parent_code == b.parent_code:
                shared = shapely.intersection(a.geom.boundary, b.geom.boundary)
                if shared.length > 0.0005:
                    return a, b, shared
    raise SystemExit("no two neighbouring blocks in the demo data")


def moved_boundary_spec(s: Session) -> dict:
    """Push the middle of the shared boundary ~15 m into the second block: a bump taken from it."""
    a, b, shared = _neighbours(s)
    mid = shared.interpolate(0.5, normalized=True)
    bump = shapely.intersection(b.geom, mid.buffer(0.00015, quad_segs=4))
    return {"grids": [{"code": a.code, "geometry": mapping(shapely.union(a.geom, bump))},
                      {"code": b.code, "geometry": mapping(shapely.difference(b.geom, bump))}]}


def time_validation(engine, reps: int) -> dict:
    from geodata.grids import changesets

    with Session(engine) as s:
        spec = moved_boundary_spec(s)
        n_blocks = s.execute(text("SELECT count(*) FROM grid WHERE level = 3 AND valid_to IS NULL")).scalar_one()
        out = {"blocks": n_blocks}
        for name, impact in (("validate", False), ("validate_and_impact", True)):
            ms = []
            for _ in range(reps):
                t0 = time.perf_counter()
                res = changesets.check_draft(s, spec, with_impact=impact)
                ms.append((time.perf_counter() - t0) * 1000)
                assert res["valid"], res["problems"]
            ms.sort()
            out[name] = {"n": reps, "p50_ms": round(statistics.median(ms), 1),
                         "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1), "max_ms": round(ms[-1], 1)}
        s.rollback()
    return out


def time_apply(engine, n: int) -> dict:
    from geodata.grids import changesets, edits

    with Session(engine) as s:
        block, parent = s.execute(text(
            "SELECT code, parent_code FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY ST_Area(geom) DESC LIMIT 1")).one()
        other = s.execute(text("SELECT code FROM grid WHERE level = 2 AND valid_to IS NULL AND code <> :p ORDER BY code "
                               "LIMIT 1"), {"p": parent}).scalar_one()
        t0 = time.perf_counter()
        s.execute(text("""
            INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code,
                               community_code, status, reported_at, updated_at, synthetic)
            SELECT 'BG' || lpad(k::text, 10, '0'), 'problem', 'sanitation', '生成的未办结问题 ' || k, '', 'patrol',
                   p, :b, :p, 'reported', now() - interval '1 day', now(), true
            FROM (SELECT (d).geom AS p, row_number() OVER () AS k
                  FROM (SELECT ST_Dump(ST_GeneratePoints(geom, :n, 11)) AS d FROM grid
                        WHERE code = :b AND valid_to IS NULL) x) y"""), {"b": block, "p": parent, "n": n})
        s.execute(text("ANALYZE issue"))
        s.commit()
        gen_s = time.perf_counter() - t0
        open_in_block = s.execute(text("SELECT count(*) FROM issue WHERE grid_code = :b AND status <> ALL(:c)"),
                                  {"b": block, "c": ["closed", "evaluated"]}).scalar_one()
        author = changesets.Author(None, "bench")
        draft = changesets.load_draft(s)
        new_code = edits.move(draft, block, other)
        pid = changesets.save_proposal(s, draft, author, "bench: move a block to another community")
        s.commit()
        t0 = time.perf_counter()
        out = changesets.apply_proposal(s, pid, author)
        s.commit()
        apply_s = time.perf_counter() - t0
        moved = s.execute(text("SELECT count(*) FROM issue WHERE grid_code = :c"), {"c": new_code}).scalar_one()
        t0 = time.perf_counter()
        changesets.revert(s, out["id"], author)
        s.commit()
        revert_s = time.perf_counter() - t0
    return {"generated_issues": n, "generate_s": round(gen_s, 2), "open_issues_in_block": open_in_block,
            "issues_moved": out["issues_moved"], "issues_in_new_block": moved, "apply_s": round(apply_s, 3),
            "revert_s": round(revert_s, 3), "block": block, "new_code": new_code}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench grids")
    ap.add_argument("--issues", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args(argv)
    from etl.demo import load_demo
    from geodata.db import database_url
    from geodata.db.admin import create_database, drop_database
    from geodata.settings import Settings

    url = create_database(database_url(Settings()), DB_NAME)
    engine = create_engine(url)
    try:
        t0 = time.perf_counter()
        load_demo(engine, progress=False)
        print(f"demo loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        validation = time_validation(engine, args.reps)
        print(json.dumps(validation, ensure_ascii=False), flush=True)
        apply = time_apply(engine, args.issues)
        print(json.dumps(apply, ensure_ascii=False), flush=True)
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)
    result = {"targets": TARGETS, "validation": validation, "apply": apply,
              "ok": validation["validate"]["p95_ms"] <= TARGETS["validate_p95_ms"]
              and apply["apply_s"] <= TARGETS["apply_100k_s"]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps({"ok": result["ok"]}))
