"""The assessment page's callbacks: read inputs → the request's context → one call of
``geodata.assessment.views`` → shape outputs (``presenters``). No SQL here.

Who may: the page and every callback need ``view_assessment`` (checked on the server for each
request: :func:`allowed`); saving a 定性 score needs ``assess`` on the subject's grids, which
``views.enter_qualitative`` checks; the bulletin buttons are shown to ``assess`` / ``send_notices``
holders, and the bulletin route checks again (``bulletin_route``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from dash import Dash, Input, Output, State, dcc, no_update
from dash import ctx as dash_ctx

from geodata.access.capabilities import ASSESS, SEND_NOTICES, VIEW_ASSESSMENT
from geodata.assessment import views
from geodata.assessment.periods import parse_period
from geodata.assessment.registry import INDICATORS
from geodata.errors import DomainError
from geodata.maps import layers as map_layers

from ...auth import csrf_field
from ...components import ids as app_ids
from ...components.account import account_menu
from ...context import LANG_COOKIE, Context, current_context, request_principal
from ...i18n import t
from ...services import Services
from . import ids, layout, presenters

#: callbacks that cost nothing (no query): never queued behind heavy ones
LIGHT_CALLBACKS = frozenset({ids.PERIOD, ids.CHOSEN, ids.TRACE})


def allowed(capability: str = VIEW_ASSESSMENT) -> bool:
    return request_principal().may(capability)


def today(ctx: Context) -> dt.date:
    return dt.datetime.now(ctx.tz).date()


def ranking_of(svc: Services, ctx: Context, s: Any, period: Any, level: str, version: int | None = None) -> Any:
    """The level's ranking, shared by the callbacks one pick fires (ranking, charts, a number's
    records) for ``svc.ttl_s``; a saved 定性 score bumps ``version``, so it is read again."""
    return svc.cached(ctx, ("assessment", period.key, level, version or 0),
                      lambda: views.ranking(s, ctx.scope, period, level, tz=ctx.tz))


def _error_text(exc: DomainError, lang: str) -> str:
    return exc.message_zh if lang == "zh" else exc.message_en


# -- callback bodies --------------------------------------------------------------------------------
def body_outputs(ctx: Context, chosen: dict[str, Any] | None = None, *, subject: str | None = None,
                 trace: dict[str, str] | None = None, note: str = "") -> list[Any]:
    if not allowed():
        return layout.refused(ctx.lang, account_menu(ctx))
    chosen = {"period": (chosen or {}).get("period") or presenters.default_period(today(ctx)),
              "level": (chosen or {}).get("level") or layout.DEFAULT_LEVEL}
    return layout.body(ctx.lang, ctx.tz, chosen, today(ctx), account_menu(ctx), can_assess=allowed(ASSESS),
                       can_issue=allowed(ASSESS) or allowed(SEND_NOTICES), subject=subject, trace=trace, note=note)


def url_outputs(ctx: Context, search: str | None) -> Any:
    """A link's view (``?period=&level=&subject=&indicator=``, e.g. from a bulletin): the body for
    it — its period and level picked, its subject's scorecard, its number's records opened;
    invalid values ignored and named. A URL naming none of them leaves the page as it is."""
    chosen, subject, indicator, bad = presenters.view_from_query(search)
    if chosen is None and subject is None and not bad:
        return no_update
    trace = {"subject": subject, "indicator": indicator} if indicator else None
    note = t("url_ignored", ctx.lang, fields="、".join(bad) if ctx.lang == "zh" else ", ".join(bad)) if bad else ""
    return body_outputs(ctx, chosen, subject=subject, trace=trace, note=note)


def page_layout(svc: Services, ctx: Context) -> Any:
    return layout.page(ctx.lang, body_outputs(ctx))


def period_outputs(ctx: Context, kind: str | None, current: str | None) -> tuple[Any, Any, Any, Any]:
    """A kind picked → (period options, period value, period dropdown style, custom range style)."""
    kind = kind or "month"
    opts = presenters.period_options(kind, today(ctx), ctx.lang)
    if kind == "custom":
        return [], None, {"display": "none"}, {}
    keep = current if any(o["value"] == current for o in opts) else (
        presenters.default_period(today(ctx)) if kind == "month" else opts[0]["value"])
    return opts, keep, {}, {"display": "none"}


def chosen_outputs(ctx: Context, kind: str | None, period: str | None, start: str | None, end: str | None,
                   level: str | None, old: dict[str, Any] | None) -> tuple[Any, str]:
    """The pickers → (the chosen store, the note: a bad choice said, the store kept)."""
    try:
        key = presenters.chosen_period(kind, period, start, end)
        views.level_by(level or "")
    except DomainError as exc:
        return no_update, _error_text(exc, ctx.lang)
    new = {"period": key, "level": level}
    return (no_update if new == old else new), ""


def ranking_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None,
                    version: int | None = None) -> tuple[Any, ...]:
    """(rows, columns, 优秀, 通报, KPIs, scores chart, 定性 subjects, bulletin buttons)."""
    if not allowed() or not chosen:
        return [], [], [], [], [], presenters.go.Figure(), [], []
    period, level = parse_period(chosen["period"]), chosen["level"]
    with svc.session(ctx) as s:
        r = ranking_of(svc, ctx, s, period, level, version)
    forms = presenters.bulletin_form(period.key, level, csrf_field(), ctx.lang) \
        if allowed(ASSESS) or allowed(SEND_NOTICES) else []
    return (presenters.ranking_rows(r, ctx.lang), presenters.column_defs(ctx.lang, level),
            presenters.excellent_items(r, ctx.lang), presenters.named_items(r, ctx.lang),
            presenters.kpi_children(r, ctx.lang), presenters.scores_figure(r, ctx.lang),
            presenters.subject_options(r), forms)


def chart_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None, indicator: str | None,
                  subject: str | None, version: int | None = None) -> tuple[Any, Any]:
    """(the indicator's trend for the clicked subject or the whole level, its 环比/同比 chart)."""
    if not allowed() or not chosen:
        return presenters.go.Figure(), presenters.go.Figure()
    period, level = parse_period(chosen["period"]), chosen["level"]
    indicator = indicator or "on_time_rate"
    with svc.session(ctx) as s:
        r = ranking_of(svc, ctx, s, period, level, version)
        key = subject if any(x.key == subject for x in r.rows) else None
        points = views.trend(s, ctx.scope, period, level, indicator, key, tz=ctx.tz)
    name = next((x.name for x in r.rows if x.key == key), None)
    return (presenters.trend_figure(points, indicator, name, ctx.lang),
            presenters.changes_figure(r, key, ctx.lang))


def card_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None, subject: str | None,
                 version: int | None = None) -> tuple[Any, ...]:
    """(communities' map hideout, blocks' map hideout, scorecard, cases by domain, handling time)
    for the picked subject (none picked: the whole level's charts and a hint in the card)."""
    empty = presenters.go.Figure()
    if not allowed() or not chosen:
        return {"show": False}, {"show": False}, [], empty, empty
    period, level = parse_period(chosen["period"]), chosen["level"]
    with svc.session(ctx) as s:
        r = ranking_of(svc, ctx, s, period, level, version)
        key = subject if any(x.key == subject for x in r.rows) else None
        prof = svc.cached(ctx, ("assessment-profile", period.key, level, key),
                          lambda: views.profile(s, ctx.scope, period, level, key, tz=ctx.tz))
        names = svc.cached(ctx, ("grid_names",), lambda: map_layers.grid_names(s, ctx.scope)) \
            if level.startswith("official") and key else {}
    who = next((x.name for x in r.rows if x.key == key), None)
    h2, h3 = presenters.score_map(r, key, ctx.lang)
    grid_names = {c: (n[0] if ctx.lang == "zh" else n[1]) for c, n in names.items()}
    return (h2, h3, presenters.scorecard_children(r, key, grid_names, ctx.lang),
            presenters.domains_figure(prof, who, ctx.lang), presenters.hours_figure(prof, who, ctx.lang))


