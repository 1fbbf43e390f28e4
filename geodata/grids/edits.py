"""Pure edits of the grid tiling (no database): a planner's :class:`Draft` and the operations on it.

A draft starts from the current grids it was drawn on (``base``: rows with their version ids) and
records each grid's new state (:class:`Item`; ``geom`` None = retired). Operations edit the tiling
as one coverage, never one polygon alone:

- :func:`replace` — new boundaries for several grids at once (a shared boundary moved: both
  neighbours in one call);
- :func:`split` — cut a grid by a line: the largest piece keeps the code, the others get new ones;
- :func:`merge` — adjacent grids of one parent become one (the lowest code, or ``keep``, survives);
- :func:`move` — a grid goes to another parent: a new code under it (the old one is retired and its
  officials pass to the new one), the old and new parents (and theirs, up to the common ancestor)
  lose and gain its area;
- :func:`subdivide` — a grid's children replaced by new ones cut from it by lines (or given pieces).

New codes come from :func:`geodata.grids.rules.generate_codes` (numbered north→south, west→east)
and avoid every code ever used (``used``). :func:`problems` checks a draft with the file import's
rules (:func:`geodata.grids.rules.validate_grids`), level by level, against the draft's own view of
parents, siblings and children.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import Any

import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as _split

from geodata.errors import DomainError
from geodata.geometry import as_multipolygon
from geodata.grids import rules
from geodata.grids.rules import LEVEL_EN, LEVEL_ZH, Problem


@dataclass(frozen=True)
class Item:
    """A grid's state in a draft (``geom`` None: retired)."""

    code: str
    level: int
    parent_code: str | None
    name: str
    geom: BaseGeometry | None
    name_en: str | None = None
    predecessor: str | None = None            # the code whose officials this one takes over
    feature: int | None = field(default=None, compare=False)  # its number in a source file

    @classmethod
    def of(cls, row: Any) -> Item:
        return cls(row.code, row.level, row.parent_code, row.name, row.geom, getattr(row, "name_en", None))


def _label(g: Any) -> tuple[str, str]:
    return f"「{g.name}」({g.code})", f"\"{g.name}\" ({g.code})"


class Draft:
    """The tiling as a planner has edited it: ``base`` (current rows, with ``id``) + ``items``."""

    def __init__(self, base: Iterable[Any], used: Iterable[str] = ()):
        self.base: dict[str, Any] = {g.code: g for g in base}
        self.items: dict[str, Item] = {}
        self.used: set[str] = set(used) | set(self.base)

    # -- reading the edited tiling
    def get(self, code: str) -> Item | None:
        """The grid's state after the edits (None: unknown or retired)."""
        if code in self.items:
            it = self.items[code]
            return it if it.geom is not None else None
        row = self.base.get(code)
        return Item.of(row) if row is not None else None

    def need(self, code: str) -> Item:
        g = self.get(code)
        if g is None:
            raise DomainError("unknown_grid", f"网格 {code} 不在当前网格中（或已在本方案中撤销）",
                              f"grid {code} is not a current grid (or is retired in this draft)", field="code")
        return g

    def grids(self, level: int | None = None) -> list[Item]:
        codes = sorted(set(self.base) | set(self.items))
        out = [g for c in codes if (g := self.get(c)) is not None]
        return [g for g in out if level is None or g.level == level]

    def children(self, code: str) -> list[Item]:
        return [g for g in self.grids() if g.parent_code == code]

    def put(self, item: Item) -> None:
        self.items[item.code] = item
        self.used.add(item.code)

    def retire(self, code: str) -> None:
        g = self.need(code)
        self.items[code] = _replace(g, geom=None)

    def changes(self) -> list[Item]:
        """The items that differ from the base (in code order): created, changed and retired grids."""
        out = []
        for code in sorted(self.items):
            it, row = self.items[code], self.base.get(code)
            if row is None and it.geom is None:
                continue  # created and retired again in the same draft
            if row is not None and it.geom is not None and _same(Item.of(row), it):
                continue
            out.append(it)
        return out

    def base_versions(self) -> dict[str, int]:
        """The version id each changed grid was drawn on (what apply checks is still current)."""
        return {it.code: self.base[it.code].id for it in self.changes() if it.code in self.base}


def _same(a: Item, b: Item) -> bool:
    return (a.name == b.name and a.parent_code == b.parent_code and (a.name_en or None) == (b.name_en or None)
            and a.geom is not None and b.geom is not None and bool(shapely.equals_exact(a.geom, b.geom, 0.0)))


# -- codes --------------------------------------------------------------------------------------
def new_codes(draft: Draft, level: int, parent_code: str | None, geoms: Sequence[BaseGeometry],
              county_code: str | None = None) -> list[str]:
    """Codes for new grids under ``parent_code`` (north→south, west→east), never one used before."""
    frame = pd.DataFrame({"feature": range(1, len(geoms) + 1), "code": [None] * len(geoms),
                          "name": [None] * len(geoms), "parent_code": [parent_code] * len(geoms),
                          "geometry": list(geoms)})
    county = county_code or (parent_code or "")[:6]
    got, probs = rules.generate_codes(frame, level, county_code=county, taken=draft.used | set(draft.items))
    if probs or len(got) != len(geoms):
        p = probs[0] if probs else None
        raise DomainError("code_generation", p.zh if p else "无法生成编码", p.en if p else "cannot generate a code",
                          field="code")
    codes = [got[i] for i in range(len(geoms))]
    draft.used.update(codes)
    return codes


