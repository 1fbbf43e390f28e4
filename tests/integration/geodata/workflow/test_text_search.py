"""THE text match (``geodata.workflow.text_search``) as the API's filter: ``query_issues`` with
``IssueFilter(text=q)`` as the app role (row-level security on) on the demo, against the plain
``number ILIKE '%q%' OR title ILIKE '%q%'`` run as the owner under the same scope — the same issues,
the same total, the same order page after page, whenever the matches are few (a rare word in
recent and older issues, a number's start or any part of it, a word of the demo year); in scope
only, always; and the map's search box shows the first of the same match.

The limit (a word more than 4 × ``SEARCH_CAP`` older issues of the city hold) is tested over HTTP
(tests/integration/dashboard/api/test_issues_text_api.py)."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.db.roles import APP_ROLE, OWNER_ROLE
from geodata.maps import search as map_search
from geodata.workflow import text_search
from geodata.workflow.filters import IssueFilter
from geodata.workflow.queries import query_issues
from tests.conftest import DEMO_END
from tests.world import TZ, copy_issue, rollback_session

NOW = dt.datetime.combine(DEMO_END, dt.time(23, 0), tzinfo=dt.UTC)
ALL = Scope.everything()
SQL_SORTS = {"reported_at": "reported_at", "due_at": "due_at", "updated_at": "updated_at", "number": "number",
             "status": "status"}


@pytest.fixture
def s(demo_engine: Engine) -> Iterator[Session]:
    """One transaction on the demo, rolled back after the test: written as the superuser, read as
    the app role (:func:`_as_app`) and as the owner (:func:`_truth`)."""
    yield from rollback_session(demo_engine)


def _as(s: Session, role: str, scope: Scope) -> None:
    s.execute(text(f'SET LOCAL ROLE "{role}"'))
    rls.apply(s.connection(), scope)


def _copy(s: Session, community: str, number: str, title: str, days_ago: float) -> int:
    """A copy of one of ``community``'s demo issues, reported ``days_ago`` days before NOW."""
    return copy_issue(s, community, number, title, NOW - dt.timedelta(days=days_ago))


def _communities(s: Session) -> tuple[str, str]:
    a, b = s.execute(text("SELECT community_code FROM issue GROUP BY 1 ORDER BY count(*) DESC LIMIT 2")).scalars()
    return a, b


@pytest.fixture
def words(s: Session) -> dict[str, list[int]]:
    """鹦鹉螺 in two recent issues and three older ones (5, 15, 25 years), in two communities;
    old numbers ZZ…; one 龘 twenty years back."""
    a, b = _communities(s)
    return {"recent": [_copy(s, a, "ZZ2026900001", "鹦鹉螺出现在河边", 10), _copy(s, b, "ZZ2026900002", "又见鹦鹉螺", 200)],
            "older": [_copy(s, a, "ZZ2021000001", "鹦鹉螺化石", 365 * 5), _copy(s, b, "ZZ2011000001", "河道鹦鹉螺", 365 * 15),
                      _copy(s, a, "ZZ2001000001", "鹦鹉螺化石又现", 365 * 25)],
            "one": [_copy(s, b, "ZZ2006000001", "龘字招牌脱落", 365 * 20)], "a": [a], "b": [b]}


def _truth(s: Session, q: str, scope: Scope, sort: str = "-reported_at") -> list[int]:
    """The unbounded filter: every row the owner may see in ``scope`` read, as before issue #11."""
    _as(s, OWNER_ROLE, scope)
    pat = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    col, desc = SQL_SORTS[sort.lstrip("-")], sort.startswith("-")
    d = "DESC" if desc else "ASC"
    ids = list(s.execute(text(
        f"SELECT id FROM issue WHERE number ILIKE :p OR title ILIKE :p ORDER BY {col} {d} NULLS LAST, id {d}"),
        {"p": pat}).scalars())
    s.execute(text("RESET ROLE"))
    return ids


def _api(s: Session, q: str, scope: Scope, sort: str = "-reported_at", page_size: int | None = None,
         **flt) -> tuple[list[int], int]:
    """The API's filter as the app role, every page read: (ids in order, total of each page)."""
    _as(s, APP_ROLE, scope)
    f = IssueFilter(text=q, **flt)
    first = query_issues(s, f, scope, tz=TZ, now=NOW, page=1, page_size=page_size or 200, sort=sort)
    size = page_size or 200
    ids, totals = [i["id"] for i in first["items"]], {first["total"]}
    for page in range(2, max(1, math.ceil(first["total"] / size)) + 2):   # and one past the end
        got = query_issues(s, f, scope, tz=TZ, now=NOW, page=page, page_size=size, sort=sort)
        ids += [i["id"] for i in got["items"]]
        totals.add(got["total"])
    s.execute(text("RESET ROLE"))
    assert len(totals) == 1, totals   # every page counts the same match
    return ids, totals.pop()


QS = ["鹦鹉", "鹦鹉螺化石", "螺", "龘", "ZZ2011", "zz20010000", "2021000001", "鹦鹉_", "鹦%", "占道", "堵", "000003",
      "WT2026001", "2026000"]


