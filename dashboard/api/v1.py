"""/api/v1: report, query, one issue with its timeline, transitions, evaluation, 该找谁, patrol diary,
weekly notices and the outbox, photos, reference data. Each view: validated input → one geodata call."""
from __future__ import annotations

import hashlib

import orjson
from flask import Blueprint, Response, current_app, request, send_file

from geodata.access.scope import Scope
from geodata.api_schemas import (
    INT32,
    ContactCard,
    DiaryIn,
    DiaryOut,
    DiaryPage,
    DiaryQuery,
    DiaryReportIn,
    EvaluationIn,
    IssueOut,
    IssuePage,
    IssueQuery,
    MetaOut,
    NoticeIn,
    NoticeRun,
    OutboxPage,
    OutboxQuery,
    PointQuery,
    ReportIn,
    Timeline,
    TransitionIn,
)
from geodata.models import ISSUE_SOURCES
from geodata.vocab import ACTION_LABELS, KIND_LABELS, ROLE_LABELS, STATUS_LABELS
from geodata.workflow import notices as notices_svc
from geodata.workflow import rules as wf
from geodata.workflow.diary import diary_to_report, list_diary, record_diary
from geodata.workflow.filters import IssueFilter
from geodata.workflow.idempotency import idempotency_scope, idempotent, request_hash
from geodata.workflow.photos import photo_file
from geodata.workflow.queries import (
    get_issue,
    issue_timeline,
    list_domains,
    query_issues,
    resolve_issue_id,
    responsible_for_point,
)
from geodata.workflow.service import apply_transition, report_issue

from .core import IDEMPOTENCY_HEADER, ApiError, Call, Registry, Result, header_token, json_ready

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
registry = Registry()

ISSUE_KEY = {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[0-9A-Za-z]+$",
             "description": "issue id or number (e.g. WT2026000123)"}
ID = {"type": "integer", "minimum": 1, "maximum": INT32}


def _form_schema(model) -> dict:
    """multipart/form-data variant of a JSON body model: the same fields, photos as files."""
    s = model.model_json_schema()
    props = {k: v for k, v in s["properties"].items() if k != "photos"}
    props["photos"] = {"type": "array", "maxItems": 9,
                       "items": {"type": "string", "format": "binary", "contentMediaType": "image/jpeg"}}
    return {"type": "object", "required": s.get("required", []), "properties": props}


def run_idempotent(call: Call, op: str, compute, headers: dict | None = None) -> Result:
    """Honour an ``Idempotency-Key``: a retry returns the first answer. Keys are scoped to the
    caller and operation (see ``geodata.workflow.idempotency.idempotency_scope``)."""
    headers = dict(headers or {})
    key = header_token(IDEMPOTENCY_HEADER)
    if key is None:
        status, body = compute()
        return Result(status, None, orjson.dumps(body), headers)
    body_json = call.body.model_dump(mode="json", exclude={"photos"}) if call.body is not None else None
    h = request_hash(op, request.path, orjson.dumps(body_json, option=orjson.OPT_SORT_KEYS),
                     [hashlib.sha256(p.data).hexdigest() for p in call.photos])
    ns = idempotency_scope(op, request.path, key, call.actor.official_id, h)
    status, body, replayed = idempotent(call.session, ns, h, compute)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Result(status, None, orjson.dumps(body), headers)


def _public_if_keyed(call: Call) -> Scope:
    """Answers that may be stored for idempotent replay carry no personal data."""
    return Scope.public() if request.headers.get(IDEMPOTENCY_HEADER) is not None else call.actor.scope()


# -- reference ------------------------------------------------------------------------------------
@registry.op("GET", bp, "/meta", summary="Reference data: domains (with deadlines), kinds, sources, statuses, "
             "actions, roles", tag="reference", responses={200: MetaOut})
def meta(call: Call) -> Result:
    """Everything a client needs to build its forms."""
    s = call.state.settings
    return Result(200, MetaOut, {
        "domains": list_domains(call.session),
        "kinds": [{"code": k, "zh": v[0], "en": v[1]} for k, v in KIND_LABELS.items()],
        "sources": list(ISSUE_SOURCES),
        "statuses": [{"code": k, "zh": v[0], "en": v[1]} for k, v in STATUS_LABELS.items()],
        "actions": [{"code": k, "zh": v[0], "en": v[1]} for k, v in ACTION_LABELS.items()],
        "roles": [{"code": k, "zh": v[0], "en": v[1]} for k, v in ROLE_LABELS.items()],
        "crs": ["wgs84", "cgcs2000", "gcj02"], "max_photo_bytes": s.max_photo_bytes,
        "max_photos": call.state.photos.max_count, "timezone": s.timezone,
    })


