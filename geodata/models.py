"""Typed SQLAlchemy 2 models (GeoAlchemy2 geometry, EPSG:4326 storage).

Identifiers follow ../shared/GLOSSARY.md. Grids are versioned: a boundary change closes the old row
(``valid_to``) and opens a new one with the same code, so boundary history is never lost.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from geodata.geometry import CELL_M, MERCATOR_ORIGIN
from geodata.vocab import GRID_ROLES

SRID = 4326

#: Roles an official can hold in a grid (per level, see GLOSSARY.md).
ROLES_BY_LEVEL: dict[int, tuple[str, ...]] = {
    1: ("first_responsible",),
    2: ("first_responsible", "direct_responsible", "sunk_member", "platform_maintainer"),
    3: ("grid_leader",),
}

ISSUE_SOURCES = ("patrol", "visit", "resident", "higher_level", "hotline", "platform")
#: The largest BIGINT (issue, photo, outbox ids): ids beyond it are no ids, never a query.
BIGINT_MAX = 2**63 - 1
#: The longest search text, in characters (longer: 422 in the API, cut in the dashboard's box).
SEARCH_MAX_CHARS = 100


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _tstz() -> DateTime:
    return DateTime(timezone=True)


class Grid(Base):
    """A grid of any level (1 street, 2 community, 3 block), one row per boundary version."""

    __tablename__ = "grid"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 3", name="grid_level_range"),
        CheckConstraint(r"code ~ '^\d{14}$'", name="grid_code_format"),
        CheckConstraint(
            "(level = 1 AND substr(code, 10) = '00000') OR (level = 2 AND substr(code, 13) = '00'"
            " AND substr(code, 10, 3) <> '000') OR (level = 3 AND substr(code, 13) <> '00')",
            name="grid_code_level"),
        CheckConstraint("(level = 1) = (parent_code IS NULL)", name="grid_parent_by_level"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="grid_validity_order"),
        CheckConstraint("ST_IsValid(geom)", name="grid_geom_valid"),
        Index("grid_current_code_uq", "code", unique=True, postgresql_where=text("valid_to IS NULL")),
        Index("grid_parent_idx", "parent_code"),
        Index("grid_geom_gist", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(14))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(String(14))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(200))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    area_m2: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(_tstz())
    note: Mapped[str | None] = mapped_column(Text)


class Official(Base):
    __tablename__ = "official"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class OfficialContact(Base):
    """An official's phone: personal data, in its own table under its own row-level-security policy
    (only a scope with personal data reads it; migration 0005). Read as ``Official.phone``.

    The table also has ``reach`` (text[]), the codes the official's assignments reach, which the
    policy compares with the scope (migration 0027). The database keeps it (triggers on this table
    and on ``grid_assignment``); it is not mapped here, so nothing in the application writes it."""

    __tablename__ = "official_contact"

    official_id: Mapped[int] = mapped_column(ForeignKey("official.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))


#: personal data: NULL unless the transaction's scope may see personal data
Official.phone = column_property(
    select(OfficialContact.phone).where(OfficialContact.official_id == Official.id).scalar_subquery())


class GridAssignment(Base):
    """An official holding a role in a grid for a period."""

    __tablename__ = "grid_assignment"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in GRID_ROLES)})", name="assignment_role"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="assignment_validity_order"),
        Index("assignment_grid_idx", "grid_code"),
        Index("assignment_official_idx", "official_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    official_id: Mapped[int] = mapped_column(ForeignKey("official.id"))
    grid_code: Mapped[str] = mapped_column(String(14))
    role: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(50))  # e.g. 社区党支部书记, 警务室首席民警
    rank: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")  # order within a role
    valid_from: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    valid_to: Mapped[dt.datetime | None] = mapped_column(_tstz())

    official: Mapped[Official] = relationship(lazy="joined")


class Domain(Base):
    """The key domains (重点领域); editable, with per-domain deadlines."""

    __tablename__ = "domain"

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(30))
    name_en: Mapped[str] = mapped_column(String(60))
    sign_hours: Mapped[int] = mapped_column(Integer, default=2)
    handle_days: Mapped[int] = mapped_column(Integer, default=5)
    sentiment_handle_days: Mapped[int] = mapped_column(Integer, default=7)
    sort: Mapped[int] = mapped_column(SmallInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


#: an issue's map cell, as its generated columns compute it (migration 0023)
CELL_X_SQL = f"floor((ST_X(ST_Transform(location, 3857)) + {MERCATOR_ORIGIN!r}) / {CELL_M!r})::int"
CELL_Y_SQL = f"floor(({MERCATOR_ORIGIN!r} - ST_Y(ST_Transform(location, 3857))) / {CELL_M!r})::int"


class Issue(Base):
    """A problem (问题) or public-sentiment report (社情) and its current workflow state."""

    __tablename__ = "issue"
    __table_args__ = (
        CheckConstraint("kind IN ('problem', 'sentiment')", name="issue_kind"),
        CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="issue_satisfaction"),
        # the visibility rule's equality form needs it (migration 0010; geodata.access.visibility)
        CheckConstraint("community_code = left(grid_code, 12) || '00'", name="issue_community_of_block"),
        Index("issue_grid_idx", "grid_code"),
        # with every other column of the visibility rule: counts under row-level security are
        # index-only scans (migration 0030)
        Index("issue_community_idx", "community_code", postgresql_include=["street_code", "grid_code", "assignee_id",
              "grid_leader_id", "responsible_id", "leader_in_charge_id", "id"]),
        Index("issue_street_idx", "street_code"),
        Index("issue_assignee_idx", "assignee_id"),
        Index("issue_grid_leader_idx", "grid_leader_id"),
        Index("issue_responsible_idx", "responsible_id"),
        Index("issue_leader_in_charge_idx", "leader_in_charge_id"),
        Index("issue_status_idx", "status"),
        Index("issue_reported_idx", "reported_at"),
        Index("issue_cell_idx", "cell_x", "cell_y"),
        # the assessment's and the notices' ranges on deadline and closing time (migration 0015),
        # partial: a comparison never matches NULL, and an open issue moved gets no entry (0020)
        Index("issue_due_idx", "due_at", postgresql_where=text("due_at IS NOT NULL")),
        Index("issue_closed_idx", "closed_at", postgresql_where=text("closed_at IS NOT NULL")),
        # no GiST index on location, no trigram index on title / number: under row-level security
        # neither && nor ILIKE (not LEAKPROOF) may be an index condition, so no query of the app's
        # could use them, and each made every UPDATE of an issue dearer (migration 0020)
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # e.g. WT2026000123
    kind: Mapped[str] = mapped_column(String(10))
    domain_code: Mapped[str] = mapped_column(ForeignKey("domain.code"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20))
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    address: Mapped[str | None] = mapped_column(String(200))
    grid_code: Mapped[str] = mapped_column(String(14))       # the level-3 grid that contains it
    community_code: Mapped[str] = mapped_column(String(14))  # its level-2 parent
    #: its level-1 ancestor, generated from ``grid_code`` (migration 0010)
    street_code: Mapped[str] = mapped_column(String(14), Computed("left(grid_code, 9) || '00000'", persisted=True))
    #: its map cell (``geodata.geometry.square_of``: a Web-Mercator square, 2²² to the world's
    #: side), generated from ``location`` (migration 0023): integer box conditions that row-level
    #: security lets use an index
    cell_x: Mapped[int | None] = mapped_column(Integer, Computed(CELL_X_SQL, persisted=True))
    cell_y: Mapped[int | None] = mapped_column(Integer, Computed(CELL_Y_SQL, persisted=True))
    # 六个一: one leader in charge, one directly responsible person, one grid leader, one worksheet.
    # Officials, checked once per statement instead of by a foreign key per row (migration 0025:
    # a change set re-assigning 10⁵ issues sets all three on each)
    leader_in_charge_id: Mapped[int | None] = mapped_column(Integer)
    responsible_id: Mapped[int | None] = mapped_column(Integer)
    grid_leader_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    worksheet: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(20))
    reported_at: Mapped[dt.datetime] = mapped_column(_tstz())
    assigned_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    sign_deadline: Mapped[dt.datetime | None] = mapped_column(_tstz())
    signed_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    due_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    closed_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    rework_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    reassign_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # optimistic lock
    updated_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __mapper_args__ = {"version_id_col": version}


class IssueReporter(Base):
    """Who reported an issue, when they said: personal data, in its own table under its own policy
    (a scope with personal data that sees the issue; migration 0005). Read as
    ``Issue.reporter_name`` / ``Issue.reporter_phone`` (loaded when first used)."""

    __tablename__ = "issue_reporter"
    __table_args__ = (CheckConstraint("name IS NOT NULL OR phone IS NOT NULL", name="issue_reporter_given"),)

    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))


class IssueEvaluationKey(Base):
    """The key a reporter got with their report (its SHA-256 only): with it they give their own
    综合评价 (``geodata.workflow.reporter``); migration 0011."""

    __tablename__ = "issue_evaluation_key"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


Issue.reporter_name = column_property(
    select(IssueReporter.name).where(IssueReporter.issue_id == Issue.id).scalar_subquery(), deferred=True)
Issue.reporter_phone = column_property(
    select(IssueReporter.phone).where(IssueReporter.issue_id == Issue.id).scalar_subquery(), deferred=True)


class IssueEvent(Base):
    """Append-only audit trail: one row per workflow step. The database refuses UPDATE and DELETE."""

    __tablename__ = "issue_event"
    __table_args__ = (Index("issue_event_issue_idx", "issue_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id"))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    actor_role: Mapped[str | None] = mapped_column(String(30))
    at: Mapped[dt.datetime] = mapped_column(_tstz())
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class PatrolDiary(Base):
    """民情日记: a grid leader's patrol (日巡查) or visit (日走访)."""

    __tablename__ = "patrol_diary"
    __table_args__ = (CheckConstraint("kind IN ('patrol', 'visit')", name="diary_kind"),
                      Index("diary_grid_idx", "grid_code", "started_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(14))
    official_id: Mapped[int] = mapped_column(ForeignKey("official.id"))
    kind: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[dt.datetime] = mapped_column(_tstz())
    ended_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    track: Mapped[Any | None] = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False))
    households: Mapped[int] = mapped_column(Integer, default=0)
    shops: Mapped[int] = mapped_column(Integer, default=0)
    firms: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[str] = mapped_column(Text, default="")
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issue.id"))


