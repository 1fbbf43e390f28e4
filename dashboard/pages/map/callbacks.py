"""The map page's callbacks: read inputs → build the request's context → call geodata.mapdata →
shape outputs (``presenters``). No SQL, no shapely here.

The ``*_outputs`` functions are what the Dash callbacks run; they take the app's
:class:`~dashboard.services.Services`, the request's :class:`~dashboard.context.Context` (viewer,
scope, language, time zone) and plain values, so tests call them without a browser.
"""
from __future__ import annotations

import time
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, Patch, State, html, no_update
from dash import ctx as dash_ctx

from geodata.access import accounts
from geodata.codes import level_of
from geodata.maps import layers as map_layers
from geodata.maps import live as map_live
from geodata.maps import markers as map_markers
from geodata.maps import metrics as map_metrics
from geodata.maps import search as map_search
from geodata.workflow import queries
from geodata.workflow.filters import IssueFilter

from ...components import ids as app_ids
from ...components import outbox
from ...components.account import account_menu
from ...components.header import live_note
from ...components.shell import shell
from ...context import LANG_COOKIE, Context, current_context
from ...i18n import t
from ...services import Services
from ...values import bigint_id
from . import ids, layout
from .presenters import (
    asked_for,
    bbox_from_bounds,
    breadcrumb_children,
    choro_target,
    class_breaks,
    filter_from_controls,
    heat_legend,
    heat_shown,
    heat_url,
    heat_version,
    ignored_notice,
    issue_rows,
    legend_children,
    legend_styles,
    marker_note,
    metric_of,
    not_found_notice,
    outline_hideout,
    panel_children,
    parse_query,
    search_options,
    search_target,
    timeline_children,
    url_search,
    view_from_query,
    view_params,
    view_query,
    viewport_for,
    with_issue,
)

#: callbacks that cost next to nothing (no query, or one tiny one; server p95 ≤ 10 ms in bench_map),
#: by their first output's component id: never queued behind heavy ones (``api.limits``) — above
#: all the live poll every open screen sends
LIGHT_CALLBACKS = frozenset({app_ids.STAMP, app_ids.URL, ids.URL_VIEW, ids.URL_NAV, ids.FILTER, ids.LEGEND_CHORO, ids.LEGEND_HEAT,
                             ids.LEGEND_MARKERS, ids.TIMELINE, app_ids.LANG})


# -- cached reference data (keyed by the context's scope) ---------------------------------------
def domain_names(svc: Services, ctx: Context, s: Any) -> dict[str, tuple[str, str]]:
    return svc.cached(ctx, ("domains",), lambda: {d["code"]: (d["name_zh"], d["name_en"]) for d in queries.list_domains(s)})


def grid_names(svc: Services, ctx: Context, s: Any) -> dict[str, tuple[str, str]]:
    return svc.cached(ctx, ("grid_names",), lambda: map_layers.grid_names(s, ctx.scope))


def grid_detail(svc: Services, ctx: Context, s: Any, code: str, stamp: str | None = None
                ) -> map_layers.GridDetail | None:
    """A grid's detail, shared by the selection and the panel callbacks (one load per selection
    and live stamp, not one per callback)."""
    return svc.cached(ctx, ("grid_detail", code, stamp), lambda: map_layers.grid_detail(s, ctx.scope, code))


# -- callback bodies (database through mapdata only) --------------------------------------------
def context_data(svc: Services, ctx: Context, stamp: str | None = None) -> layout.MapContextData:
    """What the body needs, read fresh, except the street's detail: through the cache with the
    page's live ``stamp``, so that the selection callback finds it loaded."""
    with svc.session(ctx) as s:
        street = map_layers.street_code(s, ctx.scope)
        detail = grid_detail(svc, ctx, s, street, stamp) if street else None
        names = map_layers.grid_names(s, ctx.scope)
        return layout.MapContextData(
            street_code=street,
            street_names=(detail.name, detail.name_en) if detail else ("", ""),
            street_bbox=detail.bbox if detail else None,
            domains=[(d["code"], d["name_zh"], d["name_en"]) for d in queries.list_domains(s)],
            block_names={c: n for c, n in names.items() if level_of(c) == 3},
            grids_stamp=map_layers.grids_stamp(s),
            outbox_count=outbox.count(s, ctx))


