"""The planner page's layout: the map (drawn by assets/planner.js), the tools, the problems, the
impact table, the save form and the history panel."""
from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from ...components import ids as app_ids
from ...components import widgets
from ...components.shell import lang_switch
from ...i18n import t
from . import ids

LEVELS = (1, 2, 3)
SNAP_DEFAULT_PX = 10


def day_picker(id_: str, lang: str) -> dcc.DatePickerSingle:
    """A day, picked in the page's language (Dash's picker on date-fns, switched with the page; the
    browser's own date input would follow the browser's locale instead)."""
    return dcc.DatePickerSingle(id=id_, display_format="YYYY-MM-DD", first_day_of_week=1, clearable=True,
                                placeholder=t("planner_day_placeholder", lang), className="gw-pl-day")


def level_options(lang: str) -> list[dict[str, Any]]:
    return [{"label": t(f"planner_level_{n}", lang), "value": n} for n in LEVELS]


def _grid(id_: str, columns: list[tuple[str, str]], lang: str, height: int = 220,
          rows: list[dict] | None = None) -> dag.AgGrid:
    return widgets.data_grid(lang, id=id_, rowData=rows or [],
                             columnDefs=[{"field": f, "headerName": t(k, lang)} for f, k in columns],
                             defaultColDef={"sortable": True, "resizable": True, "flex": 1, "minWidth": 90},
                             dashGridOptions={"domLayout": "normal", "animateRows": False},
                             style={"height": f"{height}px"}, className="ag-theme-alpine gw-pl-table")


IMPACT_COLUMNS = [("what", "planner_col_what"), ("code", "planner_col_code"), ("name", "planner_col_name"),
                  ("before", "planner_col_before"), ("after", "planner_col_after"), ("note", "planner_col_note")]
HISTORY_COLUMNS = [("id", "planner_col_id"), ("effective_at", "planner_col_effective"),
                   ("author", "planner_col_author"), ("reason", "planner_col_reason"), ("grids", "planner_col_grids"),
                   ("issues_moved", "planner_col_moved")]
DIFF_COLUMNS = [("code", "planner_col_code"), ("name", "planner_col_name"), ("status", "planner_col_what"),
                ("area_before_m2", "planner_col_before"), ("area_after_m2", "planner_col_after"),
                ("gained_m2", "planner_col_gained"), ("lost_m2", "planner_col_lost")]


