"""The map page's layout: its stores (in the shared shell) and its body, rebuilt when the language
changes. Polygons are loaded by URL (one GeoJSON per level, cached by the browser) and
restyled through ``hideout``; issue markers and heat tiles follow the filter store."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import dcc, html

from geodata.maps.metrics import METRICS
from geodata.workflow.filters import DATE_PRESETS, IssueFilter
from geodata.workflow.rules import STATUSES

from ...components import outbox, widgets
from ...components.header import header, page_title
from ...i18n import js_labels, kind_label, status_label, t
from . import ids


def js(name: str) -> dict[str, str]:
    """A dash-leaflet functional prop pointing at dashboard/assets/gridwatch_map.js."""
    return {"variable": f"gridwatch.map.{name}"}


@dataclass(frozen=True)
class MapContextData:
    """What the body needs from the database, fetched once per body build."""

    street_code: str | None
    street_names: tuple[str, str]
    street_bbox: tuple[float, float, float, float] | None
    domains: list[tuple[str, str, str]]
    block_names: dict[str, tuple[str, str]]
    grids_stamp: str | None   # None: no grid layers to load (the database is down)
    outbox_count: int | None = 0   # outbox rows the viewer may see (the header button's badge; None: unknown)
    down_since: dt.datetime | None = None   # the database has not answered since then

    @classmethod
    def unavailable(cls, since: dt.datetime) -> MapContextData:
        """The body of a page opened while the database is down: the outage note, an empty map."""
        return cls(street_code=None, street_names=("", ""), street_bbox=None, domains=[],
                   block_names={}, grids_stamp=None, outbox_count=None, down_since=since)


#: the overlays of the layer control (i18n keys are ``layer_<key>``), and those ticked at first
OVERLAY_KEYS = ("choro", "heat", "markers")
DEFAULT_OVERLAYS = ["choro", "markers"]


def overlay_names(keys: list[str], lang: str) -> list[str]:
    return [t(f"layer_{k}", lang) for k in keys]


def overlay_keys(names: list[str] | None) -> list[str] | None:
    """Layer-control overlay names (in either language) → overlay keys; None stays None."""
    if names is None:
        return None
    return [k for k in OVERLAY_KEYS
            if any(t(f"layer_{k}", lang) in names for lang in ("zh", "en"))]


def page_stores(lang: str) -> list[Any]:
    """The map's stores in the shell (kept when the body is rebuilt for another language)."""
    return [
        dcc.Store(id=ids.FILTER, data=IssueFilter().to_dict()),
        dcc.Store(id=ids.SELECTED),
        dcc.Store(id=ids.OPEN_ISSUE),
        # ticked overlay names, written by gridwatch_map.js from the layer control's check boxes
        dcc.Store(id=ids.OVERLAYS, data=overlay_names(DEFAULT_OVERLAYS, lang)),
        # the URL query the two stores above were last read from (Back/Forward, a shared link)
        dcc.Store(id=ids.VIEW_SOURCE),
        dcc.Store(id=ids.URL_VIEW),
        dcc.Store(id=ids.URL_NAV),
    ]


def _options(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"label": label, "value": value} for value, label in pairs]


