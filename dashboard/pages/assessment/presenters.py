"""The assessment page's presenters (pure): period options, the ranking's columns and rows, the
lists, the KPI strip, the charts, the records behind a number, the Excel export. Labels, units
and formulas come from the indicator registry (``geodata.assessment.registry``)."""
from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import dcc, html

from geodata.assessment.periods import Period, month_period, parse_period
from geodata.assessment.registry import COMPARISONS, INDICATORS
from geodata.assessment.views import VIEW_KEYS, view_query
from geodata.errors import DomainError

from ...i18n import fmt_dt, status_label, t

#: the indicator columns of the ranking (each number is clickable: its records)
RANK_INDICATORS = ("reported", "closed", "closure_rate", "on_time_rate", "overdue_open", "closed_late",
                   "rework_rate", "extension_rate", "sign_on_time_rate", "handling_hours", "satisfaction",
                   "reassignments", "patrol_coverage", "visits")
#: the KPI strip (the level's total)
KPI_INDICATORS = ("reported", "closed", "closure_rate", "on_time_rate", "overdue_open", "rework_rate",
                  "satisfaction", "patrol_coverage")
#: the 环比 / 同比 chart's indicators (rates: percentage points)
CHANGE_INDICATORS = ("closure_rate", "on_time_rate", "sign_on_time_rate", "rework_rate", "extension_rate",
                     "patrol_coverage", "resolution_rate")
LEVELS = ("grid:2", "grid:3", "official:grid_leader")


