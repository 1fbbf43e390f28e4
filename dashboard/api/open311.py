"""Open311 GeoReport v2 (JSON) so that existing 311 clients can report and read. ``format`` other
than ``json`` is refused (406 naming ``format``): the XML flavour is not implemented.

Services map to (kind, domain): ``problem.<domain>`` (问题) and ``sentiment.<domain>`` (社情), one
per key domain. ``service_request_id`` is the issue number. Requests are WGS84 ``lat``/``long``
(address-only requests are refused: there is no geocoder). Errors are the GeoReport error list
``[{"code", "description"}]``, each element also carrying the ``error`` object of /api/v1.

Requests without ``api_key`` (an official's token) are residents' (source ``resident``); the submitter's name and
phone are stored as personal data (never shown to the public); e-mail is not stored.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, request

from geodata.access.capabilities import REPORT
from geodata.access.scope import Scope
from geodata.vocab import KIND_LABELS, STATUS_LABELS
from geodata.workflow import rules as wf
from geodata.workflow.filters import IssueFilter
from geodata.workflow.queries import get_issue, list_domains, query_issues
from geodata.workflow.service import report_issue

from .core import OPEN311_PREFIX, Call, Result
from .idempotency import run_idempotent
from .schemas.open311 import O311Created, O311PostIn, O311Query, O311Request, O311Service
from .v1 import registry, unknown_path

bp = Blueprint("open311", __name__, url_prefix=OPEN311_PREFIX)

@bp.before_request
def _json_only():
    """GeoReport v2 also defines XML (``.xml`` URLs); this server speaks JSON only, and says so
    rather than answering ``format=xml`` in JSON."""
    from .core import ApiError

    fmt = request.args.get("format")
    if fmt is not None and fmt.strip().lower() != "json":
        raise ApiError(406, "format_not_supported", "仅支持 JSON 格式（format=json，或使用 .json 地址）",
                       "only JSON is served (format=json, or the .json URLs); GeoReport XML is not implemented",
                       "format")


KIND_GROUP = {k: f"{zh} {en}" for k, (zh, en) in KIND_LABELS.items()}
SERVICE_ID = {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[0-9A-Za-z]+$",
              "description": "the issue number (or id)"}


def services(session) -> list[dict]:
    out = []
    for d in list_domains(session):
        for kind in ("problem", "sentiment"):
            days = d["handle_days"] if kind == "problem" else d["sentiment_handle_days"]
            label = KIND_LABELS[kind][0]
            out.append({
                "service_code": f"{kind}.{d['code']}",
                "service_name": f"{d['name_zh']}{label} {d['name_en']} ({kind})",
                "description": f"{d['name_zh']}{label}：{d['sign_hours']} 小时内签收，{days} 日内办结 / "
                               f"{d['name_en']}: signed for within {d['sign_hours']} h, handled within {days} days",
                "metadata": False, "type": "realtime", "keywords": f"{d['code']},{kind}",
                "group": KIND_GROUP[kind]})
    return out


def _service_names(session) -> dict[str, str]:
    return {s["service_code"]: s["service_name"] for s in services(session)}


def _service(names: dict[str, str], code: str) -> tuple[str, str, str]:
    """(kind, domain, name) of a service code among ``names`` (:func:`_service_names`)."""
    from .core import ApiError

    if code in names:
        kind, domain = code.split(".", 1)
        return kind, domain, names[code]
    raise ApiError(404, "unknown_service", f"未知服务代码“{code}”（见 services.json）",
                   f"unknown service_code '{code}' (see services.json)", "service_code")


def _as_request(item: dict, names: dict[str, str]) -> dict:
    closed = item["status"] in wf.CLOSED_STATUSES
    code = f"{item['kind']}.{item['domain'] if isinstance(item['domain'], str) else item['domain']['code']}"
    zh, en = STATUS_LABELS[item["status"]]
    grid = item.get("grid_name") or item.get("grid", {}).get("name")
    photo = item.get("photo_id")
    if photo is None and item.get("photos"):
        photo = item["photos"][0]["id"]
    return {
        "service_request_id": item["number"], "status": "closed" if closed else "open",
        "status_notes": f"{zh} / {en}", "service_name": names.get(code, code), "service_code": code,
        "description": item.get("description") or item.get("title", ""),
        "agency_responsible": f"{grid}（网格 {item.get('grid_code') or item['grid']['code']}）" if grid else None,
        "service_notice": None, "requested_datetime": item["reported_at"], "updated_datetime": item["updated_at"],
        "expected_datetime": item["due_at"], "address": item.get("address"), "address_id": None, "zipcode": None,
        "lat": item["lat"], "long": item["lon"], "media_url": f"/api/v1/photos/{photo}" if photo else None,
    }


@registry.op("GET", bp, "/services.json", capability=None, summary="Open311: services (one per domain and kind)", tag="open311",
             responses={200: list[O311Service]}, open311=True)
def services_json(call: Call) -> Result:
    return Result(200, list[O311Service], services(call.session))


@registry.op("POST", bp, "/requests.json", capability=REPORT, summary="Open311: create a service request", tag="open311",
             body=O311PostIn, media=("application/x-www-form-urlencoded", "application/json"), idempotent=True,
             responses={201: list[O311Created]}, open311=True)
def post_request(call: Call) -> Result:
    from .core import ApiError, json_ready

    b: O311PostIn = call.body
    kind, domain, name = _service(_service_names(call.session), b.service_code)
    if b.lat is None or b.long is None:
        raise ApiError(422, "location_required", "请提供 lat 和 long（暂不支持仅凭地址定位）",
                       "lat and long are required (address-only requests cannot be located)",
                       "lat" if b.lat is None else "long")
    text = (b.description or "").strip()
    title = (text.splitlines()[0][:60] if text else "") or name.split(" ")[0]
    reporter = " ".join(p for p in (b.last_name, b.first_name) if p) or None

    def compute():
        out = report_issue(call.session, call.actor, kind=kind, domain=domain, title=title, description=text,
                           lon=b.long, lat=b.lat, source=None if call.actor.is_official else "resident",
                           address=b.address_string, reporter_name=reporter, reporter_phone=b.phone, tz=call.tz)
        notice = f"已受理，归属网格：{out['grid']['name']}（{out['grid']['code']}）/ received, grid {out['grid']['code']}"
        return 201, json_ready(list[O311Created], [{"service_request_id": out["number"], "service_notice": notice,
                                                    "account_id": None}])

    return run_idempotent(call, "open311_post", compute)


@registry.op("GET", bp, "/requests.json", capability=None, summary="Open311: query service requests", tag="open311",
             query=O311Query, responses={200: list[O311Request]}, open311=True)
def get_requests(call: Call) -> Result:
    """Defaults per GeoReport v2: the last 90 days, at most 1000 requests, newest first."""
    from .core import ApiError

    q: O311Query = call.query
    ids = tuple(s.strip() for s in (q.service_request_id or "").split(",") if s.strip())
    if any(len(i) > 20 for i in ids):
        raise ApiError(422, "invalid_parameter", "service_request_id 过长", "service_request_id is too long",
                       "service_request_id")
    names = _service_names(call.session)
    kind = domain = None
    if q.service_code:
        kind, domain, _ = _service(names, q.service_code)
    start, end = q.start_date, q.end_date
    if not ids and start is None:
        try:
            start = (end or dt.datetime.now(dt.UTC)) - dt.timedelta(days=90)
        except OverflowError:  # an end_date in the first days of year 1: nothing before it to bound
            start = None
    f = IssueFilter(numbers=ids, kind=kind, domains=(domain,) if domain else (), reported_from=start,
                    reported_to=end, open=None if q.status is None else q.status == "open")
    out = []
    for page in range(1, 6):
        res = query_issues(call.session, f, Scope.public(), page=page, page_size=200, tz=call.tz, detail=True)
        out.extend(_as_request(i, names) for i in res["items"])
        if page >= res["pages"]:
            break
    return Result(200, list[O311Request], out)


@registry.op("GET", bp, "/requests/<key>.json", capability=None, summary="Open311: one service request", tag="open311",
             responses={200: list[O311Request]}, path_params={"key": SERVICE_ID}, open311=True)
def get_request(call: Call) -> Result:
    item = get_issue(call.session, call.path["key"], Scope.public(), tz=call.tz, timeline=False)
    return Result(200, list[O311Request], [_as_request(item, _service_names(call.session))])


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="root_unknown")
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="path_unknown")
def _unknown(rest: str):
    return unknown_path()
