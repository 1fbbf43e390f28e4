"""Accounts: who is signed in (:class:`Principal`), sign-in with backoff and lockout, web sessions,
API tokens, role grants, and the audit log. Session in, plain data out; the caller owns the
transaction (``geodata.db.session_scope``).

- Passwords are argon2id hashes (argon2-cffi's RFC 9106 defaults); an unknown login is checked
  against a dummy hash, so it takes as long as a wrong password.
- After a failed sign-in the next attempt waits :data:`BACKOFF_S` seconds (by failures so far);
  the :data:`MAX_FAILURES`-th failure locks the account for :data:`LOCKOUT`. While waiting or
  locked no password is checked, the right one neither.
- Session ids and tokens are 256-bit random values, stored as SHA-256 digests (the value itself is
  returned once). A password change ends the account's other sessions; disabling an account ends
  its sessions and revokes its tokens.
- Every sign-in (success and failure), sign-out, token use (at most once per :data:`TOKEN_TOUCH`
  per token), password change and account change writes one ``audit_log`` row — never a password,
  a token or a phone.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, joinedload

from geodata.access import rls
from geodata.access.capabilities import ANONYMOUS, Grant, allowed, check_grant
from geodata.access.models import ACCOUNT_KINDS, Account, ApiToken, AuditLog, RoleGrant, WebSession
from geodata.access.scope import Scope
from geodata.db import BEGIN_READ, BEGIN_READ_VALUE
from geodata.errors import ConflictError, DomainError, ForbiddenError, NotFoundError
from geodata.models import Grid, Official
from geodata.workflow.identity import Actor, actor_for

UTC = dt.UTC
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
#: seconds to wait before the next attempt, by the failures so far (the 5th locks the account)
BACKOFF_S = (0, 0, 1, 2, 4)
SESSION_TTL = dt.timedelta(hours=12)
TOKEN_TOUCH = dt.timedelta(minutes=1)
MIN_PASSWORD_CHARS = 10
TOKEN_PREFIX = "gw_"
LOGIN_RE = r"^[a-z0-9][a-z0-9._-]{1,39}$"

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(UTC)


# -- who is signed in ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    """Who makes a request: nobody (``kind`` 'anonymous', a resident) or an account ('user' or
    'display'), with its grants and the workflow :class:`~geodata.workflow.identity.Actor`."""

    kind: str = "anonymous"
    account_id: int | None = None
    login: str | None = None
    display_name: str | None = None
    official_id: int | None = None
    grants: tuple[Grant, ...] = ANONYMOUS
    actor: Actor = field(default_factory=Actor.resident)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls()

    @property
    def is_anonymous(self) -> bool:
        return self.account_id is None

    @property
    def key(self) -> str:
        """Names the principal (cache keys, idempotency): ``account:<id>`` or ``anonymous``."""
        return "anonymous" if self.account_id is None else f"account:{self.account_id}"

    def may(self, capability: str, grid_code: str | None = None) -> bool:
        """THE question, asked of this principal (``capabilities.allowed``)."""
        return allowed(self.grants, capability, grid_code)

    def scope(self) -> Scope:
        """What this principal sees (``capabilities.scope_of``; a display screen holds display
        grants only, so never personal data)."""
        return self.actor.scope()


def load_principal(session: Session, account_id: int, *, as_of: dt.datetime | None = None) -> Principal | None:
    """The principal of an enabled account (None: disabled, gone, or linked to an inactive official)."""
    acc = session.get(Account, account_id)
    if acc is None or acc.disabled:
        return None
    return _principal(session, acc, as_of)


def _principal(session: Session, acc: Account, as_of: dt.datetime | None) -> Principal | None:
    grants = tuple(Grant(g.role, g.grid_code) for g in acc.grants)
    try:
        actor = actor_for(session, acc.official_id, grants=grants, account_id=acc.id, as_of=as_of)
    except ForbiddenError:   # the linked official is inactive
        return None
    return Principal(kind=acc.kind, account_id=acc.id, login=acc.login, display_name=acc.display_name,
                     official_id=acc.official_id, grants=grants, actor=actor)


# -- audit -----------------------------------------------------------------------------------------
AUDIT_EVENTS = ("sign_in", "sign_in_failed", "sign_in_refused", "locked", "sign_out", "password_changed",
                "password_set", "token_issued", "token_used", "token_revoked", "account_created",
                "account_disabled", "account_enabled", "role_granted", "role_revoked", "account_unlocked",
                "personal_data_viewed")
#: the audit events after which a long-lived stream must check its token again, and the
#: PostgreSQL channel they are announced on (geodata.maps.feed.Listener hears it)
ACCESS_LOST = frozenset({"token_revoked", "account_disabled", "role_revoked"})
ACCESS_CHANNEL = "gridwatch_access"
#: what personal data a ``personal_data_viewed`` row says was shown
PERSONAL_KINDS = ("official_phone", "reporter_contact")


def audit(session: Session, event: str, *, account_id: int | None = None, actor_account_id: int | None = None,
          login: str | None = None, detail: dict[str, Any] | None = None, now: dt.datetime | None = None) -> None:
    """One audit row (append-only). ``detail``: plain facts — never a password, token or phone."""
    if event not in AUDIT_EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    if event in ACCESS_LOST:
        # in the same transaction: open walls (and any other long-lived stream) hear it at commit
        # and check their tokens again at once, instead of asking the database every few seconds
        session.execute(select(func.pg_notify(ACCESS_CHANNEL, event)))
    session.add(AuditLog(at=_now(now), event=event, account_id=account_id, actor_account_id=actor_account_id,
                         login=(login or None) and login[:100], detail=detail or {}))
    session.flush()


def read_audit(session: Session, *, account_id: int | None = None, limit: int = 200,
               events: tuple[str, ...] | None = None, before_id: int | None = None) -> list[dict]:
    """The newest audit rows first (for an admin: ``read_audit``): of one account (acted on, or
    acting), of some ``events``, older than ``before_id`` (the next page)."""
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(max(1, min(limit, 1000)))
    if account_id is not None:
        q = q.where((AuditLog.account_id == account_id) | (AuditLog.actor_account_id == account_id))
    if events:
        unknown = [e for e in events if e not in AUDIT_EVENTS]
        if unknown:
            raise DomainError("invalid_event", f"未知的审计事件“{unknown[0]}”", f"unknown audit event '{unknown[0]}'",
                              field="event")
        q = q.where(AuditLog.event.in_(events))
    if before_id is not None:
        q = q.where(AuditLog.id < before_id)
    return [{"id": r.id, "at": r.at, "event": r.event, "account_id": r.account_id,
             "actor_account_id": r.actor_account_id, "login": r.login, "detail": r.detail}
            for r in session.scalars(q)]


# -- passwords and sign-in ---------------------------------------------------------------------------
def norm_login(login: str) -> str:
    return (login or "").strip().lower()


def check_password(password: str, *, login: str | None = None) -> None:
    """A new password: at least :data:`MIN_PASSWORD_CHARS` characters, not the login."""
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise DomainError("weak_password", f"密码至少 {MIN_PASSWORD_CHARS} 个字符",
                          f"the password needs at least {MIN_PASSWORD_CHARS} characters", field="password")
    if login is not None and norm_login(password) == norm_login(login):
        raise DomainError("weak_password", "密码不能与登录名相同", "the password must not be the login",
                          field="password")


def generate_password() -> str:
    """A random password of 16 URL-safe characters (for a new account or the demo)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class SignIn:
    """The answer to a sign-in: ``outcome`` 'ok' (with ``principal``), 'invalid' (unknown login,
    wrong password, disabled — one answer for all), 'wait' (backoff) or 'locked', until ``retry_at``."""

    outcome: str
    principal: Principal | None = None
    retry_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def authenticate(session: Session, login: str, password: str, *, now: dt.datetime | None = None) -> SignIn:
    """Check a login and password (see the module docstring for backoff and lockout); audits both
    outcomes. Commit the caller's transaction whatever the outcome: failures count."""
    now = _now(now)
    name = norm_login(login)
    acc = session.scalars(select(Account).where(Account.login == name).with_for_update()).first() if name else None
    if acc is None or acc.password_hash is None:
        with contextlib.suppress(VerificationError):   # as long as a real check
            _hasher.verify(_dummy_hash(), password or "")
        audit(session, "sign_in_failed", account_id=acc.id if acc else None, login=(login or "")[:100],
              detail={"reason": "unknown_login" if acc is None else "no_password"}, now=now)
        return SignIn("invalid")
    if acc.locked_until is not None and acc.locked_until > now:
        audit(session, "sign_in_refused", account_id=acc.id, login=acc.login, detail={"reason": "locked"}, now=now)
        return SignIn("locked", retry_at=acc.locked_until)
    wait = BACKOFF_S[min(acc.failed_attempts, len(BACKOFF_S) - 1)]
    if wait and acc.last_failed_at is not None and acc.last_failed_at + dt.timedelta(seconds=wait) > now:
        audit(session, "sign_in_refused", account_id=acc.id, login=acc.login, detail={"reason": "backoff"}, now=now)
        return SignIn("wait", retry_at=acc.last_failed_at + dt.timedelta(seconds=wait))
    try:
        _hasher.verify(acc.password_hash, password or "")
        good = True
    except (VerificationError, InvalidHashError):
        good = False
    if not good or acc.disabled:
        if good:   # a disabled account: the same answer as a wrong password, and it does not count
            audit(session, "sign_in_failed", account_id=acc.id, login=acc.login, detail={"reason": "disabled"},
                  now=now)
            return SignIn("invalid")
        acc.failed_attempts += 1
        acc.last_failed_at = now
        audit(session, "sign_in_failed", account_id=acc.id, login=acc.login,
              detail={"reason": "wrong_password", "failures": acc.failed_attempts}, now=now)
        if acc.failed_attempts >= MAX_FAILURES:
            acc.locked_until = now + LOCKOUT
            acc.failed_attempts = 0
            audit(session, "locked", account_id=acc.id, login=acc.login,
                  detail={"until": acc.locked_until.isoformat()}, now=now)
            return SignIn("locked", retry_at=acc.locked_until)
        return SignIn("invalid")
    principal = _principal(session, acc, now)
    if principal is None:
        audit(session, "sign_in_failed", account_id=acc.id, login=acc.login,
              detail={"reason": "official_inactive"}, now=now)
        return SignIn("invalid")
    acc.failed_attempts, acc.last_failed_at, acc.locked_until = 0, None, None
    if _hasher.check_needs_rehash(acc.password_hash):
        acc.password_hash = _hasher.hash(password)
    audit(session, "sign_in", account_id=acc.id, login=acc.login, now=now)
    return SignIn("ok", principal)


