"""The map's search box: grid code or name, official name, issue number → where to go."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.clock import at_or_now
from geodata.grids.store import valid_at
from geodata.models import SEARCH_MAX_CHARS, Grid, GridAssignment, Issue, Official


@dataclass(frozen=True)
class SearchHit:
    kind: str               # 'grid' | 'official' | 'issue'
    label: str
    label_en: str
    grid_code: str
    issue_id: int | None = None


def search(session: Session, scope: Scope, q: str, limit: int = 10,
           as_of: dt.datetime | None = None) -> list[SearchHit]:
    """Grid code or name, official name, issue number → where to go.

    The text is literal (``%`` and ``_`` match themselves) and cut to :data:`SEARCH_MAX_CHARS`
    characters: the dashboard's box searches as the user types, so an over-long text is shortened,
    never refused (no name is that long)."""
    now = at_or_now(as_of)
    q = (q or "").strip()[:SEARCH_MAX_CHARS].strip()
    if not q:
        return []
    hits: list[SearchHit] = []
    for code, name, name_en, _lvl in session.execute(
            select(Grid.code, Grid.name, Grid.name_en, Grid.level)
            .where(valid_at(now), scope.filter(Grid.code),
                   or_(Grid.code.like(q + "%") if q.isdigit() else false(),
                       Grid.name.icontains(q, autoescape=True), Grid.name_en.icontains(q, autoescape=True)))
            .order_by(Grid.level, Grid.code).limit(limit)).all():
        hits.append(SearchHit("grid", f"{name} {code}", f"{name_en or name} {code}", code))
    for name, title, code in session.execute(
            select(Official.name, GridAssignment.title, GridAssignment.grid_code)
            .join(GridAssignment, GridAssignment.official_id == Official.id)
            .where(Official.name.icontains(q, autoescape=True), valid_at(now, GridAssignment),
                   scope.filter(GridAssignment.grid_code))
            .order_by(Official.name, GridAssignment.grid_code).limit(limit)).all():
        hits.append(SearchHit("official", f"{name} · {title}", f"{name} · {title}", code))
    for iid, number, title, code in session.execute(
            select(Issue.id, Issue.number, Issue.title, Issue.grid_code)
            .where(visible_issues(scope),
                   # a range on the unique index, then the exact prefix test
                   Issue.number >= q.upper(), Issue.number < q.upper() + "\x7f",
                   Issue.number.startswith(q.upper(), autoescape=True))
            .order_by(Issue.number).limit(limit)).all():
        hits.append(SearchHit("issue", f"{number} {title[:30]}", f"{number} {title[:30]}", code, iid))
    return hits[:limit * 2]
