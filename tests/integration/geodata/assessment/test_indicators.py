"""Every indicator against hand-counted numbers (the world in conftest.py), to the decimal: period
boundaries at midnight Asia/Shanghai, rework, extensions, 缓办 (deferral), cases spanning periods,
the official view, 环比/同比, and the records behind each cell."""
from __future__ import annotations

import pytest

from geodata.access.scope import Scope
from geodata.assessment.indicators import By, compute, trace, with_comparisons
from geodata.assessment.periods import parse_period
from geodata.assessment.registry import INDICATORS
from tests.integration.geodata.assessment.conftest import AS_OF
from tests.world import B11, B12, B21, C1, STREET, TZ

OCT, SEP = parse_period("2026-10"), parse_period("2026-09")
EVERYONE = Scope.everything()

#: B11 in October 2026, counted by hand from the table in conftest.py
B11_OCT = {
    "reported": 5,            # B (10-01 00:00:00), C (10-31 23:59:59), D, E, H; not A (09-30 23:59:59)
    "accepted": 5,            # A (10-01 00:00:30), B, D, E, H; not C (11-01), not G (09-28)
    "resolved": 3,            # B, E, H of the reported
    "resolution_rate": 60.0,
    "due": 5,                 # A, B, D (10-22), E, H; not C (11-03), not G (09-30)
    "deferred": 1,            # D: extended on 10-21 to 11-05, open
    "closed": 4,              # A, B, E, H
    "closure_rate": 100.0,    # 4 / (5 − 1)
    "closed_on_time": 3,      # A, E (by its extended deadline 10-30), H
    "on_time_rate": 75.0,     # 3 / 4
    "overdue_open": 0,
    "closed_late": 1,         # B
    "overdue": 1,
    "extended": 2,            # D, E
    "extension_rate": 40.0,   # 2 / 5
    "closed_in_period": 5,    # A, B, E, G (10-02, due in September), H
    # A 35h59m30s, B 72h, E 101.5h, G 95.5h, H 72h → 376.991666…/5
    "handling_hours": (35 + 59.5 / 60 + 72 + 101.5 + 95.5 + 72) / 5,
    "signed": 5,              # A, B, D, E, H
    "signed_on_time": 4,      # B signed at 12:00, deadline 11:00
    "sign_on_time_rate": 80.0,
    "verified": 5,            # A, B, E, G (10-02 09:00), H
    "reworked": 1, "rework_rate": 20.0, "rework_events": 1,
    "reassigned": 0, "reassignments": 0,
    "evaluated": 2, "satisfaction": 4.0,   # A 5, B 3
    "patrol_days": 2,         # 10-01 (two entries), 10-30 23:50; not Saturday 10-03, 09-30, 11-01
    "patrol_coverage": 100 * 2 / 22,       # 22 working days (Mon–Fri) in October 2026
    "visits": 2, "households": 8, "shops": 3, "firms": 0,
    "talks": 0,               # the community's forum counts for C1, not for a block
    "home_visits": 1, "clinics": 1,        # the clinic at 10-31 23:30; not the one at 11-01 00:30
    "participants": 15,
}


def _cell(s, by=By.grid(3), key=B11, period=OCT, **kw):
    return compute(s, EVERYONE, [period], by, tz=TZ, as_of=AS_OF, **kw).cell(period, key)


def test_every_indicator_is_checked_here():
    assert set(B11_OCT) == set(INDICATORS)


@pytest.mark.parametrize("code", sorted(B11_OCT))
def test_block_october_by_hand(asession, code):
    s, _ = asession
    assert _cell(s)[code] == pytest.approx(B11_OCT[code], abs=1e-9)


def test_the_other_block_reassignment_and_open_overdue(asession):
    s, _ = asession
    c = _cell(s, key=B12)
    assert (c["reported"], c["due"], c["closed"], c["closure_rate"], c["overdue_open"]) == (1, 1, 0, 0.0, 1)
    assert (c["reassigned"], c["reassignments"], c["signed"], c["signed_on_time"]) == (1, 1, 1, 1)
    assert c["on_time_rate"] == 0.0 and c["handling_hours"] is None and c["satisfaction"] is None
    empty = _cell(s, key=B21)   # listed with zeros; rates over nothing are None, not 0
    assert empty["reported"] == 0 and empty["closure_rate"] is None and empty["patrol_coverage"] == 0.0


def test_september_and_the_case_spanning_periods(asession):
    s, _ = asession
    c = _cell(s, period=SEP)
    # A reported 09-30 23:59:59; G due 09-30 23:59:59 and closed 10-02: late in September's cohort
    assert (c["reported"], c["accepted"], c["due"], c["closed"], c["closed_late"], c["on_time_rate"]) == \
        (2, 1, 1, 1, 1, 0.0)
    assert c["closed_in_period"] == 0 and c["patrol_days"] == 1   # the 09-30 (Wednesday) 23:30 patrol
    assert parse_period("2026-09").working_days() == 22


def test_november_counts_the_deferred_case_as_due(asession):
    s, _ = asession
    c = _cell(s, period=parse_period("2026-11"))
    # C (due 11-03, open) and D (extended to 11-05, open) are due in November and overdue now
    assert (c["reported"], c["accepted"], c["due"], c["deferred"], c["overdue_open"], c["closure_rate"]) == \
        (0, 1, 2, 0, 2, 0.0)


