"""The dashboard's view of the weekly-notice outbox (geodata.workflow.notices.latest_outbox) and the demo's
notices (etl.demo.add_weekly_notices), on a real PostGIS."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from sqlalchemy import create_engine, text

from etl.demo import AS_OF_TIME, NOTICE_SEND_DELAY, add_weekly_notices, last_complete_week, load_demo
from geodata.access.scope import Scope
from geodata.errors import DomainError
from geodata.workflow.notices import latest_outbox, mask_phones, send_weekly_notices
from tests.conftest import DEMO_END, SUFFIX
from tests.world import B11, B21, C1, C2, STREET, TZ, drop_database, scratch_database, seed

PHONE_RE = re.compile(r"1[3-9]\d{9}")
NOW = dt.datetime(2026, 3, 4, 2, tzinfo=dt.UTC)   # Wednesday 10:00 in Shanghai
CMD = Scope.everything(personal_data=False)
LEADERS = {"网格长甲": B11, "网格长乙": "41010200100102", "网格长丙": B21, "网格长丁": "41010200100202"}


def _insert_open_issue(s, block: str, title: str) -> None:
    s.execute(text("""
        INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code,
                           community_code, status, reported_at, due_at, updated_at)
        VALUES (:n, 'problem', 'sanitation', :t, '', 'resident', ST_SetSRID(ST_MakePoint(113.625, 34.755), 4326),
                :g, :c, 'reported', :r, :d, :r)"""),
        {"n": "WT20260303000901", "t": title, "g": block, "c": block[:12] + "00",
         "r": NOW - dt.timedelta(days=1), "d": NOW + dt.timedelta(days=2)})


@pytest.fixture
def box(empty_db):
    """Two weeks of notices for the four leaders of the small world: last week's (sent) and this
    week's (pending, newer)."""
    world = seed(empty_db)
    _insert_open_issue(empty_db, B11, "楼道堆物 联系人13812345678")
    operator = world.actor(empty_db, "operator")
    last = send_weekly_notices(empty_db, operator, week_of=(NOW - dt.timedelta(days=7)).date(), now=NOW, tz=TZ)
    this = send_weekly_notices(empty_db, operator, now=NOW, tz=TZ)
    assert last["delivered"] == this["delivered"] == 4
    # one transaction: now() is the same for every row, so give them distinct, known times
    for k, n in enumerate(last["notices"] + this["notices"]):
        created = NOW - dt.timedelta(days=7) + dt.timedelta(days=7 * (k // 4), minutes=k)
        empty_db.execute(text("UPDATE outbox SET created_at = :c, sent_at = :s WHERE id = :i"),
                         {"c": created, "s": created + dt.timedelta(minutes=2) if k < 4 else None,
                          "i": n["outbox_id"]})
    return world


def test_command_centre_sees_every_row_newest_first(empty_db, box):
    view = latest_outbox(empty_db, CMD, now=NOW, tz=TZ)
    assert (view.total, view.pending, len(view.items)) == (8, 4, 8)
    created = [i.created_at for i in view.items]
    assert created == sorted(created, reverse=True) and len(set(created)) == 8
    assert [i.sent for i in view.items] == [False] * 4 + [True] * 4
    assert {i.recipient for i in view.items} == set(LEADERS)
    for i in view.items:
        assert i.created_at.utcoffset() == dt.timedelta(hours=8)
        assert i.subject in ("网格周通报 2026-03-02", "网格周通报 2026-02-23")
        assert i.grids == ((LEADERS[i.recipient], *empty_db.execute(
            text("SELECT name, name_en FROM grid WHERE code = :c"), {"c": LEADERS[i.recipient]}).one()),)
        assert i.recipient in i.body
    sent = [i for i in view.items if i.sent]
    assert all(i.sent_at.utcoffset() == dt.timedelta(hours=8)
               and i.sent_at - i.created_at == dt.timedelta(minutes=2) for i in sent)
    assert all(i.subject == "网格周通报 2026-02-23" for i in sent)


def test_scope_limits_rows_to_officials_of_grids_in_scope(empty_db, box):
    def recipients(scope):
        view = latest_outbox(empty_db, scope, now=NOW, tz=TZ)
        return view.total, sorted({i.recipient for i in view.items})

    assert recipients(Scope.grids(C1)) == (4, ["网格长乙", "网格长甲"])
    assert recipients(Scope.grids(C2)) == (4, ["网格长丁", "网格长丙"])
    assert recipients(Scope.grids(B21)) == (2, ["网格长丙"])
    assert recipients(Scope.grids(STREET)) == (8, sorted(LEADERS))
    assert recipients(Scope.grids()) == (0, [])
    # a grid in scope lists only the recipient's grids in that scope
    assert {i.grids for i in latest_outbox(empty_db, Scope.grids(B11), now=NOW, tz=TZ).items} == {
        ((B11, "西社区一网格", "West Grid 1"),)}
    # an official whose assignment has ended is no longer in the grid's scope
    empty_db.execute(text("UPDATE grid_assignment SET valid_to = :t WHERE grid_code = :g"),
                     {"t": NOW - dt.timedelta(hours=1), "g": B21})
    assert recipients(Scope.grids(B21)) == (0, [])
    assert latest_outbox(empty_db, CMD, now=NOW, tz=TZ).total == 8


def test_pages_and_counts(empty_db, box):
    everything = [i.id for i in latest_outbox(empty_db, CMD, now=NOW, tz=TZ).items]
    first = latest_outbox(empty_db, CMD, limit=3, now=NOW, tz=TZ)
    second = latest_outbox(empty_db, CMD, limit=3, offset=3, now=NOW, tz=TZ)
    assert [i.id for i in first.items + second.items] == everything[:6]
    assert first.total == second.total == 8
    counts = latest_outbox(empty_db, CMD, limit=0, now=NOW, tz=TZ)
    assert (counts.items, counts.total, counts.pending) == ([], 8, 4)
    empty_db.execute(text("UPDATE outbox SET sent_at = created_at"))
    assert latest_outbox(empty_db, CMD, limit=0, now=NOW, tz=TZ).pending == 0
    with pytest.raises(DomainError):
        latest_outbox(empty_db, CMD, limit=501, tz=TZ)
    with pytest.raises(DomainError):
        latest_outbox(empty_db, CMD, offset=-1, tz=TZ)


def test_never_exposes_a_phone_number(empty_db, box):
    # the stored text holds the reporter's number (typed into the title); the view masks it
    stored = empty_db.execute(text("SELECT body FROM outbox WHERE body LIKE '%13812345678%'")).scalars().all()
    assert len(stored) == 2
    phones = empty_db.execute(text("SELECT phone FROM official_contact")).scalars().all()
    for scope in (CMD, Scope.everything(personal_data=True), Scope.grids(B11)):
        view = latest_outbox(empty_db, scope, now=NOW, tz=TZ)
        dumped = json.dumps([dataclasses.asdict(i) for i in view.items], default=str, ensure_ascii=False)
        assert not PHONE_RE.search(dumped), scope
        assert not any(p in dumped for p in phones)
        assert "138****5678" in dumped
    assert mask_phones("电话13812345678，编号WT20260303000901") == "电话138****5678，编号WT20260303000901"


# -- the demo's notices ---------------------------------------------------------------------------
def _rows(s, ids):
    return s.execute(text("""
        SELECT o.name, b.subject, b.body, b.channel, b.created_at, b.sent_at FROM outbox b
        JOIN official o ON o.id = b.official_id WHERE b.id = ANY(:ids) ORDER BY o.name, b.subject"""),
        {"ids": list(ids)}).all()


def test_demo_notices_for_the_last_complete_week(db):
    leaders = db.execute(text("SELECT count(DISTINCT official_id) FROM grid_assignment "
                              "WHERE role = 'grid_leader' AND valid_to IS NULL")).scalar_one()
    ids = add_weekly_notices(db, DEMO_END)       # DEMO_END is a Friday: last week is Mon 16 – Sun 22 Nov
    assert len(ids) == leaders > 0
    as_of = dt.datetime.combine(DEMO_END, AS_OF_TIME, tzinfo=TZ)
    rows = _rows(db, ids)
    assert {r.subject for r in rows} == {"网格周通报 2026-11-16"}
    assert all(r.created_at == as_of and r.sent_at == as_of + NOTICE_SEND_DELAY and r.channel == "sms"
               for r in rows)
    assert all("11月16日—11月22日" in r.body and r.name in r.body for r in rows)
    assert sum("请优先处理" in r.body for r in rows) > 0 and not any(PHONE_RE.search(r.body) for r in rows)
    view = latest_outbox(db, CMD, now=as_of, tz=TZ)
    mine = [i for i in view.items if i.id in set(ids)]
    assert len(mine) == leaders and all(i.sent and i.grids for i in mine)
    assert add_weekly_notices(db, DEMO_END) == []             # that week is already in the outbox


def test_last_complete_week():
    # the records stop at AS_OF_TIME on the end day, so the end day's own week is never complete
    assert last_complete_week(dt.date(2026, 11, 27)) == dt.date(2026, 11, 16)   # Friday
    assert last_complete_week(dt.date(2026, 11, 29)) == dt.date(2026, 11, 16)   # Sunday
    assert last_complete_week(dt.date(2026, 11, 30)) == dt.date(2026, 11, 23)   # Monday


def test_demo_loader_notices_are_deterministic(server_url, db):
    """load_demo(weekly_notices=True) writes the same rows as the same seed + end computed elsewhere."""
    expected = _rows(db, add_weekly_notices(db, DEMO_END))
    name = f"gridwatch_test_demo_notices{SUFFIX}"
    engine = create_engine(scratch_database(server_url, name))
    try:
        summary = load_demo(engine, end=DEMO_END, progress=False, weekly_notices=True)
        assert summary.notices == len(expected) > 0 and "Weekly notices" in str(summary)
        with engine.connect() as c:
            ids = c.execute(text("SELECT id FROM outbox")).scalars().all()
            assert _rows(c, ids) == expected
    finally:
        engine.dispose()
        drop_database(server_url, name)
