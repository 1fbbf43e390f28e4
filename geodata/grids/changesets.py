"""Boundary change sets: proposals (drafts) saved, validated, previewed and applied atomically; history.

**Proposal.** A draft (:class:`geodata.grids.edits.Draft`) saved as rows: each changed grid's new
state and the version it was drawn on (``base_version_id``), with author, reason and effective
time (now, or later). It is built from a plain :data:`spec` (the boundary editor's and the API's
contract, see :func:`build_draft`) or from a file (``etl.grids_io.propose_file``).

**Validation** is the file import's (:func:`geodata.grids.edits.problems` →
:func:`geodata.grids.rules.validate_grids`); each problem comes with its shape as GeoJSON
(:func:`problem_data`). **Impact** (:func:`impact`) is plain data: the issues (open and past) whose
grid the new boundaries would change, the officials who gain or lose area, codes created, changed
and retired, areas before and after (m², each grid's UTM zone as ``grid.area_m2``).

**Apply** (:func:`apply_proposal`), in one savepoint of the caller's transaction (a failure anywhere
leaves nothing): the street's advisory lock, the proposal's base versions locked and checked
still current (else :class:`ConflictError` naming the grids and the change sets that changed them),
validation again against the tiling as it is now, then the old versions closed and the new ones
opened at the effective time, officials passed from a moved grid's old code to its new one, the
append-only change-set rows, and — when the effective time has come — every open issue whose block
may have changed re-assigned by location in set-wise SQL (:func:`reassign_issues`; a later
effective time is caught up by :func:`reassign_due`). Closed issues keep the grid they had.

**History**: :func:`change_sets`, the boundaries as of any time (``store.current_grids(as_of=…)``),
:func:`diff` of two times, :func:`revert` (a new change set restoring the versions it replaced).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from geodata.codes import level_of
from geodata.errors import ConflictError, DomainError, TooLargeError, not_found
from geodata.geometry import area_m2, as_multipolygon
from geodata.grids import edits, store
from geodata.grids.assignment import six_ones_chain
from geodata.grids.edits import Draft, Item
from geodata.grids.rules import Problem
from geodata.models import (
    SRID,
    GridChangeItem,
    GridChangeSet,
    GridProposal,
    GridProposalItem,
)
from geodata.workflow.rules import OPEN_STATUSES

UTC = dt.UTC

#: Most grids and vertices one proposal may carry (bounded work per request and per apply).
MAX_GRIDS = 300
MAX_VERTICES = 200_000
#: Most issues listed by name in an impact (all are counted).
IMPACT_ISSUES_LISTED = 200


@dataclass(frozen=True)
class Author:
    """Who proposes or applies: an official (``id``) or a script (``id`` None)."""

    id: int | None
    name: str


# -- the spec: drafts from plain data -----------------------------------------------------------
def _geom(value: Any, where: str) -> BaseGeometry:
    try:
        g = shape(value)
    except Exception:
        raise DomainError("invalid_geojson", f"{where} 不是有效的 GeoJSON 几何", f"{where} is not a valid GeoJSON "
                          "geometry", field=where) from None
    return g


def load_draft(session: Session, *, as_of: dt.datetime | None = None) -> Draft:
    """A draft over the current grids (every level), knowing every code ever used."""
    rows = store.current_grids(session, as_of=as_of)
    return Draft(rows, used=store.used_codes(session))


def build_draft(session: Session, spec: Mapping[str, Any], *, draft: Draft | None = None) -> Draft:
    """The boundary editor's contract: a draft from ``spec`` (plain JSON data, lon/lat WGS84)::

        {"grids": [{"code": "…", "geometry": {GeoJSON}, "name": "…"},      # new boundary (and name)
                   {"code": "…", "retire": true},                          # retire
                   {"parent_code": "…", "geometry": {…}, "name": "…"}],    # a new grid (code generated)
         "operations": [{"op": "split", "code": "…", "line": {LineString}},
                        {"op": "merge", "codes": ["…", "…"], "keep": "…"},
                        {"op": "move", "code": "…", "parent": "…"},
                        {"op": "subdivide", "code": "…", "lines": [{LineString}, …]},
                        {"op": "rename", "code": "…", "name": "…", "name_en": "…"}],
         "base": {"<code>": <version id>, …}}     # optional: the versions the client drew on

    ``grids`` are applied first (all boundaries at once: a moved shared boundary is one entry per
    neighbour), then ``operations`` in order. Unknown codes and bad geometry types are refused."""
    draft = draft or load_draft(session)
    if spec.get("base"):
        check_base(session, {str(k): int(v) for k, v in spec["base"].items()}, draft=draft)
    grids = list(spec.get("grids") or [])
    new_geoms: dict[str, BaseGeometry] = {}
    names: dict[str, str] = {}
    for k, g in enumerate(grids):
        code = g.get("code")
        if g.get("retire"):
            draft.retire(_code(code, f"grids[{k}].code"))
            continue
        geom = _geom(g.get("geometry"), f"grids[{k}].geometry")
        if code and draft.get(code) is not None:
            new_geoms[code] = geom
            if g.get("name"):
                names[code] = g["name"]
            if g.get("name_en") is not None:
                edits.rename(draft, code, g.get("name") or draft.need(code).name, g["name_en"])
        else:
            parent = g.get("parent_code")
            if not g.get("name"):
                raise DomainError("missing_name", "新网格须有名称", "a new grid needs a name", field=f"grids[{k}].name")
            edits.create(draft, parent, geom, g["name"], code=code, name_en=g.get("name_en"),
                         level=g.get("level"), feature=g.get("feature"))
    edits.replace(draft, new_geoms, names=names)
    for k, op in enumerate(spec.get("operations") or []):
        try:
            _operation(draft, op, f"operations[{k}]")
        except shapely.errors.GEOSException:
            raise DomainError("geometry_error", f"operations[{k}] 无法在这些边界上执行（请先修正无效几何）",
                              f"operations[{k}] cannot run on these boundaries (fix the invalid geometry first)",
                              field=f"operations[{k}]") from None
    check_size(draft.changes())
    return draft


def _operation(draft: Draft, op: Mapping[str, Any], fld: str) -> None:
    name = op.get("op")
    if name == "split":
        edits.split(draft, _code(op.get("code"), f"{fld}.code"), _geom(op.get("line"), f"{fld}.line"),
                    names=op.get("names"))
    elif name == "merge":
        edits.merge(draft, [_code(c, f"{fld}.codes") for c in op.get("codes") or []], keep=op.get("keep"))
    elif name == "move":
        edits.move(draft, _code(op.get("code"), f"{fld}.code"), _code(op.get("parent"), f"{fld}.parent"))
    elif name == "subdivide":
        edits.subdivide(draft, _code(op.get("code"), f"{fld}.code"),
                        lines=[_geom(x, f"{fld}.lines") for x in op.get("lines") or []],
                        pieces=[_geom(x, f"{fld}.pieces") for x in op.get("pieces") or []], names=op.get("names"))
    elif name == "rename":
        edits.rename(draft, _code(op.get("code"), f"{fld}.code"), op.get("name") or "", op.get("name_en"))
    else:
        raise DomainError("unknown_operation", f"未知操作“{name}”（split、merge、move、subdivide、rename）",
                          f"unknown operation '{name}' (split, merge, move, subdivide, rename)", field=f"{fld}.op")


def _code(value: Any, fld: str) -> str:
    if not isinstance(value, str) or not value:
        raise DomainError("missing_code", f"{fld} 须为网格编码", f"{fld} must be a grid code", field=fld)
    return value


def check_size(items: Sequence[Item], *, max_grids: int = MAX_GRIDS, max_vertices: int = MAX_VERTICES) -> None:
    """Bounded work: at most ``max_grids`` grids and ``max_vertices`` vertices in one proposal."""
    if len(items) > max_grids:
        raise TooLargeError("too_many_grids", f"一个方案最多 {max_grids} 个网格（本方案 {len(items)} 个）",
                            f"a proposal holds at most {max_grids} grids (this one: {len(items)})", field="grids")
    n = sum(int(shapely.get_num_coordinates(i.geom)) for i in items if i.geom is not None)
    if n > max_vertices:
        raise TooLargeError("too_many_vertices", f"一个方案最多 {max_vertices} 个顶点（本方案 {n} 个）",
                            f"a proposal holds at most {max_vertices} vertices (this one: {n})", field="grids")


# -- validation ---------------------------------------------------------------------------------
def validate(session: Session, draft: Draft, *, tolerance_m: float = 1.0) -> list[Problem]:
    """Every problem of the draft against the current tiling (the file import's rules)."""
    new = [c.code for c in draft.changes() if c.code not in draft.base and c.geom is not None]
    return edits.problems(draft, tolerance_m=tolerance_m, retired=store.retired_codes(session, new))


def problem_data(p: Problem) -> dict:
    """A problem as plain data: messages naming the grid, its point and its shape (GeoJSON)."""
    if p.code:
        lz = f"网格「{p.name}」({p.code})" if p.name else f"网格 {p.code}"
        le = f"grid \"{p.name}\" ({p.code})" if p.name else f"grid {p.code}"
    else:
        lz, le = p.label_zh, p.label_en
    geom = p.geometry if p.geometry is not None else (Point(*p.where) if p.where else None)
    return {"kind": p.kind, "code": p.code, "name": p.name, "message_zh": f"{lz}：{p.zh}",
            "message_en": f"{le}: {p.en}", "where": list(p.where) if p.where else None,
            "geometry": mapping(geom) if geom is not None else None}


#: Problems with a grid's own geometry: no impact can be measured until they are fixed.
GEOMETRY_KINDS = frozenset({"empty_geometry", "non_polygon", "out_of_range", "outside_china", "invalid_geometry"})


def check_draft(session: Session, spec: Mapping[str, Any], *, tolerance_m: float = 1.0, with_impact: bool = True,
                at: dt.datetime | None = None) -> dict:
    """THE live check of the boundary editor: the draft ``spec`` (see :func:`build_draft`) validated
    against the current tiling, its changed grids (GeoJSON) and — asked and measurable — its impact.
    Nothing is written."""
    draft = build_draft(session, spec)
    probs = validate(session, draft, tolerance_m=tolerance_m)
    return {"valid": not probs, "problems": [problem_data(p) for p in probs], "grids": feature_collection(draft),
            "impact": _impact_if_measurable(session, draft, probs, at) if with_impact else None}


def _impact_if_measurable(session: Session, draft: Draft, probs: Sequence[Problem], at: dt.datetime | None):
    return None if any(p.kind in GEOMETRY_KINDS for p in probs) else impact(session, draft, at=at)


# -- impact -------------------------------------------------------------------------------------
_CUR = "g.valid_from <= :t AND (g.valid_to IS NULL OR g.valid_to > :t)"


def _moves_sql(candidates: str, *, open_only: bool) -> str:
    """Issues whose block may change (in a touched grid, or inside a new boundary) with the block
    the placement rule gives them among ``candidates`` (``code, geom`` rows): the lowest code of the
    covering blocks (as ``assignment.locate_block``); else the old block if still a candidate (an
    operator's nearest-grid placement), else the nearest candidate.

    The placement is computed once per issue (a MATERIALIZED step, then compared): written as one
    filter, PostgreSQL inlined the lateral placement into both the output and the WHERE and ran each
    sub-select twice per issue (≈2× on 10⁵ issues, bench/bench_grids.py). The covering block is
    found per issue through the grids' index (the issues' own location index cannot drive it under
    row-level security: ST_Covers is not leakproof)."""
    status = "AND i.status = ANY(:open)" if open_only else ""
    return f"""
        WITH placed AS MATERIALIZED (
            SELECT i.id, i.number, i.status, i.grid_code AS old_code, n.code AS new_code
            FROM issue i
            CROSS JOIN LATERAL (SELECT coalesce(
                (SELECT min(c.code) FROM ({candidates}) c WHERE ST_Covers(c.geom, i.location)),
                (SELECT c.code FROM ({candidates}) c WHERE c.code = i.grid_code),
                (SELECT c.code FROM ({candidates}) c ORDER BY c.geom <-> i.location, c.code LIMIT 1)) AS code) n
            WHERE (i.grid_code = ANY(:touched) OR ST_Intersects(i.location, ST_GeomFromWKB(:area, {SRID})))
              {status})
        SELECT id, number, status, old_code, new_code FROM placed WHERE new_code IS DISTINCT FROM old_code"""


def _area_wkb(geoms: Iterable[BaseGeometry]) -> bytes:
    gs = [g for g in geoms if g is not None]
    return shapely.to_wkb(shapely.union_all(gs) if gs else shapely.Polygon())


def _stored_blocks() -> str:
    return f"SELECT g.code, g.geom FROM grid g WHERE g.level = 3 AND {_CUR}"


def impact(session: Session, draft: Draft, *, at: dt.datetime | None = None, issues: bool = True) -> dict:
    """What applying the draft would change (plain data; nothing is written). ``issues=False``
    leaves out the issues (their count is then None)."""
    t = at or store.now()
    changes = draft.changes()
    created, changed, retired = [], [], []
    before_of: dict[str, BaseGeometry | None] = {}
    for c in changes:
        row = draft.base.get(c.code)
        before = row.geom if row is not None else None
        if row is None and c.predecessor and c.predecessor in draft.base:
            before = draft.base[c.predecessor].geom
        before_of[c.code] = before
        if row is None:
            created.append({"code": c.code, "name": c.name, "level": c.level, "parent_code": c.parent_code,
                            "predecessor": c.predecessor, "area_m2": round(area_m2(c.geom), 1)})
        elif c.geom is None:
            retired.append({"code": c.code, "name": row.name, "level": c.level, "area_m2": round(row.area_m2, 1)})
        else:
            changed.append(_area_change(c.code, c.name, c.level, row.geom, c.geom))
    blocks = [c for c in changes if c.level == 3]
    touched = [c.code for c in blocks if c.code in draft.base]
    alive = [c for c in blocks if c.geom is not None]
    found: list[dict] | None = [] if issues else None
    if blocks and issues:
        # candidates: the draft's blocks (bound as WKB) and the stored current blocks it leaves as they are
        cand = (f"SELECT * FROM unnest(CAST(:pcodes AS text[])) WITH ORDINALITY AS p(code, k) "
                f"CROSS JOIN LATERAL (SELECT ST_GeomFromWKB((CAST(:pwkbs AS bytea[]))[p.k], {SRID}) AS geom) x")
        cand = (f"SELECT p.code, p.geom FROM ({cand}) p UNION ALL SELECT g.code, g.geom FROM grid g "
                f"WHERE g.level = 3 AND {_CUR} AND g.code <> ALL(:skip)")
        rows = session.execute(text(_moves_sql(cand, open_only=False)), {
            "pcodes": [c.code for c in alive], "pwkbs": [shapely.to_wkb(c.geom) for c in alive],
            "skip": [c.code for c in blocks], "touched": touched, "t": t,
            "area": _area_wkb(c.geom for c in alive)}).all()
        found = [{"id": r.id, "number": r.number, "status": r.status, "open": r.status in OPEN_STATUSES,
                   "from_code": r.old_code, "to_code": r.new_code} for r in rows]
    return {
        "effective_at": t, "created": created, "changed": changed, "retired": retired,
        "issues": None if found is None else {
            "open": sum(i["open"] for i in found), "past": sum(not i["open"] for i in found),
            "items": sorted(found, key=lambda i: (not i["open"], i["number"]))[:IMPACT_ISSUES_LISTED]},
        "officials": _officials(session, changes, before_of, t),
    }


def _area_change(code: str, name: str, level: int, before: BaseGeometry | None, after: BaseGeometry | None) -> dict:
    b = area_m2(before) if before is not None else 0.0
    a = area_m2(after) if after is not None else 0.0
    gained = area_m2(shapely.difference(after, before)) if after is not None and before is not None else a
    lost = area_m2(shapely.difference(before, after)) if after is not None and before is not None else b
    return {"code": code, "name": name, "level": level, "area_before_m2": round(b, 1), "area_after_m2": round(a, 1),
            "gained_m2": round(gained, 1), "lost_m2": round(lost, 1)}


def _officials(session: Session, changes: Sequence[Item], before_of: Mapping[str, Any], t: dt.datetime) -> list[dict]:
    """Officials holding a role in a changed grid (or in the code a new one takes over), with the
    area they gain and lose there."""
    holds = {c.code: c.code for c in changes}  # code whose holders count → the changed code
    holds |= {c.predecessor: c.code for c in changes if c.predecessor}  # a moved grid's take over
    if not holds:
        return []
    rows = session.execute(text(
        "SELECT a.official_id, o.name, a.role, a.title, a.grid_code FROM grid_assignment a "
        "JOIN official o ON o.id = a.official_id AND o.active WHERE a.grid_code = ANY(:codes) "
        "AND a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t) ORDER BY a.official_id, a.grid_code"),
        {"codes": list(holds), "t": t}).all()
    by_code = {c.code: c for c in changes}
    out = []
    for r in rows:
        code = holds[r.grid_code]
        c = by_code[code]
        ch = _area_change(code, c.name, c.level, before_of.get(code), c.geom)
        if ch["gained_m2"] or ch["lost_m2"]:
            out.append({"official_id": r.official_id, "name": r.name, "role": r.role, "title": r.title,
                        "grid_code": code, "gained_m2": ch["gained_m2"], "lost_m2": ch["lost_m2"]})
    return out


# -- proposals ----------------------------------------------------------------------------------
def save_proposal(session: Session, draft: Draft, author: Author, reason: str, *,
                  effective_at: dt.datetime | None = None, source: str | None = None,
                  proposal_id: int | None = None, bases: Mapping[str, int] | None = None) -> int:
    """Save the draft's changes as a proposal (a new one, or replacing a draft's content)."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("missing_reason", "请填写调整原因", "give the reason for the change", field="reason")
    changes = draft.changes()
    if not changes:
        raise DomainError("nothing_changed", "方案没有改变任何网格", "the proposal changes no grid", field="grids")
    check_size(changes)
    for c in changes:
        if c.geom is not None and c.geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise DomainError("non_polygon", f"网格 {c.code} 的边界须为面（Polygon/MultiPolygon）",
                              f"the boundary of grid {c.code} must be a Polygon/MultiPolygon", field="grids")
    now = store.now()
    if proposal_id is None:
        prop = GridProposal(status="draft", author_id=author.id, author=author.name, reason=reason,
                            effective_at=effective_at, source=source, created_at=now, updated_at=now)
        session.add(prop)
        session.flush()
    else:
        prop = _draft_proposal(session, proposal_id)
        prop.reason, prop.effective_at, prop.updated_at = reason, effective_at, now
        session.execute(delete(GridProposalItem).where(GridProposalItem.proposal_id == prop.id))
    bases = dict(bases or {})
    for c in changes:
        base = bases.get(c.code, draft.base[c.code].id if c.code in draft.base else None)
        session.add(GridProposalItem(
            proposal_id=prop.id, code=c.code, level=c.level, parent_code=c.parent_code, name=c.name,
            name_en=c.name_en, geom=from_shape(as_multipolygon(c.geom), srid=SRID) if c.geom is not None else None,
            base_version_id=base, predecessor=c.predecessor))
    session.flush()
    return prop.id


def _proposal(session: Session, proposal_id: int, *, lock: bool = False) -> GridProposal:
    prop = session.get(GridProposal, proposal_id, with_for_update=lock)
    if prop is None:
        raise not_found("方案", "proposal", proposal_id)
    return prop


def _draft_proposal(session: Session, proposal_id: int) -> GridProposal:
    prop = _proposal(session, proposal_id, lock=True)
    if prop.status != "draft":
        raise ConflictError("proposal_not_draft", f"方案 #{proposal_id} 已{'应用' if prop.status == 'applied' else '放弃'}，"
                            "不能再修改或应用", f"proposal #{proposal_id} is {prop.status}: it cannot be changed or "
                            "applied again", field="id")
    return prop


def proposal_items(session: Session, proposal_id: int) -> list[tuple[Item, int | None]]:
    rows = session.execute(select(GridProposalItem.code, GridProposalItem.level, GridProposalItem.parent_code,
                                  GridProposalItem.name, GridProposalItem.name_en,
                                  func.ST_AsBinary(GridProposalItem.geom).label("wkb"),
                                  GridProposalItem.base_version_id, GridProposalItem.predecessor)
                           .where(GridProposalItem.proposal_id == proposal_id).order_by(GridProposalItem.code)).all()
    return [(Item(r.code, r.level, r.parent_code, r.name, shapely.from_wkb(bytes(r.wkb)) if r.wkb else None,
                  r.name_en, r.predecessor), r.base_version_id) for r in rows]


def proposal_draft(session: Session, proposal_id: int) -> tuple[GridProposal, Draft, dict[str, int]]:
    """The proposal, its draft over the current tiling and the base versions it was drawn on."""
    prop = _proposal(session, proposal_id)
    draft = load_draft(session)
    bases = {}
    for item, base in proposal_items(session, proposal_id):
        draft.put(item)
        if base is not None:
            bases[item.code] = base
    return prop, draft, bases


def proposal_data(session: Session, proposal_id: int, *, tolerance_m: float = 1.0) -> dict:
    """A proposal with its grids (GeoJSON), problems against the current tiling, and impact."""
    prop, draft, bases = proposal_draft(session, proposal_id)
    stale = _stale(session, bases) if prop.status == "draft" else []
    probs = validate(session, draft, tolerance_m=tolerance_m) if prop.status == "draft" else []
    return {"id": prop.id, "status": prop.status, "author": prop.author, "reason": prop.reason,
            "effective_at": prop.effective_at, "source": prop.source, "created_at": prop.created_at,
            "updated_at": prop.updated_at, "grids": feature_collection(draft, bases),
            "problems": [problem_data(p) for p in probs], "conflicts": stale,
            "impact": _impact_if_measurable(session, draft, probs, prop.effective_at) if prop.status == "draft" else None}


def feature_collection(draft: Draft, bases: Mapping[str, int] | None = None) -> dict:
    """The draft's changed grids as GeoJSON (``status``: created / changed / retired)."""
    feats = []
    for c in draft.changes():
        status = "created" if c.code not in draft.base and c.code not in (bases or {}) else \
            ("retired" if c.geom is None else "changed")
        geom = c.geom if c.geom is not None else (draft.base[c.code].geom if c.code in draft.base else None)
        feats.append({"type": "Feature", "geometry": mapping(geom) if geom is not None else None,
                      "properties": {"code": c.code, "level": c.level, "parent_code": c.parent_code, "name": c.name,
                                     "name_en": c.name_en, "status": status, "predecessor": c.predecessor,
                                     "base_version_id": (bases or {}).get(c.code, draft.base[c.code].id
                                                                          if c.code in draft.base else None)}})
    return {"type": "FeatureCollection", "features": feats}


def draft_proposals(session: Session, *, limit: int = 50) -> list[dict]:
    """The draft proposals, newest first: id, author, reason, source (the file), effective time,
    last change, and how many grids each touches."""
    n = (select(func.count()).select_from(GridProposalItem)
         .where(GridProposalItem.proposal_id == GridProposal.id).scalar_subquery())
    rows = session.execute(select(GridProposal.id, GridProposal.author, GridProposal.reason, GridProposal.source,
                                  GridProposal.effective_at, GridProposal.updated_at, n)
                           .where(GridProposal.status == "draft")
                           .order_by(GridProposal.updated_at.desc(), GridProposal.id.desc()).limit(limit)).all()
    return [{"id": r[0], "author": r[1], "reason": r[2], "source": r[3], "effective_at": r[4], "updated_at": r[5],
             "grids": int(r[6])} for r in rows]


def discard_proposal(session: Session, proposal_id: int) -> None:
    _draft_proposal(session, proposal_id).status = "discarded"


# -- concurrency --------------------------------------------------------------------------------
def _stale(session: Session, bases: Mapping[str, int]) -> list[dict]:
    """The base versions no longer current, with the change set that closed each (None: an import)."""
    if not bases:
        return []
    rows = session.execute(text(
        "SELECT g.id, g.code, g.valid_to, cs.id AS cs, cs.author, cs.applied_at FROM grid g "
        "LEFT JOIN grid_change_item ci ON ci.old_version_id = g.id "
        "LEFT JOIN grid_change_set cs ON cs.id = ci.change_set_id "
        "WHERE g.id = ANY(:ids) FOR UPDATE OF g"), {"ids": list(bases.values())}).all()
    by_id = {r.id: r for r in rows}
    out = []
    for code, vid in sorted(bases.items()):
        r = by_id.get(vid)
        if r is None or r.code != code or r.valid_to is not None:
            out.append({"code": code, "base_version_id": vid, "change_set_id": r.cs if r is not None else None,
                        "author": r.author if r is not None else None,
                        "changed_at": (r.applied_at if r is not None and r.cs else r.valid_to if r is not None else None)})
    return out


def check_base(session: Session, bases: Mapping[str, int], *, draft: Draft | None = None) -> None:
    """Refuse (ConflictError) when a version a proposal was drawn on is no longer current; the rows
    stay locked until the transaction ends. The error names the grids and the change sets."""
    stale = _stale(session, bases)
    if not stale:
        return
    codes = "、".join(s["code"] for s in stale)
    sets = sorted({s["change_set_id"] for s in stale if s["change_set_id"]})
    by = ("（变更集 " + "、".join(f"#{i}" for i in sets) + "）") if sets else "（文件导入）"
    by_en = (" by change set " + ", ".join(f"#{i}" for i in sets)) if sets else " by a file import"
    raise ConflictError("grids_changed", f"网格 {codes} 在本方案起草后已被修改{by}，请基于最新边界重新编辑",
                        f"grids {', '.join(s['code'] for s in stale)} were changed{by_en} since this proposal "
                        "was drawn; edit the current boundaries again", field="base",
                        detail={"grids": stale, "change_sets": sets})


def _lock_streets(session: Session, codes: Iterable[str]) -> None:
    """Applies in one street run one at a time (transaction-level advisory locks, in code order)."""
    for street in sorted({c[:9] for c in codes}):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x6772_0000_0000_0000 ^ int(street)})


