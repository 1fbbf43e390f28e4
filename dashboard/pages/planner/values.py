"""The planner page's callback inputs: the value type of every (component id, property) its server
callbacks read (:mod:`dashboard.guard` checks each request against them). The edit's geometry is
bounded like a proposal's (``changesets.MAX_GRIDS``; vertices are counted again by build_draft)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Strict

from geodata.grids.changesets import MAX_GRIDS

from ...api.schemas.common import Text
from ...values import INT32, Count, GridCode, Lat, Lon, PickedDay, Value
from . import ids

Ring = Annotated[list[tuple[Lon, Lat]], Field(min_length=4, max_length=20_000)]
CS_ID = Annotated[int, Field(ge=1, le=INT32)]


class MultiPolygon(Value):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1, max_length=100)]],
                           Field(min_length=1, max_length=100)]


class Polygon(Value):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1, max_length=100)]


class LineString(Value):
    type: Literal["LineString"]
    coordinates: Annotated[list[tuple[Lon, Lat]], Field(min_length=2, max_length=1000)]


class EditedGrid(Value):
    code: GridCode
    geometry: MultiPolygon | Polygon


class Edit(Value):
    """planner.js's ``topo.spec``: the grids it redrew and the versions it drew them on."""
    grids: Annotated[list[EditedGrid], Field(max_length=MAX_GRIDS)] = Field(default_factory=list)
    base: Annotated[dict[GridCode, CS_ID], Field(max_length=MAX_GRIDS)] = Field(default_factory=dict)


class Selected(Value):
    codes: Annotated[list[GridCode], Field(max_length=2)] = Field(default_factory=list)


class Operation(Value):
    """``callbacks.ops_outputs``' operations (``changesets.build_draft``'s)."""
    op: Literal["split", "merge", "move", "subdivide"]
    code: GridCode | None = None
    codes: Annotated[list[GridCode], Field(max_length=2)] | None = None
    parent: GridCode | None = None
    line: LineString | None = None
    lines: Annotated[list[LineString], Field(max_length=1)] | None = None


#: (component id, property) → the type of its value, for every property a planner callback reads.
VALUES: dict[tuple[str, str], Any] = {
    (ids.EDIT, "data"): Edit,
    (ids.OPS, "data"): Annotated[list[Operation], Field(max_length=50)],
    (ids.SELECTED, "data"): Selected,
    (ids.LINE, "data"): LineString,
    (ids.MOVE_TO, "value"): GridCode,
    (ids.LEVEL, "value"): Annotated[int, Strict(), Field(ge=1, le=3)],   # Literal[1, 2, 3] takes True
    (ids.REASON, "value"): Text(2000, multiline=True),
    (ids.WHEN, "value"): Literal["now", "later"],
    (ids.EFFECTIVE, "date"): PickedDay,
    (ids.ASOF_DAY, "date"): PickedDay,
    (ids.CHANGE_SET, "value"): CS_ID,
    (ids.OP_SPLIT, "n_clicks"): Count,
    (ids.OP_SUBDIVIDE, "n_clicks"): Count,
    (ids.OP_MERGE, "n_clicks"): Count,
    (ids.OP_MOVE, "n_clicks"): Count,
    (ids.RESET, "n_clicks"): Count,
    (ids.SAVE, "n_clicks"): Count,
    (ids.REVERT, "n_clicks"): Count,
    (ids.SHOW_DIFF, "n_clicks"): Count,
    # the upload: a data URL (base64), within the callback request's size cap (settings.max_callback_bytes)
    (ids.UPLOAD, "contents"): Annotated[str, Field(max_length=4 * 1024 * 1024,
                                                   pattern=r"^data:[\w.+/-]*;base64,[A-Za-z0-9+/=\s]*$")],
    (ids.UPLOAD, "filename"): Text(200),
    # an authority code (EPSG:4547, ESRI:102100); blank: the file's own CRS
    (ids.UPLOAD_CRS, "value"): Annotated[str, Field(max_length=40, pattern=r"^\s*((?i:epsg|esri):\s*[0-9]{4,6})?\s*$")],
    (ids.PROPOSAL, "data"): CS_ID,
    (ids.PROPOSALS, "value"): CS_ID,
    (ids.SAVE_DRAFT, "n_clicks"): Count,
    (ids.APPLY_PROPOSAL, "n_clicks"): Count,
    (ids.DISCARD_PROPOSAL, "n_clicks"): Count,
    (ids.EXPORT_PROPOSAL, "n_clicks"): Count,
}
