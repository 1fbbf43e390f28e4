"""Settings (pydantic-settings, ``GRIDWATCH_`` prefix, ``.env`` supported)."""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The business time zone unless GRIDWATCH_TIMEZONE says otherwise: days, weeks and deadlines are counted there.
DEFAULT_TIMEZONE = "Asia/Shanghai"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_", env_file=".env", extra="ignore")

    #: An existing PostGIS (SQLAlchemy URL). When unset, a private cluster under ``var_dir`` is used.
    database_url: str | None = None
    #: The owner role's URL on that server (migrations, the demo loader, the CLI's jobs); the app
    #: connects with ``database_url``, a role that owns nothing (docs/database.md). Unset: the one
    #: URL does both (a database set up before the two roles).
    owner_database_url: str | None = None
    #: Where the embedded cluster, logs and uploads live (git-ignored).
    var_dir: Path = PROJECT_ROOT / "var"
    #: Port of the embedded cluster (loopback only).
    pg_port: int = 54329
    pg_database: str = "gridwatch"
    #: Seconds a connection attempt may take (libpq's connect_timeout; 2 at least): while the server
    #: is unreachable, requests fail fast instead of holding the server's threads.
    db_connect_timeout_s: int = Field(default=3, ge=2)
    #: The business time zone (IANA name): days, weeks and deadlines are counted there
    #: (geodata.clock.business_zone builds it; domain code takes it as an argument).
    timezone: str = DEFAULT_TIMEZONE
    #: County code (GB/T 2260) used for generated grid codes; 中原区 = 410102.
    county_code: str = "410102"
    #: Basemap XYZ URL template ('' = none). Tianditu: include your tk key in the template.
    basemap_url: str = ""
    basemap_attribution: str = ""
    #: Local basemap directory ({z}/{x}/{y}.png) or MBTiles file served at /tiles/base/.
    basemap_path: Path | None = None
    #: Accounts and sign-in (geodata.access). ``production``: the server refuses to start while an
    #: enabled account has a demo or default (generated) password.
    production: bool = False
    #: The session cookie's Secure flag. Browsers keep Secure cookies on http://127.0.0.1 and
    #: http://localhost too; turn it off only for plain http on another address (never in production).
    secure_cookies: bool = True
    #: Signs the CSRF tokens of the forms; unset: a random key kept in ``var_dir/secret_key``.
    secret_key: str | None = None
    #: How long a sign-in lasts (hours).
    session_hours: float = Field(default=12.0, gt=0)
    #: Anonymous visitors see the map (public scope: every grid, no personal data). Off: sign-in page.
    public_map: bool = False
    #: Single sign-on (OpenID Connect, dashboard.sso): on when an issuer and a client id are set. The
    #: provider's ``oidc_login_claim`` names the account (its login): accounts, roles and grids are
    #: still made here (``gridwatch user add``), never by the provider. The redirect URI to register
    #: with the provider is ``<site>/login/oidc/callback``.
    oidc_issuer: str | None = None          # e.g. https://sso.example.gov.cn/realms/zhongyuan
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile"
    oidc_login_claim: str = "preferred_username"
    oidc_label: str = ""                    # the button's provider name (default: 统一身份认证 / SSO)
    #: the callback URL as the provider must see it (behind a proxy); default: this request's host
    oidc_redirect_url: str | None = None
    #: The street publishes its officials' names in 该找谁 (and ``office_phone``, its office number).
    publish_contacts: bool = False
    office_phone: str = ""
    host: str = "127.0.0.1"
    port: int = 8050
    #: The dashboard's address as its users reach it (the links in issued bulletins); unset:
    #: http://host:port.
    site_url: str = ""
    debug: bool = False
    #: Worker threads of the WSGI server (waitress); the database pool holds as many connections.
    server_threads: int = Field(default=16, ge=1)
    #: A request waiting longer than this for a pooled connection fails (503 server_busy).
    db_pool_timeout_s: float = Field(default=3.0, gt=0)
    #: Per web request (API, Dash callbacks, tiles): the longest one SQL statement may run (503
    #: query_timeout beyond) and the longest a transaction may sit idle. The CLI has no such limit.
    statement_timeout_s: float = Field(default=5.0, gt=0)
    idle_in_transaction_timeout_s: float = Field(default=10.0, gt=0)
    #: waitress closes a connection that sent nothing for this long (slow clients hold no thread:
    #: waitress reads a whole request before a worker runs it, but each holds a connection slot).
    channel_timeout_s: int = Field(default=30, ge=1)
    #: Requests that may cost much CPU (Dash callbacks, heat tiles, text searches, bodies over 1 MB)
    #: run at most this many at once; the others wait up to db_pool_timeout_s, then 503 server_busy.
    #: Keeps the cheap requests (API reads and writes) fast while heavy ones queue. Default: one
    #: fewer than the CPU cores (at least 1), so one core is always left for the cheap requests.
    heavy_concurrency: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1)
    #: Under sustained contention (the heavy lane busy for over a second while others wait), a slot
    #: rests this many times as long as its request took (dashboard.api.limits.HeavyLane): heavy
    #: work then has at most 1 / (1 + heavy_pause) of the lane; 0 never rests.
    heavy_pause: float = Field(default=2.0, ge=0, le=10)
    #: Seconds between live refreshes of the map.
    live_interval_s: float = Field(default=5.0, gt=0)
    #: Upper bound of issue markers sent for one viewport; beyond it the server aggregates.
    max_markers: int = 2000
    #: Upper bound of one Dash callback request (``POST /_dash-update-component``); a grid click
    #: carries the clicked grid's outline, so this is sized for detailed boundaries.
    max_callback_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Upload limits for report photos.
    max_photo_bytes: int = 5 * 1024 * 1024
    #: Request caps on every route (413/414 in the API error format): the body (the API's photo
    #: uploads), the query string; a Dash callback request is capped by ``max_callback_bytes``.
    max_body_bytes: int = 12 * 1024 * 1024
    #: A JSON body (other than a Dash callback's) is capped lower: parsing JSON, and decoding the
    #: base64 photos it may carry, holds the interpreter for the whole body (about 7 ms for 12 MB,
    #: 11 ms more per 5 MB photo decoded), so big photos come as multipart/form-data files, read
    #: and stored in small steps (413 ``too_large`` names the multipart route).
    max_json_bytes: int = Field(default=1024 * 1024, gt=0)
    #: `gridwatch serve` reads the bodies of big requests (photo uploads) at most this fast, all
    #: together (dashboard.serving): a flood of uploads cannot take the processor from the others.
    upload_bytes_per_s: int = Field(default=32 * 1024 * 1024, gt=0)
    max_query_chars: int = 4096
    #: Who may frame the pages (CSP ``frame-ancestors``): space-separated sources, e.g.
    #: ``'self' https://wall.example.cn``; ``'none'`` forbids framing.
    frame_ancestors: str = "'self'"
    #: The wall (/wall, docs/wall.md): live streams (Server-Sent Events) served at once. Each holds
    #: one waitress thread for as long as it is open, so `gridwatch serve` runs server_threads +
    #: wall_streams threads: the streams never take the API's threads. A wall beyond the cap polls.
    wall_streams: int = Field(default=24, ge=0, le=500)
    #: The longest one wall stream lasts (s): then it ends and the browser reconnects at once with
    #: Last-Event-ID, missing nothing (bounded work per request; a dropped peer frees its slot).
    wall_stream_max_s: float = Field(default=900.0, gt=0, le=86400)
    #: The wall's colour bands per grid: red with this many overdue open cases or more …
    wall_band_overdue: int = Field(default=1, ge=1)
    #: … amber with this many open cases or more, else green.
    wall_band_open: int = Field(default=10, ge=1)
    #: Seconds per stop of the wall's hotspot tour (0: no tour); a wall's URL may say ?tour=N.
    wall_tour_s: int = Field(default=20, ge=0, le=3600)
    #: The wall's numbers (KPIs, colours, ranking, trend) are recomputed at most this often, in the
    #: background, shared by every wall of the process; the feed lines never wait for them.
    wall_state_min_s: float = Field(default=10.0, ge=0.5, le=600)

    @field_validator("frame_ancestors")
    @classmethod
    def _sources(cls, value: str) -> str:
        tokens = value.split()
        source = re.compile(r"'self'|'none'|(?:https?:|(?:https?://)?(?:\*\.)?[A-Za-z0-9.-]+(?::[0-9]{1,5}|:\*)?)")
        if not tokens or not all(source.fullmatch(t) for t in tokens) or ("'none'" in tokens and len(tokens) > 1):
            raise ValueError("frame_ancestors: space-separated CSP sources ('self', 'none', https://host)")
        return " ".join(tokens)

    @property
    def site_base(self) -> str:
        return self.site_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"


@lru_cache
def get_settings() -> Settings:
    return Settings()
