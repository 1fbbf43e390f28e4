"""Settings (pydantic-settings, ``GRIDWATCH_`` prefix, ``.env`` supported)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_", env_file=".env", extra="ignore")

    #: An existing PostGIS (SQLAlchemy URL). When unset, a private cluster under ``var_dir`` is used.
    database_url: str | None = None
    #: Where the embedded cluster, logs and uploads live (git-ignored).
    var_dir: Path = PROJECT_ROOT / "var"
    #: Port of the embedded cluster (loopback only).
    pg_port: int = 54329
    pg_database: str = "gridwatch"
    #: Seconds a connection attempt may take (libpq's connect_timeout; 2 at least): while the server
    #: is unreachable, requests fail fast instead of holding the server's threads.
    db_connect_timeout_s: int = Field(default=3, ge=2)
    #: Asia/Shanghai is the business time zone: days, weeks and deadlines are counted there.
    timezone: str = "Asia/Shanghai"
    #: County code (GB/T 2260) used for generated grid codes; 中原区 = 410102.
    county_code: str = "410102"
    #: Basemap XYZ URL template ('' = none). Tianditu: include your tk key in the template.
    basemap_url: str = ""
    basemap_attribution: str = ""
    #: Local basemap directory ({z}/{x}/{y}.png) or MBTiles file served at /tiles/base/.
    basemap_path: Path | None = None
    #: Until accounts exist the dashboard runs with one viewer scope: the command centre's (all
    #: grids); whether it shows officials' phones is this switch. Reporters are never shown.
    dashboard_personal_data: bool = True
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    #: Worker threads of the WSGI server (waitress).
    server_threads: int = 16
    #: Seconds between live refreshes of the map.
    live_interval_s: float = Field(default=5.0, gt=0)
    #: Upper bound of issue markers sent for one viewport; beyond it the server aggregates.
    max_markers: int = 2000
    #: Upload limits for report photos.
    max_photo_bytes: int = 5 * 1024 * 1024
    max_body_bytes: int = 12 * 1024 * 1024

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"


@lru_cache
def get_settings() -> Settings:
    return Settings()
