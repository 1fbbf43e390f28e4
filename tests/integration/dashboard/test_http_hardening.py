"""Every URL rule of the server (Dash pages, assets, component suites, tiles, the API, Open311),
enumerated from ``url_map`` so that a new route is covered without touching this file, against
generated bad input: odd header values (non-ASCII digits, latin-1 bytes, control characters) and
odd path segments (ids beyond 64 bits, traversal, encoded traversal, NUL, invalid UTF-8).

The property: never a 5xx; the log gets at most one line per request, never a traceback and never
the raw input; a 4xx is the API's error body (not an HTML page; the sign-in pages, which people
read, answer a refused form with the page and its message). Requests are made signed in (the
command centre), so every route's own parsing runs; the gate's answers to strangers are tested
in ``test_auth.py``. Plus the server-wide response
headers (CSP, nosniff, Referrer-Policy) and the explicit cases of the outside test's report."""
from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from tests.conftest import SUFFIX
from tests.world import scratch_api, session_id

log_fuzz = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _rules() -> list[tuple[str, str]]:
    """(rule, method) of every route, from a server wired as ``create_app`` wires it (building it
    does not connect to the database)."""
    from dashboard import create_dash
    from dashboard.api import register_api
    from geodata.settings import Settings

    s = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    engine = create_engine(s.database_url)
    server = create_dash(s, engine).server
    register_api(server, s, engine)
    out = sorted({(r.rule, m) for r in server.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}})
    engine.dispose()
    return out


RULES = _rules()


@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory):
    tiles = tmp_path_factory.mktemp("basemap")  # a (empty) local basemap, so /tiles/base/ parses z/x/y
    with scratch_api(server_url, f"gridwatch_test_http{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True,
                     basemap_path=tiles, wall_stream_max_s=1.0) as a:   # a wall stream ends within ~1 s
        a.sid = session_id(a.engine)
        yield a


# -- generated input ------------------------------------------------------------------------------
NASTY_SEGMENTS = [
    "1" * 30, str(2**63), str(2**64), "9" * 19, "0", "-1", "١٢٣", "²", "１２", "߁", "..", "../../etc/passwd",
    "%2e%2e", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252f", "%00", "a%00b",
    "%ff%fe", "%c0%ae%c0%ae", "..\\..\\windows\\win.ini", "nul.json", "1e309", "NaN", "%3Cscript%3E", "x" * 3000,
]
segment = st.one_of(
    st.sampled_from(NASTY_SEGMENTS),
    st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe="")),
    st.integers(min_value=2**63 - 3, max_value=2**90).map(str),
)
path_value = st.lists(segment, min_size=1, max_size=4).map("/".join)

#: Header values as a WSGI server hands them over (bytes decoded as latin-1: a UTF-8 '١٢٣' arrives
#: as 'Ù¡Ù¢Ù£'), plus the characters themselves (the test client passes str through).
NASTY_HEADERS = ["١٢٣", "²", "１２", "١٢٣".encode().decode("latin-1"), "²".encode().decode("latin-1"),
                 "１２".encode().decode("latin-1"), "0", "-1", "1" * 30, " 7 ", "7\t", "\x00", "1\x00", "\x7f",
                 "１", "1e3", "0x10", "+5", "true", "null", "ÿþ", "%ff", "a" * 5000]
header_value = st.one_of(
    st.sampled_from(NASTY_HEADERS),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=20),
)
HEADER_NAMES = ["Idempotency-Key", "Content-Type", "Accept", "Accept-Language", "Cookie",
                "If-None-Match", "If-Modified-Since", "If-Range", "Range", "Authorization", "Origin",
                "X-Forwarded-For", "User-Agent"]
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), header_value, min_size=1, max_size=4)

_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def plain(rule: str) -> str:
    """A well-formed path for ``rule`` (so header tests reach the view)."""
    return _ARG.sub(lambda m: {"int": "1", "path": "x/y"}.get(m.group(1) or "", "x"), rule)


# -- the property ---------------------------------------------------------------------------------
def signed_in(site):
    """A client signed in to the dashboard (cookie) and to the API (the operator's bearer token)."""
    from dashboard.auth import SESSION_COOKIE

    c = site.client("operator")
    c.set_cookie(SESSION_COOKIE, site.sid)
    return c


#: pages people read: a refused form is the page with its message, not a JSON body
SIGN_IN_PAGES = ("/login", "/logout", "/account/password")
#: the other pages people read (admin, wall, phone app, the bulletin form): HTML answers there too
PEOPLE_PAGES = ("/admin", "/wall", "/m/", "/assessment/")


def call(site, method: str, path: str, hdrs: dict | None = None):
    c = signed_in(site)
    if path.endswith("/device/sign-out"):
        # signing out revokes the token it is sent with: never the operator's the other cases use
        c.environ_base.pop("HTTP_AUTHORIZATION", None)
    if method == "POST":
        return c.post(path, headers=hdrs or {}, data=b"")
    return c.open(path, method=method, headers=hdrs or {})


