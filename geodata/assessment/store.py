"""Stored assessment: versions of the 考核办法, qualitative scores, and score snapshots (runs).

A run computes every indicator for a period (with 环比 and 同比), scores and ranks the subjects by
one rule version, and stores all of it with its inputs (rule version, data as of, zone, scope).
Rules, runs and scores are never changed (a database trigger refuses it): changing the weights is
a new rule version, and a past run — and any bulletin made from it — stays as it was computed.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.assessment.indicators import By, Table, with_comparisons
from geodata.assessment.periods import Period, parse_period
from geodata.assessment.registry import INDICATORS, change
from geodata.assessment.scoring import DEFAULT_RULES, Rules, parse_rules, rank, score
from geodata.clock import at_or_now
from geodata.errors import DomainError, not_found
from geodata.models import (
    AssessmentQualitative,
    AssessmentRule,
    AssessmentRun,
    AssessmentScore,
    Official,
)


# -- rule versions ----------------------------------------------------------------------------------
def current_rule(session: Session) -> AssessmentRule:
    """The latest rule version; version 1 (:data:`DEFAULT_RULES`) is written on first use."""
    row = session.execute(select(AssessmentRule).order_by(AssessmentRule.id.desc()).limit(1)).scalar()
    if row is None:
        row = add_rule(session, DEFAULT_RULES, name="三官庙街道网格化管理考核办法", note="默认版本 / default version")
    return row


def add_rule(session: Session, config: Mapping[str, Any], *, name: str, note: str = "",
             created_by: int | None = None) -> AssessmentRule:
    """A new rule version (checked first: a bad config raises a bilingual DomainError)."""
    rules = parse_rules(config)
    row = AssessmentRule(name=name, config=rules.model_dump(), note=note, created_by=created_by)
    session.add(row)
    session.flush()
    return row


def get_rule(session: Session, rule_id: int) -> AssessmentRule:
    row = session.get(AssessmentRule, rule_id)
    if row is None:
        raise not_found("考核办法版本", "assessment rule version", rule_id, field="rule_id")
    return row


# -- qualitative scores -----------------------------------------------------------------------------
SUBJECT_KINDS = ("grid", "official")


def enter_qualitative(session: Session, *, period: Period, subject_kind: str, subject_key: str, assessor_id: int,
                      score_value: float, comment: str, now: dt.datetime | None = None) -> AssessmentQualitative:
    """定性: one assessor's 0–100 score for a subject in a period, with a comment (entered again:
    replaced; runs already made keep the value they used)."""
    if subject_kind not in SUBJECT_KINDS:
        raise DomainError("invalid_subject_kind", "考核对象类型须为 grid 或 official",
                          "subject kind must be grid or official", field="subject_kind")
    if isinstance(score_value, bool) or not isinstance(score_value, int | float) or not 0 <= score_value <= 100:
        raise DomainError("invalid_score", "定性得分须在 0–100 之间", "the qualitative score must be 0–100",
                          field="score")
    comment = (comment or "").strip()
    if not comment:
        raise DomainError("required", "定性评分须填写评语", "a qualitative score needs a comment", field="comment")
    off = session.get(Official, assessor_id)
    if off is None or not off.active:
        raise DomainError("unknown_official", f"考核人“{assessor_id}”不存在或已停用",
                          f"assessor '{assessor_id}' does not exist or is inactive", field="assessor_id")
    when = at_or_now(now, "now")
    stmt = insert(AssessmentQualitative).values(
        period_key=period.key, subject_kind=subject_kind, subject_key=subject_key, assessor_id=assessor_id,
        score=float(score_value), comment=comment, entered_at=when)
    stmt = stmt.on_conflict_do_update(constraint="qualitative_once",
                                      set_={"score": stmt.excluded.score, "comment": stmt.excluded.comment,
                                            "entered_at": stmt.excluded.entered_at})
    session.execute(stmt)
    return session.execute(select(AssessmentQualitative).where(
        AssessmentQualitative.period_key == period.key, AssessmentQualitative.subject_kind == subject_kind,
        AssessmentQualitative.subject_key == subject_key, AssessmentQualitative.assessor_id == assessor_id)
    ).scalar_one()


def qualitative_means(session: Session, period: Period, subject_kind: str,
                      as_of: dt.datetime | None = None) -> dict[str, float]:
    """{subject key: mean of the assessors' scores entered up to ``as_of``} for the period."""
    q = (select(AssessmentQualitative.subject_key, func.avg(AssessmentQualitative.score))
         .where(AssessmentQualitative.period_key == period.key, AssessmentQualitative.subject_kind == subject_kind)
         .group_by(AssessmentQualitative.subject_key))
    if as_of is not None:
        q = q.where(AssessmentQualitative.entered_at <= as_of)
    return {k: float(v) for k, v in session.execute(q)}


# -- runs (score snapshots) -------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreRow:
    key: str
    name: str
    indicators: dict[str, Any]    # {"current": {code: v}, "mom": {...}, "yoy": {...}, "mom_change": …}
    breakdown: dict[str, Any]
    quantitative: float
    qualitative: float | None
    final: float
    rank: int
    excellent: bool
    named: bool
    reasons: list[dict[str, str]]


@dataclass(frozen=True)
class Run:
    id: int
    period: Period
    by: By
    rule_id: int
    rules: Rules
    as_of: dt.datetime
    tz: str
    rows: list[ScoreRow]          # best first

    @property
    def excellent(self) -> list[ScoreRow]:
        return [r for r in self.rows if r.excellent]

    @property
    def named(self) -> list[ScoreRow]:
        return [r for r in self.rows if r.named]


def _by_from_key(key: str) -> By:
    kind, _, arg = key.partition(":")
    return By.official(arg) if kind == "official" else By.grid(int(arg))


def comparisons(table: Table, period: Period, prev: Period, ago: Period, key: str) -> dict[str, Any]:
    """This period's values, the previous period's and a year earlier's, and the changes (环比, 同比)."""
    cur, before, year = table.cell(period, key), table.cell(prev, key), table.cell(ago, key)
    return {"current": cur, "mom": before, "yoy": year,
            "mom_change": {c: change(INDICATORS[c], cur[c], before[c]) for c in cur},
            "yoy_change": {c: change(INDICATORS[c], cur[c], year[c]) for c in cur},
            "periods": {"current": period.key, "mom": prev.key, "yoy": ago.key}}


def run_assessment(session: Session, scope: Scope, period: Period, by: By, *, tz: ZoneInfo,
                   as_of: dt.datetime | None = None, within: str | None = None,
                   rule_id: int | None = None) -> Run:
    """Compute, score, rank and store one run (the caller commits). ``as_of`` (default now) is the
    data's time; the rule version is ``rule_id`` or the current one."""
    now = at_or_now(as_of)
    rule = get_rule(session, rule_id) if rule_id is not None else current_rule(session)
    rules = parse_rules(rule.config)
    table, prev, ago = with_comparisons(session, scope, period, by, tz=tz, as_of=now, within=within)
    qual = qualitative_means(session, period, by.subject, as_of=now)
    scored = []
    for key in table.subject_keys():
        vals = table.cell(period, key)
        scored.append((key, score(vals, rules, qual.get(key)), vals))
    ranked = rank(scored, rules)
    run = AssessmentRun(period_key=period.key, by_key=by.key, within=within,
                        scope_roots=sorted(scope.roots) if scope.roots is not None else None,
                        rule_id=rule.id, as_of=now, tz=tz.key)
    session.add(run)
    session.flush()
    for r in ranked:
        session.add(AssessmentScore(
            run_id=run.id, subject_key=r.key, subject_name=table.subjects[r.key].name,
            indicators=comparisons(table, period, prev, ago, r.key), breakdown=r.score.breakdown(),
            quantitative=r.score.quantitative, qualitative=r.score.qualitative, final=r.score.final,
            rank=r.rank, excellent=r.excellent, named=r.named, reasons=r.reasons))
    session.flush()
    return load_run(session, run.id)


def load_run(session: Session, run_id: int) -> Run:
    """A stored run exactly as computed."""
    run = session.get(AssessmentRun, run_id)
    if run is None:
        raise not_found("考核记录", "assessment run", run_id, field="run_id")
    rule = session.get(AssessmentRule, run.rule_id)
    rows = session.execute(select(AssessmentScore).where(AssessmentScore.run_id == run_id)
                           .order_by(AssessmentScore.rank, AssessmentScore.id)).scalars()
    out = [ScoreRow(s.subject_key, s.subject_name, s.indicators, s.breakdown, s.quantitative, s.qualitative,
                    s.final, s.rank, s.excellent, s.named, s.reasons) for s in rows]
    return Run(run.id, parse_period(run.period_key), _by_from_key(run.by_key), rule.id, parse_rules(rule.config),
               run.as_of, run.tz, out)


def latest_run(session: Session, period: Period, by: By) -> Run | None:
    rid = session.execute(select(AssessmentRun.id).where(AssessmentRun.period_key == period.key,
                                                         AssessmentRun.by_key == by.key)
                          .order_by(AssessmentRun.id.desc()).limit(1)).scalar()
    return load_run(session, rid) if rid is not None else None
