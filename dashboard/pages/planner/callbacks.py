"""The planner page's callbacks: inputs → the request's context → one geodata.grids.changesets call
→ outputs (``presenters``). No SQL, no shapely here.

The edit comes from assets/planner.js (``ids.EDIT``: the grids it redrew, as one topology, and
the versions it drew on) and from the operation buttons (``ids.OPS``); the server checks it with
the file import's rules (``changesets.check_draft``) and saves it as one change set
(``build_draft`` → ``save_proposal`` → ``apply_proposal``, one transaction: a conflict writes
nothing). Every callback needs ``edit_boundaries`` (the gate lets /planner's page through only
for it; its callbacks check it again, since Dash's endpoint is shared with the map).

The ``*_outputs`` functions take the Services, the Context, the author (None: not a planner) and
plain values, so tests call them without a browser."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, no_update
from dash import ctx as dash_ctx
from flask import current_app

from geodata.access.capabilities import EDIT_BOUNDARIES
from geodata.errors import ConflictError, DomainError
from geodata.grids import changesets
from geodata.grids.changesets import Author

from ...components import ids as app_ids
from ...context import LANG_COOKIE, Context, current_context, request_principal
from ...i18n import t
from ...services import Services
from . import ids, layout
from . import presenters as pr

GRID_LEVELS = None   # every level: the topology shares vertices across levels
HISTORY_LIMIT = 50
#: the Flask extension under which the wiring (``app.wire_grid_import``) puts the file import:
#: ``(session, data, filename, *, level, reason, author, crs) -> proposal id``, raising DomainError
#: (a file's problems in ``detail["problems"]``); the dashboard does not import etl
GRID_IMPORT = "gridwatch.grid_import"


def request_author() -> Author | None:
    """The signed-in planner as a change set records them (as the API's ``require_planner``); None
    when the request's account may not edit boundaries."""
    p = request_principal()
    if not p.may(EDIT_BOUNDARIES):
        return None
    name = p.actor.name or p.display_name or p.login or f"#{p.account_id}"
    return Author(p.official_id, name[:100])


def _bbox(fc: dict) -> list[float] | None:
    xs, ys = [], []
    for f in fc["features"]:
        if f["properties"]["level"] != 1:
            continue
        for poly in f["geometry"]["coordinates"] if f["geometry"]["type"] == "MultiPolygon" else [f["geometry"]["coordinates"]]:
            for ring in poly:
                xs += [c[0] for c in ring]
                ys += [c[1] for c in ring]
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None


def grids_data(s: Any) -> dict:
    fc = changesets.grids_geojson(s, GRID_LEVELS)
    fc["bbox"] = _bbox(fc)
    return fc


def history(s: Any, tz: Any) -> tuple[list[dict], list[dict]]:
    sets = changesets.change_sets(s, limit=HISTORY_LIMIT)
    return pr.history_rows(sets, tz), pr.change_set_options(sets, tz)


def page_layout(svc: Services, ctx: Context) -> Any:
    with svc.session(ctx) as s:
        grids = grids_data(s)
        rows, options = history(s, ctx.tz)
        drafts = proposal_options(s, ctx.tz)
    communities = sorted((f["properties"]["code"], f["properties"]["name"]) for f in grids["features"]
                          if f["properties"]["level"] == 2)
    return layout.page(ctx.lang, grids, communities, rows, options, drafts)


# -- the edit ------------------------------------------------------------------------------------
def spec_of(edit: dict | None, ops: list[dict] | None) -> dict:
    """The JS's edit and the operations as ``changesets.build_draft``'s spec."""
    edit = edit or {}
    return {"grids": list(edit.get("grids") or []), "base": dict(edit.get("base") or {}),
            "operations": list(ops or [])}


def has_edit(spec: dict) -> bool:
    return bool(spec["grids"] or spec["operations"])


def ops_outputs(trigger: str | None, selected: dict | None, line: dict | None, move_to: str | None,
                ops: list[dict] | None, lang: str) -> tuple[Any, Any]:
    """An operation button: the operation appended to ``ops`` (or a message saying what it needs).
    Returns (ops, status)."""
    codes = list((selected or {}).get("codes") or [])
    ops = list(ops or [])
    need = None
    if trigger == ids.RESET:
        return [], pr.ops_status(codes, [], lang)
    if trigger in (ids.OP_SPLIT, ids.OP_SUBDIVIDE):
        if len(codes) != 1 or not line:
            need = "planner_need_line"
        elif trigger == ids.OP_SPLIT:
            ops.append({"op": "split", "code": codes[0], "line": line})
        else:
            ops.append({"op": "subdivide", "code": codes[0], "lines": [line]})
    elif trigger == ids.OP_MERGE:
        if len(codes) != 2:
            need = "planner_need_two"
        else:
            ops.append({"op": "merge", "codes": codes})
    elif trigger == ids.OP_MOVE:
        if len(codes) != 1 or not move_to:
            need = "planner_need_target"
        else:
            ops.append({"op": "move", "code": codes[0], "parent": move_to})
    else:
        return no_update, pr.ops_status(codes, ops, lang)
    if need:
        return no_update, f"{pr.ops_status(codes, ops, lang)} · {t(need, lang)}"
    return ops, pr.ops_status(codes, ops, lang)


def check_outputs(svc: Services, ctx: Context, author: Author | None, edit: dict | None,
                  ops: list[dict] | None) -> tuple[Any, Any, Any, Any, bool]:
    """The live check: (check, problem list, impact rows, impact summary, save disabled)."""
    if author is None:
        return None, t("planner_forbidden", ctx.lang), [], "", True
    spec = spec_of(edit, ops)
    if not has_edit(spec):
        return None, pr.problem_children(None, None, ctx.lang), [], "", True
    try:
        with svc.session(ctx) as s:
            check = changesets.check_draft(s, spec)
            s.rollback()
    except ConflictError as exc:
        return None, pr.conflict_children(exc, ctx.lang, ctx.tz), [], "", True
    except DomainError as exc:
        return None, pr.problem_children(None, pr.error_message(exc, ctx.lang), ctx.lang), [], "", True
    check = _plain(check)
    check["problems_geojson"] = pr.problems_geojson(check["problems"], ctx.lang)
    changed = bool(check["grids"]["features"])
    return (check, pr.problem_children(check, None, ctx.lang), pr.impact_rows(check["impact"], ctx.lang),
            pr.impact_summary(check["impact"], ctx.lang), not (check["valid"] and changed))


def _plain(v: Any) -> Any:
    """Times as ISO text (a store holds JSON)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return v


def effective_time(ctx: Context, when: str | None, day: str | None) -> dt.datetime | None:
    """``now`` → None (the apply's now); ``later`` → the start of the day picked, business time."""
    if when != "later":
        return None
    if not day:
        raise DomainError("missing_effective", "请选择生效日期", "pick the day it takes effect", field="effective_at")
    d = dt.date.fromisoformat(day[:10])
    return dt.datetime.combine(d, dt.time(0, 0), tzinfo=ctx.tz)


def save_outputs(svc: Services, ctx: Context, author: Author | None, edit: dict | None, ops: list[dict] | None,
                 reason: str | None, when: str | None, day: str | None) -> tuple[Any, ...]:
    """Save = one change set, atomically. Returns (message, grids, ops, edit, history rows,
    change set options, diff of a conflicting change set)."""
    keep = (no_update,) * 6
    if author is None:
        return (t("planner_forbidden", ctx.lang), *keep)
    spec = spec_of(edit, ops)
    if not has_edit(spec):
        return (t("planner_no_edit", ctx.lang), *keep)
    try:
        with svc.session(ctx) as s:   # one transaction: anything refused rolls it all back
            at = effective_time(ctx, when, day)
            draft = changesets.build_draft(s, spec)
            pid = changesets.save_proposal(s, draft, author, reason or "", effective_at=at, bases=spec["base"])
            out = changesets.apply_proposal(s, pid, author, effective_at=at)
            s.commit()
        with svc.session(ctx) as s:
            grids = grids_data(s)
            rows, options = history(s, ctx.tz)
    except ConflictError as exc:
        sets = (exc.detail or {}).get("change_sets") or []
        diff = no_update
        if sets:
            with svc.session(ctx) as s:
                diff = pr.diff_geojson(_change_set_diff(s, sets[-1]))
        return (pr.conflict_children(exc, ctx.lang, ctx.tz), *keep[:5], diff)
    except DomainError as exc:
        return (html_error(pr.error_message(exc, ctx.lang)), *keep)
    return saved_note(ctx, out), grids, [], None, rows, options, None


def saved_note(ctx: Context, out: dict) -> str:
    """What an applied change set says: its id, how many grids, how many open issues moved."""
    moved = out.get("issues_moved")
    return t("planner_saved", ctx.lang, id=out["id"], n=len(out["items"]), moved="—" if moved is None else moved)


def html_error(text: str) -> Any:
    from dash import html

    return html.Div(text, className="gw-pl-error", role="alert")


def _change_set_diff(s: Any, change_set_id: int) -> list[dict]:
    cs = changesets.change_set_data(s, change_set_id)
    t2 = cs["effective_at"]
    return changesets.diff(s, t2 - dt.timedelta(microseconds=1), t2)


def revert_outputs(svc: Services, ctx: Context, author: Author | None, cs_id: int | None) -> tuple[Any, ...]:
    """Revert a change set as a new one. Same outputs as :func:`save_outputs`."""
    keep = (no_update,) * 6
    if author is None:
        return (t("planner_forbidden", ctx.lang), *keep)
    if cs_id is None:
        return (t("planner_pick_cs", ctx.lang), *keep)
    try:
        with svc.session(ctx) as s:
            out = changesets.revert(s, cs_id, author)
            s.commit()
        with svc.session(ctx) as s:
            grids = grids_data(s)
            rows, options = history(s, ctx.tz)
    except ConflictError as exc:
        return (pr.conflict_children(exc, ctx.lang, ctx.tz), *keep)
    except DomainError as exc:
        return (html_error(pr.error_message(exc, ctx.lang)), *keep)
    return t("planner_reverted", ctx.lang, id=cs_id, new=out["id"]), grids, [], None, rows, options, None


# -- a proposal from a file -------------------------------------------------------------------------
def _upload_bytes(contents: str) -> bytes | None:
    import binascii

    head, _, body = (contents or "").partition(",")
    if not head.endswith(";base64") or not body:
        return None
    try:
        return binascii.a2b_base64("".join(body.split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def proposal_options(s: Any, tz: Any) -> list[dict]:
    return pr.proposal_options(changesets.draft_proposals(s), tz)


#: what the proposal callbacks answer: (message, the proposal at hand, check, problem list, impact
#: rows, impact summary, apply disabled, discard disabled, export disabled, the drafts' options)
N_PROPOSAL_OUTPUTS = 10


def _refused(message: Any) -> tuple[Any, ...]:
    return (message, None, None, no_update, no_update, no_update, True, True, True, no_update)


def _proposal_view(s: Any, ctx: Context, pid: int, note: Callable[[dict, dict[str, int]], Any]) -> tuple[Any, ...]:
    """A saved proposal on the page: its changed grids previewed, problems and conflicts listed,
    impact, and the buttons it allows (apply only when valid against the current tiling).
    ``note(proposal, counts)``: the message above it (counts: changed, created, retired grids)."""
    prop = changesets.proposal_data(s, pid)   # validates against the whole tiling: read once
    statuses = [f["properties"]["status"] for f in prop["grids"]["features"]]
    counts = {k: statuses.count(k) for k in ("changed", "created", "retired")}
    check = _plain({"valid": not prop["problems"] and not prop["conflicts"], "problems": prop["problems"],
                    "grids": prop["grids"]})
    check["problems_geojson"] = pr.problems_geojson(check["problems"], ctx.lang)
    problems = pr.problem_children(check, t("planner_proposal_stale", ctx.lang) if prop["conflicts"] else None,
                                   ctx.lang)
    return (note(prop, counts), pid, check, problems, pr.impact_rows(prop["impact"], ctx.lang),
            pr.impact_summary(prop["impact"], ctx.lang), not check["valid"], False, False,
            proposal_options(s, ctx.tz))


def _proposal_note(key: str, lang: str, pid: int, **kw: Any) -> Any:
    from dash import html

    return html.Span(t(key, lang, id=pid, **kw), className="gw-pl-imported", **{"data-proposal": str(pid)})


def import_outputs(svc: Services, ctx: Context, author: Author | None, importer: Any, contents: str | None,
                   filename: str | None, level: int | None, reason: str | None, crs: str | None) -> tuple[Any, ...]:
    """A file dropped on the upload → saved as a draft proposal by the file import's rules, or its
    problems listed (and drawn where they are) with nothing saved (N_PROPOSAL_OUTPUTS values)."""
    from dash import html

    name = filename or "—"
    if not contents:
        return (no_update,) * N_PROPOSAL_OUTPUTS
    if author is None:
        return _refused(html_error(t("planner_forbidden", ctx.lang)))
    if importer is None:
        return _refused(html_error(t("planner_import_off", ctx.lang)))
    if not (reason or "").strip():
        return _refused(html_error(t("planner_import_need_reason", ctx.lang)))
    data = _upload_bytes(contents)
    if data is None:
        return _refused(html_error(t("upload_bad_base64", ctx.lang)))
    try:
        with svc.session(ctx) as s:   # one transaction: a refused file writes nothing
            pid = importer(s, data, name, level=level or 3, reason=reason.strip(), author=author,
                           crs="".join((crs or "").split()).upper() or None)
            s.commit()
        with svc.session(ctx) as s:
            return _proposal_view(s, ctx, pid, lambda _prop, counts: _proposal_note(
                "planner_import_saved", ctx.lang, pid, file=name, **counts))
    except DomainError as exc:
        problems = (exc.detail or {}).get("problems")
        if not problems:
            return _refused(html_error(pr.error_message(exc, ctx.lang)))
        check = {"valid": False, "problems": problems, "grids": None,
                 "problems_geojson": pr.problems_geojson(problems, ctx.lang)}
        head = html.P(t("planner_import_refused", ctx.lang, file=name, n=len(problems)), className="gw-pl-error",
                      role="alert")
        return head, None, check, pr.problem_children(check, None, ctx.lang), [], "", True, True, True, no_update


def draft_outputs(svc: Services, ctx: Context, author: Author | None, edit: dict | None, ops: list[dict] | None,
                  reason: str | None, when: str | None, day: str | None) -> tuple[Any, ...]:
    """The edit saved as a draft proposal (checked, not applied): N_PROPOSAL_OUTPUTS values."""

    if author is None:
        return _refused(html_error(t("planner_forbidden", ctx.lang)))
    spec = spec_of(edit, ops)
    if not has_edit(spec):
        return _refused(html_error(t("planner_no_edit", ctx.lang)))
    try:
        with svc.session(ctx) as s:
            at = effective_time(ctx, when, day)
            draft = changesets.build_draft(s, spec)
            pid = changesets.save_proposal(s, draft, author, reason or "", effective_at=at, bases=spec["base"])
            s.commit()
        with svc.session(ctx) as s:
            return _proposal_view(s, ctx, pid, lambda _prop, counts: _proposal_note(
                "planner_draft_saved", ctx.lang, pid, n=sum(counts.values())))
    except DomainError as exc:
        return _refused(html_error(pr.error_message(exc, ctx.lang)))


def open_outputs(svc: Services, ctx: Context, author: Author | None, pid: int | None) -> tuple[Any, ...]:
    """A draft picked from the list: shown as saved (N_PROPOSAL_OUTPUTS values)."""

    if pid is None:
        return (no_update,) * N_PROPOSAL_OUTPUTS
    if author is None:
        return _refused(html_error(t("planner_forbidden", ctx.lang)))
    try:
        with svc.session(ctx) as s:
            return _proposal_view(s, ctx, pid, lambda prop, counts: _proposal_note(
                "planner_proposal_opened", ctx.lang, pid, author=prop["author"], reason=prop["reason"][:60],
                **counts))
    except DomainError as exc:
        return _refused(html_error(pr.error_message(exc, ctx.lang)))


def discard_outputs(svc: Services, ctx: Context, author: Author | None, pid: int | None) -> tuple[Any, ...]:
    if author is None:
        return _refused(html_error(t("planner_forbidden", ctx.lang)))
    if pid is None:
        return (no_update,) * N_PROPOSAL_OUTPUTS
    try:
        with svc.session(ctx) as s:
            changesets.discard_proposal(s, pid)
            s.commit()
        with svc.session(ctx) as s:
            options = proposal_options(s, ctx.tz)
    except DomainError as exc:
        return _refused(html_error(pr.error_message(exc, ctx.lang)))
    return (t("planner_proposal_discarded", ctx.lang, id=pid), None, None, pr.problem_children(None, None, ctx.lang),
            [], "", True, True, True, options)


def apply_proposal_outputs(svc: Services, ctx: Context, author: Author | None, pid: int | None, when: str | None,
                           day: str | None) -> tuple[Any, ...]:
    """Apply the proposal at hand as one change set. Returns (message, grids, history rows, change
    set options, the proposal at hand, apply disabled, check, discard disabled, export disabled,
    the drafts' options)."""
    keep = (no_update,) * 9
    if author is None:
        return (html_error(t("planner_forbidden", ctx.lang)), *keep)
    if pid is None:
        return (no_update, *keep)
    try:
        with svc.session(ctx) as s:
            at = effective_time(ctx, when, day)
            out = changesets.apply_proposal(s, pid, author, effective_at=at)
            s.commit()
        with svc.session(ctx) as s:
            grids = grids_data(s)
            rows, options = history(s, ctx.tz)
            drafts = proposal_options(s, ctx.tz)
    except ConflictError as exc:
        return (pr.conflict_children(exc, ctx.lang, ctx.tz), *keep)
    except DomainError as exc:
        return (html_error(pr.error_message(exc, ctx.lang)), *keep)
    return saved_note(ctx, out), grids, rows, options, None, True, None, True, True, drafts


def export_outputs(svc: Services, ctx: Context, author: Author | None, pid: int | None) -> Any:
    """The proposal at hand as GeoJSON (its new and changed grids, with their status and base
    versions), for QGIS."""
    import json

    from dash import dcc

    if author is None or pid is None:
        return no_update
    try:
        with svc.session(ctx) as s:
            _prop, draft, bases = changesets.proposal_draft(s, pid)
            fc = changesets.feature_collection(draft, bases)
    except DomainError:
        return no_update
    return dcc.send_string(json.dumps(fc, ensure_ascii=False, default=str), f"proposal-{pid}.geojson")


def lang_outputs(ctx: Context, lang: str | None, edit: dict | None, ops: list[dict] | None) -> tuple[Any, Any, Any]:
    """The language switched → (reload href, switch value, note): the page loads again in it (the
    map is the JS's, so it is not rebuilt in place) — unless an edit is in progress, which a reload
    would lose: then the switch goes back and the note says to save it (or a draft) first."""
    if lang not in ("zh", "en") or lang == ctx.lang:
        return no_update, no_update, ""
    if has_edit(spec_of(edit, ops)):
        return no_update, ctx.lang, t("planner_lang_busy", ctx.lang)
    dash_ctx.response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
    return "/planner", no_update, ""


def diff_outputs(svc: Services, ctx: Context, author: Author | None, cs_id: int | None) -> tuple[Any, Any]:
    """The diff a change set made (area gained and lost per grid): (GeoJSON, table rows)."""
    if author is None or cs_id is None:
        return None, []
    try:
        with svc.session(ctx) as s:
            items = _change_set_diff(s, cs_id)
    except DomainError:
        return None, []
    return pr.diff_geojson(items), pr.diff_rows(items, ctx.lang)


def asof_outputs(svc: Services, ctx: Context, author: Author | None, day: str | None, level: int | None) -> Any:
    """The boundaries valid at the end of ``day`` (business time) at ``level``, as an outline layer."""
    if author is None or not day:
        return None
    end = dt.datetime.combine(dt.date.fromisoformat(day[:10]), dt.time(23, 59, 59), tzinfo=ctx.tz)
    with svc.session(ctx) as s:
        return _plain(changesets.grids_geojson(s, level or 3, as_of=end))


# -- registration ------------------------------------------------------------------------------------
def register(app: Dash, svc: Services) -> None:
    def cx() -> Context:
        return current_context(svc.settings)

    app.clientside_callback(
        ClientsideFunction(namespace="planner", function_name="render"),
        Output(ids.RENDERED, "children"),
        Input(ids.GRIDS, "data"), Input(ids.CHECK, "data"), Input(ids.LEVEL, "value"), Input(ids.DRAW, "value"),
        Input(ids.SNAP, "value"), Input(ids.DIFF, "data"), Input(ids.ASOF, "data"))

    @app.callback(Output(ids.OPS, "data"), Output(ids.STATUS, "children"),
                  Input(ids.OP_SPLIT, "n_clicks"), Input(ids.OP_SUBDIVIDE, "n_clicks"),
                  Input(ids.OP_MERGE, "n_clicks"), Input(ids.OP_MOVE, "n_clicks"), Input(ids.RESET, "n_clicks"),
                  Input(ids.SELECTED, "data"),
                  State(ids.LINE, "data"), State(ids.MOVE_TO, "value"), State(ids.OPS, "data"),
                  prevent_initial_call=True)
    def _ops(_s, _d, _m, _v, _r, selected, line, move_to, ops):
        return ops_outputs(dash_ctx.triggered_id, selected, line, move_to, ops, cx().lang)

    @app.callback(Output(ids.CHECK, "data"), Output(ids.PROBLEMS, "children"), Output(ids.IMPACT, "rowData"),
                  Output(ids.IMPACT_SUMMARY, "children"), Output(ids.SAVE, "disabled"),
                  Input(ids.EDIT, "data"), Input(ids.OPS, "data"), prevent_initial_call=True)
    def _check(edit, ops):
        return check_outputs(svc, cx(), request_author(), edit, ops)

    @app.callback(Output(ids.SAVED, "children"), Output(ids.GRIDS, "data"), Output(ids.OPS, "data", allow_duplicate=True),
                  Output(ids.EDIT, "data"), Output(ids.HISTORY, "rowData"), Output(ids.CHANGE_SET, "options"),
                  Output(ids.DIFF, "data"),
                  Input(ids.SAVE, "n_clicks"), Input(ids.REVERT, "n_clicks"),
                  State(ids.EDIT, "data"), State(ids.OPS, "data"), State(ids.REASON, "value"),
                  State(ids.WHEN, "value"), State(ids.EFFECTIVE, "date"), State(ids.CHANGE_SET, "value"),
                  prevent_initial_call=True)
    def _save(_save, _revert, edit, ops, reason, when, day, cs_id):
        if dash_ctx.triggered_id == ids.REVERT:
            return revert_outputs(svc, cx(), request_author(), cs_id)
        return save_outputs(svc, cx(), request_author(), edit, ops, reason, when, day)

    @app.callback(Output(ids.UPLOAD_RESULT, "children"), Output(ids.PROPOSAL, "data"),
                  Output(ids.CHECK, "data", allow_duplicate=True), Output(ids.PROBLEMS, "children", allow_duplicate=True),
                  Output(ids.IMPACT, "rowData", allow_duplicate=True),
                  Output(ids.IMPACT_SUMMARY, "children", allow_duplicate=True), Output(ids.APPLY_PROPOSAL, "disabled"),
                  Output(ids.DISCARD_PROPOSAL, "disabled"), Output(ids.EXPORT_PROPOSAL, "disabled"),
                  Output(ids.PROPOSALS, "options"),
                  Input(ids.UPLOAD, "contents"), Input(ids.PROPOSALS, "value"), Input(ids.SAVE_DRAFT, "n_clicks"),
                  Input(ids.DISCARD_PROPOSAL, "n_clicks"),
                  State(ids.UPLOAD, "filename"), State(ids.LEVEL, "value"), State(ids.REASON, "value"),
                  State(ids.UPLOAD_CRS, "value"), State(ids.EDIT, "data"), State(ids.OPS, "data"),
                  State(ids.WHEN, "value"), State(ids.EFFECTIVE, "date"), State(ids.PROPOSAL, "data"),
                  prevent_initial_call=True)
    def _proposal(contents, picked, _draft, _discard, filename, level, reason, crs, edit, ops, when, day, pid):
        ctx, author, trigger = cx(), request_author(), dash_ctx.triggered_id
        if trigger == ids.PROPOSALS:
            return open_outputs(svc, ctx, author, picked)
        if trigger == ids.SAVE_DRAFT:
            return draft_outputs(svc, ctx, author, edit, ops, reason, when, day)
        if trigger == ids.DISCARD_PROPOSAL:
            return discard_outputs(svc, ctx, author, pid)
        return import_outputs(svc, ctx, author, current_app.extensions.get(GRID_IMPORT), contents, filename, level,
                              reason, crs)

    @app.callback(Output(ids.SAVED, "children", allow_duplicate=True), Output(ids.GRIDS, "data", allow_duplicate=True),
                  Output(ids.HISTORY, "rowData", allow_duplicate=True),
                  Output(ids.CHANGE_SET, "options", allow_duplicate=True), Output(ids.PROPOSAL, "data", allow_duplicate=True),
                  Output(ids.APPLY_PROPOSAL, "disabled", allow_duplicate=True), Output(ids.CHECK, "data", allow_duplicate=True),
                  Output(ids.DISCARD_PROPOSAL, "disabled", allow_duplicate=True),
                  Output(ids.EXPORT_PROPOSAL, "disabled", allow_duplicate=True),
                  Output(ids.PROPOSALS, "options", allow_duplicate=True),
                  Input(ids.APPLY_PROPOSAL, "n_clicks"), State(ids.PROPOSAL, "data"), State(ids.WHEN, "value"),
                  State(ids.EFFECTIVE, "date"), prevent_initial_call=True)
    def _apply_proposal(clicks, pid, when, day):
        if not clicks:
            return (no_update,) * 10
        return apply_proposal_outputs(svc, cx(), request_author(), pid, when, day)

    @app.callback(Output(ids.EXPORT_FILE, "data"), Input(ids.EXPORT_PROPOSAL, "n_clicks"), State(ids.PROPOSAL, "data"),
                  prevent_initial_call=True)
    def _export(clicks, pid):
        if not clicks:
            return no_update
        return export_outputs(svc, cx(), request_author(), pid)

    @app.callback(Output(ids.DIFF, "data", allow_duplicate=True), Output(ids.DIFF_TABLE, "rowData"),
                  Input(ids.SHOW_DIFF, "n_clicks"), State(ids.CHANGE_SET, "value"), prevent_initial_call=True)
    def _diff(_n, cs_id):
        return diff_outputs(svc, cx(), request_author(), cs_id)

    @app.callback(Output(ids.RELOAD, "href"), Output(app_ids.LANG, "value"), Output(ids.LANG_NOTE, "children"),
                  Input(app_ids.LANG, "value"), State(ids.EDIT, "data"), State(ids.OPS, "data"),
                  prevent_initial_call=True)
    def _lang(lang, edit, ops):
        return lang_outputs(cx(), lang, edit, ops)

    @app.callback(Output(ids.ASOF, "data"), Input(ids.ASOF_DAY, "date"), State(ids.LEVEL, "value"),
                  prevent_initial_call=True)
    def _asof(day, level):
        return asof_outputs(svc, cx(), request_author(), day, level)
