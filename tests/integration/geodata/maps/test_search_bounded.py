"""The map's issue search, bounded at any history size (issue #11), on the demo as the app role
(row-level security on): what it finds — a partial number, a word of one or two characters, a rare
word only in an old issue — in scope only, newest first, the same as a full search would."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.maps import search as map_search
from tests.conftest import DEMO_END

NOW = dt.datetime.combine(DEMO_END, dt.time(23, 0), tzinfo=dt.UTC)
ALL = Scope.everything()
COPIED = ("kind, domain_code, description, source, location, address, grid_code, community_code, "
          "leader_in_charge_id, responsible_id, grid_leader_id, assignee_id, worksheet, status, "
          "due_at, closed_at, rework_count, reassign_count, satisfaction, version, updated_at")


@pytest.fixture
def app(demo_app_engine: Engine) -> Iterator[Session]:
    """The app role's session on the demo, scope everything; rolled back after the test."""
    s = Session(demo_app_engine)
    rls.apply(s.connection(), ALL)
    try:
        yield s
    finally:
        s.rollback()
        s.close()


def _as(s: Session, scope: Scope) -> None:
    rls.apply(s.connection(), scope)


def _old_issue(s: Session, community: str, number: str, title: str, years: int) -> int:
    """A copy of one of ``community``'s demo issues, reported ``years`` years before NOW."""
    return s.execute(text(
        f"INSERT INTO issue (number, title, reported_at, {COPIED}) "
        f"SELECT :n, :t, CAST(:at AS timestamptz), {COPIED} FROM issue WHERE community_code = :c "
        "ORDER BY id LIMIT 1 RETURNING id"),
        {"n": number, "t": title, "at": NOW - dt.timedelta(days=365 * years), "c": community}).scalar_one()


def _issues(s: Session, scope: Scope, q: str, limit: int = 10) -> list[int]:
    return [h.issue_id for h in map_search.search(s, scope, q, limit, NOW) if h.kind == "issue"]


def _full(s: Session, q: str, limit: int = 10) -> list[int]:
    """The unbounded search (every visible row read): what the bounded one must give."""
    pat = "%" + q.replace("%", r"\%").replace("_", r"\_") + "%"
    prefix = len(q) >= map_search.NUMBER_PREFIX_MIN and q.isalnum()
    return list(s.execute(text(
        "SELECT id FROM issue WHERE number ILIKE :p OR title ILIKE :p "
        "ORDER BY CASE WHEN :pre AND number ILIKE :start THEN 0 ELSE 1 END, "
        "CASE WHEN :pre AND number ILIKE :start THEN number END DESC, reported_at DESC, id DESC LIMIT :l"),
        {"p": pat, "start": q + "%", "pre": prefix, "l": limit}).scalars())


def _communities(s: Session) -> tuple[str, str]:
    a, b = s.execute(text("SELECT community_code FROM issue GROUP BY 1 ORDER BY count(*) DESC LIMIT 2")).scalars()
    return a, b


@pytest.mark.parametrize("q", ["垃圾", "占道", "堵", "2026000", "000003", "WT2026001"])
def test_the_bounded_search_gives_what_a_full_search_gives(app, q):
    """Words of two and one characters, parts of numbers (inside, the end, the start): the same ten
    issues, in the same order — numbers that start with the text first, then the newest reported."""
    full = _full(app, q)
    assert len(full) == (4 if q == "000003" else 10)   # the demo's: more than ten of the others
    assert _issues(app, ALL, q) == full
    reported = app.execute(text("SELECT id, reported_at FROM issue WHERE id = ANY(:i)"), {"i": full}).all()
    if not q.startswith("WT"):
        when = dict(reported)
        assert [when[i] for i in full] == sorted((when[i] for i in full), reverse=True)   # newest first


def test_a_rare_word_only_in_old_issues_is_found_newest_first(app):
    a, _ = _communities(app)
    older = _old_issue(app, a, "ZZ2001000001", "河道里发现鹦鹉螺化石", years=25)
    newer = _old_issue(app, a, "ZZ2011000001", "又见鹦鹉螺", years=15)
    one = _old_issue(app, a, "ZZ2012000002", "龘字招牌脱落", years=14)
    assert _issues(app, ALL, "鹦鹉") == [newer, older]            # two characters, older than the window
    assert _issues(app, ALL, "鹦鹉螺化石") == [older]
    assert _issues(app, ALL, "龘") == [one]                       # one character
    assert _issues(app, ALL, "2001000001") == [older]             # part of an old number
    assert _issues(app, ALL, "zz2011") == [newer]                 # the start of an old number
    assert _issues(app, ALL, "鹦鹉_") == [] and _issues(app, ALL, "鹦%") == []   # literal text
    # a changed title is searched as it is now
    app.execute(text("UPDATE issue SET title = '河道里发现贝壳' WHERE id = :i"), {"i": older})
    assert _issues(app, ALL, "鹦鹉") == [newer] and _issues(app, ALL, "贝壳") == [older]


def test_a_community_leader_finds_only_the_communitys_issues(app):
    """Scope: by the search's own tokens and, under them, by row-level security on ``issue`` — the
    database function returns nothing outside the caller's scope either."""
    a, b = _communities(app)
    mine = _old_issue(app, a, "ZZ2003000001", "鹦鹉螺化石", years=23)
    theirs = _old_issue(app, b, "ZZ2003000002", "鹦鹉螺化石", years=23)
    leader = Scope.grids(a)
    _as(app, leader)
    assert _issues(app, leader, "鹦鹉") == [mine]
    assert _issues(app, leader, "ZZ2003") == [mine]
    before = (NOW - map_search.SEARCH_WINDOW).isoformat()
    assert set(app.execute(text("SELECT gw_issue_search('鹦鹉', CAST(:b AS timestamptz), 10)"),
                           {"b": before}).scalars()) == {mine}
    # a word everyone has: only the community's
    got = _issues(app, leader, "垃圾")
    assert len(got) == 10 and {c for c, in app.execute(
        text("SELECT community_code FROM issue WHERE id = ANY(:i)"), {"i": got})} == {a}
    # another community's leader: theirs only
    _as(app, Scope.grids(b))
    assert _issues(app, Scope.grids(b), "鹦鹉") == [theirs]
    _as(app, ALL)
    assert set(_issues(app, ALL, "鹦鹉")) == {mine, theirs}


def test_the_app_role_cannot_read_the_search_table(app):
    with pytest.raises(Exception, match="permission denied"):
        app.execute(text("SELECT count(*) FROM issue_search"))
