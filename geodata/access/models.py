"""The accounts tables (migration ``0009_accounts``): accounts, role grants, API tokens, web
sessions and the append-only audit log. On :class:`geodata.models.Base`, beside the data tables.

Secrets are never stored: passwords as argon2 hashes, tokens and session ids as SHA-256 digests of
their random values (which are shown once). The audit log holds no passwords and no phones.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from geodata.models import Base

ACCOUNT_KINDS = ("user", "display")


def _tstz() -> DateTime:
    return DateTime(timezone=True)


class Account(Base):
    """Someone who signs in (a user) or a display screen (token only). ``official_id`` links an
    official's account to the org chart (their grid assignments give their workflow roles)."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ACCOUNT_KINDS)})", name="account_kind"),
        CheckConstraint("login ~ '^[a-z0-9][a-z0-9._-]{1,39}$'", name="account_login_format"),
        Index("account_login_uq", "login", unique=True),
        Index("account_official_uq", "official_id", unique=True, postgresql_where=text("official_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="user", server_default="user")
    official_id: Mapped[int | None] = mapped_column(ForeignKey("official.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))   # argon2id; None: cannot sign in
    #: a password nobody chose (generated at creation or by the demo): production refuses to start
    password_is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    locked_until: Mapped[dt.datetime | None] = mapped_column(_tstz())
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())

    grants: Mapped[list[RoleGrant]] = relationship(lazy="selectin", order_by="RoleGrant.id",
                                                   cascade="all, delete-orphan")


class RoleGrant(Base):
    """A role on a grid and everything below it (``grid_code`` None: every grid)."""

    __tablename__ = "role_grant"
    __table_args__ = (
        CheckConstraint(r"grid_code IS NULL OR grid_code ~ '^[0-9]{14}$'", name="role_grant_grid_format"),
        Index("role_grant_uq", "account_id", "role", text("coalesce(grid_code, '')"), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(30))
    grid_code: Mapped[str | None] = mapped_column(String(14))
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())


class ApiToken(Base):
    """A bearer token for phones, scripts and display screens (``Authorization: Bearer``, Open311
    ``api_key``); stored as the SHA-256 of its value, shown once."""

    __tablename__ = "api_token"
    __table_args__ = (Index("api_token_account_idx", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(_tstz())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_tstz())


class WebSession(Base):
    """A signed-in browser: the cookie carries a random id, the table its SHA-256."""

    __tablename__ = "web_session"
    __table_args__ = (Index("web_session_account_idx", "account_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(_tstz())
    expires_at: Mapped[dt.datetime] = mapped_column(_tstz())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(_tstz())


class AuditLog(Base):
    """Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE): who did what to which account.
    ``detail`` carries no password, token or phone."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_at_idx", "at"), Index("audit_log_account_idx", "account_id"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(_tstz(), server_default=func.now())
    event: Mapped[str] = mapped_column(String(40))
    #: the account acted on or signing in (None: an unknown login)
    account_id: Mapped[int | None] = mapped_column(Integer)
    #: who did it (the admin changing an account; None: the account itself, or the CLI)
    actor_account_id: Mapped[int | None] = mapped_column(Integer)
    login: Mapped[str | None] = mapped_column(String(100))   # as typed (for failed sign-ins)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'::jsonb"))
