"""Scores and rankings (pure): the street's 考核办法 as data (:class:`Rules`), a 0–100 quantitative
score from indicator values, the qualitative part combined by weight, rankings with a stated
tie-break, 优秀 (top N) and the 通报 list (bottom N and rule breaches).

- An item gives full ``points`` when its indicator meets ``threshold`` and loses ``per_point``
  for each unit (a percentage point for rates) below it (above it, for lower-is-better
  indicators), never below zero. An indicator with nothing to measure (a rate over no cases)
  scores full points: nothing was due, nothing failed.
- Deductions: ``per`` points for each counted case or event (e.g. −0.2 per 返工, as in city
  考核细则), optionally capped.
- Quantitative = clamp(Σ items − Σ deductions, 0, 100). Final = (1 − w) × quantitative + w ×
  qualitative (the assessors' mean); with no qualitative score entered, final = quantitative.
- Ranking (:func:`rank`): by final score (at two decimals), then higher 按期结案率, then fewer
  超期, then higher quantitative score. Subjects equal in all four share a rank (competition
  ranking: 1, 2, 2, 4); they are listed by key. 优秀: rank ≤ top N (everyone tied at N included);
  通报: the bottom N the same way from below (among those not in the top N: with few subjects the
  two never overlap), plus every subject breaching a rule; a subject on the 通报 list is not 优秀.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geodata.assessment.registry import INDICATORS
from geodata.errors import DomainError

Values = Mapping[str, float | None]


def _known(code: str) -> str:
    if code not in INDICATORS:
        raise ValueError(f"unknown indicator {code!r}")
    return code


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    indicator: str
    points: float = Field(gt=0, le=100)
    threshold: float
    per_point: float = Field(ge=0)

    @field_validator("indicator")
    @classmethod
    def _check(cls, v: str) -> str:
        return _known(v)


class Deduction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    indicator: str
    per: float = Field(ge=0)
    cap: float | None = Field(default=None, ge=0)

    @field_validator("indicator")
    @classmethod
    def _count(cls, v: str) -> str:
        if INDICATORS[_known(v)].kind != "count":
            raise ValueError(f"deductions count cases or events: {v!r} is not a count")
        return v


class Breach(BaseModel):
    """A rule breach puts the subject on the 通报 list: the indicator above ``above`` or below ``below``."""

    model_config = ConfigDict(extra="forbid")
    indicator: str
    above: float | None = None
    below: float | None = None
    zh: str
    en: str

    @field_validator("indicator")
    @classmethod
    def _check(cls, v: str) -> str:
        return _known(v)

    @model_validator(mode="after")
    def _one_side(self) -> Breach:
        if (self.above is None) == (self.below is None):
            raise ValueError("a breach has exactly one of above / below")
        return self


class Rules(BaseModel):
    """The 考核办法 of one version (stored as JSON in ``assessment_rule.config``)."""

    model_config = ConfigDict(extra="forbid")
    items: list[Item]
    deductions: list[Deduction] = []
    breaches: list[Breach] = []
    qualitative_weight: float = Field(default=0.3, ge=0, le=1)
    top_n: int = Field(default=3, ge=0)
    bottom_n: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _hundred(self) -> Rules:
        total = sum(i.points for i in self.items)
        if abs(total - 100) > 1e-9:
            raise ValueError(f"the items' points must add up to 100 (they add up to {total:g})")
        return self


def parse_rules(config: Mapping[str, Any]) -> Rules:
    """``config`` checked; a bad one raises a bilingual DomainError naming the first problem."""
    try:
        return Rules.model_validate(dict(config))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "rules"
        raise DomainError("invalid_rules", f"考核办法无效：{where}：{err['msg']}",
                          f"invalid assessment rules: {where}: {err['msg']}", field="rules") from None


#: Version 1 of the street's 考核办法 (weights after city 考核细则: 按期结案率 ≥ 90 % full points,
#: −1 per point below; −0.2 per 返工; bottom three named).
DEFAULT_RULES: dict[str, Any] = {
    "items": [
        {"indicator": "on_time_rate", "points": 30, "threshold": 90, "per_point": 1},
        {"indicator": "closure_rate", "points": 20, "threshold": 95, "per_point": 1},
        {"indicator": "sign_on_time_rate", "points": 10, "threshold": 95, "per_point": 0.5},
        {"indicator": "satisfaction", "points": 10, "threshold": 4, "per_point": 10},
        {"indicator": "patrol_coverage", "points": 20, "threshold": 40, "per_point": 0.5},
        {"indicator": "rework_rate", "points": 10, "threshold": 5, "per_point": 1},
    ],
    "deductions": [
        {"indicator": "rework_events", "per": 0.2},
        {"indicator": "overdue_open", "per": 1},
        {"indicator": "closed_late", "per": 0.5},
        {"indicator": "reassignments", "per": 0.5, "cap": 5},
    ],
    "breaches": [
        {"indicator": "overdue_open", "above": 0, "zh": "问题应解决未解决（超期未办结）",
         "en": "problems left unsolved (overdue, open)"},
        {"indicator": "reassignments", "above": 1, "zh": "多次改派，推诿扯皮", "en": "repeatedly passed on (推诿扯皮)"},
        {"indicator": "satisfaction", "below": 3, "zh": "处置不力（综合评价低于 3 分）",
         "en": "handled badly (satisfaction below 3)"},
    ],
    "qualitative_weight": 0.3,
    "top_n": 3,
    "bottom_n": 3,
}


@dataclass(frozen=True)
class Score:
    quantitative: float
    qualitative: float | None
    final: float
    items: dict[str, float]          # indicator → points earned
    deductions: dict[str, float]     # indicator → points taken
    breaches: list[dict[str, str]]   # {indicator, zh, en}

    def breakdown(self) -> dict[str, Any]:
        return {"items": self.items, "deductions": self.deductions}


def item_points(item: Item, v: float | None) -> float:
    """Points of one item for indicator value ``v`` (None: nothing to measure → full points)."""
    if v is None:
        return item.points
    ind = INDICATORS[item.indicator]
    shortfall = (v - item.threshold) if ind.better == "lower" else (item.threshold - v)
    return max(0.0, item.points - item.per_point * max(0.0, shortfall))


def score(values: Values, rules: Rules, qualitative: float | None = None) -> Score:
    """The 0–100 score of one subject from its indicator values (see the module docstring)."""
    items = {i.indicator: item_points(i, values.get(i.indicator)) for i in rules.items}
    deductions = {}
    for d in rules.deductions:
        taken = d.per * (values.get(d.indicator) or 0)
        deductions[d.indicator] = min(taken, d.cap) if d.cap is not None else taken
    quant = min(100.0, max(0.0, sum(items.values()) - sum(deductions.values())))
    w = rules.qualitative_weight
    final = quant if qualitative is None else (1 - w) * quant + w * qualitative
    return Score(quant, qualitative, final, items, deductions, breaches(values, rules))


def breaches(values: Values, rules: Rules) -> list[dict[str, str]]:
    out = []
    for b in rules.breaches:
        v = values.get(b.indicator)
        if v is None:
            continue
        if (b.above is not None and v > b.above) or (b.below is not None and v < b.below):
            out.append({"indicator": b.indicator, "zh": b.zh, "en": b.en})
    return out


@dataclass
class Ranked:
    key: str
    score: Score
    values: Values
    rank: int = 0
    rank_from_bottom: int = 0
    excellent: bool = False
    named: bool = False
    reasons: list[dict[str, str]] = field(default_factory=list)


def _merit(r: Ranked) -> tuple:
    """Larger is better: final (2 dp), 按期结案率 (none: as if full), −超期, quantitative (2 dp)."""
    on_time = r.values.get("on_time_rate")
    return (round(r.score.final, 2), 100.0 if on_time is None else round(on_time, 2),
            -(r.values.get("overdue") or 0), round(r.score.quantitative, 2))


def rank(scored: Sequence[tuple[str, Score, Values]], rules: Rules) -> list[Ranked]:
    """Ranked subjects, best first (ties by the module docstring's rule), with 优秀 and 通报 set."""
    rows = [Ranked(k, s, v) for k, s, v in scored]
    merits = [_merit(r) for r in rows]
    for r, m in zip(rows, merits):
        r.rank = 1 + sum(1 for o in merits if o > m)
        r.rank_from_bottom = 1 + sum(1 for o in merits if o < m)
        r.excellent = rules.top_n > 0 and r.rank <= rules.top_n
        r.reasons = list(r.score.breaches)
        if rules.bottom_n > 0 and r.rank_from_bottom <= rules.bottom_n and not r.excellent:
            r.reasons.insert(0, {"indicator": "rank", "zh": f"综合得分排名后 {rules.bottom_n} 位",
                                 "en": f"among the bottom {rules.bottom_n} by score"})
        r.named = bool(r.reasons)
        if r.named:
            r.excellent = False   # a subject named for criticism is never also named excellent
    rows.sort(key=lambda r: (r.rank, r.key))
    return rows
