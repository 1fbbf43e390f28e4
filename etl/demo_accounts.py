"""Demo accounts: one per role (login = the role's name), each with a fresh random password, marked
``demo`` — a production server (``GRIDWATCH_PRODUCTION=1``) refuses to start while one is enabled.

Officials' roles are linked to an official of the demo data who holds the matching assignment (the
first community's leaders, its first block's grid leader…); the others are no official's. Running
it again gives the demo accounts new passwords; an account whose password someone chose (no longer
``demo``) is left alone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.access import accounts
from geodata.access.capabilities import ASSIGNMENT_ROLE, GRANTABLE, grant_for_assignment
from geodata.access.models import Account
from geodata.codes import level_of
from geodata.grids.store import valid_at
from geodata.models import GridAssignment

#: roles no demo account gets: a department handler needs an official with no grid of their own
SKIPPED = ("handler",)


@dataclass(frozen=True)
class DemoAccount:
    login: str
    role: str
    grid_code: str | None
    official_id: int | None
    password: str | None   # None: an account someone took over (not reset)


def _holder(session: Session, role: str) -> tuple[int, str | None] | None:
    """(official id, the grant's grid) of the first current assignment that suggests ``role``
    (by grid code, then rank), among officials who have no account yet."""
    taken = set(session.scalars(select(Account.official_id).where(Account.official_id.is_not(None))))
    rows = session.execute(select(GridAssignment.official_id, GridAssignment.grid_code, GridAssignment.role)
                           .where(valid_at(dt.datetime.now(dt.UTC), GridAssignment))
                           .order_by(GridAssignment.grid_code, GridAssignment.rank, GridAssignment.id)).all()
    for oid, code, r in rows:
        if oid not in taken and ASSIGNMENT_ROLE.get((r, level_of(code))) == role:
            g = grant_for_assignment(r, code)
            return oid, g.grid_code if g else None
    return None


def ensure_demo_accounts(session: Session) -> list[DemoAccount]:
    """Create (or give new passwords to) the demo accounts; their logins and passwords, once."""
    out = []
    for role in (r for r in GRANTABLE if r not in SKIPPED):
        password = accounts.generate_password()
        existing = session.scalars(select(Account).where(Account.login == role)).first()
        if existing is not None:
            if existing.demo:
                accounts.set_password(session, existing.id, password, default=True)
            grant = existing.grants[0] if existing.grants else None
            out.append(DemoAccount(role, role, grant.grid_code if grant else None, existing.official_id,
                                   password if existing.demo else None))
            continue
        oid, grid = _holder(session, role) or (None, None)
        accounts.create_account(session, role, kind="display" if role == "display" else "user", official_id=oid,
                                password=password, password_is_default=True, demo=True, grants=((role, grid),))
        out.append(DemoAccount(role, role, grid, oid, password))
    session.flush()
    return out
