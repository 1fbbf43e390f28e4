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
  :data:`VALUES` stops the app at start-up.
- the envelope: POST only, JSON only, at most ``settings.max_callback_bytes`` (enforced by ``dashboard.api.limits``); an unknown (or a
  clientside) output is a 4xx.

A rejected request is logged on one line (status, code, the field named by component id and
property), never with a traceback and never with the values it carried.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from dash import Dash
from dash._utils import split_callback_id
from flask import Response, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import InitErrorDetails
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge

from geodata.maps.metrics import METRICS
from geodata.models import BIGINT_MAX
from geodata.workflow.filters import DATE_PRESETS
from geodata.workflow.rules import STATUSES

from .api.core import ApiError, error_from_exception, error_response, validation_error
from .api.schemas.common import INT32, Finite, Kind, Status, Text
from .components import ids as app_ids
from .pages.map import ids, layout

log = logging.getLogger("gridwatch.dashboard")

INT64 = BIGINT_MAX         # issue.id, outbox.id: BIGINT
JS_INT = 2**53 - 1         # counters kept by the browser (n_clicks, n_intervals)
MAX_ITEMS = 50             # multi-select values


# -- value types ----------------------------------------------------------------------------------
def bigint_id(text: str | None) -> int | None:
    """An id written as text (URL, search option, grid row id) → the id, if it is 1–19 ASCII digits
    within BIGINT; otherwise None."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= INT64 else None


def _bigint_text(v: str) -> str:
    if bigint_id(v) is None:
        raise ValueError(f"must be an id between 1 and {INT64}")
    return v


def _search_value(v: str) -> str:
    parts = v.split(":")
    if parts[0] == "issue" and bigint_id(parts[1]) is None:
        raise ValueError(f"the issue id must be between 1 and {INT64}")
    return v


def _iso_day(v: str) -> str:
    try:
        dt.date.fromisoformat(v[:10])
    except ValueError:
        raise ValueError("must be a calendar date YYYY-MM-DD") from None   # (its text repeats the input)
    return v


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Lang = Literal["zh", "en"]
Count = Annotated[int, Field(ge=0, le=JS_INT)]
Version = Annotated[int, Field(ge=0, le=INT32)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
ViewLon = Annotated[float, Field(ge=-1080, le=1080, allow_inf_nan=False)]   # a panned world wraps
GridCode = Annotated[str, Field(pattern=r"^[0-9]{14}$")]
IssueId = Annotated[int, Field(ge=1, le=INT64)]
BigIdText = Annotated[str, Field(max_length=19), AfterValidator(_bigint_text)]
DomainCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,30}$")]     # domain.code: VARCHAR(30)
IsoDay = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_iso_day)]
PickedDay = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]{0,15})?$"),
                      AfterValidator(_iso_day)]
SearchValue = Annotated[str, Field(pattern=r"^(grid:[0-9]{14}|issue:[0-9]{1,19}:[0-9]{14})$"),
                        AfterValidator(_search_value)]
Overlay = Literal[tuple(layout.overlay_names(list(layout.OVERLAY_KEYS), "zh")
                        + layout.overlay_names(list(layout.OVERLAY_KEYS), "en"))]  # type: ignore[valid-type]
Bounds = tuple[tuple[Lat, ViewLon], tuple[Lat, ViewLon]]      # dash-leaflet: [[south, west], [north, east]]


class FilterStore(_Value):
    """``IssueFilter.to_dict()`` and the metric (``callbacks.filter_from_controls``)."""
    kind: Kind | None = None
    domains: Annotated[list[DomainCode], Field(max_length=MAX_ITEMS)] = []
    statuses: Annotated[list[Status], Field(max_length=len(STATUSES))] = []
    preset: Literal[DATE_PRESETS] | None = None  # type: ignore[valid-type]
    date_from: IsoDay | None = None
    date_to: IsoDay | None = None
    overdue_only: bool = False
    metric: Literal[METRICS] | None = None  # type: ignore[valid-type]


class SelectedStore(_Value):
    """``callbacks.selection_outputs``' selection ({} when nothing is selected)."""
    code: GridCode | None = None
    level: Literal[1, 2, 3] | None = None
    parent: GridCode | None = None
    bbox: tuple[Lon, Lat, Lon, Lat] | None = None
    issue: IssueId | None = None


