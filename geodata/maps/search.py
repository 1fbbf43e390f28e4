"""The map's search box: grid code or name, official name (or phone, for those who may see phones),
grid and official names in pinyin (full or initials: ``sgm`` → 三官庙), issue number (any part of
it) or a word of an issue's title → where to go."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.clock import at_or_now
from geodata.grids.store import valid_at
from geodata.models import SEARCH_MAX_CHARS, Grid, GridAssignment, Issue, Official
from geodata.workflow.text_search import TextMatch


@dataclass(frozen=True)
class SearchHit:
    kind: str               # 'grid' | 'official' | 'issue'
    label: str
    label_en: str
    grid_code: str
    issue_id: int | None = None


#: pinyin is matched for texts of Latin letters only (``sgm``, ``sanguanmiao``, ``san guan``)
_PINYIN_RE = re.compile(r"^[A-Za-z][A-Za-z ]*$")
#: a phone number is searched from this many digits on (fewer match too much)
PHONE_MIN_DIGITS = 4


@lru_cache(maxsize=8192)
def pinyin_keys(name: str) -> tuple[str, str]:
    """(full pinyin, initials) of a Chinese name, lower case without spaces: 三官庙 → ('sanguanmiao', 'sgm')."""
    from pypinyin import Style, lazy_pinyin

    full = "".join(lazy_pinyin(name)).lower()
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()
    return full, initials


def pinyin_match(name: str, q: str) -> bool:
    key = q.replace(" ", "").lower()
    full, initials = pinyin_keys(name)
    return key in full or initials.startswith(key)


def search(session: Session, scope: Scope, q: str, limit: int = 10,
           as_of: dt.datetime | None = None) -> list[SearchHit]:
    """Where to go for ``q``: grids (code prefix, name, English name, pinyin), officials (name,
    pinyin, and their phone when ``scope`` may see personal data), issues (any part of the number,
    or a word of the title) — in that order, ``limit`` of each kind.

    The text is literal (``%`` and ``_`` match themselves) and cut to :data:`SEARCH_MAX_CHARS`
    characters: the dashboard's box searches as the user types, so an over-long text is shortened,
    never refused (no name is that long)."""
    now = at_or_now(as_of)
    q = (q or "").strip()[:SEARCH_MAX_CHARS].strip()
    if not q:
        return []
    latin = bool(_PINYIN_RE.match(q))
    hits: list[SearchHit] = []
    grids = select(Grid.code, Grid.name, Grid.name_en, Grid.level).where(valid_at(now), scope.filter(Grid.code))
    if not latin:   # pinyin is matched in Python over the (few) grids in scope
        grids = grids.where(or_(Grid.code.like(q + "%") if q.isdigit() else false(),
                                Grid.name.icontains(q, autoescape=True), Grid.name_en.icontains(q, autoescape=True)))
    for code, name, name_en, _lvl in session.execute(grids.order_by(Grid.level, Grid.code)).all():
        if latin and not (q.lower() in (name_en or "").lower() or pinyin_match(name, q)):
            continue
        hits.append(SearchHit("grid", f"{name} {code}", f"{name_en or name} {code}", code))
        if sum(h.kind == "grid" for h in hits) >= limit:
            break
    digits = re.sub(r"\D", "", q)
    by_phone = scope.personal_data and len(digits) >= PHONE_MIN_DIGITS and len(digits) == len(q.replace("-", "").replace(" ", ""))
    people = (select(Official.name, GridAssignment.title, GridAssignment.grid_code)
              .join(GridAssignment, GridAssignment.official_id == Official.id)
              .where(valid_at(now, GridAssignment), scope.filter(GridAssignment.grid_code), Official.active.is_(True)))
    if by_phone:
        people = people.where(Official.phone.contains(digits, autoescape=True))
    elif not latin:
        people = people.where(Official.name.icontains(q, autoescape=True))
    n = 0
    for name, title, code in session.execute(people.order_by(Official.name, GridAssignment.grid_code)).all():
        if latin and not by_phone and not pinyin_match(name, q):
            continue
        hits.append(SearchHit("official", f"{name} · {title}", f"{name} · {title}", code))
        n += 1
        if n >= limit:
            break
    if not latin or len(q) >= 3:   # a few Latin letters are a pinyin query, not an issue number
        for iid, number, title, code in issue_matches(session, scope, q, limit, now):
            hits.append(SearchHit("issue", f"{number} {title[:30]}", f"{number} {title[:30]}", code, iid))
    return hits[:limit * 3]


def _first(session: Session, stmt: Select, n: int) -> list[Any]:
    """The first ``n`` rows of ``stmt`` (ordered), through a server-side cursor rather than a
    ``LIMIT``. Under row-level security PostgreSQL has no row estimate for a condition whose
    operator is not LEAKPROOF (``ILIKE``: it may not look at the column's statistics), guesses a
    handful of matches and, for ``LIMIT n``, reads the whole window and sorts it (demo, 社区: 6.1 ms;
    without RLS, by the estimate from the statistics, 1.2 ms). A cursor's plan is made for its
    first rows (``cursor_tuple_fraction``): the ``reported_at`` index read backwards, stopping at
    the ``n``-th match — 2.0 ms under RLS; a text with no match reads the window either way.
    Likewise a number's start by the number's index (WT2026: 10.9 ms by a bitmap and a sort of the
    year's 3 056 numbers, against 0.1 ms read backwards)."""
    result = session.execute(stmt, execution_options={"stream_results": True, "max_row_buffer": n})
    try:
        return list(result.fetchmany(n))
    finally:
        result.close()


def issue_matches(session: Session, scope: Scope, q: str, limit: int,
                  now: dt.datetime) -> list[tuple[int, str, str, str]]:
    """(id, number, title, grid code) of up to ``limit`` issues in ``scope`` whose number or title
    contains ``q`` (case-insensitive, literal): the numbers that start with ``q`` first (highest
    first), then the other matches, newest reported first (id breaks ties).

    The first ``limit`` of THE match of :mod:`geodata.workflow.text_search` (the API's ``q`` is the
    same match, whole), in this order — bounded whatever the history (issue #11), with that
    module's limit for a narrow scope: at most three statements, each reading a bounded number of
    rows and stopping at ``limit``: the numbers that start with ``q`` (by the number's index,
    highest first), the matches of the last year (``SEARCH_WINDOW``), newest first, and — only if
    those were fewer than ``limit`` — the older matches (``gw_issue_search``), newest first.
    """
    match = TextMatch(q, now)
    vis = visible_issues(scope)
    cols = (Issue.id, Issue.number, Issue.title, Issue.grid_code)
    out: list[tuple[int, str, str, str]] = []
    if (start := match.number_start()) is not None:
        out += [tuple(r) for r in _first(session, select(*cols).where(vis, start).order_by(Issue.number.desc()), limit)]
    if len(out) >= limit:
        return out
    seen = {r[0] for r in out}
    newest = (Issue.reported_at.desc(), Issue.id.desc())
    want = limit - len(out) + len(seen)   # the prefix's hits match again
    recent = _first(session, select(*cols).where(vis, match.recent()).order_by(*newest), want)
    out += [tuple(r) for r in recent if r[0] not in seen]
    if len(recent) < want:
        seen |= {r[0] for r in recent}
        out += [tuple(r) for r in session.execute(
            select(*cols).where(vis, match.older()).order_by(*newest).limit(want)).all()
            if r[0] not in seen]
    return out[:limit]
