"""The API's small machinery: an operation registry (Flask rule + pydantic models → view and OpenAPI
operation), request parsing, who is calling (bearer tokens) and what they may do (each operation's
capability), JSON errors, and the OpenAPI 3.1 generator.

Views stay thin: parse and validate with pydantic, call one ``geodata`` function in one transaction,
serialise the answer through its response model (so what is served is what the document says).
"""
from __future__ import annotations

import binascii
import datetime as dt
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from dash.exceptions import DependencyException
from flask import Blueprint, Response, current_app, has_app_context, has_request_context, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, InternalServerError

from geodata.access.accounts import Principal, TokenCache, verify_token
from geodata.access.rls import set_scope
from geodata.access.scope import Scope
from geodata.db import Limits, is_statement_timeout, is_unavailable, session_scope
from geodata.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    IllegalTransitionError,
    NotFoundError,
    TooLargeError,
    TransitionForbiddenError,
    UnsupportedTypeError,
)
from geodata.workflow.identity import Actor
from geodata.workflow.photos import SNIFF_BYTES, PhotoIn, PhotoStore, photo_kind

from .schemas.common import ErrorOut, PhotoB64
from .schemas.open311 import O311ErrorItem

log = logging.getLogger("gridwatch.api")

#: seconds a client may wait before asking again after a 503 (the map's live poll asks anyway)
RETRY_AFTER_S = 5
#: a token whose use was checked this recently decides, without asking the database, whether a
#: request's body is worth reading (the request's transaction checks the token again)
RECENT_TOKEN_S = 5.0

AUTH_HEADER = "Authorization"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,200}")


class ApiError(Exception):
    def __init__(self, status: int, code: str, zh: str, en: str, field: str | None = None,
                 detail: dict | None = None, headers: dict | None = None):
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.field = status, code, zh, en, field
        self.detail, self.headers = detail, headers or {}


@dataclass
class ApiState:
    settings: Any
    engine: Engine
    tz: ZoneInfo
    photos: PhotoStore
    limits: Limits | None = None   # each request's statement and idle-in-transaction timeouts
    tokens: TokenCache = field(default_factory=TokenCache)   # callers' principals, checked on each use


@dataclass
class Call:
    """What a view gets: the open transaction, who is calling, validated query/body, path values."""

    state: ApiState
    session: Session
    principal: Principal
    query: Any = None
    body: Any = None
    path: dict = field(default_factory=dict)
    photos: list[PhotoIn] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return self.state.tz

    @property
    def actor(self) -> Actor:
        """The caller as the workflow sees them."""
        return self.principal.actor

    @property
    def scope(self) -> Scope:
        """What the caller may see."""
        return self.principal.scope()

    def require(self, capability: str, grid_code: str | None = None) -> None:
        require(self.principal, capability, grid_code)


@dataclass
class Result:
    status: int
    model: type[BaseModel] | None
    data: Any
    headers: dict = field(default_factory=dict)
    raw: Response | None = None


# -- who is calling ------------------------------------------------------------------------------
def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer <token>`` (absent → None; another scheme or a
    malformed value → 401 naming the header)."""
    raw = request.headers.get(AUTH_HEADER)
    if raw is None:
        return None
    scheme, _, token = raw.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not _KEY_RE.fullmatch(token):
        raise unauthorized("invalid_token", "Authorization 须为 Bearer 令牌",
                           "Authorization must be 'Bearer <token>'", AUTH_HEADER)
    return token


def unauthorized(code: str, zh: str, en: str, fld: str | None = AUTH_HEADER) -> ApiError:
    return ApiError(401, code, zh, en, fld, headers={"WWW-Authenticate": 'Bearer realm="gridwatch"'})


def principal_from_request(session: Session, api_key: str | None = None) -> Principal:
    """THE one place that decides who calls the API: the account of ``Authorization: Bearer
    <token>`` (or, for Open311, of the GeoReport ``api_key``); neither → anonymous (a resident). An
    unknown, revoked or disabled token is 401 — never silently anonymous."""
    token = bearer_token()
    fld = AUTH_HEADER
    if token is None and api_key:
        token, fld = api_key, "api_key"
    if token is None:
        return Principal.anonymous()
    state: ApiState | None = current_app.extensions.get("gridwatch_api") if has_app_context() else None
    # the cache checks the token on each use too (one statement, which also sets the principal's scope)
    principal = state.tokens.verify(session, token) if state is not None else verify_token(session, token)
    if principal is None:
        raise unauthorized("invalid_token", "令牌无效、已吊销或账号已停用", "the token is unknown, revoked or its "
                           "account is disabled", fld)
    return principal


def require_signed_in(principal: Principal) -> None:
    """Operations about the caller's own account: anonymous → 401 ``sign_in_required``."""
    if principal.is_anonymous:
        raise unauthorized("sign_in_required", "请先登录", "sign in first")