def authenticate_sso(session: Session, login: str | None, *, issuer: str, subject: str,
                     now: dt.datetime | None = None) -> SignIn:
    """A sign-in vouched for by the single sign-on provider ``issuer`` (its ID token checked by the
    caller): the account whose login is ``login`` — a person's account ('user'), enabled, not
    locked, its official active. Never creates one. Audited like a password sign-in, with the
    method, issuer and subject; one answer ('invalid') for every refusal but a lockout."""
    now = _now(now)
    name = norm_login(login or "")
    acc = session.scalars(select(Account).where(Account.login == name)).first() if name else None
    detail = {"method": "oidc", "issuer": issuer[:200], "subject": subject[:200]}
    if acc is None or acc.kind != "user" or acc.disabled:
        reason = "unknown_login" if acc is None else ("disabled" if acc.disabled else "not_a_person")
        audit(session, "sign_in_failed", account_id=acc.id if acc else None, login=(login or "")[:100],
              detail={**detail, "reason": reason}, now=now)
        return SignIn("invalid")
    if acc.locked_until is not None and acc.locked_until > now:
        audit(session, "sign_in_refused", account_id=acc.id, login=acc.login, detail={**detail, "reason": "locked"},
              now=now)
        return SignIn("locked", retry_at=acc.locked_until)
    principal = _principal(session, acc, now)
    if principal is None:
        audit(session, "sign_in_failed", account_id=acc.id, login=acc.login,
              detail={**detail, "reason": "official_inactive"}, now=now)
        return SignIn("invalid")
    audit(session, "sign_in", account_id=acc.id, login=acc.login, detail=detail, now=now)
    return SignIn("ok", principal)


