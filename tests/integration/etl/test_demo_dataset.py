"""Invariants of the synthetic 三官庙街道 demo dataset, checked on a real PostGIS by SQL queries."""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict

import pytest
import shapely
from sqlalchemy import create_engine, text

from etl.demo import AS_OF_TIME, DEMO_TZ, DemoError, load_demo
from geodata import codes
from geodata.geometry import coverage_problems
from geodata.models import ROLES_BY_LEVEL
from geodata.workflow import rules as wf
from geodata.workflow.rules import DeadlinePolicy
from tests.conftest import DEMO_END, SUFFIX, _fresh_database

AS_OF = dt.datetime.combine(DEMO_END, AS_OF_TIME, tzinfo=DEMO_TZ)
CLOSED = "status IN ('closed', 'evaluated')"


def scalar(db, sql: str, **params):
    return db.execute(text(sql), params).scalar_one()


# -- grids ----------------------------------------------------------------------------------------
def test_grid_counts_by_level(db):
    rows = dict(db.execute(text("SELECT level, count(*) FROM grid WHERE valid_to IS NULL GROUP BY level")).all())
    assert rows == {1: 1, 2: 14, 3: 59}


def test_street_size_and_location(db):
    area, lon, lat = db.execute(text(
        "SELECT area_m2, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM grid WHERE level = 1")).one()
    assert 3.0e6 <= area <= 4.0e6
    assert abs(lon - 113.63) < 0.01 and abs(lat - 34.75) < 0.01
    # block-like, not a rectangle: more than four corners, and not its own envelope
    n, env = db.execute(text("SELECT ST_NPoints(geom), ST_Area(ST_Envelope(geom)) / ST_Area(geom) "
                             "FROM grid WHERE level = 1")).one()
    assert n > 5 and env > 1.03


def test_codes_well_formed_unique_and_consistent(db):
    rows = db.execute(text("SELECT code, level, parent_code, name, name_en, note FROM grid "
                           "WHERE valid_to IS NULL")).all()
    assert len({r.code for r in rows}) == len(rows)
    street = codes.street_code("410102", 5)
    for r in rows:
        assert len(r.code) == 14 and r.code.isdigit()
        assert codes.level_of(r.code) == r.level
        assert codes.parent_of(r.code) == r.parent_code
        assert r.code.startswith(street[:9])
        assert r.name and r.name_en and "合成演示数据" in r.note
    names = [r.name for r in rows if r.level == 2]
    assert len(set(names)) == 14 and any(n.endswith("村") for n in names)
    assert "三官庙社区" in names
    assert {r.code[9:12] for r in rows if r.level == 2} == {f"{i:03d}" for i in range(1, 15)}
    per_parent = defaultdict(list)
    for r in rows:
        if r.level == 3:
            per_parent[r.parent_code].append(int(r.code[12:]))
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in per_parent.values())
    assert all(3 <= len(v) <= 6 for v in per_parent.values())


def test_children_tile_parents_exactly_in_shapely(db):
    rows = db.execute(text("SELECT code, parent_code, ST_AsBinary(geom) AS wkb FROM grid "
                           "WHERE valid_to IS NULL")).all()
    geoms = {r.code: shapely.from_wkb(bytes(r.wkb)) for r in rows}
    children = defaultdict(list)
    for r in rows:
        if r.parent_code:
            children[r.parent_code].append(geoms[r.code])
    assert len(children) == 15
    for parent, kids in children.items():
        assert shapely.coverage_is_valid(kids), parent
        report = coverage_problems(geoms[parent], kids)
        assert report["ok"] and report["coverage_valid"], (parent, report)


def test_children_tile_parents_exactly_in_postgis(db):
    rows = db.execute(text("""
        SELECT p.code,
               ST_Area(ST_Transform(ST_SymDifference(p.geom, ST_Union(c.geom)), 32649)) AS diff,
               bool_and(ST_IsValid(c.geom)) AS valid
        FROM grid p JOIN grid c ON c.parent_code = p.code AND c.valid_to IS NULL
        WHERE p.valid_to IS NULL GROUP BY p.code, p.geom""")).all()
    assert len(rows) == 15
    for r in rows:
        assert r.valid and r.diff <= 1.0, r
    overlaps = scalar(db, """
        SELECT count(*) FROM grid a JOIN grid b ON a.parent_code = b.parent_code AND a.id < b.id
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND ST_Overlaps(a.geom, b.geom)""")
    assert overlaps == 0


