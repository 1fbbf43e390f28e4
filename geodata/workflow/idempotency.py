"""Idempotency keys: the first successful answer to a key is stored with its writes and replayed."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.errors import DomainError
from geodata.models import IdempotencyKey


def request_hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def idempotency_scope(operation: str, path: str, key: str, official_id: int | None, req_hash: str) -> str:
    """The stored key (``idempotency_key.key``) of a client's ``Idempotency-Key``: keys belong to
    their caller, so two callers who pick the same key never meet.

    - an official: (official id, operation, path, key) — a retry replays the first answer and the
      same key with a different request is refused (422), which catches a client's key bug;
    - an anonymous caller (resident, Open311 client) has no identity to scope by, so the request
      itself is part of the scope: (operation, path, key, request hash — body and photos). Two
      residents who use the same key for different reports both get their report; only a
      byte-identical request (same text, point, name, phone and photos) replays, and that is the
      same report. The remote address is deliberately not part of it: a phone's retry often comes
      from another address (Wi-Fi ↔ mobile data, carrier NAT), which would turn the retry into the
      duplicate the key exists to prevent, and behind a reverse proxy every caller shares one.
    The price: an anonymous client reusing a key for a different request is not told (it simply
    makes a new one)."""
    who = f"official:{official_id}" if official_id is not None else f"anon:{req_hash}"
    return f"{operation}:" + hashlib.sha256(f"{who}\x1f{path}\x1f{key}".encode()).hexdigest()


def idempotent(session: Session, key: str, req_hash: str, compute: Callable[[], tuple[int, dict]]
               ) -> tuple[int, dict, bool]:
    """Run ``compute`` once per ``key``: the first successful answer (status, JSON body) is stored in
    the same transaction as its writes; a retry with the same key and request returns it (replayed
    = True); the same key with a different request is refused (422). A transaction-scoped advisory
    lock serialises concurrent retries of one key. Failed requests are not stored."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 731))"), {"k": key})
    row = session.get(IdempotencyKey, key)
    if row is not None:
        if row.request_hash != req_hash:
            raise DomainError("idempotency_key_reused", "该 Idempotency-Key 已用于另一个不同的请求",
                               "this Idempotency-Key was already used for a different request",
                               field="Idempotency-Key")
        return row.status_code, row.response, True
    status, body = compute()
    session.add(IdempotencyKey(key=key, request_hash=req_hash, status_code=status, response=body))
    session.flush()
    return status, body, False
