"""/api/v1/photos/<id>: a report or feedback photo."""
from __future__ import annotations

from flask import send_file

from geodata.workflow.photos import photo_file

from .core import Call, Result
from .v1 import ID, bp, registry


@registry.op("GET", bp, "/photos/<int:photo_id>", capability=None, summary="A report or feedback photo", tag="issues",
             responses={200: ("image/*", {"type": "string", "contentMediaType": "image/*"})},
             path_params={"photo_id": ID})
def photo(call: Call) -> Result:
    path, ctype = photo_file(call.session, call.path["photo_id"], call.state.photos)
    resp = send_file(path, mimetype=ctype, max_age=86400)
    return Result(200, None, None, raw=resp)