def require(principal: Principal, capability: str, grid_code: str | None = None) -> None:
    """THE capability check of the API: anonymous → 401 ``sign_in_required``, an account without
    ``capability`` (on ``grid_code``) → 403 ``forbidden_capability``."""
    if principal.may(capability, grid_code):
        return
    if principal.is_anonymous:
        raise unauthorized("sign_in_required", "请使用工作人员令牌访问（Authorization: Bearer）",
                           "an official's token is required (Authorization: Bearer)")
    raise ApiError(403, "forbidden_capability", "该账号无此权限", f"this account may not {capability.replace('_', ' ')}"
                   + (f" in grid {grid_code}" if grid_code else ""), AUTH_HEADER)


def request_scope(op: Operation, principal: Principal) -> Scope:
    """What the request's transaction may see (row-level security): the public's view (every grid,
    no personal data) on Open311 and for anonymous callers (they reach only the public operations:
    meta, 该找谁, photos); any other call the caller's own scope."""
    return Scope.public() if op.open311 or principal.is_anonymous else principal.scope()


def route_rule() -> str:
    """The matched URL rule (``/api/v1/issues/<int:issue_id>``) for a log line: it names the route
    without echoing the raw path, which can carry request values."""
    if not has_request_context():
        return "-"
    return request.url_rule.rule if request.url_rule is not None else "(no route)"


def header_token(name: str) -> str | None:
    """A token header such as ``Idempotency-Key``: 1–200 visible ASCII characters; absent → None."""
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not _KEY_RE.fullmatch(raw):
        raise ApiError(400, "invalid_header", f"{name} 须为 1–200 个可见 ASCII 字符",
                       f"{name} must be 1–200 visible ASCII characters", name)
    return raw


# -- errors ---------------------------------------------------------------------------------------
_ZH = {
    "missing": "缺少必填字段 {f}", "extra_forbidden": "不支持的字段 {f}", "int_parsing": "{f} 须为整数",
    "int_type": "{f} 须为整数", "int_from_float": "{f} 须为整数", "float_parsing": "{f} 须为数字",
    "float_type": "{f} 须为数字", "bool_parsing": "{f} 须为 true 或 false", "bool_type": "{f} 须为 true 或 false",
    "literal_error": "{f} 取值无效，可选：{expected}", "string_too_long": "{f} 过长（最多 {max_length} 字）",
    "string_too_short": "{f} 不能为空", "greater_than_equal": "{f} 须不小于 {ge}",
    "less_than_equal": "{f} 须不大于 {le}", "datetime_parsing": "{f} 须为 ISO 8601 日期时间",
    "datetime_from_date_parsing": "{f} 须为 ISO 8601 日期时间", "datetime_type": "{f} 须为 ISO 8601 日期时间",
    "date_parsing": "{f} 须为日期 YYYY-MM-DD", "date_from_datetime_parsing": "{f} 须为日期 YYYY-MM-DD",
    "date_from_datetime_inexact": "{f} 须为日期 YYYY-MM-DD", "date_type": "{f} 须为日期 YYYY-MM-DD",
    "too_long": "{f} 项数过多（最多 {max_length} 项）", "finite_number": "{f} 须为有限数值",
    "model_type": "{f} 须为 JSON 对象", "model_attributes_type": "{f} 须为 JSON 对象", "dict_type": "{f} 须为对象",
    "list_type": "{f} 须为数组", "string_type": "{f} 须为字符串", "value_error": "{f} 无效",
    "string_unicode": "{f} 须为有效的 UTF-8 文本", "union_tag_invalid": "{f} 取值无效",
    "string_control": "{f} 不能含控制字符（单行字段也不能换行）", "string_blank": "{f} 不能为空（不能只有空白或不可见字符）",
}