def filters(lang: str, flt: IssueFilter, domains: list[tuple[str, str, str]], metric: str) -> html.Div:
    zh = lang == "zh"
    kinds = [("", t("kind_all", lang)), *((k, kind_label(k, lang)) for k in ("problem", "sentiment"))]
    return html.Div(className="gw-filters", children=[
        html.Div(className="gw-filter", children=[
            html.Label(t("kind", lang)),
            dbc.RadioItems(id=ids.F_KIND, inline=True, value=flt.kind or "",
                           options=_options(kinds))]),
        html.Div(className="gw-filter gw-filter-wide", children=[
            html.Label(t("domains", lang)),
            widgets.dropdown(lang, id=ids.F_DOMAINS, multi=True, value=list(flt.domains),
                         placeholder=t("domains_all", lang),
                         options=_options([(c, zh_name if zh else en_name)
                                           for c, zh_name, en_name in domains]))]),
        html.Div(className="gw-filter gw-filter-wide", children=[
            html.Label(t("statuses", lang)),
            widgets.dropdown(lang, id=ids.F_STATUSES, multi=True, value=list(flt.statuses),
                         placeholder=t("statuses_all", lang),
                         options=_options([(s, status_label(s, lang)) for s in STATUSES]))]),
        html.Div(className="gw-filter gw-filter-date", children=[
            html.Label(t("date", lang)),
            widgets.dropdown(lang, id=ids.F_DATE, clearable=False, searchable=False,
                         value=flt.preset or ("custom" if (flt.date_from or flt.date_to) else ""),
                         options=_options([("", t("date_all", lang))]
                                          + [(p, t(p, lang)) for p in DATE_PRESETS]
                                          + [("custom", t("custom", lang))]))]),
        html.Div(className="gw-filter gw-filter-range", children=[
            dcc.DatePickerRange(id=ids.F_RANGE, clearable=True, first_day_of_week=1,
                                display_format="YYYY-MM-DD", minimum_nights=0,
                                start_date=flt.date_from.isoformat() if flt.date_from else None,
                                end_date=flt.date_to.isoformat() if flt.date_to else None,
                                start_date_placeholder_text=t("date_start", lang),
                                end_date_placeholder_text=t("date_end", lang))]),
        html.Div(className="gw-filter", children=[
            dbc.Switch(id=ids.F_OVERDUE, value=bool(flt.overdue), label=t("overdue_only", lang))]),
        html.Div(className="gw-filter gw-filter-metric", children=[
            html.Label(t("metric", lang)),
            widgets.dropdown(lang, id=ids.METRIC, clearable=False, value=metric, searchable=False,
                         options=_options([(m, t(f"metric_{m}", lang)) for m in METRICS]))]),
    ])


def basemap_layers(settings: Any, lang: str) -> list[Any]:
    """The configured basemap: an XYZ URL (OpenStreetMap-style; 天地图 Tianditu with its tk key and
    t{s} subdomains 0–7), a local directory/MBTiles served at /tiles/base, or none."""
    if settings.basemap_url:
        url = settings.basemap_url
        extra: dict[str, Any] = {}
        attribution = settings.basemap_attribution or None
        if "tianditu" in url:
            extra["subdomains"] = "01234567"
            attribution = attribution or t("tianditu", lang)
        return [dl.TileLayer(url=url, attribution=attribution, maxZoom=19, **extra)]
    if settings.basemap_path:
        return [dl.TileLayer(url="/tiles/base/{z}/{x}/{y}.png",
                             attribution=settings.basemap_attribution or None, maxZoom=19)]
    return []


def fit_zoom(bbox: tuple[float, float, float, float], width_px: int = 900, height_px: int = 700) -> float:
    """A zoom level at which the bbox fits a map of about width × height pixels (quarter steps)."""
    w, s, e, n = bbox
    zx = math.log2(360.0 * width_px / (256.0 * max(e - w, 1e-6)))
    y = lambda lat: math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    zy = math.log2(2 * math.pi * height_px / (256.0 * max(y(n) - y(s), 1e-9)))
    return max(10.0, min(18.0, math.floor(min(zx, zy) * 4) / 4))


def grid_url(level: int, stamp: str) -> str:
    return f"/geo/grids/{level}.json?v={stamp}"


def grid_source(level: int, stamp: str | None) -> dict[str, Any]:
    """A grid layer's GeoJSON props: its URL, or no features when there is no stamp (database down)."""
    if stamp is None:
        return {"data": {"type": "FeatureCollection", "features": []}}
    return {"url": grid_url(level, stamp)}


