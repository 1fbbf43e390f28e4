"""The assessment page's layout: the period and level pickers, the KPI strip, the ranking
(dash-ag-grid), 优秀 and 通报, the charts, the 定性 form (assessors only) and the bulletin buttons;
rebuilt when the language changes. Pure: the data comes from the callbacks."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import dcc, html

from geodata.assessment.periods import KINDS

from ...components import ids as app_ids
from ...components import widgets
from ...components.header import header
from ...components.shell import lang_switch
from ...i18n import t
from . import ids, presenters

#: the levels of the picker (geodata.assessment.views.LEVELS keys) and their text keys
LEVEL_KEYS = {"grid:2": "as_level_community", "grid:3": "as_level_block", "official:grid_leader": "as_level_leader"}
DEFAULT_LEVEL = "grid:3"
#: the indicators of the trend chart's picker
TREND_INDICATORS = ("on_time_rate", "closure_rate", "resolution_rate", "reported", "overdue", "rework_rate",
                    "extension_rate", "sign_on_time_rate", "handling_hours", "satisfaction", "reassignments",
                    "patrol_coverage")


def page(lang: str, body: list[Any]) -> html.Div:
    """The page's frame: the language switch (shared id), the widgets' locale store, the body."""
    return html.Div(className="gw-app gw-assessment", lang="zh-CN" if lang == "zh" else "en", children=[
        dcc.Store(id=app_ids.WIDGET_LOCALE),
        dcc.Store(id=ids.Q_VERSION, data=0),
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.URL_WRITTEN),
        dcc.Download(id=ids.EXPORT_XLSX + "-file"),
        lang_switch(lang),
        html.Div(id=ids.BODY, className="gw-body", children=body),
    ])


def refused(lang: str, account: Any) -> list[Any]:
    """The body for a viewer without the assessment capability (the server refuses every callback too)."""
    return [html.Div(className="gw-as-refused", role="alert", id="as-refused", children=[
        html.H2(t("as_refused_title", lang)), html.P(t("as_refused_text", lang)),
        html.A(t("not_found_back", lang), href="/"), account])]


def js(name: str) -> dict[str, str]:
    """A dash-leaflet functional prop pointing at dashboard/assets/gridwatch_assessment.js."""
    return {"variable": f"gridwatch.assessment.{name}"}


def score_map(lang: str) -> html.Section:
    """The score choropleth: the communities' and the blocks' polygons, loaded once by URL (the
    map page's layers) and restyled through ``hideout`` when the period, level or pick changes."""
    layer = lambda id_, level: dl.GeoJSON(
        id=id_, url=f"/geo/grids/{level}.json", zoomToBounds=True, style=js("scoreStyle"),
        filter=js("scoreFilter"), onEachFeature=js("scoreLabel"), hideout={"show": False},
        hoverStyle={"weight": 3, "color": "#0b1f44"})
    return html.Section(className="gw-as-map", children=[
        html.Div(className="gw-as-toolbar", children=[
            html.H3(t("as_map_title", lang)), html.Span(t("as_map_hint", lang), className="gw-as-hint")]),
        dl.Map(id=ids.MAP, center=[34.75, 113.63], zoom=14, zoomSnap=0.25, attributionControl=False,
               style={"height": "420px"}, className="gw-as-leaflet",
               children=[layer(ids.MAP_L2, 2), layer(ids.MAP_L3, 3),
                         dl.ScaleControl(position="bottomright", imperial=False)]),
        html.Div(id=ids.MAP_LEGEND, className="gw-as-legend", children=presenters.score_legend(lang)),
    ])


def _opt(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"label": label, "value": value} for value, label in pairs]