# -- apply --------------------------------------------------------------------------------------
def apply_proposal(session: Session, proposal_id: int, author: Author, *, effective_at: dt.datetime | None = None,
                   tolerance_m: float = 1.0, now: dt.datetime | None = None, reverts_id: int | None = None) -> dict:
    """Apply a draft proposal as one change set (see the module docstring). Returns the change set."""
    now = now or store.now()
    if effective_at is not None and effective_at.tzinfo is None:
        raise ValueError("effective_at needs a time zone")
    with session.begin_nested():
        prop = _draft_proposal(session, proposal_id)
        items = proposal_items(session, proposal_id)
        _lock_streets(session, [i.code for i, _ in items])
        reassign_due(session, now=now)
        t = effective_at or prop.effective_at or now
        if t < now - dt.timedelta(minutes=5):
            raise DomainError("effective_in_past", "生效时间不能早于现在（历史由变更集记录，不能改写过去）",
                              "the effective time cannot be in the past (history is never rewritten)",
                              field="effective_at")
        prop, draft, bases = proposal_draft(session, proposal_id)
        check_base(session, bases)
        for code, _vid in bases.items():
            row = draft.base.get(code)
            if row is not None and row.valid_from is not None and row.valid_from >= t:
                raise ConflictError("version_starts_later", f"网格 {code} 的现行版本自 {row.valid_from.isoformat()} "
                                    "起生效，不早于本次生效时间", f"the current version of grid {code} starts at "
                                    f"{row.valid_from.isoformat()}, not before this change", field="effective_at")
        probs = validate(session, draft, tolerance_m=tolerance_m)
        if probs:
            raise DomainError("proposal_invalid", f"方案有 {len(probs)} 个问题，未应用：{problem_data(probs[0])['message_zh']}",
                              f"the proposal has {len(probs)} problem(s) and was not applied: "
                              f"{problem_data(probs[0])['message_en']}", field="grids",
                              detail={"problems": [problem_data(p) for p in probs[:50]]})
        summary = impact(session, draft, at=t, issues=False)
        cs = _write(session, draft, t, author, prop.reason, proposal_id, reverts_id, summary)
        prop.status, prop.updated_at = "applied", now
        moved = reassign_issues(session, cs.id, t) if t <= now else None
        session.flush()
    out = change_set_data(session, cs.id)
    out["issues_moved"] = moved
    return out


