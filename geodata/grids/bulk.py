"""Set-wise bulk assignment of stored points to block grids, through a stored raster cell index.

Same rule as the single-point lookup (:func:`geodata.grids.assignment.locate_block`): a point belongs to
the current level-3 grids that *cover* it; on shared edges and vertices the lowest code wins;
outside every block the answer is NULL.

**The cell index** (:func:`build_cell_index`) is a raster over the blocks' extent, kept in the
table ``block_cell_index`` like any other index: built once for a given set of current blocks
(identified by :func:`grid_fingerprint`, a hash of their ids, codes and geometries) and looked up
afterwards, so a boundary change simply makes the next bulk assignment build a new one. The blocks
are numbered 1…n in ascending code order; each raster cell (an ``int2``) holds 0 (no block), the
block's number when the cell lies properly inside one block, or — an "edge" cell — minus the number
of its list of candidate blocks (``combos``, ascending code order). It is built coarse-to-fine:
cells of ``cell_deg`` are classified in PostGIS; only the edge ones are split into ``fine × fine``
sub-cells and classified again, so the stored raster has cells of ``cell_deg / fine`` (≈ 5 m by
default) while only the boundaries are ever refined. Cells are grown by :data:`CELL_EPS` (coarse:
twice) for every test, so floating-point rounding of a point's cell can never change the answer.

**Assigning** (:func:`assign_points_setwise`) is then ONE statement: the point's raster cell is
computed arithmetically (``round(lon / d)``, ``round(lat / d)``: cells are centred on multiples of
``d``, and the raster's subscript bounds are the cells' own numbers); inside cells give the block
with no geometry at all; points in edge cells are tested with ``ST_Covers`` against the cell's
candidates in ascending code order (first hit wins). The raster, codes and geometries are read from
the index row once per statement (uncorrelated scalar sub-selects, which PostgreSQL evaluates once
as init-plans and hands to its parallel workers; ``array_cat(x, '{}')`` makes each a detoasted copy
— subscripting the stored, toasted value directly would detoast it for every point); nothing is
shipped from the client. ``method="gist"`` is the textbook spatial join (one GiST probe per point), kept
as the reference and as the fallback when the raster would be too large.
"""
from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.grids.assignment import _CURRENT

UTC = dt.UTC

#: Side of a coarse classification cell, degrees (≈ 20 m at 35°N).
CELL_DEG = 0.0002
#: Edge cells are split into FINE × FINE sub-cells (stored raster cells ≈ 5 m): a quarter of the
#: points that need a geometry test, for a raster of a few hundred thousand cells.
FINE = 4
#: Safety margin (degrees, ≈ 0.1 mm) around every cell (twice that around coarse cells).
CELL_EPS = 1e-9
#: Largest stored raster (cells of 2 bytes; the statement holds about ten detoasted copies of it, one per
#: place it is subscripted): beyond it ``fine`` is lowered, and at fine = 1 the GiST join is used.
MAX_RASTER_CELLS = 4_000_000
#: Index rows kept (older ones are deleted when a new one is stored).
KEEP_INDEXES = 6

_BLOCKS = f"SELECT row_number() OVER (ORDER BY g.code)::int AS b, g.geom FROM grid g WHERE g.level = 3 AND {_CURRENT}"


def _current_blocks(session: Session, t: dt.datetime) -> tuple[str, list[str]]:
    """(fingerprint, codes in ascending order) of the block grids current at ``t``, in one read."""
    fp, codes = session.execute(text(
        f"SELECT md5(coalesce(string_agg(g.id || ':' || g.code || ':' || md5(ST_AsEWKB(g.geom)), ',' "
        f"ORDER BY g.code), '')), coalesce(array_agg(g.code ORDER BY g.code), '{{}}') "
        f"FROM grid g WHERE g.level = 3 AND {_CURRENT}"), {"t": t}).one()
    return fp, list(codes)


def grid_fingerprint(session: Session, *, as_of: dt.datetime | None = None) -> str:
    """A hash of the current (as of ``as_of``) block grids: ids, codes and geometries."""
    return _current_blocks(session, as_of or dt.datetime.now(UTC))[0]


