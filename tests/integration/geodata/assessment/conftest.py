"""The hand-computed assessment world: the test street (tests/world.py) with cases A–H made through
the real workflow service at chosen instants, diary entries and activities around October 2026's
boundaries in Asia/Shanghai. Every expected number in test_indicators.py is counted by hand from
the table in this docstring (local times, Asia/Shanghai; sanitation: sign 2 h, due 2 days after
assignment at 23:59:59; sentiment: 5 days):

case grid kind  reported     assigned       due (→ extended)      signed         closed         other
A    B11  prob  09-30 23:59:59 10-01 00:00:30 10-03             10-01 00:30     10-02 12:00    evaluated 10-03 (5)
B    B11  prob  10-01 00:00:00 10-01 09:00    10-03             10-01 12:00 late 10-04 09:00 late rework 10-02; eval 10-05 (3)
C    B11  prob  10-31 23:59:59 11-01 00:10    11-03             —              open
D    B11  prob  10-20 10:00    10-20 10:30    10-22 → 11-05 (ext. 10-21) 10-20 11:00 open  (deferred in Oct)
E    B11  prob  10-25 10:00    10-25 10:30    10-27 → 10-30 (ext. 10-26) 10-25 11:00 10-29 16:00
G    B11  prob  09-28 10:00    09-28 10:30    09-30             09-28 11:00     10-02 10:00 late (spans Sept → Oct)
H    B11  sent  10-15 10:00    10-15 10:30    10-20             10-15 11:00     10-18 10:30
F    B12  prob  10-10 10:00    10-10 10:30    10-12             10-10 10:40; reassigned 12:00, signed 13:00; open
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from geoalchemy2 import WKTElement
from sqlalchemy.orm import Session

from geodata.models import Activity, PatrolDiary
from geodata.workflow.service import apply_transition, report_issue
from tests.world import B11, B12, C1, TZ, World, rollback_session, savepoint, seed

#: the data's time of every computation (after every record)
AS_OF = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
POINTS = {B11: (113.625, 34.755), B12: (113.625, 34.745)}


def L(month: int, day: int, h: int = 0, m: int = 0, s: int = 0) -> dt.datetime:
    """A local time in 2026 (Asia/Shanghai)."""
    return dt.datetime(2026, month, day, h, m, s, tzinfo=TZ)


@dataclass
class AWorld:
    world: World
    cases: dict[str, int] = field(default_factory=dict)
    diary: dict[str, int] = field(default_factory=dict)


def _case(s: Session, w: World, block: str, kind: str, reported: dt.datetime,
          steps: list[tuple]) -> int:
    lon, lat = POINTS[block]
    iid = report_issue(s, w.actor(s, f"b{block[11]}{block[13]}_leader"), kind=kind, domain="sanitation",
                       title="测试案件", lon=lon, lat=lat, source="patrol", now=reported, tz=TZ)["id"]
    for action, at, who, *rest in steps:
        extra = rest[0] if rest else {}
        apply_transition(s, iid, action, w.actor(s, who, as_of=at), note=extra.pop("note", "说明"),
                         payload=extra, now=at, tz=TZ)
    return iid


def _closing(who: str, feedback: dt.datetime, close: dt.datetime) -> list[tuple]:
    return [("feedback", feedback, who), ("verify", feedback + dt.timedelta(minutes=30), "operator"),
            ("close", close, "operator")]


def build(s: Session) -> AWorld:
    w = seed(s)
    a = AWorld(w)
    sec = "c1_secretary"   # the default assignee in community 1 (its directly responsible person)
    a.cases["A"] = _case(s, w, B11, "problem", L(9, 30, 23, 59, 59), [
        ("assign", L(10, 1, 0, 0, 30), "operator"), ("sign", L(10, 1, 0, 30), sec),
        ("handle", L(10, 1, 1), sec), *_closing(sec, L(10, 2, 10), L(10, 2, 12)),
        ("evaluate", L(10, 3, 9), "operator", {"satisfaction": 5})])
    a.cases["B"] = _case(s, w, B11, "problem", L(10, 1), [
        ("assign", L(10, 1, 9), "operator"), ("sign", L(10, 1, 12), sec), ("handle", L(10, 1, 13), sec),
        ("feedback", L(10, 2, 10), sec), ("rework", L(10, 2, 15), "operator"),
        *_closing(sec, L(10, 3, 10), L(10, 4, 9)), ("evaluate", L(10, 5, 9), "operator", {"satisfaction": 3})])
    a.cases["C"] = _case(s, w, B11, "problem", L(10, 31, 23, 59, 59), [("assign", L(11, 1, 0, 10), "operator")])
    a.cases["D"] = _case(s, w, B11, "problem", L(10, 20, 10), [
        ("assign", L(10, 20, 10, 30), "operator"), ("sign", L(10, 20, 11), sec), ("handle", L(10, 20, 12), sec),
        ("extend", L(10, 21, 9), "operator", {"new_due": "2026-11-05"})])
    a.cases["E"] = _case(s, w, B11, "problem", L(10, 25, 10), [
        ("assign", L(10, 25, 10, 30), "operator"), ("sign", L(10, 25, 11), sec), ("handle", L(10, 25, 12), sec),
        ("extend", L(10, 26, 9), "operator", {"new_due": "2026-10-30"}),
        *_closing(sec, L(10, 29, 10), L(10, 29, 16))])
    a.cases["G"] = _case(s, w, B11, "problem", L(9, 28, 10), [
        ("assign", L(9, 28, 10, 30), "operator"), ("sign", L(9, 28, 11), sec), ("handle", L(9, 28, 12), sec),
        ("feedback", L(10, 2, 8, 30), sec), ("verify", L(10, 2, 9), "operator"), ("close", L(10, 2, 10), "operator")])
    a.cases["H"] = _case(s, w, B11, "sentiment", L(10, 15, 10), [
        ("assign", L(10, 15, 10, 30), "operator"), ("sign", L(10, 15, 11), sec), ("handle", L(10, 15, 12), sec),
        *_closing(sec, L(10, 17, 10), L(10, 18, 10, 30))])
    a.cases["F"] = _case(s, w, B12, "problem", L(10, 10, 10), [
        ("assign", L(10, 10, 10, 30), "operator"), ("sign", L(10, 10, 10, 40), sec), ("handle", L(10, 10, 11), sec),
        ("reassign", L(10, 10, 12), "operator", {"assignee_id": w.ids["handler"], "note": "不属本人职责"}),
        ("sign", L(10, 10, 13), "handler")])
    leader = w.ids["b11_leader"]
    for key, kind, start, extra in [
        ("p1001a", "patrol", L(10, 1, 9), {"shops": 2}), ("p1001b", "patrol", L(10, 1, 15), {}),
        ("p1003sat", "patrol", L(10, 3, 9), {}), ("p0930", "patrol", L(9, 30, 23, 30), {}),
        ("p1030", "patrol", L(10, 30, 23, 50), {}), ("p1101", "patrol", L(11, 1, 0, 10), {}),
        ("v1002", "visit", L(10, 2, 10), {"households": 5, "shops": 1}),
        ("v1005", "visit", L(10, 5, 10), {"households": 3}),
    ]:
        row = PatrolDiary(grid_code=B11, official_id=leader, kind=kind, started_at=start,
                          ended_at=start + dt.timedelta(minutes=5), households=extra.get("households", 0),
                          shops=extra.get("shops", 0), firms=0, findings="测试",
                          track=WKTElement("POINT(113.625 34.755)", srid=4326))
        s.add(row)
        s.flush()
        a.diary[key] = row.id
    for grid, cat, kind, held, n in [(C1, "talk", "社区论坛", L(10, 10, 9), 20),
                                     (B11, "visit", "党员家访", L(10, 12, 9), 10),
                                     (B11, "clinic", "接待坐诊", L(10, 31, 23, 30), 5),
                                     (B11, "clinic", "接待坐诊", L(11, 1, 0, 30), 7)]:
        s.add(Activity(grid_code=grid, category=cat, kind=kind, title=kind, held_at=held, participants=n, note="",
                       official_id=leader if grid == B11 else w.ids["c1_secretary"]))
    s.flush()
    return a


@pytest.fixture(scope="module")
def aworld(empty_engine):
    """The world, built once per module inside a transaction that is rolled back at the end."""
    for s in rollback_session(empty_engine):
        yield s, build(s)


@pytest.fixture
def asession(aworld):
    s, a = aworld
    with savepoint(s):
        yield s, a