def _write(session: Session, draft: Draft, t: dt.datetime, author: Author, reason: str, proposal_id: int | None,
           reverts_id: int | None, summary: dict) -> GridChangeSet:
    changes = draft.changes()
    cs = GridChangeSet(proposal_id=proposal_id, reverts_id=reverts_id, author_id=author.id, author=author.name,
                       reason=reason, effective_at=t, applied_at=store.now(),
                       summary={"created": [c["code"] for c in summary["created"]],
                                "changed": [c["code"] for c in summary["changed"]],
                                "retired": [c["code"] for c in summary["retired"]],
                                "areas": {c["code"]: [c["area_before_m2"], c["area_after_m2"]] for c in summary["changed"]}})
    session.add(cs)
    session.flush()
    closing = [c.code for c in changes if c.code in draft.base]
    if store.close_versions(session, closing, t) != len(closing):  # pragma: no cover - locked above
        raise ConflictError("grids_changed", "网格在应用过程中被修改", "grids changed while applying", field="base")
    alive = [c for c in changes if c.geom is not None]
    note = f"变更集 #{cs.id}：{reason}"[:2000]
    ids = store.insert_versions(session, [store.NewGrid(c.code, c.level, c.parent_code, c.name, c.geom,
                                                        name_en=c.name_en, note=note) for c in alive], t)
    new_id = {c.code: i for c, i in zip(alive, ids)}
    for c in changes:
        kind = "created" if c.code not in draft.base else ("retired" if c.geom is None else "changed")
        session.add(GridChangeItem(change_set_id=cs.id, code=c.code, kind=kind,
                                   old_version_id=draft.base[c.code].id if c.code in draft.base else None,
                                   new_version_id=new_id.get(c.code), predecessor=c.predecessor))
    _pass_assignments(session, changes, t)
    session.flush()
    return cs


