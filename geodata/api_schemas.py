"""Pydantic models of the HTTP API (requests and responses). The OpenAPI document served at
``/api/v1/openapi.json`` is generated from these models, never written by hand.

No Flask here: the models are plain data contracts, shared by the API layer and its tests.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from geodata.models import ISSUE_SOURCES, SEARCH_MAX_CHARS
from geodata.vocab import KINDS
from geodata.workflow import rules as wf

INT32 = 2**31 - 1


#: Characters that render as nothing (format characters such as zero-width spaces and joiners, BOM,
#: fillers, variation selectors): stripped at both ends of a text; a text of only these is blank.
_FILLERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")


def _invisible(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) == "Cf" or c in _FILLERS or "\ufe00" <= c <= "\ufe0f"


def _normalise_text(value: str, *, required: bool, multiline: bool) -> str:
    """Strip whitespace and invisible characters at both ends; refuse control characters (tab and
    line breaks are allowed in multi-line fields), unpaired surrogates, and — for a required field —
    a text with nothing visible left."""
    allowed = "\t\n\r" if multiline else ""
    for c in value:
        cat = unicodedata.category(c)
        if (cat == "Cc" and c not in allowed) or (not multiline and cat in ("Zl", "Zp")):
            raise PydanticCustomError("string_control", "must not contain control characters or line breaks"
                                      if not multiline else "must not contain control characters")
        if cat == "Cs":
            raise PydanticCustomError("string_unicode", "must be valid UTF-8 text")
    start, end = 0, len(value)
    while start < end and _invisible(value[start]):
        start += 1
    while end > start and _invisible(value[end - 1]):
        end -= 1
    value = value[start:end]
    if required and not value:
        raise PydanticCustomError("string_blank", "must not be blank (whitespace or invisible characters only)")
    return value


def Text(max_length: int, min_length: int = 0, *, multiline: bool = False):
    """A text field: at most ``max_length`` characters, normalised by :func:`_normalise_text`;
    ``min_length`` ≥ 1 makes it required-non-blank."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length),
                     AfterValidator(partial(_normalise_text, required=min_length > 0, multiline=multiline))]