def test_every_role_of_every_level_is_filled(db):
    rows = db.execute(text("""
        SELECT g.code, g.level, a.role, a.title, a.rank, o.name, c.phone, o.unit
        FROM grid g JOIN grid_assignment a ON a.grid_code = g.code AND a.valid_to IS NULL
        JOIN official o ON o.id = a.official_id LEFT JOIN official_contact c ON c.official_id = o.id
        WHERE g.valid_to IS NULL""")).all()
    by_grid = defaultdict(list)
    for r in rows:
        by_grid[r.code].append(r)
        assert r.name and r.unit.endswith("（合成演示）")
        assert r.phone and len(r.phone) == 11 and r.phone.isdigit()
    levels = dict(db.execute(text("SELECT code, level FROM grid WHERE valid_to IS NULL")).all())
    assert set(by_grid) == set(levels)
    for code, level in levels.items():
        roles = defaultdict(list)
        for r in by_grid[code]:
            roles[r.role].append(r)
        assert set(ROLES_BY_LEVEL[level]) <= set(roles), code
        if level == 1:
            assert [r.title for r in sorted(roles["first_responsible"], key=lambda r: r.rank)] == \
                ["街道党委书记", "街道办事处主任"]
            assert 2 <= len(roles["operator"]) <= 3
        elif level == 2:
            direct = sorted(roles["direct_responsible"], key=lambda r: r.rank)
            assert [r.rank for r in direct] == [0, 1, 2]
            assert direct[0].title.endswith("党支部书记") and direct[2].title == "警务室首席民警"
            assert direct[1].title in ("居委会主任", "村委主任")
            assert len(roles["first_responsible"]) == 1 and len(roles["sunk_member"]) >= 2
            assert len(roles["platform_maintainer"]) == 1
        else:
            assert [r.title for r in roles["grid_leader"]] == ["网格长"]
    assert scalar(db, "SELECT count(DISTINCT phone) FROM official_contact") == scalar(db, "SELECT count(*) FROM official")


# -- the article's numbers ----------------------------------------------------------------------
def test_headline_numbers_come_from_records(db):
    def count(kind: str, closed: bool = False) -> int:
        return scalar(db, f"SELECT count(*) FROM issue WHERE kind = :k{' AND ' + CLOSED if closed else ''}", k=kind)

    assert (count("problem"), count("problem", True)) == (3134, 3130)
    assert (count("sentiment"), count("sentiment", True)) == (1214, 1209)
    assert round(100 * count("problem", True) / count("problem"), 2) == 99.87
    assert round(100 * count("sentiment", True) / count("sentiment"), 2) == 99.59
    assert scalar(db, "SELECT count(DISTINCT domain_code) FROM issue WHERE kind = 'problem'") == 7
    assert scalar(db, "SELECT bool_and(synthetic) FROM issue")


def test_issues_lie_in_their_level3_grid_with_six_ones_chain(db):
    bad = scalar(db, """
        SELECT count(*) FROM issue i
        LEFT JOIN grid g ON g.code = i.grid_code AND g.valid_to IS NULL
        WHERE g.id IS NULL OR g.level <> 3 OR g.parent_code <> i.community_code
           OR NOT ST_Covers(g.geom, i.location)""")
    assert bad == 0
    chain = scalar(db, """
        SELECT count(*) FROM issue i
        WHERE i.leader_in_charge_id IS DISTINCT FROM (SELECT official_id FROM grid_assignment
                WHERE grid_code = i.community_code AND role = 'first_responsible' AND valid_to IS NULL)
           OR i.responsible_id IS DISTINCT FROM (SELECT official_id FROM grid_assignment
                WHERE grid_code = i.community_code AND role = 'direct_responsible' AND rank = 0
                  AND valid_to IS NULL)
           OR i.grid_leader_id IS DISTINCT FROM (SELECT official_id FROM grid_assignment
                WHERE grid_code = i.grid_code AND role = 'grid_leader' AND valid_to IS NULL)""")
    assert chain == 0
    # the grid leader usually handles it; every assigned case has its worksheet
    share = scalar(db, "SELECT avg((assignee_id = grid_leader_id)::int) FROM issue WHERE assignee_id IS NOT NULL")
    assert share > 0.8
    assert scalar(db, "SELECT count(*) FROM issue WHERE assigned_at IS NOT NULL "
                      "AND jsonb_array_length(worksheet) < 5") == 0
    numbers = db.execute(text("SELECT kind, number FROM issue")).all()
    assert all(n.startswith("WT" if k == "problem" else "SQ") and len(n) == 12 for k, n in numbers)