class Polygon(_Value):
    type: Literal["Polygon"]
    coordinates: list[list[tuple[Lon, Lat]]]


class MultiPolygon(_Value):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[tuple[Lon, Lat]]]]


class GridProperties(_Value):
    """``mapdata.grid_layer``'s feature properties, and the two dash-leaflet adds."""
    code: GridCode | None = None
    name: Text(200) | None = None
    name_en: Text(200) | None = None
    level: Literal[1, 2, 3] | None = None
    parent_code: GridCode | None = None
    area_km2: Finite | None = None
    cluster: bool | None = None                 # dash-leaflet: is this a cluster marker
    id: Count | None = None                     # dash-leaflet: the feature's index in the layer


class GridClick(_Value):
    """dash-leaflet's GeoJSON ``clickData``: the clicked feature, with its bounds."""
    type: Literal["Feature"] | None = None
    id: GridCode | None = None
    geometry: Annotated[Polygon | MultiPolygon, Field(discriminator="type")] | None = None
    properties: GridProperties | None = None
    bounds: tuple[tuple[Lat, Lon], tuple[Lat, Lon]] | None = None


class CellClick(_Value):
    """dash-ag-grid's ``cellClicked`` on the issue list (row ids are issue ids)."""
    value: bool | int | Finite | Text(1000, multiline=True) | None = None
    colId: Text(100) | None = None
    rowIndex: Count | None = None
    rowId: BigIdText | None = None
    timestamp: Finite | None = None


class OutboxRow(_Value):
    """A row of ``components.outbox.rows``, as the outbox grid's ``selectedRows`` sends it back."""
    id: BigIdText | None = None
    created: Text(64) | None = None
    created_ts: Annotated[int, Field(ge=0, le=JS_INT)] | None = None
    recipient: Text(200) | None = None
    subject: Text(200) | None = None
    status: Text(64) | None = None
    sent: bool | None = None
    sent_at: Text(64) | None = None
    grids: Text(10_000) | None = None
    body: Text(65_536, multiline=True) | None = None   # an SMS body has line breaks


#: (component id, property) → the type of its value, for every property a server callback reads.
VALUES: dict[tuple[str, str], Any] = {
    (app_ids.LANG, "value"): Lang,
    (app_ids.URL, "search"): Text(2048),
    (ids.FILTER, "data"): FilterStore,
    (ids.SELECTED, "data"): SelectedStore,
    (app_ids.STAMP, "data"): Text(200),
    (app_ids.OUTAGE, "data"): bool,
    (ids.OVERLAYS, "data"): Annotated[list[Overlay], Field(max_length=len(layout.OVERLAY_KEYS) * 2)],
    (app_ids.BODY_VERSION, "data"): Version,
    (ids.VIEW, "data"): Bounds,
    (app_ids.LIVE, "n_intervals"): Count,
    (ids.SEARCH, "value"): SearchValue,
    (ids.SEARCH, "search_value"): Text(200),
    (ids.F_KIND, "value"): Literal["", "problem", "sentiment"],
    (ids.F_DOMAINS, "value"): Annotated[list[DomainCode], Field(max_length=MAX_ITEMS)],
    (ids.F_STATUSES, "value"): Annotated[list[Status], Field(max_length=len(STATUSES))],
    (ids.F_DATE, "value"): Literal[("", "custom", *DATE_PRESETS)],  # type: ignore[misc]
    (ids.F_OVERDUE, "value"): bool,
    (ids.METRIC, "value"): Literal[METRICS],  # type: ignore[valid-type]
    (ids.F_RANGE, "start_date"): PickedDay,
    (ids.F_RANGE, "end_date"): PickedDay,
    (ids.L_COMMUNITY, "clickData"): GridClick,
    (ids.L_BLOCK, "clickData"): GridClick,
    (ids.ISSUES, "cellClicked"): CellClick,
    (ids.TIMELINE_CLOSE, "n_clicks"): Count,
    (app_ids.OUTBOX_OPEN, "n_clicks"): Count,
    (app_ids.OUTBOX_CLOSE, "n_clicks"): Count,
    (app_ids.OUTBOX_GRID, "selectedRows"): Annotated[list[OutboxRow], Field(max_length=1)],  # single-row
}


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
