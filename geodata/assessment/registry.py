"""THE indicator registry (考核指标): every indicator defined once — code, zh/en name, formula, unit,
whether higher or lower is better, which records count, its source — for the assessment, the
bulletins, and any screen that shows these numbers. Pure: the SQL of each measure is in
:mod:`geodata.assessment.indicators`; the formulas are explained in docs/assessment.md.

An indicator is a count of one measure, a rate (numerator / denominator, in %), or a mean (a sum
measure / a count measure). 环比 and 同比 (:data:`COMPARISONS`) apply to every indicator.
"""
from __future__ import annotations

from dataclasses import dataclass

from geodata.vocab import Label

#: family → the records it reads
FAMILIES: dict[str, Label] = {
    "cases": ("案件（按上报、立案、期限、办结时间）", "cases (by report, filing, deadline and closing time)"),
    "steps": ("流程事件（签收、核查、返工、改派、评价）", "workflow events (sign, verify, rework, reassign, evaluate)"),
    "diary": ("民情日记（巡查、走访）", "patrol diary (patrols, visits)"),
    "activity": ("三谈三访三诊活动", "三谈/三访/三诊 activities"),
}
SOURCES: dict[str, Label] = {
    "gbt30428": ("GB/T 30428.4 绩效评价", "GB/T 30428.4 performance evaluation"),
    "cjt292": ("CJ/T 292 绩效评价", "CJ/T 292 performance evaluation"),
    "street": ("三官庙街道考核细则", "the street's assessment rules"),
}
UNITS: dict[str, Label] = {"count": ("件", "cases"), "percent": ("%", "%"), "hours": ("小时", "h"),
                           "points": ("分", "points"), "days": ("天", "days"), "times": ("次", "times"),
                           "people": ("人", "people"), "households": ("户", "households")}


