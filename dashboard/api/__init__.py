"""The HTTP API on the dashboard's Flask server: ``register_api(server, settings, engine)``.

- ``/api/v1/…`` — versioned JSON (report, query, issue + timeline, transitions, evaluation, 该找谁,
  patrol diary, weekly notices + outbox, photos, reference data, boundary change sets), described by the OpenAPI 3.1
  document at ``/api/v1/openapi.json``, generated from the pydantic models beside the resources
  (``schemas/<resource>.py``; never hand-written). One module per resource on the ``v1``
  blueprint: ``meta``, ``issues``, ``contact`` (该找谁), ``diary``, ``notices``, ``photos``, ``grids``
  (proposals, change sets, as-of boundaries, diffs);
- ``/open311/v2/…`` — Open311 GeoReport v2 (services, requests GET/POST, one request).

Who calls: ``Authorization: Bearer <token>`` (an account's API token; Open311 also ``api_key``),
else anonymous (a resident) — ``core.principal_from_request``; each operation declares the
capability it needs (``registry.op(capability=…)``, checked by ``core.require``). Every bad input is a 4xx JSON error ``{"error": {code, message_zh, message_en, field}}``
and writes nothing; request sizes are capped on the whole server (``limits.register_limits``: bodies
``settings.max_body_bytes``, query strings ``settings.max_query_chars``), photos by
``settings.max_photo_bytes``; every request's SQL runs under ``settings.statement_timeout_s`` (503
``query_timeout`` beyond); uploads are stored under ``settings.var_dir / 'uploads'``.
"""
from __future__ import annotations

from functools import lru_cache

import orjson
from flask import Flask
from sqlalchemy import Engine

from geodata.clock import business_zone
from geodata.db import request_limits
from geodata.workflow.photos import PhotoStore

from . import v1

# the resources register their operations on the v1 registry when imported: in the document's order
from . import meta, issues, contact, diary, notices, photos, grids, open311  # noqa: F401  # isort: skip
from . import device  # noqa: F401  # isort: skip  (the phone app: device sign-in, me)
from .core import ApiState, openapi_document, principal_from_request
from .limits import register_limits

__all__ = ["openapi", "principal_from_request", "register_api"]

API_VERSION = "1.0.0"
DESCRIPTION = (
    "Gridwatch 网格化管理 — issue workflow 上报→交办→签收→办理→反馈→认定→办结→评价, automatic grid "
    "assignment, 该找谁, 民情日记, weekly notices, Open311 GeoReport v2.\n\n"
    "Who you are: `Authorization: Bearer <token>` (an account's API token, `gridwatch user token LOGIN`); "
    "without it you are a resident, who may use the public operations only (Open311, 该找谁, meta). "
    "Each operation's `x-capability` names what the token's account must hold. Coordinates are WGS84/CGCS2000 unless `crs=gcj02`. Times are ISO 8601; without an "
    "offset they are in the business time zone (`timezone` in `/api/v1/meta`). Errors: `{\"error\": {\"code\", \"message_zh\", \"message_en\", "
    "\"field\"}}` (Open311: a GeoReport error list whose elements carry the same `error`).")


@lru_cache(maxsize=1)
def openapi() -> bytes:
    return orjson.dumps(openapi_document(v1.registry, title="Gridwatch API", version=API_VERSION,
                                         description=DESCRIPTION))


def register_api(server: Flask, settings, engine: Engine) -> None:
    """Register the /api/v1 and /open311/v2 blueprints on the dashboard's Flask server."""
    from ..web import install  # server-wide rules (converters, the error handler, headers); no-op when installed

    install(server, settings)
    tz = business_zone(settings)
    store = PhotoStore(settings.var_dir / "uploads", max_bytes=settings.max_photo_bytes)
    server.extensions["gridwatch_api"] = ApiState(settings=settings, engine=engine, tz=tz, photos=store,
                                                  limits=request_limits(settings))
    server.extensions["gridwatch_api_doc"] = openapi
    register_limits(server, settings)
    server.register_blueprint(v1.bp)
    server.register_blueprint(open311.bp)