# -- web sessions ----------------------------------------------------------------------------------
def start_session(session: Session, account_id: int, *, now: dt.datetime | None = None,
                  ttl: dt.timedelta = SESSION_TTL) -> str:
    """A new web session for a signed-in account: the raw id for the cookie (stored hashed)."""
    now = _now(now)
    raw = secrets.token_urlsafe(32)
    session.add(WebSession(id_hash=_digest(raw), account_id=account_id, created_at=now, expires_at=now + ttl))
    session.flush()
    return raw


def verify_session(session: Session, raw: str | None, *, now: dt.datetime | None = None) -> Principal | None:
    """The principal of a live session id (None: unknown, expired, ended, or the account disabled)."""
    if not raw or len(raw) > 100:
        return None
    now = _now(now)
    ws = session.get(WebSession, _digest(raw))
    if ws is None or ws.revoked_at is not None or ws.expires_at <= now:
        return None
    return load_principal(session, ws.account_id, as_of=now)


def end_session(session: Session, raw: str | None, *, now: dt.datetime | None = None) -> None:
    """Sign-out: the session ends (an unknown id: nothing to do)."""
    if not raw or len(raw) > 100:
        return
    now = _now(now)
    ws = session.get(WebSession, _digest(raw))
    if ws is None or ws.revoked_at is not None:
        return
    ws.revoked_at = now
    audit(session, "sign_out", account_id=ws.account_id, now=now)


