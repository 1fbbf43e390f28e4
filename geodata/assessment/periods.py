"""Assessment periods (考核周期): a month (2026-10), a quarter (2026Q3), a year (2026) or custom days
(2026-10-01..2026-10-15, both inclusive). Boundaries are local midnights in the business time zone,
which the caller passes in (``tz``); the previous period (环比) and the same period a year earlier
(同比) are periods too. Pure: no database.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from geodata.clock import day_start
from geodata.errors import DomainError

KINDS = ("month", "quarter", "year", "custom")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_CUSTOM = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
#: the longest custom period, in days
MAX_CUSTOM_DAYS = 3 * 366
MIN_YEAR, MAX_YEAR = 1901, 9998


def _bad(text: str) -> DomainError:
    return DomainError("invalid_period", f"考核周期“{text}”无效，应为 2026-10（月）、2026Q3（季）、2026（年）"
                       "或 2026-10-01..2026-10-15（自定义）",
                       f"invalid period '{text}': use 2026-10 (month), 2026Q3 (quarter), 2026 (year) "
                       "or 2026-10-01..2026-10-15 (custom days)", field="period")


@dataclass(frozen=True, order=True)
class Period:
    """Local days ``first``..``last`` (inclusive) of one kind; ``key`` is its canonical text."""

    first: dt.date
    last: dt.date
    kind: str

    @property
    def key(self) -> str:
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first.year}Q{(self.first.month - 1) // 3 + 1}"
        if self.kind == "year":
            return f"{self.first.year}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def label(self, lang: str = "zh") -> str:
        if self.kind == "month":
            return f"{self.first.year}年{self.first.month}月" if lang == "zh" else f"{self.first:%B %Y}"
        if self.kind == "quarter":
            q = (self.first.month - 1) // 3 + 1
            return f"{self.first.year}年第{q}季度" if lang == "zh" else f"Q{q} {self.first.year}"
        if self.kind == "year":
            return f"{self.first.year}年" if lang == "zh" else f"{self.first.year}"
        if lang == "zh":
            return f"{self.first:%Y年%m月%d日}至{self.last:%Y年%m月%d日}"
        return f"{self.first.isoformat()} to {self.last.isoformat()}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[start, end): local midnight of the first day to local midnight after the last (``tz``)."""
        return day_start(self.first, tz), day_start(self.last + dt.timedelta(days=1), tz)

    def previous(self) -> Period:
        """The period before (环比): the previous month / quarter / year, or as many days before."""
        if self.kind == "custom":
            return Period(self.first - dt.timedelta(days=self.days), self.first - dt.timedelta(days=1), "custom")
        return self._shift_months(-{"month": 1, "quarter": 3, "year": 12}[self.kind])

    def year_ago(self) -> Period:
        """The same period one year earlier (同比)."""
        if self.kind == "custom":
            return Period(_minus_year(self.first), _minus_year(self.last), "custom")
        return self._shift_months(-12)

    def _shift_months(self, n: int) -> Period:
        m = self.first.year * 12 + self.first.month - 1 + n
        return month_period(m // 12, m % 12 + 1, self.kind)

    def working_days(self) -> int:
        """Monday–Friday days in the period (no holiday calendar: see docs/assessment.md)."""
        return working_days(self.first, self.last)


def _minus_year(d: dt.date) -> dt.date:
    return d.replace(year=d.year - 1) if not (d.month == 2 and d.day == 29) else dt.date(d.year - 1, 2, 28)


def month_period(year: int, month: int, kind: str = "month") -> Period:
    first = dt.date(year, month, 1)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    m = year * 12 + month - 1 + months
    return Period(first, dt.date(m // 12, m % 12 + 1, 1) - dt.timedelta(days=1), kind)


def working_days(first: dt.date, last: dt.date) -> int:
    """Monday–Friday days in ``first``..``last`` (inclusive)."""
    n = (last - first).days + 1
    if n <= 0:
        return 0
    weeks, rest = divmod(n, 7)
    wd = first.weekday()
    return weeks * 5 + sum(1 for i in range(rest) if (wd + i) % 7 < 5)


def parse_period(text: str) -> Period:
    """``2026-10`` | ``2026Q3`` | ``2026`` | ``2026-10-01..2026-10-15``; anything else raises a
    bilingual :class:`~geodata.errors.DomainError` (field ``period``)."""
    s = (text or "").strip()
    try:
        if m := _CUSTOM.match(s):
            first, last = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if first <= last and (last - first).days < MAX_CUSTOM_DAYS:
                return _checked(Period(first, last, "custom"), s)
            raise _bad(s)
        if m := _MONTH.match(s):
            return _checked(month_period(int(m[1]), int(m[2])), s)
        if m := _QUARTER.match(s):
            return _checked(month_period(int(m[1]), 3 * int(m[2]) - 2, "quarter"), s)
        if m := _YEAR.match(s):
            return _checked(month_period(int(m[1]), 1, "year"), s)
    except (ValueError, OverflowError):
        pass
    raise _bad(s)


def _checked(p: Period, text: str) -> Period:
    """Years 1901–9998 only, so the period a year before and after are dates too."""
    if not (p.first.year >= MIN_YEAR and p.last.year <= MAX_YEAR):
        raise _bad(text)
    return p


def months_of(year: int) -> list[Period]:
    """The twelve month periods of ``year``."""
    return [month_period(year, m) for m in range(1, 13)]
