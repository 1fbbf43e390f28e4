"""/api/v1/notices/weekly and /api/v1/outbox: the weekly notices and the messages sent."""
from __future__ import annotations

from geodata.access.capabilities import SEND_NOTICES, VIEW_ISSUES
from geodata.workflow import notices as notices_svc
from geodata.workflow import rules as wf

from .core import ApiError, Call, Result
from .schemas.notices import NoticeIn, NoticeRun, OutboxPage, OutboxQuery
from .v1 import bp, registry


@registry.op("POST", bp, "/notices/weekly", capability=SEND_NOTICES, summary="Generate and deliver the weekly notice to every grid leader",
             tag="notices", body=NoticeIn, responses={200: NoticeRun})
def weekly(call: Call) -> Result:
    """Operators only. Default delivery: one outbox row per grid leader (SMS channel)."""
    b: NoticeIn = call.body
    return Result(200, NoticeRun, notices_svc.send_weekly_notices(
        call.session, call.actor, week_of=b.week_of, force=b.force, dry_run=b.dry_run, tz=call.tz))


@registry.op("GET", bp, "/outbox", capability=VIEW_ISSUES, summary="Outgoing messages (weekly notices)", tag="notices", query=OutboxQuery,
             responses={200: OutboxPage})
def outbox(call: Call) -> Result:
    """Operators and maintainers see every message; every other account its own (an account that
    is no official's — a planner, an assessor — has none: an empty page, not a refusal)."""
    q: OutboxQuery = call.query
    actor = call.actor
    official_id = q.official_id
    nobody = False
    if not (actor.roles & wf.DISPATCHERS):
        if official_id is not None and official_id != actor.official_id:
            raise ApiError(403, "forbidden", "只能查看发给自己的消息", "you may only read your own messages",
                           "official_id")
        official_id, nobody = actor.official_id, actor.official_id is None
    return Result(200, OutboxPage, notices_svc.list_outbox(call.session, official_id=official_id, page=q.page,
                                                           page_size=q.page_size, tz=call.tz, nobody=nobody))
