"""``gridwatch demo --issues N``: the demo street with N issues in total — the demo year plus earlier
years of history, the same shape (full event histories, reporters), for benchmarks at 10⁵–10⁶.

The demo's closed issues are copied set-wise into earlier years: copy ``c`` is every closed issue of
the demo with each of its timestamps (and its events') moved ``c`` years back in the local calendar
(Asia/Shanghai, the demo's zone), its number in that year (``WT``/``SQ`` + year + sequence; the
sequence of the demo's later year gets 500 000 added, so the two demo years never meet in one
earlier year). The open work stays the demo's: history grows, today's workload does not — as in a
street that has run the system for years. Batches of whole copies (one INSERT … SELECT each for
issues, events and reporters) under one transaction per batch, with a progress bar.
"""
from __future__ import annotations

import math
import time

from sqlalchemy import Engine, text

from etl.demo import DEMO_TZ
from geodata.access import rls
from geodata.access.scope import Scope

#: issues per INSERT statement (whole copies of the demo's closed issues)
BATCH_ISSUES = 100_000
#: copy c of issue i is issue i + c·STRIDE_ISSUE (its events: e + c·STRIDE_EVENT); the demo's own
#: issues are those below STRIDE_ISSUE
STRIDE_ISSUE = 10_000_000
STRIDE_EVENT = 100_000_000
_CLOSED = "('closed', 'evaluated')"


class ScaleError(RuntimeError):
    pass


def _shift(col: str) -> str:
    return f"(({col} AT TIME ZONE :zone) - make_interval(years => c.c::int)) AT TIME ZONE :zone"


def grow_history(engine: Engine, total: int, *, progress: bool = True) -> dict[str, float]:
    """Add copies of the demo's closed issues (with their events and reporters) in earlier years
    until the database holds ``total`` issues. Returns counts and seconds. Refuses a database
    without the demo (no closed issue), or one that was grown already to more than ``total``."""
    t0 = time.perf_counter()
    zone = DEMO_TZ.key
    with engine.begin() as conn:
        rls.apply(conn, Scope.everything())
        have = conn.execute(text("SELECT count(*) FROM issue")).scalar_one()
        n_base, lo, hi, y0 = conn.execute(text(
            f"SELECT count(*), min(id), max(id), min(extract(year FROM reported_at AT TIME ZONE :z))::int "
            f"FROM issue WHERE status IN {_CLOSED} AND id < :s"), {"z": zone, "s": STRIDE_ISSUE}).one()
        done = conn.execute(text("SELECT coalesce(max(id) / :s, 0) FROM issue"), {"s": STRIDE_ISSUE}).scalar_one()
    if not n_base:
        raise ScaleError("没有演示数据：先运行 gridwatch demo / no demo data: run `gridwatch demo` first")
    if have >= total:
        return {"issues": have, "added": 0, "seconds": 0.0}
    stride_i, stride_e = STRIDE_ISSUE, STRIDE_EVENT
    first_copy = done + 1
    need = total - have
    copies = math.ceil(need / n_base)
    per_batch = max(1, BATCH_ISSUES // n_base)
    bar = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn("[bold]历史问题 history issues"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("", total=need)
    added = 0
    try:
        c = first_copy
        last = first_copy + copies - 1
        while c <= last:
            c1 = min(last, c + per_batch - 1)
            limit = need - added   # the last copy may be partial: the demo's first closed issues by id
            with engine.begin() as conn:
                rls.apply(conn, Scope.everything())
                params = {"zone": zone, "c0": c, "c1": c1, "lo": lo, "hi": hi, "si": stride_i, "se": stride_e,
                          "y0": y0, "lim": limit}
                n = conn.execute(text(f"""
                    WITH c AS (SELECT generate_series(CAST(:c0 AS int), CAST(:c1 AS int)) AS c),
                    src AS (SELECT i.*, c.c FROM issue i CROSS JOIN c
                            WHERE i.id BETWEEN :lo AND :hi AND i.status IN {_CLOSED}
                            ORDER BY c.c, i.id LIMIT :lim)
                    INSERT INTO issue (id, number, kind, domain_code, title, description, source, location,
                        address, grid_code, community_code, leader_in_charge_id, responsible_id, grid_leader_id,
                        assignee_id, worksheet, status, reported_at, assigned_at, sign_deadline, signed_at,
                        due_at, closed_at, rework_count, reassign_count, satisfaction, version, updated_at,
                        synthetic)
                    SELECT c.id + c.c::bigint * :si,
                           left(c.number, 2) || (substr(c.number, 3, 4)::int - c.c)::text
                             || lpad((substr(c.number, 7)::int
                                      + 500000 * (substr(c.number, 3, 4)::int - :y0))::text, 6, '0'),
                           c.kind, c.domain_code, c.title, c.description, c.source, c.location, c.address,
                           c.grid_code, c.community_code, c.leader_in_charge_id, c.responsible_id, c.grid_leader_id,
                           c.assignee_id, c.worksheet, c.status, {_shift('c.reported_at')},
                           {_shift('c.assigned_at')}, {_shift('c.sign_deadline')}, {_shift('c.signed_at')},
                           {_shift('c.due_at')}, {_shift('c.closed_at')}, c.rework_count, c.reassign_count,
                           c.satisfaction, c.version, {_shift('c.updated_at')}, true
                    FROM src c"""), params).rowcount
                conn.execute(text(f"""
                    INSERT INTO issue_event (id, issue_id, action, from_status, to_status, actor_id, actor_role,
                                             at, note, data)
                    SELECT e.id + c.c::bigint * :se, e.issue_id + c.c::bigint * :si, e.action, e.from_status, e.to_status,
                           e.actor_id, e.actor_role, {_shift('e.at')}, e.note, e.data
                    FROM issue_event e CROSS JOIN generate_series(CAST(:c0 AS int), CAST(:c1 AS int)) AS c(c)
                    WHERE e.issue_id BETWEEN :lo AND :hi
                      AND EXISTS (SELECT 1 FROM issue n WHERE n.id = e.issue_id + c.c::bigint * :si)"""), params)
                conn.execute(text("""
                    INSERT INTO issue_reporter (issue_id, name, phone)
                    SELECT r.issue_id + c.c::bigint * :si, r.name, r.phone
                    FROM issue_reporter r CROSS JOIN generate_series(CAST(:c0 AS int), CAST(:c1 AS int)) AS c(c)
                    WHERE r.issue_id BETWEEN :lo AND :hi
                      AND EXISTS (SELECT 1 FROM issue n WHERE n.id = r.issue_id + c.c::bigint * :si)"""), params)
            added += n
            if bar:
                bar.update(task, completed=added)
            c = c1 + 1
        with engine.begin() as conn:
            rls.apply(conn, Scope.everything())
            for table in ("issue", "issue_event"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE issue"))
            conn.execute(text("VACUUM ANALYZE issue_event"))
            conn.execute(text("VACUUM ANALYZE issue_closed_rollup"))
    finally:
        if bar:
            bar.stop()
    return {"issues": have + added, "added": added, "seconds": round(time.perf_counter() - t0, 1)}
