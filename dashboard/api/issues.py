"""/api/v1/issues: report, query, one issue with its timeline, transitions, evaluation."""
from __future__ import annotations

import orjson

from geodata.access.accounts import audit_personal_view
from geodata.access.capabilities import EVALUATE_ON_BEHALF, REPORT, VIEW_ISSUES
from geodata.workflow.filters import IssueFilter
from geodata.workflow.queries import get_issue, issue_timeline, query_issues, resolve_issue_id
from geodata.workflow.reporter import reporter_actor
from geodata.workflow.service import apply_transition, report_issue

from .core import ApiError, Call, Result, json_ready
from .idempotency import public_if_keyed, run_idempotent
from .schemas.common import form_schema
from .schemas.issues import EvaluationIn, IssueOut, IssuePage, IssueQuery, ReportIn, Timeline, TransitionIn
from .v1 import bp, registry

ISSUE_KEY = {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[0-9A-Za-z]+$",
             "description": "issue id or number (e.g. WT2026000123)"}


@registry.op("POST", bp, "/issues", capability=REPORT, summary="上报 Report an issue (JSON, or multipart with photo files)",
             tag="issues", body=ReportIn, media=("application/json", "multipart/form-data"), idempotent=True,
             responses={201: IssueOut}, form_schema=form_schema(ReportIn))
def report(call: Call) -> Result:
    """The point is assigned to its block grid and the six-ones chain is filled. With an
    ``Idempotency-Key`` a retried report returns the first answer instead of a duplicate.
    The answer never carries personal data (GET the issue for that)."""
    b: ReportIn = call.body

    def compute():
        out = report_issue(call.session, call.actor, kind=b.kind, domain=b.domain, title=b.title,
                           description=b.description, lon=b.lon, lat=b.lat, crs=b.crs, source=b.source,
                           address=b.address, reporter_name=b.reporter_name, reporter_phone=b.reporter_phone,
                           nearest_override=b.nearest_override, photos=call.photos,
                           photo_store=call.state.photos, tz=call.tz)
        return 201, json_ready(IssueOut, out)

    res = run_idempotent(call, "report", compute)
    res.headers["Location"] = f"/api/v1/issues/{orjson.loads(res.data)['id']}"
    return res


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _bbox(value: str | None):
    if value is None:
        return None
    parts = value.split(",")
    try:
        nums = tuple(float(p) for p in parts)
    except ValueError:
        nums = ()
    if len(nums) != 4 or not all(abs(n) < 1e9 for n in nums):
        raise ApiError(422, "invalid_parameter", "bbox 须为 最小经度,最小纬度,最大经度,最大纬度 四个数",
                       "bbox must be four numbers: min_lon,min_lat,max_lon,max_lat", "bbox")
    return nums


@registry.op("GET", bp, "/issues", capability=VIEW_ISSUES, summary="Query issues (bbox, grid incl. descendants, status, domain, kind, "
             "time range, overdue; paginated, sorted)", tag="issues", query=IssueQuery, responses={200: IssuePage})
def list_issues(call: Call) -> Result:
    """The caller sees the grids of their grants and the issues on their responsibility chain."""
    q: IssueQuery = call.query
    f = IssueFilter(bbox=_bbox(q.bbox), grid=q.grid, statuses=_csv(q.status), domains=_csv(q.domain), kind=q.kind,
                    source=q.source, reported_from=q.from_, reported_to=q.to, overdue=q.overdue, open=q.open,
                    assignee_id=q.assignee_id, text=q.q)
    return Result(200, IssuePage, query_issues(call.session, f, call.scope, page=q.page,
                                               page_size=q.page_size, sort=q.sort, tz=call.tz))


@registry.op("GET", bp, "/issues/<key>", capability=VIEW_ISSUES, summary="One issue with its six-ones chain, photos and full timeline",
             tag="issues", responses={200: IssueOut}, path_params={"key": ISSUE_KEY})
def one_issue(call: Call) -> Result:
    """``actions`` lists what the caller may do next; send ``version`` back with it."""
    out = get_issue(call.session, call.path["key"], call.scope, actor=call.actor, tz=call.tz)
    audit_answer(call, out, "api.issue")
    return Result(200, IssueOut, out)