def validation_error(err: ValidationError, where: str = "body") -> ApiError:
    e = err.errors(include_url=False)[0]
    parts = [str(p) for p in e.get("loc", ()) if p not in ("function-after",)]
    # pydantic names a union member or validator last (…, 'date', 'function-after[…]'): not a field
    while len(parts) > 1 and re.fullmatch(r"date|datetime|function-after\[.*\]", parts[-1]):
        parts.pop()
    loc = ".".join(parts)
    if e["type"] == "json_invalid":
        return ApiError(400, "malformed_json", "请求体不是有效的 JSON", f"the request body is not valid JSON: "
                        f"{e.get('ctx', {}).get('error', e['msg'])}", "body")
    fld = loc or where  # a whole-body (or whole-query) error names the body (or query) itself
    ctx = {k: v for k, v in (e.get("ctx") or {}).items() if isinstance(v, (str, int, float))}
    try:
        zh = _ZH.get(e["type"], "{f} 取值无效").format(f=fld, **ctx)
    except (KeyError, IndexError):
        zh = f"{fld} 取值无效"
    return ApiError(422, "invalid_" + ("field" if loc else where), zh, f"{fld}: {e['msg']}", fld)


#: THE mapping of domain errors (geodata.errors) to HTTP statuses; any other DomainError is 422.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFoundError: 404, ConflictError: 409, IllegalTransitionError: 409, ForbiddenError: 403,
    TransitionForbiddenError: 403, TooLargeError: 413, UnsupportedTypeError: 415,
}


def domain_status(exc: DomainError) -> int:
    """The HTTP status of a domain error: its nearest class in :data:`DOMAIN_STATUS`, else 422."""
    return next((DOMAIN_STATUS[c] for c in type(exc).__mro__ if c in DOMAIN_STATUS), 422)


def error_from_exception(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DomainError):
        return ApiError(domain_status(exc), exc.code, exc.message_zh, exc.message_en, exc.field, exc.detail or None)
    if isinstance(exc, InternalServerError) and exc.original_exception is not None:
        return error_from_exception(exc.original_exception)
    if isinstance(exc, DependencyException):  # Dash: an unknown package or file under /_dash-component-suites/
        return ApiError(404, "not_found", "地址不存在", "no such file", None)
    if isinstance(exc, HTTPException) and (exc.code or 400) < 500:
        code = exc.code or 400
        zh, en, name = {
            404: ("地址不存在", "no such endpoint", "not_found"),
            405: ("不支持该请求方法", "method not allowed here", "method_not_allowed"),
            413: ("请求体过大", "the request body is too large", "too_large"),
            415: ("不支持的内容类型", "unsupported content type", "unsupported_media_type"),
        }.get(code, ("请求无效", exc.description or "bad request", "bad_request"))
        headers = {}
        if code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return ApiError(code, name, zh, en, "body" if code == 413 else None, headers=headers)
    if isinstance(exc, DataError):
        return ApiError(422, "invalid_value", "数值超出范围或格式不被数据库接受", "a value is out of range or "
                        "not accepted by the database", None)
    if isinstance(exc, IntegrityError):
        return ApiError(409, "conflict", "与现有数据冲突，请刷新后重试", "conflicts with existing data; reload "
                        "and try again", None)
    if is_statement_timeout(exc):   # one line, no traceback: the limit did its job
        log.warning("statement timeout: %s %s", request.method if has_request_context() else "-", route_rule())
        return ApiError(503, "query_timeout", "查询超时，请缩小查询范围或稍后重试",
                        "the query took too long; narrow it or try again later", None,
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, PoolTimeout):
        log.warning("server busy: no database connection free within the pool timeout")
        return ApiError(503, "server_busy", "服务器繁忙，请稍后重试", "the server is busy; try again shortly",
                        None, headers={"Retry-After": "2"})
    if isinstance(exc, OperationalError):
        # an outage is logged once per transition by geodata.db.availability, not per request
        if not is_unavailable(exc):
            log.error("database error: %s", type(exc).__name__)
        return ApiError(503, "database_unavailable", "数据库暂不可用，请稍后重试",
                        "the database is unavailable; try again later", None,
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    # Type and stack only: an exception's text can carry request values (a database error lists the
    # statement's parameters, e.g. a reporter's phone), and personal data is never logged.
    log.error("unhandled error: %s\n%s", type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)).rstrip())
    return ApiError(500, "internal_error", "服务器内部错误", "internal server error", None)


#: where the Open311 API lives: its errors are a GeoReport error list (``error_response``)
OPEN311_PREFIX = "/open311/v2"


