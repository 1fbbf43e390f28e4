"""The phone app (/m/) on an emulated slow 3G connection (Chrome DevTools' "Slow 3G": 2 000 ms
latency per request, 50 000 B/s down and up, via CDP ``Network.emulateNetworkConditions``), in a
390×844 touch phone viewport:

- **first load** (new device: no cache, no service worker) → the sign-in form interactive (visible,
  enabled) — target ≤ 5 s;
- **later load** (signed in, the shell from the service worker's cache, still on slow 3G) → the
  report form interactive — target ≤ 1 s;
- the app shell's size: bytes on the wire (gzip) and uncompressed, per file.

Each figure is the median (and worst) of ``--opens`` fresh browser contexts. Writes
bench/results/phone.json. The server is the whole app as ``create_app`` wires it, on a scratch copy
of the demo (the app role), in-process on 127.0.0.1.
"""
from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine

RESULTS = Path(__file__).resolve().parent / "results" / "phone.json"
DB_NAME = "gridwatch_bench_phone"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
TARGETS = {"first_load_s": 5.0, "cached_load_s": 1.0}
PASSWORD = "bench phone passphrase"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "locale": "zh-CN",
         "timezone_id": "Asia/Shanghai", "geolocation": {"longitude": 113.628, "latitude": 34.752, "accuracy": 10},
         "permissions": ["geolocation"]}


class _Server:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def _slow(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_3G)


def shell_size(url: str) -> dict[str, Any]:
    """Bytes of each shell file as served with and without gzip."""
    import urllib.request

    from dashboard.phone import shell_urls

    files, wire, raw = {}, 0, 0
    for u in shell_urls():
        with urllib.request.urlopen(urllib.request.Request(url + u, headers={"Accept-Encoding": "gzip"})) as r:
            gz = len(r.read())
        with urllib.request.urlopen(url + u) as r:
            plain = len(r.read())
        files[u.split("?")[0]] = {"wire_bytes": gz, "bytes": plain}
        wire, raw = wire + gz, raw + plain
    return {"files": files, "wire_bytes": wire, "bytes": raw}


def timings(url: str, login: str, opens: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    first, cached = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for _ in range(opens):
                ctx = browser.new_context(**PHONE)
                page = ctx.new_page()
                page.set_default_timeout(60000)
                _slow(page)
                t0 = time.perf_counter()
                page.goto(url + "/m/", wait_until="commit")
                page.locator("#m-signin:enabled").wait_for(state="visible")
                first.append(time.perf_counter() - t0)
                # sign in (not timed), wait for the service worker to hold the shell
                page.locator("#m-login").fill(login)
                page.locator("#m-password").fill(PASSWORD)
                page.locator("#m-signin").tap()
                page.locator("#m-report-form").wait_for(state="visible")
                page.wait_for_function("""async () => (await caches.keys()).some(k => k.startsWith('gw-m-'))
                                          && !!navigator.serviceWorker.controller""")
                page.close()
                again = ctx.new_page()
                again.set_default_timeout(60000)
                _slow(again)
                t0 = time.perf_counter()
                again.goto(url + "/m/", wait_until="commit")
                again.locator("#m-send:enabled").wait_for(state="visible")
                cached.append(time.perf_counter() - t0)
                ctx.close()
        finally:
            browser.close()

    def summary(xs: list[float]) -> dict[str, float]:
        return {"median_s": round(statistics.median(xs), 2), "max_s": round(max(xs), 2), "n": len(xs),
                "all_s": [round(x, 2) for x in xs]}

    return {"first_load": summary(first), "cached_load": summary(cached)}


def main(argv: list[str]) -> int:
    from bench.common import account, owner_engine, scratch_demo
    from dashboard import create_dash
    from dashboard.api import register_api
    from dashboard.phone import register_phone
    from geodata.access import accounts
    from geodata.db import session_scope
    from geodata.db.admin import drop_database
    from geodata.db.roles import OWNER_ROLE, role_url
    from geodata.settings import Settings

    opens = 2 if "--quick" in argv else 5
    admin, url = scratch_demo(DB_NAME)
    owner = owner_engine(url)
    from bench.common import app_url

    engine = create_engine(app_url(url), pool_size=10, max_overflow=10)
    server = None
    try:
        settings = Settings(database_url=app_url(url), owner_database_url=role_url(url, OWNER_ROLE),
                            basemap_url="", basemap_path=None)
        aid = account(owner, "grid_leader", "41010200500602")
        with session_scope(owner) as s:
            accounts.set_password(s, aid, PASSWORD)
            login = accounts.list_accounts(s)
        login = next(a["login"] for a in login if a["id"] == aid)
        app = create_dash(settings, engine)
        register_api(app.server, settings, engine)
        register_phone(app.server, settings)
        server = _Server(app.server)
        result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "targets": TARGETS,
                                  "network": {"profile": "Chrome DevTools Slow 3G", **SLOW_3G}}
        result["shell"] = shell_size(server.url)
        print(f"shell: {result['shell']['wire_bytes']} B on the wire ({result['shell']['bytes']} B uncompressed)",
              flush=True)
        result.update(timings(server.url, login, opens))
        result["verdict"] = {
            "first_load_ok": result["first_load"]["max_s"] <= TARGETS["first_load_s"],
            "cached_load_ok": result["cached_load"]["max_s"] <= TARGETS["cached_load_s"],
        }
        print(f"first load → sign-in form: median {result['first_load']['median_s']} s, worst "
              f"{result['first_load']['max_s']} s (target ≤ {TARGETS['first_load_s']} s)", flush=True)
        print(f"cached shell → report form: median {result['cached_load']['median_s']} s, worst "
              f"{result['cached_load']['max_s']} s (target ≤ {TARGETS['cached_load_s']} s)", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        owner.dispose()
        drop_database(admin, DB_NAME)
    return 0
