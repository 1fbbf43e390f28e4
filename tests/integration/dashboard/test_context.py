"""The dashboard's per-request context (``dashboard.context``) and the cache keyed by it: two viewers
with different scopes never share a cache entry (real PostGIS, the demo database)."""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import plotly
import pytest
from flask import Flask
from sqlalchemy import text

from dashboard.context import ANONYMOUS, LANG_COOKIE, Context, Viewer, current_context
from dashboard.pages.map import callbacks as cb
from dashboard.services import Services
from geodata.access.scope import Scope
from geodata.clock import at_or_now
from geodata.maps import heat as map_heat
from geodata.maps import layers as map_layers
from geodata.settings import Settings

TEST_VIEWER = Viewer(key="test")   # the callbacks are given a context; who it is does not matter here
TZ = ZoneInfo("Asia/Shanghai")


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def at(scope: Scope, lang: str = "zh") -> Context:
    return Context(viewer=TEST_VIEWER, scope=scope, lang=lang, tz=TZ)


def test_current_context_is_the_requests_principal_in_the_requests_language():
    settings = Settings(timezone="Asia/Urumqi")
    ctx = current_context(settings, "en")
    # outside a request (or before the gate): anonymous, who sees nothing unless the map is public
    assert ctx.viewer == ANONYMOUS and ctx.lang == "en" and ctx.tz == ZoneInfo("Asia/Urumqi")
    assert ctx.scope == Scope(roots=frozenset())
    assert current_context(Settings(public_map=True)).scope == Scope.public()
    assert current_context(settings, "fr").lang == "zh" and current_context(settings).lang == "zh"
    with Flask(__name__).test_request_context("/", headers={"Cookie": f"{LANG_COOKIE}=en"}):
        assert current_context(settings).lang == "en"           # the cookie, without a switch value
        assert current_context(settings, "zh").lang == "zh"     # the page's switch wins
    # the principal the gate put on the request: its viewer and its scope
    from flask import g

    from dashboard.context import PRINCIPAL_ATTR
    from geodata.access.accounts import Principal
    from geodata.access.capabilities import Grant
    from geodata.workflow.identity import Actor

    grants = (Grant("community_leader", "41010200100100"),)
    p = Principal(kind="user", account_id=7, login="x", display_name="X", grants=grants,
                  actor=Actor(grants=grants, account_id=7))
    with Flask(__name__).test_request_context("/"):
        setattr(g, PRINCIPAL_ATTR, p)
        ctx = current_context(settings)
        assert ctx.viewer == Viewer(key="account:7", account_id=7, name="X")
        assert ctx.scope == Scope.grids("41010200100100", personal_data=True).__class__(
            roots=frozenset({"41010200100100"}), personal_data=True, roles=frozenset({"community_leader"}))


def test_cache_keys_carry_the_scope_and_the_language_when_asked():
    a, b = at(Scope.everything()), at(Scope.grids("41010200100000"))
    assert a.cache_key("grid_names") != b.cache_key("grid_names")
    assert a.cache_key("x") == a.with_lang("en").cache_key("x")           # data: any language
    assert a.cache_key("x", by_lang=True) != a.with_lang("en").cache_key("x", by_lang=True)


@pytest.fixture(scope="module")
def svc(demo_app_url):
    from sqlalchemy import create_engine

    engine = create_engine(demo_app_url)
    yield Services(engine=engine, settings=Settings(database_url=demo_app_url))
    engine.dispose()


def test_two_scopes_never_share_a_cache_entry(svc):
    """One Services (one cache) serves a command-centre viewer (every grid, phones) and a community
    viewer (one community, no phones) with the same live stamp: each sees only its own data, in
    either order, although every lookup below is cached."""
    everything = Scope.everything(personal_data=True)
    with svc.session(at(everything)) as s:
        street = map_layers.street_code(s, everything)
        mine, other = [f["properties"]["code"] for f in map_layers.grid_layer(s, everything, 2)["features"][:2]]
    community = Scope.grids(mine, personal_data=False)
    a, b = at(everything), at(community)

    # the centre first: the street and the other community are cached for it ...
    sel_a, *_ = cb.selection_outputs(svc, a, f"?grid={other}", "s1")
    assert sel_a["code"] == other
    assert cb.selection_outputs(svc, a, "", "s1")[0]["code"] == street
    # ... and the community viewer, same code and stamp, finds neither (nor the street fallback)
    assert cb.selection_outputs(svc, b, f"?grid={other}", "s1")[0] == {}
    assert cb.panel_outputs(svc, b, {"code": other, "level": 2}, None, "s1")[1] == []

    # the community viewer first: its own community, without phones ...
    panel_b, _ = cb.panel_outputs(svc, b, {"code": mine, "level": 2}, None, "s2")
    assert mine in _text(panel_b) and "tel:" not in _text(panel_b)
    # ... and the centre, same code and stamp, gets its own entry: with phones
    panel_a, _ = cb.panel_outputs(svc, a, {"code": mine, "level": 2}, None, "s2")
    assert "tel:" in _text(panel_a)

    # grid names (a cached lookup): the community's subtree only, the street's whole tree for the centre
    with svc.session(b) as s:
        names_b = cb.grid_names(svc, b, s)
    with svc.session(a) as s:
        names_a = cb.grid_names(svc, a, s)
    assert names_b and all(c.startswith(mine[:12]) for c in names_b)
    assert street in names_a and other in names_a and len(names_a) > len(names_b)


def test_tile_caches_are_keyed_by_scope(svc):
    """The tile service (grid layers, heat scales, heat tiles: one cache for every viewer) never hands
    one viewer's entry to another: a viewer who may see no grid gets empty layers and empty tiles for
    the same level, tile, filter and data version the centre has just cached, and the centre's
    entries are still its own afterwards."""
    import math

    from dashboard.tiles import TileService
    from geodata.workflow.filters import IssueFilter

    tiles = TileService(engine=svc.engine, settings=svc.settings)
    everything, nothing = Scope.everything(), Scope(roots=frozenset())
    full, _ = tiles.grid_layer_bytes(everything, 2)
    assert len(json.loads(full)["features"]) == 14
    assert json.loads(tiles.grid_layer_bytes(nothing, 2)[0])["features"] == []
    assert tiles.grid_layer_bytes(everything, 2)[0] == full

    with svc.session(at(everything)) as s:
        (lon, lat), = s.execute(
            text("SELECT ST_X(location), ST_Y(location) FROM issue LIMIT 1")).all()
    z = 15
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    flt = IssueFilter()
    busy = tiles.heat_tile(everything, z, x, y, flt, "v1")
    assert busy != tiles._empty
    assert tiles.heat_tile(nothing, z, x, y, flt, "v1") == tiles._empty
    assert tiles.heat_tile(everything, z, x, y, flt, "v1") == busy
    with svc.session(at(everything)) as s:
        floor = 1e6 / map_heat.scale_square(s, at_or_now(None))[1]          # one issue in one square
        assert tiles.heat_scale(s, nothing, flt, "v1") == pytest.approx(floor)   # no issue: the floor
        assert tiles.heat_scale(s, everything, flt, "v1") > floor
    assert len(tiles.tiles.data) == 2 and len(tiles.scales.data) == 2
