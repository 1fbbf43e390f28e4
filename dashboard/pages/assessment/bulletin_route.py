"""The bulletin buttons' route, ``POST /assessment/bulletin`` (a form with its CSRF token): issues
the period's 通报 for the viewer's scope — the PDF and workbook stored with their inputs, as
``gridwatch bulletin`` does — and answers the file asked for.

The dashboard does not import ``etl``: the builder (``etl.bulletins.issue_bulletin``) is passed in
by the wiring (``app.create_app``). The route needs ``view_assessment`` and ``assess`` or
``send_notices``; bad input is a bilingual 4xx naming the field (the server's error handler).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from geodata.access.capabilities import ASSESS, SEND_NOTICES, VIEW_ASSESSMENT
from geodata.assessment.periods import parse_period
from geodata.clock import business_zone
from geodata.db import Limits, open_session, request_limits

from ...api.core import ApiError
from ...context import current_context, request_principal

PATH = "/assessment/bulletin"
BULLETIN_IDLE_MS = 120_000
FORMATS = {"pdf": "application/pdf",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def install(server: Flask, settings: Any, engine: Any, issue: Callable[..., Any]) -> None:
    # a bulletin renders its PDF (charts, the choropleth) inside its transaction: seconds with no
    # statement running, so the request's idle-in-transaction limit is raised for it (the
    # statement timeout stays the request's)
    req = request_limits(settings)
    limits = Limits(req.statement_timeout_ms, max(req.idle_in_transaction_ms, BULLETIN_IDLE_MS))
    tz = business_zone(settings)

    @server.route(PATH, methods=["POST"])
    def gw_assessment_bulletin() -> Response:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            raise ApiError(400, "csrf_failed", "表单已过期，请刷新页面后重试",
                           "the form has expired; reload the page and try again", "csrf_token") from None
        p = request_principal()
        if not (p.may(VIEW_ASSESSMENT) and (p.may(ASSESS) or p.may(SEND_NOTICES))):
            raise ApiError(403, "forbidden_capability", "该账号无权签发考核通报",
                           "this account may not issue assessment bulletins", None)
        fmt = request.form.get("format", "")
        if fmt not in FORMATS:
            raise ApiError(422, "invalid_format", "格式须为 pdf 或 xlsx", "the format must be pdf or xlsx", "format")
        level_text = request.form.get("level", "3")
        if level_text not in ("2", "3"):
            raise ApiError(422, "invalid_level", "通报层级须为 2（社区）或 3（楼院）",
                           "the bulletin level must be 2 (communities) or 3 (blocks)", "level")
        period = parse_period(request.form.get("period", ""))
        ctx = current_context(settings)
        with open_session(engine, limits, ctx.scope) as s, s.begin():
            b = issue(s, ctx.scope, period, level=int(level_text), tz=tz, link_base=settings.site_base)
        data = b.pdf if fmt == "pdf" else b.xlsx
        return Response(data, mimetype=FORMATS[fmt], headers={
            "Content-Disposition": f'attachment; filename="{b.file_stem()}.{fmt}"', "Cache-Control": "no-store"})