@pytest.mark.parametrize("q", QS)
def test_the_api_filter_gives_what_a_full_ilike_gives(s, words, q):
    """Few matches (or a year's of the demo): the same issues as the plain ILIKE, in the same
    order, pages of 7 fitting together, the same total on every page."""
    full = _truth(s, q, ALL)
    ids, total = _api(s, q, ALL, page_size=min(200, max(7, math.ceil(len(full) / 4))))
    assert ids == full and total == len(full)
    if q == "鹦鹉":
        assert set(full) == set(words["recent"] + words["older"])   # recent and older
    if q in ("鹦鹉_", "鹦%"):
        assert full == []                                             # literal


@pytest.mark.parametrize("sort", ["number", "-number", "due_at", "-updated_at", "status", "reported_at"])
def test_every_sort_pages_the_same_match(s, words, sort):
    for q in ("鹦鹉", "ZZ20", "占道"):
        full = _truth(s, q, ALL, sort)
        ids, total = _api(s, q, ALL, sort, page_size=3 if len(full) < 30 else 25)
        assert ids == full and total == len(full), (q, sort)


def test_a_narrow_scope_gets_its_matches_and_nothing_else(s, words):
    """A community leader's filter: exactly the plain ILIKE under their scope for a rare word (old
    and new), a number's start, a demo word — never an issue of another community."""
    a, b = words["a"][0], words["b"][0]
    for community in (a, b):
        scope = Scope.grids(community)
        for q in ("鹦鹉", "ZZ20", "龘", "占道", "2026000", "WT2026001"):
            full = _truth(s, q, scope)
            ids, total = _api(s, q, scope, page_size=min(200, max(5, math.ceil(len(full) / 3))))
            assert ids == full and total == len(full), (community, q)
            theirs = set(s.execute(text("SELECT id FROM issue WHERE id = ANY(:i) AND community_code <> :c"),
                                   {"i": ids, "c": community}).scalars())
            assert not theirs, (community, q)
    assert set(_api(s, "鹦鹉", Scope.grids(a))[0]) == {words["recent"][0], words["older"][0], words["older"][2]}
    assert _api(s, "龘", Scope.grids(a))[0] == []


def test_the_text_and_the_other_filters_narrow_each_other(s, words):
    """``q`` with a grid, statuses, a kind, a date range: the text's matches that pass them (each
    matched issue checked by the same filter through its number)."""
    base = _api(s, "鹦鹉", ALL)[0]
    numbers = tuple(s.execute(text("SELECT number FROM issue WHERE id = ANY(:i)"), {"i": base}).scalars())
    for flt in ({"grid": words["a"][0]}, {"statuses": ("closed", "evaluated")}, {"kind": "sentiment"},
                {"reported_to": NOW - dt.timedelta(days=365 * 10)}, {"overdue": False}):
        _as(s, APP_ROLE, ALL)
        expected = [i["id"] for i in query_issues(s, IssueFilter(numbers=numbers, **flt), ALL, tz=TZ, now=NOW,
                                                    page_size=200)["items"]]
        s.execute(text("RESET ROLE"))
        ids, total = _api(s, "鹦鹉", ALL, **flt)
        assert ids == expected and total == len(ids), flt
    assert set(_api(s, "鹦鹉", ALL, reported_to=NOW - dt.timedelta(days=365 * 10))[0]) == set(words["older"][1:])


def _map_order(s: Session, q: str, ids: list[int]) -> list[int]:
    """``ids`` in the map's order: numbers starting with ``q`` first (highest first), then newest."""
    rows = s.execute(text("SELECT id, number, reported_at FROM issue WHERE id = ANY(:i)"), {"i": ids}).all()
    prefix = len(q) >= text_search.NUMBER_PREFIX_MIN and q.isalnum()
    starts = [r for r in rows if prefix and r.number.upper().startswith(q.upper())]
    rest = [r for r in rows if r not in starts]
    return ([r.id for r in sorted(starts, key=lambda r: r.number, reverse=True)]
            + [r.id for r in sorted(rest, key=lambda r: (r.reported_at, r.id), reverse=True)])


@pytest.mark.parametrize("q", ["鹦鹉", "ZZ2011", "zz2001", "龘", "占道", "堵", "2026000", "000003", "WT2026001"])
def test_the_map_shows_the_first_of_the_same_match(s, words, q):
    """One definition: the search box's issues are the first ten of the API's match in the box's
    order, in any scope."""
    for scope in (ALL, Scope.grids(words["a"][0])):
        ids, _ = _api(s, q, scope)
        _as(s, APP_ROLE, scope)
        box = [h.issue_id for h in map_search.search(s, scope, q, 10, NOW) if h.kind == "issue"]
        s.execute(text("RESET ROLE"))
        assert box == _map_order(s, q, ids)[:10], (q, scope)


def test_the_match_is_three_bounded_reads(s, words):
    """What the condition is made of: the number's start only for a text that can start a number;
    the window from NOW; an empty text is no match at all (no restriction: IssueFilter's None)."""
    m = text_search.TextMatch("ZZ2011", NOW)
    assert m.cut == NOW - text_search.SEARCH_WINDOW and m.number_start() is not None
    assert text_search.TextMatch("ZZ201", NOW).number_start() is None          # too short
    assert text_search.TextMatch("ZZ 2011", NOW).number_start() is None        # not a number's start
    assert text_search.text_match("", NOW) is None and text_search.text_match(None, NOW) is None
    with pytest.raises(ValueError):
        text_search.TextMatch("", NOW)
    sql = str(text_search.TextMatch("鹦鹉", NOW).condition().compile())
    assert "gw_issue_search" in sql and "= ANY" in sql
