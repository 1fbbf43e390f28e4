"""Shaping the planner's data for the page (pure: plain data in, components and rows out)."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from ...i18n import t

_LEVEL_KEY = {1: "planner_level_1", 2: "planner_level_2", 3: "planner_level_3"}


def msg(d: dict, lang: str) -> str:
    return d.get("message_en" if lang == "en" else "message_zh") or ""


def error_message(exc: Any, lang: str) -> str:
    return exc.message_en if lang == "en" else exc.message_zh


def problems_geojson(problems: list[dict], lang: str) -> dict:
    """Each problem where it is (the sliver, the gap, the overlap; else its point), with its message."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": p["geometry"], "properties": {"kind": p["kind"], "code": p["code"],
                                                                     "message": msg(p, lang)}}
        for p in problems if p.get("geometry")]}


def problem_children(check: dict | None, error: str | None, lang: str) -> Any:
    if error:
        return html.Ul(className="gw-pl-problem-list", children=[html.Li(error, className="gw-pl-problem")])
    if not check:
        return t("planner_no_edit", lang)
    if check["valid"]:
        return html.Span(t("planner_valid", lang), className="gw-pl-valid")
    return html.Ul(className="gw-pl-problem-list", children=[
        html.Li(msg(p, lang), className="gw-pl-problem", **{"data-kind": p["kind"]}) for p in check["problems"]])


def _m2(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v / 1e6:.3f} km²" if v >= 1e5 else f"{v:,.0f} m²"


def impact_rows(impact: dict | None, lang: str) -> list[dict]:
    """One table: grids changed (areas before → after), created, retired; officials gaining or
    losing area; issues (open and past) whose grid would change."""
    if not impact:
        return []
    rows: list[dict] = []
    for c in impact["changed"]:
        rows.append({"what": t("planner_changed", lang), "code": c["code"], "name": c["name"],
                     "before": _m2(c["area_before_m2"]), "after": _m2(c["area_after_m2"]),
                     "note": t("planner_gain_loss", lang, gained=_m2(c["gained_m2"]), lost=_m2(c["lost_m2"]))})
    for c in impact["created"]:
        rows.append({"what": t("planner_created", lang), "code": c["code"], "name": c["name"], "before": "",
                     "after": _m2(c["area_m2"]),
                     "note": t("planner_takes_over", lang, code=c["predecessor"]) if c.get("predecessor") else ""})
    for c in impact["retired"]:
        rows.append({"what": t("planner_retired", lang), "code": c["code"], "name": c["name"],
                     "before": _m2(c["area_m2"]), "after": "", "note": t("planner_never_reused", lang)})
    for o in impact["officials"]:
        rows.append({"what": t("planner_official", lang), "code": o["grid_code"], "name": o["name"], "before": "",
                     "after": "", "note": t("planner_gain_loss", lang, gained=_m2(o["gained_m2"]),
                                            lost=_m2(o["lost_m2"]))})
    for i in (impact.get("issues") or {}).get("items", []):
        rows.append({"what": t("planner_issue_open" if i["open"] else "planner_issue_past", lang),
                     "code": i["to_code"], "name": i["number"], "before": i["from_code"] or "", "after": i["to_code"],
                     "note": "" if i["open"] else t("planner_past_keeps", lang)})
    return rows


def impact_summary(impact: dict | None, lang: str) -> str:
    if not impact:
        return ""
    iss = impact.get("issues") or {}
    return t("planner_impact_summary", lang, changed=len(impact["changed"]), created=len(impact["created"]),
             retired=len(impact["retired"]), open=iss.get("open", 0), past=iss.get("past", 0),
             officials=len(impact["officials"]))


def impact_geojson(impact: dict | None, check: dict | None) -> dict | None:
    """The changed grids (the check's GeoJSON) are what the map previews."""
    return check.get("grids") if check else None


def _when(v: Any, tz: ZoneInfo) -> str:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    return v.astimezone(tz).strftime("%Y-%m-%d %H:%M") if v else ""


def history_rows(change_sets: list[dict], tz: ZoneInfo) -> list[dict]:
    return [{"id": c["id"], "effective_at": _when(c["effective_at"], tz), "author": c["author"],
             "reason": c["reason"], "grids": " ".join(i["code"] for i in c["items"]),
             "issues_moved": c["issues_moved"]} for c in change_sets]


def change_set_options(change_sets: list[dict], tz: ZoneInfo) -> list[dict]:
    return [{"label": f"#{c['id']} · {_when(c['effective_at'], tz)} · {c['reason'][:40]}", "value": c["id"]}
            for c in change_sets]


def proposal_options(drafts: list[dict], tz: ZoneInfo) -> list[dict]:
    return [{"label": f"#{d['id']} · {_when(d['updated_at'], tz)} · {d['author']} · {d['reason'][:30]}"
                      + (f" · {d['source']}" if d.get("source") else "") + f" ({d['grids']})", "value": d["id"]}
            for d in drafts]


def diff_geojson(items: list[dict]) -> dict:
    """Area gained (green) and lost (red) per grid."""
    feats = []
    for d in items:
        for part in ("gained", "lost"):
            if d.get(part):
                feats.append({"type": "Feature", "geometry": d[part],
                              "properties": {"code": d["code"], "part": part, "message": f"{d['name']} ({d['code']})"}})
    return {"type": "FeatureCollection", "features": feats}


def diff_rows(items: list[dict], lang: str) -> list[dict]:
    status = {"created": "planner_created", "retired": "planner_retired", "changed": "planner_changed"}
    return [{"code": d["code"], "name": d["name"], "status": t(status[d["status"]], lang),
             "area_before_m2": _m2(d["area_before_m2"]), "area_after_m2": _m2(d["area_after_m2"]),
             "gained_m2": _m2(d["gained_m2"]), "lost_m2": _m2(d["lost_m2"])} for d in items]


def conflict_children(exc: Any, lang: str, tz: ZoneInfo) -> Any:
    """A refused save: which grids changed in between, by whom and when; nothing was written."""
    items = [html.Li(t("planner_conflict_item", lang, code=g["code"], cs=g.get("change_set_id") or "—",
                       author=g.get("author") or "—", at=_when(g.get("changed_at"), tz)))
             for g in (exc.detail or {}).get("grids", [])]
    return html.Div(className="gw-pl-conflict", role="alert", children=[
        html.P(error_message(exc, lang)), html.Ul(items), html.P(t("planner_conflict_nothing", lang))])


def ops_status(selected: list[str], ops: list[dict], lang: str) -> str:
    sel = "、".join(selected) if lang == "zh" else ", ".join(selected)
    parts = [t("planner_selected", lang, codes=sel or "—")]
    if ops:
        parts.append(t("planner_ops", lang, ops=" → ".join(o["op"] for o in ops)))
    return " · ".join(parts)
