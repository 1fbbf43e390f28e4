"""``Idempotency-Key`` for the API's writes: a retried request returns the first answer."""
from __future__ import annotations

import hashlib

import orjson
from flask import request

from geodata.access.scope import Scope
from geodata.workflow.idempotency import idempotency_scope, idempotent, request_hash

from .core import IDEMPOTENCY_HEADER, Call, Result, header_token


def run_idempotent(call: Call, op: str, compute, headers: dict | None = None) -> Result:
    """Honour an ``Idempotency-Key``: a retry returns the first answer. Keys are scoped to the
    caller and operation (see ``geodata.issues.idempotency_scope``)."""
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


def public_if_keyed(call: Call) -> Scope:
    """Answers that may be stored for idempotent replay carry no personal data."""
    return Scope.public() if request.headers.get(IDEMPOTENCY_HEADER) is not None else call.scope
