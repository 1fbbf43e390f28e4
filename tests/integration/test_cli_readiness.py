"""Every `gridwatch` command facing a database that is missing, unreachable or not migrated says so in
one line (zh + en) with the command that fixes it — never a traceback (issue 8 §1). Real PostGIS."""
from __future__ import annotations

import socket

import pytest
from sqlalchemy.engine import make_url

from geodata.db.admin import create_database, drop_database
from tests.conftest import SUFFIX
from tests.world import run_gridwatch

COMMANDS = [
    ("import-grids", "{tmp}/e.geojson", "--level", "1"),
    ("export-grids", "{tmp}/out.geojson"),
    ("assign-points", "{tmp}/e.geojson", "{tmp}/out.csv"),
    ("db", "migrate"),
    ("db", "status"),
    ("demo", "--no-notices"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def unmigrated_url(server_url):
    name = f"gridwatch_test_unmigrated{SUFFIX}"
    url = create_database(server_url, name, migrate=False)
    yield url
    drop_database(server_url, name)


def _check_one_line(proc, *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out and "╭" not in out and "File \"" not in out, out
    # `db status` first says which database it looked at; the diagnosis is the one line after it
    lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("external database:")]
    assert len(lines) == 1, out
    assert any("\u4e00" <= ch <= "\u9fff" for ch in lines[0]) and " / " in lines[0], out
    for n in needles:
        assert n in lines[0], out


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c[:2] not in (("db", "migrate"),) and c[0] != "demo"])
def test_unmigrated_database(unmigrated_url, tmp_path, cmd):
    (tmp_path / "e.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    args = [a.format(tmp=tmp_path) for a in cmd]
    proc = run_gridwatch(unmigrated_url, *args)
    if cmd[:2] == ("db", "status"):  # status reports the revision, and fails while it is not head
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "None" in proc.stdout and "head" in proc.stdout
        return
    _check_one_line(proc, "未迁移", "not migrated", "gridwatch db migrate")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.geojson").exists()


@pytest.mark.parametrize("cmd", COMMANDS)
def test_missing_database(server_url, tmp_path, cmd):
    (tmp_path / "e.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    url = make_url(server_url).set(database=f"gridwatch_test_absent{SUFFIX}").render_as_string(False)
    proc = run_gridwatch(url, *[a.format(tmp=tmp_path) for a in cmd])
    _check_one_line(proc, "不存在", "does not exist", "gridwatch db migrate")


@pytest.mark.parametrize("cmd", COMMANDS)
def test_unreachable_server(tmp_path, cmd):
    (tmp_path / "e.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/gridwatch"
    proc = run_gridwatch(url, *[a.format(tmp=tmp_path) for a in cmd])
    _check_one_line(proc, "无法连接", "cannot connect")


def test_db_url_is_the_app_role_without_its_password():
    from tests.world import run_gridwatch

    got = run_gridwatch("postgresql+psycopg://gridwatch_app:s3cret@127.0.0.1:1/gridwatch", "db", "url")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "postgresql+psycopg://gridwatch_app:***@127.0.0.1:1/gridwatch"


def test_db_url_of_the_embedded_cluster_is_the_app_role(tmp_path):
    import os
    import subprocess
    import sys

    from geodata.settings import PROJECT_ROOT

    env = {**os.environ, "GRIDWATCH_VAR_DIR": str(tmp_path)}
    env.pop("GRIDWATCH_DATABASE_URL", None)
    got = subprocess.run([sys.executable, "-m", "app", "db", "url"], capture_output=True, text=True, env=env,
                         cwd=PROJECT_ROOT, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().startswith("postgresql+psycopg://gridwatch_app@127.0.0.1:")
