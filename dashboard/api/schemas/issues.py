"""Issues: report, query, one issue with its six-ones chain, photos and timeline, transitions,
evaluation."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from geodata.models import SEARCH_MAX_CHARS
from geodata.workflow.text_search import SEARCH_CAP, SEARCH_WINDOW

from .common import Action, Crs, Finite, Id32, In, Kind, Out, PhotoB64, Source, Text

#: what ``q`` matches, and the one limit of its bounded search (geodata.workflow.text_search)
Q_DESCRIPTION = (
    "text in the issue number or title (case-insensitive; % and _ match themselves) — the same match "
    "as the map's search box, found with bounded work whatever the history: the numbers that start "
    f"with it, every match reported in the last {SEARCH_WINDOW.days} days, and at most {SEARCH_CAP} "
    "older ones from the search index. Exact (every match in the caller's scope) unless the text is "
    f"frequent in the older history (more than {SEARCH_CAP} older matches in scope, or more than "
    f"{4 * SEARCH_CAP} older issues of the whole city holding its characters, e.g. 垃圾): then the last "
    f"{SEARCH_WINDOW.days} days' matches whole, and of the older ones at most {SEARCH_CAP}, not "
    "necessarily the newest — and a caller whose scope is a small "
    "part of the city (a community, a grid) may get few of their older matches or none. The same "
    "request gives the same issues, so pages fit together (`total` counts that match). A longer "
    "text, the number, or `from`/`to` finds a given older issue. Never an issue outside the scope.")

SortKey = Literal["reported_at", "-reported_at", "due_at", "-due_at", "updated_at", "-updated_at", "number",
                  "-number", "status", "-status"]


class ReportIn(In):
    """上报. Coordinates are WGS84/CGCS2000 unless ``crs`` is ``gcj02`` (AMap/Tencent maps)."""

    kind: Kind = "problem"
    domain: Text(30, 1) = Field(description="domain code, e.g. sanitation (see /api/v1/meta)")
    title: Text(200, 1)
    description: Text(5000, multiline=True) = ""
    lon: Finite = Field(description="longitude, about 113.63 here")
    lat: Finite = Field(description="latitude, about 34.75 here")
    crs: Crs = "wgs84"
    source: Source | None = Field(None, description="default: resident without a token, else patrol")
    address: Text(200) | None = None
    reporter_name: Text(50) | None = Field(None, description="personal data: shown only to entitled officials")
    reporter_phone: Text(20) | None = Field(None, description="personal data: shown only to entitled officials")
    nearest_override: bool = Field(False, description="operators only: attach a point outside every grid to "
                                                      "the nearest block grid")
    photos: list[PhotoB64] = Field(default_factory=list, max_length=9)


class TransitionIn(In):
    """One workflow step. ``version`` is the issue version the client last saw (optimistic lock)."""

    action: Action
    version: Id32
    note: Text(2000, multiline=True) = Field("", description="result (feedback), reason (rework, reassign, extend) or comment")
    assignee_id: Id32 | None = Field(None, description="assign (optional) / reassign (required)")
    new_due: dt.datetime | dt.date | None = Field(None, description="extend: a date (end of that day, "
                                                                    "the business time zone) or a date-time")
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="evaluate: 1–5")
    photos: list[PhotoB64] = Field(default_factory=list, max_length=9, description="feedback photos")


class EvaluationIn(In):
    """综合评价 of a closed issue."""

    satisfaction: Annotated[int, Field(ge=1, le=5)]
    comment: Text(2000, multiline=True) = ""
    version: Id32
    key: Text(64) | None = Field(None, description="the reporter's evaluation key (from the report's answer)")
    phone: Text(20) | None = Field(None, description="or the phone number the reporter gave")


class IssueQuery(In):
    bbox: Text(200) | None = Field(None, description="min_lon,min_lat,max_lon,max_lat (WGS84)")
    grid: Text(14) | None = Field(None, description="grid code of any level; includes its descendants")
    status: Text(200) | None = Field(None, description="comma-separated statuses")
    domain: Text(300) | None = Field(None, description="comma-separated domain codes")
    kind: Kind | None = None
    source: Source | None = None
    from_: dt.datetime | None = Field(None, alias="from", description="reported at or after (ISO 8601; "
                                                                     "without offset: the business time zone)")
    to: dt.datetime | None = Field(None, description="reported before")
    overdue: bool | None = None
    open: bool | None = None
    assignee_id: Id32 | None = None
    q: Text(SEARCH_MAX_CHARS) | None = Field(None, description=Q_DESCRIPTION)
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50
    sort: SortKey = "-reported_at"

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class DomainRef(Out):
    code: str
    name_zh: str
    name_en: str


class Person(Out):
    id: int
    name: str
    phone: str | None = Field(None, description="personal data: only for entitled officials")


class WorksheetRow(Out):
    step: str
    zh: str
    en: str
    due: str


class SixOnes(Out):
    """六个一: leader in charge, directly responsible, grid leader, (assignee), the worksheet."""

    leader_in_charge: Person | None
    responsible: Person | None
    grid_leader: Person | None
    assignee: Person | None
    worksheet: list[WorksheetRow]


class GridName(Out):
    code: str
    name: str | None


class Reporter(Out):
    name: str | None
    phone: str | None


class PhotoOut(Out):
    id: int
    stage: str
    content_type: str
    width: int | None
    height: int | None
    url: str


class Actor(Out):
    id: int
    name: str | None


class EventOut(Out):
    id: int
    action: str
    action_zh: str
    action_en: str
    from_status: str | None
    to_status: str
    actor: Actor | None
    actor_role: str | None
    at: dt.datetime
    note: str
    data: dict[str, Any]


class Placement(Out):
    method: Literal["covers", "nearest"]
    distance_m: float
    candidates: list[str]


class IssueOut(Out):
    id: int
    number: str
    kind: str
    domain: DomainRef
    title: str
    description: str
    source: str
    address: str | None
    lon: float
    lat: float
    grid: GridName
    community_code: str
    status: str
    status_zh: str
    status_en: str
    reported_at: dt.datetime
    assigned_at: dt.datetime | None
    sign_deadline: dt.datetime | None
    signed_at: dt.datetime | None
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime | None
    overdue: bool = Field(description="derived: open past due_at, or closed after it")
    sign_overdue: bool
    rework_count: int
    reassign_count: int
    satisfaction: int | None
    version: int = Field(description="send it back as `version` with the next transition")
    six_ones: SixOnes
    reporter: Reporter | None = Field(None, description="personal data: only for entitled officials")
    photos: list[PhotoOut]
    actions: list[str] | None = Field(None, description="actions the caller may take now")
    allowed_actions: list[str] | None = Field(None, description="the steps the caller may take now under the workflow's "
                                                "role table AND their account's grants (what a transition would accept)")
    timeline: list[EventOut] | None = None
    placement: Placement | None = None
    evaluation_key: str | None = Field(None, description="a resident's report only, shown once: the key to their own "
                                                       "综合评价 (POST …/evaluation with `key`)")
    diary_id: int | None = None


class IssueSummary(Out):
    id: int
    number: str
    kind: str
    domain: str
    title: str
    source: str
    status: str
    status_zh: str
    grid_code: str
    community_code: str
    lon: float
    lat: float
    reported_at: dt.datetime
    assigned_at: dt.datetime | None
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime | None
    assignee_id: int | None
    rework_count: int
    reassign_count: int
    satisfaction: int | None
    version: int
    overdue: bool


class IssuePage(Out):
    items: list[IssueSummary]
    total: int
    page: int
    page_size: int
    pages: int


class Timeline(Out):
    items: list[EventOut]