def is_open311_request() -> bool:
    """Is the current request addressed to the Open311 API? (by path: also true before routing,
    for a request refused by the limits, and for a path no route matches)"""
    return has_request_context() and (request.path == OPEN311_PREFIX
                                       or request.path.startswith(OPEN311_PREFIX + "/"))


def error_response(err: ApiError, open311: bool = False) -> Response:
    body = {"code": err.code, "message_zh": err.zh, "message_en": err.en, "field": err.field}
    if err.detail:
        body["detail"] = err.detail
    payload: Any = {"error": body}
    if open311:
        payload = [{"code": err.status, "description": f"{err.zh} / {err.en}", "error": body}]
    return Response(orjson.dumps(payload), status=err.status, mimetype="application/json", headers=err.headers)


# -- parsing --------------------------------------------------------------------------------------
def is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def query_dict() -> dict:
    return {k: (",".join(v) if len(v) > 1 else v[0]) for k, v in request.args.lists()}


def decode_photos(items: list[PhotoB64], max_bytes: int, fld: str = "photos") -> list[PhotoIn]:
    out = []
    for i, p in enumerate(items):
        if len(p.data) * 3 // 4 > max_bytes + 3:
            raise ApiError(413, "photo_too_large", f"第 {i + 1} 张照片超过 {max_bytes // 1024} KB",
                           f"photo {i + 1} is larger than {max_bytes // 1024} KB", f"{fld}[{i}]")
        data = p.data.split(",", 1)[1] if p.data.startswith("data:") else p.data
        try:
            # the type from the first bytes (16 characters → 12 bytes) before the whole photo is
            # decoded: junk is refused at once; then a strict decode in C (``b64decode(validate=True)``
            # runs a regular expression over the whole text, the bulk of a big body's cost)
            head = binascii.a2b_base64(data[:16], strict_mode=True)[:SNIFF_BYTES]
        except (binascii.Error, ValueError):
            head = None
        if head is not None:
            photo_kind(head, p.content_type, i, f"{fld}[{i}]")
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_base64", f"第 {i + 1} 张照片不是有效的 base64",
                           f"photo {i + 1} is not valid base64", f"{fld}[{i}].data") from None
        out.append(PhotoIn(raw, p.content_type, None, fld))
    return out


# -- the registry ---------------------------------------------------------------------------------
@dataclass
class Operation:
    method: str
    rule: str
    path: str
    fn: Callable[[Call], Result]
    summary: str
    description: str
    tag: str
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    media: tuple[str, ...]
    responses: dict[int, Any]
    idempotent: bool
    open311: bool
    path_params: dict[str, dict]
    operation_id: str
    form_schema: dict | None = None
    capability: str | None = None   # what the caller needs (None: public, residents included)
    signed_in: bool = False         # no capability, but an account (its own token): anonymous → 401


ERROR_CODES = (400, 401, 403, 404, 405, 409, 413, 414, 415, 422)


class Registry:
    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def op(self, method: str, bp: Blueprint, rule: str, *, summary: str, tag: str, responses: dict[int, Any],
           query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
           media: tuple[str, ...] = ("application/json",), idempotent: bool = False, open311: bool = False,
           path_params: dict[str, dict] | None = None, description: str = "", form_schema: dict | None = None,
           capability: str | None, signed_in: bool = False):
        """``capability``: what the caller must hold (somewhere) to call it, checked before the view
        runs (:func:`require`); ``None`` declares the operation public, or with ``signed_in`` open to
        any account (about the caller itself: who am I, sign this device out). Grid-bound checks happen
        where the grid is known (the workflow, the scope of every read)."""
        def deco(fn: Callable[[Call], Result]):
            path = (bp.url_prefix or "") + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
            op = Operation(method, rule, path, fn, summary, description or (fn.__doc__ or "").strip(), tag, query,
                           body, media, responses, idempotent, open311, path_params or {}, fn.__name__,
                           form_schema, capability, signed_in)
            self.ops.append(op)
            bp.add_url_rule(rule, endpoint=fn.__name__, view_func=_make_view(op), methods=[method])
            return fn
        return deco


def _read_body() -> bytes | bytearray:
    """The whole body, read in one go where its length is known (``get_data`` reads 64 KB at a
    time, a big upload thousands of small reads each taking the interpreter's lock back from
    the other requests' threads); the length is within the caps already (``limits``)."""
    n = request.content_length
    if not n:
        return request.get_data(cache=True)
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = request.stream.readinto(view[got:])
        if not k:
            break
        got += k
    return buf if got == n else buf[:got]