# -- issues ---------------------------------------------------------------------------------------
@registry.op("POST", bp, "/issues", summary="上报 Report an issue (JSON with base64 photos, or multipart)",
             tag="issues", body=ReportIn, media=("application/json", "multipart/form-data"), idempotent=True,
             responses={201: IssueOut}, form_schema=_form_schema(ReportIn))
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


@registry.op("GET", bp, "/issues", summary="Query issues (bbox, grid incl. descendants, status, domain, kind, "
             "time range, overdue; paginated, sorted)", tag="issues", query=IssueQuery, responses={200: IssuePage})
def list_issues(call: Call) -> Result:
    """Officials see the grids they hold roles in; without X-Official-Id every grid, no personal data."""
    q: IssueQuery = call.query
    f = IssueFilter(bbox=_bbox(q.bbox), grid=q.grid, statuses=_csv(q.status), domains=_csv(q.domain), kind=q.kind,
                    source=q.source, reported_from=q.from_, reported_to=q.to, overdue=q.overdue, open=q.open,
                    assignee_id=q.assignee_id, text=q.q)
    return Result(200, IssuePage, query_issues(call.session, f, call.actor.scope(), page=q.page,
                                               page_size=q.page_size, sort=q.sort, tz=call.tz))


@registry.op("GET", bp, "/issues/<key>", summary="One issue with its six-ones chain, photos and full timeline",
             tag="issues", responses={200: IssueOut}, path_params={"key": ISSUE_KEY})
def one_issue(call: Call) -> Result:
    """``actions`` lists what the caller may do next; send ``version`` back with it."""
    return Result(200, IssueOut, get_issue(call.session, call.path["key"], call.actor.scope(), actor=call.actor,
                                           tz=call.tz))


@registry.op("GET", bp, "/issues/<key>/timeline", summary="The issue's events (append-only audit trail)",
             tag="issues", responses={200: Timeline}, path_params={"key": ISSUE_KEY})
def timeline(call: Call) -> Result:
    return Result(200, Timeline, {"items": issue_timeline(call.session, call.path["key"], call.actor.scope(),
                                                          tz=call.tz)})


@registry.op("POST", bp, "/issues/<key>/transitions", summary="Make a workflow step (assign, sign, handle, "
             "feedback, verify, rework, close, evaluate, extend, reassign)", tag="issues", body=TransitionIn,
             idempotent=True, responses={200: IssueOut}, path_params={"key": ISSUE_KEY})
def transition(call: Call) -> Result:
    """Illegal steps → 409 (wrong state) or 403 (role); a stale ``version`` → 409
    ``changed_by_someone_else``. Nothing is written on any refusal."""
    b: TransitionIn = call.body
    iid = resolve_issue_id(call.session, call.path["key"])
    payload = {k: getattr(b, k) for k in ("assignee_id", "new_due", "satisfaction") if getattr(b, k) is not None}
    view = _public_if_keyed(call)

    def compute():
        out = apply_transition(call.session, iid, b.action, call.actor, expected_version=b.version, note=b.note,
                               payload=payload, photos=call.photos, photo_store=call.state.photos, tz=call.tz,
                               view_scope=view)
        return 200, json_ready(IssueOut, out)

    return run_idempotent(call, "transition", compute)


@registry.op("POST", bp, "/issues/<key>/evaluation", summary="综合评价 Evaluate a closed issue (satisfaction 1–5)",
             tag="issues", body=EvaluationIn, responses={200: IssueOut}, path_params={"key": ISSUE_KEY})
def evaluation(call: Call) -> Result:
    b: EvaluationIn = call.body
    iid = resolve_issue_id(call.session, call.path["key"])
    out = apply_transition(call.session, iid, "evaluate", call.actor, expected_version=b.version, note=b.comment,
                           payload={"satisfaction": b.satisfaction}, tz=call.tz)
    return Result(200, IssueOut, out)


# -- 该找谁 -----------------------------------------------------------------------------------------
@registry.op("GET", bp, "/responsible", summary="该找谁 Who is responsible here? point → block grid → officials",
             tag="contact", query=PointQuery, responses={200: ContactCard})
def responsible(call: Call) -> Result:
    """Phones only for an identified official whose grids cover the point."""
    q: PointQuery = call.query
    return Result(200, ContactCard, responsible_for_point(call.session, q.lon, q.lat, call.actor.scope(), crs=q.crs))


# -- patrol diary ---------------------------------------------------------------------------------
@registry.op("POST", bp, "/diary", summary="民情日记 Record a patrol or visit", tag="diary", body=DiaryIn,
             responses={201: DiaryOut})