def page_layout(svc: Services, ctx: Context) -> Any:
    """The whole page in the context's language (the Dash layout function). While the database is
    down: the page with the outage note and an empty map, which the live poll fills in at its return."""
    try:
        with svc.session(ctx) as s:
            stamp = map_live.latest_change(s, ctx.scope)
        return shell(svc.settings, ctx.lang, body_outputs(svc, ctx, None, stamp=stamp),
                     layout.page_stores(ctx.lang), stamp)
    except Exception as exc:   # down_since raises anything but "unreachable" again
        data = layout.MapContextData.unavailable(svc.down_since(exc))
        return shell(svc.settings, ctx.lang, body_outputs(svc, ctx, None, data=data),
                     layout.page_stores(ctx.lang), None, outage=True)


def body_outputs(svc: Services, ctx: Context, filter_data: dict[str, Any] | None,
                 overlays: list[str] | None = None, stamp: str | None = None,
                 data: layout.MapContextData | None = None) -> list[Any]:
    """The body in the context's language, keeping the filter and the ticked overlays (names, either
    language); on ``data`` (read from the database unless given)."""
    keep = layout.overlay_keys(overlays) if isinstance(overlays, list) else None
    return layout.body(svc.settings, ctx.lang, ctx.tz, IssueFilter.from_dict(filter_data),
                       metric_of(filter_data), data or context_data(svc, ctx, stamp), keep, account_menu(ctx))


def selection_outputs(svc: Services, ctx: Context, search: str | None, stamp: str | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any], list[Any], dict[str, Any]]:
    """URL → (selected store, map viewport, breadcrumb, outline hideout)."""
    code, issue_id = parse_query(search)
    asked_grid, asked_issue = asked_for(search)
    with svc.session(ctx) as s:
        detail = grid_detail(svc, ctx, s, code, stamp) if code else None
        found_grid = detail is not None
        if detail is None and (street := map_layers.street_code(s, ctx.scope)):  # the fallback
            detail = grid_detail(svc, ctx, s, street, stamp)
        issue = queries.issue_detail(s, ctx.scope, issue_id) if issue_id else None
        bad = view_from_query(search, set(domain_names(svc, ctx, s)))[2] if view_params(search) else []
    if detail is None:
        return {}, no_update, [], outline_hideout({}, ctx.lang)
    shown = detail.name if ctx.lang == "zh" else detail.name_en
    notice = not_found_notice(None if found_grid else asked_grid, None if issue else asked_issue, shown, ctx.lang)
    selected = {"code": detail.code, "level": detail.level, "parent": detail.parent_code,
                "bbox": list(detail.bbox), "issue": issue.issue.id if issue else None}
    if issue is not None:
        viewport = {"center": [issue.lat, issue.lon], "zoom": 18, "transition": "flyTo",
                    "options": {"duration": 0.35}}
    else:
        viewport = viewport_for(detail.bbox)
    crumbs = breadcrumb_children(detail.path, ctx.lang)
    notices = [n for n in (notice, ignored_notice(bad, ctx.lang)) if n is not None]
    return (selected, viewport, [*notices, *crumbs], outline_hideout(selected, ctx.lang))


def choropleth_outputs(svc: Services, ctx: Context, selected: dict[str, Any] | None,
                       filter_data: dict[str, Any] | None
                       ) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """(community choropleth hideout, block choropleth hideout, legend)."""
    metric = metric_of(filter_data)
    level, parent = choro_target(selected)
    with svc.session(ctx) as s:
        metrics = map_metrics.grid_metrics(s, ctx.scope, IssueFilter.from_dict(filter_data), level, parent,
                                           tz=ctx.tz)
    values = map_metrics.metric_values(metrics, metric)
    breaks, colors = class_breaks(values, metric)
    hideout = {"values": values, "breaks": breaks, "colors": colors}
    empty = {"values": {}, "breaks": [], "colors": []}
    legend = legend_children(metric, breaks, colors, ctx.lang, any(v is None for v in values.values()))
    return (hideout, empty, legend) if level == 2 else (empty, hideout, legend)