def _polygons(geom: BaseGeometry) -> list[BaseGeometry]:
    return [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]


# -- operations ---------------------------------------------------------------------------------
def replace(draft: Draft, geoms: Mapping[str, BaseGeometry], *, names: Mapping[str, str] | None = None) -> None:
    """New boundaries (and names) for several grids at once."""
    for code, geom in geoms.items():
        g = draft.need(code)
        draft.put(_replace(g, geom=geom, name=(names or {}).get(code, g.name)))


def rename(draft: Draft, code: str, name: str, name_en: str | None = None) -> None:
    g = draft.need(code)
    draft.put(_replace(g, name=name, name_en=name_en if name_en is not None else g.name_en))


def _recode(draft: Draft, g: Item, new_parent: str, code: str | None = None) -> str:
    """``g`` (and its children, recursively) under ``new_parent`` with new codes; the old ones retired."""
    code = code or new_codes(draft, g.level, new_parent, [g.geom])[0]
    kids = draft.children(g.code)
    draft.retire(g.code)
    draft.put(Item(code, g.level, new_parent, g.name, g.geom, g.name_en, predecessor=g.code))
    if kids:
        codes = new_codes(draft, g.level + 1, code, [k.geom for k in kids])
        for k, c in zip(kids, codes):
            _recode(draft, k, code, c)
    return code


def split(draft: Draft, code: str, line: BaseGeometry, *, names: Sequence[str] | None = None) -> list[str]:
    """Cut grid ``code`` by ``line``. The largest piece keeps the code; the others get new codes
    under the same parent. Children go to the piece they overlap most (recoded when it is a new one).
    Returns the codes, the kept one first."""
    g = draft.need(code)
    if line is None or line.geom_type not in ("LineString", "MultiLineString"):
        raise DomainError("invalid_line", "分割线须为线（LineString）", "the cutting line must be a LineString",
                          field="line")
    pieces = sorted(_polygons(_split(g.geom, line)), key=lambda p: -p.area)
    if len(pieces) < 2:
        raise DomainError("split_missed", f"分割线未将网格{_label(g)[0]}分开（须从边界一侧画到另一侧）",
                          f"the line does not cut grid {_label(g)[1]} in two (draw it across, edge to edge)",
                          field="line")
    kids = draft.children(code)
    draft.put(_replace(g, geom=as_multipolygon(pieces[0])))
    codes = [code, *new_codes(draft, g.level, g.parent_code, pieces[1:], county_code=code[:6])]
    for k, (c, piece) in enumerate(zip(codes[1:], pieces[1:]), start=1):
        name = names[k] if names and k < len(names) else f"{g.name}-{k + 1}"
        draft.put(Item(c, g.level, g.parent_code, name, as_multipolygon(piece), None))
    if names:
        rename(draft, code, names[0])
    for kid in kids:
        best = max(range(len(pieces)), key=lambda i: shapely.intersection(kid.geom, pieces[i]).area)
        if best:
            _recode(draft, kid, codes[best])
    return codes


def merge(draft: Draft, codes: Sequence[str], *, keep: str | None = None) -> str:
    """Merge adjacent grids of one parent into ``keep`` (default the lowest code); the others are
    retired and their children move (with new codes) under the survivor. Returns the survivor."""
    grids = [draft.need(c) for c in dict.fromkeys(codes)]
    if len(grids) < 2:
        raise DomainError("merge_needs_two", "合并至少需要两个网格", "a merge needs at least two grids", field="codes")
    if len({(g.level, g.parent_code) for g in grids}) != 1:
        raise DomainError("merge_parents", "只能合并同一上级网格下的同级网格",
                          "only grids of one level under one parent can be merged", field="codes")
    union = shapely.union_all([g.geom for g in grids])
    if len(_polygons(union)) != 1:
        raise DomainError("merge_not_adjacent", "所选网格互不相邻，无法合并为一个网格",
                          "the grids are not adjacent: they cannot become one grid", field="codes")
    survivor = keep or min(g.code for g in grids)
    if survivor not in {g.code for g in grids}:
        raise DomainError("merge_keep", f"保留的编码 {survivor} 不在所选网格中",
                          f"the code to keep, {survivor}, is not among the merged grids", field="keep")
    kept = draft.need(survivor)
    draft.put(_replace(kept, geom=as_multipolygon(union)))
    for g in grids:
        if g.code == survivor:
            continue
        for kid in draft.children(g.code):
            _recode(draft, kid, survivor)
        draft.retire(g.code)
    return survivor


