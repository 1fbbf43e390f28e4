"""``gridwatch demo --issues N``: the demo street with N issues in total — the demo year plus earlier
years of history, the same shape (full event histories, reporters), for benchmarks at 10⁵–10⁶.

The demo's closed issues are copied set-wise into earlier years: copy ``c`` is every closed issue of
the demo with each of its timestamps (and its events') moved ``c`` years back in the local calendar
(Asia/Shanghai, the demo's zone), its number in that year (``WT``/``SQ`` + year + sequence; the
sequence of the demo's later year gets 500 000 added, so the two demo years never meet in one
earlier year). The open work stays the demo's: history grows, today's workload does not — as in a
street that has run the system for years.

How it is loaded (a bulk load):

- **One transaction** for the whole load: it commits every copy or none, so an interrupted load
  leaves the database as it was (its indexes and keys too) and the next run starts from there. Runs
  count what is there: a run adds copies after the last one (growing 10⁵ → 10⁶ copies only the
  difference). It holds its tables locked until it commits (a loader's, not a live server's, job).
- The demo's closed issues, their events and reporters are read once into temporary tables; each
  batch of whole copies is one ``INSERT … SELECT`` per table from them (no per-row test of which
  issues were copied: the last, partial copy is its first issues by id, known before the batch).
- The first copy is inserted as any insert goes; the tables it wrote (``pg_stat_xact_user_tables``:
  the copies' three and whatever the triggers on ``issue`` write — the rollups of migrations 0017
  and 0021, the search keys of 0022) are the load's. Of those the loading role owns (the CLI's owner
  role owns them all), the secondary indexes (not backing a primary key, unique or exclusion
  constraint, nothing depending on them, and only those whose definition reads back the same once
  made again: a partial index's ``IN (…)`` list does not, and stays) and the foreign keys are
  dropped for the other copies and made again after them, from the catalog's own definitions
  (``pg_get_indexdef``, ``pg_get_constraintdef``: whatever a migration adds is handled alike; each
  checked to read back as it was; the keys validated again over every row), under a generous
  ``maintenance_work_mem``.
- The triggers stay as they are: each batch's INSERT fires the statement-level ones once, as any
  insert does, so the rollups and the search keys hold exactly what the triggers make — this module
  has no second definition of their rows.
- Every table the load wrote is vacuumed and analyzed after it commits (the visibility map for
  index-only scans, the planner's statistics).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

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
#: the tables the copies go to
TABLES = ("issue", "issue_event", "issue_reporter")
#: the load's own memory (SET LOCAL): sorts of a batch in memory, index builds in one pass
WORK_MEM = "256MB"
MAINTENANCE_WORK_MEM = "1GB"


class ScaleError(RuntimeError):
    pass


def _shift(col: str) -> str:
    return f"(({col} AT TIME ZONE :zone) - make_interval(years => c.c::int)) AT TIME ZONE :zone"


#: the demo's closed issues, their events and reporters: what each batch copies
_SOURCES = (
    f"CREATE TEMP TABLE scale_src_issue ON COMMIT DROP AS SELECT * FROM issue "
    f"WHERE id BETWEEN :lo AND :hi AND status IN {_CLOSED} ORDER BY id",
    "CREATE TEMP TABLE scale_src_event ON COMMIT DROP AS SELECT e.* FROM issue_event e "
    "WHERE e.issue_id IN (SELECT id FROM scale_src_issue) ORDER BY e.id",
    "CREATE TEMP TABLE scale_src_reporter ON COMMIT DROP AS SELECT r.* FROM issue_reporter r "
    "WHERE r.issue_id IN (SELECT id FROM scale_src_issue) ORDER BY r.issue_id",
    "ANALYZE scale_src_issue", "ANALYZE scale_src_event", "ANALYZE scale_src_reporter",
)

#: copies :c0…:c1 of the demo's closed issues; the last copy of the load (:last) only those up to :cut
_COPIES = "generate_series(CAST(:c0 AS int), CAST(:c1 AS int)) AS c(c)"
_IN_COPY = "(c.c < :last OR {id} <= :cut)"

_INSERT_ISSUES = f"""
    INSERT INTO issue (id, number, kind, domain_code, title, description, source, location,
        address, grid_code, community_code, leader_in_charge_id, responsible_id, grid_leader_id,
        assignee_id, worksheet, status, reported_at, assigned_at, sign_deadline, signed_at,
        due_at, closed_at, rework_count, reassign_count, satisfaction, version, updated_at,
        synthetic)
    SELECT i.id + c.c::bigint * :si,
           left(i.number, 2) || (substr(i.number, 3, 4)::int - c.c)::text
             || lpad((substr(i.number, 7)::int
                      + 500000 * (substr(i.number, 3, 4)::int - :y0))::text, 6, '0'),
           i.kind, i.domain_code, i.title, i.description, i.source, i.location, i.address,
           i.grid_code, i.community_code, i.leader_in_charge_id, i.responsible_id, i.grid_leader_id,
           i.assignee_id, i.worksheet, i.status, {_shift('i.reported_at')},
           {_shift('i.assigned_at')}, {_shift('i.sign_deadline')}, {_shift('i.signed_at')},
           {_shift('i.due_at')}, {_shift('i.closed_at')}, i.rework_count, i.reassign_count,
           i.satisfaction, i.version, {_shift('i.updated_at')}, true
    FROM {_COPIES} CROSS JOIN scale_src_issue i
    WHERE {_IN_COPY.format(id='i.id')}
    ORDER BY c.c, i.id"""

_INSERT_EVENTS = f"""
    INSERT INTO issue_event (id, issue_id, action, from_status, to_status, actor_id, actor_role,
                             at, note, data)
    SELECT e.id + c.c::bigint * :se, e.issue_id + c.c::bigint * :si, e.action, e.from_status, e.to_status,
           e.actor_id, e.actor_role, {_shift('e.at')}, e.note, e.data
    FROM {_COPIES} CROSS JOIN scale_src_event e
    WHERE {_IN_COPY.format(id='e.issue_id')}"""

_INSERT_REPORTERS = f"""
    INSERT INTO issue_reporter (issue_id, name, phone)
    SELECT r.issue_id + c.c::bigint * :si, r.name, r.phone
    FROM {_COPIES} CROSS JOIN scale_src_reporter r
    WHERE {_IN_COPY.format(id='r.issue_id')}"""


@dataclass(frozen=True)
class Deferred:
    """What the load drops and makes again after the copies: ``indexes`` and ``keys`` as
    (table, name, the statement that makes it again, its definition as the catalog prints it, its
    comment or None)."""

    indexes: tuple[tuple[str, str, str, str, str | None], ...]
    keys: tuple[tuple[str, str, str, str, str | None], ...]

    def __len__(self) -> int:
        return len(self.indexes) + len(self.keys)


#: of ``:t``, the tables the current role owns (may drop and make indexes and keys of)
_OWNED = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname = ANY (CAST(:t AS text[]))
  AND pg_has_role(current_user, c.relowner, 'USAGE')
ORDER BY c.relname
"""