def _end_sessions(session: Session, account_id: int, now: dt.datetime, keep: str | None = None) -> int:
    q = update(WebSession).where(WebSession.account_id == account_id, WebSession.revoked_at.is_(None))
    if keep:
        q = q.where(WebSession.id_hash != _digest(keep))
    return session.execute(q.values(revoked_at=now)).rowcount or 0


def change_password(session: Session, account_id: int, current: str, new: str, *, keep_session: str | None = None,
                    now: dt.datetime | None = None) -> None:
    """The account changes its own password (the current one checked): every other session of the
    account ends (``keep_session``, the one making the change, stays)."""
    now = _now(now)
    acc = _get(session, account_id)
    try:
        _hasher.verify(acc.password_hash or _dummy_hash(), current or "")
    except (VerificationError, InvalidHashError):
        raise DomainError("wrong_password", "当前密码不正确", "the current password is wrong",
                          field="current") from None
    if new == current:
        raise DomainError("same_password", "新密码不能与当前密码相同", "the new password must differ from the current one",
                          field="password")
    _set_password(session, acc, new, default=False, now=now)
    ended = _end_sessions(session, acc.id, now, keep=keep_session)
    audit(session, "password_changed", account_id=acc.id, login=acc.login, detail={"sessions_ended": ended}, now=now)


def set_password(session: Session, account_id: int, new: str, *, default: bool = False,
                 actor_account_id: int | None = None, now: dt.datetime | None = None) -> None:
    """An administrator (or the CLI) sets an account's password: every session ends, a lockout is
    lifted. ``default``: a password nobody chose (generated), which production refuses."""
    now = _now(now)
    acc = _get(session, account_id)
    _set_password(session, acc, new, default=default, now=now)
    acc.failed_attempts, acc.last_failed_at, acc.locked_until = 0, None, None
    ended = _end_sessions(session, acc.id, now)
    audit(session, "password_set", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
          detail={"sessions_ended": ended, "default": default}, now=now)


def _set_password(session: Session, acc: Account, new: str, *, default: bool, now: dt.datetime) -> None:
    check_password(new, login=acc.login)
    acc.password_hash = _hasher.hash(new)
    acc.password_is_default = default
    if not default:
        acc.demo = False   # a password someone chose: no longer the demo's
    acc.password_changed_at = now
    session.flush()


# -- API tokens ------------------------------------------------------------------------------------
def issue_token(session: Session, account_id: int, label: str = "", *, actor_account_id: int | None = None,
                now: dt.datetime | None = None) -> str:
    """A new API token for the account: its value, returned this once (stored hashed)."""
    now = _now(now)
    acc = _get(session, account_id)
    if acc.disabled:
        raise ConflictError("account_disabled", "账号已停用", "the account is disabled", field="login")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tok = ApiToken(account_id=acc.id, token_hash=_digest(raw), label=(label or "")[:100], created_at=now)
    session.add(tok)
    session.flush()
    audit(session, "token_issued", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
          detail={"token_id": tok.id, "label": tok.label}, now=now)
    return raw


def verify_token(session: Session, raw: str | None, *, now: dt.datetime | None = None) -> Principal | None:
    """The principal of a live token (None: unknown, revoked, or the account disabled). Notes the
    use (``last_used_at`` and one audit row) at most once per :data:`TOKEN_TOUCH`."""
    found = _verify_token(session, raw, _now(now))
    return None if found is None else found[0]


def _verify_token(session: Session, raw: str | None, now: dt.datetime) -> tuple[Principal, dt.datetime] | None:
    """(the principal, when its use is next to be noted) of a live token."""
    if not raw or len(raw) > 200:
        return None
    # one round trip for the token, its account and the account's grants (every API call asks)
    found = session.execute(select(ApiToken, Account).join(Account, Account.id == ApiToken.account_id)
                            .where(ApiToken.token_hash == _digest(raw))
                            .options(joinedload(Account.grants))).unique().first()
    if found is None:
        return None
    tok, acc = found
    if tok.revoked_at is not None or acc.disabled:
        return None
    principal = _principal(session, acc, now)
    if principal is None:
        return None
    if tok.last_used_at is None or tok.last_used_at + TOKEN_TOUCH <= now:
        tok.last_used_at = now
        audit(session, "token_used", account_id=tok.account_id, detail={"token_id": tok.id}, now=now)
    return principal, tok.last_used_at + TOKEN_TOUCH