def marker_outputs(svc: Services, ctx: Context, bounds: list[list[float]] | None,
                   filter_data: dict[str, Any] | None, selected: dict[str, Any] | None
                   ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(point markers, aggregated cells, note) for the viewport."""
    bbox = bbox_from_bounds(bounds) or tuple((selected or {}).get("bbox") or ()) or None
    empty = {"type": "FeatureCollection", "features": []}
    if not bbox:
        return empty, empty, ""
    with svc.session(ctx) as s:
        res = map_markers.markers(s, ctx.scope, IssueFilter.from_dict(filter_data), bbox,
                                  limit=svc.settings.max_markers, tz=ctx.tz)
    if res.mode == "points":
        return res.data, empty, marker_note(res, ctx.lang)
    return empty, res.data, marker_note(res, ctx.lang)


def heat_outputs(svc: Services, ctx: Context, filter_data: dict[str, Any] | None, stamp: str | None,
                 shown: bool = True, trigger: str | None = None) -> tuple[Any, Any]:
    """(heat tile URL, heat legend). The legend's scale (a density query) is only computed while the
    heat layer is ``shown``; hidden, the URL (no query) still follows the filter and stamp, so the
    tiles are right the moment the layer is ticked, and ticking it (``trigger`` the overlays store)
    computes the legend."""
    flt = IssueFilter.from_dict(filter_data)
    if not shown:
        return (no_update if trigger == ids.OVERLAYS else heat_url(flt, stamp)), no_update
    with svc.session(ctx) as s:   # the tiles' own cache: legend and tiles share one density query
        scale = svc.tiles.heat_scale(s, ctx.scope, flt, heat_version(stamp))
    return heat_url(flt, stamp), heat_legend(scale, ctx.lang)


def panel_outputs(svc: Services, ctx: Context, selected: dict[str, Any] | None,
                  filter_data: dict[str, Any] | None, stamp: str | None = None
                  ) -> tuple[list[Any], list[dict[str, Any]]]:
    if selected is None:          # nothing selected yet (the page is loading, or the database is down)
        return [], []
    code = selected.get("code")
    if not code:
        return [html.P(t("not_found", ctx.lang))], []
    flt = IssueFilter.from_dict(filter_data)
    with svc.session(ctx) as s:
        detail = grid_detail(svc, ctx, s, code, stamp)   # usually loaded by the selection already
        if detail is None:
            return [html.P(t("not_found", ctx.lang))], []
        counts = map_metrics.grid_counts(s, ctx.scope, flt, code, tz=ctx.tz)
        rows = queries.latest_issues(s, ctx.scope, flt, code, tz=ctx.tz, limit=50)
        domains = domain_names(svc, ctx, s)
        names = grid_names(svc, ctx, s)
        shown = sum(1 for o in detail.officials if o.phone) if ctx.scope.personal_data else 0
        if shown and ctx.viewer.account_id is not None:   # phones shown: one audit row for the panel
            accounts.audit_personal_view(s, ctx.viewer.account_id, "official_phone", grid_code=code, count=shown,
                                         via="map.panel")
            s.commit()
    return (panel_children(detail, counts, ctx.lang, domains, ctx.scope.personal_data),
            issue_rows(rows, ctx.lang, ctx.tz, domains, names))


def timeline_outputs(svc: Services, ctx: Context, issue_id: int) -> tuple[bool, str, list[Any]]:
    with svc.session(ctx) as s:
        d = queries.issue_detail(s, ctx.scope, issue_id)
        if d is None:
            return False, "", []
        domains = domain_names(svc, ctx, s)
        names = grid_names(svc, ctx, s)
    title, children = timeline_children(d, ctx.lang, ctx.tz, domains, names)
    return True, title, children


def search_outputs(svc: Services, ctx: Context, q: str | None) -> list[dict[str, str]]:
    if not q or len(q.strip()) < 1:
        return []
    with svc.session(ctx) as s:
        return search_options(map_search.search(s, ctx.scope, q, limit=8), ctx.lang)


def navigate_outputs(svc: Services, ctx: Context, trigger: str | None, search_value: str | None,
                     click: dict[str, Any] | None, current: str | None) -> tuple[Any, Any, Any]:
    """A grid click or a picked search result → (URL search, search box value, map viewport).

    A picked result is cleared from the search box, so picking the same result again is a new
    selection; if the URL already shows it, the map flies there again (the URL does not change)."""
    view = view_params(current)
    if trigger == ids.SEARCH:
        target = search_target(search_value, view)
        if target is None:
            return no_update, no_update, no_update      # the box was cleared (by us, or the user)
        if target == (current or ""):
            return no_update, None, selection_outputs(svc, ctx, target)[1]
        return target, None, no_update
    code = ((click or {}).get("properties") or {}).get("code")
    target = url_search(code, view=view) if code else None
    if target is None:
        return no_update, no_update, no_update
    if target == (current or ""):          # the grid shown already: fly back to it
        return no_update, no_update, selection_outputs(svc, ctx, target)[1]
    return target, no_update, no_update


def view_outputs(svc: Services, ctx: Context, search: str | None, filter_data: dict[str, Any] | None,
                 overlays: list[str] | None, version: int | None, stamp: str | None = None,
                 source: str | None = None) -> tuple[Any, Any, Any, Any]:
    """The URL's view (opened from a link, or Back/Forward) → (body, body version, filter store,
    overlays store) when it differs from what is shown; the body is rebuilt with the URL's filter
    and layers ticked (as for a language switch). Invalid values are ignored (the selection's
    notice names them).

    ``source`` is the URL this last read: when the URL's view is still that one (a grid clicked,
    an issue opened), the view did not change and the stores stay — a layer ticked or a filter set
    whose URL write is still on its way is the user's latest word, not something to undo."""
    with svc.session(ctx) as s:
        domains = set(domain_names(svc, ctx, s))
    wanted, keys, _bad = view_from_query(search, domains)
    view = view_query(wanted, keys)
    if source is not None and view == view_query(*view_from_query(source, domains)[:2]):
        return no_update, no_update, no_update, no_update
    shown = layout.overlay_keys(overlays) if isinstance(overlays, list) else list(layout.DEFAULT_OVERLAYS)
    if view == view_query(filter_data, shown):
        return no_update, no_update, no_update, no_update
    body = body_outputs(svc, ctx, wanted, layout.overlay_names(keys, ctx.lang), stamp)
    return body, (version or 0) + 1, wanted, layout.overlay_names(keys, ctx.lang)


