"""The map's issue search, bounded at any history size (issue #11), on the demo as the app role
(row-level security on): what it finds — a partial number, a word of one or two characters, a rare
word only in an old issue — in scope only, newest first, the same as a full search would.

Not tested as "the same as a full search": a viewer with a narrow scope and a word frequent in the
older history (more than 4 × ``SEARCH_CAP`` old issues of the city hold it) — the search table is
narrowed by the text alone and capped before the scope applies (migration 0022), so such a viewer
may get fewer of their old matches than a full search, possibly none; what is tested is that they
never get one outside their scope. Re-assigning issues does not touch the search table."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.maps import search as map_search
from geodata.workflow import text_search
from tests.conftest import DEMO_END
from tests.world import copy_issue

NOW = dt.datetime.combine(DEMO_END, dt.time(23, 0), tzinfo=dt.UTC)
ALL = Scope.everything()


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
    return copy_issue(s, community, number, title, NOW - dt.timedelta(days=365 * years))


def _issues(s: Session, scope: Scope, q: str, limit: int = 10) -> list[int]:
    return [h.issue_id for h in map_search.search(s, scope, q, limit, NOW) if h.kind == "issue"]


def _full(s: Session, q: str, limit: int = 10) -> list[int]:
    """The unbounded search (every visible row read): what the bounded one must give."""
    pat = "%" + q.replace("%", r"\%").replace("_", r"\_") + "%"
    prefix = len(q) >= text_search.NUMBER_PREFIX_MIN and q.isalnum()
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
    # a changed title is searched as it is now, a changed number too
    app.execute(text("UPDATE issue SET title = '河道里发现贝壳' WHERE id = :i"), {"i": older})
    assert _issues(app, ALL, "鹦鹉") == [newer] and _issues(app, ALL, "贝壳") == [older]
    app.execute(text("UPDATE issue SET number = 'ZZ2001000777' WHERE id = :i"), {"i": older})
    assert _issues(app, ALL, "2001000777") == [older] and _issues(app, ALL, "2001000001") == []


def _search_writes(s: Session) -> int:
    """Rows inserted or updated in the search table by this backend's statistics not yet reported
    (the app role may not read the table): this transaction's, and maybe recent ones' — compare
    differences within a transaction."""
    return s.execute(text("SELECT n_tup_ins + n_tup_upd FROM pg_stat_xact_user_tables "
                          "WHERE relid = 'issue_search'::regclass")).scalar_one()


def test_a_re_assignment_does_not_touch_the_search_table_and_is_searched_as_it_is_now(app):
    """The re-assignment a change set makes (block, community, the chain's officials: issue #15)
    writes nothing to the search table, yet the moved issue is found in its new scope only — the
    scope is read from ``issue`` at search time. A title edit writes its one row."""
    a, b = _communities(app)
    w0 = _search_writes(app)
    old = _old_issue(app, a, "ZZ2004000001", "鹦鹉螺化石", years=22)
    assert _search_writes(app) == w0 + 1                 # the insert
    block, gl, resp, lead = app.execute(text(
        "SELECT grid_code, grid_leader_id, responsible_id, leader_in_charge_id FROM issue "
        "WHERE community_code = :b ORDER BY id LIMIT 1"), {"b": b}).one()
    moved = app.execute(text(
        "UPDATE issue SET grid_code = :g, community_code = :b, grid_leader_id = :gl, responsible_id = :r, "
        "leader_in_charge_id = :l, assignee_id = NULL, version = version + 1, updated_at = now() "
        "WHERE community_code = :a OR id = :i"),
        {"g": block, "b": b, "gl": gl, "r": resp, "l": lead, "a": a, "i": old}).rowcount
    assert moved > 100 and _search_writes(app) == w0 + 1   # no search row rewritten
    _as(app, Scope.grids(a))
    assert _issues(app, Scope.grids(a), "鹦鹉") == []
    _as(app, Scope.grids(b))
    assert _issues(app, Scope.grids(b), "鹦鹉") == [old]
    _as(app, ALL)
    app.execute(text("UPDATE issue SET title = title WHERE id = :i"), {"i": old})   # unchanged: no write
    assert _search_writes(app) == w0 + 1
    app.execute(text("UPDATE issue SET title = '鹦鹉螺' WHERE id = :i"), {"i": old})
    assert _search_writes(app) == w0 + 2


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
    before = (NOW - text_search.SEARCH_WINDOW).isoformat()
    def direct(q: str, cap: int) -> set[int]:
        return set(app.execute(text("SELECT gw_issue_search(:q, CAST(:b AS timestamptz), :c)"),
                               {"q": q, "b": before, "c": cap}).scalars())
    assert direct('鹦鹉', 10) == {mine}
    # the database function narrows by the text alone, then reads issue under the caller's
    # row-level security: however small the cap, nothing outside the scope
    assert direct('鹦鹉', 1) <= {mine}
    assert direct('ZZ', 1) <= {mine}
    in_a = set(app.execute(text("SELECT id FROM issue WHERE community_code = :a"), {"a": a}).scalars())
    assert direct('垃圾', 500) <= in_a and direct('1', 500) <= in_a
    # a word everyone has: only the community's
    got = _issues(app, leader, "垃圾")
    assert len(got) == 10 and {c for c, in app.execute(
        text("SELECT community_code FROM issue WHERE id = ANY(:i)"), {"i": got})} == {a}
    # another community's leader: theirs only
    _as(app, Scope.grids(b))
    assert _issues(app, Scope.grids(b), "鹦鹉") == [theirs]
    _as(app, ALL)
    assert set(_issues(app, ALL, "鹦鹉")) == {mine, theirs}
    assert len(direct('鹦鹉', 1)) == 1 and direct('鹦鹉', 2) == {mine, theirs}   # the cap bounds


def test_the_app_role_cannot_read_the_search_table(app):
    with pytest.raises(Exception, match="permission denied"):
        app.execute(text("SELECT count(*) FROM issue_search"))


@pytest.mark.parametrize("plan", ["enable_indexscan", "enable_bitmapscan", "enable_seqscan"])
def test_the_capped_older_matches_are_the_newest_whatever_the_plan(app, plan):
    """When the cap binds, ``gw_issue_search`` gives the newest matches by id (migration 0026), not
    whichever rows a plan met first: the same set with each way of reading ``issue_search`` turned
    off in turn (an ANALYZE after many new issues switches between them: two requests a moment
    apart gave two different sets)."""
    later = NOW + dt.timedelta(days=3650)    # every demo issue counts as older
    # the character most titles hold: a single character's gram is the match itself
    char = app.execute(text("SELECT c FROM issue, regexp_split_to_table(title, '') c WHERE c ~ '[一-龥]' "
                            "GROUP BY c ORDER BY count(*) DESC, c LIMIT 1")).scalar_one()
    holders = app.execute(text("SELECT id FROM issue WHERE title LIKE '%' || :c || '%' ORDER BY id DESC"),
                          {"c": char}).scalars().all()
    cap = 5
    assert len(holders) > 4 * cap
    app.execute(text(f"SET LOCAL {plan} = off"))
    got = app.execute(text("SELECT gw_issue_search(:q, :b, :cap)"), {"q": char, "b": later, "cap": cap}).scalars().all()
    assert sorted(got, reverse=True) == holders[:cap]