def map_component(settings: Any, lang: str, data: MapContextData,
                  overlays: list[str] | None = None) -> html.Div:
    """The map; ``overlays`` (keys of OVERLAY_KEYS) are ticked in the layer control, so a body
    rebuilt for another language keeps the user's layers."""
    on = set(DEFAULT_OVERLAYS if overlays is None else overlays)
    shown = lambda key: {} if key in on else {"display": "none"}
    west, south, east, north = data.street_bbox or (113.60, 34.73, 113.66, 34.77)
    labels = js_labels(lang, settings.timezone)
    domain_names = {c: (zh if lang == "zh" else en) for c, zh, en in data.domains}
    grid_names = {c: (n[0] if lang == "zh" else n[1]) for c, n in data.block_names.items()}
    marker_hideout = {"labels": labels, "domains": domain_names, "grids": grid_names, "focus": None}
    outline = {"lang": lang, "community": None, "block": None}
    children: list[Any] = [
        dl.Pane(name="choro", style={"zIndex": 350}),
        dl.Pane(name="heat", style={"zIndex": 360}),
        dl.LayersControl(id=ids.LAYERS, position="topright", collapsed=False, children=[
            *[dl.BaseLayer(layer, name=t("basemap", lang), checked=True)
              for layer in basemap_layers(settings, lang)],
            dl.Overlay(name=t("layer_choro", lang), checked="choro" in on, children=dl.LayerGroup([
                dl.GeoJSON(id=ids.L_CHORO_COMMUNITY, **grid_source(2, data.grids_stamp), pane="choro",
                           style=js("choroStyle"), filter=js("choroFilter"), interactive=False,
                           hideout={"values": {}, "breaks": [], "colors": []}),
                dl.GeoJSON(id=ids.L_CHORO_BLOCK, **grid_source(3, data.grids_stamp), pane="choro",
                           style=js("choroStyle"), filter=js("choroFilter"), interactive=False,
                           hideout={"values": {}, "breaks": [], "colors": []}),
            ])),
            dl.Overlay(name=t("layer_heat", lang), checked="heat" in on, children=dl.TileLayer(
                id=ids.L_HEAT, url="/tiles/heat/{z}/{x}/{y}.png", pane="heat", opacity=0.8,
                maxZoom=20, minZoom=10)),
            dl.Overlay(name=t("layer_markers", lang), checked="markers" in on, children=dl.LayerGroup([
                dl.GeoJSON(id=ids.L_BINS, data={"type": "FeatureCollection", "features": []},
                           pointToLayer=js("binPoint"), hideout=marker_hideout),
                dl.GeoJSON(id=ids.L_MARKERS, data={"type": "FeatureCollection", "features": []},
                           cluster=True, zoomToBoundsOnClick=True,
                           superClusterOptions={"radius": 48, "maxZoom": 17},
                           pointToLayer=js("markerPoint"), clusterToLayer=js("markerCluster"),
                           onEachFeature=js("markerPopup"), hideout=marker_hideout),
            ])),
        ]),
        dl.GeoJSON(id=ids.L_STREET, **grid_source(1, data.grids_stamp), style=js("gridStyle"),
                   interactive=False, hideout=outline),
        dl.GeoJSON(id=ids.L_COMMUNITY, **grid_source(2, data.grids_stamp), style=js("gridStyle"),
                   onEachFeature=js("gridLabel"), hoverStyle=js("gridHover"), hideout=outline),
        dl.GeoJSON(id=ids.L_BLOCK, **grid_source(3, data.grids_stamp), style=js("gridStyle"),
                   filter=js("blockFilter"), onEachFeature=js("gridLabel"),
                   hoverStyle=js("gridHover"), hideout=outline),
        dl.ScaleControl(position="bottomright", imperial=False),
    ]
    return html.Div(className="gw-map-wrap", children=[
        dcc.Store(id=ids.VIEW),   # with the map: a re-rendered body starts from no settled view
        dl.Map(id=ids.MAP, children=children, center=[(south + north) / 2, (west + east) / 2],
               zoom=fit_zoom((west, south, east, north)), maxZoom=20,
               minZoom=10, zoomSnap=0.25, className="gw-map", attributionControl=True),
        html.Div(className="gw-legends", children=[
            html.Div(id=ids.LEGEND_CHORO, className="gw-legend", style=shown("choro")),
            html.Div(id=ids.LEGEND_HEAT, className="gw-legend", style=shown("heat")),
            html.Div(id=ids.LEGEND_MARKERS, className="gw-legend", children=marker_legend(lang),
                     style=shown("markers")),
        ]),
        html.Div(id=ids.MARKER_NOTE, className="gw-marker-note", style=shown("markers")),
        *([] if basemap_layers(settings, lang) else [no_basemap_note(lang)]),
    ])


