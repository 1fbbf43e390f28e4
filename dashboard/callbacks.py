"""Callbacks: read inputs → call geodata.maps / geodata.workflow.queries → shape outputs. No SQL, no shapely here.

The ``*_outputs`` functions are what the Dash callbacks run; they take a :class:`MapCtx` (engine,
settings, viewer scope) and plain values, so tests call them without a browser. The pure shaping
helpers below them take no database at all.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from dash import ClientsideFunction, Dash, Input, Output, Patch, State, html, no_update
from dash import ctx as dash_ctx
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geodata import db
from geodata.access.scope import Scope
from geodata.codes import CODE_RE, level_of
from geodata.db import open_session, request_limits
from geodata.maps import layers, live
from geodata.maps import markers as map_markers
from geodata.maps import metrics as map_metrics
from geodata.maps import search as map_search
from geodata.maps.metrics import METRICS
from geodata.workflow import notices, queries
from geodata.workflow.filters import DATE_PRESETS, IssueFilter
from geodata.workflow.rules import STATUSES

from . import guard, ids, layout
from .i18n import (
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
from .tiles import HEAT_STOPS, TileService

COUNT_COLORS = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]
RATE_BREAKS = [0.6, 0.8, 0.9, 0.95, 0.99]
RATE_COLORS = ["#b2182b", "#ef8a62", "#fddbc7", "#d9f0d3", "#7fbf7b", "#1b7837"]
DEFAULT_METRIC = "overdue"
LANG_COOKIE = "gw_lang"
OUTBOX_LIMIT = 200   # rows loaded into the outbox modal (newest first)


@dataclass
class MapCtx:
    engine: Engine
    settings: Any
    scope: Scope
    ttl_s: float = 30.0

    tiles: TileService | None = None   # the heat tile service (made here unless given)

    def __post_init__(self) -> None:
        self._cache: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.limits = request_limits(self.settings)
        self.availability = db.availability(self.engine)
        self.tz = layout.business_tz(self.settings)
        if self.tiles is None:
            self.tiles = TileService(engine=self.engine, scope=self.scope, settings=self.settings)

    def session(self) -> Session:
        """A session for one callback: its SQL runs under the request limits (statement timeout)."""
        return open_session(self.engine, self.limits)

    def down_since(self, exc: BaseException) -> dt.datetime:
        """When the database stopped answering, for an error that says it cannot be reached; any
        other error is raised again."""
        if not db.is_unavailable(exc):
            raise exc
        return self.availability.since or dt.datetime.now(dt.UTC)

    def cached(self, key: Any, fn: Any) -> Any:
        """Small reference data (domains, grid names, grid details per stamp), kept ttl_s."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        value = fn()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def domain_names(self, s: Session) -> dict[str, tuple[str, str]]:
        return self.cached("domains", lambda: {d["code"]: (d["name_zh"], d["name_en"]) for d in queries.list_domains(s)})

    def grid_names(self, s: Session) -> dict[str, tuple[str, str]]:
        return self.cached("grid_names", lambda: layers.grid_names(s, self.scope))

    def grid_detail(self, s: Session, code: str, stamp: str | None = None
                    ) -> layers.GridDetail | None:
        """A grid's detail, shared by the selection and the panel callbacks (one load per selection
        and live stamp, not one per callback)."""
        return self.cached(("grid_detail", code, stamp),
                           lambda: layers.grid_detail(s, self.scope, code))


# -- pure shaping helpers ------------------------------------------------------------------------
def parse_query(search: str | None) -> tuple[str | None, int | None]:
    """'?grid=<code>&issue=<id>' → (code, issue id)."""
    q = parse_qs((search or "").lstrip("?"))
    code = (q.get("grid") or [None])[0]
    issue = (q.get("issue") or [None])[0]
    if code is not None and not CODE_RE.match(code):
        code = None
    return code, guard.bigint_id(issue)


