"""Bulletins: the PDF (A4, Chinese font embedded) and the workbook (one sheet per table) are made,
stored with their inputs, downloaded again byte for byte, and re-rendered identically from the
stored runs; the CLI prints the files it wrote and refuses a bad period in one bilingual line."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from etl.bulletins import get_bulletin, issue_bulletin, rerender
from geodata.access.scope import Scope
from geodata.assessment.periods import parse_period
from geodata.errors import DomainError
from tests.integration.geodata.assessment.conftest import AS_OF
from tests.world import TZ, run_gridwatch

OCT = parse_period("2026-10")


@pytest.fixture
def issued(asession):
    s, a = asession
    return s, a, issue_bulletin(s, Scope.everything(), OCT, level=3, tz=TZ, as_of=AS_OF)


def test_pdf_and_workbook(issued):
    _s, _a, b = issued
    assert b.pdf.startswith(b"%PDF-") and b"/MediaBox [0 0 595.28 841.89]" in b.pdf   # A4 in points
    assert b"FontFile3" in b.pdf and b"NotoSansCJK" in b.pdf                          # the CJK font, embedded
    assert len(re.findall(rb"/Type /Page\b", b.pdf)) >= 6
    wb = load_workbook(io.BytesIO(b.xlsx))
    assert wb.sheetnames == ["总体情况", "网格排名", "人员排名", "通报名单", "说明"]
    ranking = list(wb["网格排名"].iter_rows(values_only=True))
    assert ranking[0][:4] == ("名次", "编码/工号", "名称", "综合得分") and len(ranking) == 1 + 4
    named = list(wb["通报名单"].iter_rows(values_only=True))
    assert any(row[2] == "西社区二网格" for row in named[1:])    # B12: bottom and overdue
    summary = {row[0]: row[3] for row in wb["总体情况"].iter_rows(min_row=2, values_only=True)}
    assert summary["reported"] == 6 and summary["on_time_rate"] == 60.0   # street: A, E, H of B11's 4 and F


def test_downloaded_again_unchanged_and_rerendered_identically(issued):
    s, _, b = issued
    again = get_bulletin(s, b.id)
    assert (again.pdf, again.xlsx) == (b.pdf, b.xlsx)
    assert (again.as_of, again.rule_id, again.run_ids) == (AS_OF, b.rule_id, b.run_ids)
    assert rerender(s, b.id) == (b.pdf, b.xlsx)


def test_written_files(issued, tmp_path):
    _, _, b = issued
    paths = b.write(tmp_path)
    assert [p.name for p in paths] == [f"bulletin-2026-10-L3-{b.id}.pdf", f"bulletin-2026-10-L3-{b.id}.xlsx"]
    assert paths[0].read_bytes() == b.pdf


def test_level_is_checked(asession):
    s, _ = asession
    with pytest.raises(DomainError) as e:
        issue_bulletin(s, Scope.everything(), OCT, level=1, tz=TZ, as_of=AS_OF)
    assert e.value.field == "level"


@pytest.mark.parametrize("args", [["--period", "2026-13"], ["--period", "2026Q9"], [], ["--period", "2026-10",
                                                                                     "--level", "4"]])
def test_cli_refuses_in_one_bilingual_line(empty_url, tmp_path, args):
    r = run_gridwatch(empty_url, "bulletin", *args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
    assert len(lines) == 1 and " / " in lines[0] and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_and_prints_the_files(server_url, tmp_path):
    from sqlalchemy import create_engine

    from geodata.db import session_scope
    from geodata.db.admin import drop_database
    from tests.integration.geodata.assessment.conftest import build
    from tests.world import scratch_database

    url = scratch_database(server_url, "gridwatch_test_bulletin_cli")
    engine = create_engine(url)
    try:
        with session_scope(engine) as s:
            build(s)
        r = run_gridwatch(url, "bulletin", "--period", "2026-10", "--out", str(tmp_path),
                          "--as-of", "2026-11-27T20:00:00")   # no offset: business time
        assert r.returncode == 0, r.stdout + r.stderr
        printed = [x for x in r.stdout.splitlines() if x.endswith((".pdf", ".xlsx"))]
        assert len(printed) == 2 and all(p.startswith(str(tmp_path)) and Path(p).exists() for p in printed)
        bid = printed[0].rsplit("-", 1)[1].removesuffix(".pdf")
        again = run_gridwatch(url, "bulletin", "--id", bid, "--out", str(tmp_path / "again"))
        assert again.returncode == 0, again.stdout + again.stderr
        for p in printed:
            assert (tmp_path / "again" / Path(p).name).read_bytes() == Path(p).read_bytes()
        with session_scope(engine) as s:
            assert get_bulletin(s, int(bid)).as_of == AS_OF
    finally:
        engine.dispose()
        drop_database(url)


def test_every_name_and_number_of_the_rankings_links_to_its_records(asession):
    """With the dashboard's address, each ranking row's name links to the subject's scorecard and
    each indicator number to its records on the assessment page; re-rendered alike."""
    from urllib.parse import parse_qs, urlsplit

    from etl.bulletins import RANK_COLUMNS
    from tests.world import B11, B12

    s, _ = asession
    b = issue_bulletin(s, Scope.everything(), OCT, level=3, tz=TZ, as_of=AS_OF, link_base="https://gw.example/")
    uris = [u.decode() for u in re.findall(rb"/URI \(([^)]*)\)", b.pdf)]
    views = [parse_qs(urlsplit(u).query) for u in uris]
    assert all(u.startswith("https://gw.example/assessment?") for u in uris) and uris
    blocks = [v for v in views if v["level"] == ["grid:3"]]
    leaders = [v for v in views if v["level"] == ["official:grid_leader"]]
    assert {v["subject"][0] for v in blocks} >= {B11, B12} and leaders
    assert all(v["period"] == ["2026-10"] for v in views)
    b11 = {v.get("indicator", ["(card)"])[0] for v in blocks if v["subject"] == [B11]}
    assert b11 == {"(card)", *RANK_COLUMNS}
    assert rerender(s, b.id, "https://gw.example/") == (b.pdf, b.xlsx)
    # without an address: no links
    plain = issue_bulletin(s, Scope.everything(), OCT, level=3, tz=TZ, as_of=AS_OF)
    assert b"/URI (" not in plain.pdf