_META = ("id, fingerprint, coarse_deg, fine, cell_deg, numeric_codes, i0, j0, ni, nj, max_candidates, "
         "combos_n, usable, cells, edge_cells, build_ms, codes")


def _meta(row, built: bool) -> dict:
    m = dict(row._mapping)
    m["codes"] = list(m["codes"])
    return m | {"built": built}


def build_cell_index(session: Session, *, cell_deg: float = CELL_DEG, fine: int = FINE,
                     as_of: dt.datetime | None = None, numeric_codes: bool | None = None,
                     force: bool = False) -> dict:
    """The stored cell index of the current blocks for these parameters: looked up, or built and
    stored (in the caller's transaction) when missing or ``force``. Returns its description
    (``fingerprint``, ``cell_deg`` of the stored raster, ``cells``/``edge_cells`` at that size,
    ``max_candidates``, ``usable``, ``numeric_codes``, ``codes``, ``built``, ``build_ms`` …), not
    the raster itself. ``numeric_codes=False`` looks codes up as text even when they are integers."""
    t = as_of or dt.datetime.now(UTC)
    fp, codes = _current_blocks(session, t)
    numeric = all(c.isdigit() and len(c) <= 18 and str(int(c)) == c for c in codes)
    numeric = numeric if numeric_codes is None else numeric and numeric_codes
    key = {"fp": fp, "cd": float(cell_deg), "f": int(fine), "nc": numeric}
    # FOR KEY SHARE: the row stays until the caller's transaction ends (pruning skips it, see below),
    # so an assignment can never read an index that vanished under it
    find = text(f"SELECT {_META} FROM block_cell_index WHERE fingerprint = :fp AND coarse_deg = :cd "
                f"AND fine = :f AND numeric_codes = :nc FOR KEY SHARE")
    if not force and (row := session.execute(find, key).one_or_none()) is not None:
        return _meta(row, built=False)
    started = time.perf_counter()
    desc = _build(session, t, len(codes), float(cell_deg), int(fine))
    build_ms = int((time.perf_counter() - started) * 1000)
    session.execute(text("DELETE FROM block_cell_index WHERE fingerprint = :fp AND coarse_deg = :cd "
                         "AND fine = :f AND numeric_codes = :nc"), key)
    # the raster keeps the cells' own numbers as its subscript bounds: [i0:i0+ni-1][j0:j0+nj-1]
    session.execute(text(f"""
        INSERT INTO block_cell_index (fingerprint, coarse_deg, fine, cell_deg, numeric_codes, i0, j0, ni, nj,
            max_candidates, combos_n, usable, cells, edge_cells, build_ms, codes, codes_int, geoms, combos, raster)
        VALUES (:fp, :cd, :f, :d, :nc, :i0, :j0, :ni, :nj, :mc, :combos_n, :usable, :cells, :edge, :ms,
            CAST(:codes AS varchar(14)[]), CAST(:codes_int AS int8[]),
            (SELECT coalesce(array_agg(g.geom ORDER BY g.code), '{{}}') FROM grid g WHERE g.level = 3 AND {_CURRENT}),
            CAST(:combos AS int2[]),
            CAST('[' || :i0 || ':' || (:i0 + :ni - 1) || '][' || :j0 || ':' || (:j0 + :nj - 1) || ']='
                 || CAST(CAST(:raster AS int2[]) AS text) AS int2[]))
        ON CONFLICT ON CONSTRAINT block_cell_index_key DO NOTHING"""),
        key | {"d": desc["cell_deg"], "i0": desc["i0"], "j0": desc["j0"], "ni": desc["ni"], "nj": desc["nj"],
               "mc": desc["max_candidates"], "combos_n": len(desc["combos"]), "usable": desc["usable"],
               "cells": desc["cells"], "edge": desc["edge_cells"], "ms": build_ms, "codes": codes,
               "codes_int": [int(c) for c in codes] if numeric else [], "combos": desc["combos"] or [[0]],
               "raster": desc["raster"], "t": t})
    # keep the latest few; rows another transaction is using are skipped (pruned by a later build)
    session.execute(text("DELETE FROM block_cell_index WHERE id IN (SELECT id FROM block_cell_index WHERE id NOT IN "
                         "(SELECT id FROM block_cell_index ORDER BY built_at DESC, id DESC LIMIT :k) "
                         "FOR UPDATE SKIP LOCKED)"), {"k": KEEP_INDEXES})
    return _meta(session.execute(find, key).one(), built=True)


