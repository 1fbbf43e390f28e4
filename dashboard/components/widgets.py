"""Third-party widgets in the page's language: every dropdown and data grid of every page is made
here, so none shows its built-in English inside the Chinese UI.

- :func:`dropdown`: ``dcc.Dropdown`` with its ``labels`` (select all, search, no matches, …) from
  the text table;
- :func:`data_grid`: ``dash_ag_grid.AgGrid`` with ``localeText``: AG Grid's own zh-CN translation
  (``dashboard/locale/``, from its publisher's package) plus a few texts from the text table;
- :func:`graph`: ``dcc.Graph`` whose plotly.js config carries plotly's own zh-CN locale (the mode
  bar's buttons, month and weekday names) from its publisher's package (``dashboard/locale/``);
- the date pickers (Dash's, on date-fns) take the language from ``window.dateFns.locale``, which
  ``assets/gridwatch_locale.js`` sets when the language switch changes (:func:`register`).
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, dcc, html

from ..i18n import t
from . import ids

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
AG_GRID_ZH = "ag-grid-35.3.1-zh-CN.json"
PLOTLY_ZH = "plotly.js-locales-3.7.0-zh-CN.json"


def dropdown_labels(lang: str) -> dict[str, str]:
    keys = {"select_all": "dd_select_all", "deselect_all": "dd_deselect_all",
            "selected_count": "dd_selected_count", "search": "dd_search",
            "clear_search": "dd_clear_search", "clear_selection": "dd_clear_selection",
            "no_options_found": "dd_no_options"}
    return {k: t(v, lang) for k, v in keys.items()}


def dropdown(lang: str, **props: Any) -> dcc.Dropdown:
    return dcc.Dropdown(labels=dropdown_labels(lang), **props)


@cache
def _ag_grid_zh() -> dict[str, str]:
    return json.loads((LOCALE_DIR / AG_GRID_ZH).read_text(encoding="utf-8"))


def grid_locale(lang: str) -> dict[str, str]:
    """AG Grid's ``localeText`` for ``lang`` (English: the grid's own texts, but for ours)."""
    ours = {"noRowsToShow": t("grid_no_rows", lang), "loadingOoo": t("grid_loading", lang)}
    return {**_ag_grid_zh(), **ours} if lang == "zh" else ours


def data_grid(lang: str, *, dashGridOptions: dict[str, Any] | None = None, **props: Any) -> dag.AgGrid:
    return dag.AgGrid(dashGridOptions={**(dashGridOptions or {}), "localeText": grid_locale(lang)}, **props)


@cache
def _plotly_zh() -> dict[str, Any]:
    return json.loads((LOCALE_DIR / PLOTLY_ZH).read_text(encoding="utf-8"))


def graph_config(lang: str) -> dict[str, Any]:
    """A plotly figure's ``config`` in ``lang``: no Plotly logo; in Chinese, plotly's zh-CN locale."""
    base: dict[str, Any] = {"displaylogo": False}
    if lang != "zh":
        return {**base, "locale": "en"}
    return {**base, "locale": "zh-CN", "locales": {"zh-CN": _plotly_zh()}}


def graph(lang: str, **props: Any) -> dcc.Graph:
    return dcc.Graph(config=graph_config(lang), **props)


def explained(label: str, help_text: str, key: str) -> html.Span:
    """A label that explains itself: its definition shows on hover, and on tap or keyboard focus
    (phones have no hover), as a tooltip the label is described by."""
    tip = f"gw-help-{key}"
    return html.Span(className="gw-explained", tabIndex=0, **{"aria-describedby": tip}, children=[
        label, html.Span(help_text, id=tip, className="gw-help", role="tooltip")])


def register(app: Dash, _svc: Any = None) -> None:
    """The language switch → the date pickers' locale and the document's language (in the browser)."""
    app.clientside_callback(
        "function (lang) { return window.gridwatch.locale.apply(lang); }",
        Output(ids.WIDGET_LOCALE, "data"), Input(ids.LANG, "value"))
