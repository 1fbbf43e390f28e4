"""/api/v1/diary: 民情日记 — record, list, and turn a finding into a report."""
from __future__ import annotations

from geodata.access.capabilities import REPORT, VIEW_ISSUES
from geodata.workflow.diary import append_track, diary_to_report, end_diary, list_diary, record_diary

from .core import Call, Result, json_ready
from .idempotency import run_idempotent
from .schemas.common import form_schema
from .schemas.device import DiaryEndIn, TrackPointsIn
from .schemas.diary import DiaryIn, DiaryOut, DiaryPage, DiaryQuery, DiaryReportIn
from .schemas.issues import IssueOut
from .v1 import ID, bp, registry


@registry.op("POST", bp, "/diary", capability=REPORT, summary="民情日记 Record a patrol or visit", tag="diary", body=DiaryIn,
             idempotent=True, responses={201: DiaryOut})
def diary_create(call: Call) -> Result:
    """Without ``ended_at`` the entry stays open: the phone appends its track (``…/track``) and ends it
    (``…/end``). With an ``Idempotency-Key`` a retried entry is recorded once."""
    b: DiaryIn = call.body

    def compute():
        out = record_diary(call.session, call.actor, kind=b.kind, started_at=b.started_at, ended_at=b.ended_at,
                           track=b.track.model_dump() if b.track else None, crs=b.crs, households=b.households,
                           shops=b.shops, firms=b.firms, findings=b.findings, grid_code=b.grid_code, tz=call.tz)
        return 201, json_ready(DiaryOut, out)

    return run_idempotent(call, "diary", compute)


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


@registry.op("POST", bp, "/diary/<int:diary_id>/track", capability=REPORT, summary="Append a batch of GPS points to "
             "an open patrol's track (the phone app, as it goes)", tag="diary", body=TrackPointsIn,
             idempotent=True, responses={200: DiaryOut}, path_params={"diary_id": ID})
def diary_track(call: Call) -> Result:
    """Only the diary's author, only while it has not ended; with an ``Idempotency-Key`` a retried
    batch is not appended twice."""
    b: TrackPointsIn = call.body

    def compute():
        out = append_track(call.session, call.path["diary_id"], call.actor, b.points, crs=b.crs, tz=call.tz)
        return 200, json_ready(DiaryOut, out)

    return run_idempotent(call, "diary_track", compute)


@registry.op("POST", bp, "/diary/<int:diary_id>/end", capability=REPORT, summary="End an open patrol or visit: "
             "end time, visits by kind, findings", tag="diary", body=DiaryEndIn, idempotent=True,
             responses={200: DiaryOut}, path_params={"diary_id": ID})
def diary_end(call: Call) -> Result:
    b: DiaryEndIn = call.body

    def compute():
        out = end_diary(call.session, call.path["diary_id"], call.actor, ended_at=b.ended_at,
                        households=b.households, shops=b.shops, firms=b.firms, findings=b.findings, tz=call.tz)
        return 200, json_ready(DiaryOut, out)

    return run_idempotent(call, "diary_end", compute)