#: Largest block number / candidate-list number an int2 raster holds.
_INT2_MAX = 32767


def _build(session: Session, t: dt.datetime, n_blocks: int, d: float, fine: int) -> dict:
    """Classify coarse cells, refine the edge ones, and assemble the raster (numpy → nested list).

    Raster cell (i, j) of side ``df = d / fine`` is centred on (i·df, j·df), so a point's cell is
    ``round(lon / df)`` — one cast; coarse cell (I, J) is fine cells I·fine … I·fine + fine − 1."""
    eps = CELL_EPS
    session.execute(text("SET LOCAL jit = off"))  # JIT compilation would cost more than these queries
    # 0. the raster's size from the blocks' extent: lower ``fine`` until it fits; too large even at 1 → unusable
    ext = session.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                               f"(SELECT ST_Extent(b.geom)::geometry AS e FROM ({_BLOCKS}) b) s"), {"t": t}).one()
    coarse_n = 0 if ext[0] is None else (math.ceil((ext[2] - ext[0]) / d) + 2) * (math.ceil((ext[3] - ext[1]) / d) + 2)
    while fine > 1 and coarse_n * fine * fine > MAX_RASTER_CELLS:
        fine //= 2
    df = d / fine
    # 1. coarse cells touching each block (grown by 2·eps): candidates, and "properly inside one block"
    if coarse_n * fine * fine > MAX_RASTER_CELLS:
        return {"cell_deg": df, "i0": 0, "j0": 0, "ni": 1, "nj": 1, "max_candidates": 0, "combos": [],
                "usable": False, "cells": 0, "edge_cells": 0, "raster": [[0]]}
    coarse = session.execute(text(f"""
        WITH b AS ({_BLOCKS})
        SELECT i, j, array_agg(b ORDER BY b) AS bs, count(*) = 1 AND bool_and(inside) AS inside
        FROM (SELECT b.b, i, j, ST_ContainsProperly(b.geom, e.env) AS inside
              FROM b, generate_series(floor((ST_XMin(b.geom) / :df + 0.5) / :f)::int,
                                      floor((ST_XMax(b.geom) / :df + 0.5) / :f)::int) i,
                   generate_series(floor((ST_YMin(b.geom) / :df + 0.5) / :f)::int,
                                   floor((ST_YMax(b.geom) / :df + 0.5) / :f)::int) j,
                   LATERAL (SELECT ST_MakeEnvelope((i * :f - 0.5) * :df - :e2, (j * :f - 0.5) * :df - :e2,
                                                   (i * :f + :f - 0.5) * :df + :e2, (j * :f + :f - 0.5) * :df + :e2,
                                                   4326) AS env) e
              WHERE ST_Intersects(b.geom, e.env)) s
        GROUP BY i, j"""), {"df": df, "f": fine, "e2": 2 * eps, "t": t}).all()
    empty = {"cell_deg": df, "i0": 0, "j0": 0, "ni": 1, "nj": 1, "max_candidates": 0, "combos": [],
             "usable": n_blocks <= _INT2_MAX, "cells": 0, "edge_cells": 0, "raster": [[0]]}
    if not coarse:
        return empty
    ci0, ci1 = min(c[0] for c in coarse), max(c[0] for c in coarse)
    cj0, cj1 = min(c[1] for c in coarse), max(c[1] for c in coarse)
    if (ci1 - ci0 + 1) * (cj1 - cj0 + 1) * fine * fine > MAX_RASTER_CELLS or n_blocks > _INT2_MAX:
        return empty | {"usable": False}
    # 2. the edge cells' fine sub-cells (grown by eps), tested against the coarse cell's candidates only
    edge = [(i, j, bs) for i, j, bs, inside in coarse if not inside]
    fine_rows = session.execute(text(f"""
        WITH b AS ({_BLOCKS}),
             c AS (SELECT * FROM unnest(CAST(:ci AS int[]), CAST(:cj AS int[]), CAST(:cb AS int[])) AS c(i, j, b))
        SELECT fi, fj, array_agg(b ORDER BY b) AS bs, count(*) = 1 AND bool_and(inside) AS inside
        FROM (SELECT b.b, k.fi, k.fj, ST_ContainsProperly(b.geom, e.env) AS inside
              FROM c JOIN b ON b.b = c.b,
                   generate_series(0, :f - 1) a, generate_series(0, :f - 1) a2,
                   LATERAL (SELECT c.i * :f + a AS fi, c.j * :f + a2 AS fj) k,
                   LATERAL (SELECT ST_MakeEnvelope((k.fi - 0.5) * :df - :eps, (k.fj - 0.5) * :df - :eps,
                                                   (k.fi + 0.5) * :df + :eps, (k.fj + 0.5) * :df + :eps, 4326) AS env) e
              WHERE ST_Intersects(b.geom, e.env)) s
        GROUP BY fi, fj"""),
        {"ci": [i for i, _, bs in edge for _ in bs], "cj": [j for _, j, bs in edge for _ in bs],
         "cb": [b for _, _, bs in edge for b in bs], "f": fine, "df": df, "eps": eps, "t": t}).all()
    # 3. the raster: inside coarse cells fill their fine × fine square; then the refined edge cells, whose
    #    value is minus the number of their candidate list (ascending code order) in ``combos``
    fi0, fj0 = ci0 * fine, cj0 * fine
    ni, nj = (ci1 - ci0 + 1) * fine, (cj1 - cj0 + 1) * fine
    raster = np.zeros((ni, nj), dtype=np.int16)
    cells = 0
    for i, j, bs, inside in coarse:
        if inside:
            x, y = i * fine - fi0, j * fine - fj0
            raster[x:x + fine, y:y + fine] = bs[0]
            cells += fine * fine
    combos: dict[tuple[int, ...], int] = {}
    edge_cells = 0
    for fi, fj, bs, inside in fine_rows:
        cells += 1
        if inside:
            raster[fi - fi0, fj - fj0] = bs[0]
        else:
            edge_cells += 1
            raster[fi - fi0, fj - fj0] = -combos.setdefault(tuple(bs), len(combos) + 1)
    m = max((len(c) for c in combos), default=0)
    return {"cell_deg": df, "i0": fi0, "j0": fj0, "ni": ni, "nj": nj, "max_candidates": m,
            "combos": [list(c) + [0] * (m - len(c)) for c in combos], "usable": len(combos) <= _INT2_MAX,
            "cells": cells, "edge_cells": edge_cells, "raster": raster.tolist()}


