"""``GET /api/v1/issues?q=`` over HTTP, the app's clock and row-level security (issue #11: bounded
work per request): on the small hand-made world, every match the plain ``ILIKE`` (run as the owner)
gives — a word in recent and older issues, a number's start, a part of a number — page after page;
a community's secretary gets their community's only; and a word more than 4 × ``SEARCH_CAP`` older
issues hold shows the documented limit: the last year whole and at most ``SEARCH_CAP`` older ones,
the same on every page and every request, never one outside the scope."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.db import session_scope
from geodata.db.roles import OWNER_ROLE, role_url
from geodata.workflow.text_search import SEARCH_CAP
from tests.conftest import SUFFIX
from tests.world import C1, C2, scratch_api, seed_issues

COPIED = ("kind, domain_code, description, source, location, address, grid_code, community_code, "
          "leader_in_charge_id, responsible_id, grid_leader_id, assignee_id, worksheet, status, "
          "due_at, closed_at, rework_count, reassign_count, satisfaction, version, updated_at")
#: older than the search's window: 8 years back
OLD = 365 * 8
FREQUENT = "旧桶"   # the word the older history holds more than 4 × SEARCH_CAP times
N_FREQUENT = 4 * SEARCH_CAP + 100


def _copy(s, community: str, number: str, title: str, days_ago: float, n: int = 1) -> list[int]:
    """``n`` copies of one of ``community``'s issues, reported ``days_ago`` days ago (the app's
    clock), numbered ``number`` + a 4-digit sequence when ``n`` > 1."""
    num = ":n" if n == 1 else ":n || lpad(g::text, 4, '0')"
    return list(s.execute(text(
        f"INSERT INTO issue (number, title, reported_at, {COPIED}) "
        f"SELECT {num}, :t, now() - make_interval(days => :d), {COPIED} "
        "FROM (SELECT * FROM issue WHERE community_code = :c ORDER BY id LIMIT 1) i, generate_series(1, :k) g "
        "RETURNING id"), {"n": number, "t": title, "d": days_ago, "c": community, "k": n}).scalars())


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_apitext{SUFFIX}", tmp_path_factory.mktemp("var")) as a:
        w = {}
        with session_scope(a.engine) as s:
            seed_issues(s, a.world, now=dt.datetime.now(dt.UTC))   # UI2026000000…: recent
            w["recent"] = _copy(s, C1, "ZZ2099000001", "鹦鹉螺出现在河边", 3) + _copy(s, C2, "ZZ2099000002", "又见鹦鹉螺", 300)
            w["older"] = (_copy(s, C1, "ZZ2011000001", "鹦鹉螺化石", OLD) + _copy(s, C2, "ZZ2001000001", "河道鹦鹉螺", OLD * 2)
                          + _copy(s, C2, "ZZ2001000002", "鹦鹉螺又现", OLD * 2 + 1))
            # the frequent word: the city's older history (C1's) holds it first, then C2's few
            w["frequent_old_c1"] = _copy(s, C1, "QQ1990", f"{FREQUENT}破损", OLD, n=N_FREQUENT)
            w["frequent_old_c2"] = _copy(s, C2, "QQ1991", f"{FREQUENT}倾倒", OLD, n=30)
            w["frequent_recent"] = _copy(s, C2, "QQ2099", f"{FREQUENT}又坏了", 10, n=5)
        a.words = w
        a.owner_engine = create_engine(role_url(a.url, OWNER_ROLE))
        try:
            yield a
        finally:
            a.owner_engine.dispose()


def _full(api, q: str, sort: str = "-reported_at", community: str | None = None) -> list[int]:
    """The plain filter, every row read, as the owner (every grid, or one community's)."""
    pat = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    col, d = sort.lstrip("-"), "DESC" if sort.startswith("-") else "ASC"
    with session_scope(api.owner_engine) as s:
        rls.apply(s.connection(), Scope.grids(community) if community else Scope.everything())
        return list(s.execute(text(
            f"SELECT id FROM issue WHERE number ILIKE :p OR title ILIKE :p ORDER BY {col} {d} NULLS LAST, id {d}"),
            {"p": pat}).scalars())


def _pages(api, who: str, q: str, page_size: int, **qs) -> tuple[list[dict], int]:
    """Every page of ``q`` for official ``who``'s account: (the items in order, the total)."""
    c = api.client(who)
    items, totals, page = [], set(), 1
    while True:
        r = c.get("/api/v1/issues", query_string={"q": q, "page": page, "page_size": page_size, **qs})
        assert r.status_code == 200, r.data
        got = r.get_json()
        totals.add(got["total"])
        items += got["items"]
        if page >= got["pages"]:
            break
        page += 1
    assert len(totals) == 1, totals   # every page counts the same match
    return items, totals.pop()


@pytest.mark.parametrize("q", ["鹦鹉", "鹦鹉螺化石", "螺", "ZZ2001", "zz20110000", "2001000002", "UI2026", "000003",
                               "测试问题1", "ui", "鹦%"])
@pytest.mark.parametrize("sort", ["-reported_at", "number", "-due_at"])
def test_q_pages_through_what_a_full_search_gives(api, q, sort):
    """Few matches: the same issues as the plain ILIKE, in the same order, pages of 3 fitting
    together with no gap and no repeat, the same total on each."""
    full = _full(api, q, sort)
    items, total = _pages(api, "operator", q, 3 if len(full) < 40 else 10, sort=sort)
    assert [i["id"] for i in items] == full and total == len(full)
    if q == "鹦鹉":
        assert set(full) == set(api.words["recent"] + api.words["older"])   # recent and 8–16 years old


def test_a_communitys_secretary_gets_the_communitys_matches_only(api):
    for q in ("鹦鹉", "ZZ20", "测试问题", "UI2026"):
        full = _full(api, q, community=C2)
        items, total = _pages(api, "c2_secretary", q, 2)
        assert [i["id"] for i in items] == full and total == len(full), q
        assert {i["community_code"] for i in items} <= {C2}
    items, _ = _pages(api, "c2_secretary", "鹦鹉", 2)
    assert {i["id"] for i in items} == {api.words["recent"][1], *api.words["older"][1:]}


def test_a_word_frequent_in_the_older_history_shows_the_documented_limit(api):
    """More than 4 × SEARCH_CAP older issues hold the word: the street's operator gets the last
    year's matches and SEARCH_CAP older ones — the same set on every page and every request; the
    east community's secretary (whose older matches are few of the city's) their last year's and
    maybe some older ones: never one of the west's."""
    w = api.words
    assert len(_full(api, FREQUENT)) == N_FREQUENT + 30 + 5
    first, total = _pages(api, "operator", FREQUENT, 200)
    ids = [i["id"] for i in first]
    assert total == len(ids) == len(set(ids)) == 5 + SEARCH_CAP
    assert ids[:5] == sorted(w["frequent_recent"], reverse=True)   # the newest: the window's, whole
    assert set(ids[5:]) <= set(w["frequent_old_c1"] + w["frequent_old_c2"])
    again, _ = _pages(api, "operator", FREQUENT, 200)
    assert [i["id"] for i in again] == ids
    small, total_small = _pages(api, "operator", FREQUENT, 37, sort="number")   # another order, other pages
    assert total_small == total and {i["id"] for i in small} == set(ids)
    mine, n = _pages(api, "c2_secretary", FREQUENT, 7)
    got = {i["id"] for i in mine}
    assert n == len(got) and set(w["frequent_recent"]) <= got <= set(w["frequent_recent"] + w["frequent_old_c2"])
    assert {i["community_code"] for i in mine} == {C2}
    # a longer text (fewer holders) or the number finds a given older one
    assert {i["id"] for i in _pages(api, "c2_secretary", f"{FREQUENT}倾倒", 50)[0]} == set(w["frequent_old_c2"])
    assert [i["id"] for i in _pages(api, "c2_secretary", "QQ19910001", 50)[0]] == [w["frequent_old_c2"][0]]
    assert {i["id"] for i in _pages(api, "operator", "QQ1991", 50)[0]} == set(w["frequent_old_c2"])


def test_q_with_the_other_filters(api):
    """The text narrows the grid, the status, the time range, and they narrow it."""
    full = set(_full(api, "鹦鹉"))
    for qs in ({"grid": C1}, {"grid": C2}, {"to": (dt.datetime.now(dt.UTC) - dt.timedelta(days=OLD + 1)).isoformat()},
               {"status": "closed,evaluated"}):
        plain, _ = _pages(api, "operator", "", 200, **qs)
        items, total = _pages(api, "operator", "鹦鹉", 2, **qs)
        assert {i["id"] for i in items} == full & {i["id"] for i in plain} and total == len(items), qs
    assert len(full) == 5


def test_the_document_says_what_q_matches_and_its_limit(api):
    doc = api.client().get("/api/v1/openapi.json").get_json()
    q = next(p for p in doc["paths"]["/api/v1/issues"]["get"]["parameters"] if p["name"] == "q")
    assert "the same match as the map's search box" in q["description"]
    assert f"at most {SEARCH_CAP}" in q["description"] and "may get few of their older matches" in q["description"]
