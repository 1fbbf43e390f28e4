"""Pure assessment rules: periods and their boundaries, the registry's values and changes, scores,
deductions, the qualitative weight, rankings with ties, and the rules' checks."""
from __future__ import annotations

import datetime as dt

import pytest

from geodata.assessment.periods import Period, parse_period, working_days
from geodata.assessment.registry import FAMILIES, INDICATORS, MEASURES, SOURCES, UNITS, change, value
from geodata.assessment.scoring import DEFAULT_RULES, parse_rules, rank, score
from geodata.clock import zone
from geodata.errors import DomainError

SH = zone("Asia/Shanghai")


@pytest.mark.parametrize("text,first,last,kind", [
    ("2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31), "month"),
    ("2026Q3", dt.date(2026, 7, 1), dt.date(2026, 9, 30), "quarter"),
    ("2026q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31), "quarter"),
    ("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31), "year"),
    ("2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28), "month"),
    ("2026-10-01..2026-10-15", dt.date(2026, 10, 1), dt.date(2026, 10, 15), "custom"),
])
def test_parse_period(text, first, last, kind):
    p = parse_period(text)
    assert (p.first, p.last, p.kind) == (first, last, kind)
    assert parse_period(p.key) == p


@pytest.mark.parametrize("text", ["2026-13", "2026Q5", "26", "2026-10-15..2026-10-01", "", "2026-1",
                                  "0000", "2026-02-30..2026-03-01", "1900", "x2026"])
def test_bad_periods_are_refused_in_both_languages(text):
    with pytest.raises(DomainError) as e:
        parse_period(text)
    assert e.value.field == "period" and "考核周期" in e.value.message_zh and "invalid period" in e.value.message_en


def test_boundaries_are_local_midnights():
    start, end = parse_period("2026-10").bounds(SH)
    assert start.astimezone(dt.UTC) == dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC)
    assert end.astimezone(dt.UTC) == dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC)
    utc_start, _ = parse_period("2026-10").bounds(zone("UTC"))
    assert utc_start - start == dt.timedelta(hours=8)


def test_previous_and_year_ago():
    assert parse_period("2026-01").previous().key == "2025-12"
    assert parse_period("2026Q1").previous().key == "2025Q4"
    assert parse_period("2026").previous().key == "2025"
    assert parse_period("2026Q3").year_ago().key == "2025Q3"
    c = parse_period("2026-10-11..2026-10-20")
    assert c.previous().key == "2026-10-01..2026-10-10"
    assert Period(dt.date(2028, 2, 29), dt.date(2028, 3, 1), "custom").year_ago().first == dt.date(2027, 2, 28)


def test_working_days():
    assert working_days(dt.date(2026, 10, 1), dt.date(2026, 10, 31)) == 22   # Thursday 1st
    assert working_days(dt.date(2026, 10, 3), dt.date(2026, 10, 4)) == 0     # a weekend
    assert parse_period("2026").working_days() == 261


def test_registry_is_complete():
    for code, ind in INDICATORS.items():
        assert ind.code == code and ind.family in FAMILIES and ind.unit in UNITS and ind.source in SOURCES
        assert ind.kind in ("count", "rate", "mean") and (ind.den is None) == (ind.kind == "count")
        assert ind.better in ("higher", "lower", None) and ind.zh and ind.en and ind.formula_zh and ind.formula_en
        assert ind.num in MEASURES[ind.family]


def test_values_and_changes():
    ms = {"closed": 4, "assessed": 4, "closed_on_time": 3, "handling_hours_sum": 10.0, "closed_in_period": 4}
    assert value(INDICATORS["on_time_rate"], ms) == 75.0
    assert value(INDICATORS["handling_hours"], ms) == 2.5
    assert value(INDICATORS["rework_rate"], ms) is None          # nothing verified: no rate, not 0
    assert value(INDICATORS["reported"], ms) == 0.0
    assert change(INDICATORS["on_time_rate"], 75.0, 80.0) == -5.0  # percentage points
    assert change(INDICATORS["reported"], 6, 4) == 50.0            # relative %
    assert change(INDICATORS["reported"], 6, 0) is None
    assert change(INDICATORS["reported"], None, 4) is None


RULES = parse_rules(DEFAULT_RULES)
PERFECT = {"on_time_rate": 100.0, "closure_rate": 100.0, "sign_on_time_rate": 100.0, "satisfaction": 5.0,
           "patrol_coverage": 60.0, "rework_rate": 0.0}


def test_score_items_and_deductions():
    assert score(PERFECT, RULES).quantitative == 100.0
    s = score({**PERFECT, "on_time_rate": 85.0, "patrol_coverage": 30.0, "rework_rate": 10.0, "satisfaction": 3.5,
               "rework_events": 3, "overdue_open": 1, "closed_late": 2, "reassignments": 20}, RULES)
    # items: 30−5, 20, 10, 10−5, 20−5, 10−5 = 80; deductions 0.6 + 1 + 1 + min(10, 5)
    assert s.items == {"on_time_rate": 25.0, "closure_rate": 20.0, "sign_on_time_rate": 10.0, "satisfaction": 5.0,
                       "patrol_coverage": 15.0, "rework_rate": 5.0}
    assert s.deductions["reassignments"] == 5.0
    assert s.quantitative == pytest.approx(80 - 0.6 - 1 - 1 - 5)
    assert [b["indicator"] for b in s.breaches] == ["overdue_open", "reassignments"]
    assert score({"on_time_rate": 0.0, "overdue_open": 500}, RULES).quantitative == 0.0    # floored at 0
    assert score({}, RULES).quantitative == 100.0        # nothing to measure: full points


def test_qualitative_weight():
    s = score({**PERFECT, "on_time_rate": 80.0}, RULES, qualitative=60.0)
    assert s.quantitative == 90.0 and s.final == pytest.approx(0.7 * 90 + 0.3 * 60)
    assert score(PERFECT, RULES).final == 100.0          # none entered: the quantitative score


def test_ranking_ties_and_lists():
    rules = parse_rules({**DEFAULT_RULES, "top_n": 2, "bottom_n": 1, "breaches": []})
    rows = [("a", {**PERFECT, "on_time_rate": 95.0}), ("b", {**PERFECT, "on_time_rate": 99.0}),
            ("c", {**PERFECT, "on_time_rate": 95.0}), ("d", {**PERFECT, "on_time_rate": 50.0}),
            ("e", {**PERFECT, "on_time_rate": 80.0})]
    ranked = rank([(k, score(v, rules), v) for k, v in rows], rules)
    # a, b, c all score 100: b first by 按期结案率; a and c equal in everything share 2nd
    assert [(r.key, r.rank) for r in ranked] == [("b", 1), ("a", 2), ("c", 2), ("e", 4), ("d", 5)]
    assert [r.key for r in ranked if r.excellent] == ["b", "a", "c"]     # ties at N are all named
    assert [r.key for r in ranked if r.named] == ["d"]
    # equal final and 按期结案率: fewer 超期 wins
    v1, v2 = {**PERFECT, "overdue": 2}, {**PERFECT, "overdue": 1}
    r = rank([("x", score(v1, rules), v1), ("y", score(v2, rules), v2)], rules)
    assert [(x.key, x.rank) for x in r] == [("y", 1), ("x", 2)]


def test_a_breach_is_named_and_never_excellent():
    v = {**PERFECT, "overdue_open": 1}
    r = rank([("a", score(v, RULES), v)], RULES)[0]
    assert r.rank == 1 and r.named and not r.excellent and r.reasons[0]["indicator"] == "overdue_open"


@pytest.mark.parametrize("bad,where", [
    ({**DEFAULT_RULES, "items": DEFAULT_RULES["items"][:2]}, "100"),
    ({**DEFAULT_RULES, "items": [{"indicator": "nope", "points": 100, "threshold": 1, "per_point": 1}]}, "nope"),
    ({**DEFAULT_RULES, "deductions": [{"indicator": "on_time_rate", "per": 1}]}, "not a count"),
    ({**DEFAULT_RULES, "qualitative_weight": 2}, "qualitative_weight"),
    ({**DEFAULT_RULES, "extra": 1}, "extra"),
])
def test_bad_rules_are_refused(bad, where):
    with pytest.raises(DomainError) as e:
        parse_rules(bad)
    assert where in e.value.message_en and e.value.field == "rules"