def _parse_body(op: Operation, state: ApiState) -> tuple[Any, list[PhotoIn]]:
    mt = request.mimetype or ""
    if is_json(mt) and any(is_json(m) for m in op.media):
        data = _read_body()
        try:
            # strict: in JSON a number is a number (``true`` is not 1, ``"34.7"`` is not 34.7); forms and
            # query strings carry text, so they are parsed leniently
            model = op.body.model_validate_json(data or b"", strict=True)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise validation_error(exc) from None
        photos = decode_photos(getattr(model, "photos", []) or [], state.settings.max_photo_bytes)
        return model, photos
    if (mt == "multipart/form-data" and mt in op.media) or (mt == "application/x-www-form-urlencoded" and mt in op.media):
        form = {k: (v[-1] if len(v) == 1 else v) for k, v in request.form.lists()}
        photos = []
        if mt == "multipart/form-data":
            for f in request.files.getlist("photos"):
                photos.append(PhotoIn(f.read(state.settings.max_photo_bytes + 1), f.mimetype, f.filename, "photos"))
            unknown_files = [k for k in request.files if k != "photos"]
            if unknown_files:
                raise ApiError(422, "invalid_field", f"不支持的文件字段 {unknown_files[0]}",
                               f"unexpected file field '{unknown_files[0]}' (use 'photos')", unknown_files[0])
        if "photos" in form:  # a text value where a file belongs would otherwise vanish silently
            raise ApiError(422, "invalid_field", "photos 须以文件上传", "photos must be uploaded as files", "photos")
        for k, v in list(form.items()):
            if isinstance(v, list):
                raise ApiError(422, "invalid_field", f"字段 {k} 重复", f"field '{k}' is repeated", k)
            if v == "" and k not in ("description", "note", "comment"):
                form.pop(k)
        try:
            model = op.body.model_validate(form)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise validation_error(exc) from None
        return model, photos
    expected = " or ".join(op.media)
    raise ApiError(415, "unsupported_media_type", f"Content-Type 须为 {expected}",
                   f"Content-Type must be {expected}", "Content-Type")


def _parse_query(op: Operation, tz: ZoneInfo) -> Any:
    try:
        q = op.query.model_validate(query_dict())  # type: ignore[union-attr]
    except ValidationError as exc:
        err = validation_error(exc, "query")
        err.code = "invalid_parameter" if err.field != "query" else err.code
        raise err from None
    for name in ("from_", "to", "start_date", "end_date"):  # naive times are business-local
        v = getattr(q, name, None)
        if isinstance(v, dt.datetime) and v.tzinfo is None:
            setattr(q, name, v.replace(tzinfo=tz))
    return q


def _make_view(op: Operation):
    def view(**path: Any):
        # any exception goes to the server's one error handler (dashboard.web → error_from_exception)
        state: ApiState = current_app.extensions["gridwatch_api"]
        # who calls and what they may do come first: a stranger's body or query is never parsed (a
        # malformed Authorization header is a 401 before anything else; no token on an operation
        # that needs a capability, a 401 without touching the database)
        token = bearer_token()
        known: Principal | None = None   # who calls, settled before the request's transaction
        if op.capability is not None and not (op.open311 and token is None):   # Open311's api_key: in the body
            if token is None:
                known = Principal.anonymous()
            elif op.body is not None:
                recent = state.tokens.recent(token, RECENT_TOKEN_S)
                if recent is not None:
                    require(recent, op.capability)   # and again below, once the token is checked
                else:
                    # the token is checked in its own short transaction, so that no connection is
                    # held while a (large) body arrives and is parsed
                    with session_scope(state.engine, state.limits) as s:
                        known = principal_from_request(s)
            if known is not None:
                require(known, op.capability)
        elif op.signed_in and token is None:
            require_signed_in(Principal.anonymous())
        if op.body is not None:
            body, photos = _parse_body(op, state)
            query = _parse_query(op, state.tz) if op.query is not None else None
        else:
            body, photos, query = None, [], None
        with session_scope(state.engine, state.limits) as session:
            if known is not None:
                principal = known
            else:
                # GeoReport v2: the key is a form/JSON field of a POST, a query parameter of a GET
                api_key = (getattr(body, "api_key", None) or request.args.get("api_key")) if op.open311 else None
                principal = principal_from_request(session, api_key)   # accounts and tokens: no scope needed
                if op.capability is not None:
                    require(principal, op.capability)
                elif op.signed_in:
                    require_signed_in(principal)
            if op.body is None and op.query is not None:
                query = _parse_query(op, state.tz)
            set_scope(session, request_scope(op, principal))
            result = op.fn(Call(state, session, principal, query, body, path, photos))
            if result.raw is None and result.model is not None and not isinstance(result.data, (bytes, str)):
                result.data = _dump(result.model, result.data)
        if result.raw is not None:
            return result.raw
        return Response(result.data, status=result.status, mimetype="application/json", headers=result.headers)

    view.__name__ = op.fn.__name__
    return view


