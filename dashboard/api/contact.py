"""/api/v1/responsible: 该找谁 — a point → its block grid → the officials responsible."""
from __future__ import annotations

from geodata.workflow.queries import responsible_for_point

from .core import Call, Result
from .schemas.contact import ContactCard, PointQuery
from .v1 import bp, registry


@registry.op("GET", bp, "/responsible", summary="该找谁 Who is responsible here? point → block grid → officials",
             tag="contact", query=PointQuery, responses={200: ContactCard})
def responsible(call: Call) -> Result:
    """Phones only for an identified official whose grids cover the point."""
    q: PointQuery = call.query
    return Result(200, ContactCard, responsible_for_point(call.session, q.lon, q.lat, call.actor.scope(), crs=q.crs))