def move(draft: Draft, code: str, new_parent: str) -> str:
    """Move grid ``code`` (level 2 or 3) under ``new_parent``: a new code there, its area taken from
    the old parent's line and given to the new one's up to their common ancestor. Returns the code."""
    g = draft.need(code)
    p = draft.need(new_parent)
    if g.level == 1 or p.level != g.level - 1:
        raise DomainError("move_level", f"{LEVEL_ZH[g.level]}网格只能移到{LEVEL_ZH.get(g.level - 1, '—')}网格下",
                          f"a {LEVEL_EN[g.level]} grid moves only under a {LEVEL_EN.get(g.level - 1, '—')} grid",
                          field="parent")
    if g.parent_code == new_parent:
        raise DomainError("move_same_parent", f"网格{_label(g)[0]}已属于该上级", f"grid {_label(g)[1]} is already "
                          "under that parent", field="parent")
    old, new = draft.need(g.parent_code), p
    while old is not None and new is not None and old.code != new.code:
        draft.put(_replace(old, geom=as_multipolygon(shapely.difference(old.geom, g.geom))))
        draft.put(_replace(new, geom=as_multipolygon(shapely.union(new.geom, g.geom))))
        old = draft.get(old.parent_code) if old.parent_code else None
        new = draft.get(new.parent_code) if new.parent_code else None
    return _recode(draft, g, new_parent)


def subdivide(draft: Draft, code: str, *, lines: Sequence[BaseGeometry] = (),
              pieces: Sequence[BaseGeometry] = (), names: Sequence[str] | None = None) -> list[str]:
    """Replace the children of grid ``code`` (level 1 or 2) by new ones: the pieces the ``lines`` cut
    it into, or the given ``pieces``. The old children are retired. Returns the new codes."""
    g = draft.need(code)
    if g.level >= 3:
        raise DomainError("subdivide_level", "三级网格不能再细分", "a block grid has no lower level", field="code")
    if lines:
        parts = _polygons(_split(g.geom, shapely.union_all(list(lines))))
    else:
        parts = [p for piece in pieces for p in _polygons(piece)]
    if len(parts) < 1 or (lines and len(parts) < 2):
        raise DomainError("subdivide_empty", f"分割线未将网格{_label(g)[0]}分开", f"the lines do not cut grid "
                          f"{_label(g)[1]}", field="lines")
    for kid in draft.children(code):
        draft.retire(kid.code)
    codes = new_codes(draft, g.level + 1, code, parts)
    for k, (c, piece) in enumerate(zip(codes, parts)):
        name = names[k] if names and k < len(names) else f"{g.name}{k + 1}"
        draft.put(Item(c, g.level + 1, code, name, as_multipolygon(piece)))
    return codes


def create(draft: Draft, parent_code: str | None, geom: BaseGeometry, name: str, *, code: str | None = None,
           level: int | None = None, name_en: str | None = None, feature: int | None = None) -> str:
    """A new grid (its code generated under ``parent_code`` unless given)."""
    lvl = level or (draft.need(parent_code).level + 1 if parent_code else 1)
    if code is None:
        code = new_codes(draft, lvl, parent_code, [geom])[0]
    draft.put(Item(code, lvl, parent_code, name, geom, name_en, feature=feature))
    return code


# -- validation ---------------------------------------------------------------------------------
def problems(draft: Draft, *, tolerance_m: float = 1.0,
             retired: Mapping[str, BaseGeometry] | None = None) -> list[Problem]:
    """Every problem of the draft's changes, by the file import's rules (one set of grid rules):
    each changed level is validated as an import replacing those grids would be, against the draft's
    parents, siblings and children; plus the gaps a retired grid leaves and the grids it orphans.
    ``retired``: codes used before and open no more (with their last boundary), never reused."""
    changes = draft.changes()
    out: list[Problem] = []
    for level in sorted({c.level for c in changes}):
        alive = [c for c in changes if c.level == level and c.geom is not None]
        gone = [c for c in changes if c.level == level and c.geom is None]
        if alive:
            frame = pd.DataFrame({
                "feature": [c.feature or k for k, c in enumerate(alive, start=1)],
                "code": [c.code for c in alive], "name": [c.name for c in alive],
                "name_en": [c.name_en for c in alive], "parent_code": [c.parent_code for c in alive],
                "geometry": [c.geom for c in alive]})
            codes = {c.code for c in alive}
            kids = [k for k in draft.grids(level + 1) if k.parent_code in codes] if level < 3 else []
            out += rules.validate_grids(frame, level, parents=draft.grids(level - 1) if level > 1 else [],
                                        current=draft.grids(level), children=kids, tolerance_m=tolerance_m,
                                        replace=True, retired=retired)
        touched = {c.parent_code for c in alive}
        for pcode in sorted({c.parent_code for c in gone if c.parent_code} - touched):
            parent = draft.get(pcode)
            if parent is not None:
                out += rules.gap_problems(parent, draft.children(pcode), tolerance_m)
        if gone and level < 3:
            out += rules.orphan_problems(gone, draft.grids(level + 1))
    return _unique(out)


def _unique(problems: list[Problem]) -> list[Problem]:
    """One problem once (a changed parent's children are checked both as its children and as a family)."""
    seen, out = set(), []
    for p in problems:
        key = (p.kind, p.code, p.where and (round(p.where[0], 6), round(p.where[1], 6)), p.en)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