@dataclass(frozen=True)
class Indicator:
    code: str
    zh: str
    en: str
    family: str
    kind: str                   # 'count' | 'rate' | 'mean'
    num: str                    # measure counted / numerator / summed
    den: str | None             # denominator measure (rate, mean); None for counts
    unit: str                   # key of UNITS
    better: str | None          # 'higher' | 'lower' | None (neutral)
    formula_zh: str
    formula_en: str
    records: str                # which records count (English, for docs and tooltips)
    source: str                 # key of SOURCES

    def name(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    def formula(self, lang: str = "zh") -> str:
        return self.formula_en if lang == "en" else self.formula_zh

    def unit_label(self, lang: str = "zh") -> str:
        zh, en = UNITS[self.unit]
        return en if lang == "en" else zh


def _i(code, zh, en, family, kind, num, den, unit, better, fzh, fen, records, source="cjt292") -> Indicator:
    return Indicator(code, zh, en, family, kind, num, den, unit, better, fzh, fen, records, source)


_ALL = [
    # -- cases ---------------------------------------------------------------------------------------
    _i("reported", "上报数", "Reported", "cases", "count", "reported", None, "count", None,
       "上报时间在周期内的案件数", "cases reported in the period", "issue.reported_at in the period", "gbt30428"),
    _i("accepted", "受理立案数", "Filed (accepted)", "cases", "count", "accepted", None, "count", None,
       "首次交办（立案派遣）在周期内的案件数", "cases first assigned (filed and dispatched) in the period",
       "the case's first assign event in the period", "gbt30428"),
    _i("resolved", "已办结数", "Resolved", "cases", "count", "resolved", None, "count", "higher",
       "周期内上报、截至统计时已办结的案件数", "cases reported in the period and closed by the data's time",
       "reported in the period; status closed or evaluated", "street"),
    _i("resolution_rate", "总办结率", "Resolution rate", "cases", "rate", "resolved", "reported", "percent", "higher",
       "已办结数 ÷ 上报数 × 100%", "resolved ÷ reported × 100%", "as the article's 总办结率", "street"),
    _i("due", "应结案数", "Due", "cases", "count", "due", None, "count", None,
       "原定或批准延期后的处置期限落在周期内的案件数", "cases whose original or approved (extended) deadline falls in the period",
       "first assign event's due_at, or issue.due_at, in the period"),
    _i("deferred", "缓办数", "Deferred", "cases", "count", "deferred", None, "count", None,
       "应结案中，周期结束前经批准延期至周期之后、且周期内未办结的案件数",
       "due cases whose deadline an approved extension (before the period's end) moved past the period, not closed in it",
       "extend event before the period's end; issue.due_at after it; not closed before it"),
    _i("closed", "结案数", "Closed", "cases", "count", "closed", None, "count", "higher",
       "应结案数 − 缓办数 中已办结的案件数", "cases of (due − deferred) that are closed",
       "status closed or evaluated"),
    _i("closure_rate", "结案率", "Closure rate", "cases", "rate", "closed", "assessed", "percent", "higher",
       "结案数 ÷ (应结案数 − 缓办数) × 100%", "closed ÷ (due − deferred) × 100%", "see due, deferred, closed"),
    _i("closed_on_time", "按期结案数", "Closed on time", "cases", "count", "closed_on_time", None, "count", "higher",
       "结案数中办结时间不晚于处置期限（含批准延期）的案件数",
       "closed cases closed no later than their (approved) deadline", "not overdue by THE overdue rule"),
    _i("on_time_rate", "按期结案率", "On-time closure rate", "cases", "rate", "closed_on_time", "assessed", "percent",
       "higher", "按期结案数 ÷ (应结案数 − 缓办数) × 100%", "closed on time ÷ (due − deferred) × 100%",
       "see closed on time, due, deferred"),
    _i("overdue_open", "超期未结数", "Overdue, open", "cases", "count", "overdue_open", None, "count", "lower",
       "应结案数 − 缓办数 中截至统计时仍未办结且已过期限的案件数",
       "cases of (due − deferred) still open past their deadline at the data's time", "THE overdue rule, open"),
    _i("closed_late", "超期结案数", "Closed late", "cases", "count", "closed_late", None, "count", "lower",
       "应结案数 − 缓办数 中办结时间晚于期限的案件数", "cases of (due − deferred) closed after their deadline",
       "THE overdue rule, closed"),
    _i("overdue", "超期数", "Overdue", "cases", "count", "overdue", None, "count", "lower",
       "超期未结数 + 超期结案数", "overdue open + closed late", "THE overdue rule"),
    _i("extended", "延期数", "Extended", "cases", "count", "extended", None, "count", "lower",
       "应结案中周期结束前经批准延期的案件数", "due cases with an approved extension before the period's end",
       "extend events"),
    _i("extension_rate", "延期率", "Extension rate", "cases", "rate", "extended", "due", "percent", "lower",
       "延期数 ÷ 应结案数 × 100%", "extended ÷ due × 100%", "see extended, due"),
    _i("closed_in_period", "期内办结数", "Closed in period", "cases", "count", "closed_in_period", None, "count", None,
       "办结时间在周期内的案件数", "cases closed in the period", "issue.closed_at in the period", "gbt30428"),
    _i("handling_hours", "平均处置时长", "Average handling time", "cases", "mean", "handling_hours_sum",
       "closed_in_period", "hours", "lower", "Σ(办结时间 − 立案时间) ÷ 期内办结数",
       "Σ(closed − first assigned) ÷ closed in the period", "cases closed in the period", "gbt30428"),
    # -- steps ---------------------------------------------------------------------------------------
    _i("signed", "签收数", "Signed", "steps", "count", "signed", None, "count", None,
       "周期内有签收的案件数", "cases signed for in the period", "sign events in the period"),
    _i("signed_on_time", "按时签收数", "Signed on time", "steps", "count", "signed_on_time", None, "count", "higher",
       "周期内签收且均未超过签收时限的案件数", "cases signed in the period, every signature within its deadline",
       "sign events with late = false"),
    _i("sign_on_time_rate", "按时签收率", "On-time signing rate", "steps", "rate", "signed_on_time", "signed",
       "percent", "higher", "按时签收数 ÷ 签收数 × 100%", "signed on time ÷ signed × 100%", "sign events", "street"),
    _i("verified", "核查数", "Verified", "steps", "count", "verified", None, "count", None,
       "周期内经核查（通过或返工）的案件数", "cases checked at verification (passed or sent back) in the period",
       "verify and rework events"),
    _i("reworked", "返工案件数", "Reworked", "steps", "count", "reworked", None, "count", "lower",
       "周期内被核查退回返工的案件数", "cases sent back at verification in the period", "rework events"),
    _i("rework_rate", "返工率", "Rework rate", "steps", "rate", "reworked", "verified", "percent", "lower",
       "返工案件数 ÷ 核查数 × 100%", "reworked ÷ verified × 100%", "rework, verify events"),
    _i("rework_events", "返工次数", "Rework events", "steps", "count", "rework_events", None, "times", "lower",
       "周期内返工事件数", "rework events in the period", "rework events", "street"),
    _i("reassigned", "改派案件数", "Reassigned cases", "steps", "count", "reassigned", None, "count", "lower",
       "周期内被改派的案件数（推诿信号）", "cases reassigned in the period (the 推诿 signal)", "reassign events", "street"),
    _i("reassignments", "改派次数", "Reassignments", "steps", "count", "reassignments", None, "times", "lower",
       "周期内改派事件数", "reassign events in the period", "reassign events", "street"),
    _i("evaluated", "评价数", "Evaluated", "steps", "count", "evaluated", None, "count", None,
       "周期内综合评价的案件数", "cases evaluated in the period", "evaluate events"),
    _i("satisfaction", "综合评价", "Satisfaction", "steps", "mean", "satisfaction_sum", "evaluated", "points",
       "higher", "Σ满意度(1–5) ÷ 评价数", "Σ satisfaction (1–5) ÷ evaluated", "evaluate events' satisfaction",
       "gbt30428"),
    # -- diary ---------------------------------------------------------------------------------------
    _i("patrol_days", "巡查天数", "Patrol days", "diary", "count", "patrol_days", None, "days", "higher",
       "网格内有日巡查记录的工作日数（网格×天）", "working days with a patrol entry (grid × day)",
       "patrol_diary kind patrol, Monday–Friday", "street"),
    _i("patrol_coverage", "巡查覆盖率", "Patrol coverage", "diary", "rate", "patrol_days", "working_days", "percent",
       "higher", "巡查天数 ÷ (工作日数 × 网格数) × 100%", "patrol days ÷ (working days × grids) × 100%",
       "patrol_diary; working days Monday–Friday", "street"),
    _i("visits", "走访次数", "Visits", "diary", "count", "visits", None, "times", "higher",
       "日走访记录数", "visit entries", "patrol_diary kind visit", "street"),
    _i("households", "走访户数", "Households visited", "diary", "count", "households", None, "households", "higher",
       "民情日记记录的入户数", "households in the diary's entries", "patrol_diary.households", "street"),
    _i("shops", "走访门店数", "Shops visited", "diary", "count", "shops", None, "times", None,
       "民情日记记录的沿街门店数", "shops in the diary's entries", "patrol_diary.shops", "street"),
    _i("firms", "走访企业数", "Firms visited", "diary", "count", "firms", None, "times", None,
       "民情日记记录的企业数", "firms in the diary's entries", "patrol_diary.firms", "street"),
    # -- activity ------------------------------------------------------------------------------------
    _i("talks", "三谈活动", "三谈 talks", "activity", "count", "talks", None, "times", "higher",
       "社区论坛、社会恳谈、党群畅谈次数", "community forums, social talks, party–public talks",
       "activity category talk", "street"),
    _i("home_visits", "三访活动", "三访 visits", "activity", "count", "home_visits", None, "times", "higher",
       "党员家访、楼院随访、专题约访次数", "party-member home visits, block visits, appointments",
       "activity category visit", "street"),
    _i("clinics", "三诊活动", "三诊 clinics", "activity", "count", "clinics", None, "times", "higher",
       "接待坐诊、走访出诊、民情会诊次数", "reception clinics, outreach, case conferences",
       "activity category clinic", "street"),
    _i("participants", "活动参与人次", "Participants", "activity", "count", "participants", None, "people", None,
       "三谈三访三诊参与人数之和", "participants of those activities", "activity.participants", "street"),
]
INDICATORS: dict[str, Indicator] = {i.code: i for i in _ALL}
#: the measures the indicators read, by family (each has its SQL in geodata.assessment.indicators)
MEASURES: dict[str, tuple[str, ...]] = {
    f: tuple(dict.fromkeys(m for i in _ALL if i.family == f for m in (i.num, i.den) if m)) for f in FAMILIES}

#: 环比 / 同比: every indicator compared with the period before and the same period a year earlier
COMPARISONS: dict[str, Label] = {"mom": ("环比", "vs previous period"), "yoy": ("同比", "vs a year earlier")}


def value(ind: Indicator, measures: dict[str, float]) -> float | None:
    """The indicator's value from its measures; a rate or mean over nothing is None (not zero)."""
    num = measures.get(ind.num, 0) or 0
    if ind.kind == "count":
        return float(num)
    den = measures.get(ind.den or "", 0) or 0
    if not den:
        return None
    return 100.0 * num / den if ind.kind == "rate" else num / den


def change(ind: Indicator, current: float | None, before: float | None) -> float | None:
    """环比/同比 change: percentage points for a rate; relative change in % otherwise; None when
    either side is missing (or the base is zero for a relative change)."""
    if current is None or before is None:
        return None
    if ind.kind == "rate":
        return current - before
    return None if before == 0 else 100.0 * (current - before) / before


def label(code: str, lang: str = "zh") -> str:
    ind = INDICATORS.get(code)
    return ind.name(lang) if ind else code