def body(lang: str, tz: ZoneInfo, chosen: dict[str, str], today: dt.date, account: Any, *, can_assess: bool,
         can_issue: bool, subject: str | None = None, trace: dict[str, str] | None = None,
         note: str = "") -> list[Any]:
    kind, period, level = presenters.kind_of(chosen["period"]), chosen["period"], chosen["level"]
    first, last = presenters.custom_days(period)
    controls = html.Div(className="gw-as-controls", children=[
        html.Label(t("as_period_kind", lang), htmlFor=ids.KIND),
        dbc.RadioItems(id=ids.KIND, value=kind, inline=True, className="gw-as-kind",
                       options=[{"label": t(f"as_kind_{k}", lang), "value": k} for k in KINDS]),
        html.Div(className="gw-as-period", children=widgets.dropdown(
            lang, id=ids.PERIOD, options=presenters.period_options(kind, today, lang),
            value=None if kind == "custom" else period, clearable=False, searchable=False,
            style={"display": "none"} if kind == "custom" else {})),
        html.Div(id=ids.RANGE + "-wrap", style={} if kind == "custom" else {"display": "none"}, children=
                 dcc.DatePickerRange(id=ids.RANGE, start_date=first, end_date=last, display_format="YYYY-MM-DD",
                                     first_day_of_week=1, minimum_nights=0)),
        html.Label(t("as_level", lang), htmlFor=ids.LEVEL),
        html.Div(className="gw-as-level", children=widgets.dropdown(
            lang, id=ids.LEVEL, value=level, clearable=False, searchable=False,
            options=_opt([(k, t(v, lang)) for k, v in LEVEL_KEYS.items()]))),
        html.Span(note, id=ids.PERIOD_NOTE, className="gw-as-note", role="status"),
    ])
    grid = widgets.data_grid(
        lang, id=ids.RANKING, rowData=[], columnDefs=presenters.column_defs(lang, level),
        getRowId="params.data.key", className="ag-theme-alpine gw-as-grid",
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": False},
        dashGridOptions={"animateRows": False, "tooltipShowDelay": 300},
        csvExportParams={"fileName": "assessment.csv"}, style={"height": "460px"})
    # the form is in every body (the ranking fills its subjects), shown to assessors only; the
    # server checks the capability again when a score is saved
    qualitative = html.Section(className="gw-as-form", id="as-form", hidden=not can_assess, children=[
        html.H3(t("as_q_title", lang)),
        html.P(t("as_q_hint", lang), className="gw-as-hint"),
        html.Label(t("as_q_subject", lang), htmlFor=ids.Q_SUBJECT),
        widgets.dropdown(lang, id=ids.Q_SUBJECT, options=[], clearable=True),
        html.Label(t("as_q_score", lang), htmlFor=ids.Q_SCORE),
        dcc.Input(id=ids.Q_SCORE, type="text", inputMode="decimal", maxLength=20, debounce=False,
                  placeholder="0–100", className="form-control"),
        html.Label(t("as_q_comment", lang), htmlFor=ids.Q_COMMENT),
        dcc.Textarea(id=ids.Q_COMMENT, maxLength=500, className="form-control"),
        html.Button(t("as_q_save", lang), id=ids.Q_SAVE, n_clicks=0, className="btn btn-primary btn-sm"),
        html.Div(id=ids.Q_RESULT, role="status"),
    ])
    return [
        header(t("as_title", lang), lang, tz, controls=(),
               actions=(html.A(t("as_to_map", lang), href="/", className="gw-as-link"), account)),
        controls,
        html.Div(id=ids.KPIS, className="gw-as-kpis"),
        html.Div(className="gw-as-main", children=[
            html.Section(className="gw-as-ranking", children=[
                html.Div(className="gw-as-toolbar", children=[
                    html.H3(t("as_ranking", lang)),
                    html.Span(t("as_click_hint", lang), className="gw-as-hint"),
                    html.Button(t("as_export_csv", lang), id=ids.EXPORT_CSV, n_clicks=0,
                                className="btn btn-outline-secondary btn-sm"),
                    html.Button(t("as_export_xlsx", lang), id=ids.EXPORT_XLSX, n_clicks=0,
                                className="btn btn-outline-secondary btn-sm"),
                    html.Div(id=ids.BULLETIN_PDF, className="gw-as-bulletins", hidden=not can_issue),
                ]),
                grid,
            ]),
            html.Aside(className="gw-as-side", children=[
                html.H3(t("as_excellent", lang)), html.Ul(id=ids.EXCELLENT, className="gw-as-list gw-as-excellent"),
                html.H3(t("as_named", lang)), html.Ul(id=ids.NAMED, className="gw-as-list gw-as-named"),
                qualitative,
            ]),
        ]),
        html.Div(className="gw-as-mapcard", children=[
            score_map(lang),
            html.Section(className="gw-as-card", children=[
                html.H3(t("as_card_title", lang)),
                html.Div(id=ids.CARD, role="region", **{"aria-live": "polite"}),
            ]),
        ]),
        html.Div(className="gw-as-charts", children=[
            html.Div(className="gw-as-chart", children=widgets.graph(lang, id=ids.DOMAINS)),
            html.Div(className="gw-as-chart", children=widgets.graph(lang, id=ids.HOURS)),
            html.Div(className="gw-as-chart", children=[
                html.Label(t("as_trend_of", lang), htmlFor=ids.TREND_IND),
                widgets.dropdown(lang, id=ids.TREND_IND, value="on_time_rate", clearable=False,
                                 options=presenters.indicator_options(TREND_INDICATORS, lang)),
                widgets.graph(lang, id=ids.TREND),
            ]),
            html.Div(className="gw-as-chart", children=widgets.graph(lang, id=ids.CHANGES)),
            html.Div(className="gw-as-chart", children=widgets.graph(lang, id=ids.SCORES)),
        ]),
        dcc.Store(id=ids.CHOSEN, data=chosen),
        dcc.Store(id=ids.SUBJECT, data=subject),
        dcc.Store(id=ids.OPEN_TRACE, data=trace),
        dbc.Modal(id=ids.TRACE, is_open=False, size="xl", scrollable=True, children=[
            dbc.ModalHeader(dbc.ModalTitle(id=ids.TRACE_TITLE), close_button=False),
            dbc.ModalBody(id=ids.TRACE_BODY),
            dbc.ModalFooter(html.Button(t("close", lang), id=ids.TRACE_CLOSE, n_clicks=0,
                                        className="btn btn-secondary btn-sm")),
        ]),
    ]