def test_event_histories_follow_the_workflow(db):
    events = db.execute(text("SELECT issue_id, action, from_status, to_status, at, actor_role, data "
                             "FROM issue_event ORDER BY issue_id, at, id")).all()
    issues = {r.id: r for r in db.execute(text(
        "SELECT id, status, reported_at, assigned_at, signed_at, closed_at, rework_count, reassign_count, "
        "satisfaction, updated_at FROM issue")).all()}
    by_issue = defaultdict(list)
    for e in events:
        by_issue[e.issue_id].append(e)
    assert set(by_issue) == set(issues)
    for iid, evs in by_issue.items():
        issue = issues[iid]
        assert evs[0].action == "report" and evs[0].at == issue.reported_at
        status = None
        for prev, e in zip([None, *evs], evs):
            if prev is not None:
                assert e.at > prev.at, iid
            assert e.from_status == status, iid
            assert e.to_status == wf.next_status(status, e.action), iid
            assert e.actor_role in wf.ALLOWED_ROLES[e.action], (iid, e.action, e.actor_role)
            status = e.to_status
        assert status == issue.status
        first = {}
        for e in evs:
            first.setdefault(e.action, e)
        assigns = [e.at for e in evs if e.action in ("assign", "reassign")]
        assert issue.assigned_at == (assigns[-1] if assigns else None)  # 改派 restarts the clock
        assert issue.signed_at == (first["sign"].at if "sign" in first else None)
        assert issue.closed_at == (first["close"].at if "close" in first else None)
        assert issue.rework_count == sum(e.action == "rework" for e in evs)
        assert issue.reassign_count == sum(e.action == "reassign" for e in evs)
        sat = first["evaluate"].data["satisfaction"] if "evaluate" in first else None
        assert issue.satisfaction == sat
        assert issue.updated_at == evs[-1].at
        assert evs[-1].at <= AS_OF


def test_deadlines_follow_the_domain_policy(db):
    policy = {r.code: r for r in db.execute(text("SELECT * FROM domain")).all()}
    ext = dict(db.execute(text("SELECT issue_id, sum((data->>'days')::int) FROM issue_event "
                               "WHERE action = 'extend' GROUP BY issue_id")).all())
    first_assign = dict(db.execute(text("SELECT issue_id, min(at) FROM issue_event WHERE action = 'assign' "
                                        "GROUP BY issue_id")).all())
    rows = db.execute(text("SELECT id, kind, domain_code, assigned_at, sign_deadline, due_at FROM issue "
                           "WHERE assigned_at IS NOT NULL")).all()
    assert len(rows) == len(first_assign)
    for r in rows:
        d = policy[r.domain_code]
        p = DeadlinePolicy(d.sign_hours, d.handle_days if r.kind == "problem" else d.sentiment_handle_days)
        # the sign-for clock runs from the latest (re)assignment, the due date from the first one
        assert r.sign_deadline == wf.deadlines(r.assigned_at, p, DEMO_TZ)[0]
        _, due = wf.deadlines(first_assign[r.id], p, DEMO_TZ)
        assert r.due_at == due + dt.timedelta(days=ext.get(r.id, 0)), r.id


