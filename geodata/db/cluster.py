"""The embedded PostgreSQL + PostGIS cluster under ``var/pg``.

Used when no ``GRIDWATCH_DATABASE_URL`` is set. It holds two roles besides ``postgres``
(:mod:`geodata.db.roles`): the owner (``owner_url``: migrations, the demo loader, the CLI) and the
app (``app_url``: the web server); ``admin_url`` (``postgres``) only creates databases and roles.
A cluster made before the two roles is upgraded in place by ``up``. ``initdb`` refuses to run as root, so when the
process runs as root the server runs as the ``postgres`` system user (``runuser``).
Every operation is idempotent: ``up`` on a running cluster does nothing, a stale ``postmaster.pid``
left by a crash is detected and removed.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from geodata.db.roles import APP_ROLE, OWNER_ROLE, ensure_roles, prepare_database
from geodata.settings import Settings


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    pid: int | None
    port: int
    data_dir: Path
    url: str


def _bin_dir() -> Path:
    """Newest PostgreSQL whose share dir has PostGIS; falls back to the newest at all."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        found = shutil.which("pg_ctl")
        if not found:
            raise ClusterError("找不到 PostgreSQL（pg_ctl）；请先运行 make demo 安装 / PostgreSQL not found; run `make demo`")
        return Path(found).resolve().parent
    with_postgis = [c for c in candidates if glob.glob(f"/usr/share/postgresql/{c.split('/')[-2]}/extension/postgis.control")]
    return Path((with_postgis or candidates)[-1])


class Cluster:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.pg_dir.resolve()
        self.data = self.root / "data"
        self.run_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.port = settings.pg_port

    # -- helpers ---------------------------------------------------------------------------
    def _url(self, user: str) -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{self.settings.pg_database}"

    @property
    def admin_url(self) -> str:
        """The superuser's URL (creating databases and roles; tests and benchmarks' scratch work)."""
        return self._url("postgres")

    @property
    def owner_url(self) -> str:
        return self._url(OWNER_ROLE)

    @property
    def app_url(self) -> str:
        return self._url(APP_ROLE)

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self._as_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} 失败 / failed:\n{proc.stdout}\n{proc.stderr}\n{self._log_tail()}")
        return proc

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _prepare_dirs(self) -> None:
        for d in (self.root, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self._as_root():
            pw = pwd.getpwnam("postgres")
            for d in (self.root, self.run_dir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            if self.data.exists():
                os.chown(self.data, pw.pw_uid, pw.pw_gid)
            # the postgres user must be able to reach var/pg: make the ancestors traversable
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _alive(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"postgres" in cmdline and str(self.data).encode() in cmdline

    def running(self) -> bool:
        pid = self._pid()
        return pid is not None and self._alive(pid)

    # -- operations ------------------------------------------------------------------------
    def init(self) -> None:
        self._prepare_dirs()
        if self.initialised:
            return
        bin_dir = _bin_dir()
        self._run([bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"])
        conf = self.data / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# gridwatch embedded cluster\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.run_dir}'\n"
                "max_connections = 100\n"
                "shared_buffers = 256MB\n"
                "synchronous_commit = off\n"
                "log_min_messages = warning\n"
                "log_statement = 'none'\n"
                "timezone = 'UTC'\n"
            )

    def up(self) -> ClusterStatus:
        self.init()
        if not self.running():
            stale = self.data / "postmaster.pid"
            if stale.exists():  # crash left a pid file behind whose process is gone
                stale.unlink()
            if self.log.exists() and self._as_root():
                pw = pwd.getpwnam("postgres")
                os.chown(self.log, pw.pw_uid, pw.pw_gid)
            self._run([_bin_dir() / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])
        self._ensure_database()
        return self.status()

    def _ensure_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                     autocommit=True) as conn:
                    ensure_roles(conn)
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s",
                                          (self.settings.pg_database,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.settings.pg_database}" OWNER "{OWNER_ROLE}"')
                with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                     dbname=self.settings.pg_database, autocommit=True) as conn:
                    prepare_database(conn, self.settings.pg_database)
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def down(self) -> None:
        if self.running():
            self._run([_bin_dir() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])

    def status(self) -> ClusterStatus:
        running = self.running()
        return ClusterStatus(self.initialised, running, self._pid() if running else None, self.port,
                             self.data, self.app_url)
