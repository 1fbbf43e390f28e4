"""该找谁: a point → its block grid → the officials responsible."""
from __future__ import annotations

from pydantic import Field

from .common import Crs, Finite, In, Out


class PointQuery(In):
    lon: Finite
    lat: Finite
    crs: Crs = "wgs84"


class GridLevel(Out):
    code: str
    name: str
    level: int


class HolderOut(Out):
    official_id: int | None = Field(None, description="absent for the public unless the street publishes names")
    name: str | None = Field(None, description="absent for the public unless the street publishes names")
    role: str
    role_zh: str
    role_en: str
    title: str
    grid_code: str
    grid_level: int
    phone: str | None = Field(None, description="personal data: only for entitled officials")


class SixOnesPeople(Out):
    leader_in_charge: HolderOut | None
    responsible: HolderOut | None
    grid_leader: HolderOut | None


class ContactCard(Out):
    """该找谁: who is responsible for a point."""

    lon: float
    lat: float
    block: GridLevel | None
    community: GridLevel | None
    street: GridLevel | None
    shared_boundary: list[str]
    six_ones: SixOnesPeople
    officials: list[HolderOut]
    office_phone: str | None = Field(None, description="the street's published office phone (a setting)")