#: secondary indexes: not backing a constraint, not unique, nothing depending on them (a foreign
#: key may reference a unique index), valid, not the table's CLUSTER or replica identity index, no
#: column statistics target of their own
_INDEXES = """
SELECT t.relname, x.relname, pg_get_indexdef(i.indexrelid),
       CASE WHEN x.reltablespace = 0 THEN ''
            ELSE ' TABLESPACE ' || quote_ident((SELECT spcname FROM pg_tablespace WHERE oid = x.reltablespace)) END,
       obj_description(i.indexrelid, 'pg_class')
FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY (CAST(:t AS text[]))
  AND NOT i.indisprimary AND NOT i.indisunique AND NOT i.indisexclusion
  AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisclustered AND NOT i.indisreplident
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass
                  AND d.refobjid = i.indexrelid AND d.deptype <> 'a')
  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
ORDER BY t.relname, x.relname
"""

#: foreign keys of the tables that the current role may make again (REFERENCES on the other table)
_KEYS = """
SELECT t.relname, k.conname,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid)),
       pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint')
FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
WHERE k.contype = 'f' AND t.relnamespace = 'public'::regnamespace AND t.relname = ANY (CAST(:t AS text[]))
  AND has_table_privilege(k.confrelid, 'REFERENCES')
ORDER BY t.relname, k.conname
"""


