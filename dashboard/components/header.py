"""The header every page shows: the title (with the demo-data note), a page's own controls (the
map's search, the outbox button), and the live note that turns into the outage note."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from ..i18n import fmt_time, t
from . import ids


def live_note(lang: str, tz: ZoneInfo, down_since: dt.datetime | None = None,
              now: dt.datetime | None = None) -> html.Span:
    """The header's live note: "● 实时 · 更新于 12:05:09", or while the database is down
    "⚠ 数据中断 自 12:03" (red, large). Rendered with the body, then refreshed by every live poll."""
    if down_since is not None:
        return html.Span(f"⚠ {t('data_down', lang, t=fmt_time(down_since, lang, tz, seconds=False))}",
                         className="gw-live-down", role="alert", title=t("data_down_hint", lang))
    now = now or dt.datetime.now(dt.UTC)
    return html.Span(f"● {t('live', lang)} · {t('updated', lang, t=fmt_time(now, lang, tz))}",
                     className="gw-live-ok")


def page_title(place: str, lang: str) -> str:
    """"三官庙街道 · 网格化管理地图" (the place is left out when unknown)."""
    return f"{place} · {t('app_title', lang)}" if place else t('app_title', lang)


def header(title: str, lang: str, tz: ZoneInfo, down_since: dt.datetime | None = None,
           controls: tuple[Any, ...] = (), actions: tuple[Any, ...] = ()) -> html.Header:
    """The header: title, the page's ``controls`` (search), the live note, its ``actions`` (buttons)."""
    return html.Header(className="gw-header", children=[
        html.Div(className="gw-brand", children=[
            html.H1(id=ids.TITLE, children=title),
            html.Span(className="gw-sub", children=t("synthetic", lang))]),
        *controls,
        html.Div(id=ids.LIVE_NOTE, className="gw-live", children=live_note(lang, tz, down_since)),
        *actions,
    ])