#: The number that moves whenever anything a token's principal is built from changes (the token,
#: its account, the account's grants, the official and their assignments; migration 0029's
#: triggers, in the writer's transaction). Equal numbers: nothing changed but time.
_PRINCIPAL_EPOCH = "(SELECT n FROM principal_epoch)"
#: At a full read: the number, and when the token's official's assignments next begin or end after
#: ``:now`` (NULL: never) — the principal changes then without any write.
_PRINCIPAL_READ = """SELECT (SELECT n FROM principal_epoch),
   (SELECT min(v.t) FROM api_token t JOIN account a ON a.id = t.account_id
      JOIN grid_assignment x ON x.official_id = a.official_id
      CROSS JOIN LATERAL (VALUES (x.valid_from), (x.valid_to)) AS v(t)
    WHERE t.token_hash = :token_hash AND v.t > :now)"""
#: how long a token's principal is kept between full reads (each use still checks it, see TokenCache)
TOKEN_CACHE_S = 60.0


@dataclass
class _KnownToken:
    principal: Principal
    epoch: int             # _PRINCIPAL_EPOCH when the principal was read
    until: dt.datetime | None  # when its official's assignments next begin or end (None: never)
    touch_due: dt.datetime  # when the next use is to be noted (verify_token's TOKEN_TOUCH)
    read_at: float          # time.monotonic() of the full read
    confirmed_at: float     # time.monotonic() of the last use that checked it


class TokenCache:
    """API tokens' principals kept in-process, keyed by the token's digest, checked on every use.

    A use of a known token costs one statement, which both sets the principal's scope on the
    transaction (``geodata.access.rls``, as the request would next) and reads
    :data:`_PRINCIPAL_EPOCH`: unchanged, the kept principal answers; anything changed (the token
    revoked, the account disabled, a grant, the official's assignments) or unknown, the token is
    read in full (:func:`verify_token`) — so a revoked token or a disabled account is refused at its
    very next use, as without the cache. So is a use after one of the official's assignments
    began or ended (no write says so: the kept principal's ``until``). The use is still noted once per
    :data:`TOKEN_TOUCH` (a use falling due is a full read)."""

    def __init__(self, max_age_s: float = TOKEN_CACHE_S, size: int = 4096) -> None:
        self._known: dict[str, _KnownToken] = {}
        self._lock = threading.Lock()
        self.max_age_s, self.size = max_age_s, size

    def recent(self, raw: str | None, within_s: float) -> Principal | None:
        """The principal of a token a use confirmed in the last ``within_s`` seconds, without asking
        the database (for deciding early what a caller may do; the request's transaction still
        checks the token through :meth:`verify`)."""
        if not raw or len(raw) > 200:
            return None
        with self._lock:
            hit = self._known.get(_digest(raw))
        if hit is None or time.monotonic() - hit.confirmed_at > within_s:
            return None
        return hit.principal

    def verify(self, session: Session, raw: str | None, *, now: dt.datetime | None = None) -> Principal | None:
        """:func:`verify_token`, answered by a kept principal when nothing it was built from has
        changed. On an answer the transaction has the principal's scope set (as ``rls.set_scope``)."""
        if not raw or len(raw) > 200:
            return None
        now = _now(now)
        digest = _digest(raw)
        with self._lock:
            hit = self._known.get(digest)
        clock = time.monotonic()
        if (hit is not None and hit.touch_due > now and clock - hit.read_at < self.max_age_s
                and (hit.until is None or now < hit.until)):
            scope = hit.principal.scope()
            # best, the transaction's first statement: its settings (limits, this scope) and the read
            rls.remember(session, scope)
            session.info[BEGIN_READ] = (_PRINCIPAL_EPOCH, {})
            session.connection()
            if session.info.pop(BEGIN_READ, None) is None:   # read as the transaction began
                seen = session.info.pop(BEGIN_READ_VALUE, None)
            else:                                          # begun before: one statement of its own
                values = rls.scope_settings(scope)
                seen = session.execute(text(f"SELECT {rls.set_config_exprs(list(values))}, {_PRINCIPAL_EPOCH}"),
                                       rls.set_config_params(values)).one()[-1]
                rls.remember(session, scope, applied=True)
            if seen == hit.epoch:
                hit.confirmed_at = clock
                return hit.principal
            # changed: the kept principal's scope does not stay on the transaction (no grid, no one)
            nothing = Scope(roots=frozenset())
            rls.apply(session.connection(), nothing)
            rls.remember(session, nothing, applied=True)
        epoch, until = session.execute(text(_PRINCIPAL_READ), {"token_hash": digest, "now": now}).one()
        found = _verify_token(session, raw, now)
        with self._lock:
            if found is None:
                self._known.pop(digest, None)
            else:
                if len(self._known) >= self.size:
                    self._known.clear()
                # read before the token: had anything changed in between, the next use reads again
                self._known[digest] = _KnownToken(found[0], epoch, until, found[1], clock, clock)
        return None if found is None else found[0]