def _dump(model: Any, data: Any) -> bytes:
    from pydantic import TypeAdapter

    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(data).model_dump_json().encode()
    return TypeAdapter(model).dump_json(TypeAdapter(model).validate_python(data))


def json_ready(model: Any, data: Any) -> Any:
    """The JSON value a response model gives for ``data`` (for idempotency records)."""
    return orjson.loads(_dump(model, data))


# -- OpenAPI --------------------------------------------------------------------------------------
def _error_schema(open311: bool) -> dict:
    if open311:
        return {"type": "array", "items": {"$ref": "#/components/schemas/O311ErrorItem"}}
    return {"$ref": "#/components/schemas/ErrorOut"}


def _schema_of(model: Any, mapping: dict, defs: dict) -> dict:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return mapping[(model, "serialization")]
    from pydantic import TypeAdapter

    s = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    defs.update(s.pop("$defs", {}))
    return s


def openapi_document(registry: Registry, *, title: str, version: str, description: str) -> dict:
    models: list[tuple[type[BaseModel], str]] = [(ErrorOut, "serialization"), (O311ErrorItem, "serialization")]
    for op in registry.ops:
        if op.body is not None:
            models.append((op.body, "validation"))
        for m in op.responses.values():
            if isinstance(m, type) and issubclass(m, BaseModel):
                models.append((m, "serialization"))
    models = list(dict.fromkeys(models))
    mapping, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    defs: dict = dict(top.get("$defs", {}))
    paths: dict[str, dict] = {}
    for op in registry.ops:
        params: list[dict] = []
        for name, schema in op.path_params.items():
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        if op.query is not None:
            qs = op.query.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
            defs.update(qs.pop("$defs", {}))
            required = set(qs.get("required", []))
            for name, prop in qs.get("properties", {}).items():
                p = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if "description" in prop:
                    p["description"] = prop["description"]
                params.append(p)
        if op.idempotent:
            params.append({"name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
                           "description": "retry key: a retried request returns the first answer",
                           "schema": {"type": "string", "pattern": r"^[!-~]{1,200}$"}})
        item: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
                                "parameters": params, "responses": {}}
        # a capability: an official's token; public: anonymous too (Open311 also takes api_key)
        item["security"] = [{"bearer": []}] if op.capability or op.signed_in else [{}, {"bearer": []}]
        if op.capability:
            item["x-capability"] = op.capability
        if op.description:
            item["description"] = op.description
        if op.body is not None:
            content = {}
            ref = {"$ref": f"#/components/schemas/{op.body.__name__}"}
            for media in op.media:
                if is_json(media):
                    content[media] = {"schema": ref}
                else:
                    content[media] = {"schema": op.form_schema or ref}
            item["requestBody"] = {"required": True, "content": content}
        for code, model in op.responses.items():
            if isinstance(model, tuple):  # (media type, schema) for non-JSON answers
                item["responses"][str(code)] = {"description": "OK", "content": {model[0]: {"schema": model[1]}}}
            else:
                item["responses"][str(code)] = {"description": "OK" if code < 300 else "see the error body",
                                                "content": {"application/json": {"schema": _schema_of(model, mapping, defs)}}}
        for code in ERROR_CODES + ((406,) if op.open311 else ()) + (503,):
            item["responses"].setdefault(str(code), {"description": "error (message in Chinese and English, "
                                                                    "naming the field)",
                                                     "content": {"application/json": {"schema": _error_schema(op.open311)}}})
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "an account's API token (`gridwatch user token LOGIN`); Open311 also accepts it as `api_key`"}}},
    }
