"""/api/v1/responsible: 该找谁 — a point → its block grid → the officials responsible."""
from __future__ import annotations

from geodata.access.accounts import Principal, audit_personal_view
from geodata.workflow.queries import responsible_for_point

from .core import Call, Result
from .schemas.contact import ContactCard, PointQuery
from .v1 import bp, registry


@registry.op("GET", bp, "/responsible", capability=None, summary="该找谁 Who is responsible here? point → block grid → officials",
             tag="contact", query=PointQuery, responses={200: ContactCard})
def responsible(call: Call) -> Result:
    """Public. Officials' names (and the street's office phone) for everyone when the street
    publishes them (``GRIDWATCH_PUBLISH_CONTACTS``), else for accounts only; mobile phones only for
    an account with personal data whose grids cover the point."""
    q: PointQuery = call.query
    card = contact_card(call.session, call.state.settings, call.principal, q.lon, q.lat, crs=q.crs)
    people = [*(card.get("officials") or []), *(card.get("six_ones") or {}).values()]
    shown = len({(o.get("official_id"), o.get("phone")) for o in people if o and o.get("phone")})
    if shown and not call.principal.is_anonymous:   # one audit row per answer that showed phones
        audit_personal_view(call.session, call.principal.account_id, "official_phone",
                            grid_code=(card.get("block") or {}).get("code"), count=shown, via="api.responsible")
    return Result(200, ContactCard, card)


def contact_card(session, settings, principal: Principal, lon: float, lat: float, *, crs: str = "wgs84") -> dict:
    """该找谁 for ``principal`` under the publication settings (the API's and the public page's)."""
    public = bool(settings.publish_contacts)
    card = responsible_for_point(session, lon, lat, principal.scope(), crs=crs,
                                 names=public or not principal.is_anonymous)
    card["office_phone"] = (settings.office_phone or None) if public else None
    return card
