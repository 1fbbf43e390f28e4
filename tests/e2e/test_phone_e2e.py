"""The grid staff's phone app (/m/) in Chromium as a phone: 390×844, touch, mobile, a fixed GPS fix
inside the demo street. Signs in with a staff account, reports with a photo from the "camera",
reports offline and sees it sent exactly once when the signal returns, signs/handles/feeds back an
assigned issue (buttons only for the right roles), and has no horizontal scroll at 360 px."""
from __future__ import annotations

import io
import secrets
import threading
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import create_engine, select, text
from werkzeug.serving import make_server

from geodata.access import accounts
from geodata.access.capabilities import grant_for_assignment
from geodata.access.models import Account
from geodata.db import session_scope

from .conftest import SCREENSHOTS, csp_safe_waits, csp_violations, sign_in_context, watch_csp

pytestmark = pytest.mark.e2e

#: the GPS fix: inside the demo street (docs/api.md's example point)
LON, LAT = 113.628, 34.752
PASSWORD = "phone e2e passphrase"
#: how long a write may take to reach the server (a photo is decoded and re-encoded there; the
#: machine is shared): a bound on waiting, not a measured time
SEND_MS = 30000
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai",
         "geolocation": {"longitude": LON, "latitude": LAT, "accuracy": 12}, "permissions": ["geolocation"]}


class Server:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def phone_server(map_settings) -> Iterator[Server]:
    """The whole server as ``app.create_app`` wires it: Dash, the API and the phone app."""
    from dashboard import create_dash
    from dashboard.api import register_api
    from dashboard.phone import register_phone

    engine = create_engine(map_settings.database_url, pool_size=10, max_overflow=10)   # the app role
    app = create_dash(map_settings, engine)
    register_api(app.server, map_settings, engine)
    register_phone(app.server, map_settings)
    s = Server(app.server)
    yield s
    s.stop()
    engine.dispose()


def _account(s, official_id: int | None, grants: tuple, tag: str) -> str:
    login = f"m-{tag}-{secrets.token_hex(3)}"
    aid = accounts.create_account(s, login, official_id=official_id, grants=grants)
    accounts.set_password(s, aid, PASSWORD)
    return login


@pytest.fixture(scope="module")
def staff(map_engine) -> dict:
    """The block of the GPS fix, its grid leader (an account with a password), an operator
    official's API token, and a sunk member of the community (sees the issue, may not sign it)."""
    with session_scope(map_engine) as s:
        block = s.execute(text("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL AND "
                               "ST_Covers(geom, ST_SetSRID(ST_Point(:x, :y), 4326)) ORDER BY code LIMIT 1"),
                          {"x": LON, "y": LAT}).scalar_one()
        leader = s.execute(text("SELECT official_id FROM grid_assignment WHERE grid_code = :g AND role = 'grid_leader' "
                                "AND valid_to IS NULL ORDER BY official_id LIMIT 1"), {"g": block}).scalar_one()
        operator = s.execute(text("SELECT official_id FROM grid_assignment WHERE role = 'operator' AND valid_to IS NULL "
                                  "ORDER BY official_id LIMIT 1")).scalar_one()
        grants = tuple({(g.role, g.grid_code) for r, c in s.execute(text(
            "SELECT role, grid_code FROM grid_assignment WHERE official_id = :o AND valid_to IS NULL"), {"o": leader})
            if (g := grant_for_assignment(r, c)) is not None})
        gl_login = _account(s, leader, grants, "gl")
        op_login = _account(s, operator, (("operator", None),), "op")
        op_token = accounts.issue_token(s, s.scalar(select(Account.id).where(Account.login == op_login)), "tests")
        member_login = _account(s, None, (("sunk_member", block[:12] + "00"),), "member")
    return {"block": block, "leader": leader, "gl_login": gl_login, "op_token": op_token, "member_login": member_login,
            "op_login": op_login}


