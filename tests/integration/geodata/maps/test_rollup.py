"""The map's aggregates (migration 0017, geodata.maps.rollup): the choropleth's and the panel's counts
read from the trigger-kept rollups equal the counts over every issue row — on the small world, on
the demo, after inserts, transitions, set-wise moves and deletes, and under row-level security for
the app role in several scopes (grids, and an official seeing issues through the chain)."""
from __future__ import annotations

import datetime as dt

import pytest
from geoalchemy2 import WKTElement
from sqlalchemy import text

from geodata.access.scope import Scope
from geodata.db import open_session
from geodata.maps import metrics as map_metrics
from geodata.maps import rollup
from geodata.models import Issue
from geodata.workflow.filters import IssueFilter
from tests.conftest import DEMO_END
from tests.world import B11, B12, B21, C1, C2, NOW, STREET, TZ, seed, seed_issues

ALL = Scope.everything()
DEMO_NOW = dt.datetime.combine(DEMO_END, dt.time(23, 0), tzinfo=dt.UTC)

FILTERS = [
    IssueFilter(),
    IssueFilter(kind="problem"),
    IssueFilter(kind="sentiment", domains=("safety", "sanitation")),
    IssueFilter(statuses=("closed",)),
    IssueFilter(statuses=("evaluated", "handling")),
    IssueFilter(overdue=True),
    IssueFilter(overdue=False, kind="problem"),
    IssueFilter(preset="year"),
    IssueFilter(preset="month"),
    IssueFilter(preset="quarter", overdue=True),
    IssueFilter(date_from=dt.date(2026, 6, 1), date_to=dt.date(2026, 9, 30)),
    IssueFilter(date_from=dt.date(2026, 8, 15)),
    IssueFilter(open=False),
    IssueFilter(open=True),
    IssueFilter(grid=C1),
]


def both_ways(s, scope: Scope, flt: IssueFilter, now: dt.datetime, street: str, community: str, block: str):
    """Every count the map asks for, through the rollup and over every row; asserts they agree and
    that the rollup way was taken."""
    assert rollup.serves(flt, TZ)
    for level, parent in ((2, street), (3, community), (3, None)):
        fast = map_metrics.grid_metrics(s, scope, flt, level, parent, now, tz=TZ)
        slow = map_metrics.grid_metrics(s, scope, flt, level, parent, now, tz=TZ, use_rollup=False)
        assert fast == slow, (flt, level, parent)
    for code in (None, street, community, block):
        fast = map_metrics.grid_counts(s, scope, flt, code, now, tz=TZ)
        slow = map_metrics.grid_counts(s, scope, flt, code, now, tz=TZ, use_rollup=False)
        assert fast == slow, (flt, code)
    return slow


def rollup_totals(s) -> tuple[int, int, int, int]:
    """(closed in the per-day rollup, closed late there, closed in the totals, closed late there)."""
    return tuple(s.execute(text(
        "SELECT (SELECT coalesce(sum(n), 0) FROM issue_closed_rollup), (SELECT coalesce(sum(late), 0) "
        "FROM issue_closed_rollup), (SELECT coalesce(sum(n), 0) FROM issue_closed_total), "
        "(SELECT coalesce(sum(late), 0) FROM issue_closed_total)")).one())


def raw_totals(s) -> tuple[int, int, int, int]:
    n, late = s.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE due_at IS NOT NULL AND closed_at > due_at) FROM issue "
        "WHERE status IN ('closed', 'evaluated')")).one()
    return (n, late, n, late)


@pytest.fixture
def small(empty_db):
    world = seed(empty_db)
    world.issues = seed_issues(empty_db, world)
    return empty_db, world


def test_rollup_equals_raw_counts_on_the_small_world(small):
    s, _world = small
    assert rollup_totals(s) == raw_totals(s) and raw_totals(s)[0] > 0
    for flt in FILTERS:
        both_ways(s, ALL, flt, NOW, STREET, C2, B21)


