"""The shared components' callback inputs (header, live clock, outbox, URL): the value type of every
(component id, property) their server callbacks read."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..api.schemas.common import Text
from ..values import JS_INT, BigIdText, Count, Lang, Value, Version
from . import ids as app_ids


class OutboxRow(Value):
    """A row of ``components.outbox.rows``, as the outbox grid's ``selectedRows`` sends it back."""
    id: BigIdText | None = None
    created: Text(64) | None = None
    created_ts: Annotated[int, Field(ge=0, le=JS_INT)] | None = None
    recipient: Text(200) | None = None
    subject: Text(200) | None = None
    status: Text(64) | None = None
    sent: bool | None = None
    sent_at: Text(64) | None = None
    grids: Text(10_000) | None = None
    body: Text(65_536, multiline=True) | None = None   # an SMS body has line breaks


#: (component id, property) → the type of its value, for every property a shared callback reads.
VALUES: dict[tuple[str, str], Any] = {
    (app_ids.LANG, "value"): Lang,
    (app_ids.URL, "search"): Text(2048),
    (app_ids.STAMP, "data"): Text(200),
    (app_ids.OUTAGE, "data"): bool,
    (app_ids.BODY_VERSION, "data"): Version,
    (app_ids.LIVE, "n_intervals"): Count,
    (app_ids.OUTBOX_OPEN, "n_clicks"): Count,
    (app_ids.OUTBOX_CLOSE, "n_clicks"): Count,
    (app_ids.OUTBOX_GRID, "selectedRows"): Annotated[list[OutboxRow], Field(max_length=1)],  # single-row
}
