"""Scores from versioned rules: snapshots keep what was computed when the weights change, the
database refuses to change them, qualitative scores by weight, rankings per level."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geodata.access.scope import Scope
from geodata.assessment.indicators import By
from geodata.assessment.periods import parse_period
from geodata.assessment.scoring import DEFAULT_RULES
from geodata.assessment.store import add_rule, current_rule, enter_qualitative, load_run, run_assessment
from geodata.errors import DomainError
from tests.integration.geodata.assessment.conftest import AS_OF
from tests.world import B11, B12, B21, B22, TZ

OCT = parse_period("2026-10")


def _run(s, by=By.grid(3), **kw):
    return run_assessment(s, Scope.everything(), OCT, by, tz=TZ, as_of=AS_OF, **kw)


def test_scores_by_hand(asession):
    s, _ = asession
    run = _run(s)
    rows = {r.key: r for r in run.rows}
    # B11: on time 75 % (−15 of 30), closure 100, signing 80 % (−7.5 of 10), satisfaction 4.0 (full),
    # patrol 9.09 % (−15.45… of 20), rework 20 % (−15 → 0 of 10); deductions 0.2 + 0.5 (one late)
    b11 = rows[B11]
    assert b11.breakdown["items"] == pytest.approx({
        "on_time_rate": 15.0, "closure_rate": 20.0, "sign_on_time_rate": 2.5, "satisfaction": 10.0,
        "patrol_coverage": 20 - 0.5 * (40 - 200 / 22), "rework_rate": 0.0})
    assert b11.quantitative == pytest.approx(15 + 20 + 2.5 + 10 + 20 - 0.5 * (40 - 200 / 22) - 0.2 - 0.5)
    # B12: on time 0 (of 30), closure 0 (of 20), patrol 0 (of 20) → 30; −1 overdue open, −0.5 reassigned
    assert rows[B12].quantitative == pytest.approx(30 - 1 - 0.5)
    assert [x["indicator"] for x in rows[B12].reasons] == ["rank", "overdue_open"]
    # B21 and B22 have no records: full points but the diary's 0 % → 80, tied, sharing 1st
    assert (rows[B21].quantitative, rows[B21].rank, rows[B22].rank) == (80.0, 1, 1)
    assert [r.key for r in run.rows] == [B21, B22, B11, B12]
    assert run.rules.top_n == 3 and rows[B11].excellent and not rows[B12].excellent


def test_changing_the_weights_keeps_past_scores(asession):
    s, _ = asession
    first = _run(s)
    before = [(r.key, r.final, r.rank, r.breakdown) for r in first.rows]
    heavier = {**DEFAULT_RULES, "items": [
        {"indicator": "on_time_rate", "points": 80, "threshold": 100, "per_point": 2},
        {"indicator": "closure_rate", "points": 20, "threshold": 100, "per_point": 1}], "deductions": []}
    v2 = add_rule(s, heavier, name="第二版")
    assert current_rule(s).id == v2.id != first.rule_id
    second = _run(s)
    assert second.rule_id == v2.id
    assert {r.key: r.final for r in second.rows}[B11] == pytest.approx(80 - 2 * 25 + 20)
    again = load_run(s, first.id)
    assert [(r.key, r.final, r.rank, r.breakdown) for r in again.rows] == before
    assert again.rule_id == first.rule_id and again.as_of == AS_OF


@pytest.mark.parametrize("sql", ["UPDATE assessment_score SET final = 0", "DELETE FROM assessment_score",
                                 "UPDATE assessment_rule SET config = '{}'", "DELETE FROM assessment_run"])
def test_the_database_refuses_to_change_stored_scores(asession, sql):
    s, _ = asession
    _run(s)
    with pytest.raises(DBAPIError, match="never changed"), s.begin_nested():
        s.execute(text(sql))


def test_qualitative_scores_by_weight(asession):
    s, a = asession
    ids = a.world.ids
    leader = str(ids["b11_leader"])
    plain = {r.key: r for r in _run(s, By.official("grid_leader")).rows}[leader]
    enter_qualitative(s, period=OCT, subject_kind="official", subject_key=leader, assessor_id=ids["secretary"],
                      score_value=90, comment="履职到位", now=AS_OF)
    enter_qualitative(s, period=OCT, subject_kind="official", subject_key=leader, assessor_id=ids["director"],
                      score_value=70, comment="走访偏少", now=AS_OF)
    mixed = {r.key: r for r in _run(s, By.official("grid_leader")).rows}[leader]
    assert plain.qualitative is None and plain.final == plain.quantitative
    assert mixed.qualitative == 80.0 and mixed.final == pytest.approx(0.7 * mixed.quantitative + 0.3 * 80)
    # entered again by the same assessor: replaced
    enter_qualitative(s, period=OCT, subject_kind="official", subject_key=leader, assessor_id=ids["director"],
                      score_value=50, comment="复核后调整", now=AS_OF)
    assert {r.key: r for r in _run(s, By.official("grid_leader")).rows}[leader].qualitative == 70.0


@pytest.mark.parametrize("kw,field", [({"score_value": 101}, "score"), ({"comment": "  "}, "comment"),
                                      ({"subject_kind": "team"}, "subject_kind"), ({"assessor_id": 999999}, "assessor_id")])
def test_qualitative_input_is_checked(asession, kw, field):
    s, a = asession
    args = {"period": OCT, "subject_kind": "grid", "subject_key": B11, "assessor_id": a.world.ids["secretary"],
            "score_value": 80, "comment": "好", **kw}
    with pytest.raises(DomainError) as e:
        enter_qualitative(s, **args)
    assert e.value.field == field


def test_ranking_per_level(asession):
    s, _ = asession
    communities = _run(s, By.grid(2))
    assert [r.rank for r in communities.rows] == [1, 2]
    street = _run(s, By.grid(1))
    assert len(street.rows) == 1 and street.rows[0].indicators["current"]["reported"] == 6
    assert street.rows[0].indicators["periods"] == {"current": "2026-10", "mom": "2026-09", "yoy": "2025-10"}
