"""While the database is down (no browser): which errors mean "unreachable", the engine's
availability and its log lines, and the dashboard's page, live poll, callbacks and data routes on an
engine whose server does not answer (a real refused connection, not a mock)."""
from __future__ import annotations

import json
import logging
import re
import socket

import plotly
import pytest
from dash import no_update
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DataError, OperationalError

from dashboard import create_dash, outage
from dashboard.components import ids as app_ids
from dashboard.context import current_context
from dashboard.pages.map import callbacks as cb
from dashboard.pages.map import ids
from dashboard.pages.map.presenters import filter_from_controls
from dashboard.services import Services
from geodata import db
from geodata.settings import Settings

DOWN = re.compile(r"⚠ 数据中断 自 \d{2}:\d{2}\"")
DOWN_EN = re.compile(r"⚠ Data interrupted since \d{2}:\d{2}\"")


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def _refused_url() -> str:
    """A URL whose port nothing listens on: every connection attempt is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/gridwatch"


@pytest.fixture
def down_engine():
    engine = create_engine(_refused_url(), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def down_svc(down_engine):
    return Services(engine=down_engine, settings=Settings(database_url=str(down_engine.url)))


def at(svc: Services, lang: str):
    return current_context(svc.settings, lang)


def _refused_error(engine) -> OperationalError:
    with pytest.raises(OperationalError) as err, engine.connect():
        pass
    return err.value


def test_unreachable_is_told_from_a_failed_statement(down_engine, demo_engine):
    refused = _refused_error(down_engine)
    assert db.is_unavailable(refused)
    try:
        raise RuntimeError("wrapped") from refused
    except RuntimeError as wrapped:
        assert db.is_unavailable(wrapped)
    with demo_engine.connect() as conn:
        conn.execute(text("SET statement_timeout = '10ms'"))
        with pytest.raises(OperationalError) as timeout:      # QueryCanceled: the server is fine
            conn.execute(text("SELECT pg_sleep(1)"))
        conn.rollback()
        with pytest.raises(DataError) as bad_value:
            conn.execute(text("SELECT 'x'::int"))
    assert not db.is_unavailable(timeout.value)
    assert not db.is_unavailable(bad_value.value)
    assert not db.is_unavailable(ValueError("x")) and not db.is_unavailable(None)


def test_availability_logs_one_line_per_transition(down_engine, demo_app_url, caplog):
    caplog.set_level(logging.WARNING, logger="gridwatch.db")
    seen = db.availability(down_engine)
    assert seen is db.availability(down_engine) and seen.since is None
    for _ in range(3):
        _refused_error(down_engine)
    assert seen.since is not None
    lines = lambda: [r.getMessage() for r in caplog.records if r.name == "gridwatch.db"]
    assert len(lines()) == 1 and "database unavailable" in lines()[0] and "Connection refused" in lines()[0]

    # an engine whose server answers comes back up at its next checkout: one line, then quiet
    engine = create_engine(demo_app_url)
    try:
        back = db.availability(engine)
        back.down(_refused_error(down_engine))
        assert back.since is not None and len(lines()) == 2
        for _ in range(3):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert back.since is None
        assert len(lines()) == 3 and "available again" in lines()[-1]
    finally:
        engine.dispose()


def test_engine_connects_with_a_timeout(demo_app_url):
    engine = db.get_engine(Settings(database_url=demo_app_url, db_connect_timeout_s=4))
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.info.get_parameters()["connect_timeout"] == "4"


def test_page_opened_while_down_is_the_shell_with_the_outage_note(down_svc):
    page = cb.page_layout(down_svc, at(down_svc, "zh"))
    body = _text(page)
    assert DOWN.search(body) and "gw-live-down" in body
    assert "/geo/grids/" not in body                        # no layer to load yet
    stores = {c.id: c.data for c in page.children if getattr(c, "id", None) in (app_ids.OUTAGE, app_ids.STAMP)}
    assert stores == {app_ids.OUTAGE: True, app_ids.STAMP: None}
    assert DOWN_EN.search(_text(cb.page_layout(down_svc, at(down_svc, "en"))))


def test_live_poll_while_down_and_after(down_svc, demo_app_url):
    stamp, note, flag, body, version = cb.live_outputs(down_svc, at(down_svc, "zh"), "s")
    assert DOWN.search(_text(note))
    assert (stamp, flag, body, version) == (no_update, True, no_update, no_update)
    assert cb.live_outputs(down_svc, at(down_svc, "en"), "s", outage=True)[2] is no_update   # already flagged

    # the database answers again: a new stamp, the flag cleared, the body rebuilt (filter kept)
    engine = create_engine(demo_app_url)
    try:
        up = Services(engine=engine, settings=Settings(database_url=demo_app_url))
        flt = filter_from_controls("problem", [], [], "", False, "open")
        stamp, note, flag, body, version = cb.live_outputs(up, at(up, "zh"), None, True, flt, None, 3)
        assert isinstance(stamp, str) and note is no_update and flag is False and version == 4
        text_ = _text(body)
        assert "/geo/grids/2.json?v=" in text_ and "● 实时 · 更新于" in text_ and "数据中断" not in text_
    finally:
        engine.dispose()


def test_callbacks_keep_their_outputs_only_for_an_outage(down_engine):
    assert outage.keep_outputs(_refused_error(down_engine)) is None     # → no_update everywhere
    with pytest.raises(ValueError):
        outage.keep_outputs(ValueError("a bug stays a bug"))


def test_server_while_down(down_engine):
    """The page loads (no 'Error loading layout'), the map's data routes answer 503 in the API's
    error format, and a database callback answers 'no update' instead of an error."""
    # the public map: a page opened while the database is down has nobody's session to read
    app = create_dash(Settings(database_url=str(down_engine.url), public_map=True), down_engine)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and DOWN.search(layout.get_data(as_text=True))
    grids = client.get("/geo/grids/2.json?v=x")
    assert grids.status_code == 503 and grids.headers["Retry-After"]
    assert grids.get_json()["error"]["code"] == "database_unavailable"
    assert client.get("/tiles/heat/14/13420/6485.png?v=x").status_code == 503
    select = client.post("/_dash-update-component", json={
        "output": f"..{ids.SELECTED}.data...{ids.MAP}.viewport...{ids.BREADCRUMB}.children..."
                  f"{ids.L_COMMUNITY}.hideout...{ids.L_BLOCK}.hideout...{ids.L_MARKERS}.hideout..",
        "outputs": [{"id": i, "property": p} for i, p in (
            (ids.SELECTED, "data"), (ids.MAP, "viewport"), (ids.BREADCRUMB, "children"),
            (ids.L_COMMUNITY, "hideout"), (ids.L_BLOCK, "hideout"), (ids.L_MARKERS, "hideout"))],
        "inputs": [{"id": app_ids.URL, "property": "search", "value": ""},
                   {"id": app_ids.BODY_VERSION, "property": "data", "value": 0}],
        "state": [{"id": app_ids.LANG, "property": "value", "value": "zh"},
                  {"id": app_ids.STAMP, "property": "data", "value": None}],
        "changedPropIds": [f"{app_ids.URL}.search"]})
    assert select.status_code == 200 and select.get_json()["response"] == {}   # nothing updated