def _index_body(definition: str) -> tuple[str, str]:
    """``CREATE INDEX name ON table USING …`` without the table: what makes it the same index."""
    head, _, rest = definition.partition(" ON ")
    return head, rest.partition(" USING ")[2]


def deferrable(conn: Connection, tables: tuple[str, ...] | list[str] = TABLES) -> Deferred:
    """The secondary indexes and foreign keys of ``tables`` (those the current role owns) that a bulk
    load may drop and make again exactly, as the catalog defines them. An index is taken only if its
    definition reads back the same once made again (tried on an empty temporary copy of its table:
    a partial index's ``IN (…)`` list, say, reads back otherwise and stays)."""
    owned = conn.execute(text(_OWNED), {"t": list(tables)}).scalars().all()
    p = {"t": list(owned)}
    indexes = []
    probes: set[str] = set()
    for table, name, definition, space, comment in conn.execute(text(_INDEXES), p).all():
        probe = f"scale_probe_{table}"
        if probe not in probes:
            conn.execute(text(f'CREATE TEMP TABLE "{probe}" (LIKE public."{table}") ON COMMIT DROP'))
            probes.add(probe)
        head, body = _index_body(definition)
        conn.execute(text(f'{head} ON pg_temp."{probe}" USING {body}'))
        again = conn.execute(text(
            "SELECT pg_get_indexdef(x.oid) FROM pg_class x "
            "WHERE x.relname = :n AND x.relnamespace = pg_my_temp_schema()"), {"n": name}).scalar_one()
        conn.execute(text(f'DROP INDEX pg_temp."{name}"'))
        if _index_body(again) == (head, body):
            indexes.append((table, name, definition + space, definition, comment))
    keys = tuple(tuple(r) for r in conn.execute(text(_KEYS), p).all())
    return Deferred(indexes=tuple(indexes), keys=keys)


def drop(conn: Connection, d: Deferred) -> None:
    for table, name, _, _, _ in d.keys:
        conn.execute(text(f'ALTER TABLE public."{table}" DROP CONSTRAINT "{name}"'))
    for _, name, _, _, _ in d.indexes:
        conn.execute(text(f'DROP INDEX public."{name}"'))


def restore(conn: Connection, d: Deferred, step=lambda name: None) -> None:
    """Make ``d``'s indexes and keys again (the keys validated over every row), with their comments;
    ``step(name)`` before each. Each must read back as it was (else ScaleError: the caller's
    transaction is rolled back, nothing changed)."""
    for _table, name, make, definition, comment in d.indexes:
        step(name)
        conn.execute(text(make))
        again = conn.execute(text("SELECT pg_get_indexdef(CAST(:n AS regclass))"), {"n": f'public."{name}"'}).scalar_one()
        if again != definition:
            raise ScaleError(f"index {name} reads back as {again!r}, not {definition!r}")
        if comment is not None:
            conn.execute(text(f'COMMENT ON INDEX public."{name}" IS ' + _literal(conn, comment)))
    for table, name, make, definition, comment in d.keys:
        step(name)
        conn.execute(text(make))
        again = conn.execute(text(
            "SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conname = :n "
            "AND k.conrelid = CAST(:t AS regclass)"), {"n": name, "t": f'public."{table}"'}).scalar_one()
        if again != definition:
            raise ScaleError(f"foreign key {name} reads back as {again!r}, not {definition!r}")
        if comment is not None:
            conn.execute(text(f'COMMENT ON CONSTRAINT "{name}" ON public."{table}" IS ' + _literal(conn, comment)))


def _literal(conn: Connection, value: str) -> str:
    return conn.execute(text("SELECT quote_literal(CAST(:v AS text))"), {"v": value}).scalar_one()


def _written(conn: Connection) -> list[str]:
    """The tables of schema public this transaction has written so far (the copies' tables and what
    their triggers write)."""
    return list(conn.execute(text(
        "SELECT relname FROM pg_stat_xact_user_tables WHERE schemaname = 'public' "
        "AND n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname")).scalars())


