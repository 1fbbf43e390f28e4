"""/api/v1/diary: 民情日记 — record, list, and turn a finding into a report."""
from __future__ import annotations

from geodata.access.capabilities import REPORT, VIEW_ISSUES
from geodata.workflow.diary import diary_to_report, list_diary, record_diary

from .core import Call, Result, json_ready
from .idempotency import run_idempotent
from .schemas.common import form_schema
from .schemas.diary import DiaryIn, DiaryOut, DiaryPage, DiaryQuery, DiaryReportIn
from .schemas.issues import IssueOut
from .v1 import ID, bp, registry


@registry.op("POST", bp, "/diary", capability=REPORT, summary="民情日记 Record a patrol or visit", tag="diary", body=DiaryIn,
             responses={201: DiaryOut})
def diary_create(call: Call) -> Result:
    b: DiaryIn = call.body
    out = record_diary(call.session, call.actor, kind=b.kind, started_at=b.started_at, ended_at=b.ended_at,
                       track=b.track.model_dump() if b.track else None, crs=b.crs, households=b.households,
                       shops=b.shops, firms=b.firms, findings=b.findings, grid_code=b.grid_code, tz=call.tz)
    return Result(201, DiaryOut, out)


@registry.op("GET", bp, "/diary", capability=VIEW_ISSUES, summary="List patrol diary entries", tag="diary", query=DiaryQuery,
             responses={200: DiaryPage})
def diary_list(call: Call) -> Result:
    q: DiaryQuery = call.query
    return Result(200, DiaryPage, list_diary(call.session, call.scope, grid=q.grid,
                                             official_id=q.official_id, date_from=q.from_, date_to=q.to,
                                             page=q.page, page_size=q.page_size, tz=call.tz))


@registry.op("POST", bp, "/diary/<int:diary_id>/report", capability=REPORT, summary="Turn a diary finding into a report",
             tag="diary", body=DiaryReportIn, media=("application/json", "multipart/form-data"), idempotent=True,
             responses={201: IssueOut}, path_params={"diary_id": ID}, form_schema=form_schema(DiaryReportIn))
def diary_report(call: Call) -> Result:
    b: DiaryReportIn = call.body

    def compute():
        out = diary_to_report(call.session, call.path["diary_id"], call.actor, kind=b.kind, domain=b.domain,
                              title=b.title, description=b.description, lon=b.lon, lat=b.lat, crs=b.crs,
                              address=b.address, photos=call.photos, photo_store=call.state.photos, tz=call.tz)
        return 201, json_ready(IssueOut, out)

    return run_idempotent(call, "diary_report", compute)
