"""民情日记: patrols and visits, and turning a finding into a report."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from .common import Crs, Finite, Id32, In, Kind, Out, PhotoB64, Text


class TrackIn(In):
    type: Literal["Point", "MultiPoint", "LineString"]
    coordinates: list[Any]


class DiaryIn(In):
    """民情日记: a patrol (日巡查) or a visit (日走访)."""

    kind: Literal["patrol", "visit"]
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    track: TrackIn | None = Field(None, description="GeoJSON Point, MultiPoint or LineString")
    crs: Crs = "wgs84"
    households: Annotated[int, Field(ge=0, le=100000)] = 0
    shops: Annotated[int, Field(ge=0, le=100000)] = 0
    firms: Annotated[int, Field(ge=0, le=100000)] = 0
    findings: Text(5000, multiline=True) = ""
    grid_code: Text(14) | None = Field(None, description="default: the block of the track's first point, "
                                                         "else the official's block")


class DiaryReportIn(In):
    """Turn a diary finding into a report (location default: the track's last point)."""

    kind: Kind = "problem"
    domain: Text(30, 1)
    title: Text(200, 1)
    description: Text(5000, multiline=True) = ""
    lon: Finite | None = None
    lat: Finite | None = None
    crs: Crs = "wgs84"
    address: Text(200) | None = None
    photos: list[PhotoB64] = Field(default_factory=list, max_length=9)


class DiaryQuery(In):
    grid: Text(14) | None = None
    official_id: Id32 | None = None
    from_: dt.datetime | None = Field(None, alias="from")
    to: dt.datetime | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class DiaryOut(Out):
    id: int
    grid_code: str
    official_id: int
    official_name: str | None
    kind: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    track: dict[str, Any] | None
    households: int
    shops: int
    firms: int
    findings: str
    issue_id: int | None


class DiaryPage(Out):
    items: list[DiaryOut]
    total: int
    page: int
    page_size: int
    pages: int