class _Bar:
    """The load's progress: the issues copied, then one bar per later phase (the indexes and keys
    made again, the tables vacuumed), each step named as it starts."""

    def __init__(self, enabled: bool, need: int):
        self.p = self.task = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn())
        self.p.start()
        self.copies = self.p.add_task("历史问题 history issues", total=need)

    def copied(self, n: int) -> None:
        if self.p:
            self.p.update(self.copies, completed=n)

    def phase(self, title: str, total: int) -> None:
        if self.p:
            self._finish()
            self.title, self.started = title, False
            self.task = self.p.add_task(title, total=total)

    def step(self, what: str) -> None:
        if self.p and self.task is not None:
            self.p.update(self.task, advance=1 if self.started else 0, description=f"{self.title}: {what}")
            self.started = True

    def _finish(self) -> None:
        if self.task is not None:
            self.p.update(self.task, completed=self.p.tasks[self.task].total, description=self.title)

    def close(self) -> None:
        if self.p:
            self._finish()
            self.p.stop()
            self.p = None


def grow_history(engine: Engine, total: int, *, progress: bool = True, defer: bool = True) -> dict[str, Any]:
    """Add copies of the demo's closed issues (with their events and reporters) in earlier years
    until the database holds ``total`` issues, in one transaction. Returns counts, seconds (each
    phase's too), how many indexes and keys were made again and the tables vacuumed. ``defer``: drop
    and make again the secondary indexes and foreign keys of the tables the copies write (False:
    keep them, row by row). Refuses a database without the demo (no closed issue); one holding
    ``total`` issues or more is left as it is."""
    t0 = time.perf_counter()
    zone = DEMO_TZ.key
    phases: dict[str, float] = {}
    with engine.connect() as conn:   # one transaction: committed below, rolled back on any error
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
        need = total - have
        copies = math.ceil(need / n_base)
        first, last = done + 1, done + copies
        # the last copy: the demo's first closed issues by id, up to the cut-th one
        cut = conn.execute(text(
            f"SELECT id FROM issue WHERE status IN {_CLOSED} AND id BETWEEN :lo AND :hi ORDER BY id "
            "OFFSET :k LIMIT 1"), {"lo": lo, "hi": hi, "k": need - (copies - 1) * n_base - 1}).scalar_one()
        per_batch = max(1, BATCH_ISSUES // n_base)
        bar = _Bar(progress, need)
        deferred = None
        try:
            conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
            conn.execute(text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
            for sql in _SOURCES:
                conn.execute(text(sql), {"lo": lo, "hi": hi})
            added = 0

            def batch(c0: int, c1: int) -> int:
                params = {"zone": zone, "c0": c0, "c1": c1, "last": last, "cut": cut,
                          "si": STRIDE_ISSUE, "se": STRIDE_EVENT, "y0": y0}
                n = conn.execute(text(_INSERT_ISSUES), params).rowcount
                conn.execute(text(_INSERT_EVENTS), params)
                conn.execute(text(_INSERT_REPORTERS), params)
                return n

            # the first copy as any insert goes (every index and key in place): which tables a copy
            # writes — its own three and whatever the triggers on them write
            added += batch(first, first)
            bar.copied(added)
            if defer and last > first:
                deferred = deferrable(conn, _written(conn))
                drop(conn, deferred)
            phases["first_copy"] = time.perf_counter() - t0
            c = first + 1
            while c <= last:
                added += batch(c, min(last, c + per_batch - 1))
                bar.copied(added)
                c += per_batch
            phases["copies"] = time.perf_counter() - t0 - phases["first_copy"]
            if added != need:
                raise ScaleError(f"copied {added} issues, expected {need}")
            if deferred:
                t1 = time.perf_counter()
                bar.phase("索引与外键 indexes and keys", len(deferred))
                restore(conn, deferred, bar.step)
                phases["indexes_keys"] = time.perf_counter() - t1
            for table in ("issue", "issue_event"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
            written = _written(conn)
            t1 = time.perf_counter()
            conn.commit()
            phases["commit"] = time.perf_counter() - t1
        except BaseException:
            bar.close()
            raise
    t1 = time.perf_counter()
    bar.phase("VACUUM ANALYZE", len(written))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in written:
                bar.step(table)
                conn.execute(text(f'VACUUM ANALYZE public."{table}"'))
    finally:
        bar.close()
    phases["vacuum_analyze"] = time.perf_counter() - t1
    return {"issues": have + added, "added": added, "seconds": round(time.perf_counter() - t0, 1),
            "phases": {k: round(v, 1) for k, v in phases.items()},
            "remade": len(deferred) if deferred else 0, "vacuumed": written}