class Activity(Base):
    """三谈 / 三访 / 三诊 engagement activities of a grid."""

    __tablename__ = "activity"
    __table_args__ = (CheckConstraint("category IN ('talk', 'visit', 'clinic')", name="activity_category"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(14))
    category: Mapped[str] = mapped_column(String(10))  # 三谈 talk / 三访 visit / 三诊 clinic
    kind: Mapped[str] = mapped_column(String(30))      # e.g. 社区论坛, 党员家访, 接待坐诊
    title: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[dt.datetime] = mapped_column(_tstz())
    participants: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    official_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))


class Outbox(Base):
    """Outgoing messages (weekly notices); the default delivery writes here."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), default="sms")
    official_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(_tstz())


class IdempotencyKey(Base):
    """Remembers the first answer to a request carrying an Idempotency-Key header."""

    __tablename__ = "idempotency_key"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class IssuePhoto(Base):
    """A photo attached to an issue at report or feedback; the file lives under var_dir/uploads."""

    __tablename__ = "issue_photo"
    __table_args__ = (
        CheckConstraint("stage IN ('report', 'feedback')", name="issue_photo_stage"),
        CheckConstraint("content_type IN ('image/jpeg', 'image/png', 'image/webp')", name="issue_photo_type"),
        Index("issue_photo_issue_idx", "issue_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("issue_event.id"))
    stage: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(200))  # relative to var_dir/uploads
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class BlockCellIndex(Base):
    """The stored raster cell index of the block grids current at one time (bulk assignment; see
    :mod:`geodata.grids.bulk`). A cache: rebuilt when the blocks' fingerprint changes."""

    __tablename__ = "block_cell_index"
    __table_args__ = (UniqueConstraint("fingerprint", "coarse_deg", "fine", "numeric_codes",
                                       name="block_cell_index_key"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))  # md5 of the blocks' ids, codes, geometries
    coarse_deg: Mapped[float] = mapped_column(Float)
    fine: Mapped[int] = mapped_column(SmallInteger)
    cell_deg: Mapped[float] = mapped_column(Float)        # side of a raster cell = coarse_deg / fine
    numeric_codes: Mapped[bool] = mapped_column(Boolean)
    i0: Mapped[int] = mapped_column(Integer)              # raster[1][1] is cell (i0, j0)
    j0: Mapped[int] = mapped_column(Integer)
    ni: Mapped[int] = mapped_column(Integer)
    nj: Mapped[int] = mapped_column(Integer)
    max_candidates: Mapped[int] = mapped_column(SmallInteger)  # longest candidate list of an edge cell
    combos_n: Mapped[int] = mapped_column(Integer)             # distinct candidate lists
    usable: Mapped[bool] = mapped_column(Boolean)              # False: too large → GiST join instead
    cells: Mapped[int] = mapped_column(Integer)
    edge_cells: Mapped[int] = mapped_column(Integer)
    build_ms: Mapped[int] = mapped_column(Integer)
    codes: Mapped[list[str]] = mapped_column(ARRAY(String(14)))        # block number → code
    codes_int: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))    # the same as integers (or empty)
    geoms: Mapped[list[Any]] = mapped_column(ARRAY(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False)))
    combos: Mapped[list[Any]] = mapped_column(ARRAY(SmallInteger))  # candidate lists, 0-padded
    raster: Mapped[list[Any]] = mapped_column(ARRAY(SmallInteger))  # block number, −combo, or 0
    built_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


