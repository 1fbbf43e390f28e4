"""The /api/v1 blueprint and its operation registry (the resources — ``meta``, ``issues``,
``contact``, ``diary``, ``notices``, ``photos`` — register their operations on them), the
OpenAPI document's route, and the answer for a path no operation serves."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .core import ApiError, Registry
from .schemas.common import INT32

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
registry = Registry()

#: a BIGINT-free integer id in a path (diary entries, photos)
ID = {"type": "integer", "minimum": 1, "maximum": INT32}


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