def url_search(code: str | None, issue: int | None = None) -> str:
    params: dict[str, Any] = {}
    if code:
        params["grid"] = code
    if issue:
        params["issue"] = issue
    return ("?" + urlencode(params)) if params else ""


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
                      preset=None if custom else (preset if preset in DATE_PRESETS else None),
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
        if metric in ("open", "overdue"):
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
    counts = metric in ("open", "overdue")

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
    return [html.Div(className="gw-legend-title", children=t(f"metric_{metric}", lang)), *rows]


def viewport_for(bbox: tuple[float, float, float, float] | list[float]) -> dict[str, Any]:
    w, s, e, n = bbox
    return {"bounds": [[s, w], [n, e]], "transition": "flyToBounds",
            "options": {"duration": 0.35, "padding": [18, 18]}}


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
            from dash import dcc  # local: keeps the helpers importable without a layout
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
    return [html.Div(className="gw-legend-title", children=t("heat_legend", lang)),
            html.Div(className="gw-heat-ramp", style={"background": heat_ramp_css()}),
            html.Div(className="gw-heat-scale", children=[
                html.Span("0"), html.Span(fmt_int(scale / 4, lang)),
                html.Span("≥ " + fmt_int(scale, lang))])]


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


def issue_rows(rows: list[queries.IssueRow], lang: str, domain_names: dict[str, tuple[str, str]],
               grid_names: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        out.append({"id": str(r.id), "number": r.number, "title": r.title,
                    "domain": grid_name(domain_names.get(r.domain_code), lang, r.domain_code),
                    "status": status_label(r.status, lang) + (f" · {t('overdue_flag', lang)}"
                                                              if r.overdue else ""),
                    "overdue": bool(r.overdue), "reported": fmt_dt(r.reported_at, lang),
                    "reported_ts": int(r.reported_at.timestamp()),
                    "grid": grid_name(grid_names.get(r.grid_code), lang, r.grid_code)})
    return out


def _bars(items: list[tuple[str, int]], total: int) -> html.Div:
    rows = []
    for label, n in items:
        pct = 100 * n / total if total else 0
        rows.append(html.Div(className="gw-bar-row", children=[
            html.Span(label, className="gw-bar-label"),
            html.Span(className="gw-bar", children=html.Span(className="gw-bar-fill",
                                                             style={"width": f"{pct:.1f}%"})),
            html.Span(fmt_int(n, "zh"), className="gw-bar-n")]))
    return html.Div(className="gw-bars", children=rows)


def official_items(detail: layers.GridDetail, lang: str, personal_data: bool) -> list[Any]:
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


def panel_children(detail: layers.GridDetail, counts: map_metrics.GridCounts, lang: str,
                   domain_names: dict[str, tuple[str, str]], personal_data: bool) -> list[Any]:
    c = counts.counts
    name = detail.name if norm_lang(lang) == "zh" else detail.name_en
    kpis = [("total", fmt_int(c.total, lang)), ("open", fmt_int(c.open, lang)),
            ("closed", fmt_int(c.closed, lang)), ("overdue", fmt_int(c.overdue, lang)),
            ("overdue_open", fmt_int(c.overdue_open, lang)),
            ("closure_rate", fmt_pct(c.closure_rate, lang, 2))]
    meta = [(t("code", lang), detail.code), (t("level", lang), level_label(detail.level, lang)),
            (t("area", lang), fmt_area(detail.area_km2, lang))]
    if detail.level < 3:
        meta.append((t(f"children_{detail.level + 1}", lang), fmt_int(detail.children, lang)))
    officials_title = t("six_ones", lang) if detail.level == 3 else t("officials", lang)
    by_domain = sorted(counts.by_domain.items(), key=lambda kv: -kv[1])
    return [
        html.H2(name, className="gw-grid-name", id="gw-grid-name"),
        html.Dl(className="gw-meta", children=[x for k, v in meta for x in (html.Dt(k), html.Dd(v))]),
        html.Div(className="gw-kpis", children=[
            html.Div(className=f"gw-kpi gw-kpi-{k}", children=[
                html.Div(v, className="gw-kpi-value"), html.Div(t(k, lang), className="gw-kpi-label")])
            for k, v in kpis]),
        html.H3(officials_title, className="gw-h3"),
        html.Ul(official_items(detail, lang, personal_data), className="gw-officials"),
        html.H3(t("by_status", lang), className="gw-h3"),
        _bars([(status_label(s, lang), n) for s, n in counts.by_status.items()], c.total),
        html.H3(t("by_domain", lang), className="gw-h3"),
        _bars([(grid_name(domain_names.get(d), lang, d), n) for d, n in by_domain], c.total),
    ]


def timeline_children(d: queries.IssueDetail, lang: str, domain_names: dict[str, tuple[str, str]],
                      grid_names: dict[str, tuple[str, str]]) -> tuple[str, list[Any]]:
    i = d.issue
    title = f"{i.number} · {i.title}"
    facts = [
        (t("kind", lang), kind_label(i.kind, lang)),
        (t("col_domain", lang), grid_name(domain_names.get(i.domain_code), lang, i.domain_code)),
        (t("col_status", lang), status_label(i.status, lang)
         + (f" · {t('overdue_flag', lang)}" if i.overdue else "")),
        (t("col_grid", lang), grid_name(grid_names.get(i.grid_code), lang, i.grid_code)),
        (t("col_reported", lang), fmt_dt(i.reported_at, lang)),
        (t("due", lang), fmt_dt(i.due_at, lang)),
        (t("closed_at", lang), fmt_dt(i.closed_at, lang)),
        (t("leader_in_charge", lang), d.leader_in_charge or "—"),
        (t("responsible", lang), d.responsible or "—"),
        (t("grid_leader", lang), d.grid_leader or "—"),
        (t("assignee", lang), d.assignee or "—"),
        (t("address", lang), d.address or "—"),
    ]
    head = html.Tr([html.Th(t(k, lang)) for k in ("col_time", "col_action", "col_status",
                                                   "col_actor", "col_note")])
    body = [html.Tr([html.Td(fmt_dt(e.at, lang)), html.Td(action_label(e.action, lang)),
                     html.Td(f"{status_label(e.from_status, lang)} → {status_label(e.to_status, lang)}"),
                     html.Td(e.actor or (role_label(e.actor_role, lang) if e.actor_role else "—")),
                     html.Td(e.note or "")]) for e in d.events]
    return title, [
        html.Div(i.title, className="gw-timeline-title", id="gw-timeline-title"),
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


def search_target(value: str | None) -> str | None:
    """A search option value → the URL search string to navigate to."""
    if not value:
        return None
    parts = value.split(":")
    if parts[0] == "grid" and len(parts) == 2:
        return url_search(parts[1])
    if parts[0] == "issue" and len(parts) == 3 and parts[1].isdigit():
        return url_search(parts[2], int(parts[1]))
    return None


def outbox_rows(items: list[notices.OutboxItem], lang: str) -> list[dict[str, Any]]:
    """Outbox items → the modal's grid rows (the body travels with the row, shown when selected)."""
    return [{"id": str(i.id), "created": fmt_dt(i.created_at, lang), "created_ts": int(i.created_at.timestamp()),
             "recipient": i.recipient or "—", "subject": i.subject,
             "status": t("outbox_sent" if i.sent else "outbox_pending", lang), "sent": i.sent,
             "sent_at": fmt_dt(i.sent_at, lang) if i.sent_at else "",
             "grids": "、".join(grid_name((n, en), lang, c) for c, n, en in i.grids), "body": i.body}
            for i in items]


def outbox_note(shown: int, total: int, pending: int, lang: str) -> str:
    if not total:
        return t("outbox_empty", lang)
    return t("outbox_shown", lang, n=fmt_int(shown, lang), total=fmt_int(total, lang),
             pending=fmt_int(pending, lang))


def outbox_message(selected: list[dict[str, Any]] | None, lang: str) -> list[Any]:
    """The selected grid row → its full message (subject, facts, text); a hint when none is selected."""
    row = (selected or [None])[0]
    if not row:
        return [html.P(t("outbox_pick", lang), className="gw-muted")]
    facts = [(t("col_recipient", lang), row.get("recipient") or "—")]
    if row.get("grids"):
        facts.append((t("outbox_grids", lang), row["grids"]))
    facts += [(t("col_time", lang), row.get("created") or "—"), (t("col_status", lang), row.get("status") or "—")]
    if row.get("sent_at"):
        facts.append((t("col_sent_at", lang), row["sent_at"]))
    return [html.H4(row.get("subject") or "", className="gw-outbox-subject"),
            html.Dl(className="gw-meta", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
            html.Pre(row.get("body") or "", className="gw-outbox-text", id="gw-outbox-text")]


# -- callback bodies (database through geodata only) --------------------------------------------
def context_data(mctx: MapCtx, stamp: str | None = None) -> layout.MapContextData:
    """What the body needs, read fresh, except the street's detail: through MapCtx's cache with the
    page's live ``stamp``, so that the selection callback finds it loaded."""
    with mctx.session() as s:
        street = layers.street_code(s, mctx.scope)
        detail = mctx.grid_detail(s, street, stamp) if street else None
        names = layers.grid_names(s, mctx.scope)
        return layout.MapContextData(
            street_code=street,
            street_names=(detail.name, detail.name_en) if detail else ("", ""),
            street_bbox=detail.bbox if detail else None,
            domains=[(d["code"], d["name_zh"], d["name_en"]) for d in queries.list_domains(s)],
            block_names={c: n for c, n in names.items() if level_of(c) == 3},
            grids_stamp=layers.grids_stamp(s),
            outbox_count=notices.latest_outbox(s, mctx.scope, limit=0, tz=mctx.tz).total)


def page_layout(mctx: MapCtx, lang: str | None) -> Any:
    """The whole page for a language (the Dash layout function). While the database is down: the
    page with the outage note and an empty map, which the live poll fills in at its return."""
    lang = norm_lang(lang)
    try:
        with mctx.session() as s:
            stamp = live.latest_change(s, mctx.scope)
        return layout.shell(mctx.settings, lang, body_outputs(mctx, lang, None, stamp=stamp), stamp)
    except DBAPIError as exc:
        ctx = layout.MapContextData.unavailable(mctx.down_since(exc))
        return layout.shell(mctx.settings, lang, body_outputs(mctx, lang, None, ctx=ctx), None, outage=True)


def body_outputs(mctx: MapCtx, lang: str, filter_data: dict[str, Any] | None,
                 overlays: list[str] | None = None, stamp: str | None = None,
                 ctx: layout.MapContextData | None = None) -> list[Any]:
    """The body in a language, keeping the filter and the ticked overlays (names, either language);
    on ``ctx`` (read from the database unless given)."""
    lang = norm_lang(lang)
    keep = layout.overlay_keys(overlays) if isinstance(overlays, list) else None
    return layout.body(mctx.settings, lang, IssueFilter.from_dict(filter_data), metric_of(filter_data),
                       ctx or context_data(mctx, stamp), keep)


def selection_outputs(mctx: MapCtx, search: str | None, lang: str, stamp: str | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any], list[Any], dict[str, Any]]:
    """URL → (selected store, map viewport, breadcrumb, outline hideout)."""
    code, issue_id = parse_query(search)
    with mctx.session() as s:
        detail = mctx.grid_detail(s, code, stamp) if code else None
        if detail is None and (street := layers.street_code(s, mctx.scope)):  # the fallback
            detail = mctx.grid_detail(s, street, stamp)
        issue = queries.issue_detail(s, mctx.scope, issue_id) if issue_id else None
    if detail is None:
        return {}, no_update, [], outline_hideout({}, lang)
    selected = {"code": detail.code, "level": detail.level, "parent": detail.parent_code,
                "bbox": list(detail.bbox), "issue": issue.issue.id if issue else None}
    if issue is not None:
        viewport = {"center": [issue.lat, issue.lon], "zoom": 18, "transition": "flyTo",
                    "options": {"duration": 0.35}}
    else:
        viewport = viewport_for(detail.bbox)
    return (selected, viewport, breadcrumb_children(detail.path, lang),
            outline_hideout(selected, lang))


def choropleth_outputs(mctx: MapCtx, selected: dict[str, Any] | None,
                       filter_data: dict[str, Any] | None, lang: str
                       ) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """(community choropleth hideout, block choropleth hideout, legend)."""
    metric = metric_of(filter_data)
    level, parent = choro_target(selected)
    with mctx.session() as s:
        metrics = map_metrics.grid_metrics(s, mctx.scope, IssueFilter.from_dict(filter_data), level, parent,
                                           tz=mctx.tz)
    values = map_metrics.metric_values(metrics, metric)
    breaks, colors = class_breaks(values, metric)
    hideout = {"values": values, "breaks": breaks, "colors": colors}
    empty = {"values": {}, "breaks": [], "colors": []}
    legend = legend_children(metric, breaks, colors, lang, any(v is None for v in values.values()))
    return (hideout, empty, legend) if level == 2 else (empty, hideout, legend)


def marker_outputs(mctx: MapCtx, bounds: list[list[float]] | None, filter_data: dict[str, Any] | None,
                   selected: dict[str, Any] | None, lang: str
                   ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(point markers, aggregated cells, note) for the viewport."""
    bbox = bbox_from_bounds(bounds) or tuple((selected or {}).get("bbox") or ()) or None
    empty = {"type": "FeatureCollection", "features": []}
    if not bbox:
        return empty, empty, ""
    with mctx.session() as s:
        res = map_markers.markers(s, mctx.scope, IssueFilter.from_dict(filter_data), bbox,
                                  limit=mctx.settings.max_markers, tz=mctx.tz)
    if res.mode == "points":
        return res.data, empty, marker_note(res, lang)
    return empty, res.data, marker_note(res, lang)


def heat_outputs(mctx: MapCtx, filter_data: dict[str, Any] | None, stamp: str | None, lang: str,
                 shown: bool = True, trigger: str | None = None) -> tuple[Any, Any]:
    """(heat tile URL, heat legend). The legend's scale (a density query) is only computed while the
    heat layer is ``shown``; hidden, the URL (no query) still follows the filter and stamp, so the
    tiles are right the moment the layer is ticked, and ticking it (``trigger`` the overlays store)
    computes the legend."""
    flt = IssueFilter.from_dict(filter_data)
    if not shown:
        return (no_update if trigger == ids.OVERLAYS else heat_url(flt, stamp)), no_update
    with mctx.session() as s:   # the tiles' own cache: legend and tiles share one density query
        scale = mctx.tiles.heat_scale(s, flt, heat_version(stamp))
    return heat_url(flt, stamp), heat_legend(scale, lang)


def panel_outputs(mctx: MapCtx, selected: dict[str, Any] | None, filter_data: dict[str, Any] | None,
                  lang: str, stamp: str | None = None) -> tuple[list[Any], list[dict[str, Any]]]:
    if selected is None:          # nothing selected yet (the page is loading, or the database is down)
        return [], []
    code = selected.get("code")
    if not code:
        return [html.P(t("not_found", lang))], []
    flt = IssueFilter.from_dict(filter_data)
    with mctx.session() as s:
        detail = mctx.grid_detail(s, code, stamp)   # usually loaded by the selection already
        if detail is None:
            return [html.P(t("not_found", lang))], []
        counts = map_metrics.grid_counts(s, mctx.scope, flt, code, tz=mctx.tz)
        rows = queries.latest_issues(s, mctx.scope, flt, code, tz=mctx.tz, limit=50)
        domain_names = mctx.domain_names(s)
        names = mctx.grid_names(s)
    return (panel_children(detail, counts, lang, domain_names, mctx.scope.personal_data),
            issue_rows(rows, lang, domain_names, names))


def timeline_outputs(mctx: MapCtx, issue_id: int, lang: str) -> tuple[bool, str, list[Any]]:
    with mctx.session() as s:
        d = queries.issue_detail(s, mctx.scope, issue_id)
        if d is None:
            return False, "", []
        domain_names = mctx.domain_names(s)
        names = mctx.grid_names(s)
    title, children = timeline_children(d, lang, domain_names, names)
    return True, title, children


def search_outputs(mctx: MapCtx, q: str | None, lang: str) -> list[dict[str, str]]:
    if not q or len(q.strip()) < 1:
        return []
    with mctx.session() as s:
        return search_options(map_search.search(s, mctx.scope, q, limit=8), lang)


def navigate_outputs(mctx: MapCtx, trigger: str | None, search_value: str | None,
                     click: dict[str, Any] | None, current: str | None, lang: str
                     ) -> tuple[Any, Any, Any]:
    """A grid click or a picked search result → (URL search, search box value, map viewport).

    A picked result is cleared from the search box, so picking the same result again is a new
    selection; if the URL already shows it, the map flies there again (the URL does not change)."""
    if trigger == ids.SEARCH:
        target = search_target(search_value)
        if target is None:
            return no_update, no_update, no_update      # the box was cleared (by us, or the user)
        if target == (current or ""):
            return no_update, None, selection_outputs(mctx, target, lang)[1]
        return target, None, no_update
    code = ((click or {}).get("properties") or {}).get("code")
    target = url_search(code) if code else None
    if target is None or target == (current or ""):
        return no_update, no_update, no_update
    return target, no_update, no_update


def outbox_outputs(mctx: MapCtx, lang: str) -> tuple[list[dict[str, Any]], str, list[Any]]:
    """Opening the outbox → (grid rows, note, header button label with the count)."""
    with mctx.session() as s:
        view = notices.latest_outbox(s, mctx.scope, limit=OUTBOX_LIMIT, tz=mctx.tz)
    return (outbox_rows(view.items, lang), outbox_note(len(view.items), view.total, view.pending, lang),
            layout.outbox_button_label(lang, view.total))


def live_outputs(mctx: MapCtx, stamp: str | None, lang: str, outage: bool = False,
                 filter_data: dict[str, Any] | None = None, overlays: list[str] | None = None,
                 version: int | None = 0) -> tuple[Any, Any, Any, Any, Any]:
    """A live poll → (stamp, live note, outage flag, body, body version).

    Database down: the outage note, everything else kept. Back after an outage: the body rebuilt
    (as for a language switch, keeping filter and layers), so every part — grids, selection from
    the URL, choropleth, panel — is loaded again, whatever failed meanwhile."""
    try:
        with mctx.session() as s:
            new = live.latest_change(s, mctx.scope)
    except DBAPIError as exc:
        note = layout.live_note(lang, mctx.tz, mctx.down_since(exc))
        return no_update, note, (no_update if outage else True), no_update, no_update
    if outage:
        body = body_outputs(mctx, lang, filter_data, overlays, new)
        return new, no_update, False, body, (version or 0) + 1
    note = layout.live_note(lang, mctx.tz)
    return (no_update if new == stamp else new), note, no_update, no_update, no_update


# -- registration --------------------------------------------------------------------------------
def register(app: Dash, mctx: MapCtx) -> None:
    @app.callback(Output(ids.BODY, "children"), Output(ids.BODY_VERSION, "data"),
                  Input(ids.LANG, "value"), State(ids.FILTER, "data"), State(ids.BODY_VERSION, "data"),
                  State(ids.OVERLAYS, "data"), State(ids.STAMP, "data"), prevent_initial_call=True)
    def _body(lang, filter_data, version, overlays, stamp):
        lang = norm_lang(lang)
        # remembered for the next page load (the layout is built in this language)
        dash_ctx.response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
        return body_outputs(mctx, lang, filter_data, overlays, stamp), (version or 0) + 1

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

    @app.callback(Output(ids.URL, "search"), Output(ids.SEARCH, "value"),
                  Output(ids.MAP, "viewport", allow_duplicate=True),
                  Input(ids.L_COMMUNITY, "clickData"), Input(ids.L_BLOCK, "clickData"),
                  Input(ids.SEARCH, "value"), State(ids.URL, "search"), State(ids.LANG, "value"),
                  prevent_initial_call=True)
    def _navigate(community_click, block_click, search_value, current, lang):
        trigger = dash_ctx.triggered_id
        click = community_click if trigger == ids.L_COMMUNITY else block_click
        return navigate_outputs(mctx, trigger, search_value, click, current, lang)

    @app.callback(Output(ids.SELECTED, "data"), Output(ids.MAP, "viewport"),
                  Output(ids.BREADCRUMB, "children"), Output(ids.L_COMMUNITY, "hideout"),
                  Output(ids.L_BLOCK, "hideout"), Output(ids.L_MARKERS, "hideout"),
                  Input(ids.URL, "search"), Input(ids.BODY_VERSION, "data"), State(ids.LANG, "value"),
                  State(ids.STAMP, "data"))
    def _select(search, _version, lang, stamp):
        selected, viewport, crumbs, outline = selection_outputs(mctx, search, lang, stamp)
        focus = Patch()
        focus["focus"] = selected.get("issue") if selected else None
        return selected, viewport, crumbs, outline, outline, focus

    @app.callback(Output(ids.L_CHORO_COMMUNITY, "hideout"), Output(ids.L_CHORO_BLOCK, "hideout"),
                  Output(ids.LEGEND_CHORO, "children"),
                  Input(ids.SELECTED, "data"), Input(ids.FILTER, "data"), Input(ids.STAMP, "data"),
                  State(ids.LANG, "value"))
    def _choropleth(selected, filter_data, _stamp, lang):
        return choropleth_outputs(mctx, selected, filter_data, lang)

    # The map reports its bounds on every moveend: several per fly-to or resize, often the same
    # view. Only a settled, changed view reaches the markers query.
    app.clientside_callback(
        ClientsideFunction(namespace="gridwatch", function_name="settledBounds"),
        Output(ids.VIEW, "data"), Input(ids.MAP, "bounds"), State(ids.VIEW, "data"))

    @app.callback(Output(ids.L_MARKERS, "data"), Output(ids.L_BINS, "data"),
                  Output(ids.MARKER_NOTE, "children"),
                  Input(ids.VIEW, "data"), Input(ids.FILTER, "data"), Input(ids.STAMP, "data"),
                  State(ids.SELECTED, "data"), State(ids.LANG, "value"), prevent_initial_call=True)
    def _markers(bounds, filter_data, _stamp, selected, lang):
        return marker_outputs(mctx, bounds, filter_data, selected, lang)

    @app.callback(Output(ids.L_HEAT, "url"), Output(ids.LEGEND_HEAT, "children"),
                  Input(ids.FILTER, "data"), Input(ids.STAMP, "data"), Input(ids.OVERLAYS, "data"),
                  State(ids.LANG, "value"))
    def _heat(filter_data, stamp, overlays, lang):
        only = set(dash_ctx.triggered_prop_ids.values())     # several inputs may fire together
        trigger = only.pop() if len(only) == 1 else None
        return heat_outputs(mctx, filter_data, stamp, lang, heat_shown(overlays), trigger)

    @app.callback(Output(ids.LEGEND_CHORO, "style"), Output(ids.LEGEND_HEAT, "style"),
                  Output(ids.LEGEND_MARKERS, "style"), Output(ids.MARKER_NOTE, "style"),
                  Input(ids.OVERLAYS, "data"), Input(ids.BODY_VERSION, "data"), State(ids.LANG, "value"))
    def _legends_visible(overlays, _version, lang):
        return legend_styles(overlays, lang)

    @app.callback(Output(ids.PANEL, "children"), Output(ids.ISSUES, "rowData"),
                  Input(ids.SELECTED, "data"), Input(ids.FILTER, "data"), Input(ids.STAMP, "data"),
                  State(ids.LANG, "value"))
    def _panel(selected, filter_data, stamp, lang):
        return panel_outputs(mctx, selected, filter_data, lang, stamp)

    @app.callback(Output(ids.TIMELINE, "is_open"), Output(ids.TIMELINE_TITLE, "children"),
                  Output(ids.TIMELINE_BODY, "children"),
                  Input(ids.ISSUES, "cellClicked"), Input(ids.TIMELINE_CLOSE, "n_clicks"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _timeline(cell, _close, lang):
        if dash_ctx.triggered_id == ids.TIMELINE_CLOSE or not cell:
            return False, no_update, no_update
        row = cell.get("rowId")
        if not row or not str(row).isdigit():
            return no_update, no_update, no_update
        return timeline_outputs(mctx, int(row), lang)

    @app.callback(Output(ids.SEARCH, "options"), Input(ids.SEARCH, "search_value"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _search(q, lang):
        if not q:
            return no_update
        return search_outputs(mctx, q, lang)

    @app.callback(Output(ids.STAMP, "data"), Output(ids.LIVE_NOTE, "children"), Output(ids.OUTAGE, "data"),
                  Output(ids.BODY, "children", allow_duplicate=True),
                  Output(ids.BODY_VERSION, "data", allow_duplicate=True),
                  Input(ids.LIVE, "n_intervals"), State(ids.STAMP, "data"), State(ids.LANG, "value"),
                  State(ids.OUTAGE, "data"), State(ids.FILTER, "data"), State(ids.OVERLAYS, "data"),
                  State(ids.BODY_VERSION, "data"),
                  prevent_initial_call=True)   # the page (and a rebuilt body) already carry stamp and note
    def _live(_n, stamp, lang, outage, filter_data, overlays, version):
        return live_outputs(mctx, stamp, norm_lang(lang), bool(outage), filter_data, overlays, version)

    @app.callback(Output(ids.OUTBOX, "is_open"), Output(ids.OUTBOX_GRID, "rowData"),
                  Output(ids.OUTBOX_GRID, "selectedRows"), Output(ids.OUTBOX_NOTE, "children"),
                  Output(ids.OUTBOX_MESSAGE, "children", allow_duplicate=True),
                  Output(ids.OUTBOX_OPEN, "children"),
                  Input(ids.OUTBOX_OPEN, "n_clicks"), Input(ids.OUTBOX_CLOSE, "n_clicks"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _outbox(_open, _close, lang):
        if dash_ctx.triggered_id != ids.OUTBOX_OPEN:
            return False, no_update, no_update, no_update, no_update, no_update
        lang = norm_lang(lang)
        rows, note, label = outbox_outputs(mctx, lang)
        return True, rows, [], note, outbox_message(None, lang), label

    @app.callback(Output(ids.OUTBOX_MESSAGE, "children"), Input(ids.OUTBOX_GRID, "selectedRows"),
                  State(ids.LANG, "value"), prevent_initial_call=True)
    def _outbox_message(selected, lang):
        return outbox_message(selected, norm_lang(lang))
