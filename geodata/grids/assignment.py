"""Automatic assignment: point → current level-3 (block) grid, the six-ones chain.

**Which grid owns a point (documented, deterministic rule).** The candidate grids are the *current*
(``valid_from <= as_of < valid_to``) level-3 grids whose geometry *covers* the point
(``ST_Covers``: interior or boundary, so no point inside the street can fall into a crack between
two grids). A point on a shared edge is covered by two grids and one on a shared vertex by three or
more; of those the grid with the **lowest code** wins. The same rule is used by the single-point
lookup (:func:`locate_block`), by the set-wise bulk assignment (:func:`geodata.grids.bulk.assign_points_setwise`) and by
the per-point baseline, so all three give identical answers.

**Outside every grid.** Refused with :class:`OutsideGridsError`, which reports the nearest block grid
and its distance in metres (``ST_Distance`` on geography). Only an explicit operator override
(``nearest=True``) attaches such a point to the nearest block grid, and only within
``MAX_OVERRIDE_M`` metres; the distance is reported with the result.

Coordinates arrive in WGS84 (EPSG:4326) here; input in other systems is converted by
:func:`geodata.geometry.to_wgs84` first.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.codes import lineage
from geodata.errors import OutsideGridsError
from geodata.geometry import check_lon_lat

UTC = dt.UTC

#: Largest distance (metres) at which an operator override may attach an outside point.
MAX_OVERRIDE_M = 5000.0

# -- point → block grid --------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where a point was assigned."""

    grid_code: str
    grid_name: str
    community_code: str
    lon: float
    lat: float
    method: str = "covers"          # 'covers' or 'nearest' (operator override)
    distance_m: float = 0.0          # 0 when covered
    candidates: tuple[str, ...] = ()  # every block grid covering the point (>1 on a shared edge)


_CURRENT = "g.valid_from <= :t AND (g.valid_to IS NULL OR g.valid_to > :t)"

_COVERING_SQL = text(f"""
    SELECT g.code, g.name, g.parent_code FROM grid g
    WHERE g.level = 3 AND {_CURRENT}
      AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY g.code
""")

_NEAREST_SQL = text(f"""
    SELECT code, name, parent_code, dist FROM (
      SELECT g.code, g.name, g.parent_code,
             ST_Distance(g.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS dist
      FROM grid g
      WHERE g.level = 3 AND {_CURRENT}
      ORDER BY g.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
      LIMIT 8) c
    ORDER BY dist, code LIMIT 1
""")


def locate_block(session: Session, lon: float, lat: float, *, as_of: dt.datetime | None = None,
                 nearest: bool = False, max_override_m: float = MAX_OVERRIDE_M) -> Placement:
    """The current block grid owning a WGS84 point (rule in the module docstring).

    ``nearest=True`` is the operator override for points outside every grid."""
    check_lon_lat(lon, lat)
    t = as_of or dt.datetime.now(UTC)
    rows = session.execute(_COVERING_SQL, {"lon": lon, "lat": lat, "t": t}).all()
    if rows:
        code, name, parent = rows[0]
        return Placement(code, name, parent, lon, lat, "covers", 0.0, tuple(r[0] for r in rows))
    near = session.execute(_NEAREST_SQL, {"lon": lon, "lat": lat, "t": t}).first()
    if near is None:
        raise OutsideGridsError("no_grids", "尚无任何有效的三级网格，无法分配", "there are no current block grids to "
                                "assign to", field="lon")
    code, name, parent, dist = near
    dist = float(dist)
    if nearest and dist <= max_override_m:
        return Placement(code, name, parent, lon, lat, "nearest", round(dist, 1), ())
    detail = {"nearest_grid": code, "nearest_grid_name": name, "distance_m": round(dist, 1)}
    if nearest:
        raise OutsideGridsError(
            "too_far_for_override",
            f"该点距最近的网格“{name}”({code}) {dist:.0f} 米，超过人工指定的上限 {max_override_m:.0f} 米",
            f"the point is {dist:.0f} m from the nearest grid {code}, beyond the override limit of "
            f"{max_override_m:.0f} m", field="lon", detail=detail)
    raise OutsideGridsError(
        "outside_grids",
        f"该点不在任何网格内（距最近的网格“{name}”({code}) {dist:.0f} 米）；请核对坐标或坐标系，"
        f"或由网格化管理中心指定归属最近网格",
        f"the point lies outside every grid ({dist:.0f} m from the nearest grid {code}); check the "
        f"coordinates and their coordinate system, or have an operator attach it to the nearest grid",
        field="lon", detail=detail)


