"""Grid reads and writes (Session in, plain data out).

Grids are versioned: each row is one boundary version valid over ``[valid_from, valid_to)``. Every
read takes an ``as_of`` time that defaults to now; a boundary change closes the current row
(:func:`close_versions`) and opens a new one (:func:`insert_grids`) — history is never deleted.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, text, update
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.codes import CodeError, descendant_prefix, level_of
from geodata.errors import DomainError
from geodata.geometry import area_m2 as _area_m2
from geodata.geometry import as_multipolygon
from geodata.models import SRID, Grid, Issue

UTC = dt.UTC


@dataclass(frozen=True)
class GridRow:
    """One version of a grid, as plain data (geometry: shapely MultiPolygon in EPSG:4326)."""

    code: str
    level: int
    parent_code: str | None
    name: str
    geom: MultiPolygon
    area_m2: float
    name_en: str | None = None
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None
    note: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class NewGrid:
    """A grid version to insert; ``area_m2`` is computed when not given."""

    code: str
    level: int
    parent_code: str | None
    name: str
    geom: BaseGeometry
    name_en: str | None = None
    note: str | None = None
    area_m2: float | None = None


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _at(as_of: dt.datetime | None, tz: ZoneInfo | None = None) -> dt.datetime:
    """``as_of`` or now; a naive time is read in the business time zone ``tz`` (refused without one)."""
    if as_of is None:
        return now()
    if as_of.tzinfo is None:
        if tz is None:
            raise ValueError("a naive time needs the business time zone (tz)")
        return as_of.replace(tzinfo=tz)
    return as_of


def _grid_level(code: str) -> int:
    try:
        return level_of(code)
    except CodeError:
        raise DomainError("invalid_grid_code", f"网格编码“{code}”须为14位数字",
                          f"grid code '{code}' must be 14 digits", field="grid") from None


def in_grid(column: ColumnElement, code: str) -> ColumnElement[bool]:
    """THE grid filter: a grid-code ``column`` in grid ``code`` (any level) or below it; a malformed
    ``code`` is refused naming the field ``grid``."""
    level = _grid_level(code)
    return column == code if level == 3 else column.like(descendant_prefix(code) + "%")


def issue_in_grid(code: str) -> ColumnElement[bool]:
    """:func:`in_grid` for issues: equality on the issue's street, community or block code (the
    one of ``code``'s level) — leak-proof, so PostgreSQL may use it as an index condition under
    row-level security, where a ``LIKE`` is only checked after the policy."""
    column = {1: Issue.street_code, 2: Issue.community_code, 3: Issue.grid_code}[_grid_level(code)]
    return column == code


def ancestor_key(column: ColumnElement, level: int) -> ColumnElement[str]:
    """SQL: the code of the level-``level`` grid holding the block code in ``column`` (level 3: the
    code itself; 2: its community, 12 digits + ``00``; 1: its street, 9 digits + ``00000``)."""
    if level == 3:
        return column
    keep = {2: 12, 1: 9}[level]
    # constants inline (no bind parameters), so the same expression built twice groups as one
    return func.substr(column, literal_column("1"), literal_column(str(keep))).concat(
        literal_column(f"'{'0' * (14 - keep)}'"))


def valid_at(as_of: dt.datetime | None = None, model: type = Grid):
    """SQL condition: the row of ``model`` — a grid version (default) or any table with the same
    validity period, such as ``GridAssignment`` — is valid at ``as_of`` (default now)."""
    at = _at(as_of)
    return and_(model.valid_from <= at, or_(model.valid_to.is_(None), model.valid_to > at))


def _select_rows() -> Select:
    return select(Grid.id, Grid.code, Grid.level, Grid.parent_code, Grid.name, Grid.name_en,
                  func.ST_AsBinary(Grid.geom).label("wkb"), Grid.area_m2, Grid.valid_from,
                  Grid.valid_to, Grid.note)


def _row(r) -> GridRow:
    return GridRow(code=r.code, level=r.level, parent_code=r.parent_code, name=r.name,
                   geom=shapely.from_wkb(bytes(r.wkb)), area_m2=r.area_m2, name_en=r.name_en,
                   valid_from=r.valid_from, valid_to=r.valid_to, note=r.note, id=r.id)


def current_grids(session: Session, level: int | None = None, as_of: dt.datetime | None = None,
                  scope: Scope | None = None, *, codes: Collection[str] | None = None,
                  parent_codes: Collection[str] | None = None, tz: ZoneInfo | None = None) -> list[GridRow]:
    """Grid versions valid at ``as_of`` (default now; a naive time is read in ``tz``), ordered by code.

    Optional filters: ``level``, a viewer ``scope``, exact ``codes``, ``parent_codes``.
    """
    q = _select_rows().where(valid_at(_at(as_of, tz)))
    if level is not None:
        q = q.where(Grid.level == level)
    if scope is not None:
        q = q.where(scope.filter(Grid.code))
    if codes is not None:
        if not codes:
            return []
        q = q.where(Grid.code.in_(list(codes)))
    if parent_codes is not None:
        if not parent_codes:
            return []
        q = q.where(Grid.parent_code.in_(list(parent_codes)))
    return [_row(r) for r in session.execute(q.order_by(Grid.code))]


def grid_history(session: Session, code: str) -> list[GridRow]:
    """Every version of one grid code, oldest first."""
    q = _select_rows().where(Grid.code == code).order_by(Grid.valid_from)
    return [_row(r) for r in session.execute(q)]


def count_grids(session: Session, level: int | None = None, *, all_versions: bool = False,
                as_of: dt.datetime | None = None) -> int:
    """Number of grid rows: current ones (at ``as_of``) or, with ``all_versions``, every version."""
    q = select(func.count()).select_from(Grid)
    if not all_versions:
        q = q.where(valid_at(as_of))
    if level is not None:
        q = q.where(Grid.level == level)
    return int(session.scalar(q) or 0)


def used_codes(session: Session, prefix: str = "") -> set[str]:
    """Every code ever used (any version, current or closed), optionally under a prefix.

    Generated codes avoid all of them, so a retired code is never handed to a different area.
    """
    q = select(Grid.code).distinct()
    if prefix:
        q = q.where(Grid.code.like(prefix + "%"))
    return set(session.scalars(q))


def insert_grids(session: Session, rows: Iterable[NewGrid], at: dt.datetime | None = None) -> int:
    """Open new grid versions valid from ``at`` (default now). Returns the number inserted."""
    return len(insert_versions(session, rows, at))


def insert_versions(session: Session, rows: Iterable[NewGrid], at: dt.datetime | None = None) -> list[int]:
    """Open new grid versions valid from ``at`` (default now). Returns their ids, in order."""
    start = _at(at)
    objs = []
    for r in rows:
        geom = as_multipolygon(r.geom)
        objs.append(Grid(code=r.code, level=r.level, parent_code=r.parent_code, name=r.name,
                         name_en=r.name_en, geom=from_shape(geom, srid=SRID),
                         area_m2=r.area_m2 if r.area_m2 is not None else _area_m2(geom),
                         valid_from=start, valid_to=None, note=r.note))
    session.add_all(objs)
    session.flush()
    return [o.id for o in objs]


def close_versions(session: Session, codes: Collection[str], at: dt.datetime | None = None) -> int:
    """Close the current versions of ``codes`` at ``at`` (default now). Returns rows closed."""
    if not codes:
        return 0
    res = session.execute(update(Grid).where(Grid.code.in_(list(codes)), Grid.valid_to.is_(None))
                          .values(valid_to=_at(at)).execution_options(synchronize_session=False))
    return int(res.rowcount or 0)


def retired_codes(session: Session, codes: Collection[str]) -> dict[str, BaseGeometry]:
    """Of ``codes``, those used before and open no more (no version without an end), each with its
    last boundary: never reused for another area (see ``geodata.grids.rules.validate_grids``; the
    database's trigger ``grid_code_not_reused`` refuses it too)."""
    if not codes:
        return {}
    rows = session.execute(text(
        "SELECT DISTINCT ON (g.code) g.code, ST_AsBinary(g.geom) AS wkb FROM grid g WHERE g.code = ANY(:codes) "
        "AND NOT EXISTS (SELECT 1 FROM grid o WHERE o.code = g.code AND o.valid_to IS NULL) "
        "ORDER BY g.code, g.valid_from DESC"), {"codes": list(codes)})
    return {r.code: shapely.from_wkb(bytes(r.wkb)) for r in rows}


def versions(session: Session, ids: Collection[int]) -> list[GridRow]:
    """Grid versions by id (any time), in id order."""
    if not ids:
        return []
    return [_row(r) for r in session.execute(_select_rows().where(Grid.id.in_(list(ids))).order_by(Grid.id))]
