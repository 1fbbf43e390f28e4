"""The business time zone and the one place that turns an optional 'as of' / 'now' into an instant.

Days, weeks, deadlines and local dates are counted in one zone, ``settings.timezone``. It is built
here (:func:`business_zone`) by whoever holds the settings (the app, the API, the CLI, the demo
loader) and passed to domain code as a ``tz`` argument; domain code never reads the settings.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

UTC = dt.UTC


@lru_cache
def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name (cached: one object per name)."""
    return ZoneInfo(name)


def business_zone(settings: Any) -> ZoneInfo:
    """The business time zone of ``settings`` (``settings.timezone``)."""
    return zone(settings.timezone)


def at_or_now(t: dt.datetime | None, name: str = "as_of") -> dt.datetime:
    """``t`` itself (it must be timezone-aware), or the current time when ``t`` is None."""
    if t is None:
        return dt.datetime.now(UTC)
    if t.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return t


def local(t: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    """``t`` in ``tz`` (None stays None)."""
    return t.astimezone(tz) if t is not None else None


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Midnight at the start of local ``day``."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)