def token_allows(session: Session, raw: str | None, capability: str) -> bool:
    """Whether a token is still live (not revoked, its account enabled) and grants ``capability``:
    one small query, for a long-lived stream that asks again every few seconds (no principal is
    built, no use is noted — :func:`verify_token` did both when the stream opened)."""
    if not raw or len(raw) > 200:
        return False
    rows = session.execute(select(RoleGrant.role, RoleGrant.grid_code)
                           .join(ApiToken, ApiToken.account_id == RoleGrant.account_id)
                           .join(Account, Account.id == ApiToken.account_id)
                           .where(ApiToken.token_hash == _digest(raw), ApiToken.revoked_at.is_(None),
                                  Account.disabled.is_(False))).all()
    return allowed([Grant(r.role, r.grid_code) for r in rows], capability)


def revoke_token(session: Session, token_id: int, *, actor_account_id: int | None = None,
                 now: dt.datetime | None = None, account_id: int | None = None) -> None:
    """Revoke a token (``account_id``: only if it is that account's)."""
    now = _now(now)
    tok = session.get(ApiToken, token_id)
    if tok is None or (account_id is not None and tok.account_id != account_id):
        raise NotFoundError("not_found", f"令牌 {token_id} 不存在", f"no token {token_id}", field="token_id")
    if tok.revoked_at is None:
        tok.revoked_at = now
        audit(session, "token_revoked", account_id=tok.account_id, actor_account_id=actor_account_id,
              detail={"token_id": tok.id}, now=now)


def revoke_token_value(session: Session, raw: str, *, now: dt.datetime | None = None) -> bool:
    """Revoke the token whose value is ``raw`` (a device signing itself out); False when no live
    token has that value. Audited as ``token_revoked`` by its own account."""
    tok = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(raw or ""))).first()
    if tok is None or tok.revoked_at is not None:
        return False
    revoke_token(session, tok.id, actor_account_id=tok.account_id, now=now)
    return True


def list_tokens(session: Session, account_id: int) -> list[dict]:
    rows = session.scalars(select(ApiToken).where(ApiToken.account_id == account_id).order_by(ApiToken.id))
    return [{"id": t.id, "label": t.label, "created_at": t.created_at, "last_used_at": t.last_used_at,
             "revoked_at": t.revoked_at} for t in rows]


# -- accounts and grants ---------------------------------------------------------------------------
def _get(session: Session, account_id: int) -> Account:
    acc = session.get(Account, account_id)
    if acc is None:
        raise NotFoundError("unknown_account", f"账号 {account_id} 不存在", f"no account {account_id}", field="login")
    return acc


def account_id(session: Session, login: str) -> int:
    """The id of the account with ``login`` (:class:`~geodata.errors.NotFoundError` if none)."""
    aid = session.scalar(select(Account.id).where(Account.login == norm_login(login)))
    if aid is None:
        raise NotFoundError("unknown_account", f"账号“{login}”不存在", f"no account '{login}'", field="login")
    return aid