@pytest.fixture
def phone(browser):
    made = []

    def _open(**over):
        ctx = browser.new_context(**{**PHONE, **over})
        watch_csp(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.csp_violations = csp_violations(pg)
        csp_safe_waits(pg)
        made.append((ctx, pg))
        return ctx, pg

    yield _open
    for ctx, pg in made:
        ctx.close()
        assert not pg.errors, pg.errors
        assert not pg.csp_violations, pg.csp_violations


def shot(pg, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def jpeg(w: int = 2400, h: int = 1800) -> bytes:
    """A camera-sized JPEG (resized to ≤ 1600 px by the phone before upload)."""
    img = Image.new("RGB", (w, h), (40, 120, 200))
    for x in range(0, w, 200):
        img.paste((220, 180, 40), (x, 0, x + 100, h))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sign_in(pg, server: Server, login: str) -> None:
    pg.goto(server.url + "/m/")
    pg.locator("#m-login").fill(login)
    pg.locator("#m-password").fill(PASSWORD)
    pg.locator("#m-signin").tap()
    expect(pg.locator("#m-report-form")).to_be_visible(timeout=SEND_MS)   # argon2id, on a shared machine


def count_issues(engine, title: str) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM issue WHERE title = :t"), {"t": title}).scalar_one()


def fill_report(pg, title: str, accuracy: int = 12) -> None:
    expect(pg.locator("#m-accuracy")).to_contain_text(f"±{accuracy}")
    pg.locator("#m-domain").select_option("sanitation")
    pg.locator("#m-title-input").fill(title)
    pg.locator("#m-description").fill("东门外垃圾未清运")


def test_sign_in_and_report_with_a_photo(phone, phone_server, staff, map_engine, browser):
    _ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    assert pg.evaluate("() => localStorage.getItem('gw_m_token')").startswith("gw_")
    fill_report(pg, title := f"手机上报 {secrets.token_hex(3)}")
    expect(pg.locator("#m-grid")).to_contain_text(staff["block"])   # the grid, before sending
    pg.locator("#m-kind-sentiment").tap()
    pg.locator("#m-kind-problem").tap()
    pg.locator("#m-photo-input").set_input_files(files=[{"name": "p.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    expect(pg.locator("#m-photos img")).to_have_count(1)
    shot(pg, "phone-report-form")
    with pg.expect_request(lambda r: r.url.endswith("/api/v1/issues") and r.method == "POST") as sent:
        pg.locator("#m-send").tap()
    # the photo goes as a file (a JSON body is capped at settings.max_json_bytes)
    assert sent.value.headers["content-type"].startswith("multipart/form-data; boundary=")
    expect(pg.locator("#m-toast")).to_contain_text("已发送", timeout=SEND_MS)
    assert count_issues(map_engine, title) == 1
    with map_engine.connect() as c:
        row = c.execute(text("SELECT i.id, i.grid_code, i.kind, i.source, p.width, p.height FROM issue i "
                             "JOIN issue_photo p ON p.issue_id = i.id WHERE i.title = :t"), {"t": title}).one()
    assert (row.grid_code, row.kind, row.source) == (staff["block"], "problem", "patrol")
    assert max(row.width, row.height) == 1600   # resized on the phone
    # and it is on the map's data: the API lists it for the operator
    r = pg.request.get(f"{phone_server.url}/api/v1/issues?q={title}", headers={"Authorization": f"Bearer {staff['op_token']}"})
    assert r.ok and [i["id"] for i in r.json()["items"]] == [row.id]
    # and on the command centre's map: the dashboard flies to it and opens its popup
    desk = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        sign_in_context(desk, phone_server.url, map_engine)
        dp = desk.new_page()
        dp.goto(f"{phone_server.url}/?grid={row.grid_code}&issue={row.id}")
        expect(dp.locator(".leaflet-popup .gw-popup-title")).to_have_text(title, timeout=20000)
    finally:
        desk.close()


def test_offline_report_is_queued_and_sent_exactly_once(phone, phone_server, staff, map_engine):
    ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    expect(pg.locator("#m-accuracy")).to_contain_text("±12")
    # the service worker has cached the shell (so the app starts without a connection)
    pg.wait_for_function("async () => (await caches.keys()).some(k => k.startsWith('gw-m-')) "
                         "&& !!navigator.serviceWorker.controller")
    ctx.set_offline(True)
    expect(pg.locator("#m-net")).to_have_text("离线")
    fill_report(pg, title := f"地下室上报 {secrets.token_hex(3)}")
    pg.locator("#m-send").tap()
    expect(pg.locator("#m-toast")).to_contain_text("待发送")
    pg.locator("#m-tab-me").tap()
    expect(pg.locator("#m-queue li")).to_have_count(1)
    expect(pg.locator("#m-queue li")).to_contain_text("待发送")
    expect(pg.locator("#m-badge-me")).to_have_text("1")
    shot(pg, "phone-offline-queue")
    pg.wait_for_timeout(1500)   # a retry while offline fails and backs off; nothing reaches the server
    assert count_issues(map_engine, title) == 0
    # the queue survives closing the app: a new page of the same device (the context's storage)
    pg.close()
    pg2 = ctx.new_page()
    pg2.errors = []
    pg2.on("pageerror", lambda e: pg2.errors.append(str(e)))
    csp_safe_waits(pg2)
    pg2.goto(phone_server.url + "/m/#me")   # offline: the shell from the service worker's cache
    expect(pg2.locator("#m-queue li")).to_have_count(1)
    ctx.set_offline(False)
    expect(pg2.locator("#m-queue-empty")).to_be_visible(timeout=SEND_MS)
    assert count_issues(map_engine, title) == 1
    pg2.reload()
    pg2.wait_for_function("window.gwPhone !== undefined")
    pg2.evaluate("() => window.gwPhone.flush()")
    pg2.wait_for_timeout(500)
    assert count_issues(map_engine, title) == 1
    assert not pg2.errors, pg2.errors


def _assigned_issue(pg, server: Server, staff: dict, title: str) -> int:
    """An issue in the grid leader's block, reported and assigned to them by the operator (API)."""
    h = {"Authorization": f"Bearer {staff['op_token']}"}
    r = pg.request.post(f"{server.url}/api/v1/issues", headers=h, data={
        "kind": "problem", "domain": "sanitation", "title": title, "lon": LON, "lat": LAT})
    assert r.status == 201, r.text()
    issue = r.json()
    r = pg.request.post(f"{server.url}/api/v1/issues/{issue['id']}/transitions", headers=h, data={
        "action": "assign", "version": issue["version"], "assignee_id": staff["leader"]})
    assert r.ok, r.text()
    return issue["id"]


def test_sign_handle_feedback_only_for_the_assignee(phone, phone_server, staff, map_engine):
    _ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    iid = _assigned_issue(pg, phone_server, staff, title := f"交办任务 {secrets.token_hex(3)}")
    pg.locator("#m-tab-tasks").tap()
    item = pg.locator(f"#m-tasks li[data-id='{iid}']")
    expect(item).to_contain_text(title)
    expect(item.locator(".m-tag.new")).to_be_visible()
    expect(pg.locator("#m-badge-tasks")).not_to_be_hidden()
    item.locator("button").tap()
    expect(pg.locator("#m-act-sign")).to_be_visible()
    for absent in ("handle", "feedback", "verify", "assign"):
        expect(pg.locator(f"#m-act-{absent}")).to_have_count(0)
    shot(pg, "phone-task")
    steps = (("sign", "signed"), ("handle", "handling"), ("feedback", "feedback"))
    for action, status in steps:
        pg.locator(f"#m-act-{action}").tap()
        pg.locator("#m-action-note").fill(f"手机{action}")
        if action == "feedback":
            pg.locator("#m-photo-input").set_input_files(files=[{"name": "f.jpg", "mimeType": "image/jpeg",
                                                                  "buffer": jpeg(800, 600)}])
            expect(pg.locator("#m-photos img")).to_have_count(1)
        pg.locator("#m-action-confirm").tap()
        pg.wait_for_function(f"""async () => {{
            const r = await fetch('/api/v1/issues/{iid}', {{headers: {{Authorization: 'Bearer ' + localStorage.getItem('gw_m_token')}}}});
            return (await r.json()).status === '{status}'; }}""")
        pg.evaluate("() => { location.hash = '#tasks'; }")
        pg.locator(f"#m-tasks li[data-id='{iid}'] button").tap()
    expect(pg.locator("#m-no-actions")).to_be_visible()   # now the centre verifies; nothing for the grid leader
    expect(pg.locator("#m-timeline li")).to_have_count(5)  # report, assign, sign, handle, feedback
    with map_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM issue_photo WHERE issue_id = :i AND stage = 'feedback'"),
                         {"i": iid}).scalar_one() == 1
    # a sunk member of the community sees an assigned issue but gets no workflow buttons
    iid2 = _assigned_issue(pg, phone_server, staff, f"交办任务 {secrets.token_hex(3)}")
    _ctx2, pg2 = phone()
    sign_in(pg2, phone_server, staff["member_login"])
    pg2.goto(f"{phone_server.url}/m/#issue/{iid2}")
    expect(pg2.locator("#m-timeline li")).to_have_count(2)
    expect(pg2.locator("#m-no-actions")).to_be_visible()
    expect(pg2.locator("#m-actions button")).to_have_count(0)


def test_the_assignee_asks_for_more_time_and_the_approver_starts_from_it(phone, phone_server, staff, map_engine):
    """申请延期 from the phone: a date and a reason, both required; the approver's 延期 form on their
    phone shows the request and starts from its date."""
    import datetime as dt

    _ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    iid = _assigned_issue(pg, phone_server, staff, f"延期任务 {secrets.token_hex(3)}")
    pg.goto(f"{phone_server.url}/m/#issue/{iid}")
    pg.locator("#m-act-request_extension").tap()
    pg.locator("#m-action-confirm").tap()
    expect(pg.locator("#m-action-form .m-err")).to_contain_text("新期限")   # nothing sent without a date
    later = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    pg.locator("#m-new-due").fill(later)
    pg.locator("#m-action-confirm").tap()
    expect(pg.locator("#m-action-form .m-err")).to_contain_text("理由")
    pg.locator("#m-action-note").fill("需等待材料")
    pg.locator("#m-action-confirm").tap()
    pg.wait_for_function(f"""async () => {{
        const r = await fetch('/api/v1/issues/{iid}', {{headers: {{Authorization: 'Bearer ' + localStorage.getItem('gw_m_token')}}}});
        return (await r.json()).timeline.some(e => e.action === 'request_extension'); }}""")
    # exactly one such event, with the reason typed (read through the operator's API: its scope)
    r = pg.request.get(f"{phone_server.url}/api/v1/issues/{iid}", headers={"Authorization": f"Bearer {staff['op_token']}"})
    asks = [e for e in r.json()["timeline"] if e["action"] == "request_extension"]
    assert r.ok and [e["note"] for e in asks] == ["需等待材料"], asks
    _ctx2, pg2 = phone()
    sign_in(pg2, phone_server, staff["op_login"])
    pg2.goto(f"{phone_server.url}/m/#issue/{iid}")
    pg2.locator("#m-act-extend").tap()
    expect(pg2.locator("#m-asked")).to_contain_text(later)
    expect(pg2.locator("#m-asked")).to_contain_text("需等待材料")
    expect(pg2.locator("#m-new-due")).to_have_value(later)
    pg2.locator("#m-action-note").fill("同意")
    pg2.locator("#m-action-confirm").tap()
    pg2.wait_for_function(f"""async () => {{
        const r = await fetch('/api/v1/issues/{iid}', {{headers: {{Authorization: 'Bearer ' + localStorage.getItem('gw_m_token')}}}});
        return ((await r.json()).due_at || '').startsWith('{later}'); }}""")


def test_no_horizontal_scroll_at_360_px_and_english(phone, phone_server, staff):
    _ctx, pg = phone(viewport={"width": 360, "height": 740})
    sign_in(pg, phone_server, staff["gl_login"])
    for tab in ("report", "tasks", "diary", "contact", "me"):
        pg.locator(f"#m-tab-{tab}").tap()
        pg.wait_for_timeout(300)
        assert pg.evaluate("() => document.scrollingElement.scrollWidth") <= 360, tab
        small = pg.evaluate("""() => Array.from(document.querySelectorAll('button, select, input:not([type=file])'))
            .filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect())
            .filter(r => r.height < 44 || r.width < 44).length""")
        assert small == 0, tab
        if tab == "contact":   # 该找谁 for where I stand: street › community › block
            expect(pg.locator("#m-contact-grid")).to_contain_text("›")
            assert pg.evaluate("() => document.scrollingElement.scrollWidth") <= 360
    pg.locator("#m-lang").tap()
    expect(pg.locator("#m-tab-report")).to_have_text("Report")
    pg.locator("#m-tab-report").tap()
    expect(pg.locator("#m-send")).to_have_text("Send")
    assert pg.evaluate("() => document.scrollingElement.scrollWidth") <= 360
    shot(pg, "phone-360-english")


def test_patrol_track_and_report_from_a_finding(phone, phone_server, staff, map_engine):
    ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    pg.locator("#m-tab-diary").tap()
    pg.locator("#m-patrol-start").tap()
    expect(pg.locator("#m-patrol-state")).to_be_visible()
    for i in range(1, 4):   # walking east: each fix some 30 m further
        ctx.set_geolocation({"longitude": LON + i * 0.0003, "latitude": LAT, "accuracy": 8})
        expect(pg.locator("#m-patrol-state")).to_contain_text(str(1 + i))
    pg.locator("#m-households").fill("6")
    pg.locator("#m-shops").fill("2")
    pg.locator("#m-findings").fill("康宁小区东门垃圾堆放")
    pg.locator("#m-patrol-stop").tap()
    entry = pg.locator("#m-diary-today li[data-id]")
    expect(entry).to_have_count(1, timeout=SEND_MS)
    expect(entry).to_contain_text("康宁小区东门垃圾堆放", timeout=SEND_MS)
    did = int(entry.get_attribute("data-id"))
    with map_engine.connect() as c:
        d = c.execute(text("SELECT households, shops, ended_at, ST_NPoints(track) AS n FROM patrol_diary WHERE id = :i"),
                      {"i": did}).one()
    assert (d.households, d.shops, d.n) == (6, 2, 4) and d.ended_at is not None
    entry.locator(".m-report-finding").tap()
    expect(pg.locator("#m-description")).to_have_value("康宁小区东门垃圾堆放")
    fill_report(pg, title := f"据日记上报 {secrets.token_hex(3)}", accuracy=8)
    pg.locator("#m-send").tap()
    expect(pg.locator("#m-toast")).to_contain_text("已发送", timeout=SEND_MS)
    with map_engine.connect() as c:
        issue_id = c.execute(text("SELECT issue_id FROM patrol_diary WHERE id = :i"), {"i": did}).scalar_one()
        assert c.execute(text("SELECT title FROM issue WHERE id = :i"), {"i": issue_id}).scalar_one() == title
    expect(pg.locator(".m-report-finding")).to_have_count(0)


def test_stays_signed_in_until_signed_out_or_revoked(phone, phone_server, staff, map_engine):
    _ctx, pg = phone()
    sign_in(pg, phone_server, staff["gl_login"])
    token = pg.evaluate("() => localStorage.getItem('gw_m_token')")
    pg.reload()   # still signed in: the report form, no sign-in
    expect(pg.locator("#m-report-form")).to_be_visible()
    # revoked elsewhere (e.g. the phone was lost): the next answer is a 401 and the app asks to sign in
    with session_scope(map_engine) as s:
        assert accounts.revoke_token_value(s, token)
    pg.locator("#m-tab-tasks").tap()
    expect(pg.locator("#m-signin-form")).to_be_visible()
    expect(pg.locator("#m-signin-msg")).to_contain_text("登录已失效")
    assert pg.evaluate("() => localStorage.getItem('gw_m_token')") is None
    # sign in again, then sign out: the device's token is revoked on the server
    pg.locator("#m-login").fill(staff["gl_login"])
    pg.locator("#m-password").fill(PASSWORD)
    pg.locator("#m-signin").tap()
    expect(pg.locator("#m-report-form")).to_be_visible()
    token2 = pg.evaluate("() => localStorage.getItem('gw_m_token')")
    pg.locator("#m-tab-me").tap()
    pg.locator("#m-sign-out").tap()
    expect(pg.locator("#m-signin-form")).to_be_visible()
    r = pg.request.get(f"{phone_server.url}/api/v1/me", headers={"Authorization": f"Bearer {token2}"})
    assert r.status == 401
