"""The reporter's own 综合评价: who reported an issue may evaluate it — proven by the key handed to
them with their report (stored as a SHA-256), or by the phone number they gave (compared in
PostgreSQL by ``gw_reporter_phone_matches``, which answers yes or no and never shows the number).
Anyone else evaluates only with ``evaluate_on_behalf`` (the command centre, on the resident's
behalf); a stranger never."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.models import IssueEvaluationKey
from geodata.workflow.identity import Actor


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, issue_id: int) -> str:
    """A new evaluation key for ``issue_id`` (returned once; only its hash is kept)."""
    key = secrets.token_urlsafe(24)
    session.add(IssueEvaluationKey(issue_id=issue_id, key_hash=_digest(key)))
    return key


def reporter_actor(session: Session, issue_id: int, *, key: str | None = None,
                   phone: str | None = None) -> Actor | None:
    """The issue's reporter as an actor (a resident who may evaluate this one issue) when ``key``
    or ``phone`` proves it; None otherwise."""
    if key:
        stored = session.scalar(select(IssueEvaluationKey.key_hash).where(IssueEvaluationKey.issue_id == issue_id))
        if stored is not None and hmac.compare_digest(stored, _digest(key)):
            return Actor.reporter(issue_id)
    if phone and session.scalar(select(func.gw_reporter_phone_matches(issue_id, phone))):
        return Actor.reporter(issue_id)
    return None
