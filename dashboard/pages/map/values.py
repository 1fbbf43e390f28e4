"""The map page's callback inputs: the value type of every (component id, property) its server
callbacks read (:mod:`dashboard.guard` checks each request against them)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from geodata.maps.metrics import METRICS
from geodata.workflow.filters import DATE_PRESETS
from geodata.workflow.rules import STATUSES

from ...api.schemas.common import Finite, Kind, Status, Text
from ...values import (
    INT64,
    MAX_ITEMS,
    BigIdText,
    Count,
    DomainCode,
    GridClick,
    GridCode,
    IsoDay,
    IssueId,
    Lat,
    Lon,
    PickedDay,
    Value,
    ViewLon,
    bigint_id,
)
from . import ids, layout


def _search_value(v: str) -> str:
    parts = v.split(":")
    if parts[0] == "issue" and bigint_id(parts[1]) is None:
        raise ValueError(f"the issue id must be between 1 and {INT64}")
    return v


SearchValue = Annotated[str, Field(pattern=r"^(grid:[0-9]{14}|issue:[0-9]{1,19}:[0-9]{14})$"),
                        AfterValidator(_search_value)]
Overlay = Literal[tuple(layout.overlay_names(list(layout.OVERLAY_KEYS), "zh")
                        + layout.overlay_names(list(layout.OVERLAY_KEYS), "en"))]  # type: ignore[valid-type]
Bounds = tuple[tuple[Lat, ViewLon], tuple[Lat, ViewLon]]      # dash-leaflet: [[south, west], [north, east]]


class FilterStore(Value):
    """``IssueFilter.to_dict()`` and the metric (``callbacks.filter_from_controls``)."""
    kind: Kind | None = None
    domains: Annotated[list[DomainCode], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)
    statuses: Annotated[list[Status], Field(max_length=len(STATUSES))] = Field(default_factory=list)
    preset: Literal[DATE_PRESETS] | None = None  # type: ignore[valid-type]
    date_from: IsoDay | None = None
    date_to: IsoDay | None = None
    overdue_only: bool = False
    metric: Literal[METRICS] | None = None  # type: ignore[valid-type]


class SelectedStore(Value):
    """``callbacks.selection_outputs``' selection ({} when nothing is selected)."""
    code: GridCode | None = None
    level: Literal[1, 2, 3] | None = None
    parent: GridCode | None = None
    bbox: tuple[Lon, Lat, Lon, Lat] | None = None
    issue: IssueId | None = None


class CellClick(Value):
    """dash-ag-grid's ``cellClicked`` on the issue list (row ids are issue ids)."""
    value: bool | int | Finite | Text(1000, multiline=True) | None = None
    colId: Text(100) | None = None
    rowIndex: Count | None = None
    rowId: BigIdText | None = None
    timestamp: Finite | None = None



class OpenIssue(Value):
    """A popup's "timeline" link (gridwatch_map.js): the issue, and a counter so that the same
    issue asked for twice is a change."""
    id: IssueId
    n: Count


#: (component id, property) → the type of its value, for every property a map callback reads.
VALUES: dict[tuple[str, str], Any] = {
    (ids.FILTER, "data"): FilterStore,
    (ids.SELECTED, "data"): SelectedStore,
    (ids.OVERLAYS, "data"): Annotated[list[Overlay], Field(max_length=len(layout.OVERLAY_KEYS) * 2)],
    (ids.VIEW, "data"): Bounds,
    (ids.VIEW_SOURCE, "data"): Text(2048),
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
    (ids.L_COMMUNITY, "n_clicks"): Count,
    (ids.L_BLOCK, "n_clicks"): Count,
    (ids.L_BLOCK, "clickData"): GridClick,
    (ids.ISSUES, "cellClicked"): CellClick,
    (ids.TIMELINE_CLOSE, "n_clicks"): Count,
    (ids.OPEN_ISSUE, "data"): OpenIssue,
}