def _pass_assignments(session: Session, changes: Sequence[Item], t: dt.datetime) -> None:
    """Officials of a grid given a new code (moved) pass to it; those of a retired grid step down."""
    cur = "a.valid_from < :t AND (a.valid_to IS NULL OR a.valid_to > :t)"
    for c in changes:
        if c.predecessor and c.geom is not None:
            session.execute(text(
                f"INSERT INTO grid_assignment (official_id, grid_code, role, title, rank, valid_from) "
                f"SELECT a.official_id, :new, a.role, a.title, a.rank, :t FROM grid_assignment a "
                f"WHERE a.grid_code = :old AND {cur}"), {"new": c.code, "old": c.predecessor, "t": t})
    gone = [c.code for c in changes if c.geom is None]
    if gone:
        session.execute(text(f"UPDATE grid_assignment a SET valid_to = :t WHERE a.grid_code = ANY(:codes) AND {cur}"),
                        {"codes": gone, "t": t})


# -- re-assignment of open issues ---------------------------------------------------------------
#: the statement timeout of the re-assignment's UPDATE (see reassign_issues)
REASSIGN_TIMEOUT = "60s"


def reassign_issues(session: Session, change_set_id: int, at: dt.datetime) -> int:
    """Re-assign, by location and set-wise, the open issues a change set may move (those in a grid
    it closed, or inside a block it opened), to the blocks current at ``at``: grid, community and
    the six-ones chain; the moves recorded in ``grid_issue_move``. Closed issues keep their grid.
    Runs once per change set (``grid_change_run``). Returns the number of issues moved."""
    items = session.execute(text(
        "SELECT ci.code, ci.kind, ST_AsBinary(g.geom) AS wkb FROM grid_change_item ci "
        "LEFT JOIN grid g ON g.id = ci.new_version_id WHERE ci.change_set_id = :cs"), {"cs": change_set_id}).all()
    blocks = [r for r in items if level_of(r.code) == 3]
    touched = [r.code for r in blocks if r.kind != "created"]
    area = _area_wkb(shapely.from_wkb(bytes(r.wkb)) for r in blocks if r.wkb is not None)
    tmp = f"grid_moves_{change_set_id}"
    session.execute(text("SET LOCAL jit = off"))
    for sql in _reassign_placement_sql(tmp):
        session.execute(text(sql), {"touched": touched, "area": area, "t": at, "open": sorted(OPEN_STATUSES)})
    session.execute(text(f"ANALYZE {tmp}"))
    targets = [r[0] for r in session.execute(text(f"SELECT DISTINCT new_code FROM {tmp} WHERE new_code IS NOT NULL"))]
    chains = []
    for code in targets:
        ch = six_ones_chain(session, code, as_of=at, include_grids=False)
        chains.append((code, ch.leader_in_charge.official_id if ch.leader_in_charge else None,
                       ch.responsible.official_id if ch.responsible else None,
                       ch.grid_leader.official_id if ch.grid_leader else None))
    n = 0
    if chains:
        # a change set moving a great many open issues is one UPDATE that maintains every index of
        # ``issue`` for each row (≈ 3–3.5 s per 10⁵ rows on 2 cores; the chain checked per statement,
        # migration 0025): it gets a longer statement
        # timeout than a web request's, still bounded, and the request's is put back after it
        before = session.execute(text("SELECT current_setting('statement_timeout')")).scalar_one()
        session.execute(text("SELECT set_config('statement_timeout', :v, true)"), {"v": REASSIGN_TIMEOUT})
        res = session.execute(text(f"""
            UPDATE issue i SET grid_code = m.new_code, community_code = g.parent_code,
                   leader_in_charge_id = c.leader, responsible_id = c.resp, grid_leader_id = c.gl,
                   version = i.version + 1, updated_at = :now
            FROM {tmp} m
            JOIN unnest(CAST(:codes AS text[]), CAST(:leaders AS int[]), CAST(:resps AS int[]), CAST(:gls AS int[]))
                 AS c(code, leader, resp, gl) ON c.code = m.new_code
            JOIN grid g ON g.code = m.new_code AND g.level = 3 AND {_CUR}
            WHERE i.id = m.id"""),
            {"codes": [c[0] for c in chains], "leaders": [c[1] for c in chains], "resps": [c[2] for c in chains],
             "gls": [c[3] for c in chains], "t": at, "now": store.now()})
        n = int(res.rowcount or 0)
        session.execute(text("SELECT set_config('statement_timeout', :v, true)"), {"v": before})
        session.execute(text(f"INSERT INTO grid_issue_move (change_set_id, old_grid_code, new_grid_code, issue_ids) "
                             f"SELECT :cs, old_code, new_code, array_agg(id ORDER BY id) FROM {tmp} "
                             f"WHERE new_code IS NOT NULL GROUP BY old_code, new_code"), {"cs": change_set_id})
    session.execute(text(f"DROP TABLE {tmp}, {tmp}_issues"))
    session.execute(text("INSERT INTO grid_change_run (change_set_id, ran_at, issues_moved) VALUES (:cs, :at, :n)"),
                    {"cs": change_set_id, "at": store.now(), "n": n})
    return n


