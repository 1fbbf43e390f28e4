"""Boundary change sets: drafts (the boundary editor's edits), proposals, change sets, as-of grids, diffs.
Geometries are GeoJSON in WGS84 lon/lat (RFC 7946)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from geodata.grids.changesets import MAX_GRIDS

from .common import Id32, In, Out, Text

Code = Annotated[str, Field(pattern=r"^[0-9]{14}$", description="14-digit grid code")]
GeoJSON = Annotated[dict[str, Any], Field(description="a GeoJSON geometry (WGS84 lon/lat)")]
Level = Annotated[int, Field(ge=1, le=3)]


class GridEditIn(In):
    """One grid's new state: a new boundary (and name) of a current grid, ``retire``, or — without a
    current code — a new grid under ``parent_code`` (its code generated unless given)."""

    code: Code | None = None
    parent_code: Code | None = None
    level: Level | None = None
    name: Text(100) | None = None
    name_en: Text(200) | None = None
    geometry: GeoJSON | None = None
    retire: bool = False


class OperationIn(In):
    """A coverage operation, applied after ``grids`` in order: ``split`` (code, line), ``merge``
    (codes, keep), ``move`` (code, parent: a new code under it), ``subdivide`` (code, lines: new
    children), ``rename`` (code, name, name_en)."""

    op: Literal["split", "merge", "move", "subdivide", "rename"]
    code: Code | None = None
    codes: list[Code] = Field(default_factory=list, max_length=50)
    keep: Code | None = None
    parent: Code | None = None
    line: GeoJSON | None = None
    lines: list[GeoJSON] = Field(default_factory=list, max_length=50)
    names: list[Text(100, 1)] | None = Field(None, max_length=100)
    name: Text(100) | None = None
    name_en: Text(200) | None = None


class DraftIn(In):
    """The edits, against the current tiling (``base``: the version ids the client drew on; a grid
    changed since is a 409 naming the change set)."""

    grids: list[GridEditIn] = Field(default_factory=list, max_length=MAX_GRIDS)
    operations: list[OperationIn] = Field(default_factory=list, max_length=50)
    base: dict[Code, Id32] = Field(default_factory=dict, max_length=MAX_GRIDS)
    tolerance_m: Annotated[float, Field(ge=0, le=50)] = Field(1.0, description="gap/overlap tolerance, metres")
    effective_at: dt.datetime | None = Field(None, description="when it takes effect (default: when applied)")
    impact: bool = Field(True, description="also compute the impact (false: validation only, for live checks)")


class ProposalIn(DraftIn):
    reason: Text(2000, 1, multiline=True)


class ApplyIn(In):
    effective_at: dt.datetime | None = Field(None, description="now or later (default: the proposal's, else now)")


class RevertIn(In):
    reason: Text(2000, multiline=True) | None = None
    effective_at: dt.datetime | None = None


class ProblemOut(Out):
    kind: str
    code: str | None
    name: str | None
    message_zh: str
    message_en: str
    where: list[float] | None = Field(description="a lon/lat point at the problem")
    geometry: dict[str, Any] | None = Field(description="the sliver, gap or part outside (GeoJSON)")


class CreatedOut(Out):
    code: str
    name: str
    level: int
    parent_code: str | None
    predecessor: str | None = Field(description="the code whose officials it takes over (a moved grid)")
    area_m2: float


class ChangedOut(Out):
    code: str
    name: str
    level: int
    area_before_m2: float
    area_after_m2: float
    gained_m2: float
    lost_m2: float


class RetiredOut(Out):
    code: str
    name: str
    level: int
    area_m2: float


class IssueMoveOut(Out):
    id: int
    number: str
    status: str
    open: bool = Field(description="open issues are re-assigned; past ones keep the grid they had")
    from_code: str
    to_code: str | None


class IssuesImpact(Out):
    open: int
    past: int
    items: list[IssueMoveOut] = Field(description="at most 200, open ones first")


class OfficialImpact(Out):
    official_id: int
    name: str
    role: str
    title: str
    grid_code: str
    gained_m2: float
    lost_m2: float


class ImpactOut(Out):
    effective_at: dt.datetime
    created: list[CreatedOut]
    changed: list[ChangedOut]
    retired: list[RetiredOut]
    issues: IssuesImpact | None
    officials: list[OfficialImpact]


class StaleOut(Out):
    code: str
    base_version_id: int
    change_set_id: int | None
    author: str | None
    changed_at: dt.datetime | None


class DraftOut(Out):
    valid: bool = Field(description="no problem: it may be saved and applied")
    problems: list[ProblemOut]
    grids: dict[str, Any] = Field(description="the changed grids: a GeoJSON FeatureCollection")
    impact: ImpactOut | None


class ProposalOut(Out):
    id: int
    status: Literal["draft", "applied", "discarded"]
    author: str
    reason: str
    effective_at: dt.datetime | None
    source: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    grids: dict[str, Any] = Field(description="GeoJSON FeatureCollection (properties: code, status, base_version_id …)")
    problems: list[ProblemOut]
    conflicts: list[StaleOut] = Field(description="grids changed by someone else since the proposal was drawn")
    impact: ImpactOut | None


class ChangeItemOut(Out):
    code: str
    kind: Literal["created", "changed", "retired"]
    old_version_id: int | None
    new_version_id: int | None
    predecessor: str | None


class ChangeSetOut(Out):
    id: int
    proposal_id: int | None
    reverts_id: int | None
    reverted_by: int | None
    author: str
    reason: str
    effective_at: dt.datetime
    applied_at: dt.datetime
    issues_reassigned_at: dt.datetime | None = Field(description="None until the effective time has come")
    issues_moved: int | None
    items: list[ChangeItemOut]
    summary: dict[str, Any]


class ChangeSetList(Out):
    items: list[ChangeSetOut]


class ChangeSetQuery(In):
    code: Code | None = Field(None, description="only change sets touching this grid")
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class GridsQuery(In):
    as_of: dt.datetime | None = Field(None, description="the boundaries valid at this time (default now)")
    level: Level | None = None


class DiffQuery(In):
    from_: dt.datetime = Field(alias="from", description="the earlier tiling's time")
    to: dt.datetime = Field(description="the later tiling's time")
    level: Level | None = None

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class DiffRow(Out):
    code: str
    name: str
    level: int
    status: Literal["created", "changed", "retired"]
    area_before_m2: float
    area_after_m2: float
    gained_m2: float
    lost_m2: float
    gained: dict[str, Any] | None = Field(description="the area gained (GeoJSON)")
    lost: dict[str, Any] | None = Field(description="the area lost (GeoJSON)")


class DiffOut(Out):
    items: list[DiffRow]
