"""``query_issues``' two ways to a page and its total (``bounded_scope``): a community's or a
block's viewer gets both from one statement (``count(*) OVER ()``, the policy evaluated once), every
other scope from a count and a page. Both must give the same pages and totals — every page, the one
past the end, every sort — as the app role under row-level security, on the demo."""
from __future__ import annotations

import pytest
from sqlalchemy import event, text

from geodata.access.scope import Scope
from geodata.clock import zone
from geodata.db import open_session
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow import queries
from geodata.workflow.filters import IssueFilter
from geodata.workflow.queries import SORTS, bounded_scope, query_issues

TZ = zone(DEFAULT_TIMEZONE)


@pytest.fixture(scope="module")
def places(demo_url) -> dict:
    from sqlalchemy import create_engine
    e = create_engine(demo_url)
    with e.connect() as c:
        comm = c.execute(text("SELECT community_code FROM issue GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        block = c.execute(text("SELECT grid_code FROM issue WHERE community_code = :c GROUP BY 1 ORDER BY count(*) "
                               "LIMIT 1"), {"c": comm}).scalar_one()
        official = c.execute(text("SELECT responsible_id FROM issue WHERE community_code = :c LIMIT 1"),
                             {"c": comm}).scalar_one()
    e.dispose()
    return {"community": comm, "block": block, "official": official}


def pages(engine, scope: Scope, flt: IssueFilter, sort: str, size: int) -> tuple[list, list[int]]:
    out, totals = [], []
    with open_session(engine, scope=scope) as s:
        page = 1
        while True:
            got = query_issues(s, flt, scope, page=page, page_size=size, sort=sort, tz=TZ)
            totals.append(got["total"])
            if not got["items"]:
                break
            out.extend(i["id"] for i in got["items"])
            page += 1
    return out, totals


def test_which_scopes_are_bounded(places):
    assert bounded_scope(Scope.grids(places["community"])) and bounded_scope(Scope.grids(places["block"]))
    assert bounded_scope(Scope(roots=frozenset(), official_id=places["official"]))
    assert not bounded_scope(Scope.everything()) and not bounded_scope(Scope.grids(places["community"][:9] + "00000"))


@pytest.mark.parametrize("sort", ["-reported_at", "due_at", "-status"])
@pytest.mark.parametrize("where", ["community", "block", "chain"])
def test_one_statement_and_two_give_the_same_pages(demo_app_engine, places, monkeypatch, where, sort):
    assert sort.lstrip("-") in SORTS
    scope = {"community": Scope(roots=frozenset({places["community"]}), official_id=places["official"]),
             "block": Scope.grids(places["block"]),
             "chain": Scope(roots=frozenset(), official_id=places["official"])}[where]
    flt = IssueFilter(kind="problem") if where == "community" else IssueFilter()
    one, one_totals = pages(demo_app_engine, scope, flt, sort, 37)
    monkeypatch.setattr(queries, "bounded_scope", lambda _scope: False)
    two, two_totals = pages(demo_app_engine, scope, flt, sort, 37)
    assert one == two and len(one) == len(set(one)) > 37
    assert set(one_totals) == set(two_totals) == {len(one)}


def test_a_bounded_page_is_one_statement_and_past_the_end_still_counts(demo_app_engine, places):
    scope = Scope.grids(places["block"])
    with open_session(demo_app_engine, scope=scope) as s:
        s.connection()
        seen: list[str] = []
        event.listen(s.connection(), "before_cursor_execute", lambda *a: seen.append(a[2]))
        first = query_issues(s, IssueFilter(), scope, page=1, page_size=10, tz=TZ)
        assert len(seen) == 1 and first["total"] > 10
        past = query_issues(s, IssueFilter(), scope, page=first["pages"] + 1, page_size=10, tz=TZ)
        assert past["items"] == [] and past["total"] == first["total"]
        none = query_issues(s, IssueFilter(numbers=("nope",)), scope, tz=TZ)
        assert none["items"] == [] and none["total"] == 0 and none["pages"] == 1