def error_of(resp) -> dict:
    """The error object of a 4xx (the Open311 list carries the same object in each element)."""
    assert resp.mimetype == "application/json", resp.data[:200]
    body = resp.get_json()
    err = body[0]["error"] if isinstance(body, list) else body["error"]
    assert err["code"] and err["message_zh"] and err["message_en"]
    return err


def check(resp, caplog, raw_values: list[str], rule: str) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.data[:300])
    assert b"Traceback" not in resp.data
    if resp.status_code == 404 and resp.mimetype == "text/html":
        # a path that is no page (Dash would answer any path): the 404 page, never for API/data routes
        assert "找不到该页面".encode() in resp.data, resp.data[:300]
        assert not rule.startswith(("/api/", "/open311", "/geo/", "/tiles/")), rule
    elif resp.status_code >= 400 and not ((rule in SIGN_IN_PAGES or rule.startswith(PEOPLE_PAGES))
                                          and resp.mimetype == "text/html"):
        error_of(resp)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in text and len(caplog.records) <= 1, text
    # what the log line may say whatever was sent: the route and the answer's status and error code
    # (a fuzzed value that happens to be part of them, e.g. "not_fo", is no leak)
    own = f"{rule} {resp.status_code} {_error_code(resp)}"
    for raw in raw_values:
        for v in {raw, unquote(raw)}:
            if len(v) >= 6 and v not in own:
                assert v not in text, (v, text)


def _error_code(resp) -> str:
    if resp.mimetype != "application/json":
        return ""
    body = resp.get_json(silent=True)
    err = (body[0] if isinstance(body, list) and body else body or {}).get("error") if body else None
    return str(err.get("code", "")) if isinstance(err, dict) else ""


def with_examples(examples: list[dict]):
    """Hypothesis ``@example``s from a list: the known-bad values are tried on every rule, first."""
    def deco(f):
        for ex in examples:
            f = example(**ex)(f)
        return f
    return deco


@pytest.mark.parametrize("rule,method", RULES, ids=[f"{m} {r}" for r, m in RULES])
@log_fuzz
@with_examples([{"seg": v, "tail": v} for v in NASTY_SEGMENTS])
@given(seg=segment, tail=path_value)
def test_odd_path_segments_are_4xx_never_5xx(site, caplog, rule, method, seg, tail):
    if "<" in rule:  # every int/string variable gets ``seg``, every path variable ``tail``
        path = _ARG.sub(lambda m: tail if m.group(1) == "path" else seg, rule)
    else:  # a fixed path: fuzz what follows it
        path = rule.rstrip("/") + "/" + tail
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        resp = call(site, method, path)
    check(resp, caplog, [seg, tail], rule)


@pytest.mark.parametrize("rule,method", RULES, ids=[f"{m} {r}" for r, m in RULES])
@log_fuzz
@with_examples([{"hdrs": {n: v for n in HEADER_NAMES if n != skip}}
                for v in NASTY_HEADERS for skip in ("", "Authorization")])
@given(hdrs=headers)
def test_odd_headers_are_4xx_never_5xx(site, caplog, rule, method, hdrs):
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        resp = call(site, method, plain(rule), hdrs)
    check(resp, caplog, list(hdrs.values()), rule)


HEAT = "/tiles/heat/14/13363/6466.png"
query_value = st.one_of(st.sampled_from(["9999-12-31", "0001-01-01", "week", "ever", "problem", "x\x00y", "%00",
                                         "open,closed,nope", "1" * 400, "", ","]), st.text(max_size=20))


@log_fuzz
@given(q=st.dictionaries(st.sampled_from(["k", "d", "s", "p", "f", "t", "o", "v", "x"]), query_value, max_size=4))
def test_heat_tile_filters_are_4xx_never_5xx(site, caplog, q):
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        resp = signed_in(site).get(HEAT, query_string=q)
    check(resp, caplog, list(q.values()), HEAT)
    assert resp.status_code in (200, 400)


# -- the cases of the outside test's report --------------------------------------------------------
@pytest.mark.parametrize("value", ["١٢٣", "²", "１２", "１２".encode().decode("latin-1"), "12a", "0",
                                   "99999999999", "1\x00"])
@pytest.mark.parametrize("path", ["/api/v1/meta", "/api/v1/issues", "/open311/v2/services.json"])
def test_a_bad_bearer_token_is_401_naming_the_header(site, path, value):
    """A malformed or unknown token is refused — never taken for a resident's request."""
    for header in (value, f"Bearer {value}", f"Basic {value}"):
        r = site.client().get(path, headers={"Authorization": header})
        assert r.status_code == 401, (header, r.data)
        err = error_of(r)
        assert err["code"] == "invalid_token" and err["field"] == "Authorization"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        if path.startswith("/open311"):
            assert r.get_json()[0]["code"] == 401


