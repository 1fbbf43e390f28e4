"""Weekly notices and the outbox."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from .common import Id32, In, Out


class NoticeIn(In):
    """Generate the weekly notices (command centre's weekly SMS) for every grid leader."""

    week_of: dt.date | None = Field(None, description="any day of the week (Mon–Sun, in the business time zone); "
                                                      "default: this week")
    force: bool = Field(False, description="send again to officials already notified this week")
    dry_run: bool = Field(False, description="build the texts without delivering them")


class OutboxQuery(In):
    official_id: Id32 | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50


class NoticeItem(Out):
    number: str
    title: str
    status: str
    due_at: dt.datetime | None
    overdue: bool
    days_overdue: int


class NoticeOut(Out):
    official_id: int
    official_name: str
    grid_codes: list[str]
    week_start: dt.date
    week_end: dt.date
    subject: str
    body: str
    open_count: int
    overdue_count: int
    new_count: int
    closed_count: int
    priorities: list[NoticeItem]
    delivered: bool
    outbox_id: int | None


class NoticeRun(Out):
    week_start: dt.date
    week_end: dt.date
    generated: int
    delivered: int
    skipped: int
    notices: list[NoticeOut]


class OutboxRow(Out):
    id: int
    channel: str
    official_id: int | None
    official_name: str | None
    subject: str
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


class OutboxPage(Out):
    items: list[OutboxRow]
    total: int
    page: int
    page_size: int
    pages: int
