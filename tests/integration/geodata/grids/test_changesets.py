"""Boundary change sets on real PostGIS (the test world): re-assignment of open issues, code
continuity, atomicity, conflicts, as-of views, diff and revert."""
from __future__ import annotations

import datetime as dt

import pytest
import shapely
from shapely.geometry import box, mapping
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geodata.errors import ConflictError, DomainError
from geodata.grids import changesets as cs
from geodata.grids import edits, store
from geodata.workflow.rules import OPEN_STATUSES
from tests.world import B11, B12, B21, B22, C1, C2, seed, seed_issues

MOVED = "41010200100103"  # B21's code under C1 (01 and 02 are taken)


@pytest.fixture
def world(empty_db):
    w = seed(empty_db)
    seed_issues(empty_db, w)
    return w


@pytest.fixture
def author(world):
    return cs.Author(world.ids["operator"], "中心操作员")


def shift_boundary(lat: float) -> dict:
    """The spec moving the shared edge of B11 (north) and B12 (south) to ``lat``: both neighbours."""
    return {"grids": [{"code": B11, "geometry": mapping(box(113.62, lat, 113.63, 34.76))},
                      {"code": B12, "geometry": mapping(box(113.62, 34.74, 113.63, lat))}]}


def propose(db, author, spec, reason="调整边界") -> int:
    draft = cs.build_draft(db, spec)
    assert cs.validate(db, draft) == []
    return cs.save_proposal(db, draft, author, reason)


def issues_in(db, code: str) -> list[tuple[int, str]]:
    return [tuple(r) for r in db.execute(text("SELECT id, status FROM issue WHERE grid_code = :c ORDER BY id"),
                                         {"c": code})]


def in_strip(db, lat0: float, lat1: float) -> list[tuple[int, str, str, int | None]]:
    return [tuple(r) for r in db.execute(text(
        "SELECT id, status, grid_code, grid_leader_id FROM issue WHERE ST_X(location) < 113.63 "
        "AND ST_Y(location) > :a AND ST_Y(location) < :b ORDER BY id"), {"a": lat0, "b": lat1})]


def test_moving_a_shared_boundary_reassigns_open_issues_and_keeps_past_ones(empty_db, world, author):
    strip = in_strip(empty_db, 34.75, 34.753)
    assert {s for _, s, _, _ in strip} & OPEN_STATUSES and {s for _, s, _, _ in strip} - OPEN_STATUSES
    preview = cs.impact(empty_db, cs.build_draft(empty_db, shift_boundary(34.753)))
    assert preview["issues"]["open"] == sum(s in OPEN_STATUSES for _, s, _, _ in strip)
    assert preview["issues"]["past"] == sum(s not in OPEN_STATUSES for _, s, _, _ in strip)
    gained = {o["name"]: o for o in preview["officials"]}
    assert gained["网格长乙"]["gained_m2"] > 0 and gained["网格长甲"]["lost_m2"] == gained["网格长乙"]["gained_m2"]

    before = store.now()
    out = cs.apply_proposal(empty_db, propose(empty_db, author, shift_boundary(34.753)), author)
    assert {i["code"]: i["kind"] for i in out["items"]} == {B11: "changed", B12: "changed"}
    after = in_strip(empty_db, 34.75, 34.753)
    for (iid, status, old, _), (_, _, new, leader) in zip(strip, after):
        if status in OPEN_STATUSES:
            assert (old, new, leader) == (B11, B12, world.ids["b12_leader"]), iid
        else:
            assert new == old == B11, iid  # a past issue keeps the grid it had when reported
    moved = empty_db.execute(text("SELECT sum(cardinality(issue_ids)) FROM grid_issue_move WHERE change_set_id = :c "
                                  "AND old_grid_code = :a AND new_grid_code = :b"),
                             {"c": out["id"], "a": B11, "b": B12}).scalar_one()
    assert moved == out["issues_moved"] == preview["issues"]["open"] > 0
    # the tiling as of before the change is the old one; now the new one
    old = {g.code: g.geom for g in store.current_grids(empty_db, 3, as_of=before)}
    new = {g.code: g.geom for g in store.current_grids(empty_db, 3)}
    assert old[B11].equals(box(113.62, 34.75, 113.63, 34.76)) and new[B11].equals(box(113.62, 34.753, 113.63, 34.76))