def _reassign_placement_sql(tmp: str) -> list[str]:
    """The statements writing ``tmp`` (temporary, dropped at commit; ``id, old_code, new_code``):
    the open issues a change set may move (in a touched grid, or inside a new block) whose block
    the placement rule changes — the rule of :func:`_moves_sql` among the stored current blocks.

    Block-driven rather than per issue: the candidate issues are copied once, through row-level
    security, into ``{tmp}_issues`` with a GiST index on their location (a temporary table has no
    row security, so the index may drive ``ST_Covers``: the issues' own location index cannot under
    row-level security, ST_Covers is not leakproof). Then one join, each block's index scan over
    the issues it covers (the block's geometry the same for consecutive tests: PostGIS prepares it
    once per block), gives the lowest covering code per issue; the fallbacks (old block if still
    current, else the nearest) run only for issues no block covers, once each (OFFSET 0 keeps the
    placement computed once per row, not inlined into both the output and the filter). On 10⁵
    issues (bench/bench_grids.py) ≈0.3 s instead of ≈0.75–1.9 s for the per-issue probe of the
    grids' index (≈7 µs an issue, run in the leader, not in parallel workers)."""
    blocks = _stored_blocks()
    return [
        f"CREATE TEMP TABLE {tmp}_issues ON COMMIT DROP AS "
        f"SELECT i.id, i.grid_code, i.location FROM issue i "
        f"WHERE (i.grid_code = ANY(:touched) OR ST_Intersects(i.location, ST_GeomFromWKB(:area, {SRID}))) "
        f"AND i.status = ANY(:open)",
        f"CREATE INDEX ON {tmp}_issues USING gist (location)",
        f"""CREATE TEMP TABLE {tmp} ON COMMIT DROP AS
            SELECT id, old_code, new_code FROM (
                SELECT c.id, c.grid_code AS old_code, coalesce(v.code,
                    (SELECT b.code FROM ({blocks}) b WHERE b.code = c.grid_code),
                    (SELECT b.code FROM ({blocks}) b ORDER BY b.geom <-> c.location, b.code LIMIT 1)) AS new_code
                FROM {tmp}_issues c
                LEFT JOIN (SELECT x.id, min(b.code) AS code FROM ({blocks}) b
                           JOIN {tmp}_issues x ON ST_Covers(b.geom, x.location) GROUP BY x.id) v ON v.id = c.id
                OFFSET 0) p
            WHERE new_code IS DISTINCT FROM old_code"""]


