"""No request can stall the server: per-request statement timeouts (API, Dash callbacks, tiles, not
the CLI), a bounded connection pool, literal and capped search text, body and query-string caps.

The whole server (``app.create_app``: dashboard + API) on a scratch database with the small test
world. Slow statements are made deterministic with a table lock held by another connection (a
lock wait counts towards ``statement_timeout``), never with timing assertions.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import orjson
import pytest
from sqlalchemy import create_engine, text

from dashboard.components import ids as app_ids
from dashboard.pages.map import ids
from geodata.db import get_engine, open_session, request_limits, session_scope
from geodata.models import SEARCH_MAX_CHARS
from geodata.settings import Settings
from tests.conftest import SUFFIX
from tests.integration.dashboard.test_callback_guard import payload
from tests.world import app_url, drop_database, scratch_database, seed, sign_in_every_client

REPORT = {"kind": "problem", "domain": "sanitation", "description": "", "lon": 113.625, "lat": 34.755}


@pytest.fixture(scope="module")
def world(server_url, tmp_path_factory):
    from app import create_app

    name = f"gridwatch_test_limits{SUFFIX}"
    url = scratch_database(server_url, name)
    settings = Settings(database_url=app_url(url), var_dir=tmp_path_factory.mktemp("var"), statement_timeout_s=0.3,
                        max_body_bytes=100_000, max_json_bytes=30_000, max_callback_bytes=20_000, max_query_chars=1000,
                        server_threads=4)
    engine = create_engine(url)   # the test's own (superuser); the app's is get_engine(settings)
    with session_scope(engine) as s:
        seed(s)
    server = create_app(settings).server
    sign_in_every_client(server, engine)
    client = server.test_client()
    for title in ("水压仅 50% 的楼", "楼道 5_2 堆物", "普通的问题"):
        r = client.post("/api/v1/issues", json={**REPORT, "title": title})
        assert r.status_code == 201, r.data
    try:
        yield server, settings, engine
    finally:
        engine.dispose()
        get_engine(settings).dispose()
        drop_database(server_url, name)


@contextmanager
def locked(engine, table: str):
    """Another transaction holds ``table`` exclusively: every statement reading it waits."""
    with engine.connect() as conn:
        conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()


def error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.data[:300]
    assert resp.mimetype == "application/json"
    e = resp.get_json()["error"]
    assert set(e) >= {"code", "message_zh", "message_en", "field"} and e["message_zh"] and e["message_en"]
    return e


def dash_search(client, q: str, **kw):
    payload = {"output": f"{ids.SEARCH}.options", "outputs": {"id": ids.SEARCH, "property": "options"},
               "inputs": [{"id": ids.SEARCH, "property": "search_value", "value": q}],
               "state": [{"id": app_ids.LANG, "property": "value", "value": "zh"}],
               "changedPropIds": [f"{ids.SEARCH}.search_value"]}
    return client.post("/_dash-update-component", data=orjson.dumps(payload), content_type="application/json", **kw)


def quiet_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- statement timeout -----------------------------------------------------------------------------
def test_web_sessions_run_under_the_request_limits_and_the_cli_does_not(world):
    _, settings, engine = world
    with open_session(engine, request_limits(settings)) as s:
        assert s.execute(text("SHOW statement_timeout")).scalar_one() == "300ms"
        assert s.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one() == "10s"
        s.commit()   # a new transaction gets them again
        assert s.execute(text("SHOW statement_timeout")).scalar_one() == "300ms"
    with session_scope(engine) as s:   # the CLI's sessions; the pooled connection is back to defaults
        assert s.execute(text("SHOW statement_timeout")).scalar_one() == "0"


def test_api_statement_timeout_is_a_clean_503_logged_in_one_line(world, caplog):
    server, _, engine = world
    caplog.set_level(logging.INFO)
    with locked(engine, "issue"):
        r = server.test_client().get("/api/v1/issues")
    e = error(r, 503)
    assert e["code"] == "query_timeout" and r.headers["Retry-After"]
    logged = quiet_records(caplog)
    assert [rec.getMessage() for rec in logged] == ["statement timeout: GET /api/v1/issues"]
    assert not any(rec.exc_info or "Traceback" in rec.getMessage() for rec in caplog.records)
    assert server.test_client().get("/api/v1/issues").status_code == 200   # the lock is gone: served again


def test_dash_callback_statement_timeout_is_a_clean_503(world, caplog):
    server, _, engine = world
    client = server.test_client()
    ok = dash_search(client, "社区")
    assert ok.status_code == 200 and "西社区" in ok.get_data(as_text=True)
    caplog.set_level(logging.INFO)
    with locked(engine, "grid"):
        r = dash_search(client, "社区")
    assert error(r, 503)["code"] == "query_timeout"
    assert len(quiet_records(caplog)) == 1
    assert not any(rec.exc_info for rec in caplog.records)


def test_heat_tile_statement_timeout_is_a_clean_503(world):
    server, _, engine = world
    with locked(engine, "issue"):
        r = server.test_client().get("/tiles/heat/15/26724/13166.png")
    assert error(r, 503)["code"] == "query_timeout"


def test_no_free_connection_fails_fast_with_503(world, server_url):
    from app import create_app

    _, settings, _ = world
    tight = settings.model_copy(update={"server_threads": 1, "db_pool_timeout_s": 0.2})
    engine = get_engine(tight)   # its own pool: one connection
    server = create_app(tight).server
    sign_in_every_client(server, world[2])
    try:
        with engine.connect() as held:
            held.execute(text("SELECT 1"))
            r = server.test_client().get("/api/v1/issues")
        e = error(r, 503)
        assert e["code"] == "server_busy" and r.headers["Retry-After"]
        assert server.test_client().get("/api/v1/issues").status_code == 200
    finally:
        engine.dispose()


# -- search text -----------------------------------------------------------------------------------
def test_api_search_text_over_the_cap_is_refused_naming_the_field(world):
    server, _, _ = world
    client = server.test_client()
    assert client.get("/api/v1/issues", query_string={"q": "楼" * SEARCH_MAX_CHARS}).status_code == 200
    e = error(client.get("/api/v1/issues", query_string={"q": "楼" * (SEARCH_MAX_CHARS + 1)}), 422)
    assert e["field"] == "q" and str(SEARCH_MAX_CHARS) in e["message_zh"]


def test_like_wildcards_are_literal(world):
    server, _, _ = world
    client = server.test_client()

    def titles(q: str) -> list[str]:
        r = client.get("/api/v1/issues", query_string={"q": q})
        assert r.status_code == 200, r.data
        return sorted(i["title"] for i in r.get_json()["items"])

    assert len(titles("的")) == 2 and len(client.get("/api/v1/issues").get_json()["items"]) == 3
    assert titles("%") == ["水压仅 50% 的楼"]         # '%' is a character, not 'anything'
    assert titles("_") == ["楼道 5_2 堆物"]
    assert titles("5_") == ["楼道 5_2 堆物"]           # not '5 then any character' (would match '50')
    assert titles("%%") == []
    assert titles("\\") == []
    assert titles("wt") == sorted(titles("")) and titles("WT") == titles("wt")   # numbers, any case


def test_dashboard_search_cuts_long_text_and_treats_wildcards_literally(world):
    from geodata.access.scope import Scope
    from geodata.maps import search as map_search

    _, _, engine = world
    with open_session(engine) as s:
        everything = Scope.everything()
        assert [h.label for h in map_search.search(s, everything, "西社区")][:1] == ["西社区 41010200100100"]
        # % and _ match themselves only (the titles written with a literal "50%" and "5_2"), not everything
        for w in ("%", "_"):
            hits = map_search.search(s, everything, w)
            assert hits and all(w in h.label for h in hits), w
        # an over-long text is cut (as-you-type box: no error), so a huge paste costs a short query
        long = "西社区" + "网" * 1_000_000
        assert map_search.search(s, everything, long) == []
        cut = "西社区" + "x" * 1_000_000
        assert map_search.search(s, everything, cut) == map_search.search(s, everything, cut[:SEARCH_MAX_CHARS])


# -- body and URL caps -----------------------------------------------------------------------------
def test_body_over_the_cap_is_413_on_every_route(world):
    server, settings, _ = world
    client = server.test_client()
    big = b"x" * (settings.max_body_bytes + 1)
    e = error(client.post("/api/v1/issues", data=big, content_type="application/json"), 413)
    assert e["field"] == "body" and e["code"] == "too_large"
    r = client.post("/open311/v2/requests.json", data=big, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413 and r.get_json()[0]["error"]["code"] == "too_large"   # Open311's error list
    error(client.get("/tiles/heat/15/26724/13166.png", data=big), 413)   # even a GET with a body


def test_json_body_has_a_lower_cap_and_photos_go_multipart(world):
    """A JSON body over ``max_json_bytes`` (under the body cap) is refused from its length, naming
    multipart; the same photo as a file in a multipart body is taken."""
    import base64
    import io
    import random

    from PIL import Image

    server, settings, engine = world
    client = server.test_client()
    buf = io.BytesIO()
    Image.frombytes("L", (200, 200), random.Random(8).randbytes(40_000)).save(buf, "PNG")   # noise: ~40 KB
    photo = buf.getvalue()
    assert settings.max_json_bytes < len(photo) * 4 // 3 < settings.max_body_bytes
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM issue")).scalar_one()
    body = {**REPORT, "title": "大照片", "photos": [{"content_type": "image/png", "data": base64.b64encode(photo).decode()}]}
    e = error(client.post("/api/v1/issues", json=body), 413)
    assert e["field"] == "body" and "multipart/form-data" in e["message_en"] and "multipart/form-data" in e["message_zh"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM issue")).scalar_one() == before
    r = client.post("/api/v1/issues", content_type="multipart/form-data",
                    data={**{k: str(v) for k, v in REPORT.items()}, "title": "大照片",
                          "photos": [(io.BytesIO(photo), "big.png", "image/png")]})
    assert r.status_code == 201, r.data
    out = client.get(f"/api/v1/issues/{r.get_json()['id']}").get_json()
    assert [p["stage"] for p in out["photos"]] == ["report"]


def test_dash_callback_body_has_its_own_cap(world):
    server, settings, _ = world
    client = server.test_client()
    under = "社区" + " " * (settings.max_callback_bytes - 1000)
    # under the cap the body is read and checked: the guard refuses the over-long search text, not the size
    r = dash_search(client, under)
    assert r.status_code == 422 and r.get_json()["error"]["field"].startswith("map-search.")
    over = "社区" + " " * settings.max_callback_bytes
    e = error(dash_search(client, over), 413)
    assert e["field"] == "body" and str(settings.max_callback_bytes // 1024) in e["message_en"]


def test_chunked_body_over_the_cap_is_413_under_waitress(world):
    """Through the real server: waitress reads a chunked body whole and gives it a Content-Length,
    so the cap refuses it like any other."""
    import threading

    import requests
    from waitress import create_server

    server, settings, _ = world
    wsgi = create_server(server, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    try:
        chunk = b" " * 4096
        n = settings.max_callback_bytes // len(chunk) + 2
        r = requests.post(f"http://127.0.0.1:{wsgi.effective_port}/_dash-update-component",
                          data=(chunk for _ in range(n)), headers={"Content-Type": "application/json"}, timeout=30)
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    finally:
        wsgi.close()   # the listening socket; the daemon thread's idle loop ends with the process


def test_query_string_over_the_cap_is_414(world):
    server, settings, _ = world
    client = server.test_client()
    long = "x" * (settings.max_query_chars + 1)
    for path in ("/api/v1/issues", "/tiles/heat/15/26724/13166.png", "/", "/open311/v2/requests.json"):
        r = client.get(f"{path}?pad={long}")
        assert r.status_code == 414, path
        body = r.get_json()
        e = body[0]["error"] if path.startswith("/open311/") else body["error"]
        assert e["code"] == "uri_too_long" and e["field"] == "query"
    assert client.get("/api/v1/issues?pad=" + "x" * (settings.max_query_chars - 4)).status_code == 422  # unknown param


def _light_callbacks(dash_app) -> list:
    from dashboard.pages.registry import light_callbacks

    return [(out, cb) for out, cb in dash_app.callback_map.items()
            if "callback" in cb and out.lstrip(".").split(".")[0] in light_callbacks()]


def test_light_callbacks_are_recognised_from_the_request_head(world):
    from dashboard.api.limits import is_heavy

    server, _, _ = world
    for body, heavy in [(b'{"output":"..app-stamp.data...hdr-live-note.children..","inputs":[]}', False),
                        (b'{"output":"map-legend-choro.style","inputs":[]}', False),
                        (b'{"output":"..map-layer-markers.data...map-marker-note.children..","inputs":[]}', True),
                        (b'{"inputs":[],"output":"map-legend-choro.style"}', True),    # not where Dash puts it
                        (b'not json', True)]:
        with server.test_request_context("/_dash-update-component", method="POST", data=body,
                                         content_type="application/json"):
            assert is_heavy() is heavy, body


def test_heavy_requests_queue_for_their_slots_and_cheap_ones_pass(world):
    """With every heavy slot taken (a callback waiting on a lock), another heavy request gets 503
    server_busy after the wait, while a cheap API read is served."""
    import threading
    import time

    from app import create_app

    _, settings, engine = world
    one = settings.model_copy(update={"heavy_concurrency": 1, "db_pool_timeout_s": 0.2,
                                      "statement_timeout_s": 30.0})
    dash_app = create_app(one)
    server = dash_app.server
    sign_in_every_client(server, engine)
    assert dash_search(server.test_client(), "社区").status_code == 200   # Dash's first-request setup done
    first: dict = {}
    with locked(engine, "grid"):
        t = threading.Thread(target=lambda: first.setdefault("r", dash_search(server.test_client(), "社区")))
        t.start()
        with engine.connect() as c:   # wait until the first callback is inside, waiting on the lock
            for _ in range(600):
                if c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query ILIKE '%FROM grid%'")).scalar_one():
                    break
                c.rollback()   # pg_stat_activity is a snapshot per transaction
                time.sleep(0.05)
            else:
                pytest.fail("the first callback never reached the database")
        assert error(dash_search(server.test_client(), "社区"), 503)["code"] == "server_busy"
        assert server.test_client().get("/api/v1/issues").status_code == 200
        # the light callbacks (legends, URL, filter; the live poll) never queue behind heavy ones
        light = _light_callbacks(dash_app)
        assert len(light) >= 4
        for out, cb in light:
            if out.lstrip(".").startswith(app_ids.STAMP):
                continue   # the live poll reads the locked table itself; its lightness is checked below
            r = server.test_client().post("/_dash-update-component", data=orjson.dumps(payload(out, cb)),
                                          content_type="application/json")
            assert r.status_code != 503, (out, r.get_data(as_text=True)[:300])
    t.join(30)
    assert first["r"].status_code == 200
