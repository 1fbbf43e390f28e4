"""Who may do what: every role × every API operation and page gate, against ONE table derived from
``geodata.access.capabilities`` (the operation's declared capability, the page's capability, and
THE rule ``allowed``) — never a second, hand-written copy of it. Plus: tampered Dash callbacks as a
community leader asking for the other community find nothing of it; an anonymous scan of every
public response finds no official's phone; the admin forms refuse a POST without a CSRF token.

The world: ``tests.world`` (a street, two communities C1/C2, four blocks, 40 issues), served whole
(Dash pages, the admin pages, the API) as ``create_app`` wires it, connecting as the app role.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

import pytest
from dash._utils import split_callback_id
from sqlalchemy import select, text

from dashboard.api import v1
from dashboard.auth import SESSION_COOKIE
from geodata.access import accounts
from geodata.access.capabilities import MANAGE_ACCOUNTS, READ_AUDIT, ROLES, VIEW_MAP, Grant, allowed
from geodata.access.models import Account
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.world import B11, B21, C1, C2, scratch_api, seed_issues

PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
#: a stranger's body: large and not JSON (an operation needing a capability must never parse it)
JUNK = b"{" + b"\x00junk" * 40_000

#: every role of the capabilities table; anonymous is who has no account (the resident)
MATRIX_ROLES = (*(r for r in ROLES if r != "resident"), "anonymous")


def grid_for(role: str) -> str | None:
    """The grid a test account of ``role`` is granted on: every grid where the role may hold it,
    else the first community (level 2) or block (level 3) of the world."""
    levels = ROLES[role].levels
    if None in levels:
        return None
    return {2: C1, 3: B11}[levels[0]]


def grants_of(role: str) -> tuple[Grant, ...]:
    if role == "anonymous":
        return accounts.ANONYMOUS
    return (Grant(role, grid_for(role)),)


#: the page gates: path → (capability, a page (redirect to sign in) or data (401))
PAGES = {"/": (VIEW_MAP, "page"), "/_dash-layout": (VIEW_MAP, "data"), "/geo/grids/2.json": (VIEW_MAP, "data"),
         "/admin": (MANAGE_ACCOUNTS, "page"), "/admin/audit": (READ_AUDIT, "page")}


@dataclass(frozen=True)
class Case:
    role: str
    method: str
    path: str
    capability: str | None
    kind: str            # 'api' | 'page' | 'data'
    signed_in: bool = False   # no capability, but an account (the operation is about the caller)

    @property
    def allowed(self) -> bool:
        """THE expectation, from the capabilities table only."""
        if self.capability is None:
            return not (self.signed_in and self.role == "anonymous")
        return allowed(grants_of(self.role), self.capability)


def api_cases() -> list[Case]:
    out = []
    for op in v1.registry.ops:
        path = re.sub(r"\{(\w+)\}", lambda m: "ISSUE" if m.group(1) == "key" else "1", op.path)
        for role in MATRIX_ROLES:
            out.append(Case(role, op.method, path, op.capability, "api", op.signed_in))
    return out


def page_cases() -> list[Case]:
    return [Case(role, "GET", path, cap, kind) for path, (cap, kind) in PAGES.items() for role in MATRIX_ROLES]


# -- the world ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_matrix{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True) as a:
        with session_scope(a.engine) as s:
            a.world.issues = seed_issues(s, a.world)
            creds, ids_ = {}, {}
            for role in MATRIX_ROLES:
                if role == "anonymous":
                    continue
                aid = accounts.create_account(s, f"m-{role.replace('_', '-')}-{secrets.token_hex(3)}",
                                              kind="display" if role == "display" else "user",
                                              grants=((role, grid_for(role)),))
                creds[role] = (accounts.issue_token(s, aid, "matrix"), accounts.start_session(s, aid))
                ids_[role] = aid
        a.creds, a.account_ids = creds, ids_
        assert a.app.test_client().get("/login").status_code == 200   # Dash's first-request set-up
        yield a


def client(site, role: str, *, cookie: bool = False, token: bool = False):
    c = site.app.test_client()
    if role != "anonymous":
        tok, sid = site.creds[role]
        if token:
            c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tok}"
        if cookie:
            c.set_cookie(SESSION_COOKIE, sid)
    return c


def call(site, case: Case):
    c = client(site, case.role, token=case.kind == "api", cookie=case.kind != "api")
    if case.path.endswith("/device/sign-out") and case.role != "anonymous":
        # signing out revokes the token it is sent with: a token of its own, not the role's
        with session_scope(site.engine) as s:
            c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {accounts.issue_token(s, site.account_ids[case.role], 'out')}"
    path = case.path.replace("ISSUE", str(site.world.issues[0]))
    if case.method == "GET":
        return c.get(path)
    return c.open(path, method=case.method, data=JUNK, content_type="application/json")


# -- the matrix -----------------------------------------------------------------------------------
def test_the_matrix_covers_every_role_route_and_gate():
    cases = api_cases() + page_cases()
    assert {c.role for c in cases} == set(MATRIX_ROLES) >= {
        "system_admin", "operator", "street_leader", "community_leader", "platform_maintainer", "grid_leader",
        "planner", "assessor", "display", "anonymous"}
    assert len({(c.method, c.path) for c in cases if c.kind == "api"}) == len(v1.registry.ops)
    # the table is not trivial: each role is refused something and (but the anonymous) allowed something
    for role in MATRIX_ROLES:
        mine = [c for c in cases if c.role == role and c.capability is not None]
        assert any(not c.allowed for c in mine), role
        assert role == "anonymous" or any(c.allowed for c in mine), role


@pytest.mark.parametrize("case", api_cases(), ids=lambda c: f"{c.role}-{c.method}-{c.path}")
def test_api_route(site, case):
    """Allowed: anything but a 401/403 of the capability check (a 400 for the junk body, a 404 for
    a missing record…). Refused: 401 for a stranger, 403 for an account — before the body is
    parsed (a 400/422 here would mean the stranger's body was read first)."""
    r = call(site, case)
    data = r.get_json(silent=True) if r.mimetype == "application/json" else None
    if isinstance(data, list):   # Open311: a list (of services, requests, or its errors)
        data = data[0] if data and isinstance(data[0], dict) else {}
    err = (data or {}).get("error")
    code = err.get("code") if isinstance(err, dict) else None
    if case.allowed:
        assert r.status_code not in (401,) and code not in ("sign_in_required", "forbidden_capability"), \
            (r.status_code, r.get_data(as_text=True)[:300])
        if case.method != "GET" and case.capability is not None:
            assert r.status_code in (400, 404, 405, 415, 422), r.get_data(as_text=True)[:300]
    else:
        want = 401 if case.role == "anonymous" else 403
        assert r.status_code == want, (r.status_code, r.get_data(as_text=True)[:300])
        body = r.get_json()
        body = body[0]["error"] if isinstance(body, list) else body["error"]
        assert body["code"] in ("sign_in_required", "forbidden_capability")
        assert body["message_zh"] and body["message_en"]


@pytest.mark.parametrize("case", page_cases(), ids=lambda c: f"{c.role}-{c.path}")
def test_page_gate(site, case):
    r = call(site, case)
    if case.allowed:
        assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:300])
    elif case.role == "anonymous":
        if case.kind == "page":
            assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
        else:
            assert r.status_code == 401
    else:
        assert r.status_code == 403, (r.status_code, r.get_data(as_text=True)[:300])