def no_basemap_note(lang: str) -> html.Details:
    """No basemap configured: say so on the map, and how to add one (folded, so it covers nothing)."""
    return html.Details(id=ids.NO_BASEMAP, className="gw-no-basemap", children=[
        html.Summary(t("no_basemap", lang)), html.P(t("no_basemap_how", lang))])


def marker_legend(lang: str) -> list[Any]:
    return [html.Div(className="gw-legend-title", children=t("layer_markers", lang)),
            *[html.Div(className="gw-legend-row", children=[
                html.Span(className=f"gw-dot gw-dot-{k}"), html.Span(t(f"state_{name}", lang))])
              for k, name in (("o", "open"), ("x", "overdue"), ("c", "closed"))],
            html.Div(className="gw-legend-row", children=[
                html.Span(className="gw-dot gw-dot-cluster"), html.Span(t("cluster", lang))])]


def issues_grid(lang: str) -> Any:
    return widgets.data_grid(
        lang, id=ids.ISSUES, className="gw-issues", rowData=[],
        columnDefs=issue_columns(lang),
        defaultColDef={"sortable": True, "resizable": True, "filter": False},
        dashGridOptions={"animateRows": False},
        getRowId="params.data.id", style={"height": "320px"})


def issue_columns(lang: str) -> list[dict[str, Any]]:
    return [
        {"field": "number", "headerName": t("col_number", lang), "width": 140},
        {"field": "title", "headerName": t("col_title", lang), "flex": 2, "minWidth": 160},
        {"field": "domain", "headerName": t("col_domain", lang), "width": 110},
        {"field": "status", "headerName": t("col_status", lang), "width": 110,
         "cellClassRules": {"gw-cell-overdue": "params.data.overdue"}},
        {"field": "reported", "headerName": t("col_reported", lang), "width": 170,
         "comparator": {"function": "nodeA.data.reported_ts - nodeB.data.reported_ts"}},
        {"field": "grid", "headerName": t("col_grid", lang), "width": 120},
    ]


def body(settings: Any, lang: str, tz: ZoneInfo, flt: IssueFilter, metric: str, data: MapContextData,
         overlays: list[str] | None = None, account: Any = None) -> list[Any]:
    street = data.street_names[0] if lang == "zh" else data.street_names[1]
    search = widgets.dropdown(lang, id=ids.SEARCH, className="gw-search", placeholder=t("search", lang),
                          options=[], searchable=True, clearable=True, value=None)
    return [
        header(page_title(street, lang), lang, tz, data.down_since, controls=(search,),
               actions=(outbox.button(lang, data.outbox_count), *((account,) if account is not None else ()))),
        filters(lang, flt, data.domains, metric),
        html.Main(className="gw-main", children=[
            map_component(settings, lang, data, overlays),
            html.Aside(className="gw-panel", children=[
                html.Nav(id=ids.BREADCRUMB, className="gw-breadcrumb"),
                html.Div(id=ids.PANEL),
                html.H3(t("latest", lang), className="gw-h3"),
                issues_grid(lang),
            ]),
        ]),
        dbc.Modal(id=ids.TIMELINE, is_open=False, size="lg", scrollable=True, children=[
            dbc.ModalHeader(dbc.ModalTitle(id=ids.TIMELINE_TITLE), close_button=True),
            dbc.ModalBody(id=ids.TIMELINE_BODY),
            dbc.ModalFooter(dbc.Button(t("close", lang), id=ids.TIMELINE_CLOSE, color="secondary")),
        ]),
        outbox.modal(lang),
    ]
