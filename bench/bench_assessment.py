"""Assessment benchmark: every indicator for all 74 grids (1 street, 14 communities, 59 blocks) and
the grid leaders × 12 months on the demo (target < 1 s), the same at 10⁶ issues (target < 5 s),
and one bulletin PDF (target < 10 s). Writes bench/results/assessment.json.

Runs in a scratch database (``gridwatch_bench_assessment``) as the CLI's jobs do (``gridwatch
bulletin``: the owner role, in every grid's scope — row-level security applies to the owner too):
the demo is loaded, then — unless
``--quick`` — issues are generated up to 10⁶ with bench_map's generator (closed and open cases with
deadlines; no events, so the event-based measures are the demo's).

    python -m bench assessment [--quick] [--keep] [--reps N]
"""
from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import orjson
from sqlalchemy import text

RESULTS = Path(__file__).resolve().parent / "results" / "assessment.json"
DB_NAME = "gridwatch_bench_assessment"
TARGETS = {"indicators_demo_s": 1.0, "indicators_1e6_s": 5.0, "bulletin_pdf_s": 10.0}
DEMO_END = dt.date(2026, 11, 27)


def _all_indicators(s, tz, as_of) -> tuple[float, int]:
    from geodata.access.scope import Scope
    from geodata.assessment.indicators import By, compute, compute_levels
    from geodata.assessment.periods import months_of

    months = months_of(2026)
    t0 = time.perf_counter()
    # the three grid levels from one query per family (compute_levels), the grid leaders by theirs
    tables = list(compute_levels(s, Scope.everything(), months, (1, 2, 3), tz=tz, as_of=as_of).values())
    tables.append(compute(s, Scope.everything(), months, By.official("grid_leader"), tz=tz, as_of=as_of))
    return time.perf_counter() - t0, sum(len(t.values) for t in tables)


def _timed(fn, reps: int) -> dict:
    runs = [fn() for _ in range(reps)]
    secs = [r[0] for r in runs]
    return {"reps": reps, "median_s": round(statistics.median(secs), 3), "max_s": round(max(secs), 3),
            "cells": runs[0][1]}


def main(argv: list[str]) -> None:
    from bench.bench_map import generate_issues
    from bench.common import owner_engine, scratch_demo
    from etl.bulletins import issue_bulletin
    from etl.demo import AS_OF_TIME
    from geodata.access.scope import Scope
    from geodata.assessment.periods import parse_period
    from geodata.clock import zone
    from geodata.db import open_session
    from geodata.db.admin import drop_database
    from geodata.settings import DEFAULT_TIMEZONE

    quick, keep = "--quick" in argv, "--keep" in argv
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 5
    tz = zone(DEFAULT_TIMEZONE)
    as_of = dt.datetime.combine(DEMO_END, AS_OF_TIME, tzinfo=tz)
    admin, url = scratch_demo(DB_NAME, end=DEMO_END)
    engine = owner_engine(url)
    result: dict = {"targets": TARGETS, "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        with open_session(engine, scope=Scope.everything()) as s:
            result["demo_issues"] = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
            _all_indicators(s, tz, as_of)   # warm-up
            result["indicators_demo"] = _timed(lambda: _all_indicators(s, tz, as_of), reps)
            t0 = time.perf_counter()
            b = issue_bulletin(s, Scope.everything(), parse_period("2026-10"), level=3, tz=tz, as_of=as_of)
            result["bulletin"] = {"seconds": round(time.perf_counter() - t0, 3), "pdf_bytes": len(b.pdf),
                                  "xlsx_bytes": len(b.xlsx)}
            s.rollback()
        if not quick:
            with open_session(engine, scope=Scope.everything()) as s:
                have = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
            result["generate_s"] = round(generate_issues(engine, 1_000_000 - have), 1)
            with open_session(engine, scope=Scope.everything()) as s:
                result["issues"] = s.execute(text("SELECT count(*) FROM issue")).scalar_one()
            with open_session(engine, scope=Scope.everything()) as s:
                _all_indicators(s, tz, as_of)
                result["indicators_1e6"] = _timed(lambda: _all_indicators(s, tz, as_of), max(1, reps // 2))
    finally:
        engine.dispose()
        if not keep:
            drop_database(admin, DB_NAME)
    verdict = {"indicators_demo": result["indicators_demo"]["median_s"] < TARGETS["indicators_demo_s"],
               "bulletin_pdf": result["bulletin"]["seconds"] < TARGETS["bulletin_pdf_s"]}
    if "indicators_1e6" in result:
        verdict["indicators_1e6"] = result["indicators_1e6"]["median_s"] < TARGETS["indicators_1e6_s"]
    result["verdict"] = verdict
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(json.dumps({k: v for k, v in result.items() if k != "targets"}, indent=2))
    print(f"→ {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