def page(lang: str, grids: dict, communities: list[tuple[str, str]], history_rows: list[dict],
         change_set_options: list[dict], proposal_options: list[dict] | None = None) -> html.Div:
    """The whole page in ``lang``; ``grids``: every current grid (GeoJSON with bbox)."""
    return html.Div(className="gw-app gw-planner", lang="zh-CN" if lang == "zh" else "en", children=[
        dcc.Store(id=ids.GRIDS, data=grids),
        dcc.Store(id=ids.EDIT, data=None),
        dcc.Store(id=ids.SELECTED, data={"codes": []}),
        dcc.Store(id=ids.LINE, data=None),
        dcc.Store(id=ids.OPS, data=[]),
        dcc.Store(id=ids.CHECK, data=None),
        dcc.Store(id=ids.DIFF, data=None),
        dcc.Store(id=ids.ASOF, data=None),
        html.Div(id=ids.RENDERED, hidden=True),
        html.Header(className="gw-header gw-pl-header", children=[
            html.H1(t("planner_title", lang)),
            html.Span(className="gw-sub", children=t("planner_sub", lang)),
            html.A(t("planner_back", lang), href="/", className="gw-pl-back"),
            html.Span(id=ids.LANG_NOTE, className="gw-pl-lang-note", role="status"),
            lang_switch(lang),
        ]),
        dcc.Location(id=ids.RELOAD, refresh=True),
        dcc.Store(id=app_ids.WIDGET_LOCALE),   # the date pickers' language follows the switch
        html.Div(className="gw-pl-main", children=[
            html.Div(id=ids.MAP, className="gw-pl-map"),
            html.Aside(className="gw-pl-side", children=[
                html.Section(className="gw-pl-tools", children=[
                    html.Label(t("planner_level", lang), htmlFor=ids.LEVEL),
                    widgets.dropdown(lang, id=ids.LEVEL, options=level_options(lang), value=3, clearable=False),
                    html.Label(t("planner_snap", lang), htmlFor=ids.SNAP),
                    html.Div(className="gw-pl-snap", children=[
                        dcc.Input(id=ids.SNAP, type="number", min=1, max=50, step=1, value=SNAP_DEFAULT_PX),
                        html.Span("px"), html.Span(id="planner-snap-m", className="gw-pl-snap-m")]),
                    html.P(t("planner_help", lang), className="gw-pl-help"),
                    dbc.Switch(id=ids.DRAW, label=t("planner_draw", lang), value=False),
                    html.Div(className="gw-pl-ops", children=[
                        dbc.Button(t("planner_split", lang), id=ids.OP_SPLIT, size="sm", color="secondary"),
                        dbc.Button(t("planner_subdivide", lang), id=ids.OP_SUBDIVIDE, size="sm", color="secondary"),
                        dbc.Button(t("planner_merge", lang), id=ids.OP_MERGE, size="sm", color="secondary"),
                    ]),
                    html.Div(className="gw-pl-move", children=[
                        widgets.dropdown(lang, id=ids.MOVE_TO, options=[{"label": f"{n} ({c})", "value": c}
                                                              for c, n in communities],
                                     placeholder=t("planner_move_to", lang)),
                        dbc.Button(t("planner_move", lang), id=ids.OP_MOVE, size="sm", color="secondary"),
                    ]),
                    dbc.Button(t("planner_reset", lang), id=ids.RESET, size="sm", color="link"),
                    html.Div(id=ids.STATUS, className="gw-pl-status", role="status"),
                ]),
                html.Section(className="gw-pl-check", children=[
                    html.H2(t("planner_problems", lang)),
                    html.Div(id=ids.PROBLEMS, className="gw-pl-problems", role="status",
                             children=t("planner_no_edit", lang)),
                ]),
                html.Section(className="gw-pl-save", children=[
                    html.H2(t("planner_save_title", lang)),
                    dcc.Textarea(id=ids.REASON, placeholder=t("planner_reason", lang), className="gw-pl-reason",
                                 maxLength=2000),
                    dcc.RadioItems(id=ids.WHEN, value="now", inline=True, options=[
                        {"label": t("planner_now", lang), "value": "now"},
                        {"label": t("planner_later", lang), "value": "later"}]),
                    day_picker(ids.EFFECTIVE, lang),
                    html.Div(className="gw-pl-save-buttons", children=[
                        dbc.Button(t("planner_save", lang), id=ids.SAVE, color="primary", disabled=True),
                        dbc.Button(t("planner_save_draft", lang), id=ids.SAVE_DRAFT, color="secondary",
                                   outline=True)]),
                    html.Div(id=ids.SAVED, className="gw-pl-saved", role="status"),
                ]),
            ]),
        ]),
        html.Section(className="gw-pl-import", children=[
            html.H2(t("planner_proposals_title", lang)),
            dcc.Store(id=ids.PROPOSAL),
            dcc.Download(id=ids.EXPORT_FILE),
            html.Div(className="gw-pl-import-row", children=[
                widgets.dropdown(lang, id=ids.PROPOSALS, options=proposal_options or [], className="gw-pl-proposals",
                             placeholder=t("planner_pick_proposal", lang), clearable=True),
                dbc.Button(t("planner_proposal_apply", lang), id=ids.APPLY_PROPOSAL, size="sm", color="primary",
                           disabled=True),
                dbc.Button(t("planner_proposal_discard", lang), id=ids.DISCARD_PROPOSAL, size="sm",
                           color="secondary", outline=True, disabled=True),
                dbc.Button(t("planner_proposal_export", lang), id=ids.EXPORT_PROPOSAL, size="sm",
                           color="secondary", outline=True, disabled=True),
            ]),
            html.P(t("planner_import_help", lang), className="gw-pl-help"),
            html.Div(className="gw-pl-import-row", children=[
                dcc.Upload(id=ids.UPLOAD, className="gw-pl-upload", multiple=False,
                           accept=".geojson,.json,.gpkg,.zip",
                           children=html.Div([t("planner_import_drop", lang), " ",
                                              html.A(t("planner_import_pick", lang))])),
                html.Div(className="gw-pl-import-crs", children=[
                    html.Label(t("planner_import_crs", lang), htmlFor=ids.UPLOAD_CRS),
                    dcc.Input(id=ids.UPLOAD_CRS, type="text", placeholder="EPSG:4547", maxLength=40,
                              debounce=True, className="form-control form-control-sm")]),
            ]),
            html.Div(id=ids.UPLOAD_RESULT, className="gw-pl-upload-result", role="status"),
        ]),
        html.Section(className="gw-pl-impact", children=[
            html.H2(t("planner_impact", lang)),
            html.Div(id=ids.IMPACT_SUMMARY, className="gw-pl-impact-summary"),
            _grid(ids.IMPACT, IMPACT_COLUMNS, lang),
        ]),
        html.Section(className="gw-pl-history", children=[
            html.H2(t("planner_history", lang)),
            html.Div(className="gw-pl-history-tools", children=[
                html.Label(t("planner_asof", lang), htmlFor=ids.ASOF_DAY),
                day_picker(ids.ASOF_DAY, lang),
                widgets.dropdown(lang, id=ids.CHANGE_SET, options=change_set_options, placeholder=t("planner_pick_cs", lang),
                             className="gw-pl-cs"),
                dbc.Button(t("planner_show_diff", lang), id=ids.SHOW_DIFF, size="sm", color="secondary"),
                dbc.Button(t("planner_revert", lang), id=ids.REVERT, size="sm", color="warning"),
            ]),
            _grid(ids.HISTORY, HISTORY_COLUMNS, lang, height=200, rows=history_rows),
            _grid(ids.DIFF_TABLE, DIFF_COLUMNS, lang, height=180),
        ]),
    ])
