"""The API on the app role: what row-level security changes for its callers (nothing they may
do is refused; what they may not see stays unseen even if the Python rule were skipped)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from geodata.access.scope import Scope
from geodata.clock import zone
from geodata.db import open_session
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow.filters import IssueFilter
from geodata.workflow.queries import query_issues
from tests.conftest import SUFFIX
from tests.world import C1, C2, png_bytes, scratch_api

TZ = zone(DEFAULT_TIMEZONE)
EAST = {"kind": "problem", "domain": "sanitation", "title": "东边的问题", "lon": 113.635, "lat": 34.755}


@pytest.fixture(scope="module")
def api(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_rls_api{SUFFIX}", tmp_path_factory.mktemp("var")) as a:
        yield a


def test_the_app_connects_as_the_app_role(api):
    with api.app_engine.connect() as c:
        assert c.execute(text("SELECT current_user")).scalar_one() == "gridwatch_app"


def test_an_official_reports_outside_their_grids_and_gets_it_back(api):
    """Anyone may report anywhere: a west-community member reports in the east community, with a
    photo and their name; the answer is the issue (RLS lets the reporting transaction read back
    what it wrote) — and afterwards the issue is outside what they may see."""
    import base64

    body = {**EAST, "reporter_name": "西两委", "photos": [
        {"content_type": "image/png", "data": base64.b64encode(png_bytes()).decode()}]}
    r = api.client().post("/api/v1/issues", json=body, headers=api.hdr("c1_member"))
    assert r.status_code == 201, r.data
    out = r.get_json()
    assert out["grid"]["code"].startswith(C2[:12]) and out["number"].startswith("WT") and len(out["photos"]) == 1
    assert api.client().get(f"/api/v1/issues/{out['id']}", headers=api.hdr("c1_member")).status_code == 404
    seen = api.client().get(f"/api/v1/issues/{out['id']}", headers=api.hdr("c2_secretary")).get_json()
    assert seen["reporter"]["name"] == "西两委"
    with api.engine.connect() as c:   # stored in full (superuser view)
        assert c.execute(text("SELECT count(*) FROM issue_event WHERE issue_id = :i"), {"i": out["id"]}).scalar_one() == 1
        assert c.execute(text("SELECT name FROM issue_reporter WHERE issue_id = :i"), {"i": out["id"]}).scalar_one() == "西两委"


def test_numbers_stay_distinct_across_scopes(api):
    """Issue numbers are taken over every issue, not over what the reporter may see."""
    a = api.client().post("/api/v1/issues", json=EAST, headers=api.hdr("c1_member")).get_json()
    b = api.client().post("/api/v1/issues", json={**EAST, "lon": 113.625}, headers=api.hdr("c2_member")).get_json()
    assert a["number"] != b["number"]


def test_the_second_wall_holds_when_the_first_is_skipped(api):
    """A query that forgets the Python rule (asks for everything) under a community's transaction
    scope still gets that community's issues only."""
    api.client().post("/api/v1/issues", json=EAST)
    api.client().post("/api/v1/issues", json={**EAST, "lon": 113.625})
    with open_session(api.app_engine, scope=Scope.grids(C1)) as s:
        page = query_issues(s, IssueFilter(), Scope.everything(), page_size=200, tz=TZ)
    assert page["total"] > 0 and all(i["community_code"] == C1 for i in page["items"])
    with api.engine.connect() as c:
        everywhere = c.execute(text("SELECT count(*) FROM issue")).scalar_one()
    assert page["total"] < everywhere