def audit_answer(call: Call, out: dict, via: str) -> None:
    """An answer that showed an issue's personal data is audited, one row per kind: the reporter's
    contact, the officials' phones of its six-ones chain (how many). Answers kept for idempotent
    replay carry none (``public_if_keyed``), so a replay shows nothing to audit."""
    acc, grid, rid = call.principal.account_id, (out.get("grid") or {}).get("code"), out.get("id")
    if out.get("reporter") and any(out["reporter"].values()):
        audit_personal_view(call.session, acc, "reporter_contact", grid_code=grid, record_id=rid, via=via)
    chain = out.get("six_ones") or {}
    phones = {p["id"] for k in ("leader_in_charge", "responsible", "grid_leader", "assignee")
              if (p := chain.get(k)) and p.get("phone")}
    if phones:
        audit_personal_view(call.session, acc, "official_phone", grid_code=grid, record_id=rid, count=len(phones),
                            via=via)


@registry.op("GET", bp, "/issues/<key>/timeline", capability=VIEW_ISSUES, summary="The issue's events (append-only audit trail)",
             tag="issues", responses={200: Timeline}, path_params={"key": ISSUE_KEY})
def timeline(call: Call) -> Result:
    return Result(200, Timeline, {"items": issue_timeline(call.session, call.path["key"], call.scope,
                                                          tz=call.tz)})


@registry.op("POST", bp, "/issues/<key>/transitions", capability=VIEW_ISSUES, summary="Make a workflow step (assign, sign, handle, "
             "feedback, verify, rework, close, evaluate, extend, reassign)", tag="issues", body=TransitionIn,
             media=("application/json", "multipart/form-data"), form_schema=form_schema(TransitionIn),
             idempotent=True, responses={200: IssueOut}, path_params={"key": ISSUE_KEY})
def transition(call: Call) -> Result:
    """Illegal steps → 409 (wrong state) or 403 (role); a stale ``version`` → 409
    ``changed_by_someone_else``. Nothing is written on any refusal."""
    b: TransitionIn = call.body
    iid = resolve_issue_id(call.session, call.path["key"])
    payload = {k: getattr(b, k) for k in ("assignee_id", "new_due", "satisfaction") if getattr(b, k) is not None}
    view = public_if_keyed(call)

    def compute():
        out = apply_transition(call.session, iid, b.action, call.actor, expected_version=b.version, note=b.note,
                               payload=payload, photos=call.photos, photo_store=call.state.photos, tz=call.tz,
                               view_scope=view)
        audit_answer(call, out, "api.transition")
        return 200, json_ready(IssueOut, out)

    return run_idempotent(call, "transition", compute)


@registry.op("POST", bp, "/issues/<key>/evaluation", capability=None, summary="综合评价 Evaluate a closed issue (satisfaction 1–5)",
             tag="issues", body=EvaluationIn, responses={200: IssueOut}, path_params={"key": ISSUE_KEY},
             description="By the reporter — with the `key` their report's answer carried, or the `phone` they gave — "
                         "or by an account with `evaluate_on_behalf` (the command centre); never by anyone else.")
def evaluation(call: Call) -> Result:
    b: EvaluationIn = call.body
    iid = resolve_issue_id(call.session, call.path["key"])
    actor = call.actor
    if not call.principal.may(EVALUATE_ON_BEHALF):
        if not (b.key or b.phone):
            call.require(EVALUATE_ON_BEHALF)   # a stranger: sign in (401), or this account may not (403)
        actor = reporter_actor(call.session, iid, key=b.key, phone=b.phone)
        if actor is None:
            raise ApiError(403, "not_the_reporter", "评价凭证不符：只有上报人（凭上报时的评价码或所留电话）可以评价",
                           "only the reporter may evaluate (with the key from the report, or the phone they gave)",
                           "key" if b.key else "phone")
    out = apply_transition(call.session, iid, "evaluate", actor, expected_version=b.version, note=b.comment,
                           payload={"satisfaction": b.satisfaction}, tz=call.tz)
    audit_answer(call, out, "api.evaluation")
    return Result(200, IssueOut, out)
