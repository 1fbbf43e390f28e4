"""Flask routes on the Dash server: grid layers as GeoJSON, heat tiles (drawn here from
``geodata.maps.heat``'s density data), and a local basemap.

- ``/geo/grids/<level>.json?v=<stamp>``: one FeatureCollection per level, cached in-process per
  grid stamp and by the browser (the stamp in the URL changes when boundaries change);
- ``/tiles/heat/<z>/<x>/<y>.png?<filter>&v=<stamp>``: density tiles from PostGIS aggregates;
- ``/tiles/base/<z>/<x>/<y>.png``: a local tile directory ({z}/{x}/{y}.png) or an MBTiles file;
- ``/geo/issues/<id>.json``: a marker's popup text, fetched when the popup opens.

Every route serves the signed-in viewer's scope (``dashboard.context``), cached under it.
"""
from __future__ import annotations

import io
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, abort, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.clock import business_zone
from geodata.db import open_session, request_limits
from geodata.maps import heat, layers, markers
from geodata.maps.heat import HEAT_CELL_PX
from geodata.workflow.filters import IssueFilter

from .api.core import ApiError
from .context import current_context

HEAT_MIN_ZOOM, HEAT_MAX_ZOOM = 10, 20
BASE_MAX_ZOOM = 24


# -- heat tiles: the density data (geodata.maps.heat) drawn as PNG -----------------------------------
#: yellow → orange → red → dark red, as (position, r, g, b, alpha)
HEAT_STOPS = ((0.0, 255, 255, 178, 0), (0.08, 254, 217, 118, 120), (0.3, 253, 141, 60, 170),
              (0.6, 240, 59, 32, 200), (1.0, 165, 0, 38, 225))


def heat_lut():
    import numpy as np

    xs = np.linspace(0, 1, 256)
    pos = [s[0] for s in HEAT_STOPS]
    return np.stack([np.interp(xs, pos, [s[i] for s in HEAT_STOPS]) for i in range(1, 5)],
                    axis=1).astype(np.uint8)


def heat_index(dens, scale: float):
    """The 256 × 256 colour-ramp indices (uint8, sqrt(density / scale) × 255) of a density grid.

    ``dens`` is a :func:`geodata.maps.heat.heat_grid`: the tile's 64 × 64 cells plus a border of padding cells on
    every side. The whole grid is upscaled (bilinear) and then cropped to the tile, so edge pixels
    are interpolated towards the neighbouring tile's cells, as that tile's own edge pixels are."""
    import numpy as np
    from PIL import Image

    cells = 256 // HEAT_CELL_PX
    pad = (dens.shape[0] - cells) // 2
    if pad < 0 or dens.shape != (cells + 2 * pad, cells + 2 * pad):
        raise ValueError(f"heat grid must be square, {cells} cells plus padding: {dens.shape}")
    v = np.sqrt(np.clip(dens / max(scale, 1e-9), 0.0, 1.0))
    full = dens.shape[0] * HEAT_CELL_PX
    # interpolate in floating point and round once (rounding before and after the resize let the
    # step across a tile edge exceed its neighbours' by two levels at some scales)
    img = Image.fromarray(v.astype(np.float32), mode="F").resize((full, full), Image.BILINEAR)
    o = pad * HEAT_CELL_PX
    idx = np.rint(np.asarray(img)[o:o + 256, o:o + 256] * 255.0)
    return np.ascontiguousarray(np.clip(idx, 0, 255).astype(np.uint8))


