"""``gridwatch demo --issues N`` (etl/demo_scale.py): the copies, and the bulk load's deferred
indexes and keys — the database ends as a row-by-row load leaves it, catalog and every table."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from etl import demo_scale
from etl.demo_scale import STRIDE_EVENT, STRIDE_ISSUE, ScaleError, grow_history
from geodata.db.admin import create_database, drop_database
from geodata.db.roles import OWNER_ROLE, role_url
from tests.conftest import SUFFIX, load_demo_database

CLOSED = "status IN ('closed', 'evaluated')"
BASE, FAST, REF = (f"gridwatch_test_scale{x}{SUFFIX}" for x in ("_base", "", "_ref"))

#: the catalog a load must leave as it found it
CATALOG = {
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "index comments": "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
                      "WHERE c.relkind = 'i' AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
                   "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "triggers": "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
                "WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) "
                "ORDER BY 1, 2",
    "foreign keys' triggers": "SELECT t.tgrelid::regclass::text, k.conname, count(*) FROM pg_trigger t "
                              "JOIN pg_constraint k ON k.oid = t.tgconstraint WHERE t.tgisinternal "
                              "GROUP BY 1, 2 ORDER BY 1, 2",
}


def catalog(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as c:
        return {k: [tuple(r) for r in c.execute(text(q))] for k, q in CATALOG.items()}


def contents(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every table of schema public: its row count and the md5 of its rows in order."""
    with engine.connect() as c:
        tables = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                "AND tablename <> 'spatial_ref_sys' ORDER BY 1")).scalars().all()
        return {t: tuple(c.execute(text(
            f'SELECT count(*), md5(coalesce(string_agg(x::text, \'|\' ORDER BY x::text), \'\')) FROM "{t}" x')).one())
            for t in tables}


@pytest.fixture(scope="module")
def dbs(server_url: str) -> Iterator[dict[str, Any]]:
    """Two copies of the demo: FAST grown by the bulk load, REF by the same copies row by row
    (``defer=False``: every index, key and trigger in place); before they grow, a load made to fail
    after its copies and remade indexes (FAST's catalog and contents are kept as they were)."""
    load_demo_database(server_url, BASE)
    out: dict[str, Any] = {}
    engines = []
    try:
        for name in (FAST, REF):
            url = create_database(server_url, name, template=BASE)
            engines.append(create_engine(role_url(url, OWNER_ROLE)))   # grown as the CLI grows it: the owner
            engines.append(create_engine(url))   # read as the superuser (no row-level security)
        fast, read_fast, ref, read_ref = engines
        with read_fast.connect() as c:
            out["demo"] = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
            out["n_base"] = c.execute(text(f"SELECT count(*) FROM issue WHERE {CLOSED}")).scalar_one()
        out["catalog_before"], out["contents_before"] = catalog(read_fast), contents(read_fast)
        # 2 whole copies and a part of a third: the first copy, then a batch of one whole and one partial
        out["total"] = out["demo"] + 2 * out["n_base"] + 123
        real_restore = demo_scale.restore

        def failing(conn, d, step=lambda name: None):
            real_restore(conn, d, step)
            raise RuntimeError("interrupted")

        demo_scale.restore = failing
        try:
            with pytest.raises(RuntimeError, match="interrupted"):
                grow_history(fast, out["total"], progress=False)
        finally:
            demo_scale.restore = real_restore
        out["catalog_failed"], out["contents_failed"] = catalog(read_fast), contents(read_fast)
        out["fast"] = grow_history(fast, out["total"], progress=False)
        out["ref"] = grow_history(ref, out["total"], progress=False, defer=False)
        out["engines"] = {"fast": fast, "ref": ref}
        out["read"] = {"fast": read_fast, "ref": read_ref}
        yield out
    finally:
        for e in engines:
            e.dispose()
        for name in (FAST, REF, BASE):
            drop_database(server_url, name)


def test_grows_to_the_total(dbs):
    fast = dbs["read"]["fast"]
    assert dbs["fast"]["issues"] == dbs["total"] and dbs["fast"]["added"] == dbs["total"] - dbs["demo"]
    with fast.connect() as c:
        assert c.execute(text("SELECT count(*) FROM issue")).scalar_one() == dbs["total"]
        per_copy = dict(c.execute(text("SELECT id / :s, count(*) FROM issue GROUP BY 1"), {"s": STRIDE_ISSUE}).all())
    assert per_copy == {0: dbs["demo"], 1: dbs["n_base"], 2: dbs["n_base"], 3: 123}


def test_deferred_indexes_and_keys_were_remade(dbs):
    assert dbs["fast"]["remade"] > 10 and dbs["ref"]["remade"] == 0
    assert {"issue", "issue_event", "issue_reporter", "issue_closed_rollup", "issue_closed_total"} \
        <= set(dbs["fast"]["vacuumed"])


def test_same_database_as_row_by_row(dbs):
    """The bulk load (indexes and keys dropped and made again) and the row-by-row load leave the
    same catalog and the same rows in every table — the rollups as their triggers make them."""
    fast, ref = dbs["read"]["fast"], dbs["read"]["ref"]
    assert catalog(fast) == catalog(ref) == dbs["catalog_before"]
    assert contents(fast) == contents(ref)


def test_an_interrupted_load_changes_nothing(dbs):
    assert dbs["catalog_failed"] == dbs["catalog_before"]
    assert dbs["contents_failed"] == dbs["contents_before"]