# -- boundary change sets (geodata.grids.changesets) ----------------------------------------------
PROPOSAL_STATUSES = ("draft", "applied", "discarded")
CHANGE_KINDS = ("created", "changed", "retired")


class GridProposal(Base):
    """A planner's draft: new grid versions against the versions it was drawn on (its items)."""

    __tablename__ = "grid_proposal"
    __table_args__ = (CheckConstraint(f"status IN {PROPOSAL_STATUSES!r}", name="grid_proposal_status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    author: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[dt.datetime | None] = mapped_column(_tstz())  # None: when applied
    source: Mapped[str | None] = mapped_column(String(200))             # the file it was read from
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class GridProposalItem(Base):
    """One grid of a proposal: its new state (``geom`` NULL: retired) and the version it replaces
    (``base_version_id`` NULL: a new code). ``predecessor``: the code whose officials it takes over
    (a grid moved to another parent gets a new code)."""

    __tablename__ = "grid_proposal_item"
    __table_args__ = (UniqueConstraint("proposal_id", "code", name="grid_proposal_item_code"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("grid_proposal.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(14))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(String(14))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(200))
    geom: Mapped[Any | None] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    base_version_id: Mapped[int | None] = mapped_column(Integer)
    predecessor: Mapped[str | None] = mapped_column(String(14))


class GridChangeSet(Base):
    """An applied change (append-only): old versions closed and new ones opened at ``effective_at``."""

    __tablename__ = "grid_change_set"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("grid_proposal.id"))
    reverts_id: Mapped[int | None] = mapped_column(ForeignKey("grid_change_set.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    author: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[dt.datetime] = mapped_column(_tstz())
    applied_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class GridChangeItem(Base):
    """One grid of a change set (append-only): the version closed and the version opened."""

    __tablename__ = "grid_change_item"
    __table_args__ = (CheckConstraint(f"kind IN {CHANGE_KINDS!r}", name="grid_change_item_kind"),
                      Index("grid_change_item_old_idx", "old_version_id"),
                      Index("grid_change_item_code_idx", "code"))

    change_set_id: Mapped[int] = mapped_column(ForeignKey("grid_change_set.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(14), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    old_version_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"))
    new_version_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"))
    predecessor: Mapped[str | None] = mapped_column(String(14))


class GridChangeRun(Base):
    """When a change set's open issues were re-assigned (append-only; at or after ``effective_at``)."""

    __tablename__ = "grid_change_run"

    change_set_id: Mapped[int] = mapped_column(ForeignKey("grid_change_set.id"), primary_key=True)
    ran_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    issues_moved: Mapped[int] = mapped_column(Integer)


class GridIssueMove(Base):
    """Open issues re-assigned by a change set from one block to another (append-only): one row per
    (old, new) pair with the issues' ids — a few rows for 10⁵ issues, written in one statement."""

    __tablename__ = "grid_issue_move"

    change_set_id: Mapped[int] = mapped_column(ForeignKey("grid_change_set.id"), primary_key=True)
    old_grid_code: Mapped[str] = mapped_column(String(14), primary_key=True)
    new_grid_code: Mapped[str] = mapped_column(String(14), primary_key=True)
    issue_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


class GridCodeUsed(Base):
    """Every grid code ever used (kept by a trigger on ``grid``): a retired code is never reused."""

    __tablename__ = "grid_code_used"

    code: Mapped[str] = mapped_column(String(14), primary_key=True)
    first_valid_from: Mapped[dt.datetime] = mapped_column(_tstz())


# -- assessment (考核): rules, qualitative scores, score snapshots, issued bulletins -----------------
class AssessmentRule(Base):
    """One version of the street's 考核办法 (weights, thresholds, deductions, top/bottom N). A change
    is a new row; the database refuses UPDATE and DELETE, so every stored score keeps its rules."""

    __tablename__ = "assessment_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)   # the version
    name: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class AssessmentQualitative(Base):
    """定性 score (0–100) an assessor enters for one period and person or grid, with a comment."""

    __tablename__ = "assessment_qualitative"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 100", name="qualitative_score_range"),
        CheckConstraint("subject_kind IN ('grid', 'official')", name="qualitative_subject_kind"),
        CheckConstraint("length(btrim(comment)) > 0", name="qualitative_comment"),
        UniqueConstraint("period_key", "subject_kind", "subject_key", "assessor_id", name="qualitative_once"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_key: Mapped[str] = mapped_column(String(30))
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_key: Mapped[str] = mapped_column(String(14))    # grid code or official id
    assessor_id: Mapped[int] = mapped_column(ForeignKey("official.id"))
    score: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text)
    entered_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class AssessmentRun(Base):
    """One computation of scores for a period and a subject grouping, with its inputs: the rules'
    version, the data's time ("as of"), the business zone and the scope. Never changed."""

    __tablename__ = "assessment_run"
    __table_args__ = (Index("assessment_run_period_idx", "period_key", "by_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_key: Mapped[str] = mapped_column(String(30))
    by_key: Mapped[str] = mapped_column(String(40))          # 'grid:3', 'official:grid_leader', …
    within: Mapped[str | None] = mapped_column(String(14))
    scope_roots: Mapped[list[Any] | None] = mapped_column(JSONB)
    rule_id: Mapped[int] = mapped_column(ForeignKey("assessment_rule.id"))
    as_of: Mapped[dt.datetime] = mapped_column(_tstz())
    tz: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class AssessmentScore(Base):
    """A stored score of one subject in one run: the indicator values it was computed from, the
    breakdown, the qualitative part used, the final score, the rank and the lists it is on."""

    __tablename__ = "assessment_score"
    __table_args__ = (UniqueConstraint("run_id", "subject_key", name="assessment_score_once"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("assessment_run.id"))
    subject_key: Mapped[str] = mapped_column(String(14))
    subject_name: Mapped[str] = mapped_column(String(100))
    indicators: Mapped[dict[str, Any]] = mapped_column(JSONB)     # {code: value} this period, 环比, 同比
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSONB)
    quantitative: Mapped[float] = mapped_column(Float)
    qualitative: Mapped[float | None] = mapped_column(Float)
    final: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    excellent: Mapped[bool] = mapped_column(Boolean)
    named: Mapped[bool] = mapped_column(Boolean)                   # on the 通报 list
    reasons: Mapped[list[Any]] = mapped_column(JSONB)              # why it is on the 通报 list


class AssessmentBulletin(Base):
    """An issued bulletin (通报): the PDF and workbook bytes exactly as issued, and their inputs."""

    __tablename__ = "assessment_bulletin"
    __table_args__ = (Index("assessment_bulletin_period_idx", "period_key", "level"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_key: Mapped[str] = mapped_column(String(30))
    level: Mapped[int] = mapped_column(SmallInteger)
    rule_id: Mapped[int] = mapped_column(ForeignKey("assessment_rule.id"))
    as_of: Mapped[dt.datetime] = mapped_column(_tstz())
    run_ids: Mapped[list[Any]] = mapped_column(JSONB)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    xlsx_sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class _ClosedKey:
    """The map rollups' key (migrations 0017, 0021): a block with its community and street, kind,
    domain, status; and their two counts — closed, closed after the deadline (超期办结)."""

    grid_code: Mapped[str] = mapped_column(String(14), primary_key=True)
    community_code: Mapped[str] = mapped_column(String(14), primary_key=True)
    street_code: Mapped[str] = mapped_column(String(14), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    domain_code: Mapped[str] = mapped_column(String(30), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)


class IssueClosedRollup(_ClosedKey, Base):
    """Closed issues counted per block, kind, domain, status and local day of report (migration
    0017: kept by statement-level triggers on ``issue``; read by ``geodata.maps.rollup``)."""

    __tablename__ = "issue_closed_rollup"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)


class IssueClosedTotal(_ClosedKey, Base):
    """:class:`IssueClosedRollup` over all time (no day): bounded by the grids, not the history."""

    __tablename__ = "issue_closed_total"


class IssueClosedCell(_ClosedKey, Base):
    """:class:`IssueClosedTotal` per map cell too (migration 0021: a Web-Mercator square, 2²² to
    the world's side), with the sums of the issues' longitudes and latitudes (of the late ones:
    ``lx``, ``ly``): the markers and heat of closed issues without reading them
    (``geodata.maps.cells``)."""

    __tablename__ = "issue_closed_cell"

    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    sx: Mapped[float] = mapped_column(Float)
    sy: Mapped[float] = mapped_column(Float)
    lx: Mapped[float] = mapped_column(Float)
    ly: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("issue_closed_cell_xy", "cx", "cy"),)