def create_account(session: Session, login: str, *, display_name: str | None = None, kind: str = "user",
                   official_id: int | None = None, password: str | None = None, password_is_default: bool = False,
                   demo: bool = False, grants: tuple[tuple[str, str | None], ...] = (),
                   actor_account_id: int | None = None, now: dt.datetime | None = None,
                   existing_grids: bool = False) -> int:
    """A new account with its grants ((role, grid code or None) pairs, each checked by
    ``capabilities.check_grant``; ``existing_grids``: each grid must also be a current grid — the
    admin page; the CLI may grant before the grids are imported). Without ``password`` it cannot
    sign in (tokens only)."""
    import re

    now = _now(now)
    name = norm_login(login)
    if not re.fullmatch(LOGIN_RE, name):
        raise DomainError("invalid_login", "登录名须为 2–40 个小写字母、数字或 . _ -（以字母或数字开头）",
                          "a login is 2–40 lowercase letters, digits or . _ - (starting with a letter or digit)",
                          field="login")
    if kind not in ACCOUNT_KINDS:
        raise DomainError("invalid_kind", "账号类型须为 user 或 display", "kind must be user or display", field="kind")
    checked = [_check_grant(kind, r, g, session if existing_grids else None) for r, g in grants]
    if session.scalar(select(Account.id).where(Account.login == name)) is not None:
        raise ConflictError("login_taken", f"登录名“{name}”已存在", f"the login '{name}' exists", field="login")
    if official_id is not None:
        off = session.get(Official, official_id)
        if off is None:
            raise NotFoundError("unknown_official", f"工作人员编号 {official_id} 不存在",
                                f"no official {official_id}", field="official")
        if session.scalar(select(Account.id).where(Account.official_id == official_id)) is not None:
            raise ConflictError("official_has_account", f"工作人员 {official_id} 已有账号",
                                f"official {official_id} already has an account", field="official")
        display_name = display_name or off.name
    acc = Account(login=name, display_name=(display_name or name)[:100], kind=kind, official_id=official_id,
                  demo=demo, created_at=now)
    session.add(acc)
    session.flush()
    if password is not None:
        _set_password(session, acc, password, default=password_is_default, now=now)
        acc.demo = demo
    for g in checked:
        session.add(RoleGrant(account_id=acc.id, role=g.role, grid_code=g.grid_code, created_at=now))
    session.flush()
    session.refresh(acc)
    audit(session, "account_created", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
          detail={"kind": kind, "official_id": official_id, "demo": demo,
                  "grants": [[g.role, g.grid_code] for g in checked]}, now=now)
    return acc.id


def _check_grant(kind: str, role: str, grid_code: str | None, session: Session | None = None) -> Grant:
    """A grant ``kind`` of account may hold; with ``session``, its grid must also be a current grid."""
    g = check_grant(role, grid_code)
    if session is not None and g.grid_code is not None and session.scalar(
            select(Grid.code).where(Grid.code == g.grid_code, Grid.valid_to.is_(None)).limit(1)) is None:
        raise NotFoundError("unknown_grid", f"网格“{g.grid_code}”不存在（须为现行网格的编码）",
                            f"no grid '{g.grid_code}' (the code of a current grid is needed)", field="grid")
    if (kind == "display") != (role == "display"):
        raise DomainError("display_role", "显示屏账号只能授予“大屏显示”角色，该角色也只能授予显示屏",
                          "a display screen holds the display role only, and only a display screen holds it",
                          field="role")
    return g


def grant_role(session: Session, account_id: int, role: str, grid_code: str | None = None, *,
               actor_account_id: int | None = None, now: dt.datetime | None = None,
               existing_grids: bool = False) -> None:
    """Grant ``role`` on ``grid_code`` (``existing_grids``: which must be a current grid's code)."""
    acc = _get(session, account_id)
    g = _check_grant(acc.kind, role, grid_code, session if existing_grids else None)
    if any(x.role == g.role and x.grid_code == g.grid_code for x in acc.grants):
        return
    acc.grants.append(RoleGrant(account_id=acc.id, role=g.role, grid_code=g.grid_code, created_at=_now(now)))
    session.flush()
    audit(session, "role_granted", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
          detail={"role": g.role, "grid_code": g.grid_code}, now=now)


def revoke_role(session: Session, account_id: int, role: str, grid_code: str | None = None, *,
                actor_account_id: int | None = None, now: dt.datetime | None = None) -> None:
    acc = _get(session, account_id)
    gone = [x for x in acc.grants if x.role == role and x.grid_code == grid_code]
    for x in gone:
        acc.grants.remove(x)
    session.flush()
    if gone:
        audit(session, "role_revoked", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
              detail={"role": role, "grid_code": grid_code}, now=now)


def set_disabled(session: Session, account_id: int, disabled: bool = True, *, actor_account_id: int | None = None,
                 now: dt.datetime | None = None) -> None:
    """Disable (sessions end, tokens are revoked) or enable an account."""
    now = _now(now)
    acc = _get(session, account_id)
    if disabled and actor_account_id is not None and actor_account_id == acc.id:
        raise ConflictError("own_account", "不能停用自己的账号", "you cannot disable your own account", field="login")
    if acc.disabled == disabled:
        return
    acc.disabled = disabled
    detail: dict[str, Any] = {}
    if disabled:
        detail["sessions_ended"] = _end_sessions(session, acc.id, now)
        detail["tokens_revoked"] = session.execute(
            update(ApiToken).where(ApiToken.account_id == acc.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)).rowcount or 0
    session.flush()
    audit(session, "account_disabled" if disabled else "account_enabled", account_id=acc.id,
          actor_account_id=actor_account_id, login=acc.login, detail=detail, now=now)


