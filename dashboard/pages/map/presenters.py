"""The map page's presenters: plain values in, Dash components and props out. No database, no
request: what the callbacks (``callbacks.py``) shape their answers with, and what tests call directly."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from dash import dcc, html

from geodata.codes import CODE_RE
from geodata.maps import layers as map_layers
from geodata.maps import markers as map_markers
from geodata.maps import metrics as map_metrics
from geodata.maps import search as map_search
from geodata.maps.metrics import METRICS
from geodata.vocab import KINDS
from geodata.workflow import filters, queries
from geodata.workflow.filters import IssueFilter
from geodata.workflow.rules import STATUSES

from ... import values
from ...components.widgets import explained
from ...i18n import (
    action_label,
    chain_label,
    fmt_area,
    fmt_dt,
    fmt_int,
    fmt_num,
    fmt_pct,
    grid_name,
    kind_label,
    level_label,
    norm_lang,
    role_label,
    status_label,
    t,
)
from ...tiles import HEAT_STOPS
from . import ids, layout

#: Choropleth ramps, kept apart from the heat map's yellow → red (HEAT_STOPS) so that a colour means
#: one thing on the map: counts and densities in blue → purple (ColorBrewer BuPu), the closure rate
#: diverging purple (low, bad) → green (high) (ColorBrewer PRGn).
COUNT_COLORS = ["#edf8fb", "#bfd3e6", "#9ebcda", "#8c96c6", "#8856a7", "#810f7c"]
RATE_BREAKS = [0.6, 0.8, 0.9, 0.95, 0.99]
RATE_COLORS = ["#762a83", "#af8dc3", "#e7d4e8", "#d9f0d3", "#7fbf7b", "#1b7837"]
DEFAULT_METRIC = map_metrics.METRICS[0]


# -- pure shaping helpers ------------------------------------------------------------------------
def parse_query(search: str | None) -> tuple[str | None, int | None]:
    """'?grid=<code>&issue=<id>' → (code, issue id)."""
    q = parse_qs((search or "").lstrip("?"))
    code = (q.get("grid") or [None])[0]
    issue = (q.get("issue") or [None])[0]
    if code is not None and not CODE_RE.match(code):
        code = None
    return code, values.bigint_id(issue)


def asked_for(search: str | None) -> tuple[str | None, str | None]:
    """The raw ``grid`` and ``issue`` values a URL asks for (cut to 20 characters), to say which
    one was not found."""
    q = parse_qs((search or "").lstrip("?"))
    grid, issue = (q.get("grid") or [None])[0], (q.get("issue") or [None])[0]
    return (grid[:20] if grid else None), (issue[:20] if issue else None)


def not_found_notice(grid: str | None, issue: str | None, shown: str, lang: str) -> html.Div | None:
    """The notice above the breadcrumb when the URL names a grid or an issue that is not there
    (or not in the viewer's scope): the map says so instead of silently showing ``shown``."""
    parts = []
    if grid:
        parts.append(t("grid_not_found", lang, code=grid, shown=shown))
    if issue:
        parts.append(t("issue_not_found", lang, id=issue))
    if not parts:
        return None
    return html.Div(" · ".join(parts), className="gw-notice", role="status", id=ids.NOT_FOUND)


def with_issue(search: str | None, issue_id: int) -> str:
    """The URL's query with ``issue`` set to ``issue_id``, its grid and view (filters, layers) kept."""
    code, _ = parse_query(search)
    return url_search(code, issue_id, view=view_params(search))


# -- the view in the URL: filters, metric and layers beside grid and issue ------------------------
#: query keys of the view (IssueFilter.to_query's k d s p f t o, the metric m, the layers l), in order
VIEW_KEYS = ("k", "d", "s", "p", "f", "t", "o", "m", "l")
#: ``l`` when no layer is ticked
NO_LAYERS = "-"


def view_params(search: str | None) -> dict[str, str]:
    """The view part of a URL's query, as it stands (no check: :func:`view_from_query` checks)."""
    q = parse_qs(search.lstrip("?") if isinstance(search, str) else "")
    return {k: q[k][0][:200] for k in VIEW_KEYS if q.get(k)}


def view_query(filter_data: dict[str, Any] | None, overlays: list[str] | None) -> dict[str, str]:
    """The view's query keys for the filter store and the ticked overlay keys; defaults left out,
    so the plain map's URL stays ``?grid=…``."""
    params = IssueFilter.from_dict(filter_data).to_query()
    metric = metric_of(filter_data)
    if metric != DEFAULT_METRIC:
        params["m"] = metric
    if overlays is not None and list(overlays) != list(layout.DEFAULT_OVERLAYS):
        params["l"] = ",".join(overlays) or NO_LAYERS
    return {k: params[k] for k in VIEW_KEYS if k in params}


def view_from_query(search: str | None, domains: set[str] | frozenset[str]
                    ) -> tuple[dict[str, Any], list[str], list[str]]:
    """A URL's view → (filter store, overlay keys, the keys whose values were invalid and ignored).
    Every key is checked alone, so one bad value leaves the others applied."""
    q = view_params(search)
    bad: list[str] = []

    def split(key: str) -> list[str]:
        return [x for x in q.get(key, "").split(",") if x]

    kind = q.get("k")
    if kind and kind not in KINDS:
        bad.append("k")
        kind = None
    picked = split("d")
    if any(d not in domains for d in picked):
        bad.append("d")
    statuses = split("s")
    if any(x not in STATUSES for x in statuses):
        bad.append("s")
    preset = q.get("p")
    if preset and preset not in filters.DATE_PRESETS:
        bad.append("p")
        preset = None
    days = {}
    for key in ("f", "t"):
        v = q.get(key)
        if v and (len(v) != 10 or _iso_date(v) is None):
            bad.append(key)
            v = None
        days[key] = v
    if q.get("o") not in (None, "1"):
        bad.append("o")
    metric = q.get("m")
    if metric and metric not in METRICS:
        bad.append("m")
        metric = None
    layers = split("l")
    if q.get("l") == NO_LAYERS:
        keys: list[str] = []
    elif not layers:
        keys = list(layout.DEFAULT_OVERLAYS)
    elif any(x not in layout.OVERLAY_KEYS for x in layers):
        bad.append("l")
        keys = list(layout.DEFAULT_OVERLAYS)
    else:
        keys = [k for k in layout.OVERLAY_KEYS if k in layers]
    if not preset and (days["f"] or days["t"]):
        preset = "custom"
    data = filter_from_controls(kind, [d for d in picked if d in domains], [x for x in statuses if x in STATUSES],
                                preset, q.get("o") == "1", metric, days["f"], days["t"])
    return data, keys, bad


def ignored_notice(bad: list[str], lang: str) -> html.Div | None:
    """The notice that a URL's invalid view values were ignored (naming their keys)."""
    if not bad:
        return None
    return html.Div(t("url_ignored", lang, fields=", ".join(bad)), className="gw-notice", role="status",
                    id=ids.URL_IGNORED)


def url_search(code: str | None, issue: int | None = None, view: dict[str, str] | None = None) -> str:
    """``?grid=…&issue=…`` and the view's keys (:func:`view_query`), in that order."""
    params: dict[str, Any] = {}
    if code:
        params["grid"] = code
    if issue:
        params["issue"] = issue
    params.update(view or {})
    return ("?" + urlencode(params, safe=",")) if params else ""


def _iso_date(v: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(v[:10]) if v else None
    except ValueError:
        return None


def filter_from_controls(kind: str | None, domains: list[str] | None, statuses: list[str] | None,
                         preset: str | None, overdue: bool | None, metric: str | None,
                         start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """The filter store from the controls; the date range applies when the period is 'custom'."""
    custom = preset == "custom"
    d_from, d_to = (_iso_date(start), _iso_date(end)) if custom else (None, None)
    if d_from and d_to and d_to < d_from:
        d_from, d_to = d_to, d_from
    flt = IssueFilter(kind=kind or None, domains=tuple(domains or ()),
                      statuses=tuple(s for s in (statuses or ()) if s in STATUSES),
                      preset=None if custom else (preset if preset in filters.DATE_PRESETS else None),
                      date_from=d_from, date_to=d_to, overdue=True if overdue else None)
    d = flt.to_dict()
    d["metric"] = metric if metric in METRICS else DEFAULT_METRIC
    return d


def metric_of(filter_data: dict[str, Any] | None) -> str:
    m = (filter_data or {}).get("metric")
    return m if m in METRICS else DEFAULT_METRIC


def _nice(x: float) -> float:
    if x <= 0:
        return 0
    if x < 10:
        return round(x, 1)
    mag = 10 ** (int(math.log10(x)) - 1)
    return round(x / mag) * mag


def class_breaks(values: dict[str, float | None], metric: str) -> tuple[list[float], list[str]]:
    """Class breaks and colours for a choropleth: fixed for the closure rate (low is bad), quantiles
    (nice-rounded, distinct) for counts and densities."""
    if metric == "closure_rate":
        return list(RATE_BREAKS), list(RATE_COLORS)
    vals = sorted(v for v in values.values() if v is not None)
    if not vals or vals[-1] <= 0:
        return [], [COUNT_COLORS[0]]
    qs = [vals[min(len(vals) - 1, int(len(vals) * p))] for p in (0.2, 0.4, 0.6, 0.8)]
    breaks: list[float] = []
    for q in [max(vals[0], 1e-9), *qs]:
        b = _nice(q)
        if metric in map_metrics.COUNT_METRICS:
            b = max(1, math.ceil(q))
        if b > 0 and (not breaks or b > breaks[-1]):
            breaks.append(b)
    step = (len(COUNT_COLORS) - 1) / max(len(breaks), 1)
    colors = [COUNT_COLORS[round(i * step)] for i in range(len(breaks) + 1)]
    return breaks, colors


def legend_children(metric: str, breaks: list[float], colors: list[str], lang: str,
                    has_none: bool) -> list[Any]:
    """Legend rows for the choropleth classes [lo, hi) (JS ``classOf``). Counts are whole numbers,
    so their classes are shown as inclusive ranges: 0 – 6, 7, 8 – 11, ≥ 12."""
    counts = metric in map_metrics.COUNT_METRICS

    def fmt(v: float) -> str:
        if metric == "closure_rate":
            return fmt_pct(v, lang, 0)
        return fmt_int(v, lang) if counts else fmt_num(v, lang, 0)

    rows = []
    edges = [None, *breaks, None]
    for i, color in enumerate(colors):
        lo, hi = edges[i], edges[i + 1]
        if lo is None and hi is None:
            label = "0" if counts else "—"
        elif counts and hi is not None:
            first, last = int(lo or 0), math.ceil(hi) - 1
            label = fmt(first) if first >= last else f"{fmt(first)} – {fmt(last)}"
        elif lo is None:
            label = f"< {fmt(hi)}"
        elif hi is None:
            label = f"≥ {fmt(lo)}"
        else:
            label = f"{fmt(lo)} – {fmt(hi)}"
        rows.append(html.Div(className="gw-legend-row", children=[
            html.Span(className="gw-swatch", style={"background": color}), html.Span(label)]))
    if has_none:
        rows.append(html.Div(className="gw-legend-row", children=[
            html.Span(className="gw-swatch gw-swatch-none"), html.Span(t("no_data", lang))]))
    return [html.Div(className="gw-legend-title",
                     children=explained(t(f"metric_{metric}", lang), t(f"help_{metric}", lang), f"metric-{metric}")),
            *rows]


#: pixels kept free along the map's bottom edge when it fits a grid: the legends' strip
LEGEND_PAD_PX = 64


def viewport_for(bbox: tuple[float, float, float, float] | list[float]) -> dict[str, Any]:
    """Fly to a grid's bounds, whole and clear of the legends along the bottom edge."""
    w, s, e, n = bbox
    return {"bounds": [[s, w], [n, e]], "transition": "flyToBounds",
            "options": {"duration": 0.35, "paddingTopLeft": [18, 18], "paddingBottomRight": [18, LEGEND_PAD_PX]}}


def bbox_from_bounds(bounds: list[list[float]] | None) -> tuple[float, float, float, float] | None:
    """dash-leaflet's [[south, west], [north, east]] → (west, south, east, north)."""
    if not bounds:
        return None
    (s, w), (n, e) = bounds
    return (w, s, e, n)


def outline_hideout(selected: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    sel = selected or {}
    level, code = sel.get("level"), sel.get("code")
    community = code if level == 2 else (sel.get("parent") if level == 3 else None)
    return {"lang": norm_lang(lang), "community": community, "block": code if level == 3 else None}


def choro_target(selected: dict[str, Any] | None) -> tuple[int, str | None]:
    """(level, parent code) whose grids the choropleth colours for a selection."""
    sel = selected or {}
    if sel.get("level") == 2:
        return 3, sel.get("code")
    if sel.get("level") == 3:
        return 3, sel.get("parent")
    return 2, sel.get("code")


def breadcrumb_children(path: list[list[str]] | list[tuple[str, str, str]], lang: str) -> list[Any]:
    out: list[Any] = []
    for i, (code, name, name_en) in enumerate(path):
        label = name if norm_lang(lang) == "zh" else name_en
        if i:
            out.append(html.Span("›", className="gw-crumb-sep"))
        if i == len(path) - 1:
            out.append(html.Span(label, className="gw-crumb gw-crumb-current"))
        else:
            href = "/" if i == 0 else f"/?grid={code}"
            out.append(dcc.Link(label, href=href, className="gw-crumb"))
    return out


def heat_version(stamp: str | None) -> str:
    """The data version in heat tile URLs (and the key of the heat scale cached by the tile service)."""
    return hashlib.sha1((stamp or "").encode()).hexdigest()[:10]


def heat_url(flt: IssueFilter, stamp: str | None) -> str:
    q = flt.to_query()
    q["v"] = heat_version(stamp)
    return "/tiles/heat/{z}/{x}/{y}.png?" + urlencode(q)


def heat_ramp_css() -> str:
    """The legend's colour ramp, from the same stops the tiles are painted with
    (HEAT_STOPS; position = sqrt(density / scale))."""
    stops = ", ".join(f"rgba({r}, {g}, {b}, {a / 255:.2f}) {pos * 100:g}%"
                      for pos, r, g, b, a in HEAT_STOPS)
    return f"linear-gradient(to right, {stops})"


def heat_shown(overlays: list[str] | None) -> bool:
    """Is the heat layer ticked? (overlays store: names in either language; None = the defaults)"""
    keys = layout.overlay_keys(overlays)
    return "heat" in (layout.DEFAULT_OVERLAYS if keys is None else keys)


def heat_legend(scale: float, lang: str) -> list[Any]:
    # tiles colour by sqrt(density / scale): the ramp's middle is scale / 4, its end the scale
    return [html.Div(className="gw-legend-title",
                     children=explained(t("heat_legend", lang), t("help_heat", lang), "heat")),
            html.Div(className="gw-heat-key", children=[
                html.Div(className="gw-heat-ramp", style={"background": heat_ramp_css()}),
                html.Div(className="gw-heat-scale", children=[
                    html.Span("0"), html.Span(fmt_int(scale / 4, lang)),
                    html.Span("≥ " + fmt_int(scale, lang))])])]


def legend_styles(overlays: list[str] | None, lang: str) -> tuple[dict[str, str], ...]:
    """Styles of (choropleth legend, heat legend, marker legend, marker note): each is shown only
    while its layer is ticked in the layer control (names in either language, as in the overlays
    store). ``None`` means the layout's defaults: choropleth and markers on, heat off."""
    keys = layout.overlay_keys(overlays)
    if keys is None:
        keys = layout.DEFAULT_OVERLAYS
    hidden = {"display": "none"}
    choro, heat, markers = (k in keys for k in layout.OVERLAY_KEYS)
    return ({} if choro else hidden, {} if heat else hidden, {} if markers else hidden,
            {} if markers else hidden)


def marker_note(result: map_markers.MarkerResult, lang: str) -> str:
    if result.mode == "points":
        return t("markers_points", lang, n=fmt_int(result.total or 0, lang))
    return t("markers_bins", lang)


def issue_rows(rows: list[queries.IssueRow], lang: str, tz: ZoneInfo,
               domain_names: dict[str, tuple[str, str]],
               grid_names: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        out.append({"id": str(r.id), "number": r.number, "title": r.title,
                    "domain": grid_name(domain_names.get(r.domain_code), lang, r.domain_code),
                    "status": status_label(r.status, lang) + (f" · {t('overdue_flag', lang)}"
                                                              if r.overdue else ""),
                    "overdue": bool(r.overdue), "reported": fmt_dt(r.reported_at, lang, tz),
                    "reported_ts": int(r.reported_at.timestamp()),
                    "grid": grid_name(grid_names.get(r.grid_code), lang, r.grid_code)})
    return out


def _bars(items: list[tuple[str, int]], total: int, lang: str) -> html.Div:
    rows = []
    for label, n in items:
        pct = 100 * n / total if total else 0
        rows.append(html.Div(className="gw-bar-row", children=[
            html.Span(label, className="gw-bar-label"),
            html.Span(className="gw-bar", children=html.Span(className="gw-bar-fill",
                                                             style={"width": f"{pct:.1f}%"})),
            html.Span(fmt_int(n, lang), className="gw-bar-n")]))
    return html.Div(className="gw-bars", children=rows)


def official_items(detail: map_layers.GridDetail, lang: str, personal_data: bool) -> list[Any]:
    items = []
    for o in detail.officials:
        role = chain_label(o.chain, lang) if o.chain else role_label(o.role, lang)
        phone = o.phone if (personal_data and o.phone) else None
        items.append(html.Li(className="gw-official", children=[
            html.Span(role, className="gw-official-role"),
            html.Span(o.name, className="gw-official-name"),
            html.Span(o.title, className="gw-official-title"),
            html.A(phone, href=f"tel:{phone}", className="gw-official-phone") if phone else None]))
    if not items:
        items.append(html.Li(t("none", lang)))
    return items


def panel_children(detail: map_layers.GridDetail, counts: map_metrics.GridCounts, lang: str,
                   domain_names: dict[str, tuple[str, str]], personal_data: bool) -> list[Any]:
    c = counts.counts
    name = detail.name if norm_lang(lang) == "zh" else detail.name_en
    kpis = [("total", fmt_int(c.total, lang)), ("open", fmt_int(c.open, lang)),
            ("closed", fmt_int(c.closed, lang)), ("overdue_open", fmt_int(c.overdue_open, lang)),
            ("closed_late", fmt_int(c.closed_late, lang)),
            ("closure_rate", fmt_pct(c.closure_rate, lang, 2))]
    meta = [(t("code", lang), detail.code), (t("level", lang), level_label(detail.level, lang)),
            (t("area", lang), fmt_area(detail.area_km2, lang))]
    if detail.level < 3:
        meta.append((t(f"children_{detail.level + 1}", lang), fmt_int(detail.children, lang)))
    officials_title = t("six_ones", lang) if detail.level == 3 else t("officials", lang)
    by_domain = sorted(counts.by_domain.items(), key=lambda kv: -kv[1])
    return [
        html.H2(name, className="gw-grid-name", id=ids.GRID_NAME),
        html.Dl(className="gw-meta", children=[x for k, v in meta for x in (html.Dt(k), html.Dd(v))]),
        html.Div(className="gw-kpis", children=[
            html.Div(className=f"gw-kpi gw-kpi-{k}", children=[
                html.Div(v, className="gw-kpi-value"),
                html.Div(explained(t(k, lang), t(f"help_{k}", lang), f"kpi-{k}"), className="gw-kpi-label")])
            for k, v in kpis]),
        html.H3(officials_title, className="gw-h3"),
        html.Ul(official_items(detail, lang, personal_data), className="gw-officials"),
        html.H3(t("by_status", lang), className="gw-h3"),
        _bars([(status_label(s, lang), n) for s, n in counts.by_status.items()], c.total, lang),
        html.H3(t("by_domain", lang), className="gw-h3"),
        _bars([(grid_name(domain_names.get(d), lang, d), n) for d, n in by_domain], c.total, lang),
    ]


def timeline_children(d: queries.IssueDetail, lang: str, tz: ZoneInfo,
                      domain_names: dict[str, tuple[str, str]],
                      grid_names: dict[str, tuple[str, str]]) -> tuple[str, list[Any]]:
    i = d.issue
    title = f"{i.number} · {i.title}"
    facts = [
        (t("kind", lang), kind_label(i.kind, lang)),
        (t("col_domain", lang), grid_name(domain_names.get(i.domain_code), lang, i.domain_code)),
        (t("col_status", lang), status_label(i.status, lang)
         + (f" · {t('overdue_flag', lang)}" if i.overdue else "")),
        (t("col_grid", lang), grid_name(grid_names.get(i.grid_code), lang, i.grid_code)),
        (t("col_reported", lang), fmt_dt(i.reported_at, lang, tz)),
        (t("due", lang), fmt_dt(i.due_at, lang, tz)),
        (t("closed_at", lang), fmt_dt(i.closed_at, lang, tz)),
        (chain_label("leader_in_charge", lang), d.leader_in_charge or "—"),
        (chain_label("responsible", lang), d.responsible or "—"),
        (chain_label("grid_leader", lang), d.grid_leader or "—"),
        (role_label("assignee", lang), d.assignee or "—"),
        (t("address", lang), d.address or "—"),
    ]
    head = html.Tr([html.Th(t(k, lang)) for k in ("col_time", "col_action", "col_status",
                                                   "col_actor", "col_note")])
    body = [html.Tr([html.Td(fmt_dt(e.at, lang, tz)), html.Td(action_label(e.action, lang)),
                     html.Td(f"{status_label(e.from_status, lang)} → {status_label(e.to_status, lang)}"),
                     html.Td(e.actor or (role_label(e.actor_role, lang) if e.actor_role else "—")),
                     html.Td(e.note or "")]) for e in d.events]
    return title, [
        html.Div(i.title, className="gw-timeline-title", id=ids.TIMELINE_ISSUE),
        html.Dl(className="gw-meta", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
        html.P(d.description, className="gw-description") if d.description else None,
        html.H3(t("timeline", lang), className="gw-h3"),
        html.Table(className="table table-sm gw-timeline", children=[html.Thead(head), html.Tbody(body)]),
    ]


def search_options(hits: list[map_search.SearchHit], lang: str) -> list[dict[str, str]]:
    out = []
    for h in hits:
        value = f"issue:{h.issue_id}:{h.grid_code}" if h.kind == "issue" else f"grid:{h.grid_code}"
        label = h.label if norm_lang(lang) == "zh" else h.label_en
        out.append({"label": f"{t('hit_' + h.kind, lang)} · {label}", "value": value})
    return out


def search_target(value: str | None, view: dict[str, str] | None = None) -> str | None:
    """A search option value → the URL search string to navigate to (the ``view`` kept)."""
    if not value:
        return None
    parts = value.split(":")
    if parts[0] == "grid" and len(parts) == 2:
        return url_search(parts[1], view=view)
    if parts[0] == "issue" and len(parts) == 3 and parts[1].isdigit():
        return url_search(parts[2], int(parts[1]), view=view)
    return None
