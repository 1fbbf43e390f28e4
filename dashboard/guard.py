"""The guard of the Dash callback endpoint (``POST /_dash-update-component``): every request is
checked before Dash runs a callback, so a malformed one is a 4xx JSON error in the API's format
``{"error": {code, message_zh, message_en, field}}`` and never reaches a callback or the database.

- :data:`VALUES`: the value type of every (component id, property) a server callback reads —
  strict pydantic types: enumerations, bounded strings and lists, ids within their columns' ranges,
  finite coordinates. ``None`` is always allowed (the browser sends null, or nothing, for a
  property not set yet).
- :class:`Guard` makes one request model per server-side callback from ``app.callback_map`` (its
  output, outputs, inputs and state in the registered order, the triggering prop ids), so a page
  added later is checked the same way; a callback reading a property without a type in
  :data:`VALUES` stops the app at start-up. The types are declared beside what reads them: the
  shared components' in ``components/values.py``, each page's in ``pages/<page>/values.py`` (listed
  by the page registry), built from the shared types in ``dashboard/values.py``.
- the envelope: POST only, JSON only, at most ``settings.max_callback_bytes`` (enforced by ``dashboard.api.limits``); an unknown (or a
  clientside) output is a 4xx.

A rejected request is logged on one line (status, code, the field named by component id and
property), never with a traceback and never with the values it carried.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from dash import Dash
from dash._utils import split_callback_id
from flask import Response, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import InitErrorDetails
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge

from .api.core import ApiError, error_from_exception, error_response, validation_error
from .api.schemas.common import Text
from .pages import registry

log = logging.getLogger("gridwatch.dashboard")

#: (component id, property) → the type of its value, for every property a server callback reads:
#: the shared components' and every page's (each page declares its own in ``pages/<page>/values.py``).
VALUES: dict[tuple[str, str], Any] = registry.callback_values()



# -- one request model per callback --------------------------------------------------------------
_ENVELOPE = ConfigDict(extra="forbid", strict=True)


class _Head(BaseModel):
    """What picks the callback: the output key (everything else is checked by its model)."""
    model_config = ConfigDict(extra="ignore", strict=True)
    output: Text(4000)


@dataclass(frozen=True)
class CallbackSpec:
    output: str
    inputs: tuple[str, ...]          # "id.property", in the registered order
    state: tuple[str, ...]
    model: type[BaseModel]


def _dep_name(dep: dict[str, Any]) -> str:
    if not isinstance(dep["id"], str):
        raise NotImplementedError(f"pattern-matching callback ids are not guarded yet: {dep['id']!r}")
    return f"{dep['id']}.{dep['property']}"


def _value_model(name: str, dep: dict[str, Any]) -> type[BaseModel]:
    key = (dep["id"], dep["property"])
    if key not in VALUES:
        raise LookupError(f"callback {name}: {_dep_name(dep)} has no value type; add it to "
                          "dashboard.guard.VALUES")
    return create_model(f"{name}:{_dep_name(dep)}", __config__=_ENVELOPE,
                        id=(Literal[dep["id"]], ...), property=(Literal[dep["property"]], ...),
                        value=(VALUES[key] | None, None))


def _output_model(name: str, out: dict[str, Any]) -> type[BaseModel]:
    prop = out["property"]   # 'prop@hash' for allow_duplicate; the renderer may send either
    return create_model(f"{name}:{out['id']}.{prop}", __config__=_ENVELOPE,
                        id=(Literal[out["id"]], ...),
                        property=(Literal[prop, prop.split("@")[0]], ...))


def callback_spec(output: str, cb: dict[str, Any]) -> CallbackSpec:
    inputs, state = cb.get("inputs", []), cb.get("state", [])
    if cb.get("no_output"):
        raise NotImplementedError(f"callbacks without outputs are not guarded yet: {output}")
    parts = split_callback_id(output)   # a list for a multi-output callback, else one {id, property}
    outputs = (tuple[tuple(_output_model(output, o) for o in parts)] if isinstance(parts, list)  # type: ignore[misc]
               else _output_model(output, parts))
    triggers = Annotated[list[Literal[tuple(_dep_name(d) for d in inputs)]],  # type: ignore[misc]
                         Field(max_length=len(inputs))]
    fields: dict[str, Any] = {
        "output": (Literal[output], ...),
        "outputs": (outputs, ...),
        "inputs": (tuple[tuple(_value_model(output, d) for d in inputs)], ...),
        "changedPropIds": (triggers, []),
        "parsedChangedPropsIds": (triggers, []),
    }
    if state:   # the renderer leaves 'state' out when a callback has none
        fields["state"] = (tuple[tuple(_value_model(output, d) for d in state)], ...)
    model = create_model(f"Callback[{output}]", __config__=_ENVELOPE, **fields)
    return CallbackSpec(output, tuple(map(_dep_name, inputs)), tuple(map(_dep_name, state)), model)


# -- errors ---------------------------------------------------------------------------------------
def _field_loc(loc: tuple[Any, ...], spec: CallbackSpec) -> tuple[Any, ...]:
    """A pydantic location in the request → one naming the component: ('inputs', 1, 'value', 'x')
    → ('map-filter.data', 'x'); the outputs and trigger lists are named as a whole."""
    if not loc:
        return ()
    head = loc[0]
    if head in ("inputs", "state") and len(loc) > 1 and isinstance(loc[1], int):
        names = spec.inputs if head == "inputs" else spec.state
        name = names[loc[1]] if loc[1] < len(names) else head
        return (name, *loc[3:]) if len(loc) > 2 and loc[2] == "value" else (name,)
    return (head,)


def _request_error(exc: ValidationError, spec: CallbackSpec) -> ApiError:
    """The first problem, named by component id and property, in the API's wording; the request's
    values never appear (an unknown key is not repeated either: its object is named)."""
    e = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(e["loc"])
    if e["type"] == "extra_forbidden":
        parent = ".".join(str(p) for p in _field_loc(loc[:-1], spec)) or "body"
        return ApiError(422, "invalid_field", f"{parent} 含有不支持的字段",
                        f"{parent}: has an unsupported key", parent)
    ctx = {k: v for k, v in (e.get("ctx") or {}).items() if k != "tag"}
    detail = InitErrorDetails(type=e["type"], loc=_field_loc(loc, spec), input=None)
    if ctx:
        detail["ctx"] = ctx
    try:
        named = ValidationError.from_exception_data(exc.title, [detail])
    except (TypeError, ValueError, KeyError):   # an error type that cannot be rebuilt
        fld = ".".join(str(p) for p in _field_loc(loc, spec)) or "body"
        return ApiError(422, "invalid_field", f"{fld} 取值无效", f"{fld}: invalid value", fld)
    return validation_error(named)


def _unknown_output() -> ApiError:
    return ApiError(422, "unknown_output", "output 不是本页面的服务端回调",
                    "output is not a server callback of this app", "output")


# -- the guard -------------------------------------------------------------------------------------
class Guard:
    def __init__(self, app: Dash):
        self.app = app
        self.specs: dict[str, CallbackSpec] = {}
        self._update()

    def _update(self) -> None:
        """Models for callbacks not seen yet (Dash adds ``dash.callback`` ones at its first request).
        Clientside callbacks are in the map too, without a server function: not served here."""
        for out, cb in list(self.app.callback_map.items()):
            if out not in self.specs and "callback" in cb:
                self.specs[out] = callback_spec(out, cb)

    def check(self) -> None:
        """Raise an ApiError unless the current request is a well-formed call of a callback."""
        if request.method != "POST":
            raise error_from_exception(MethodNotAllowed(valid_methods=["POST"]))
        if not request.is_json:
            raise ApiError(415, "unsupported_media_type", "Content-Type 须为 application/json",
                           "Content-Type must be application/json", "Content-Type")
        try:  # the size cap (settings.max_callback_bytes) is set per request by dashboard.api.limits
            raw = request.get_data(cache=True)   # Dash reads the same cached bytes
        except RequestEntityTooLarge as exc:
            raise error_from_exception(exc) from None
        try:
            output = _Head.model_validate_json(raw).output
        except ValidationError as exc:
            raise validation_error(exc) from None
        if output not in self.specs and output in self.app.callback_map:
            self._update()
        spec = self.specs.get(output)
        if spec is None:
            raise _unknown_output()
        try:
            spec.model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise _request_error(exc, spec) from None


def install(app: Dash) -> Guard:
    """Check every request to the app's callback endpoint (call after all callbacks are registered)."""
    guard = Guard(app)
    path = app.config.routes_pathname_prefix + "_dash-update-component"

    @app.server.before_request
    def _guard_dash_callbacks() -> Response | None:
        if request.path != path:
            return None
        try:
            guard.check()
        except ApiError as err:
            log.warning("dash callback request rejected: %s %s field=%s", err.status, err.code, err.field)
            return error_response(err)
        return None

    return guard
