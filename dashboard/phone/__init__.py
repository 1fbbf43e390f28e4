"""The grid staff's phone web app at ``/m/``: a small installable PWA, apart from the Dash app.

One HTML shell rendered here (texts of both languages from ``dashboard.i18n``, the reference URLs
with a content version), plain JavaScript and CSS under ``static/``, Leaflet's own files served from
the dash-leaflet package (no CDN), a web manifest and a service worker that caches the shell under
a versioned cache name. Everything the app does goes through the HTTP API with the device's bearer
token (``POST /api/v1/device/sign-in``); nothing here reads the database.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, redirect, request

from ..i18n import TEXT, t
from ..web import content_security_policy

STATIC = Path(__file__).with_name("static")
PREFIX = "/m"
#: the shell's own files (served from static/), cached by the service worker
SHELL_FILES = ("icon-192.png", "icon-512.png")
#: inlined into the HTML (one round trip less on a slow connection: 2 s on slow 3G); the script
#: runs under the page's CSP by its hash, never 'unsafe-inline'
INLINE_FILES = ("app.js", "app.css")
#: Leaflet, from the dash-leaflet package (see :func:`leaflet_dir`)
LEAFLET_FILES = ("leaflet.js", "leaflet.css")
#: basemap hosts whose tiles are in GCJ-02 (the pin is drawn shifted; coordinates sent as gcj02)
GCJ02_HOSTS = ("autonavi.com", "amap.com", "gtimg.com", "qq.com")
MIME = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@lru_cache(maxsize=1)
def leaflet_dir() -> Path:
    """Leaflet's dist folder: ``static/vendor/leaflet`` (committed, from the leaflet npm package
    that dash-leaflet bundles)."""
    return STATIC / "vendor" / "leaflet"


def phone_texts() -> dict[str, list[str]]:
    """The app's texts: the ``m_`` keys of ``dashboard.i18n.TEXT`` as ``{key: [zh, en]}``."""
    return {k[2:]: list(v) for k, v in TEXT.items() if k.startswith("m_")}


def _file(name: str) -> Path:
    return leaflet_dir() / name if name in LEAFLET_FILES else STATIC / name


@lru_cache(maxsize=1)
def version() -> str:
    """A content hash of the shell (its files and texts): the service worker's cache name."""
    h = hashlib.sha256()
    for name in SHELL_FILES + INLINE_FILES + LEAFLET_FILES:
        h.update(name.encode())
        h.update(_file(name).read_bytes())
    h.update(json.dumps(phone_texts(), sort_keys=True, ensure_ascii=False).encode())
    h.update(SHELL_TEMPLATE.encode())
    return h.hexdigest()[:12]


def asset_url(name: str) -> str:
    return f"{PREFIX}/{'vendor' if name in LEAFLET_FILES else 'static'}/{name}?v={version()}"


def shell_urls() -> list[str]:
    return [f"{PREFIX}/", f"{PREFIX}/manifest.webmanifest"] + [asset_url(n) for n in SHELL_FILES + LEAFLET_FILES]


SHELL_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#b71c1c">
<title>{title}</title>
<link rel="manifest" href="/m/manifest.webmanifest">
<link rel="icon" href="{icon}">
<link rel="apple-touch-icon" href="{icon}">
<style>{app_css}</style>
</head>
<body>
<div id="m-app" class="m-app" data-version="{version}" data-basemap="{basemap}" data-basemap-crs="{basemap_crs}"
     data-attribution="{attribution}" data-leaflet="{leaflet_js}"
     data-leaflet-css="{leaflet_css}" data-tz="{tz}">
  <header class="m-top"><h1 id="m-title">{app}</h1><span id="m-net" class="m-net"></span>
    <button type="button" id="m-lang" class="m-lang">EN</button></header>
  <main id="m-main"><p class="m-loading">{loading}</p></main>
  <nav id="m-nav" class="m-nav" hidden></nav>
</div>
<script type="application/json" id="m-texts">{texts}</script>
<script>{app_js}</script>
</body>
</html>
"""


@lru_cache(maxsize=1)
def _inline(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    assert "</script" not in text and "</style" not in text, name
    return text


def script_hash() -> str:
    """The CSP source of the inlined app script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(_inline("app.js").encode()).digest()).decode() + "'"