def assign_points_setwise(session: Session, points: str, result: str, *, method: str = "cells",
                          cell_deg: float = CELL_DEG, fine: int = FINE, index: dict | None = None,
                          as_of: dt.datetime | None = None, create: bool = False,
                          parallel: bool = True, points_chunked: bool = False) -> int:
    """Assign every row of ``points`` (``id bigint, lon float8, lat float8``: finite WGS84) to its
    block grid in ONE statement, writing ``(point_id, grid_code)`` rows into ``result`` (one per
    point; ``grid_code`` NULL when outside every grid). Returns the number of rows written.

    ``create=False``: ``INSERT … SELECT`` into ``result``, created by the caller. ``create=True``:
    ``CREATE UNLOGGED TABLE result AS SELECT …`` (the table must not exist), which PostgreSQL can run
    with parallel workers computing the assignment (``parallel``: allow 2 workers for this
    transaction); the leader writes.

    ``method="cells"`` (default): through the stored cell index (:func:`build_cell_index`, looked up
    — or built — here for ``cell_deg``/``fine``, or for the parameters of ``index``).
    ``method="gist"``: for each point, the covering blocks found through the GiST index of ``grid``.

    ``points_chunked=True``: ``points`` holds the points as chunks of parallel arrays, one row per
    chunk ``(ids int8[], lon float8[], lat float8[])`` (same lengths), read by subscript per element."""
    t = as_of or dt.datetime.now(UTC)
    params: dict = {"t": t}
    pt = "ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)"
    session.execute(text("SET LOCAL jit = off"))  # compiling this one-off query costs more than it saves
    if parallel:
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 2"))
        session.execute(text("SET LOCAL parallel_setup_cost = 10"))
        session.execute(text("SET LOCAL parallel_tuple_cost = 0.001"))
    if method == "cells":
        # always looked up here (cheap): locks the row for this transaction, and an ``index`` described
        # earlier — maybe for blocks that have changed since — only lends its parameters
        index = build_cell_index(session, cell_deg=index["coarse_deg"] if index else cell_deg,
                                 fine=index["fine"] if index else fine, as_of=t,
                                 numeric_codes=index["numeric_codes"] if index else None)
        if not index["usable"]:
            method = "gist"
    if method == "gist":
        expr = f"(SELECT min(g.code) FROM grid g WHERE g.level = 3 AND {_CURRENT} AND ST_Covers(g.geom, {pt}))"
    elif method == "cells":
        expr = _cells_expr(index, pt)
        params["ix"] = index["id"]
    else:
        raise ValueError(f"unknown method {method!r}")
    if points_chunked:  # subscripts in FROM (an SRF in the select list would keep the CASE out of the
        # parallel workers; measured: subscripting the arrays is ~1.6× faster than unnest(ids, lon, lat))
        source = (f"(SELECT c.ids[k] AS id, c.lon[k] AS lon, c.lat[k] AS lat FROM {points} c "
                  f"CROSS JOIN LATERAL generate_subscripts(c.ids, 1) AS k) p")
    else:
        source = f"{points} p"
    select = f"SELECT p.id AS point_id, CAST({expr} AS varchar(14)) AS grid_code FROM {source}"
    if create:
        res = session.execute(text(f"CREATE UNLOGGED TABLE {result} AS {select}"), params)
    else:
        res = session.execute(text(f"INSERT INTO {result} (point_id, grid_code) {select}"), params)
    return int(res.rowcount)


