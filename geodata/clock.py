"""The one place that turns an optional 'as of' / 'now' argument into an aware UTC instant."""
from __future__ import annotations

import datetime as dt

UTC = dt.UTC


def at_or_now(t: dt.datetime | None, name: str = "as_of") -> dt.datetime:
    """``t`` itself (it must be timezone-aware), or the current time when ``t`` is None."""
    if t is None:
        return dt.datetime.now(UTC)
    if t.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return t