def test_outbox_serves_an_account_with_no_official_its_own_messages_none(site):
    """``GET /api/v1/outbox`` declares view_issues: a planner or assessor (no official) holds it
    and gets an empty page — not a 403 that the declaration does not announce."""
    for role in ("planner", "assessor"):
        r = client(site, role, token=True).get("/api/v1/outbox")
        assert r.status_code == 200 and r.get_json()["items"] == [] and r.get_json()["total"] == 0
        r = client(site, role, token=True).get(f"/api/v1/outbox?official_id={site.world.ids['c1_leader']}")
        assert r.status_code == 403 and r.get_json()["error"]["field"] == "official_id"
    r = client(site, "operator", token=True).get("/api/v1/outbox")
    assert r.status_code == 200


def test_a_strangers_body_is_never_parsed(site):
    """No token, a bad token, an account without the capability: 401/403, whatever the body."""
    for body, ctype in ((JUNK, "application/json"), (b"not even json", "text/plain"), (b"", "application/json")):
        r = site.app.test_client().post("/api/v1/notices/weekly", data=body, content_type=ctype)
        assert r.status_code == 401, r.get_data(as_text=True)[:200]
        r = site.app.test_client().post("/api/v1/grid-proposals", data=body, content_type=ctype,
                                        headers={"Authorization": "Bearer gw_not-a-token"})
        assert r.status_code == 401, r.get_data(as_text=True)[:200]
        r = client(site, "grid_leader", token=True).post("/api/v1/notices/weekly", data=body, content_type=ctype)
        assert r.status_code == 403, r.get_data(as_text=True)[:200]
    # and with the capability, the same body is a 4xx about the body
    r = client(site, "operator", token=True).post("/api/v1/notices/weekly", data=JUNK, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed_json"


# -- tampered callbacks ---------------------------------------------------------------------------
def forbidden_strings(site) -> list[str]:
    """What a C1 community leader must never see: the names and phones of officials only in C2, the
    numbers of C2's issues."""
    w = site.world
    only_c2 = ("c2_leader", "c2_secretary", "c2_member", "c2_maintainer", "b21_leader", "b22_leader")
    with site.engine.connect() as c:
        rows = c.execute(text("SELECT o.name, oc.phone FROM official o JOIN official_contact oc ON oc.official_id = o.id "
                              "WHERE o.id = ANY(:ids)"), {"ids": [w.ids[k] for k in only_c2]}).all()
        numbers = c.execute(text("SELECT number FROM issue WHERE community_code = :c"), {"c": C2}).scalars().all()
    out = [n for n, _ in rows] + [p for _, p in rows] + list(numbers)
    assert len(out) == 12 + len(numbers) and numbers
    return out


def test_tampered_callbacks_as_a_community_leader_find_nothing_of_the_other_community(site):
    from dashboard.components import ids as app_ids
    from dashboard.pages.map import ids

    w = site.world
    with session_scope(site.engine) as s:
        sid = accounts.start_session(s, w.accounts["c1_secretary"])   # community leader of C1, personal data
        other_issue = s.execute(text("SELECT id FROM issue WHERE community_code = :c ORDER BY id LIMIT 1"),
                                {"c": C2}).scalar_one()
        other_phone = s.execute(text("SELECT phone FROM official_contact WHERE official_id = :o"),
                                {"o": w.ids["c2_secretary"]}).scalar_one()
    c = site.app.test_client()
    c.set_cookie(SESSION_COOKIE, sid)
    tampered = {
        (ids.SELECTED, "data"): [{"code": C2}, {"code": B21}, {"code": C2, "issue": other_issue}],
        (app_ids.URL, "search"): [f"?grid={B21}", f"?grid={C2}&issue={other_issue}", f"?issue={other_issue}"],
        (ids.OPEN_ISSUE, "data"): [{"id": other_issue}],
        (ids.ISSUES, "cellClicked"): [{"rowId": str(other_issue)}],
        (ids.SEARCH, "search_value"): ["东支书", other_phone, "UI2026000002", "网格长丙"],
        (ids.SEARCH, "value"): [f"grid:{B21}", f"issue:{other_issue}:{B21}"],
    }
    deps = c.get("/_dash-dependencies").get_json()
    server_cbs = [d for d in deps if not d.get("clientside_function")]
    assert len(server_cbs) >= 10
    bad = forbidden_strings(site)
    answered = 0
    for cb in server_cbs:
        hits = [(i, dep) for i, dep in enumerate(cb["inputs"] + cb["state"]) if (dep["id"], dep["property"]) in tampered]
        if not hits:
            continue
        for i, dep in hits:
            for value in tampered[(dep["id"], dep["property"])]:
                body = payload(cb, {i: value, **lang_values(cb)}, trigger=dep if i < len(cb["inputs"]) else None)
                r = c.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
                assert r.status_code in (200, 204, 422), (cb["output"], r.status_code, r.get_data(as_text=True)[:300])
                out = r.get_data(as_text=True)
                leaked = [b for b in bad if b in out]
                assert not leaked, (cb["output"], value, leaked)
                answered += r.status_code == 200
    assert answered >= 8
    # the same requests for C1 do show C1's people (the test can see a leak)
    mine = payload(next(cb for cb in server_cbs if cb["output"].startswith(f"..{ids.PANEL}.")),
                   {0: {"code": C1}})
    r = c.post("/_dash-update-component", data=json.dumps(mine), content_type="application/json")
    assert r.status_code == 200 and "西支书" in r.get_data(as_text=True)


def lang_values(cb: dict) -> dict[int, str]:
    from dashboard.components import ids as app_ids

    return {i: "zh" for i, d in enumerate(cb["inputs"] + cb["state"]) if (d["id"], d["property"]) == (app_ids.LANG, "value")}


def payload(cb: dict, values: dict[int, object], trigger: dict | None = None) -> dict:
    """A request as dash-renderer sends it; ``values`` by position in inputs + state."""
    def item(i: int, dep: dict) -> dict:
        d = {"id": dep["id"], "property": dep["property"]}
        if i in values:
            d["value"] = values[i]
        return d

    n = len(cb["inputs"])
    trig = trigger or cb["inputs"][0]
    body = {"output": cb["output"], "outputs": split_callback_id(cb["output"]),
            "inputs": [item(i, d) for i, d in enumerate(cb["inputs"])],
            "changedPropIds": [f"{trig['id']}.{trig['property']}"]}
    body["parsedChangedPropsIds"] = list(body["changedPropIds"])
    if cb["state"]:
        body["state"] = [item(n + i, d) for i, d in enumerate(cb["state"])]
    return body


# -- an anonymous scan ----------------------------------------------------------------------------
def test_no_official_phone_in_any_anonymous_response(site):
    """Every route of the server (the API's operations, Open311, the pages, the map's data routes)
    and every Dash callback, called by a stranger: no phone number in any answer."""
    c = site.app.test_client()
    with site.engine.connect() as conn:
        phones = set(conn.execute(text("SELECT phone FROM official_contact")).scalars())
    assert len(phones) > 10
    paths = {"/", "/login", "/login?lang=en", "/admin", "/admin/audit", "/account/password", "/_dash-layout",
             "/_dash-dependencies", "/geo/grids/2.json", "/geo/grids/3.json", "/api/v1/openapi.json",
             "/open311/v2/services.json", "/open311/v2/requests.json", "/open311/v2/discovery.json"}
    for op in v1.registry.ops:
        if op.method == "GET":
            for iid in site.world.issues[:8]:
                paths.add(re.sub(r"\{(\w+)\}", lambda m, iid=iid: str(iid) if m.group(1) == "key" else "1", op.path))
    for lon, lat in ((113.625, 34.755), (113.635, 34.745), (113.625, 34.745), (113.635, 34.755)):
        paths.add(f"/api/v1/responsible?lon={lon}&lat={lat}")
    seen = 0
    for p in sorted(paths):
        r = c.get(p)
        out = r.get_data().decode("utf-8", "replace")
        assert not (set(PHONE_RE.findall(out)) & phones), p
        seen += r.status_code == 200
    assert seen >= 8
    for rule in site.app.url_map.iter_rules():   # every other rule of the server, as written
        if "<" not in rule.rule and "GET" in (rule.methods or ()):
            out = c.get(rule.rule).get_data().decode("utf-8", "replace")
            assert not (set(PHONE_RE.findall(out)) & phones), rule.rule
    # the callbacks: refused as a whole for a stranger (no public map)
    signed = client(site, "operator", cookie=True)
    for cb in [d for d in signed.get("/_dash-dependencies").get_json() if not d.get("clientside_function")]:
        r = c.post("/_dash-update-component", data=json.dumps(payload(cb, {})), content_type="application/json")
        assert r.status_code == 401 and not PHONE_RE.search(r.get_data(as_text=True))


# -- CSRF on the admin forms ------------------------------------------------------------------------
def test_admin_forms_refuse_a_post_without_its_csrf_token(site):
    c = client(site, "system_admin", cookie=True)
    with session_scope(site.engine) as s:
        target = s.scalar(select(Account.id).where(Account.login == "c1_member"))
    forms = [("/admin/accounts", {"login": "csrf-victim", "kind": "user"}),
             (f"/admin/accounts/{target}/grant", {"role": "operator", "grid": ""}),
             (f"/admin/accounts/{target}/revoke", {"role": "sunk_member", "grid": C1}),
             (f"/admin/accounts/{target}/disable", {}), (f"/admin/accounts/{target}/password", {}),
             (f"/admin/accounts/{target}/tokens", {"label": "x"}), (f"/admin/accounts/{target}/unlock", {})]
    with site.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    for path, data in forms:
        for token in (None, "forged-token"):
            body = dict(data) | ({"csrf_token": token} if token else {})
            r = c.post(path, data=body)
            assert r.status_code == 400, (path, r.status_code)
            assert "表单已过期" in r.get_data(as_text=True)
    with site.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == before
        assert conn.execute(text("SELECT count(*) FROM account WHERE login = 'csrf-victim'")).scalar_one() == 0
        assert conn.execute(text("SELECT disabled FROM account WHERE id = :a"), {"a": target}).scalar_one() is False
    # a cross-site POST is refused before any form is read, token or not
    r = c.post(f"/admin/accounts/{target}/disable", data={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
