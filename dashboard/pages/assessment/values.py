"""The assessment page's callback inputs: the value type of every (component id, property) its
server callbacks read (:mod:`dashboard.guard` checks each request against them). The 定性 score and
comment are free text here and checked by ``geodata.assessment.views.enter_qualitative``, so a
bad score is a bilingual message in the form, not a refused request."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from geodata.assessment.periods import KINDS
from geodata.assessment.registry import INDICATORS

from ...api.schemas.common import Finite, Text
from ...values import Count, GridClick, PickedDay, Value, Version
from . import ids, layout, presenters

#: a period's key: 2026-10, 2026Q3, 2026 (the dropdown's values)
PeriodKey = Annotated[str, Field(pattern=r"^[0-9]{4}(-[0-9]{2}|Q[1-4])?$")]
#: any period's key, custom days too (2026-10-01..2026-10-15)
AnyPeriodKey = Annotated[str, Field(pattern=r"^[0-9]{4}(-[0-9]{2}|Q[1-4]|-[0-9]{2}-[0-9]{2}\.\.[0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
Level = Literal[presenters.LEVELS]  # type: ignore[valid-type]
#: a subject: a grid code, or an official's id
SubjectKey = Annotated[str, Field(pattern=presenters.SUBJECT_PATTERN)]


class Chosen(Value):
    """``callbacks.chosen_outputs``' store: the period's key and the level."""
    period: AnyPeriodKey
    level: Level


class RankCell(Value):
    """dash-ag-grid's ``cellClicked`` on the ranking (row ids are subject keys)."""
    value: bool | int | Finite | Text(200) | None = None
    colId: Text(100) | None = None
    rowIndex: Count | None = None
    rowId: SubjectKey | None = None
    timestamp: Finite | None = None


class OpenTrace(Value):
    """The URL's number to open (``callbacks.url_outputs``)."""
    subject: SubjectKey | None = None       # None: the level's total (a KPI tile)
    indicator: Literal[tuple(INDICATORS)]  # type: ignore[valid-type]


VALUES: dict[tuple[str, str], Any] = {
    (ids.URL, "search"): Text(2048),
    (ids.OPEN_TRACE, "data"): OpenTrace,
    (ids.KIND, "value"): Literal[KINDS],  # type: ignore[valid-type]
    (ids.PERIOD, "value"): PeriodKey,
    (ids.RANGE, "start_date"): PickedDay,
    (ids.RANGE, "end_date"): PickedDay,
    (ids.LEVEL, "value"): Level,
    (ids.CHOSEN, "data"): Chosen,
    (ids.Q_VERSION, "data"): Version,
    (ids.TREND_IND, "value"): Literal[layout.TREND_INDICATORS],  # type: ignore[valid-type]
    (ids.SUBJECT, "data"): SubjectKey,
    (ids.RANKING, "cellClicked"): RankCell,
    (ids.TRACE_CLOSE, "n_clicks"): Count,
    (ids.Q_SAVE, "n_clicks"): Count,
    (ids.Q_SUBJECT, "value"): SubjectKey,
    (ids.Q_SCORE, "value"): Text(20),
    (ids.Q_COMMENT, "value"): Text(500, multiline=True),
    (ids.EXPORT_XLSX, "n_clicks"): Count,
    (ids.MAP_L2, "clickData"): GridClick,
    (ids.MAP_L3, "clickData"): GridClick,
}
