"""The wall's HTML: a dark 16:9 page whose sizes are viewport units (so 1920×1080 and 3840×2160
both fit without scroll bars), with the opening state as JSON; wall.js draws and updates it."""
from __future__ import annotations

import json
from html import escape
from typing import Any

from ...i18n import t
from . import ids

ASSET_VERSION = "1"


def _json(value: Any) -> str:
    # JSON inside <script type="application/json">: "</" must not close the element
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _kpi_block(kind: str, lang: str) -> str:
    rows = "".join(
        f'<tr><th>{escape(t("wall_" + p, lang))}</th>'
        + "".join(f'<td><span class="wall-num" data-kpi="{kind}.{p}.{c}">–</span>'
                  f'{"<small>%</small>" if c == "resolution_rate" else ""}</td>'
                  for c in ("reported", "resolved", "resolution_rate")) + "</tr>"
        for p in ("today", "month", "total"))
    head = "".join(f"<th>{escape(t(k, lang))}</th>" for k in ("wall_found", "wall_closed", "wall_rate"))
    mom = f'<span class="wall-mom" data-mom="{kind}.resolution_rate"></span>'
    return (f'<section class="wall-panel wall-kpis" data-kind="{kind}"><h2>{escape(t("wall_" + kind, lang))}{mom}</h2>'
            f'<table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table></section>')


def _tile(key: str, label: str, unit: str = "", mom: str | None = None) -> str:
    arrow = f'<span class="wall-mom" data-mom="{mom}"></span>' if mom else ""
    return (f'<div class="wall-tile"><div class="wall-label">{escape(label)}{arrow}</div>'
            f'<div><span class="wall-num wall-big" data-kpi="{key}">–</span><small>{escape(unit)}</small></div></div>')


def page(*, lang: str, state: dict, geometry: dict, bounds: list[float] | None, text: dict, config: dict) -> str:
    """The whole page (``state``: geodata.assessment.screen.wall_state + the feed; ``geometry``:
    presenters.geometry)."""
    tiles = "".join([
        _tile("on_time_rate.month", t("wall_on_time", lang) + "·" + t("wall_month", lang), "%", "on_time_rate"),
        _tile("overdue_now", t("wall_overdue_now", lang)),
        _tile("new_today", t("wall_new_today", lang)),
        _tile("handling_hours", t("wall_handling", lang), t("wall_hours", lang), "handling_hours"),
    ])
    opening = {"state": state, "geometry": geometry, "bounds": bounds, "config": config}
    legend = "".join(f'<span class="wall-legend-{b}">■ {escape(t("wall_legend_" + b, lang))}</span>'
                     for b in ("red", "amber", "green"))
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(t("wall_title", lang))}</title>
<link rel="stylesheet" href="/assets/wall.css?v={ASSET_VERSION}">
</head>
<body class="gw-wall">
<div id="{ids.ROOT}" class="wall-root">
 <header class="wall-header">
  <h1>{escape(t("wall_title", lang))}</h1>
  <div id="{ids.STATUS}" class="wall-status"></div>
  <div id="{ids.FRESH}" class="wall-fresh"></div>
  <div id="{ids.CLOCK}" class="wall-clock"></div>
 </header>
 <main class="wall-main">
  <div class="wall-col wall-left">
   {_kpi_block("problem", lang)}
   {_kpi_block("sentiment", lang)}
   <section class="wall-panel wall-tiles">{tiles}</section>
  </div>
  <div class="wall-col wall-centre">
   <section class="wall-panel wall-mapbox"><svg id="{ids.MAP}" class="wall-map" preserveAspectRatio="xMidYMid meet"></svg>
    <div id="{ids.CAPTION}" class="wall-caption"></div><div class="wall-legend">{legend}</div></section>
   <section class="wall-panel wall-trendbox"><h2>{escape(t("wall_trend", lang))}
    <span class="wall-key-problem">■ {escape(t("wall_problem", lang))}</span>
    <span class="wall-key-sentiment">■ {escape(t("wall_sentiment", lang))}</span></h2>
    <svg id="{ids.TREND}" class="wall-trend" preserveAspectRatio="none"></svg></section>
  </div>
  <div class="wall-col wall-right">
   <section class="wall-panel wall-feedbox"><h2>{escape(t("wall_feed", lang))}</h2><ol id="{ids.FEED}" class="wall-feed"></ol></section>
   <section class="wall-panel wall-rankbox"><h2 id="{ids.RANK}-title">{escape(t("wall_ranking", lang))}</h2><div id="{ids.RANK}" class="wall-rank"></div></section>
  </div>
 </main>
</div>
<script type="application/json" id="{ids.STATE}">{_json(opening)}</script>
<script type="application/json" id="{ids.TEXT}">{_json(text)}</script>
<script src="/assets/wall.js?v={ASSET_VERSION}"></script>
</body></html>"""


def stopped(lang: str, *, need_token: bool = False) -> str:
    """The screen of a revoked, unknown or missing display token (wall.js shows the same one when
    its stream says the token stopped)."""
    text = t("wall_need_token", lang) if need_token else t("wall_stopped_text", lang)
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{escape(t("wall_stopped_title", lang))} · {escape(t("wall_title", lang))}</title>
<link rel="stylesheet" href="/assets/wall.css?v={ASSET_VERSION}"></head>
<body class="gw-wall"><div id="{ids.STOPPED}" class="wall-stopped"><h1>{escape(t("wall_stopped_title", lang))}</h1>
<p>{escape(text)}</p></div></body></html>"""