def test_a_copy_is_its_issue_years_earlier(dbs):
    """Copy 2 of a closed issue: the same issue two local years earlier, its number in that year, its
    events (ids + 2 event strides) and reporter alike."""
    fast = dbs["read"]["fast"]
    with fast.connect() as c:
        rows = c.execute(text(f"""
            SELECT o.number, n.number, n.synthetic,
                   o.title = n.title AND o.grid_code = n.grid_code AND o.status = n.status
                     AND o.assignee_id IS NOT DISTINCT FROM n.assignee_id AND ST_Equals(o.location, n.location),
                   (n.reported_at AT TIME ZONE 'Asia/Shanghai')
                     = (o.reported_at AT TIME ZONE 'Asia/Shanghai') - interval '2 years',
                   (SELECT array_agg(e.id - 2 * :se ORDER BY e.id) FROM issue_event e WHERE e.issue_id = n.id)
                     = (SELECT array_agg(e.id ORDER BY e.id) FROM issue_event e WHERE e.issue_id = o.id),
                   (SELECT array_agg(e.action ORDER BY e.id) FROM issue_event e WHERE e.issue_id = n.id)
                     = (SELECT array_agg(e.action ORDER BY e.id) FROM issue_event e WHERE e.issue_id = o.id),
                   (SELECT count(*) FROM issue_reporter r WHERE r.issue_id = o.id),
                   (SELECT count(*) FROM issue_reporter r WHERE r.issue_id = n.id)
            FROM issue o JOIN issue n ON n.id = o.id + 2 * :si
            WHERE o.{CLOSED} AND o.id < :si ORDER BY o.id"""), {"si": STRIDE_ISSUE, "se": STRIDE_EVENT}).all()
    assert len(rows) == dbs["n_base"]
    for old, new, synthetic, same, shifted, event_ids, actions, rep_old, rep_new in rows:
        assert new[:2] == old[:2] and int(new[2:6]) == int(old[2:6]) - 2
        assert synthetic and same and shifted and event_ids and actions
        assert rep_new == rep_old
    assert sum(r[-1] for r in rows) > 0


def test_the_partial_copy_is_its_first_issues_with_their_events(dbs):
    fast = dbs["read"]["fast"]
    with fast.connect() as c:
        ids = c.execute(text("SELECT id - 3 * :s FROM issue WHERE id / :s = 3 ORDER BY id"),
                        {"s": STRIDE_ISSUE}).scalars().all()
        first = c.execute(text(f"SELECT id FROM issue WHERE {CLOSED} AND id < :s ORDER BY id LIMIT 123"),
                          {"s": STRIDE_ISSUE}).scalars().all()
        events = c.execute(text("""
            SELECT (SELECT count(*) FROM issue_event WHERE issue_id / :s = 3),
                   (SELECT count(*) FROM issue_event WHERE issue_id = ANY (CAST(:ids AS bigint[])))"""),
            {"s": STRIDE_ISSUE, "ids": first}).one()
    assert ids == first
    assert events[0] == events[1] > 0


def test_rollups_equal_their_rebuild(dbs):
    """The rollups after the bulk load are what migration 0021's rebuild computes from every issue:
    the same rows and counts; the cells' sums of positions (floating point, added in another order)
    within 1e-9 of each other."""
    fast = dbs["read"]["fast"]
    tables = ("issue_closed_rollup", "issue_closed_total", "issue_closed_cell")
    with fast.connect() as c:
        if c.execute(text("SELECT to_regprocedure('gw_closed_rollups_rebuild()')")).scalar_one() is None:
            pytest.skip("no gw_closed_rollups_rebuild()")

        def read() -> dict[str, list[tuple]]:
            return {t: [tuple(r) for r in c.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5, 6, 7, 8"))]
                    for t in tables}

        before = read()
        c.execute(text("SELECT gw_closed_rollups_rebuild()"))
        after = read()
        c.rollback()
    assert before["issue_closed_total"] and before["issue_closed_cell"]
    for t in ("issue_closed_rollup", "issue_closed_total"):
        assert after[t] == before[t]
    # the cells: the same keys and counts (the first ten columns), the sums near
    assert [r[:10] for r in after["issue_closed_cell"]] == [r[:10] for r in before["issue_closed_cell"]]
    for a, b in zip(after["issue_closed_cell"], before["issue_closed_cell"], strict=True):
        assert all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a[10:], b[10:], strict=True))


def test_grown_again_adds_nothing_then_more_copies_after_the_last(dbs):
    """Runs count what is there: the same total adds nothing; a larger one copies after the last
    (partial) copy — and the bulk load and the row-by-row one still leave the same database."""
    fast, ref = dbs["engines"]["fast"], dbs["engines"]["ref"]
    read_fast, read_ref = dbs["read"]["fast"], dbs["read"]["ref"]
    assert grow_history(fast, dbs["total"], progress=False)["added"] == 0
    assert grow_history(fast, dbs["total"] - 1, progress=False)["added"] == 0
    more = dbs["total"] + 2 * dbs["n_base"] + 5
    assert grow_history(fast, more, progress=False)["added"] == more - dbs["total"]
    assert grow_history(ref, more, progress=False, defer=False)["added"] == more - dbs["total"]
    with read_fast.connect() as c:
        per_copy = dict(c.execute(text("SELECT id / :s, count(*) FROM issue GROUP BY 1"), {"s": STRIDE_ISSUE}).all())
    assert per_copy == {0: dbs["demo"], 1: dbs["n_base"], 2: dbs["n_base"], 3: 123, 4: dbs["n_base"],
                        5: dbs["n_base"], 6: 5}
    assert catalog(read_fast) == catalog(read_ref) == dbs["catalog_before"]
    assert contents(read_fast) == contents(read_ref)


def test_refuses_a_database_without_the_demo(empty_url: str):
    engine = create_engine(role_url(empty_url, OWNER_ROLE))
    try:
        with pytest.raises(ScaleError):
            grow_history(engine, 10, progress=False)
    finally:
        engine.dispose()
