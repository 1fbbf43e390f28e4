"""Issue numbers: WT (问题) / SQ (社情) + local year + a 6-digit sequence, taken under an advisory lock."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

_NUMBER_LOCK = 7_310_000


def next_number(session: Session, at: dt.datetime, kind: str = "problem", *, tz: ZoneInfo) -> str:
    """WT (问题, problem) or SQ (社情, sentiment) + local year + 6-digit sequence within the year and
    kind (the demo dataset's convention); the year is the one in the business time zone ``tz``. A transaction-scoped advisory lock makes concurrent
    reports take distinct numbers."""
    prefix = "WT" if kind == "problem" else "SQ"
    year = at.astimezone(tz).year
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                    {"k": _NUMBER_LOCK + year * 10 + (0 if prefix == "WT" else 1)})
    # over every issue, whatever this transaction's scope may see (migration 0005's function)
    last = session.execute(text("SELECT gw_last_issue_number(:lo, :hi)"),
                           {"lo": f"{prefix}{year}", "hi": f"{prefix}{year + 1}"}).scalar()
    seq = 0
    if last:
        digits = "".join(ch for ch in last[6:] if ch.isdigit())
        seq = int(digits) if digits else 0
    return f"{prefix}{year}{seq + 1:06d}"