def url_outputs(filter_data: dict[str, Any] | None, overlays: list[str] | None, current: str | None,
                source: str | None = None) -> Any:
    """The filter or the layers changed → the URL's query with the view (grid and issue kept; the
    browser merges the view into the URL as it is by then, ``mergeView``), a new history entry;
    unchanged: no update. ``source`` is the URL query the stores were last read
    from: stores that show just that view were set from the URL (Back/Forward), not by the user,
    and never write it back — after several quick Backs the URL may have moved on already, and
    writing an older view would cut the history."""
    keys = layout.overlay_keys(overlays) if isinstance(overlays, list) else None
    view = view_query(filter_data, keys)
    domains = set((filter_data or {}).get("domains") or ())

    def read(search: str | None) -> tuple[dict[str, str], list[str]]:
        """A URL's view as the view callback reads it (invalid values ignored) and its layers."""
        flt, layer_keys, _bad = view_from_query(search, domains)
        return view_query(flt, layer_keys), layer_keys

    if source is not None and read(source)[0] == view:
        return no_update
    # what the URL shows already
    shown, shown_keys = read(current)
    if shown == view_query(filter_data, keys if keys is not None else shown_keys):
        return no_update
    code, issue = parse_query(current)
    return url_search(code, issue, view=view)


def live_outputs(svc: Services, ctx: Context, stamp: str | None, outage: bool = False,
                 filter_data: dict[str, Any] | None = None, overlays: list[str] | None = None,
                 version: int | None = 0) -> tuple[Any, Any, Any, Any, Any]:
    """A live poll → (stamp, live note, outage flag, body, body version).

    Database down: the outage note, everything else kept. Back after an outage: the body rebuilt
    (as for a language switch, keeping filter and layers), so every part — grids, selection from
    the URL, choropleth, panel — is loaded again, whatever failed meanwhile."""
    try:
        with svc.session(ctx) as s:
            new = map_live.latest_change(s, ctx.scope)
    except Exception as exc:   # down_since raises anything but "unreachable" again
        note = live_note(ctx.lang, ctx.tz, svc.down_since(exc))
        return no_update, note, (no_update if outage else True), no_update, no_update
    if outage:
        body = body_outputs(svc, ctx, filter_data, overlays, new)
        return new, no_update, False, body, (version or 0) + 1
    note = live_note(ctx.lang, ctx.tz)
    return (no_update if new == stamp else new), note, no_update, no_update, no_update