def _cells_expr(index: dict, pt: str) -> str:
    """The per-point expression over the stored raster (see the module docstring)."""
    d = float(index["cell_deg"])

    def part(col: str) -> str:  # the whole array, detoasted once per statement (init-plan); array_cat
        # with an empty array returns its (detoasted) first argument, keeping its subscript bounds
        return f"(SELECT array_cat(x.{col}, '{{}}') FROM block_cell_index x WHERE x.id = :ix)"

    raster, codes, codes_int, geoms, combos = (part(c) for c in ("raster", "codes", "codes_int", "geoms", "combos"))
    # the raster's subscripts are the cells' own numbers, round(lon / d) and round(lat / d) (the cast
    # to int rounds); beyond the raster the subscript yields NULL
    v = f"{raster}[(p.lon / {d!r})::int][(p.lat / {d!r})::int]"
    # inside one block: v = its number, looked up once — the common case. Edge cells (v < 0), no block
    # (0) and outside (NULL) all subscript to NULL here
    inside = f"({codes_int}[{v}])::text" if index["numeric_codes"] else f"{codes}[{v}]"
    # candidate lists are padded with 0 and G[0] is NULL, so ST_Covers (strict) is NULL there
    whens = " ".join(f"WHEN ST_Covers({geoms}[{combos}[-{v}][{k}]], {pt}) THEN {codes}[{combos}[-{v}][{k}]]"
                     for k in range(1, index["max_candidates"] + 1))
    edge = f"CASE WHEN {v} < 0 THEN CASE {whens} END END" if whens else "NULL"
    return f"COALESCE({inside}, {edge})"
