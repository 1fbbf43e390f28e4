"""The wall's numbers against counts made by hand from tests/world.py's ``seed_issues`` (its rules
restated here in Python: reported ``(i*7) % 200`` days and ``i`` hours before NOW, closed 3 days
later — or 8, every third —, due 5 days after the report, 交办 one hour after it)."""
from __future__ import annotations

import datetime as dt

import pytest

from geodata.access.scope import Scope
from geodata.assessment.screen import band, hotspots, wall_kpis, wall_ranking, wall_state, wall_trend
from tests.world import NOW, TZ, seed, seed_issues

EVERYONE = Scope.everything()
STATUSES = ("reported", "assigned", "handling", "closed", "evaluated", "closed", "feedback", "evaluated")
BLOCKS = ("41010200100101", "41010200100102", "41010200100201", "41010200100202")


def fixture_issues(now: dt.datetime = NOW, n: int = 40) -> list[dict]:
    out = []
    for i in range(n):
        status = STATUSES[i % 8]
        reported = now - dt.timedelta(days=(i * 7) % 200, hours=i)
        closed = reported + dt.timedelta(days=3 if i % 3 else 8) if status in ("closed", "evaluated") else None
        out.append({"i": i, "kind": "problem" if i % 5 else "sentiment", "status": status, "reported": reported,
                    "closed": closed, "due": reported + dt.timedelta(days=5), "block": BLOCKS[i % 4],
                    "assigned": reported + dt.timedelta(hours=1) if status != "reported" else None})
    return out


def local_day(t: dt.datetime) -> dt.date:
    return t.astimezone(TZ).date()


@pytest.fixture
def world(empty_db):
    w = seed(empty_db)
    seed_issues(empty_db, w)
    return empty_db


def rate(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 1) if den else None


def test_kpis_match_the_hand_count(world):
    issues = fixture_issues()
    today = local_day(NOW)
    in_month = lambda t: t is not None and local_day(t).year == today.year and local_day(t).month == today.month
    got = wall_kpis(world, EVERYONE, tz=TZ, as_of=NOW)
    for kind in ("problem", "sentiment"):
        mine = [x for x in issues if x["kind"] == kind]
        for period, pick in (("today", lambda x: local_day(x["reported"]) == today),
                             ("month", lambda x: in_month(x["reported"])), ("total", lambda x: True)):
            rep = [x for x in mine if pick(x)]
            res = [x for x in rep if x["closed"] is not None]
            assert got["kinds"][kind][period] == {"reported": len(rep), "resolved": len(res),
                                                  "resolution_rate": rate(len(res), len(rep))}, (kind, period)
    assert got["kinds"]["problem"]["total"]["reported"] == 32 and got["kinds"]["sentiment"]["total"]["reported"] == 8
    assert got["new_today"] == sum(local_day(x["reported"]) == today for x in issues) >= 1
    assert got["overdue_now"] == sum(x["closed"] is None and x["due"] < NOW for x in issues) > 0
    due = [x for x in issues if in_month(x["due"])]
    on_time = [x for x in due if x["closed"] is not None and x["closed"] <= x["due"]]
    assert got["on_time_rate"]["month"] == rate(len(on_time), len(due)) is not None
    assert 0 < len(on_time) < len(due)      # the fixture has both kinds of case this month
    closed_in = [x for x in issues if in_month(x["closed"])]
    hours = [(x["closed"] - x["assigned"]).total_seconds() / 3600 for x in closed_in]
    assert hours and got["handling_hours"] == round(sum(hours) / len(hours), 1)


def test_trend_counts_each_local_day(world):
    issues = fixture_issues()
    got = wall_trend(world, EVERYONE, tz=TZ, as_of=NOW)
    assert len(got["days"]) == 30 and got["days"][-1] == local_day(NOW).isoformat()
    for kind in ("problem", "sentiment"):
        want = [sum(1 for x in issues if x["kind"] == kind and local_day(x["reported"]).isoformat() == d)
                for d in got["days"]]
        assert got[kind] == want
    assert sum(got["problem"]) + sum(got["sentiment"]) > 0


def test_ranking_by_on_time_rate_this_month(world):
    issues = fixture_issues()
    today = local_day(NOW)
    got = wall_ranking(world, EVERYONE, tz=TZ, as_of=NOW)
    for level, key in (("blocks", lambda x: x["block"]), ("communities", lambda x: x["block"][:12] + "00")):
        want = {}
        for x in issues:
            if local_day(x["due"]).month == today.month and local_day(x["due"]).year == today.year:
                want.setdefault(key(x), []).append(x["closed"] is not None and x["closed"] <= x["due"])
        rates = {k: round(100.0 * sum(v) / len(v), 1) for k, v in want.items()}
        shown = {r.code: r.value for r in got[level]["top"]}
        assert shown == {k: rates[k] for k in shown} and set(shown) == set(rates)   # ≤ 5 grids here
        assert [r.value for r in got[level]["top"]] == sorted(shown.values(), reverse=True)


def test_state_has_no_personal_data(world):
    import json
    import re

    text = json.dumps(wall_state(world, EVERYONE, tz=TZ, as_of=NOW), ensure_ascii=False, default=str)
    assert not re.search(r"1[3-9]\d{9}", text)            # the seed's phones are 1380000xxxx
    for name in ("网格长甲", "西支书", "街道书记", "中心操作员"):
        assert name not in text


def test_bands_and_hotspots():
    assert band({"open": 0, "overdue": 1}, 1, 10) == "red"
    assert band({"open": 12, "overdue": 0}, 1, 10) == "amber"
    assert band({"open": 9, "overdue": 0}, 1, 10) == "green"
    assert band({"open": 9, "overdue": 2}, 3, 10) == "green"
    work = {"a": {"open": 3, "overdue": 0}, "b": {"open": 1, "overdue": 1}, "c": {"open": 0, "overdue": 0}}
    assert [h["code"] for h in hotspots(work, {"a": "甲"})] == ["b", "a"]