# -- officials and the six-ones chain ------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """THE type for an official holding a role in a grid (the contact card, the six-ones chain, the
    map's grid panel). ``phone`` only when the viewer may see personal data; ``chain`` names the
    six-ones link (grid_leader / responsible / leader_in_charge) when it is listed as one."""

    official_id: int
    name: str
    role: str
    title: str
    grid_code: str
    grid_level: int
    rank: int
    phone: str | None = None
    unit: str | None = None
    chain: str | None = None


@dataclass(frozen=True)
class GridRef:
    code: str
    name: str
    level: int


@dataclass(frozen=True)
class Chain:
    """The block, its parents, everyone holding a role in them, and the six-ones people:
    主管领导 (leader in charge), 直接责任人 (directly responsible), 网格长 (grid leader)."""

    grids: tuple[GridRef, ...]                # street, community, block (as found)
    holders: tuple[Holder, ...] = ()
    leader_in_charge: Holder | None = None
    responsible: Holder | None = None
    grid_leader: Holder | None = None

    def links(self) -> list[Holder]:
        """Everyone on each of the three links, tagged with it (``chain``): every grid leader of the
        block, every direct responsible of the community, and as leaders in charge the community's
        first responsibles (the street's when the community has none) — the first of each is the
        link's person above. In link order, then rank and id."""
        out: list[Holder] = []
        for link, role, levels in CHAIN_LINKS:
            for level in levels:
                found = [h for h in self.holders if h.role == role and h.grid_level == level]
                if found:
                    out.extend(replace(h, chain=link) for h in found)
                    break
        return out


#: The six-ones links (网格长, 直接责任人, 主管领导): (link, the role that fills it, the grid levels
#: it is looked for at, in order). THE definition both the issue's chain and the grid panel use.
CHAIN_LINKS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("grid_leader", "grid_leader", (3,)),
    ("responsible", "direct_responsible", (2,)),
    ("leader_in_charge", "first_responsible", (2, 1)),
)


_HOLDERS_SQL = text(f"""
    SELECT a.official_id, o.name, a.role, a.title, a.grid_code, g.level, a.rank,
           (SELECT c.phone FROM official_contact c WHERE c.official_id = o.id) AS phone, o.unit
    FROM grid_assignment a
    JOIN official o ON o.id = a.official_id AND o.active
    JOIN grid g ON g.code = a.grid_code AND {_CURRENT}
    WHERE a.grid_code = ANY(:codes)
      AND a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t)
    ORDER BY g.level, a.role, a.rank, a.official_id
""")

_GRIDS_SQL = text(f"""
    SELECT g.code, g.name, g.level FROM grid g WHERE g.code = ANY(:codes) AND {_CURRENT} ORDER BY g.level
""")


def six_ones_chain(session: Session, block_code: str, *, as_of: dt.datetime | None = None,
                   personal_data: bool = False, include_grids: bool = True) -> Chain:
    """The six-ones chain of a block from the current assignments of the block and its parents.

    主管领导 = the community's first responsible (街道科级分包领导), else the street's;
    直接责任人 = the community's direct responsible of lowest rank (社区党支部书记 first);
    网格长 = the block's grid leader of lowest rank. Within a role, lowest ``rank`` then lowest id."""
    t = as_of or dt.datetime.now(UTC)
    codes = lineage(block_code)
    grids = (tuple(GridRef(*r) for r in session.execute(_GRIDS_SQL, {"codes": codes, "t": t}).all())
             if include_grids else ())
    holders = tuple(
        Holder(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), r[7] if personal_data else None, r[8])
        for r in session.execute(_HOLDERS_SQL, {"codes": codes, "t": t}).all())

    chain = Chain(grids=grids, holders=holders)
    first = {}
    for h in chain.links():
        first.setdefault(h.chain, replace(h, chain=None))
    return replace(chain, leader_in_charge=first.get("leader_in_charge"), responsible=first.get("responsible"),
                   grid_leader=first.get("grid_leader"))
