"""What every resource's schemas share: the field types (``Text``, ``Kind``, ``Status``, ``Finite``…),
the base models (``In``: requests, extra keys refused; ``Out``: responses), the error body and the
base64 photo. Each resource's own request/response models sit in ``schemas/<resource>.py``; the
OpenAPI document served at ``/api/v1/openapi.json`` is generated from them, never written by hand.

No Flask here: the models are plain data contracts, shared by the API layer and its tests.
"""
from __future__ import annotations

import unicodedata
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from geodata.models import ISSUE_SOURCES
from geodata.workflow import rules as wf

INT32 = 2**31 - 1


#: Characters that render as nothing (format characters such as zero-width spaces and joiners, BOM,
#: fillers, variation selectors): stripped at both ends of a text; a text of only these is blank.
_FILLERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")


def _invisible(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) == "Cf" or c in _FILLERS or "\ufe00" <= c <= "\ufe0f"


def _normalise_text(value: str, *, required: bool, multiline: bool) -> str:
    """Strip whitespace and invisible characters at both ends; refuse control characters (tab and
    line breaks are allowed in multi-line fields), unpaired surrogates, and — for a required field —
    a text with nothing visible left."""
    allowed = "\t\n\r" if multiline else ""
    for c in value:
        cat = unicodedata.category(c)
        if (cat == "Cc" and c not in allowed) or (not multiline and cat in ("Zl", "Zp")):
            raise PydanticCustomError("string_control", "must not contain control characters or line breaks"
                                      if not multiline else "must not contain control characters")
        if cat == "Cs":
            raise PydanticCustomError("string_unicode", "must be valid UTF-8 text")
    start, end = 0, len(value)
    while start < end and _invisible(value[start]):
        start += 1
    while end > start and _invisible(value[end - 1]):
        end -= 1
    value = value[start:end]
    if required and not value:
        raise PydanticCustomError("string_blank", "must not be blank (whitespace or invisible characters only)")
    return value


def Text(max_length: int, min_length: int = 0, *, multiline: bool = False):
    """A text field: at most ``max_length`` characters, normalised by :func:`_normalise_text`;
    ``min_length`` ≥ 1 makes it required-non-blank."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length),
                     AfterValidator(partial(_normalise_text, required=min_length > 0, multiline=multiline))]


Kind = Literal["problem", "sentiment"]
Source = Literal[ISSUE_SOURCES]  # type: ignore[valid-type]
Crs = Literal["wgs84", "cgcs2000", "gcj02"]
Status = Literal[wf.STATUSES]  # type: ignore[valid-type]
Action = Literal[tuple(a for a in wf.ACTIONS if a != "report")]  # type: ignore[valid-type]
Id32 = Annotated[int, Field(ge=1, le=INT32)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------------
class ErrorBody(Out):
    code: str = Field(description="machine-readable error code")
    message_zh: str
    message_en: str
    field: str | None = Field(None, description="the offending field, header or parameter")
    detail: dict[str, Any] | None = None


class ErrorOut(Out):
    """Every 4xx/5xx answer of /api/v1."""

    error: ErrorBody


# -- requests -------------------------------------------------------------------------------------
class PhotoB64(In):
    """A photo in a JSON body: base64 data (JPEG, PNG or WebP; size limit per photo)."""

    content_type: Literal["image/jpeg", "image/png", "image/webp"] | None = None
    data: Annotated[str, Field(min_length=1, max_length=16 * 1024 * 1024)]


def form_schema(model: type[BaseModel]) -> dict:
    """The multipart/form-data variant of a JSON body model: the same fields, photos as files."""
    s = model.model_json_schema()
    props = {k: v for k, v in s["properties"].items() if k != "photos"}
    props["photos"] = {"type": "array", "maxItems": 9,
                       "items": {"type": "string", "format": "binary", "contentMediaType": "image/jpeg"}}
    return {"type": "object", "required": s.get("required", []), "properties": props}