Kind = Literal[KINDS]  # type: ignore[valid-type]
Source = Literal[ISSUE_SOURCES]  # type: ignore[valid-type]
Crs = Literal["wgs84", "cgcs2000", "gcj02"]
Status = Literal[wf.STATUSES]  # type: ignore[valid-type]
Action = Literal[tuple(a for a in wf.ACTIONS if a != "report")]  # type: ignore[valid-type]
Id32 = Annotated[int, Field(ge=1, le=INT32)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
SortKey = Literal["reported_at", "-reported_at", "due_at", "-due_at", "updated_at", "-updated_at", "number",
                  "-number", "status", "-status"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------------
class ErrorBody(_Out):
    code: str = Field(description="machine-readable error code")
    message_zh: str
    message_en: str
    field: str | None = Field(None, description="the offending field, header or parameter")
    detail: dict[str, Any] | None = None


class ErrorOut(_Out):
    """Every 4xx/5xx answer of /api/v1."""

    error: ErrorBody


# -- requests -------------------------------------------------------------------------------------
class PhotoB64(_In):
    """A photo in a JSON body: base64 data (JPEG, PNG or WebP; size limit per photo)."""

    content_type: Literal["image/jpeg", "image/png", "image/webp"] | None = None
    data: Annotated[str, Field(min_length=1, max_length=16 * 1024 * 1024)]


class ReportIn(_In):
    """上报. Coordinates are WGS84/CGCS2000 unless ``crs`` is ``gcj02`` (AMap/Tencent maps)."""

    kind: Kind = "problem"
    domain: Text(30, 1) = Field(description="domain code, e.g. sanitation (see /api/v1/meta)")
    title: Text(200, 1)
    description: Text(5000, multiline=True) = ""
    lon: Finite = Field(description="longitude, about 113.63 here")
    lat: Finite = Field(description="latitude, about 34.75 here")
    crs: Crs = "wgs84"
    source: Source | None = Field(None, description="default: resident without X-Official-Id, else patrol")
    address: Text(200) | None = None
    reporter_name: Text(50) | None = Field(None, description="personal data: shown only to entitled officials")
    reporter_phone: Text(20) | None = Field(None, description="personal data: shown only to entitled officials")
    nearest_override: bool = Field(False, description="operators only: attach a point outside every grid to "
                                                      "the nearest block grid")
    photos: list[PhotoB64] = Field(default_factory=list, max_length=9)


class TransitionIn(_In):
    """One workflow step. ``version`` is the issue version the client last saw (optimistic lock)."""

    action: Action
    version: Id32
    note: Text(2000, multiline=True) = Field("", description="result (feedback), reason (rework, reassign, extend) or comment")
    assignee_id: Id32 | None = Field(None, description="assign (optional) / reassign (required)")
    new_due: dt.datetime | dt.date | None = Field(None, description="extend: a date (end of that day, "
                                                                    "Asia/Shanghai) or a date-time")
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="evaluate: 1–5")
    photos: list[PhotoB64] = Field(default_factory=list, max_length=9, description="feedback photos")


class EvaluationIn(_In):
    """综合评价 of a closed issue."""

    satisfaction: Annotated[int, Field(ge=1, le=5)]
    comment: Text(2000, multiline=True) = ""
    version: Id32


class IssueQuery(_In):
    bbox: Text(200) | None = Field(None, description="min_lon,min_lat,max_lon,max_lat (WGS84)")
    grid: Text(14) | None = Field(None, description="grid code of any level; includes its descendants")
    status: Text(200) | None = Field(None, description="comma-separated statuses")
    domain: Text(300) | None = Field(None, description="comma-separated domain codes")
    kind: Kind | None = None
    source: Source | None = None
    from_: dt.datetime | None = Field(None, alias="from", description="reported at or after (ISO 8601; "
                                                                     "without offset: Asia/Shanghai)")
    to: dt.datetime | None = Field(None, description="reported before")
    overdue: bool | None = None
    open: bool | None = None
    assignee_id: Id32 | None = None
    q: Text(SEARCH_MAX_CHARS) | None = Field(None, description="text in the issue number or title (case-"
                                             "insensitive; % and _ match themselves)")
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50
    sort: SortKey = "-reported_at"

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class PointQuery(_In):
    lon: Finite
    lat: Finite
    crs: Crs = "wgs84"


class TrackIn(_In):
    type: Literal["Point", "MultiPoint", "LineString"]
    coordinates: list[Any]


class DiaryIn(_In):
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


class DiaryReportIn(_In):
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


class DiaryQuery(_In):
    grid: Text(14) | None = None
    official_id: Id32 | None = None
    from_: dt.datetime | None = Field(None, alias="from")
    to: dt.datetime | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class NoticeIn(_In):
    """Generate the weekly notices (command centre's weekly SMS) for every grid leader."""

    week_of: dt.date | None = Field(None, description="any day of the week (Mon–Sun, Asia/Shanghai); "
                                                      "default: this week")
    force: bool = Field(False, description="send again to officials already notified this week")
    dry_run: bool = Field(False, description="build the texts without delivering them")


class OutboxQuery(_In):
    official_id: Id32 | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50


# -- responses ------------------------------------------------------------------------------------
class DomainRef(_Out):
    code: str
    name_zh: str
    name_en: str


class DomainOut(DomainRef):
    sign_hours: int
    handle_days: int
    sentiment_handle_days: int


class Label(_Out):
    code: str
    zh: str
    en: str


class MetaOut(_Out):
    domains: list[DomainOut]
    kinds: list[Label]
    sources: list[str]
    statuses: list[Label]
    actions: list[Label]
    roles: list[Label]
    crs: list[str]
    max_photo_bytes: int
    max_photos: int
    timezone: str


class Person(_Out):
    id: int
    name: str
    phone: str | None = Field(None, description="personal data: only for entitled officials")


class WorksheetRow(_Out):
    step: str
    zh: str
    en: str
    due: str


class SixOnes(_Out):
    """六个一: leader in charge, directly responsible, grid leader, (assignee), the worksheet."""

    leader_in_charge: Person | None
    responsible: Person | None
    grid_leader: Person | None
    assignee: Person | None
    worksheet: list[WorksheetRow]


class GridName(_Out):
    code: str
    name: str | None


class Reporter(_Out):
    name: str | None
    phone: str | None


class PhotoOut(_Out):
    id: int
    stage: str
    content_type: str
    width: int | None
    height: int | None
    url: str


class Actor(_Out):
    id: int
    name: str | None


class EventOut(_Out):
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


class Placement(_Out):
    method: Literal["covers", "nearest"]
    distance_m: float
    candidates: list[str]


class IssueOut(_Out):
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
    timeline: list[EventOut] | None = None
    placement: Placement | None = None
    diary_id: int | None = None


class IssueSummary(_Out):
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


class IssuePage(_Out):
    items: list[IssueSummary]
    total: int
    page: int
    page_size: int
    pages: int


class Timeline(_Out):
    items: list[EventOut]


class GridLevel(_Out):
    code: str
    name: str
    level: int


class HolderOut(_Out):
    official_id: int
    name: str
    role: str
    role_zh: str
    role_en: str
    title: str
    grid_code: str
    grid_level: int
    phone: str | None = Field(None, description="personal data: only for entitled officials")


class SixOnesPeople(_Out):
    leader_in_charge: HolderOut | None
    responsible: HolderOut | None
    grid_leader: HolderOut | None


class ContactCard(_Out):
    """该找谁: who is responsible for a point."""

    lon: float
    lat: float
    block: GridLevel | None
    community: GridLevel | None
    street: GridLevel | None
    shared_boundary: list[str]
    six_ones: SixOnesPeople
    officials: list[HolderOut]


class DiaryOut(_Out):
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


class DiaryPage(_Out):
    items: list[DiaryOut]
    total: int
    page: int
    page_size: int
    pages: int


class NoticeItem(_Out):
    number: str
    title: str
    status: str
    due_at: dt.datetime | None
    overdue: bool
    days_overdue: int


class NoticeOut(_Out):
    official_id: int
    official_name: str
    grid_codes: list[str]
    week_start: dt.date
    week_end: dt.date
    subject: str
    body: str
    open_count: int
    overdue_count: int
    new_count: int
    closed_count: int
    priorities: list[NoticeItem]
    delivered: bool
    outbox_id: int | None


class NoticeRun(_Out):
    week_start: dt.date
    week_end: dt.date
    generated: int
    delivered: int
    skipped: int
    notices: list[NoticeOut]


class OutboxRow(_Out):
    id: int
    channel: str
    official_id: int | None
    official_name: str | None
    subject: str
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


class OutboxPage(_Out):
    items: list[OutboxRow]
    total: int
    page: int
    page_size: int
    pages: int


# -- Open311 GeoReport v2 -------------------------------------------------------------------------
class O311Service(_Out):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class O311Request(_Out):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime | None
    expected_datetime: dt.datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class O311Created(_Out):
    service_request_id: str
    service_notice: str | None
    account_id: str | None


class O311ErrorItem(_Out):
    """Open311 error list element, extended with the /api/v1 error fields."""

    code: int
    description: str
    error: ErrorBody


class O311PostIn(BaseModel):
    """POST requests.json (form-encoded per GeoReport v2, or JSON). Extra keys (api_key,
    jurisdiction_id, attribute[…]) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    service_code: Text(60, 1)
    lat: Finite | None = None
    long: Finite | None = None
    address_string: Text(200) | None = None
    address_id: Text(60) | None = None
    description: Text(4000, multiline=True) | None = None
    first_name: Text(30) | None = None
    last_name: Text(30) | None = None
    phone: Text(20) | None = None
    email: Text(100) | None = None
    device_id: Text(100) | None = None
    account_id: Text(100) | None = None
    media_url: Text(500) | None = None
    jurisdiction_id: Text(100) | None = None
    api_key: Text(200) | None = None


class O311Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    service_request_id: Text(2000) | None = Field(None, description="comma-separated ids")
    service_code: Text(60) | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    status: Literal["open", "closed"] | None = None
    jurisdiction_id: Text(100) | None = None
