"""``gridwatch user …`` and the production refusal, as a person runs them (the console script on a
scratch database): one bilingual line for every refusal, never a traceback."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from geodata.access import accounts
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.world import drop_database, run_gridwatch, scratch_database


@pytest.fixture(scope="module")
def url(server_url):
    name = f"gridwatch_test_cli_users{SUFFIX}"
    u = scratch_database(server_url, name)
    yield u
    drop_database(server_url, name)


def one_line_refusal(proc) -> str:
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert " / " in out   # zh / en
    return out


def test_user_commands(url):
    pw = "the-duty-officers-password"
    r = run_gridwatch(url, "user", "add", "duty", "--role", "operator", "--password-stdin", stdin=pw + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert pw not in r.stdout
    engine = create_engine(url)
    try:
        with session_scope(engine) as s:
            assert accounts.authenticate(s, "duty", pw).ok
        # a generated password: printed once, marked as a default one
        r = run_gridwatch(url, "user", "add", "leader", "--role", "grid_leader", "--grid", "41010200100101")
        assert r.returncode == 0 and "initial password" in r.stdout
        generated = r.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
        with session_scope(engine) as s:
            assert accounts.authenticate(s, "leader", generated).ok
            assert accounts.unsafe_accounts(s) == ["leader"]
        listed = run_gridwatch(url, "user", "list")
        assert listed.returncode == 0 and "duty" in listed.stdout and "grid_leader@41010200100101" in listed.stdout
        assert "default password" in listed.stdout and pw not in listed.stdout
        tok = run_gridwatch(url, "user", "token", "duty", "--label", "phone")
        raw = tok.stdout.strip()
        assert tok.returncode == 0 and raw.startswith("gw_")
        with session_scope(engine) as s:
            assert accounts.verify_token(s, raw).login == "duty"
        assert "wizard" in one_line_refusal(run_gridwatch(url, "user", "add", "x1", "--role", "wizard"))
        one_line_refusal(run_gridwatch(url, "user", "add", "x2", "--role", "grid_leader", "--grid", "41010200100100"))
        one_line_refusal(run_gridwatch(url, "user", "add", "duty", "--role", "operator"))          # taken
        one_line_refusal(run_gridwatch(url, "user", "token", "nobody"))                           # unknown
        one_line_refusal(run_gridwatch(url, "user", "passwd", "duty", "--password-stdin", stdin="short\n"))
        # production refuses to start while an enabled account has a default password ...
        refused = run_gridwatch(url, "serve", "--port", "1", env={"GRIDWATCH_PRODUCTION": "1"})
        assert refused.returncode == 2 and "leader" in refused.stdout and "Traceback" not in refused.stdout
        # ... which a chosen password (or disabling it) puts right
        r = run_gridwatch(url, "user", "passwd", "leader", "--password-stdin", stdin="leaders-own-password\n")
        assert r.returncode == 0
        with session_scope(engine) as s:
            assert accounts.unsafe_accounts(s) == []
        r = run_gridwatch(url, "user", "disable", "duty")
        assert r.returncode == 0
        with session_scope(engine) as s:
            assert accounts.verify_token(s, raw) is None and not accounts.authenticate(s, "duty", pw).ok
    finally:
        engine.dispose()
