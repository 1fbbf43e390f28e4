"""The indicator queries have SQLAlchemy cache keys: compiled once per shape, not once per call.
(Their periods were a VALUES list — no cache key — and each wall refresh compiled seven big
statements afresh, ≈ 100 ms of the server's interpreter lock.)"""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from geodata.access.scope import Scope
from geodata.assessment import indicators
from geodata.assessment.indicators import By, Query
from geodata.assessment.periods import month_period

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("rows", ["_cases_rows", "_steps_rows", "_diary_rows", "_activity_rows"])
def test_each_family_query_has_a_cache_key_that_ignores_the_dates(rows):
    def key(month: int):
        q = Query(periods=(month_period(2026, month), month_period(2026, month - 1)), by=By.grid(2),
                  scope=Scope.everything(False), now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC), tz=TZ)
        stmt, _ = getattr(indicators, rows)(q)
        k = stmt._generate_cache_key()
        assert k is not None, f"{rows}: no cache key (compiled on every call)"
        return k.key

    assert key(10) == key(11)
