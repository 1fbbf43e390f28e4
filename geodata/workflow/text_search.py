"""THE issues matching a text: those whose number or title contains ``q`` (case-insensitive,
literal: ``%`` and ``_`` match themselves), found with bounded work whatever the history (issue #11).
One definition for the map's search box (:func:`geodata.maps.search.issue_matches`, the first few
in its order) and the API's ``GET /api/v1/issues?q=`` (:attr:`IssueFilter.text`, a condition
among the others: any sort, counted, paged).

Under FORCE row-level security on ``issue`` PostgreSQL uses a condition as an index condition only
if its operator is LEAKPROOF, which ``ILIKE`` is not: ``number ILIKE '%q%' OR title ILIKE '%q%'``
alone reads every row in the viewer's scope (at 10⁶ issues, seconds for a rare word). So a text is
matched in three parts, each reading a bounded number of rows (:class:`TextMatch`):

1. **the number's start** — for a ``q`` of :data:`NUMBER_PREFIX_MIN` letters and digits or more
   (``WT2026``: a kind and a year): a range of the number's unique index (text comparisons are
   LEAKPROOF), rechecked: at most one year's numbers of a kind, whatever the history;
2. **the last** :data:`SEARCH_WINDOW` — the issues reported since ``now - SEARCH_WINDOW`` (or
   later), read whole by ``issue_reported_idx`` and rechecked: a year's intake (the demo street:
   ≈ 4 300), not the history;
3. **the older issues** — ``gw_issue_search(q, before, cap)`` (migration 0022; the n-grams are in
   a table of their own, ``issue_search``, since no text index of ``issue`` can be used): at most
   4 × :data:`SEARCH_CAP` index rows whose characters and pairs of characters hold all of ``q``'s
   (any text of one character or more, two-character Chinese words included), taken by the text
   alone, whoever asks; then those of them the viewer's row-level security lets through, rechecked
   with ``ILIKE``, at most :data:`SEARCH_CAP`. Never an issue outside the scope.

The match is the union of the three, and what the viewer may see of it (row-level security, and
:func:`~geodata.access.visibility.visible_issues` in the statement that reads it).

**Exact** — the same issues as the full ``ILIKE`` — whenever fewer than 4 × :data:`SEARCH_CAP`
older issues of the whole city hold the text's characters (a rare word, an old issue's title, a
number or its tail) and at most :data:`SEARCH_CAP` older ones in scope match: every match in scope,
whatever the scope. **The limit**: a text more older issues hold (a word frequent in the older
history: 垃圾) gives every match of the last year and the number range, and of the older ones
those in scope among the index rows taken first — any of the city's, so a viewer whose scope is a
small part of the city (a community leader, a grid worker) may get few of their older matches or
none, and a viewer of everything at most :data:`SEARCH_CAP`, not necessarily the newest. A longer
text, the number, or a date range (``from``/``to``) finds a given one. (The scope is not in the
index so that re-assigning issues — a change set moving 10⁵ of them, issue #15 — does not rewrite
it.) Which older rows are taken depends on the text and the table only (the function's scan is
neither parallel nor synchronised, migration 0024), so the same request gives the same issues and
an API listing's pages fit together while nothing is written.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, Select, and_, any_, cast, func, or_, select, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from geodata.models import Issue

#: the search reads the issues reported in this window before ``now`` (and any later) whole
SEARCH_WINDOW = dt.timedelta(days=365)
#: … and at most this many older matching rows, from the n-gram index (migration 0022)
SEARCH_CAP = 500
#: an issue number is upper-case letters and digits (``WT2026000123``); its start is looked up in
#: the number's index from a kind and a year on
NUMBER_PREFIX_MIN = 6
_NUMBER_START_RE = re.compile(r"^[A-Za-z0-9]+$")


def contains_text(q: str, issue=Issue) -> ColumnElement[bool]:
    """The rule itself, as SQL: the number or the title contains ``q`` (case-insensitive, literal).
    No index serves it under row-level security: use it only within a bounded set of rows."""
    return or_(issue.number.icontains(q, autoescape=True), issue.title.icontains(q, autoescape=True))


@dataclass(frozen=True)
class TextMatch:
    """The issues matching ``q`` as of ``now``, in the three bounded parts of the module's
    docstring: :meth:`number_start`, :meth:`recent`, :meth:`older` (conditions on ``issue``, for
    a reader that wants the first few in an order of its own), or :meth:`condition`, their union."""

    q: str
    now: dt.datetime

    def __post_init__(self) -> None:
        if not self.q:
            raise ValueError("an empty text matches everything: no TextMatch")

    @property
    def cut(self) -> dt.datetime:
        """Where the window starts: older issues are found by the n-gram index."""
        return self.now - SEARCH_WINDOW

    def number_start(self, issue=Issue) -> ColumnElement[bool] | None:
        """1. The numbers that start with ``q``, by the number's index; None when ``q`` is too short
        or cannot start a number (then 2 and 3 find those numbers)."""
        q = self.q
        if len(q) < NUMBER_PREFIX_MIN or not _NUMBER_START_RE.match(q):
            return None
        lo = q.upper()
        return and_(issue.number >= lo, issue.number < lo + "\U0010ffff", issue.number.istartswith(q, autoescape=True))

    def recent(self, issue=Issue) -> ColumnElement[bool]:
        """2. The matches reported in the window (or later), by ``issue_reported_idx``."""
        return and_(issue.reported_at >= self.cut, contains_text(self.q, issue))

    def older_ids(self) -> Select:
        """3. The ids of at most :data:`SEARCH_CAP` older matches the caller's row-level security
        lets through, by the n-gram index (``gw_issue_search``)."""
        return select(func.gw_issue_search(self.q, self.cut, SEARCH_CAP).label("id"))

    def older(self, issue=Issue) -> ColumnElement[bool]:
        """3. as a condition on ``issue``: its id among an array computed once (an InitPlan), so
        the rows are read by the primary key — as ``IN (subquery)``, under row-level security the
        planner joined it against every issue in the scope (3.2 ms against 0.8 without RLS on the
        demo: it has no row estimate for the function's set)."""
        return _among(issue, self.older_ids().subquery())

    def condition(self) -> ColumnElement[bool]:
        """The whole match as one condition on ``issue``: its id among the union of the three
        parts' ids, computed once per statement (an InitPlan: an array of at most a year's intake,
        a year's numbers of a kind and :data:`SEARCH_CAP`), so that the statement reads the matches
        by the primary key whatever else it filters, sorts or counts (at 10⁶ issues: 16–75 ms a
        page with its total, where the plain ``ILIKE`` took 1–2 s). No match: ``= ANY(NULL)``,
        never true."""
        m = aliased(Issue, name="text_match")
        parts = [select(m.id).where(c) for c in (self.number_start(m), self.recent(m)) if c is not None]
        return _among(Issue, union(*parts, self.older_ids()).subquery("text_match_ids"))


def _among(issue, ids) -> ColumnElement[bool]:
    """``issue``'s id among the ``id`` column of ``ids``, gathered into an array once per statement
    (an InitPlan), so the rows are read by the primary key; none: ``= ANY(NULL)``, never true."""
    return issue.id == any_(cast(select(func.array_agg(ids.c.id)).scalar_subquery(), ARRAY(BigInteger)))


def text_match(q: str | None, now: dt.datetime) -> TextMatch | None:
    """The :class:`TextMatch` of ``q`` (None for no text: no restriction)."""
    return TextMatch(q, now) if q else None