def test_diff_names_area_gained_and_lost(empty_db, world, author):
    t0 = store.now()
    cs.apply_proposal(empty_db, propose(empty_db, author, shift_boundary(34.753)), author)
    rows = {r["code"]: r for r in cs.diff(empty_db, t0, store.now() + dt.timedelta(seconds=1), level=3)}
    assert set(rows) == {B11, B12}
    assert rows[B11]["lost_m2"] == pytest.approx(rows[B12]["gained_m2"], rel=1e-3) and rows[B11]["gained_m2"] == 0
    assert shapely.geometry.shape(rows[B12]["gained"]).equals(box(113.62, 34.75, 113.63, 34.753))


def test_move_to_another_community_gives_a_new_code_and_never_reuses_the_old(empty_db, world, author):
    d = cs.load_draft(empty_db)
    assert edits.move(d, B21, C1) == MOVED
    out = cs.apply_proposal(empty_db, cs.save_proposal(empty_db, d, author, "并入西社区"), author)
    kinds = {i["code"]: i["kind"] for i in out["items"]}
    assert kinds == {B21: "retired", MOVED: "created", C1: "changed", C2: "changed"}
    assert issues_in(empty_db, B21) == [] and len(issues_in(empty_db, MOVED)) == 10
    # the grid leader passed to the new code; the community codes follow
    holders = empty_db.execute(text("SELECT official_id FROM grid_assignment WHERE grid_code = :c AND valid_to IS NULL"),
                               {"c": MOVED}).scalars().all()
    assert holders == [world.ids["b21_leader"]]
    assert empty_db.execute(text("SELECT DISTINCT community_code FROM issue WHERE grid_code = :c"),
                            {"c": MOVED}).scalar_one() == C1
    # a new grid under C2 never gets the retired code …
    d = cs.load_draft(empty_db)
    codes = edits.split(d, B22, shapely.LineString([(113.635, 34.739), (113.635, 34.751)]))
    assert codes[1] == "41010200100203"
    # … and the database refuses it for another area
    with pytest.raises(DBAPIError, match="never reused"), empty_db.begin_nested():
        store.insert_grids(empty_db, [store.NewGrid(B21, 3, C2, "复用", box(113.63, 34.74, 113.635, 34.75))],
                           at=store.now() + dt.timedelta(days=1))


def test_a_failure_mid_save_changes_nothing(empty_db, world, author, monkeypatch):
    pid = propose(empty_db, author, shift_boundary(34.753))

    def state():
        return (empty_db.execute(text("SELECT count(*), count(valid_to) FROM grid")).one(),
                empty_db.execute(text("SELECT count(*) FROM grid_change_set")).scalar_one(),
                empty_db.execute(text("SELECT string_agg(grid_code || version, ',' ORDER BY id) FROM issue")).scalar_one(),
                empty_db.execute(text("SELECT status FROM grid_proposal WHERE id = :p"), {"p": pid}).scalar_one())

    before = state()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cs, "reassign_issues", boom)  # after the versions and change-set rows are written
    with pytest.raises(RuntimeError):
        cs.apply_proposal(empty_db, pid, author)
    assert state() == before


def test_the_second_planner_is_refused_naming_what_changed(empty_db, world, author):
    first = propose(empty_db, author, shift_boundary(34.753))
    second = propose(empty_db, author, {"grids": [
        {"code": B12, "geometry": mapping(box(113.62, 34.74, 113.63, 34.751))},
        {"code": B11, "geometry": mapping(box(113.62, 34.751, 113.63, 34.76))}]})
    applied = cs.apply_proposal(empty_db, first, author)
    grids = empty_db.execute(text("SELECT count(*) FROM grid")).scalar_one()
    with pytest.raises(ConflictError) as e:
        cs.apply_proposal(empty_db, second, author)
    assert e.value.code == "grids_changed" and B11 in e.value.message_en and B12 in e.value.message_en
    assert f"#{applied['id']}" in e.value.message_zh and e.value.detail["change_sets"] == [applied["id"]]
    assert empty_db.execute(text("SELECT count(*) FROM grid")).scalar_one() == grids
    assert cs.proposal_data(empty_db, second)["conflicts"][0]["change_set_id"] == applied["id"]


def test_an_invalid_proposal_is_not_applied(empty_db, world, author):
    d = cs.build_draft(empty_db, {"grids": [{"code": B11, "geometry": mapping(box(113.62, 34.752, 113.63, 34.76))}]})
    probs = cs.validate(empty_db, d)
    assert [p.kind for p in probs] == ["gap"]
    data = cs.problem_data(probs[0])
    assert B11 in data["message_en"] and B12 in data["message_zh"]
    assert shapely.geometry.shape(data["geometry"]).equals(box(113.62, 34.75, 113.63, 34.752))
    pid = cs.save_proposal(empty_db, d, author, "留缝")  # a draft may be saved with problems …
    with pytest.raises(DomainError) as e:  # … never applied
        cs.apply_proposal(empty_db, pid, author)
    assert e.value.code == "proposal_invalid" and e.value.detail["problems"][0]["kind"] == "gap"