def test_workflow_mix(db):
    n_closed = scalar(db, f"SELECT count(*) FROM issue WHERE {CLOSED}")
    late = scalar(db, f"SELECT count(*) FROM issue WHERE {CLOSED} AND closed_at > due_at") / n_closed
    reworked = scalar(db, "SELECT count(*) FROM issue WHERE rework_count > 0") / n_closed
    reassigned = scalar(db, "SELECT count(*) FROM issue WHERE reassign_count > 0") / n_closed
    evaluated = scalar(db, "SELECT count(*) FROM issue WHERE status = 'evaluated'") / n_closed
    extended = scalar(db, "SELECT count(DISTINCT issue_id) FROM issue_event WHERE action = 'extend'")
    assert 0.04 < late < 0.14
    assert 0.03 < reworked < 0.08
    assert 0.01 < reassigned < 0.04
    assert 0.5 < evaluated < 0.7
    assert extended >= 10
    assert scalar(db, "SELECT avg(satisfaction) FROM issue") > 4.0
    assert scalar(db, "SELECT count(DISTINCT source) FROM issue") == 5
    ext_data = db.execute(text("SELECT data FROM issue_event WHERE action = 'extend' LIMIT 1")).scalar_one()
    assert {"reason", "approver_id", "old_due", "new_due"} <= set(ext_data)


def test_recent_open_issues_and_overdue_now(db):
    week_ago = AS_OF - dt.timedelta(days=7)
    open_rows = db.execute(text(f"SELECT status, reported_at, sign_deadline, due_at FROM issue "
                                f"WHERE NOT {CLOSED}")).all()
    assert len(open_rows) == 9
    assert all(week_ago <= r.reported_at <= AS_OF for r in open_rows)
    assert len({r.status for r in open_rows}) >= 5
    overdue = [r for r in open_rows if wf.is_overdue(r.status, r.due_at, None, AS_OF)]
    assert len(overdue) >= 2
    assert any(wf.is_sign_overdue(r.status, r.sign_deadline, None, AS_OF) for r in open_rows)
    this_week = scalar(db, "SELECT count(*) FROM issue WHERE reported_at >= :t", t=week_ago)
    assert this_week > 40
    span = db.execute(text("SELECT min(reported_at), max(reported_at) FROM issue")).one()
    assert span[0] >= AS_OF - dt.timedelta(days=366) and span[1] <= AS_OF