def _account_dict(a: Account, last_sign_in: dt.datetime | None) -> dict:
    return {"id": a.id, "login": a.login, "display_name": a.display_name, "kind": a.kind,
            "official_id": a.official_id, "disabled": a.disabled, "demo": a.demo,
            "password_is_default": a.password_is_default, "has_password": a.password_hash is not None,
            "locked_until": a.locked_until, "failed_attempts": a.failed_attempts,
            "grants": [(g.role, g.grid_code) for g in a.grants], "last_sign_in": last_sign_in,
            "created_at": a.created_at}


def _last_sign_ins(session: Session, account_ids: list[int] | None = None) -> dict[int, dt.datetime]:
    q = select(AuditLog.account_id, func.max(AuditLog.at)).where(AuditLog.event == "sign_in")
    if account_ids is not None:
        q = q.where(AuditLog.account_id.in_(account_ids))
    return dict(session.execute(q.group_by(AuditLog.account_id)).all())


def list_accounts(session: Session) -> list[dict]:
    """Every account with its grants and last sign-in (for the CLI and the admin page); no secrets."""
    last = _last_sign_ins(session)
    return [_account_dict(a, last.get(a.id)) for a in session.scalars(select(Account).order_by(Account.login))]


def get_account(session: Session, account_id: int) -> dict:
    """One account as :func:`list_accounts` gives it, with its API tokens (no secrets) and the
    official it is linked to (:class:`~geodata.errors.NotFoundError` if none)."""
    acc = _get(session, account_id)
    out = _account_dict(acc, _last_sign_ins(session, [acc.id]).get(acc.id))
    out["tokens"] = list_tokens(session, acc.id)
    out["official_name"] = session.scalar(select(Official.name).where(Official.id == acc.official_id)) \
        if acc.official_id is not None else None
    return out


def unlock(session: Session, account_id: int, *, actor_account_id: int | None = None,
           now: dt.datetime | None = None) -> bool:
    """Lift a lockout and forget the failures so far (False: nothing to lift); audited."""
    now = _now(now)
    acc = _get(session, account_id)
    locked = acc.locked_until is not None and acc.locked_until > now
    if not locked and not acc.failed_attempts:
        return False
    acc.failed_attempts, acc.last_failed_at, acc.locked_until = 0, None, None
    session.flush()
    audit(session, "account_unlocked", account_id=acc.id, actor_account_id=actor_account_id, login=acc.login,
          detail={"was_locked": locked}, now=now)
    return True


def reset_password(session: Session, account_id: int, *, actor_account_id: int | None = None,
                   now: dt.datetime | None = None) -> str:
    """An administrator resets an account's password: a generated one, returned this once (a
    default password: production refuses to start until its holder changes it); sessions end, a
    lockout is lifted (:func:`set_password`)."""
    pw = generate_password()
    set_password(session, account_id, pw, default=True, actor_account_id=actor_account_id, now=now)
    return pw


def audit_personal_view(session: Session, account_id: int | None, kind: str, *, grid_code: str | None = None,
                        record_id: int | None = None, count: int = 1, via: str = "",
                        now: dt.datetime | None = None) -> None:
    """One ``personal_data_viewed`` row for a request that showed personal data (officials'
    phones, a reporter's contact) to ``account_id``: what kind, which grid or record, how many —
    one insert per request, never the data itself."""
    if kind not in PERSONAL_KINDS:
        raise ValueError(f"unknown personal data kind {kind!r}")
    detail: dict[str, Any] = {"kind": kind, "count": int(count)}
    if grid_code is not None:
        detail["grid_code"] = grid_code
    if record_id is not None:
        detail["record_id"] = int(record_id)
    if via:
        detail["via"] = via[:60]
    audit(session, "personal_data_viewed", account_id=account_id, actor_account_id=account_id, detail=detail,
          now=now)


def unsafe_accounts(session: Session) -> list[str]:
    """Logins of enabled accounts that can sign in with a demo or default (generated) password:
    a production server refuses to start while there is one."""
    return list(session.scalars(select(Account.login).where(
        Account.disabled.is_(False), Account.password_hash.is_not(None),
        (Account.demo.is_(True)) | (Account.password_is_default.is_(True))).order_by(Account.login)))