def map_pick_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None,
                     feature: dict[str, Any] | None, version: int | None = None) -> Any:
    """A grid clicked on the score map → the subject store (the grid, or the block's leader)."""
    if not allowed() or not chosen or not isinstance(feature, dict):
        return no_update
    code = (feature.get("properties") or {}).get("code")
    if not isinstance(code, str):
        return no_update
    period, level = parse_period(chosen["period"]), chosen["level"]
    with svc.session(ctx) as s:
        r = ranking_of(svc, ctx, s, period, level, version)
    key = presenters.subject_of_grid(r, code)
    return no_update if key is None else key


def trace_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None, cell: dict[str, Any] | None,
                  version: int | None = None) -> tuple[Any, Any, Any, Any]:
    """A clicked cell → (modal open, title, body, the subject store). A number of an indicator
    column opens its records; any other cell of a row picks the row for the charts."""
    if not allowed() or not chosen or not cell:
        return no_update, no_update, no_update, no_update
    key, col = cell.get("rowId"), cell.get("colId")
    if not key:
        return no_update, no_update, no_update, no_update
    if col not in presenters.RANK_INDICATORS:
        return no_update, no_update, no_update, key
    return records_outputs(svc, ctx, chosen, key, col, version)


def records_outputs(svc: Services, ctx: Context, chosen: dict[str, Any], key: str | None, col: str,
                    version: int | None = None) -> tuple[Any, Any, Any, Any]:
    """The records behind indicator ``col`` of subject ``key`` (None: the level's total, the KPI
    strip's): (modal open, title, body, subject)."""
    if col not in INDICATORS:
        return no_update, no_update, no_update, no_update
    period, level = parse_period(chosen["period"]), chosen["level"]
    with svc.session(ctx) as s:
        r = ranking_of(svc, ctx, s, period, level, version)
        row = next((x for x in r.rows if x.key == key), None)
        if key is not None and row is None:
            return no_update, no_update, no_update, no_update
        view = views.traced(s, ctx.scope, col, period, level, key, tz=ctx.tz)
    name = row.name if row is not None else t("as_all_of_level", ctx.lang)
    title, body = presenters.trace_children(view, name, period, ctx.lang, ctx.tz)
    return True, title, body, key if key is not None else no_update


