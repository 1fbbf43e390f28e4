"""Reference data: domains with their deadlines, and the vocabulary's labels."""
from __future__ import annotations

from .common import Out
from .issues import DomainRef


class DomainOut(DomainRef):
    sign_hours: int
    handle_days: int
    sentiment_handle_days: int


class Label(Out):
    code: str
    zh: str
    en: str


class MetaOut(Out):
    domains: list[DomainOut]
    kinds: list[Label]
    sources: list[str]
    statuses: list[Label]
    actions: list[Label]
    roles: list[Label]
    crs: list[str]
    max_photo_bytes: int
    max_photos: int
    timezone: str