def test_rollup_follows_inserts_transitions_moves_and_deletes(small):
    s, _world = small
    before = both_ways(s, ALL, IssueFilter(), NOW, STREET, C1, B11)
    # a new issue reported closed (a bulk import), and one still open
    for i, status in enumerate(("closed", "handling")):
        s.add(Issue(number=f"RU2026{i:06d}", kind="problem", domain_code="safety", title="新", description="",
                    source="patrol", location=WKTElement("POINT(113.625 34.755)", srid=4326), grid_code=B11,
                    community_code=C1, status=status, reported_at=NOW - dt.timedelta(days=10),
                    due_at=NOW - dt.timedelta(days=8),
                    closed_at=NOW - dt.timedelta(days=1) if status == "closed" else None, updated_at=NOW))
    s.flush()
    after = both_ways(s, ALL, IssueFilter(), NOW, STREET, C1, B11)
    assert after.counts.total == before.counts.total + 2
    assert after.counts.closed_late == before.counts.closed_late + 1
    # transitions: an open issue closed on time, a closed one evaluated, a closed one sent back
    open_id, closed_id, other_closed = (s.execute(text(f"SELECT id FROM issue WHERE {w} ORDER BY id LIMIT 1"))
                                        .scalar_one() for w in ("status = 'handling'", "status = 'closed'",
                                                                "status = 'evaluated'"))
    s.execute(text("UPDATE issue SET status = 'closed', closed_at = due_at - interval '1 hour' WHERE id = :i"),
              {"i": open_id})
    s.execute(text("UPDATE issue SET status = 'evaluated', satisfaction = 5 WHERE id = :i"), {"i": closed_id})
    s.execute(text("UPDATE issue SET status = 'handling', closed_at = NULL WHERE id = :i"), {"i": other_closed})
    # a change set's set-wise move: every issue of one block to another (one UPDATE statement)
    s.execute(text("UPDATE issue SET grid_code = :b, community_code = :c WHERE grid_code = :a"),
              {"a": B11, "b": B12, "c": C1})
    # and a day earlier, across a month boundary for some
    s.execute(text("UPDATE issue SET reported_at = reported_at - interval '20 days' WHERE grid_code = :b"),
              {"b": B21})
    assert rollup_totals(s) == raw_totals(s)
    for flt in FILTERS:
        both_ways(s, ALL, flt, NOW, STREET, C1, B12)
    # deletes (an issue without events: events are append-only)
    s.execute(text("DELETE FROM issue WHERE number LIKE 'RU%'"))
    assert rollup_totals(s) == raw_totals(s)
    for flt in FILTERS[:6]:
        both_ways(s, ALL, flt, NOW, STREET, C1, B12)


def test_rollup_equals_raw_counts_on_the_demo(db):
    street = db.execute(text("SELECT code FROM grid WHERE level = 1 AND valid_to IS NULL")).scalar_one()
    community, block = db.execute(text("SELECT parent_code, code FROM grid WHERE level = 3 AND valid_to IS NULL "
                                       "ORDER BY code LIMIT 1")).one()
    assert rollup_totals(db) == raw_totals(db)
    for flt in FILTERS[:12]:
        both_ways(db, ALL, flt, DEMO_NOW, street, community, block)


def test_rollup_under_row_level_security(demo_app_engine, db):
    """As the web server reads it: the app role, whose rollup rows are only those of its scope's
    grids (the policy), plus the chain issues counted from ``issue``."""
    community, block = db.execute(text("SELECT parent_code, code FROM grid WHERE level = 3 AND valid_to IS NULL "
                                       "ORDER BY code LIMIT 1")).one()
    street = community[:9] + "00000"
    # an official who sees issues through the chain outside the grid given as their scope
    official, _elsewhere = db.execute(text(
        "SELECT grid_leader_id, community_code FROM issue WHERE grid_leader_id IS NOT NULL AND community_code <> :c "
        "AND status IN ('closed', 'evaluated') ORDER BY id LIMIT 1"), {"c": community}).one()
    scopes = [Scope.grids(community), Scope.grids(block), Scope.grids(street),
              Scope(roots=frozenset({community}), official_id=official)]
    for scope in scopes:
        with open_session(demo_app_engine, scope=scope) as s:
            for table in ("issue_closed_total", "issue_closed_rollup"):
                seen = set(s.scalars(text(f"SELECT DISTINCT grid_code FROM {table}")))
                assert seen and all(scope.allows(g) for g in seen), (scope, table)
            for flt in (IssueFilter(), IssueFilter(preset="year"), IssueFilter(overdue=True),
                        IssueFilter(kind="problem", statuses=("closed", "evaluated"))):
                counts = both_ways(s, scope, flt, DEMO_NOW, street, community, block)
                assert counts.counts.total > 0
        if scope.official_id:
            with open_session(demo_app_engine, scope=scope) as s:
                with_chain = map_metrics.grid_counts(s, scope, IssueFilter(), None, DEMO_NOW, tz=TZ)
                grids_only = map_metrics.grid_counts(s, Scope.grids(community), IssueFilter(), None, DEMO_NOW, tz=TZ)
                # closed issues seen through the chain, outside the scope's grids, are counted too
                assert with_chain.counts.closed > grids_only.counts.closed
    with open_session(demo_app_engine, scope=None) as s:   # no scope: no row (default deny)
        assert s.execute(text("SELECT count(*) FROM issue_closed_total")).scalar_one() == 0
        assert s.execute(text("SELECT count(*) FROM issue_closed_rollup")).scalar_one() == 0


def test_filters_the_rollup_cannot_answer_read_issue():
    assert not rollup.serves(IssueFilter(text="垃圾"), TZ)
    assert not rollup.serves(IssueFilter(source="patrol"), TZ)
    assert not rollup.serves(IssueFilter(bbox=(113.6, 34.7, 113.7, 34.8)), TZ)
    assert not rollup.serves(IssueFilter(reported_from=NOW), TZ)
    from geodata.clock import zone

    assert not rollup.serves(IssueFilter(), zone("Europe/Berlin"))
    assert rollup.serves(IssueFilter(preset="week", kind="problem", overdue=True), TZ)