def test_levels_sum_and_kinds(asession):
    s, _ = asession
    comm = _cell(s, by=By.grid(2), key=C1)
    street = _cell(s, by=By.grid(1), key=STREET)
    assert comm["reported"] == street["reported"] == 6 and comm["reassignments"] == 1
    assert comm["talks"] == 1 and comm["participants"] == 35
    assert comm["patrol_coverage"] == pytest.approx(100 * 2 / (22 * 2))   # two blocks in C1
    assert _cell(s, kind="sentiment")["reported"] == 1          # H
    assert _cell(s, kind="problem")["reported"] == 4
    assert _cell(s, within=B12, by=By.grid(2), key=C1)["reported"] == 1


def test_officials_by_their_link(asession):
    s, a = asession
    ids = a.world.ids
    leader = _cell(s, by=By.official("grid_leader"), key=str(ids["b11_leader"]))
    for code in ("reported", "due", "on_time_rate", "patrol_days", "visits", "clinics", "satisfaction"):
        assert leader[code] == pytest.approx(B11_OCT[code])
    table = compute(s, EVERYONE, [OCT], By.official("grid_leader"), tz=TZ, as_of=AS_OF)
    assert set(table.subject_keys()) == {str(ids[k]) for k in ("b11_leader", "b12_leader", "b21_leader",
                                                                "b22_leader")}
    assignees = compute(s, EVERYONE, [OCT], By.official("assignee"), tz=TZ, as_of=AS_OF)
    assert assignees.cell(OCT, str(ids["handler"]))["reassigned"] == 1   # F ends with the handler


def test_scope_limits_what_is_counted(asession):
    s, _ = asession
    blocks = compute(s, Scope.grids(B12), [OCT], By.grid(3), tz=TZ, as_of=AS_OF)
    assert blocks.subject_keys() == [B12] and blocks.cell(OCT, B12)["reported"] == 1
    # the community is not in a block's scope: no subject, nothing counted for it
    assert compute(s, Scope.grids(B12), [OCT], By.grid(2), tz=TZ, as_of=AS_OF).values == {}
    assert compute(s, Scope.grids(C1), [OCT], By.grid(2), tz=TZ, as_of=AS_OF).cell(OCT, C1)["reported"] == 6


def test_comparisons(asession):
    s, _ = asession
    table, prev, ago = with_comparisons(s, EVERYONE, OCT, By.grid(3), tz=TZ, as_of=AS_OF)
    assert (prev.key, ago.key) == ("2026-09", "2025-10")
    from geodata.assessment.registry import change

    cur, before = table.cell(OCT, B11), table.cell(prev, B11)
    assert change(INDICATORS["reported"], cur["reported"], before["reported"]) == pytest.approx(150.0)  # 2 → 5
    assert change(INDICATORS["on_time_rate"], cur["on_time_rate"], before["on_time_rate"]) == pytest.approx(75.0)
    assert table.cell(ago, B11)["reported"] == 0


def test_trace_lists_the_cases_behind_a_number(asession):
    s, a = asession
    c = a.cases

    def tr(code, key=B11, by=By.grid(3)):
        return trace(s, EVERYONE, code, OCT, by, key, tz=TZ, as_of=AS_OF)

    t = tr("on_time_rate")
    assert (t.table, t.numerator, t.denominator) == ("issue", sorted([c["A"], c["E"], c["H"]]),
                                                     sorted([c["A"], c["B"], c["E"], c["H"]]))
    assert tr("deferred").numerator == [c["D"]]
    assert tr("reported").numerator == sorted([c["B"], c["C"], c["D"], c["E"], c["H"]])
    assert tr("handling_hours").denominator == sorted([c["A"], c["B"], c["E"], c["G"], c["H"]])
    assert tr("rework_rate").numerator == [c["B"]]
    assert tr("reassignments", key=B12).numerator == [c["F"]]
    d = a.diary
    p = tr("patrol_coverage")
    assert (p.table, p.numerator, p.denominator) == ("patrol_diary", sorted([d["p1001a"], d["p1001b"], d["p1030"]]),
                                                     None)
    assert tr("clinics").table == "activity" and len(tr("clinics").numerator) == 1
    # every count equals its trace's length (the same condition counts and lists)
    cell = _cell(s)
    for code, ind in INDICATORS.items():
        if ind.kind == "count" and ind.family in ("cases", "steps") and ind.num == code and code not in (
                "rework_events", "reassignments"):
            assert len(tr(code).numerator) == cell[code], code


def test_trace_refuses_an_unknown_indicator(asession):
    s, _ = asession
    from geodata.errors import DomainError

    with pytest.raises(DomainError) as e:
        trace(s, EVERYONE, "nope", OCT, By.grid(3), B11, tz=TZ, as_of=AS_OF)
    assert e.value.field == "indicator"


def test_demo_headline_figures_come_from_the_registry(db):
    """The article's 3134 / 3130 problems and 1214 / 1209 社情 over the demo's year of records."""
    import datetime as dt

    from tests.conftest import DEMO_END

    year = parse_period(f"{DEMO_END - dt.timedelta(days=364)}..{DEMO_END}")
    as_of = dt.datetime.combine(DEMO_END, dt.time(7, 30), tzinfo=TZ)
    t = compute(db, EVERYONE, [year], By.grid(1), tz=TZ, as_of=as_of, kind="problem", families=("cases",))
    street = t.subject_keys()[0]
    p = t.cell(year, street)
    assert (p["reported"], p["resolved"], round(p["resolution_rate"], 2)) == (3134, 3130, 99.87)
    t = compute(db, EVERYONE, [year], By.grid(1), tz=TZ, as_of=as_of, kind="sentiment", families=("cases",))
    q = t.cell(year, street)
    assert (q["reported"], q["resolved"], round(q["resolution_rate"], 2)) == (1214, 1209, 99.59)