def test_revert_restores_the_old_versions_as_a_new_change_set(empty_db, world, author):
    d = cs.load_draft(empty_db)
    edits.move(d, B21, C1)
    moved = cs.apply_proposal(empty_db, cs.save_proposal(empty_db, d, author, "并入"), author)
    back = cs.revert(empty_db, moved["id"], author)
    assert back["reverts_id"] == moved["id"]
    assert {i["code"]: i["kind"] for i in back["items"]} == {B21: "created", MOVED: "retired", C1: "changed",
                                                            C2: "changed"}
    assert len(issues_in(empty_db, B21)) == 10 and issues_in(empty_db, MOVED) == []
    current = {g.code: g.geom for g in store.current_grids(empty_db)}
    assert MOVED not in current and current[C2].equals(box(113.63, 34.74, 113.64, 34.76))
    assert cs.change_set_data(empty_db, moved["id"])["reverted_by"] == back["id"]
    # reverting the first again: its grids changed since (by the revert) → refused
    with pytest.raises(ConflictError):
        cs.revert(empty_db, moved["id"], author)
    history = cs.change_sets(empty_db, B21)
    assert [c["id"] for c in history] == [back["id"], moved["id"]]


def test_a_later_effective_time_reassigns_when_it_comes(empty_db, world, author):
    t = store.now() + dt.timedelta(days=2)
    out = cs.apply_proposal(empty_db, propose(empty_db, author, shift_boundary(34.753)), author, effective_at=t)
    assert out["issues_moved"] is None and out["issues_reassigned_at"] is None
    assert store.current_grids(empty_db, 3, codes=[B11])[0].geom.equals(box(113.62, 34.75, 113.63, 34.76))
    assert cs.reassign_due(empty_db) == []
    done = cs.reassign_due(empty_db, now=t + dt.timedelta(minutes=1))
    assert [i for i, _ in done] == [out["id"]] and done[0][1] > 0
    assert cs.reassign_due(empty_db, now=t + dt.timedelta(minutes=2)) == []


def test_change_set_records_are_append_only(empty_db, world, author):
    out = cs.apply_proposal(empty_db, propose(empty_db, author, shift_boundary(34.753)), author)
    for stmt in ("UPDATE grid_change_set SET reason = 'x'", "DELETE FROM grid_change_item",
                 "DELETE FROM grid_issue_move", "UPDATE grid_change_run SET issues_moved = 0"):
        with pytest.raises(DBAPIError, match="append-only"), empty_db.begin_nested():
            empty_db.execute(text(stmt))
    assert cs.change_set_data(empty_db, out["id"])["reason"] == "调整边界"


def test_proposals_are_bounded(empty_db, world, author):
    big = shapely.Polygon([(113.62 + 0.01 * k / 300_000, 34.75 + 0.00001 * (k % 2)) for k in range(300_001)]
                          + [(113.62, 34.76)])
    with pytest.raises(DomainError) as e:
        cs.build_draft(empty_db, {"grids": [{"code": B11, "geometry": mapping(big)}]})
    assert e.value.code == "too_many_vertices"


def test_the_reassignment_has_its_own_statement_timeout_and_gives_the_requests_back(empty_db, world, author):
    """The UPDATE of the moved issues runs under REASSIGN_TIMEOUT (a web request's 5 s would cut a
    large move short); the request's own timeout is in force again after it."""
    empty_db.execute(text("SET LOCAL statement_timeout = '5s'"))
    seen = []
    from sqlalchemy import event

    def spy(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().startswith("UPDATE issue i SET grid_code"):
            seen.append(conn.exec_driver_sql("SHOW statement_timeout").scalar())

    bind = empty_db.connection()
    event.listen(bind, "before_cursor_execute", spy)
    try:
        out = cs.apply_proposal(empty_db, propose(empty_db, author, shift_boundary(34.753)), author)
    finally:
        event.remove(bind, "before_cursor_execute", spy)
    assert out["issues_moved"] > 0 and seen == ["1min"]
    assert empty_db.execute(text("SHOW statement_timeout")).scalar() == "5s"