@pytest.mark.parametrize("value", ["é", "a b", "١", "", "x" * 201])
def test_idempotency_key_header_must_be_visible_ascii(site, value):
    r = site.client().post("/api/v1/issues", json={"domain": "sanitation", "title": "t", "lon": 113.625,
                                                   "lat": 34.755}, headers={"Idempotency-Key": value})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "Idempotency-Key"


BIG = "1" * 30


@pytest.mark.parametrize("method,path", [
    ("GET", f"/geo/issues/{BIG}.json"), ("GET", "/geo/issues/١٢٣.json"), ("GET", f"/api/v1/issues/{BIG}"),
    ("GET", f"/api/v1/photos/{BIG}"), ("GET", f"/api/v1/photos/{2**63}"), ("POST", f"/api/v1/diary/{BIG}/report"),
    ("GET", f"/open311/v2/requests/{BIG}.json"), ("GET", f"/tiles/heat/{BIG}/1/1.png"),
    ("GET", f"/tiles/base/{10**18}/1/1.png"), ("GET", "/tiles/base/25/1/1.png"), ("GET", "/tiles/base/3/8/1.png"),
    ("GET", f"/geo/grids/{BIG}.json"), ("GET", "/assets/../../etc/passwd"), ("GET", "/assets/%2e%2e/%2e%2e/etc/passwd"),
    ("GET", "/assets/..%2f..%2fetc%2fpasswd"), ("GET", "/assets/a%00b.css"),
    ("GET", "/_dash-component-suites/../../etc/passwd"), ("GET", "/_dash-component-suites/dash/../../x.js"),
    ("GET", "/_dash-component-suites/nope/x.js"), ("GET", "/_dash-component-suites/dash/%00.js"),
    ("GET", "/_dash-component-suites/dash/dcc/%ff.js"),
])
def test_bad_paths_are_json_404(site, method, path):
    r = call(site, method, path)
    assert r.status_code == 404, r.data[:200]
    assert error_of(r)["code"] == "not_found"
    assert b"root:" not in r.data


def test_a_bug_is_a_json_500_with_type_only_in_the_log(site, caplog, monkeypatch):
    """The one handler also covers real bugs: JSON body, the log names the type, not the message."""
    from geodata.workflow import queries

    def boom(*a, **k):
        raise RuntimeError("secret-" + "1380000" * 2)  # the value, not this source line, must stay out

    monkeypatch.setattr(queries, "list_domains", boom)
    monkeypatch.setattr("dashboard.api.meta.list_domains", boom)
    with caplog.at_level(logging.DEBUG):
        r = site.client().get("/api/v1/meta")
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "internal_error"
    assert "RuntimeError" in caplog.text and "secret-13800001380000" not in caplog.text


# -- what the server sends -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/_dash-layout", "/assets/gridwatch.css", "/geo/grids/3.json",
                                  "/tiles/heat/14/13363/6466.png", "/api/v1/meta", "/api/v1/nothing",
                                  "/open311/v2/services.json", "/_favicon.ico"])
def test_security_headers_on_every_response(site, path):
    r = site.client().get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = dict(d.strip().split(" ", 1) for d in r.headers["Content-Security-Policy"].split(";"))
    assert csp["frame-ancestors"] == "'self'" and csp["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]


def test_csp_allows_exactly_dash_inline_renderer_script(site):
    import base64
    import hashlib

    page = signed_in(site).get("/")
    assert page.status_code == 200
    html = re.sub(r"<!--.*?-->", "", page.data.decode(), flags=re.S)  # Dash's IE-only alert sits in a comment
    inline = re.findall(r'<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>(.*?)</script>', html, re.S)
    assert inline, "Dash renders an inline renderer script"
    csp = page.headers["Content-Security-Policy"]
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_frame_ancestors_and_basemap_origin_come_from_settings():
    from dashboard.web import basemap_source, content_security_policy
    from geodata.settings import Settings

    s = Settings(frame_ancestors="'self'  https://wall.example.cn", basemap_url="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    csp = content_security_policy(s)
    assert "frame-ancestors 'self' https://wall.example.cn" in csp
    assert "img-src 'self' data: blob: https://*.tile.example.org" in csp
    assert basemap_source("https://t{s}.tianditu.gov.cn/img_w/wmts?tk=K") == "https://*.tianditu.gov.cn"
    assert basemap_source("https://a.{s}.example/{z}.png") == "https:"
    assert basemap_source("") is None
    for bad in ["'self'; script-src *", "https://a.example, https://b.example", "'none' 'self'", ""]:
        with pytest.raises(ValueError):
            Settings(frame_ancestors=bad)
