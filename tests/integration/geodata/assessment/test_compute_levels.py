"""The set-wise paths give the numbers of the plain ones on the demo: ``compute_levels`` (one
statement per family for several grid levels) equals ``compute`` per level, and the cases paired
by width_bucket (disjoint periods) equal every case against every period (overlapping periods)."""
from __future__ import annotations

import datetime as dt
import math

from geodata.access.scope import Scope
from geodata.assessment.indicators import By, compute, compute_levels
from geodata.assessment.periods import months_of, parse_period
from tests.conftest import DEMO_END
from tests.world import TZ

AS_OF = dt.datetime.combine(DEMO_END, dt.time(12), tzinfo=TZ)


def same(a, b) -> None:
    assert a.values.keys() == b.values.keys() and list(a.subjects) == list(b.subjects)
    for cell, vals in a.values.items():
        for code, v in vals.items():
            w = b.values[cell][code]
            assert (v is None and w is None) or math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-9), (cell, code, v, w)


def test_levels_at_once_equal_each_level(db):
    months = months_of(2026)
    together = compute_levels(db, Scope.everything(), months, (1, 2, 3), tz=TZ, as_of=AS_OF)
    for level in (1, 2, 3):
        alone = compute(db, Scope.everything(), months, By.grid(level), tz=TZ, as_of=AS_OF)
        same(together[level], alone)
    assert sum(together[3].cell("2026-10", k)["reported"] for k in together[3].subjects) > 100


def test_bucketed_periods_equal_the_cross_join(db):
    months = months_of(2026)[8:11]                        # Sept–Nov: disjoint, paired by width_bucket
    overlap = [*months, parse_period("2026-09-15..2026-10-15")]   # overlapping: every case × period
    a = compute(db, Scope.everything(), months, By.grid(3), tz=TZ, as_of=AS_OF)
    b = compute(db, Scope.everything(), overlap, By.grid(3), tz=TZ, as_of=AS_OF)
    for m in months:
        for k in a.subjects:
            for code, v in a.cell(m, k).items():
                w = b.cell(m, k)[code]
                assert (v is None and w is None) or math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-9), (m.key, k, code)
