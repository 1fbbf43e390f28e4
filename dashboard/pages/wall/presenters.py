"""Plain values in, the wall's JSON and text out: no database, no request. Nothing personal is
shaped here — the feed carries grid, domain, title and the issue's number; officials and reporters
never reach these functions (geodata.maps.feed reads none)."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from geodata.maps.feed import FEED_ACTIONS, FeedEvent

from ...i18n import t

FEED_KINDS = (*FEED_ACTIONS, "overdue")


def feed_item(ev: FeedEvent, lang: str, tz: ZoneInfo, *, grid_names: dict[str, str] | None = None) -> dict[str, Any]:
    """One line of the live feed. ``key`` is unique per wall (events by id, 超期 by issue)."""
    at = ev.at.astimezone(tz)
    names = grid_names or {}
    return {"key": (f"o{ev.id}" if ev.kind == "overdue" else f"e{ev.id}"), "id": ev.id, "kind": ev.kind,
            "label": t(f"wall_ev_{ev.kind}", lang), "time": f"{at:%H:%M}", "at": ev.at.isoformat(),
            "number": ev.issue_number, "issue_kind": ev.issue_kind,
            "domain": ev.domain_en if lang == "en" else ev.domain_zh,
            "grid": ev.grid_name, "grid_code": ev.grid_code,
            "community": names.get(ev.community_code, ev.community_code),
            "title": ev.title, "lon": round(ev.lon, 6), "lat": round(ev.lat, 6)}


def feed_items(events: list[FeedEvent], lang: str, tz: ZoneInfo, grid_names: dict[str, str]) -> list[dict]:
    return [feed_item(e, lang, tz, grid_names=grid_names) for e in events if e.kind in FEED_KINDS]


def strings(lang: str) -> dict[str, str]:
    """Every wall_* string the page's script needs, in ``lang``."""
    from ...i18n import TEXT

    return {k: t(k, lang) for k in TEXT if k.startswith("wall_") and "{" not in TEXT[k][0]} | {
        "wall_fresh": t("wall_fresh", lang, time="{time}"), "wall_outage": t("wall_outage", lang, time="{time}"),
        "wall_tour": t("wall_tour", lang, name="{name}", overdue="{overdue}", open="{open}")}


def geometry(layers: dict[int, dict]) -> dict[str, Any]:
    """The polygons, sent once with the page: street outline (1), communities (2), blocks (3) —
    GeoJSON coordinates only, with code and name (no officials)."""
    out: dict[str, Any] = {}
    for level, fc in layers.items():
        out[str(level)] = [{"code": f["properties"]["code"], "name": f["properties"]["name"],
                            "name_en": f["properties"]["name_en"], "geometry": f["geometry"]}
                           for f in fc.get("features", [])]
    return out


def bounds(layers: dict[int, dict]) -> list[float] | None:
    """[west, south, east, north] of every polygon."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for x in c:
                walk(x)

    for fc in layers.values():
        for f in fc.get("features", []):
            walk(f["geometry"]["coordinates"])
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None


def sse(event: str | None, data: str, event_id: int | None = None) -> str:
    """One Server-Sent Events message (``data`` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    head += f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n"


def local_hm(t_: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return None if t_ is None else f"{t_.astimezone(tz):%H:%M}"
