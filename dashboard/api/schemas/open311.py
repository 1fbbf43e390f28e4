"""Open311 GeoReport v2 (JSON): services, requests, the error list element."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .common import ErrorBody, Finite, Out, Text


class O311Service(Out):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class O311Request(Out):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime | None
    expected_datetime: dt.datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class O311Created(Out):
    service_request_id: str
    service_notice: str | None
    account_id: str | None


class O311ErrorItem(Out):
    """Open311 error list element, extended with the /api/v1 error fields."""

    code: int
    description: str
    error: ErrorBody


class O311PostIn(BaseModel):
    """POST requests.json (form-encoded per GeoReport v2, or JSON). ``api_key``: an official's API
    token (without it: a resident). Extra keys (attribute[…]) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    service_code: Text(60, 1)
    lat: Finite | None = None
    long: Finite | None = None
    address_string: Text(200) | None = None
    address_id: Text(60) | None = None
    description: Text(4000, multiline=True) | None = None
    first_name: Text(30) | None = None
    last_name: Text(30) | None = None
    phone: Text(20) | None = None
    email: Text(100) | None = None
    device_id: Text(100) | None = None
    account_id: Text(100) | None = None
    media_url: Text(500) | None = None
    jurisdiction_id: Text(100) | None = None
    api_key: Text(200) | None = Field(None, description="an official's API token (GeoReport v2 api_key)")


class O311Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    service_request_id: Text(2000) | None = Field(None, description="comma-separated ids")
    service_code: Text(60) | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    status: Literal["open", "closed"] | None = None
    jurisdiction_id: Text(100) | None = None
    api_key: Text(200) | None = Field(None, description="an official's API token (GeoReport v2 api_key)")