def test_hotspots_are_clustered(db):
    rows = db.execute(text("""
        SELECT g.code, g.area_m2, count(i.id) AS n FROM grid g LEFT JOIN issue i ON i.grid_code = g.code
        WHERE g.level = 3 AND g.valid_to IS NULL GROUP BY g.code, g.area_m2""")).all()
    total_n = sum(r.n for r in rows)
    total_area = sum(r.area_m2 for r in rows)
    densest = sorted(rows, key=lambda r: r.n / r.area_m2, reverse=True)[:len(rows) // 10]
    share_n = sum(r.n for r in densest) / total_n
    share_area = sum(r.area_m2 for r in densest) / total_area
    assert share_n > 0.25 and share_n > 3 * share_area
    assert all(r.n > 0 for r in rows)  # background reports reach every block


def test_diaries_and_activities(db):
    assert scalar(db, "SELECT count(*) FROM patrol_diary") > 59 * 52
    outside = scalar(db, """SELECT count(*) FROM patrol_diary d JOIN grid g ON g.code = d.grid_code
                            WHERE NOT ST_Within(d.track, g.geom) OR g.level <> 3
                               OR d.official_id <> (SELECT official_id FROM grid_assignment
                                  WHERE grid_code = d.grid_code AND role = 'grid_leader')""")
    assert outside == 0
    assert scalar(db, "SELECT count(*) FROM patrol_diary WHERE ended_at <= started_at") == 0
    assert scalar(db, "SELECT count(*) FROM patrol_diary WHERE issue_id IS NOT NULL") > 100
    kinds = dict(db.execute(text("SELECT category, array_agg(DISTINCT kind) FROM activity GROUP BY 1")).all())
    assert {c: sorted(k) for c, k in kinds.items()} == {
        "talk": sorted(["社区论坛", "社会恳谈", "党群畅谈"]),
        "visit": sorted(["党员家访", "楼院随访", "专题约访"]),
        "clinic": sorted(["接待坐诊", "走访出诊", "民情会诊"])}


# -- loading rules ------------------------------------------------------------------------------
def _digest(engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT number, kind, domain_code, title, source, ST_AsEWKB(location), grid_code, status,
                   reported_at, closed_at, due_at, satisfaction, assignee_id,
                   (SELECT string_agg(action || at::text, ',' ORDER BY id) FROM issue_event e
                    WHERE e.issue_id = i.id)
            FROM issue i ORDER BY id""")).all()
        grids = conn.execute(text("SELECT code, name, ST_AsEWKB(geom) FROM grid ORDER BY code")).all()
    h = hashlib.sha256()
    for r in [*rows, *grids]:
        h.update(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def extra_engine(server_url):
    engines = []

    def make(name: str):
        engine = create_engine(_fresh_database(server_url, f"gridwatch_test_demo_{name}{SUFFIX}"))
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.dispose()


def test_deterministic_for_same_seed_and_end(demo_engine, extra_engine):
    engine = extra_engine("again")
    summary = load_demo(engine, end=DEMO_END, progress=False)
    assert summary.loaded and summary.problems == 3134
    assert _digest(engine) == _digest(demo_engine)


def test_different_end_date_shifts_the_year(extra_engine):
    engine = extra_engine("shifted")
    end = DEMO_END - dt.timedelta(days=100)
    load_demo(engine, end=end, progress=False)
    with engine.connect() as conn:
        lo, hi = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM issue")).one()
        closed = conn.execute(text(f"SELECT count(*) FROM issue WHERE {CLOSED}")).scalar_one()
        last = conn.execute(text("SELECT max(at) FROM issue_event")).scalar_one()
    as_of = dt.datetime.combine(end, AS_OF_TIME, tzinfo=DEMO_TZ)
    assert hi <= as_of and lo >= as_of - dt.timedelta(days=366) and last <= as_of
    assert hi > as_of - dt.timedelta(days=1)
    assert closed == 3130 + 1209


def test_loading_twice_refuses_and_writes_nothing(demo_engine):
    tables = ("grid", "official", "grid_assignment", "issue", "issue_event", "patrol_diary", "activity")

    def counts():
        with demo_engine.connect() as conn:
            return [conn.execute(text(f"SELECT count(*), max(id) FROM {t}")).one() for t in tables]

    before = counts()
    with pytest.raises(DemoError) as exc:
        load_demo(demo_engine, end=DEMO_END, progress=False)
    assert "已有网格" in str(exc.value) and "already" in str(exc.value)
    assert counts() == before
    summary = load_demo(demo_engine, end=DEMO_END, progress=False, if_empty=True)
    assert not summary.loaded and "not loaded" in str(summary)
    assert counts() == before


def test_summary_reads_bilingually(demo_engine, extra_engine):
    # the summary counts come from the database; str() names both languages
    engine = extra_engine("summary")
    summary = load_demo(engine, end=DEMO_END, seed=7, progress=False)
    s = str(summary)
    assert "3134" in s and "99.87%" in s and "99.59%" in s and "问题" in s and "Problems" in s
    assert summary.grids == {1: 1, 2: 14, 3: 59}
    assert _digest(engine) != _digest(demo_engine)  # another seed, other records


def test_hotspot_place_names_stay_in_their_community(db):
    """A title naming a hotspot (e.g. 棉纺老家属院片区) only on issues inside that hotspot's community."""
    from etl.demo_geometry import HOTSPOTS, build_geometry

    geo = build_geometry()
    home = {b.hotspot: b.parent_code for b in geo.blocks if b.hotspot is not None}
    assert len(home) == len(HOTSPOTS)
    checked = 0
    for i, (name, *_rest) in enumerate(HOTSPOTS):
        rows = db.execute(text("SELECT number, community_code FROM issue WHERE title LIKE :p"),
                          {"p": f"%{name}%"}).all()
        wrong = [r.number for r in rows if r.community_code != home[i]]
        assert not wrong, f"{name}: {wrong[:5]}"
        checked += len(rows)
    assert checked > 300  # hotspot names are still used where they belong
