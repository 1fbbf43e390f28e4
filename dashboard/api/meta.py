"""/api/v1/meta: the reference data a client builds its forms from."""
from __future__ import annotations

from geodata.models import ISSUE_SOURCES
from geodata.vocab import ACTION_LABELS, KIND_LABELS, ROLE_LABELS, STATUS_LABELS
from geodata.workflow.queries import list_domains

from .core import Call, Result
from .schemas.meta import MetaOut
from .v1 import bp, registry


@registry.op("GET", bp, "/meta", capability=None, summary="Reference data: domains (with deadlines), kinds, sources, statuses, "
             "actions, roles", tag="reference", responses={200: MetaOut})
def meta(call: Call) -> Result:
    """Everything a client needs to build its forms."""
    s = call.state.settings
    return Result(200, MetaOut, {
        "domains": list_domains(call.session),
        "kinds": [{"code": k, "zh": v[0], "en": v[1]} for k, v in KIND_LABELS.items()],
        "sources": list(ISSUE_SOURCES),
        "statuses": [{"code": k, "zh": v[0], "en": v[1]} for k, v in STATUS_LABELS.items()],
        "actions": [{"code": k, "zh": v[0], "en": v[1]} for k, v in ACTION_LABELS.items()],
        "roles": [{"code": k, "zh": v[0], "en": v[1]} for k, v in ROLE_LABELS.items()],
        "crs": ["wgs84", "cgcs2000", "gcj02"], "max_photo_bytes": s.max_photo_bytes,
        "max_photos": call.state.photos.max_count, "timezone": s.timezone,
    })
