"""The scorecard's profile (views.profile) on the hand-computed world (conftest.py's table): the
cases by domain and the handling-time classes of B11 in October 2026, counted by hand, and the
same rows as the indicators (their sums are the ranking's numbers)."""
from __future__ import annotations

import pytest

from geodata.access.scope import Scope
from geodata.assessment import views
from geodata.assessment.indicators import By, compute
from geodata.assessment.periods import parse_period
from tests.integration.geodata.assessment.conftest import AS_OF
from tests.world import B11, B12, TZ

OCT = parse_period("2026-10")
EVERYONE = Scope.everything()
A_HOURS = 35 + 59.5 / 60   # A: assigned 10-01 00:00:30, closed 10-02 12:00


def test_block_october_by_hand(asession):
    asession, _ = asession
    p = views.profile(asession, EVERYONE, OCT, "grid:3", B11, tz=TZ, as_of=AS_OF)
    # every case of the world is 环境卫生: reported B, C, D, E, H; closed (due, not deferred) A, B, E, H
    assert [(d.code, d.reported, d.closed, d.overdue_open) for d in p.domains] == [("sanitation", 5, 4, 0)]
    # closed in October: A 35.99 h → [24, 48); B 72 h, H 72 h, G 95.5 h, E 101.5 h → [72, 120)
    assert p.hour_edges == (0, 4, 8, 24, 48, 72, 120, 168)
    assert p.hour_counts == [0, 0, 0, 1, 0, 4, 0, 0]
    assert p.median_hours == pytest.approx(72.0)
    assert p.p90_hours == pytest.approx(95.5 + 0.6 * (101.5 - 95.5))   # percentile_cont: 3.6 of 0..4


def test_the_other_block_and_the_whole_level(asession):
    asession, _ = asession
    # F (B12): reported 10-10, reassigned, open past its deadline (10-12)
    f = views.profile(asession, EVERYONE, OCT, "grid:3", B12, tz=TZ, as_of=AS_OF)
    assert [(d.code, d.reported, d.closed, d.overdue_open) for d in f.domains] == [("sanitation", 1, 0, 1)]
    assert sum(f.hour_counts) == 0 and f.median_hours is None and f.p90_hours is None
    # None: every subject of the level together — the sums of the blocks'
    every = views.profile(asession, EVERYONE, OCT, "grid:3", None, tz=TZ, as_of=AS_OF)
    table = compute(asession, EVERYONE, [OCT], By.grid(3), tz=TZ, as_of=AS_OF)
    cells = [table.cell(OCT, k) for k in table.subject_keys()]
    assert sum(d.reported for d in every.domains) == sum(c["reported"] or 0 for c in cells) == 6
    assert sum(d.closed for d in every.domains) == sum(c["closed"] or 0 for c in cells)
    assert sum(d.overdue_open for d in every.domains) == sum(c["overdue_open"] or 0 for c in cells) == 1
    assert sum(every.hour_counts) == sum(c["closed_in_period"] or 0 for c in cells) == 5


def test_a_grid_leader_and_the_scope(asession):
    asession, _ = asession
    leader = views.ranking(asession, EVERYONE, OCT, "official:grid_leader", tz=TZ, as_of=AS_OF)
    row = next(r for r in leader.rows if B11 in r.grids)
    p = views.profile(asession, EVERYONE, OCT, "official:grid_leader", row.key, tz=TZ, as_of=AS_OF)
    assert sum(d.reported for d in p.domains) == row.values["reported"]
    assert sum(p.hour_counts) == row.values["closed_in_period"]
    # a viewer scoped to B12 sees nothing of B11's
    mine = views.profile(asession, Scope.grids(B12), OCT, "grid:3", B11, tz=TZ, as_of=AS_OF)
    assert mine.domains == [] and sum(mine.hour_counts) == 0


def test_a_bad_level_is_refused(asession):
    asession, _ = asession
    from geodata.errors import DomainError

    with pytest.raises(DomainError) as e:
        views.profile(asession, EVERYONE, OCT, "grid:9", None, tz=TZ, as_of=AS_OF)
    assert e.value.field == "level"
