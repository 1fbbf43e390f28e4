"""The value types a callback may read (strict pydantic): shared by every page's ``values`` and the
components', which :mod:`dashboard.guard` checks every callback request against."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from geodata.models import BIGINT_MAX

from .api.schemas.common import INT32, Finite, Text

INT64 = BIGINT_MAX         # issue.id, outbox.id: BIGINT
JS_INT = 2**53 - 1         # counters kept by the browser (n_clicks, n_intervals)
MAX_ITEMS = 50             # multi-select values


# -- value types ----------------------------------------------------------------------------------
def bigint_id(text: str | None) -> int | None:
    """An id written as text (URL, search option, grid row id) → the id, if it is 1–19 ASCII digits
    within BIGINT; otherwise None."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= INT64 else None


def _bigint_text(v: str) -> str:
    if bigint_id(v) is None:
        raise ValueError(f"must be an id between 1 and {INT64}")
    return v


def _iso_day(v: str) -> str:
    try:
        dt.date.fromisoformat(v[:10])
    except ValueError:
        raise ValueError("must be a calendar date YYYY-MM-DD") from None   # (its text repeats the input)
    return v


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Lang = Literal["zh", "en"]
Count = Annotated[int, Field(ge=0, le=JS_INT)]
Version = Annotated[int, Field(ge=0, le=INT32)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
ViewLon = Annotated[float, Field(ge=-1080, le=1080, allow_inf_nan=False)]   # a panned world wraps
GridCode = Annotated[str, Field(pattern=r"^[0-9]{14}$")]
IssueId = Annotated[int, Field(ge=1, le=INT64)]
BigIdText = Annotated[str, Field(max_length=19), AfterValidator(_bigint_text)]
DomainCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,30}$")]     # domain.code: VARCHAR(30)
IsoDay = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_iso_day)]
PickedDay = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]{0,15})?$"),
                      AfterValidator(_iso_day)]


# -- dash-leaflet's click on a grid layer (the map's and the assessment map's) -----------------------
class Polygon(Value):
    type: Literal["Polygon"]
    coordinates: list[list[tuple[Lon, Lat]]]


class MultiPolygon(Value):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[tuple[Lon, Lat]]]]


class GridProperties(Value):
    """``mapdata.grid_layer``'s feature properties, and the two dash-leaflet adds."""
    code: GridCode | None = None
    name: Text(200) | None = None
    name_en: Text(200) | None = None
    level: Literal[1, 2, 3] | None = None
    parent_code: GridCode | None = None
    area_km2: Finite | None = None
    cluster: bool | None = None                 # dash-leaflet: is this a cluster marker
    id: Count | None = None                     # dash-leaflet: the feature's index in the layer


class GridClick(Value):
    """dash-leaflet's GeoJSON ``clickData``: the clicked feature, with its bounds."""
    type: Literal["Feature"] | None = None
    id: GridCode | None = None
    geometry: Annotated[Polygon | MultiPolygon, Field(discriminator="type")] | None = None
    properties: GridProperties | None = None
    bounds: tuple[tuple[Lat, Lon], tuple[Lat, Lon]] | None = None