def shell_html(settings: Any) -> str:
    basemap = (settings.basemap_url or "") if not getattr(settings, "basemap_path", None) else "/tiles/base/{z}/{x}/{y}.png"
    host = urlsplit(basemap.replace("{s}", "a")).hostname or ""
    crs = "gcj02" if any(host == h or host.endswith("." + h) for h in GCJ02_HOSTS) else "wgs84"
    texts = json.dumps(phone_texts(), ensure_ascii=False).replace("</", "<\\/")
    return SHELL_TEMPLATE.format(
        icon=asset_url("icon-192.png"), leaflet_css=asset_url("leaflet.css"), app_css=_inline("app.css"),
        leaflet_js=asset_url("leaflet.js"), app_js=_inline("app.js"), version=version(),
        basemap=html.escape(basemap), basemap_crs=crs,
        attribution=html.escape(getattr(settings, "basemap_attribution", "") or ""), texts=texts,
        tz=html.escape(settings.timezone), title=t("m_html_title", "zh"), app=t("m_app", "zh"),
        loading=f'{t("m_loading", "zh")} {t("m_loading", "en")}')


def manifest() -> dict:
    return {"name": t("m_html_title", "zh"), "short_name": t("m_app", "zh"), "lang": "zh-CN", "start_url": f"{PREFIX}/",
            "scope": f"{PREFIX}/", "display": "standalone", "orientation": "portrait",
            "background_color": "#ffffff", "theme_color": "#b71c1c",
            "description": f'{t("m_manifest_desc", "zh")} — {t("m_manifest_desc", "en")}',
            "icons": [{"src": asset_url("icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
                      {"src": asset_url("icon-512.png"), "sizes": "512x512", "type": "image/png",
                       "purpose": "any maskable"}]}


SW_TEMPLATE = """// Gridwatch phone app service worker (generated by dashboard/phone; version {version})
const CACHE = 'gw-m-{version}';
const SHELL = {urls};
self.addEventListener('install', e => {{
  e.waitUntil(caches.open(CACHE).then(c => c.addAll(SHELL)).then(() => self.skipWaiting()));
}});
self.addEventListener('activate', e => {{
  e.waitUntil(caches.keys().then(keys => Promise.all(
    keys.filter(k => k.startsWith('gw-m-') && k !== CACHE).map(k => caches.delete(k))))
    .then(() => self.clients.claim()));
}});
self.addEventListener('fetch', e => {{
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/m/')) return;  // the API: never cached
  const key = req.mode === 'navigate' ? '/m/' : url.pathname + url.search;
  e.respondWith(caches.open(CACHE).then(c => c.match(key).then(hit => {{
    if (hit) return hit;   // the shell, from the cache: starts offline and fast
    return fetch(req);
  }})));
}});
"""


def service_worker() -> str:
    return SW_TEMPLATE.format(version=version(), urls=json.dumps(shell_urls()))


@lru_cache(maxsize=16)
def _gzipped(name: str) -> bytes:
    return gzip.compress(_file(name).read_bytes(), 9, mtime=0)


def _compressed(resp: Response, packed: bytes | None = None) -> Response:
    """gzip for clients that take it (a slow 3G phone: the shell is a third of its size)."""
    if "gzip" not in (request.headers.get("Accept-Encoding") or ""):
        return resp
    resp.set_data(packed if packed is not None else gzip.compress(resp.get_data(), 6, mtime=0))
    resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Vary"] = "Accept-Encoding"
    return resp


def register_phone(server: Flask, settings: Any) -> None:
    """Serve the phone app under ``/m/`` on the dashboard's Flask server."""
    bp = Blueprint("phone", __name__)

    def no_store(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @bp.route(PREFIX)
    def m_root() -> Response:
        return redirect(f"{PREFIX}/", 301)

    @bp.route(f"{PREFIX}/")
    def m_shell() -> Response:
        resp = no_store(Response(shell_html(settings), mimetype="text/html"))
        resp.headers["Content-Security-Policy"] = content_security_policy(settings, (script_hash(),))
        return _compressed(resp)

    @bp.route(f"{PREFIX}/manifest.webmanifest")
    def m_manifest() -> Response:
        return no_store(Response(json.dumps(manifest(), ensure_ascii=False), mimetype="application/manifest+json"))

    @bp.route(f"{PREFIX}/sw.js")
    def m_sw() -> Response:
        resp = no_store(Response(service_worker(), mimetype="text/javascript"))
        resp.headers["Service-Worker-Allowed"] = f"{PREFIX}/"
        return resp

    def _asset(name: str, allowed: tuple[str, ...]) -> Response:
        if name not in allowed:
            abort(404)
        path = _file(name)
        resp = Response(path.read_bytes(), mimetype=MIME[path.suffix])
        resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return _compressed(resp, _gzipped(name)) if path.suffix != ".png" else resp

    @bp.route(f"{PREFIX}/static/<name>")
    def m_static(name: str) -> Response:
        return _asset(name, SHELL_FILES + INLINE_FILES)

    @bp.route(f"{PREFIX}/vendor/<name>")
    def m_vendor(name: str) -> Response:
        return _asset(name, LEAFLET_FILES)

    server.register_blueprint(bp)