# -- periods ------------------------------------------------------------------------------------------
def default_period(today: dt.date) -> str:
    """The last whole month before ``today`` (the month a 月通报 is about)."""
    m = today.year * 12 + today.month - 2
    return month_period(m // 12, m % 12 + 1).key


def kind_of(period: str) -> str:
    return parse_period(period).kind


def custom_days(period: str) -> tuple[str | None, str | None]:
    p = parse_period(period)
    return (p.first.isoformat(), p.last.isoformat()) if p.kind == "custom" else (None, None)


def period_options(kind: str, today: dt.date, lang: str) -> list[dict[str, str]]:
    """The choices of a kind, newest first: 24 months, 8 quarters, 4 years (custom: none)."""
    out: list[Period] = []
    m0 = today.year * 12 + today.month - 1
    if kind == "month":
        out = [month_period((m0 - i) // 12, (m0 - i) % 12 + 1) for i in range(24)]
    elif kind == "quarter":
        q0 = (m0 // 3) * 3
        out = [month_period((q0 - 3 * i) // 12, (q0 - 3 * i) % 12 + 1, "quarter") for i in range(8)]
    elif kind == "year":
        out = [month_period(today.year - i, 1, "year") for i in range(4)]
    return [{"label": p.label(lang), "value": p.key} for p in out]


def chosen_period(kind: str | None, period: str | None, start: str | None, end: str | None) -> str:
    """The picked period's key; a bad custom range raises a bilingual DomainError (field period)."""
    if kind == "custom":
        if not start or not end:
            raise DomainError("required", "请选择自定义周期的起止日期", "pick the first and the last day",
                              field="period")
        return parse_period(f"{start[:10]}..{end[:10]}").key
    if not period:
        raise DomainError("required", "请选择考核周期", "choose a period", field="period")
    p = parse_period(period)
    if kind and p.kind != kind:
        raise DomainError("invalid_period", "考核周期与类型不符", "the period is not of the kind chosen", field="period")
    return p.key


# -- the view in the URL ---------------------------------------------------------------------------------
#: a subject's key: a grid code, or an official's id (the guard's SubjectKey, dashboard values)
SUBJECT_PATTERN = r"^([0-9]{14}|[1-9][0-9]{0,18})$"
_SUBJECT_RE = re.compile(SUBJECT_PATTERN)


def view_from_query(search: str | None) -> tuple[dict[str, str] | None, str | None, str | None, list[str]]:
    """A URL's query → (chosen period and level, or None when it names neither; the subject; the
    indicator whose records to open; the keys whose values were invalid and ignored)."""
    from urllib.parse import parse_qs

    q = {k: v[0] for k, v in parse_qs((search or "").lstrip("?"), max_num_fields=20).items() if k in VIEW_KEYS}
    bad: list[str] = []
    period = level = None
    if "period" in q:
        try:
            period = parse_period(q["period"]).key
        except DomainError:
            bad.append("period")
    if "level" in q:
        if q["level"] in LEVELS:
            level = q["level"]
        else:
            bad.append("level")
    subject = q.get("subject") if _SUBJECT_RE.match(q.get("subject", "")) else None
    if "subject" in q and subject is None:
        bad.append("subject")
    indicator = q.get("indicator") if q.get("indicator") in INDICATORS else None
    if "indicator" in q and indicator is None:
        bad.append("indicator")
    chosen = {"period": period, "level": level} if (period or level) else None
    return chosen, subject, indicator, bad


# -- the ranking --------------------------------------------------------------------------------------
def _header(code: str, lang: str) -> str:
    ind = INDICATORS[code]
    unit = ind.unit_label(lang)
    return f"{ind.name(lang)}（{unit}）" if lang == "zh" else f"{ind.name(lang)} ({unit})"


def column_defs(lang: str, level: str) -> list[dict[str, Any]]:
    who = t("as_col_leader" if level.startswith("official") else "as_col_grid", lang)
    num = {"type": "numericColumn", "filter": "agNumberColumnFilter", "width": 118}
    cols: list[dict[str, Any]] = [
        {"field": "rank", "headerName": t("as_col_rank", lang), **num, "width": 80, "pinned": "left"},
        {"field": "name", "headerName": who, "filter": "agTextColumnFilter", "width": 170, "pinned": "left"},
        {"field": "final", "headerName": t("as_col_final", lang), **num, "sort": None},
        {"field": "quantitative", "headerName": t("as_col_quant", lang), **num},
        {"field": "qualitative", "headerName": t("as_col_qual", lang), **num},
        {"field": "standing", "headerName": t("as_col_standing", lang), "filter": "agTextColumnFilter", "width": 110},
    ]
    for code in RANK_INDICATORS:
        cols.append({"field": code, "headerName": _header(code, lang), **num, "cellClass": "gw-as-traceable",
                     "headerTooltip": INDICATORS[code].formula(lang)})
    for cmp in ("mom", "yoy"):
        cols.append({"field": f"on_time_rate_{cmp}", **num, "width": 140,
                     "headerName": f"{INDICATORS['on_time_rate'].name(lang)} {_cmp_label(cmp, lang)}",
                     "headerTooltip": t("as_pp_hint", lang)})
    return cols


def _cmp_label(cmp: str, lang: str) -> str:
    zh, en = COMPARISONS[cmp]
    return zh if lang == "zh" else en


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(float(v), digits)


def standing(row: Any, lang: str) -> str:
    if row.excellent:
        return t("as_excellent_mark", lang)
    if row.named:
        return t("as_named_mark", lang)
    return ""


def ranking_rows(ranking: Any, lang: str) -> list[dict[str, Any]]:
    rows = []
    for r in ranking.rows:
        d: dict[str, Any] = {"key": r.key, "rank": r.rank, "name": r.name, "final": _r(r.final),
                             "quantitative": _r(r.quantitative), "qualitative": _r(r.qualitative),
                             "standing": standing(r, lang)}
        for code in RANK_INDICATORS:
            d[code] = _r(r.values.get(code))
        d["on_time_rate_mom"] = _r(r.mom.get("on_time_rate"))
        d["on_time_rate_yoy"] = _r(r.yoy.get("on_time_rate"))
        rows.append(d)
    return rows


def fmt_value(code: str, v: float | None, lang: str) -> str:
    if v is None:
        return "—"
    ind = INDICATORS[code]
    if ind.unit == "percent":
        return f"{v:.2f}%"
    if ind.kind == "mean":
        return f"{v:.2f}"
    return f"{v:.0f}"


def excellent_items(ranking: Any, lang: str) -> list[Any]:
    rows = [r for r in ranking.rows if r.excellent]
    if not rows:
        return [html.Li(t("as_none", lang), className="gw-as-empty")]
    return [html.Li(f"{r.rank}. {r.name} · {r.final:.2f}", **{"data-key": r.key}) for r in rows]


def named_items(ranking: Any, lang: str) -> list[Any]:
    rows = [r for r in ranking.rows if r.named]
    if not rows:
        return [html.Li(t("as_none", lang), className="gw-as-empty")]
    return [html.Li(**{"data-key": r.key}, children=[
        html.Strong(f"{r.name}"), f" · {r.final:.2f} · ",
        "；".join(x["zh"] if lang == "zh" else x["en"] for x in r.reasons)]) for r in rows]


def kpi_children(ranking: Any, lang: str) -> list[Any]:
    head = html.Div(className="gw-as-kpi gw-as-kpi-period", children=[
        html.Span(ranking.period.label(lang), className="gw-as-kpi-value"),
        html.Span(t("as_rule_version", lang, v=ranking.rule_id, w=round(ranking.qualitative_weight * 100)),
                  className="gw-as-kpi-label")])
    return [head] + [dcc.Link(className="gw-as-kpi gw-as-kpi-link", title=INDICATORS[c].formula(lang),
                              href=view_query(ranking.period.key, ranking.level, None, c), children=[
        html.Span(fmt_value(c, ranking.street.get(c), lang), className="gw-as-kpi-value", **{"data-indicator": c}),
        html.Span(INDICATORS[c].name(lang), className="gw-as-kpi-label")]) for c in KPI_INDICATORS]


def subject_options(ranking: Any) -> list[dict[str, str]]:
    return [{"label": f"{r.name}", "value": r.key} for r in ranking.rows]


def indicator_options(codes: tuple[str, ...], lang: str) -> list[dict[str, str]]:
    return [{"label": INDICATORS[c].name(lang), "value": c} for c in codes]


# -- charts ---------------------------------------------------------------------------------------------
def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title={"text": title, "font": {"size": 14}}, margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      height=300, legend={"orientation": "h", "y": -0.2}, template="plotly_white")
    return fig


def trend_figure(points: list[Any], indicator: str, subject: str | None, lang: str) -> go.Figure:
    ind = INDICATORS[indicator]
    x = [p.period for p in points]
    fig = go.Figure([
        go.Scatter(x=x, y=[p.value for p in points], mode="lines+markers", name=t("as_this_year", lang)),
        go.Scatter(x=x, y=[p.year_ago for p in points], mode="lines", name=_cmp_label("yoy", lang),
                   line={"dash": "dot"}),
    ])
    who = subject or t("as_all", lang)
    fig.update_yaxes(title=ind.unit_label(lang))
    return _layout(fig, t("as_trend_title", lang, ind=ind.name(lang), who=who))


def changes_figure(ranking: Any, key: str | None, lang: str) -> go.Figure:
    row = next((r for r in ranking.rows if r.key == key), None)
    names = [INDICATORS[c].name(lang) for c in CHANGE_INDICATORS]
    if row is None:
        fig = go.Figure()
        return _layout(fig, t("as_changes_pick", lang))
    fig = go.Figure([go.Bar(x=names, y=[row.mom.get(c) for c in CHANGE_INDICATORS], name=_cmp_label("mom", lang)),
                     go.Bar(x=names, y=[row.yoy.get(c) for c in CHANGE_INDICATORS], name=_cmp_label("yoy", lang))])
    fig.update_yaxes(title=t("as_pp", lang))
    return _layout(fig, t("as_changes_title", lang, who=row.name))


def scores_figure(ranking: Any, lang: str) -> go.Figure:
    rows = ranking.rows[:30]
    fig = go.Figure([go.Bar(x=[r.name for r in rows], y=[r.quantitative for r in rows], name=t("as_col_quant", lang)),
                     go.Scatter(x=[r.name for r in rows], y=[r.final for r in rows], mode="markers",
                                name=t("as_col_final", lang))])
    fig.update_yaxes(range=[0, 100])
    return _layout(fig, t("as_scores_title", lang, n=len(rows)))


# -- the records behind a number --------------------------------------------------------------------------
def _record_rows(records: list[Any], table: str, lang: str, tz: ZoneInfo) -> html.Table:
    head = html.Tr([html.Th(t(k, lang)) for k in ("as_t_id", "as_t_title", "as_t_status", "as_t_when", "as_t_grid")])
    body = []
    for r in records:
        if table == "issue":
            status = status_label(r.status, lang)
            if r.overdue:
                status += f" · {t('state_overdue', lang)}"
            ident: Any = html.A(r.label, href=f"/?issue={r.id}", target="_blank", className="gw-as-case-link")
        else:
            status, ident = "", r.label
        body.append(html.Tr([html.Td(ident), html.Td(r.title), html.Td(status), html.Td(fmt_dt(r.when, lang, tz)),
                             html.Td(r.grid_code)], className="gw-as-record"))
    return html.Table(className="table table-sm gw-as-records", children=[html.Thead(head), html.Tbody(body)])


def trace_children(view: Any, subject: str, period: Period, lang: str, tz: ZoneInfo) -> tuple[str, list[Any]]:
    ind = INDICATORS[view.indicator]
    title = t("as_trace_title", lang, ind=ind.name(lang), who=subject, period=period.label(lang),
              v=fmt_value(view.indicator, view.value, lang))
    parts: list[Any] = [html.P(ind.formula(lang), className="gw-as-formula")]
    label = "as_trace_num" if view.denominator is not None else "as_trace_count"
    parts.append(html.H4(t(label, lang, n=view.numerator_count), id="as-trace-num",
                         **{"data-count": str(view.numerator_count)}))
    if view.numerator_count > len(view.numerator):
        parts.append(html.P(t("as_trace_cut", lang, n=len(view.numerator)), className="gw-as-hint"))
    parts.append(_record_rows(view.numerator, view.table, lang, tz))
    if view.denominator is not None:
        parts.append(html.H4(t("as_trace_den", lang, n=view.denominator_count), id="as-trace-den",
                             **{"data-count": str(view.denominator_count)}))
        parts.append(_record_rows(view.denominator, view.table, lang, tz))
    return title, parts


# -- export ---------------------------------------------------------------------------------------------
def xlsx_bytes(rows: list[dict[str, Any]], columns: list[dict[str, Any]], title: str, sheet: str = "ranking") -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append([title])
    ws.append([c["headerName"] for c in columns])
    for r in rows:
        ws.append([r.get(c["field"]) for c in columns])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def bulletin_form(period: str, level: str, csrf: tuple[str, str], lang: str) -> list[Any]:
    """The bulletin buttons: plain forms posted to the bulletin route (it issues the period's 通报
    and answers the file); the level is the grid level (a grid-leader ranking: the blocks')."""
    grid_level = "2" if level == "grid:2" else "3"
    name, value = csrf
    out = []
    for fmt in ("pdf", "xlsx"):
        out.append(html.Form(action="/assessment/bulletin", method="POST", className="gw-as-bulletin-form",
                             children=[
                                 html.Div(hidden=True, children=[
                                     _hidden(name, value), _hidden("period", period), _hidden("level", grid_level),
                                     _hidden("format", fmt)]),
                                 html.Button(t(f"as_bulletin_{fmt}", lang), type="submit",
                                             id=f"as-bulletin-{fmt}-button",
                                             className="btn btn-outline-primary btn-sm")]))
    return out


def _hidden(name: str, value: str) -> Any:
    from dash import dcc

    return dcc.Input(type="hidden", name=name, value=value)


# -- the score choropleth, the scorecard, the profile charts ------------------------------------------------
#: score classes [lo, hi) of the choropleth (the street's 考核办法 grades: < 60 fails, ≥ 90 excellent)
SCORE_BREAKS = (60, 70, 80, 90)
SCORE_COLORS = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")
#: the scorecard's main indicators
CARD_INDICATORS = ("reported", "closure_rate", "on_time_rate", "overdue_open", "rework_rate", "handling_hours",
                   "satisfaction", "patrol_coverage")


def map_level(level: str) -> int:
    """The grid level whose polygons the choropleth colours (a grid leader: their blocks)."""
    return 2 if level == "grid:2" else 3


def score_map(ranking: Any, key: str | None, lang: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(communities' hideout, blocks' hideout): every grid the level's subjects answer for, coloured
    by its subject's final score, labelled with its name (communities) and the score; the picked
    subject's grids outlined."""
    values: dict[str, float] = {}
    labels: dict[str, str] = {}
    picked: list[str] = []
    by_grid = not ranking.level.startswith("official")
    for r in ranking.rows:
        for code in r.grids:
            values[code] = round(r.final, 2)
            labels[code] = f"{r.name}\n{r.final:.1f}" if by_grid and map_level(ranking.level) == 2 else f"{r.final:.1f}"
            if r.key == key:
                picked.append(code)
    shown = {"show": True, "values": values, "labels": labels, "picked": picked, "breaks": list(SCORE_BREAKS),
             "colors": list(SCORE_COLORS), "none": "#ced4da", "lang": lang}
    hidden = {"show": False}
    return (shown, hidden) if map_level(ranking.level) == 2 else (hidden, shown)


def score_legend(lang: str) -> list[Any]:
    edges = ("0", *map(str, SCORE_BREAKS), "100")
    return [html.Span(className="gw-as-legend-item", children=[
        html.I(className="gw-as-swatch", style={"background": c}), f"{edges[i]}–{edges[i + 1]}"])
        for i, c in enumerate(SCORE_COLORS)]


def subject_of_grid(ranking: Any, code: str | None) -> str | None:
    """The subject of the level a clicked grid belongs to (a grid: itself; a block: its leader)."""
    if not code:
        return None
    return next((r.key for r in ranking.rows if code in r.grids), None)


def _pts(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def scorecard_children(ranking: Any, key: str | None, grid_names: dict[str, str], lang: str) -> list[Any]:
    """The picked subject's card: rank, final = quantitative and 定性, points earned and taken per
    rule item (with the value that earned them), the reasons it is named, its grids, and the main
    indicators with 环比 / 同比."""
    row = next((r for r in ranking.rows if r.key == key), None)
    if row is None:
        return [html.P(t("as_card_pick", lang), className="gw-as-hint", id="as-card-empty")]
    standing_text = standing(row, lang)
    head = html.Div(className="gw-as-card-head", children=[
        html.H4(row.name, id="as-card-name"),
        html.Span(t("as_card_rank_people" if ranking.level.startswith("official") else "as_card_rank", lang,
                    rank=row.rank, n=len(ranking.rows)), className="gw-as-card-rank"),
        *([html.Span(standing_text, className="gw-as-card-standing " + (
            "gw-as-card-excellent" if row.excellent else "gw-as-card-named"))] if standing_text else []),
    ])
    scores = html.Div(className="gw-as-card-scores", children=[
        html.Div([html.Span(f"{row.final:.2f}", className="gw-as-card-final", id="as-card-final"),
                  html.Span(t("as_col_final", lang), className="gw-as-kpi-label")]),
        html.Div([html.Span(f"{row.quantitative:.2f}", className="gw-as-card-part"),
                  html.Span(t("as_col_quant", lang), className="gw-as-kpi-label")]),
        html.Div([html.Span("—" if row.qualitative is None else f"{row.qualitative:.2f}", className="gw-as-card-part"),
                  html.Span(t("as_col_qual", lang) + ("" if row.qualitative is not None
                                                       else f"（{t('as_card_qual_none', lang)}）"),
                            className="gw-as-kpi-label")]),
    ])
    items = [html.Li(t("as_card_item_row", lang, ind=INDICATORS[c].name(lang), v=fmt_value(c, row.values.get(c), lang),
                       pts=_pts(p), full=_pts(ranking.full_points.get(c, p))),
                     className="gw-as-card-short" if p < ranking.full_points.get(c, p) else None,
                     **{"data-indicator": c}) for c, p in row.items.items()]
    deductions = [html.Li(t("as_card_deduction_row", lang, ind=INDICATORS[c].name(lang),
                            v=fmt_value(c, row.values.get(c), lang), pts=_pts(p)), **{"data-indicator": c})
                  for c, p in row.deductions.items() if p > 0]
    parts: list[Any] = [head, scores,
                        html.H5(t("as_card_items", lang)), html.Ul(items, className="gw-as-card-items")]
    if deductions:
        parts += [html.H5(t("as_card_deductions", lang)), html.Ul(deductions, className="gw-as-card-deductions")]
    if row.reasons:
        parts += [html.H5(t("as_card_reasons", lang)),
                  html.Ul([html.Li(x["zh"] if lang == "zh" else x["en"]) for x in row.reasons],
                          className="gw-as-card-reasons")]
    if row.grids and ranking.level.startswith("official"):
        parts += [html.H5(t("as_card_grids", lang)),
                  html.P("、".join(grid_names.get(c, c) for c in row.grids) if lang == "zh"
                         else ", ".join(grid_names.get(c, c) for c in row.grids), className="gw-as-card-grids")]
    mom, yoy = _cmp_label("mom", lang), _cmp_label("yoy", lang)
    table_rows = [html.Tr([html.Th(INDICATORS[c].name(lang), title=INDICATORS[c].formula(lang)),
                           html.Td(dcc.Link(fmt_value(c, row.values.get(c), lang), className="gw-as-traceable",
                                            href=view_query(ranking.period.key, ranking.level, row.key, c)),
                                   **{"data-indicator": c}),
                           html.Td(_change(row.mom.get(c), c, lang), title=mom),
                           html.Td(_change(row.yoy.get(c), c, lang), title=yoy)]) for c in CARD_INDICATORS]
    parts += [html.H5(t("as_card_indicators", lang)),
              html.Table(className="table table-sm gw-as-card-table", children=[
                  html.Thead(html.Tr([html.Th(""), html.Th(t("as_this_year", lang)), html.Th(mom), html.Th(yoy)])),
                  html.Tbody(table_rows)])]
    return parts


def _change(v: float | None, code: str, lang: str) -> str:
    """A 环比 / 同比 change: percentage points for a rate, per cent for a count or mean."""
    if v is None:
        return "—"
    arrow = "▲" if v > 0 else ("▼" if v < 0 else "＝")
    unit = t("as_pp_short", lang) if INDICATORS[code].unit == "percent" else "%"
    return f"{arrow} {abs(v):.1f} {unit}"


def domains_figure(prof: Any, who: str | None, lang: str) -> go.Figure:
    names = [d.name_zh if lang == "zh" else d.name_en for d in prof.domains]
    fig = go.Figure([
        go.Bar(x=names, y=[d.reported for d in prof.domains], name=t("as_domain_reported", lang)),
        go.Bar(x=names, y=[d.closed for d in prof.domains], name=t("as_domain_closed", lang)),
        go.Bar(x=names, y=[d.overdue_open for d in prof.domains], name=t("as_domain_overdue", lang),
               marker={"color": "#d73027"}),
    ])
    fig.update_yaxes(title=t("as_cases", lang))
    return _layout(fig, t("as_domains_title", lang, who=who or t("as_all", lang)))


def hours_figure(prof: Any, who: str | None, lang: str) -> go.Figure:
    e = prof.hour_edges
    x = [f"{e[i]}–{e[i + 1]}" for i in range(len(e) - 1)] + [f"≥{e[-1]}"]
    fig = go.Figure([go.Bar(x=x, y=prof.hour_counts, name=t("as_cases", lang), marker={"color": "#1c4fa1"})])
    fig.update_xaxes(title=t("as_hours_axis", lang), type="category")
    fig.update_yaxes(title=t("as_cases", lang))
    h = lambda v: "—" if v is None else f"{v:.1f} h"
    return _layout(fig, t("as_hours_title", lang, who=who or t("as_all", lang), med=h(prof.median_hours),
                          p90=h(prof.p90_hours)))
