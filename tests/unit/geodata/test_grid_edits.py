"""The pure boundary edits (geodata.grids.edits): split, merge, move, subdivide and the draft's
validation with the file import's rules, on the test world's four blocks (no database)."""
from __future__ import annotations

import pytest
import shapely
from shapely.geometry import LineString, box

from geodata.errors import DomainError
from geodata.grids import edits
from geodata.grids.store import GridRow
from tests.world import B11, B12, B21, B22, C1, C2, GRIDS


def world_draft() -> edits.Draft:
    rows = [GridRow(code, level, parent, name, shapely.MultiPolygon([box(*bb)]), 0.0, en, id=k)
            for k, (code, level, parent, name, en, bb) in enumerate(GRIDS, start=1)]
    return edits.Draft(rows, used={r.code for r in rows})


def kinds(draft: edits.Draft) -> set[str]:
    return {p.kind for p in edits.problems(draft)}


def test_split_keeps_the_largest_piece_and_numbers_the_rest():
    d = world_draft()
    codes = edits.split(d, B21, LineString([(113.636, 34.749), (113.636, 34.761)]))
    assert codes[0] == B21 and codes[1] == "41010200100203"  # 01, 02 taken: the next free number
    kept, new = d.get(B21), d.get(codes[1])
    assert kept.geom.area > new.geom.area
    assert shapely.union(kept.geom, new.geom).equals(box(113.63, 34.75, 113.64, 34.76))
    assert new.parent_code == C2 and kinds(d) == set()
    assert set(d.base_versions()) == {B21}  # the new piece was drawn on no version


def test_a_line_that_does_not_cross_is_refused():
    d = world_draft()
    with pytest.raises(DomainError) as e:
        edits.split(d, B21, LineString([(113.635, 34.755), (113.636, 34.7555)]))
    assert e.value.code == "split_missed" and B21 in e.value.message_en


def test_merge_needs_adjacent_siblings():
    d = world_draft()
    assert edits.merge(d, [B22, B21]) == B21
    assert d.get(B22) is None and d.get(B21).geom.equals(box(113.63, 34.74, 113.64, 34.76))
    assert kinds(d) == set()
    with pytest.raises(DomainError) as e:
        edits.merge(world_draft(), [B11, B21])
    assert e.value.code == "merge_parents"


def test_move_gives_a_new_code_and_moves_the_area_between_parents():
    d = world_draft()
    new = edits.move(d, B21, C1)
    assert new == "41010200100103" and d.get(B21) is None
    assert d.items[new].predecessor == B21
    assert d.get(C1).geom.area == pytest.approx(box(113.62, 34.74, 113.64, 34.76).area - 0.01 * 0.01)
    assert d.get(C2).geom.equals(box(113.63, 34.74, 113.64, 34.75))
    assert kinds(d) == set()


def test_subdivide_retires_the_old_children():
    d = world_draft()
    codes = edits.subdivide(d, C1, lines=[LineString([(113.625, 34.739), (113.625, 34.761)])])
    assert len(codes) == 2 and all(c.startswith(C1[:12]) and c not in (B11, B12) for c in codes)
    assert d.get(B11) is None and d.get(B12) is None
    assert kinds(d) == set()


def test_a_moved_boundary_validates_only_when_both_neighbours_move():
    d = world_draft()
    edits.replace(d, {B11: box(113.62, 34.752, 113.63, 34.76)})
    probs = edits.problems(d)
    assert {p.kind for p in probs} == {"gap"}
    gap = next(p for p in probs if p.kind == "gap")
    assert gap.geometry is not None and gap.geometry.equals(box(113.62, 34.75, 113.63, 34.752))
    assert B11 in gap.en and B12 in gap.en
    edits.replace(d, {B12: box(113.62, 34.74, 113.63, 34.752)})
    assert edits.problems(d) == []


def test_retiring_a_grid_leaves_a_gap_and_orphans():
    d = world_draft()
    d.retire(B22)
    assert kinds(d) == {"gap"}
    d = world_draft()
    d.retire(C2)
    assert "orphan" in kinds(d)


def test_a_retired_code_is_not_reused_unless_restored_as_it_was():
    d = world_draft()
    old = box(113.63, 34.74, 113.64, 34.75)
    d.retire(B22)
    edits.create(d, C2, old, "东社区二网格", code="41010200100203")
    retired = {"41010200100203": box(113.0, 34.0, 113.1, 34.1)}
    assert "code_retired" in {p.kind for p in edits.problems(d, retired=retired)}
    assert "code_retired" not in {p.kind for p in edits.problems(d, retired={"41010200100203": old})}