def qualitative_outputs(svc: Services, ctx: Context, clicks: int | None, chosen: dict[str, Any] | None,
                        subject: str | None, score: float | int | None, comment: str | None,
                        version: int | None) -> tuple[Any, Any]:
    """Save → (the message, the version that reloads the ranking). Every check is on the server
    (``views.enter_qualitative``): capability, subject, score, comment; a refusal writes nothing."""
    if not clicks:
        return no_update, no_update
    p = request_principal()
    if not p.may(VIEW_ASSESSMENT) or not p.may(ASSESS):
        return _alert(t("as_q_forbidden", ctx.lang), True), no_update
    try:
        with svc.session(ctx) as s, s.begin():
            e = views.enter_qualitative(s, ctx.scope, p.grants, p.official_id, period=(chosen or {}).get("period"),
                                        level=(chosen or {}).get("level"), key=subject, score_value=score,
                                        comment=comment, tz=ctx.tz)
    except DomainError as exc:
        return _alert(_error_text(exc, ctx.lang), True, exc.field), no_update
    return _alert(t("as_q_saved", ctx.lang, score=f"{e.score:g}"), False), (version or 0) + 1


def _alert(text: str, error: bool, field: str | None = None) -> Any:
    from dash import html

    return html.Div(text, role="alert" if error else "status", id="as-q-message",
                    className="gw-as-error" if error else "gw-as-ok", **({"data-field": field} if field else {}))


