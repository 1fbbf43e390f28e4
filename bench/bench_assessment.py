"""Assessment benchmark: every indicator for all 74 grids (1 street, 14 communities, 59 blocks) and
the grid leaders × 12 months on the demo (target < 1 s), the same at 10⁶ issues (target < 5 s),
and one bulletin PDF (target < 10 s). Writes bench/results/assessment.json.

Runs in a scratch database (``gridwatch_bench_assessment``): the demo is loaded, then — unless
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
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

RESULTS = Path(__file__).resolve().parent / "results" / "assessment.json"
DB_NAME = "gridwatch_bench_assessment"
TARGETS = {"indicators_demo_s": 1.0, "indicators_1e6_s": 5.0, "bulletin_pdf_s": 10.0}
DEMO_END = dt.date(2026, 11, 27)


def _all_indicators(s, tz, as_of) -> tuple[float, int]:
    from geodata.access.scope import Scope
    from geodata.assessment.indicators import By, compute
    from geodata.assessment.periods import months_of

    months = months_of(2026)
    t0 = time.perf_counter()
    cells = 0
    for by in (By.grid(1), By.grid(2), By.grid(3), By.official("grid_leader")):
        cells += len(compute(s, Scope.everything(), months, by, tz=tz, as_of=as_of).values)
    return time.perf_counter() - t0, cells


def _timed(fn, reps: int) -> dict:
    runs = [fn() for _ in range(reps)]
    secs = [r[0] for r in runs]
    return {"reps": reps, "median_s": round(statistics.median(secs), 3), "max_s": round(max(secs), 3),
            "cells": runs[0][1]}


def main(argv: list[str]) -> None:
    from bench.bench_map import generate_issues
    from etl.bulletins import issue_bulletin
    from etl.demo import AS_OF_TIME, load_demo
    from geodata.access.scope import Scope
    from geodata.assessment.periods import parse_period
    from geodata.clock import zone
    from geodata.db import database_url
    from geodata.db.admin import create_database, drop_database
    from geodata.settings import DEFAULT_TIMEZONE, Settings

    quick, keep = "--quick" in argv, "--keep" in argv
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 5
    tz = zone(DEFAULT_TIMEZONE)
    as_of = dt.datetime.combine(DEMO_END, AS_OF_TIME, tzinfo=tz)
    url = create_database(database_url(Settings()), DB_NAME)
    engine = create_engine(url)
    result: dict = {"targets": TARGETS, "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        load_demo(engine, end=DEMO_END, progress=False)
        with Session(engine) as s:
            _all_indicators(s, tz, as_of)   # warm-up
            result["indicators_demo"] = _timed(lambda: _all_indicators(s, tz, as_of), reps)
            t0 = time.perf_counter()
            b = issue_bulletin(s, Scope.everything(), parse_period("2026-10"), level=3, tz=tz, as_of=as_of)
            result["bulletin"] = {"seconds": round(time.perf_counter() - t0, 3), "pdf_bytes": len(b.pdf),
                                  "xlsx_bytes": len(b.xlsx)}
            s.rollback()
        if not quick:
            with engine.connect() as conn:
                have = conn.execute(text("SELECT count(*) FROM issue")).scalar_one()
            result["generate_s"] = round(generate_issues(engine, 1_000_000 - have), 1)
            with engine.connect() as conn:
                result["issues"] = conn.execute(text("SELECT count(*) FROM issue")).scalar_one()
            with Session(engine) as s:
                _all_indicators(s, tz, as_of)
                result["indicators_1e6"] = _timed(lambda: _all_indicators(s, tz, as_of), max(1, reps // 2))
    finally:
        engine.dispose()
        if not keep:
            drop_database(url)
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