# -- registration --------------------------------------------------------------------------------
def register(app: Dash, svc: Services) -> None:
    def at(lang: str | None) -> Context:   # the request's context, in the page's language
        return current_context(svc.settings, lang)

    @app.callback(Output(app_ids.BODY, "children"), Output(app_ids.BODY_VERSION, "data"),
                  Input(app_ids.LANG, "value"), State(ids.FILTER, "data"),
                  State(app_ids.BODY_VERSION, "data"), State(ids.OVERLAYS, "data"),
                  State(app_ids.STAMP, "data"), prevent_initial_call=True)
    def _body(lang, filter_data, version, overlays, stamp):
        ctx = at(lang)
        # remembered for the next page load (the layout is built in this language)
        dash_ctx.response.set_cookie(LANG_COOKIE, ctx.lang, max_age=365 * 86400, samesite="Lax")
        return body_outputs(svc, ctx, filter_data, overlays, stamp), (version or 0) + 1

    @app.callback(Output(ids.FILTER, "data"), Output(ids.F_DATE, "value"),
                  Input(ids.F_KIND, "value"), Input(ids.F_DOMAINS, "value"),
                  Input(ids.F_STATUSES, "value"), Input(ids.F_DATE, "value"),
                  Input(ids.F_OVERDUE, "value"), Input(ids.METRIC, "value"),
                  Input(ids.F_RANGE, "start_date"), Input(ids.F_RANGE, "end_date"),
                  State(ids.FILTER, "data"), prevent_initial_call=True)
    def _filter(kind, domains, statuses, preset, overdue, metric, start, end, old):
        picked = dash_ctx.triggered_id == ids.F_RANGE and (start or end)
        if picked:
            preset = "custom"   # picking dates switches the period to the custom range
        new = filter_from_controls(kind, domains, statuses, preset, overdue, metric, start, end)
        return (no_update if new == old else new), ("custom" if picked else no_update)

    # the URL a grid click or a picked result wants, merged into the URL as it is by then (a layer
    # ticked while this was on its way stays; a nonce: the same place asked again is a new ask)
    @app.callback(Output(ids.URL_NAV, "data"), Output(ids.SEARCH, "value"),
                  Output(ids.MAP, "viewport", allow_duplicate=True),
                  # clicks counted, not the clicked feature: clicking the same grid again (after Back
                  # or the breadcrumb) is a new click although its clickData is unchanged
                  Input(ids.L_COMMUNITY, "n_clicks"), Input(ids.L_BLOCK, "n_clicks"),
                  Input(ids.SEARCH, "value"), State(ids.L_COMMUNITY, "clickData"),
                  State(ids.L_BLOCK, "clickData"), State(app_ids.URL, "search"), State(app_ids.LANG, "value"),
                  prevent_initial_call=True)
    def _navigate(_community_clicks, _block_clicks, search_value, community_click, block_click, current, lang):
        trigger = dash_ctx.triggered_id
        click = community_click if trigger == ids.L_COMMUNITY else block_click
        url, value, viewport = navigate_outputs(svc, at(lang), trigger, search_value, click, current)
        return (url if url is no_update else {"q": url, "n": time.monotonic_ns()}), value, viewport

    app.clientside_callback(
        ClientsideFunction(namespace="gridwatch", function_name="mergeNav"),
        Output(app_ids.URL, "search"), Input(ids.URL_NAV, "data"), prevent_initial_call=True)

    @app.callback(Output(ids.SELECTED, "data"), Output(ids.MAP, "viewport"),
                  Output(ids.BREADCRUMB, "children"), Output(ids.L_COMMUNITY, "hideout"),
                  Output(ids.L_BLOCK, "hideout"), Output(ids.L_MARKERS, "hideout"),
                  Input(app_ids.URL, "search"), Input(app_ids.BODY_VERSION, "data"),
                  State(app_ids.LANG, "value"), State(app_ids.STAMP, "data"))
    def _select(search, _version, lang, stamp):
        selected, viewport, crumbs, outline = selection_outputs(svc, at(lang), search, stamp)
        focus = Patch()
        focus["focus"] = selected.get("issue") if selected else None
        return selected, viewport, crumbs, outline, outline, focus

    @app.callback(Output(ids.L_CHORO_COMMUNITY, "hideout"), Output(ids.L_CHORO_BLOCK, "hideout"),
                  Output(ids.LEGEND_CHORO, "children"),
                  Input(ids.SELECTED, "data"), Input(ids.FILTER, "data"), Input(app_ids.STAMP, "data"),
                  State(app_ids.LANG, "value"))
    def _choropleth(selected, filter_data, _stamp, lang):
        return choropleth_outputs(svc, at(lang), selected, filter_data)

    # The map reports its bounds on every moveend: several per fly-to or resize, often the same
    # view. Only a settled, changed view reaches the markers query.
    app.clientside_callback(
        ClientsideFunction(namespace="gridwatch", function_name="settledBounds"),
        Output(ids.VIEW, "data"), Input(ids.MAP, "bounds"), State(ids.VIEW, "data"))

    @app.callback(Output(ids.L_MARKERS, "data"), Output(ids.L_BINS, "data"),
                  Output(ids.MARKER_NOTE, "children"),
                  Input(ids.VIEW, "data"), Input(ids.FILTER, "data"), Input(app_ids.STAMP, "data"),
                  State(ids.SELECTED, "data"), State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _markers(bounds, filter_data, _stamp, selected, lang):
        return marker_outputs(svc, at(lang), bounds, filter_data, selected)

    @app.callback(Output(ids.L_HEAT, "url"), Output(ids.LEGEND_HEAT, "children"),
                  Input(ids.FILTER, "data"), Input(app_ids.STAMP, "data"), Input(ids.OVERLAYS, "data"),
                  State(app_ids.LANG, "value"))
    def _heat(filter_data, stamp, overlays, lang):
        only = set(dash_ctx.triggered_prop_ids.values())     # several inputs may fire together
        trigger = only.pop() if len(only) == 1 else None
        return heat_outputs(svc, at(lang), filter_data, stamp, heat_shown(overlays), trigger)

    @app.callback(Output(ids.LEGEND_CHORO, "style"), Output(ids.LEGEND_HEAT, "style"),
                  Output(ids.LEGEND_MARKERS, "style"), Output(ids.MARKER_NOTE, "style"),
                  Input(ids.OVERLAYS, "data"), Input(app_ids.BODY_VERSION, "data"),
                  State(app_ids.LANG, "value"))
    def _legends_visible(overlays, _version, lang):
        return legend_styles(overlays, lang)

    @app.callback(Output(ids.PANEL, "children"), Output(ids.ISSUES, "rowData"),
                  Input(ids.SELECTED, "data"), Input(ids.FILTER, "data"), Input(app_ids.STAMP, "data"),
                  State(app_ids.LANG, "value"))
    def _panel(selected, filter_data, stamp, lang):
        return panel_outputs(svc, at(lang), selected, filter_data, stamp)

    @app.callback(Output(ids.TIMELINE, "is_open"), Output(ids.TIMELINE_TITLE, "children"),
                  Output(ids.TIMELINE_BODY, "children"), Output(app_ids.URL, "search", allow_duplicate=True),
                  Input(ids.ISSUES, "cellClicked"), Input(ids.OPEN_ISSUE, "data"),
                  Input(ids.TIMELINE_CLOSE, "n_clicks"), State(app_ids.URL, "search"),
                  State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _timeline(cell, asked, _close, current, lang):
        """A row of the issue list or a popup's link → the timeline, the issue in the URL (so the
        map flies to it and the link can be shared); closing it leaves the URL as it is."""
        trigger = dash_ctx.triggered_id
        if trigger == ids.TIMELINE_CLOSE:
            return False, no_update, no_update, no_update
        issue_id = bigint_id(str((cell or {}).get("rowId") or "")) if trigger == ids.ISSUES else (asked or {}).get("id")
        if not issue_id:
            return no_update, no_update, no_update, no_update
        shown, title, body = timeline_outputs(svc, at(lang), issue_id)
        url = with_issue(current, issue_id) if shown else no_update
        return shown, title, body, (no_update if url == current else url)

    @app.callback(Output(app_ids.BODY, "children", allow_duplicate=True),
                  Output(app_ids.BODY_VERSION, "data", allow_duplicate=True),
                  Output(ids.FILTER, "data", allow_duplicate=True), Output(ids.OVERLAYS, "data", allow_duplicate=True),
                  Output(ids.VIEW_SOURCE, "data"),
                  Input(app_ids.URL, "search"), State(ids.FILTER, "data"), State(ids.OVERLAYS, "data"),
                  State(app_ids.BODY_VERSION, "data"), State(app_ids.LANG, "value"), State(app_ids.STAMP, "data"),
                  State(ids.VIEW_SOURCE, "data"), prevent_initial_call="initial_duplicate")
    def _view(search, filter_data, overlays, version, lang, stamp, source):
        return *view_outputs(svc, at(lang), search, filter_data, overlays, version, stamp, source), search or ""

    @app.callback(Output(ids.URL_VIEW, "data"),
                  Input(ids.FILTER, "data"), Input(ids.OVERLAYS, "data"), State(app_ids.URL, "search"),
                  State(ids.VIEW_SOURCE, "data"), prevent_initial_call=True)
    def _url(filter_data, overlays, current, source):
        return url_outputs(filter_data, overlays, current, source)

    # merged into the URL as it is by then (a grid clicked while this was on its way stays)
    app.clientside_callback(
        ClientsideFunction(namespace="gridwatch", function_name="mergeView"),
        Output(app_ids.URL, "search", allow_duplicate=True), Input(ids.URL_VIEW, "data"),
        prevent_initial_call=True)

    @app.callback(Output(ids.SEARCH, "options"), Input(ids.SEARCH, "search_value"),
                  State(app_ids.LANG, "value"), prevent_initial_call=True)
    def _search(q, lang):
        if not q:
            return no_update
        return search_outputs(svc, at(lang), q)

    @app.callback(Output(app_ids.STAMP, "data"), Output(app_ids.LIVE_NOTE, "children"),
                  Output(app_ids.OUTAGE, "data"),
                  Output(app_ids.BODY, "children", allow_duplicate=True),
                  Output(app_ids.BODY_VERSION, "data", allow_duplicate=True),
                  Input(app_ids.LIVE, "n_intervals"), State(app_ids.STAMP, "data"),
                  State(app_ids.LANG, "value"), State(app_ids.OUTAGE, "data"), State(ids.FILTER, "data"),
                  State(ids.OVERLAYS, "data"), State(app_ids.BODY_VERSION, "data"),
                  prevent_initial_call=True)   # the page (and a rebuilt body) already carry stamp and note
    def _live(_n, stamp, lang, outage, filter_data, overlays, version):
        return live_outputs(svc, at(lang), stamp, bool(outage), filter_data, overlays, version)

