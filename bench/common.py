"""What the benchmarks share: a scratch database with the demo loaded as ``gridwatch demo`` loads it
(the owner role), the app role's URL (what the web server connects as: row-level security), and
accounts that are signed in as the server sees them — an API bearer token, a web session cookie, or
the request's :class:`~dashboard.context.Context` built from the account's principal, as the gate
builds it (``dashboard.context.viewer_scope``).

Not a benchmark itself (``python -m bench`` runs the ``bench_*`` modules only).
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Engine, create_engine, select


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (0–1) by nearest rank over ``len − 1`` (NaN for none)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] if xs else float("nan")


def scratch_demo(name: str, *, end: dt.date | None = None) -> tuple[str, str]:
    """(admin URL, database URL as the superuser) of a fresh database ``name`` holding the demo,
    loaded by the owner role. Drop it with ``geodata.db.admin.drop_database(admin, name)``."""
    from etl.demo import load_demo
    from geodata.db import admin_url
    from geodata.db.admin import create_database
    from geodata.settings import get_settings

    admin = admin_url(get_settings())
    url = create_database(admin, name)
    owner = owner_engine(url)
    try:
        load_demo(owner, end=end, progress=False)
    finally:
        owner.dispose()
    return admin, url


def owner_engine(url: str, **kw: Any) -> Engine:
    """The owner role on ``url``'s database (the demo loader, the CLI's jobs: row-level security
    applies, so its sessions say which scope they work in, ``Scope.everything()``)."""
    from geodata.db.roles import OWNER_ROLE, role_url

    return create_engine(role_url(url, OWNER_ROLE), **kw)


def app_url(url: str) -> str:
    """``url``'s database as the web server connects to it: the app role."""
    from geodata.db.roles import APP_ROLE, role_url

    return role_url(url, APP_ROLE)


def account(engine: Engine, role: str, grid: str | None = None, official_id: int | None = None) -> int:
    """A fresh account holding ``role`` on ``grid`` (None: every grid), linked to ``official_id``
    (an official already holding an account gets that one, with its grants as they are)."""
    from geodata.access import accounts
    from geodata.access.models import Account
    from geodata.db import session_scope

    with session_scope(engine) as s:
        if official_id is not None:
            found = s.scalar(select(Account.id).where(Account.official_id == official_id))
            if found is not None:
                return found
        return accounts.create_account(s, f"bench-{role.replace('_', '-')}-{secrets.token_hex(4)}",
                                       kind="display" if role == "display" else "user", official_id=official_id,
                                       grants=((role, grid),))


def api_token(engine: Engine, account_id: int) -> str:
    """A new API token of the account (``Authorization: Bearer <token>``)."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(engine) as s:
        return accounts.issue_token(s, account_id, "bench")


def web_session(engine: Engine, account_id: int) -> str:
    """A new web session of the account: the value of the ``gw_session`` cookie, as the sign-in page
    sets it."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(engine) as s:
        return accounts.start_session(s, account_id)


def principal(engine: Engine, account_id: int):
    """The account's principal, read as the gate reads it."""
    from geodata.access import accounts
    from geodata.db import session_scope

    with session_scope(engine) as s:
        return accounts.load_principal(s, account_id)


def context_of(settings: Any, principal: Any, lang: str = "zh"):
    """The dashboard's request context for ``principal`` (what ``current_context`` builds inside a
    request the gate let through)."""
    from dashboard.context import Context, Viewer, viewer_scope
    from geodata.clock import business_zone

    return Context(viewer=Viewer.of(principal), scope=viewer_scope(settings, principal), lang=lang,
                   tz=business_zone(settings))