def reassign_due(session: Session, *, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """Re-assign the open issues of every change set whose effective time has come and whose issues
    were not re-assigned yet (applied for a later date), oldest first. Returns (change set, moved)."""
    now = now or store.now()
    due = session.execute(text(
        "SELECT cs.id, cs.effective_at FROM grid_change_set cs WHERE cs.effective_at <= :now AND NOT EXISTS "
        "(SELECT 1 FROM grid_change_run r WHERE r.change_set_id = cs.id) ORDER BY cs.effective_at, cs.id"),
        {"now": now}).all()
    return [(r.id, reassign_issues(session, r.id, r.effective_at)) for r in due]


# -- history ------------------------------------------------------------------------------------
def change_set_data(session: Session, change_set_id: int) -> dict:
    cs = session.get(GridChangeSet, change_set_id)
    if cs is None:
        raise not_found("变更集", "change set", change_set_id)
    items = session.execute(select(GridChangeItem).where(GridChangeItem.change_set_id == change_set_id)
                            .order_by(GridChangeItem.code)).scalars().all()
    run = session.execute(text("SELECT ran_at, issues_moved FROM grid_change_run WHERE change_set_id = :c"),
                          {"c": change_set_id}).one_or_none()
    reverted_by = session.scalar(select(GridChangeSet.id).where(GridChangeSet.reverts_id == change_set_id))
    return {"id": cs.id, "proposal_id": cs.proposal_id, "reverts_id": cs.reverts_id, "reverted_by": reverted_by,
            "author": cs.author, "reason": cs.reason, "effective_at": cs.effective_at, "applied_at": cs.applied_at,
            "issues_reassigned_at": run.ran_at if run else None, "issues_moved": run.issues_moved if run else None,
            "items": [{"code": i.code, "kind": i.kind, "old_version_id": i.old_version_id,
                       "new_version_id": i.new_version_id, "predecessor": i.predecessor} for i in items],
            "summary": cs.summary}


def change_sets(session: Session, code: str | None = None, *, limit: int = 100) -> list[dict]:
    """Change sets, newest first; with ``code``: those touching that grid (or taking over its officials)."""
    q = select(GridChangeSet.id).order_by(GridChangeSet.effective_at.desc(), GridChangeSet.id.desc()).limit(limit)
    if code is not None:
        q = q.where(GridChangeSet.id.in_(select(GridChangeItem.change_set_id).where(
            (GridChangeItem.code == code) | (GridChangeItem.predecessor == code))))
    return [change_set_data(session, i) for i in session.scalars(q)]


def grids_geojson(session: Session, level: int | None = None, *, as_of: dt.datetime | None = None) -> dict:
    """The grid versions valid at ``as_of`` (default now) as a GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(r.geom),
         "properties": {"code": r.code, "level": r.level, "parent_code": r.parent_code, "name": r.name,
                        "name_en": r.name_en, "area_m2": round(r.area_m2, 1), "version_id": r.id,
                        "valid_from": r.valid_from.isoformat() if r.valid_from else None,
                        "valid_to": r.valid_to.isoformat() if r.valid_to else None}}
        for r in store.current_grids(session, level, as_of=as_of)]}


def diff(session: Session, t1: dt.datetime, t2: dt.datetime, *, level: int | None = None) -> list[dict]:
    """Per grid, what changed between the tilings valid at ``t1`` and ``t2``: areas before and after,
    area gained and lost (m²) and the shapes gained and lost (GeoJSON). Unchanged grids are left out."""
    a = {g.code: g for g in store.current_grids(session, level, as_of=t1)}
    b = {g.code: g for g in store.current_grids(session, level, as_of=t2)}
    out = []
    for code in sorted(set(a) | set(b)):
        ga, gb = a.get(code), b.get(code)
        if ga is not None and gb is not None and ga.id == gb.id:
            continue
        before, after = (ga.geom if ga else None), (gb.geom if gb else None)
        gained = shapely.difference(after, before) if after is not None and before is not None else after
        lost = shapely.difference(before, after) if after is not None and before is not None else before
        row = _area_change(code, (gb or ga).name, (gb or ga).level, before, after)
        if ga is not None and gb is not None and not row["gained_m2"] and not row["lost_m2"] and ga.name == gb.name:
            continue
        row |= {"status": "created" if ga is None else "retired" if gb is None else "changed",
                "gained": mapping(gained) if gained is not None and not gained.is_empty else None,
                "lost": mapping(lost) if lost is not None and not lost.is_empty else None}
        out.append(row)
    return out


def revert(session: Session, change_set_id: int, author: Author, *, reason: str | None = None,
           effective_at: dt.datetime | None = None, now: dt.datetime | None = None) -> dict:
    """Undo a change set as a new one: the versions it closed come back (a retired code with its
    own boundary), the grids it created are retired. Refused (ConflictError) when a later change set
    has changed its grids since (revert that one first)."""
    cs = session.get(GridChangeSet, change_set_id)
    if cs is None:
        raise not_found("变更集", "change set", change_set_id)
    items = session.execute(select(GridChangeItem).where(GridChangeItem.change_set_id == change_set_id)).scalars().all()
    check_base(session, {i.code: i.new_version_id for i in items if i.new_version_id is not None})
    draft = load_draft(session)
    successor = {i.predecessor: i.code for i in items if i.predecessor}
    old = {g.id: g for g in store.versions(session, [i.old_version_id for i in items if i.old_version_id])}
    for i in items:
        if i.kind == "created":
            draft.retire(i.code)
    for i in items:
        if i.old_version_id is not None:
            g = old[i.old_version_id]
            draft.put(Item(g.code, g.level, g.parent_code, g.name, g.geom, g.name_en,
                           predecessor=successor.get(g.code)))
    why = reason or f"撤销变更集 #{cs.id}（{cs.reason}）/ revert of change set #{cs.id}"
    pid = save_proposal(session, draft, author, why, effective_at=effective_at, source=f"revert:{cs.id}")
    return apply_proposal(session, pid, author, effective_at=effective_at, now=now, reverts_id=cs.id)


