"""Acceptance audit (issue 4): two weekly-notice runs for one week at once send each leader one SMS."""
from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import create_engine, text

from geodata.db import session_scope
from geodata.workflow.notices import send_weekly_notices
from tests.conftest import SUFFIX
from tests.world import TZ, drop_database, scratch_database, seed

NOW = dt.datetime(2026, 3, 4, 2, tzinfo=dt.UTC)


def test_concurrent_weekly_runs_deliver_once_per_leader(server_url):
    name = f"gridwatch_test_audit_notice{SUFFIX}"
    engine = create_engine(scratch_database(server_url, name), pool_size=4)
    try:
        with session_scope(engine) as s:
            world = seed(s)
        barrier = threading.Barrier(2)
        results: list = [None, None]

        def run(k: int) -> None:
            try:
                with session_scope(engine) as s:
                    actor = world.actor(s, "operator")
                    barrier.wait()
                    results[k] = send_weekly_notices(s, actor, now=NOW, tz=TZ)
            except Exception as exc:
                results[k] = exc

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(isinstance(r, dict) for r in results), results
        assert sorted(r["delivered"] for r in results) == [0, 4]
        assert sorted(r["skipped"] for r in results) == [0, 4]
        with engine.connect() as c:
            rows = c.execute(text("SELECT official_id, count(*) FROM outbox GROUP BY official_id")).all()
        assert len(rows) == 4 and all(n == 1 for _, n in rows)
    finally:
        engine.dispose()
        drop_database(server_url, name)
