"""The phone app's device sign-in (a long-lived token for one device), who am I, and a patrol
recorded as it goes (track batches, end)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from .common import Crs, Finite, In, Out, Text


class DeviceSignInIn(In):
    """Sign a device in with the account's login and password: the answer carries a new API token."""

    login: Text(100, 1)
    password: Annotated[str, Field(min_length=1, max_length=200)]
    label: Text(40) = Field("phone", description="what the token is for (shown in the account's token list)")


class MeOut(Out):
    account_id: int
    login: str
    display_name: str | None
    official_id: int | None
    official_name: str | None
    grids: list[str | None] = Field(description="the grids of the account's grants (null: every grid)")
    blocks: list[str] = Field(description="the block grids the official leads (grid_leader assignments)")
    capabilities: list[str] = Field(description="capabilities held on at least one grid")


class DeviceTokenOut(Out):
    token: str = Field(description="the device's API token, shown this once: send it as Authorization: Bearer")
    me: MeOut


class SignedOutOut(Out):
    revoked: bool


class TrackPointsIn(In):
    """A batch of GPS points in the order they were taken."""

    points: list[Annotated[list[Finite], Field(min_length=2, max_length=2)]] = Field(min_length=1, max_length=2000)
    crs: Crs = "wgs84"


class DiaryEndIn(In):
    ended_at: dt.datetime | None = Field(None, description="default: now")
    households: Annotated[int, Field(ge=0, le=100000)] = 0
    shops: Annotated[int, Field(ge=0, le=100000)] = 0
    firms: Annotated[int, Field(ge=0, le=100000)] = 0
    findings: Text(5000, multiline=True) = ""