def export_outputs(svc: Services, ctx: Context, chosen: dict[str, Any] | None) -> Any:
    if not allowed() or not chosen:
        return no_update
    period, level = parse_period(chosen["period"]), chosen["level"]
    with svc.session(ctx) as s:
        r = views.ranking(s, ctx.scope, period, level, tz=ctx.tz)
    cols = presenters.column_defs(ctx.lang, level)
    data = presenters.xlsx_bytes(presenters.ranking_rows(r, ctx.lang), cols,
                                 f"{t('as_title', ctx.lang)} · {period.label(ctx.lang)}", sheet=t("as_ranking", ctx.lang))
    return dcc.send_bytes(data, f"assessment-{period.key}-{level.replace(':', '-')}.xlsx")


# -- registration --------------------------------------------------------------------------------------
def register(app: Dash, svc: Services) -> None:
    def at(lang: str | None) -> Context:
        return current_context(svc.settings, lang)

    @app.callback(Output(ids.BODY, "children"), Input(app_ids.LANG, "value"), State(ids.CHOSEN, "data"),
                  prevent_initial_call=True)
    def _body(lang, chosen):
        ctx = at(lang)
        dash_ctx.response.set_cookie(LANG_COOKIE, ctx.lang, max_age=365 * 86400, samesite="Lax")
        return body_outputs(ctx, chosen)

    @app.callback(Output(ids.PERIOD, "options"), Output(ids.PERIOD, "value"), Output(ids.PERIOD, "style"),
                  Output(ids.RANGE + "-wrap", "style"),
                  Input(ids.KIND, "value"), State(ids.PERIOD, "value"), State(app_ids.LANG, "value"),
                  prevent_initial_call=True)
    def _periods(kind, current, lang):
        return period_outputs(at(lang), kind, current)

    @app.callback(Output(ids.CHOSEN, "data"), Output(ids.PERIOD_NOTE, "children"),
                  Input(ids.KIND, "value"), Input(ids.PERIOD, "value"), Input(ids.RANGE, "start_date"),
                  Input(ids.RANGE, "end_date"), Input(ids.LEVEL, "value"), State(ids.CHOSEN, "data"),
                  State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _chosen(kind, period, start, end, level, old, lang):
        return chosen_outputs(at(lang), kind, period, start, end, level, old)

    @app.callback(Output(ids.RANKING, "rowData"), Output(ids.RANKING, "columnDefs"),
                  Output(ids.EXCELLENT, "children"), Output(ids.NAMED, "children"),
                  Output(ids.KPIS, "children"), Output(ids.SCORES, "figure"),
                  Output(ids.Q_SUBJECT, "options"), Output(ids.BULLETIN_PDF, "children"),
                  Input(ids.CHOSEN, "data"), Input(ids.Q_VERSION, "data"), State(app_ids.LANG, "value"))
    def _ranking(chosen, version, lang):
        return ranking_outputs(svc, at(lang), chosen, version)

    @app.callback(Output(ids.TREND, "figure"), Output(ids.CHANGES, "figure"),
                  Input(ids.CHOSEN, "data"), Input(ids.TREND_IND, "value"), Input(ids.SUBJECT, "data"),
                  Input(ids.Q_VERSION, "data"), State(app_ids.LANG, "value"))
    def _charts(chosen, indicator, subject, version, lang):
        return chart_outputs(svc, at(lang), chosen, indicator, subject, version)

    @app.callback(Output(ids.MAP_L2, "hideout"), Output(ids.MAP_L3, "hideout"), Output(ids.CARD, "children"),
                  Output(ids.DOMAINS, "figure"), Output(ids.HOURS, "figure"),
                  Input(ids.CHOSEN, "data"), Input(ids.SUBJECT, "data"), Input(ids.Q_VERSION, "data"),
                  State(app_ids.LANG, "value"))
    def _card(chosen, subject, version, lang):
        return card_outputs(svc, at(lang), chosen, subject, version)

    @app.callback(Output(ids.SUBJECT, "data", allow_duplicate=True),
                  Input(ids.MAP_L2, "clickData"), Input(ids.MAP_L3, "clickData"), State(ids.CHOSEN, "data"),
                  State(ids.Q_VERSION, "data"), State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _map_pick(click2, click3, chosen, version, lang):
        feature = click2 if dash_ctx.triggered_id == ids.MAP_L2 else click3
        return map_pick_outputs(svc, at(lang), chosen, feature, version)

    @app.callback(Output(ids.TRACE, "is_open"), Output(ids.TRACE_TITLE, "children"),
                  Output(ids.TRACE_BODY, "children"), Output(ids.SUBJECT, "data"),
                  Input(ids.RANKING, "cellClicked"), State(ids.CHOSEN, "data"), State(ids.Q_VERSION, "data"),
                  State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _trace(cell, chosen, version, lang):
        return trace_outputs(svc, at(lang), chosen, cell, version)

    @app.callback(Output(ids.BODY, "children", allow_duplicate=True), Input(ids.URL, "search"),
                  State(app_ids.LANG, "value"), prevent_initial_call="initial_duplicate")
    def _from_url(search, lang):
        return url_outputs(at(lang), search)

    @app.callback(Output(ids.TRACE, "is_open", allow_duplicate=True), Output(ids.TRACE_TITLE, "children",
                  allow_duplicate=True), Output(ids.TRACE_BODY, "children", allow_duplicate=True),
                  Output(ids.SUBJECT, "data", allow_duplicate=True),
                  Input(ids.OPEN_TRACE, "data"), State(ids.CHOSEN, "data"), State(ids.Q_VERSION, "data"),
                  State(app_ids.LANG, "value"), prevent_initial_call="initial_duplicate")
    def _open_trace(wanted, chosen, version, lang):
        if not wanted:
            return no_update, no_update, no_update, no_update
        if not allowed() or not chosen:
            return no_update, no_update, no_update, no_update
        return records_outputs(svc, at(lang), chosen, wanted.get("subject"), wanted["indicator"], version)

    # the view goes into the URL as it changes (replaceState: no reload, no history entry per pick)
    app.clientside_callback(
        """function (chosen, subject) {
            if (!chosen || !chosen.period) { return window.dash_clientside.no_update; }
            var q = new URLSearchParams({period: chosen.period, level: chosen.level});
            if (subject) { q.set('subject', subject); }
            var next = '?' + q.toString();
            if (window.location.search !== next) { window.history.replaceState(null, '', next); }
            return next;
        }""",
        Output(ids.URL_WRITTEN, "data"), Input(ids.CHOSEN, "data"), Input(ids.SUBJECT, "data"))

    @app.callback(Output(ids.TRACE, "is_open", allow_duplicate=True), Input(ids.TRACE_CLOSE, "n_clicks"),
                  prevent_initial_call=True)
    def _trace_close(_n):
        return False

    @app.callback(Output(ids.Q_RESULT, "children"), Output(ids.Q_VERSION, "data"),
                  Input(ids.Q_SAVE, "n_clicks"), State(ids.CHOSEN, "data"), State(ids.Q_SUBJECT, "value"),
                  State(ids.Q_SCORE, "value"), State(ids.Q_COMMENT, "value"), State(ids.Q_VERSION, "data"),
                  State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _qualitative(clicks, chosen, subject, score, comment, version, lang):
        return qualitative_outputs(svc, at(lang), clicks, chosen, subject, score, comment, version)

    @app.callback(Output(ids.EXPORT_XLSX + "-file", "data"), Input(ids.EXPORT_XLSX, "n_clicks"),
                  State(ids.CHOSEN, "data"), State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _export(clicks, chosen, lang):
        if not clicks:
            return no_update
        return export_outputs(svc, at(lang), chosen)

    # CSV: AG Grid's own export, in the browser (what is shown: sorted and filtered)
    app.clientside_callback(
        "function (n) { return n > 0; }",
        Output(ids.RANKING, "exportDataAsCsv"), Input(ids.EXPORT_CSV, "n_clicks"), prevent_initial_call=True)