def render_heat_png(dens, scale: float) -> bytes:
    """PNG (256 px RGBA) of a density grid (see :func:`heat_index`), colour by sqrt(density / scale)."""
    from PIL import Image

    idx = heat_index(dens, scale)
    rgba = heat_lut()[idx]
    rgba[idx < 3, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def empty_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def tile_in_range(z: int, x: int, y: int, zmin: int = 0, zmax: int = BASE_MAX_ZOOM) -> bool:
    """An XYZ tile address that exists (z checked first, so a huge z never reaches ``2 ** z``)."""
    return zmin <= z <= zmax and 0 <= x < 2 ** z and 0 <= y < 2 ** z


class _LRU:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


@dataclass
class TileService:
    """Grid layers, heat tiles and their scales for any viewer: every cache key starts with the
    viewer's scope (two viewers with different grids never share an entry), every method takes it."""

    engine: Engine
    settings: Any

    def __post_init__(self) -> None:
        self.layers = _LRU(8)
        self.scales = _LRU(64)
        self.tiles = _LRU(256)   # rendered heat tiles by (z, x, y, filter, data version)
        self._empty = empty_png()
        self.tz = business_zone(self.settings)
        self.limits = request_limits(self.settings)

    def session(self, scope: Scope) -> Session:
        """A session for one tile or layer request, under the request limits (statement timeout),
        seeing what ``scope`` may see (row-level security)."""
        return open_session(self.engine, self.limits, scope)

    def grid_layer_bytes(self, scope: Scope, level: int) -> tuple[bytes, str]:
        with self.session(scope) as s:
            stamp = layers.grids_stamp(s)
            key = (scope, level, stamp)
            hit = self.layers.get(key)
            if hit is None:
                hit = orjson.dumps(layers.grid_layer(s, scope, level))
                self.layers.put(key, hit)
        return hit, stamp

    def heat_scale(self, s: Session, scope: Scope, flt: IssueFilter, version: str) -> float:
        if not version:   # no data version in the URL: nothing to key a cache on
            return heat.heat_scale(s, scope, flt, tz=self.tz)
        key = (scope, orjson.dumps(flt.to_dict()), version)
        hit = self.scales.get(key)
        if hit is None:
            hit = heat.heat_scale(s, scope, flt, tz=self.tz)
            self.scales.put(key, hit)
        return hit

    def heat_tile(self, scope: Scope, z: int, x: int, y: int, flt: IssueFilter, version: str) -> bytes:
        if not tile_in_range(z, x, y, HEAT_MIN_ZOOM, HEAT_MAX_ZOOM):
            return self._empty
        key = (scope, z, x, y, orjson.dumps(flt.to_dict()), version)
        hit = self.tiles.get(key) if version else None
        if hit is not None:
            return hit
        with self.session(scope) as s:
            dens = heat.heat_grid(s, scope, flt, z, x, y, tz=self.tz)
            png = (render_heat_png(dens, self.heat_scale(s, scope, flt, version)) if dens.any()
                   else self._empty)
        if version:
            self.tiles.put(key, png)
        return png


def _mbtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        row = con.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? "
                          "AND tile_row=?", (z, x, (2 ** z - 1) - y)).fetchone()  # MBTiles is TMS
    finally:
        con.close()
    return row[0] if row else None


def register_tiles(server: Flask, service: TileService) -> None:
    settings = service.settings

    def scope() -> Scope:
        """The scope of the viewer this request serves (the same per-request context as the pages)."""
        return current_context(settings).scope

    @server.route("/geo/grids/<int:level>.json")
    def gw_grid_layer(level: int) -> Response:
        if level not in (1, 2, 3):
            abort(404)
        body, stamp = service.grid_layer_bytes(scope(), level)
        resp = Response(body, mimetype="application/geo+json")
        resp.set_etag(f"g{level}-{stamp}")
        # the URL carries the stamp (?v=), so the browser may keep it for a day; private: what it
        # holds depends on the viewer, so no shared cache may hand it to another
        resp.headers["Cache-Control"] = "private, max-age=86400" if request.args.get("v") else "no-cache"
        resp.vary.add("Cookie")
        return resp.make_conditional(request)

    @server.route("/geo/issues/<int:issue_id>.json")
    def gw_issue_popup(issue_id: int) -> Response:
        viewer = scope()
        with service.session(viewer) as s:
            data = markers.issue_popup(s, viewer, issue_id)
        if data is None:
            abort(404)
        resp = Response(orjson.dumps(data), mimetype="application/json")
        resp.headers["Cache-Control"] = "private, no-cache"
        return resp

    @server.route("/tiles/heat/<int:z>/<int:x>/<int:y>.png")
    def gw_heat_tile(z: int, x: int, y: int) -> Response:
        try:
            flt = IssueFilter.from_query(request.args.to_dict())
        except ValueError:
            raise ApiError(400, "invalid_parameter", "热力图筛选参数无效（k、d、s、p、f、t、o）",
                           "invalid heat-map filter parameters (k, d, s, p, f, t, o)", "query") from None
        png = service.heat_tile(scope(), z, x, y, flt, request.args.get("v", ""))
        resp = Response(png, mimetype="image/png")
        resp.headers["Cache-Control"] = "private, max-age=300"
        resp.vary.add("Cookie")
        return resp

    @server.route("/geo/<path:rest>")
    @server.route("/tiles/<path:rest>")
    def gw_unknown(rest: str) -> Response:
        """Anything else under /geo/ and /tiles/ (an id beyond 64 bits, z/x/y that are not numbers)
        is 404 here, not Dash's page (its catch-all route would answer an image URL with HTML)."""
        abort(404)

    @server.route("/tiles/base/<int:z>/<int:x>/<int:y>.png")
    def gw_base_tile(z: int, x: int, y: int) -> Response:
        path = Path(settings.basemap_path) if settings.basemap_path else None
        if path is None or not tile_in_range(z, x, y):
            abort(404)
        data: bytes | None = None
        if path.is_file() and path.suffix.lower() == ".mbtiles":
            data = _mbtiles_tile(path, z, x, y)
        elif path.is_dir():
            for ext in ("png", "jpg", "jpeg", "webp"):
                f = path / str(z) / str(x) / f"{y}.{ext}"
                if f.is_file():
                    data = f.read_bytes()
                    break
        if data is None:
            abort(404)
        mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else (
            "image/webp" if data[8:12] == b"WEBP" else "image/png")
        resp = Response(data, mimetype=mime)
        resp.headers["Cache-Control"] = "public, max-age=86400"
        return resp
