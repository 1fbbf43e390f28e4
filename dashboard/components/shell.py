"""The page shell: URL, the shared stores, the live poll, the language switch and the body (rebuilt
when the language changes). A page passes its own stores and its body."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..i18n import LANGS, t
from . import ids


def lang_switch(lang: str) -> html.Div:
    """中文 | English, each language named in itself."""
    return html.Div(className="gw-lang", children=dbc.RadioItems(
        id=ids.LANG, options=[{"label": t("lang_name", code), "value": code} for code in LANGS],
        value=lang, inline=True,
        className="gw-lang-switch", inputClassName="btn-check",
        labelClassName="btn btn-outline-light btn-sm", labelCheckedClassName="active"))


def shell(settings: Any, lang: str, body_children: list[Any], page_stores: list[Any],
          stamp: str | None = None, outage: bool = False) -> html.Div:
    return html.Div(className="gw-app", lang="zh-CN" if lang == "zh" else "en", children=[
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        *page_stores,
        dcc.Store(id=ids.STAMP, data=stamp),
        # the page shows the outage note: at the database's return the live poll rebuilds the body
        dcc.Store(id=ids.OUTAGE, data=outage),
        dcc.Store(id=ids.BODY_VERSION, data=0),
        dcc.Store(id=ids.WIDGET_LOCALE),
        dcc.Interval(id=ids.LIVE, interval=int(settings.live_interval_s * 1000)),
        lang_switch(lang),
        html.Div(id=ids.BODY, className="gw-body", children=body_children),
    ])