def diary_create(call: Call) -> Result:
    b: DiaryIn = call.body
    out = record_diary(call.session, call.actor, kind=b.kind, started_at=b.started_at, ended_at=b.ended_at,
                       track=b.track.model_dump() if b.track else None, crs=b.crs, households=b.households,
                       shops=b.shops, firms=b.firms, findings=b.findings, grid_code=b.grid_code, tz=call.tz)
    return Result(201, DiaryOut, out)


@registry.op("GET", bp, "/diary", summary="List patrol diary entries", tag="diary", query=DiaryQuery,
             responses={200: DiaryPage})
def diary_list(call: Call) -> Result:
    q: DiaryQuery = call.query
    return Result(200, DiaryPage, list_diary(call.session, call.actor.scope(), grid=q.grid,
                                             official_id=q.official_id, date_from=q.from_, date_to=q.to,
                                             page=q.page, page_size=q.page_size, tz=call.tz))


@registry.op("POST", bp, "/diary/<int:diary_id>/report", summary="Turn a diary finding into a report",
             tag="diary", body=DiaryReportIn, media=("application/json", "multipart/form-data"), idempotent=True,
             responses={201: IssueOut}, path_params={"diary_id": ID}, form_schema=_form_schema(DiaryReportIn))
def diary_report(call: Call) -> Result:
    b: DiaryReportIn = call.body

    def compute():
        out = diary_to_report(call.session, call.path["diary_id"], call.actor, kind=b.kind, domain=b.domain,
                              title=b.title, description=b.description, lon=b.lon, lat=b.lat, crs=b.crs,
                              address=b.address, photos=call.photos, photo_store=call.state.photos, tz=call.tz)
        return 201, json_ready(IssueOut, out)

    return run_idempotent(call, "diary_report", compute)


# -- weekly notices -------------------------------------------------------------------------------
@registry.op("POST", bp, "/notices/weekly", summary="Generate and deliver the weekly notice to every grid leader",
             tag="notices", body=NoticeIn, responses={200: NoticeRun})
def weekly(call: Call) -> Result:
    """Operators only. Default delivery: one outbox row per grid leader (SMS channel)."""
    b: NoticeIn = call.body
    return Result(200, NoticeRun, notices_svc.send_weekly_notices(
        call.session, call.actor, week_of=b.week_of, force=b.force, dry_run=b.dry_run, tz=call.tz))


@registry.op("GET", bp, "/outbox", summary="Outgoing messages (weekly notices)", tag="notices", query=OutboxQuery,
             responses={200: OutboxPage})
def outbox(call: Call) -> Result:
    """Operators and maintainers see every message; other officials their own."""
    q: OutboxQuery = call.query
    actor = call.actor
    if not actor.is_official:
        raise ApiError(403, "official_required", "只有工作人员可以查看发件箱", "only officials may read the outbox",
                       "X-Official-Id")
    official_id = q.official_id
    if not (actor.roles & wf.DISPATCHERS):
        if official_id not in (None, actor.official_id):
            raise ApiError(403, "forbidden", "只能查看发给自己的消息", "you may only read your own messages",
                           "official_id")
        official_id = actor.official_id
    return Result(200, OutboxPage, notices_svc.list_outbox(call.session, official_id=official_id, page=q.page,
                                                           page_size=q.page_size, tz=call.tz))


# -- photos ---------------------------------------------------------------------------------------
@registry.op("GET", bp, "/photos/<int:photo_id>", summary="A report or feedback photo", tag="issues",
             responses={200: ("image/*", {"type": "string", "contentMediaType": "image/*"})},
             path_params={"photo_id": ID})
def photo(call: Call) -> Result:
    path, ctype = photo_file(call.session, call.path["photo_id"], call.state.photos)
    resp = send_file(path, mimetype=ctype, max_age=86400)
    return Result(200, None, None, raw=resp)


# -- the document and unknown paths ---------------------------------------------------------------
@bp.route("/openapi.json", methods=["GET"])
def openapi_json():
    return Response(current_app.extensions["gridwatch_api_doc"](), mimetype="application/json")


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def unknown_path():
    """404 for a path under the API that no operation serves (405 with ``Allow`` when another method would)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for m in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(request.path, method=m)
        except Exception:
            continue
        if not endpoint.endswith("_unknown"):
            allowed.append(m)
    if allowed:
        raise ApiError(405, "method_not_allowed", f"该地址只支持 {', '.join(allowed)}",
                       f"this endpoint allows only {', '.join(allowed)}", None, headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, "not_found", f"地址 {request.path} 不存在", f"no endpoint {request.path}", None)


@bp.route("/", defaults={"rest": ""}, methods=ALL_METHODS, endpoint="root_unknown")
@bp.route("/<path:rest>", methods=ALL_METHODS, endpoint="path_unknown")
def _unknown(rest: str):
    return unknown_path()
