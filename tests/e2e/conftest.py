"""Live server + real browser for the map: the Dash app in-process on a free 127.0.0.1 port against
the demo database, driven by Playwright with Debian's chromium (headless, no network)."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from werkzeug.serving import make_server

from geodata.settings import Settings
from tests.conftest import SUFFIX, demo_fixtures

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


logging.getLogger("werkzeug").setLevel(logging.WARNING)


class LiveServer:
    def __init__(self, app, host: str = "127.0.0.1"):
        self.server = make_server(host, 0, app.server, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


# The browser tests write to the demo (reports, change sets, accounts): they get a demo database of
# their own, so that the integration tests' demo stays exactly as loaded (these override the root
# conftest's fixtures of the same names for every test under tests/e2e).
demo_url, demo_app_url, demo_app_engine, demo_engine = demo_fixtures(f"gridwatch_test_demo_e2e{SUFFIX}")


@pytest.fixture(scope="session")
def map_settings(demo_app_url: str) -> Settings:
    # no basemap: tests run offline; a fast live refresh keeps the live test short
    return Settings(database_url=demo_app_url, basemap_url="", basemap_path=None, live_interval_s=1.0)


@pytest.fixture(scope="session")
def map_engine(demo_url: str) -> Iterator[Engine]:
    """The tests' own engine (superuser: what they insert and count is not row-filtered)."""
    engine = create_engine(demo_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def live_server(map_settings: Settings) -> Iterator[LiveServer]:
    from app import wire_grid_import
    from dashboard import create_dash

    engine = create_engine(map_settings.database_url, pool_size=10, max_overflow=10)   # the app role
    app = create_dash(map_settings, engine)
    wire_grid_import(app.server)   # the planner's upload, as app.create_app wires it
    server = LiveServer(app).start()
    yield server
    server.stop()
    engine.dispose()


@pytest.fixture(scope="session")
def browser():
    # `make test` installs Debian's chromium (tools/system-deps test): missing is a broken set-up, not a skip
    assert Path(CHROMIUM).exists(), "Debian chromium is not installed; run `make test` (it installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def sign_in_context(context, url: str, engine: Engine, role: str = "operator", grid: str | None = None) -> None:
    """The browser context is signed in (a fresh account holding ``role``): its session cookie, as
    the sign-in page sets it (Secure, HttpOnly, SameSite=Lax; chromium keeps Secure cookies on
    http://127.0.0.1). The sign-in page itself is driven by ``test_auth_e2e.py``."""
    from dashboard.auth import SESSION_COOKIE
    from tests.world import session_id

    context.add_cookies([{"name": SESSION_COOKIE, "value": session_id(engine, role, grid), "url": url,
                          "httpOnly": True, "secure": True, "sameSite": "Lax"}])


@pytest.fixture
def page(browser, live_server, map_engine):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    sign_in_context(context, live_server.url, map_engine)   # the command centre
    watch_csp(context)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors  # type: ignore[attr-defined]
    pg.csp_violations = csp_violations(pg)  # type: ignore[attr-defined]
    csp_safe_waits(pg)
    yield pg
    context.close()
    # every page of every e2e test runs under the server's Content-Security-Policy without a violation
    assert not pg.csp_violations, pg.csp_violations


CSP_REPORTER = """document.addEventListener('securitypolicyviolation', e => console.error(
    'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile
    + ':' + e.lineNumber));"""


def watch_csp(context) -> None:
    """Report every ``securitypolicyviolation`` event of the context's pages to the console."""
    context.add_init_script(CSP_REPORTER)


def csp_safe_waits(pg) -> None:
    """Playwright evaluates a string predicate of ``wait_for_function`` with ``eval`` inside the
    page, which the page's CSP (rightly: no 'unsafe-eval') refuses; passed as a function it is
    compiled over the DevTools protocol instead. Wraps expressions as ``() => (expr)``."""
    original = pg.wait_for_function

    def wait_for_function(expression: str, *args, **kwargs):
        if not re.match(r"\s*(async\s+)?(function\b|\((?!\()[^)]*\)\s*=>|\w+\s*=>)", expression):
            expression = f"() => ({expression})"
        return original(expression, *args, **kwargs)

    pg.wait_for_function = wait_for_function


def csp_violations(pg) -> list[str]:
    """A list that fills with the page's CSP violations (the reporter's and chromium's own messages)."""
    found: list[str] = []
    pg.on("console", lambda m: found.append(m.text) if m.type == "error" and (
        "CSP violation" in m.text or "Content Security Policy" in m.text) else None)
    return found


@pytest.fixture
def shot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _shot(pg, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path))
        return path

    return _shot


@pytest.fixture(autouse=True)
def no_refused_callbacks(caplog):
    """The browser sends only what the UI makes: the callback guard (dashboard.guard) must accept
    all of it, so a refusal here is a value type that is too narrow."""
    yield
    refused = [r.getMessage() for r in caplog.records if r.name == "gridwatch.dashboard"]
    assert not refused, refused
