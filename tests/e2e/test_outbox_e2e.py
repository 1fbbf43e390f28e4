"""The weekly-notice outbox in a real browser: header button → modal with the latest messages, a
selected row's full text below the grid, in both languages."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from etl.demo import add_weekly_notices

from ..conftest import DEMO_END
from .test_map_e2e import open_map, wait_settled

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def notices(map_engine):
    """The demo's weekly notices (the last complete week, sent), committed for the served app and
    removed afterwards."""
    with Session(map_engine) as s, s.begin():
        ids = add_weekly_notices(s, DEMO_END)
    assert ids
    with map_engine.connect() as c:
        rows = {r.id: r for r in c.execute(text(
            "SELECT b.id, b.body, o.name FROM outbox b JOIN official o ON o.id = b.official_id "
            "WHERE b.id = ANY(:ids)"), {"ids": ids})}
        total, pending = c.execute(text("SELECT count(*), count(*) FILTER (WHERE sent_at IS NULL) "
                                        "FROM outbox")).one()
    yield {"rows": rows, "total": total, "pending": pending}
    with Session(map_engine) as s, s.begin():
        s.execute(text("DELETE FROM outbox WHERE id = ANY(:ids)"), {"ids": ids})


def _open_outbox(page, label: str) -> None:
    page.locator("#hdr-outbox-open").click()
    expect(page.locator("#app-outbox .modal-title")).to_have_text(label)
    page.wait_for_function("document.querySelectorAll('#app-outbox-grid .ag-center-cols-container .ag-row').length > 0")


def _select_first_row(page, notices) -> int:
    row = page.locator("#app-outbox-grid .ag-center-cols-container .ag-row").first
    row_id = int(row.get_attribute("row-id"))
    row.locator("[col-id='subject']").click()
    expect(page.locator("#app-outbox-text")).to_have_text(notices["rows"][row_id].body)
    return row_id


def test_outbox_modal_lists_and_shows_messages_in_both_languages(page, live_server, notices, shot):
    open_map(page, live_server)
    button = page.locator("#hdr-outbox-open")
    expect(button).to_contain_text("周报短信")
    expect(button.locator(".gw-badge")).to_have_text(f"{notices['total']:,}")

    _open_outbox(page, "周报短信发件箱")
    grid = page.locator("#app-outbox-grid")
    for header in ("时间", "收件人", "主题", "状态"):
        expect(grid.locator(".ag-header-cell-text", has_text=header)).to_have_count(1)
    expect(page.locator("#app-outbox-message")).to_contain_text("选择一条短信查看全文")
    total, pending = notices["total"], notices["pending"]
    expect(page.locator("#app-outbox-note")).to_have_text(
        f"最新 {min(total, 200):,} 条，共 {total:,} 条（待发送 {pending:,} 条）")
    expect(grid.locator("[col-id='status']", has_text="已发送").first).to_be_visible()
    expect(grid.locator("[col-id='subject']", has_text="网格周通报 2026-11-16").first).to_be_visible()
    row_id = _select_first_row(page, notices)
    message = page.locator("#app-outbox-message")
    expect(message).to_contain_text(notices["rows"][row_id].name)
    expect(message).to_contain_text("收件人")
    expect(message).to_contain_text("发送时间")
    shot(page, "outbox-zh")
    page.locator("#app-outbox-close").click()
    expect(page.locator("#app-outbox")).to_be_hidden()

    page.locator("#app-lang label", has_text="English").click()
    expect(page.locator("#hdr-title")).to_contain_text("Grid management map")
    wait_settled(page)
    expect(button).to_contain_text("Weekly notices")
    _open_outbox(page, "Weekly notice outbox")
    for header in ("Time", "Recipient", "Subject", "Status"):
        expect(grid.locator(".ag-header-cell-text", has_text=header)).to_have_count(1)
    expect(grid.locator("[col-id='status']", has_text="Sent").first).to_be_visible()
    expect(page.locator("#app-outbox-message")).to_contain_text("Select a message to read it in full")
    _select_first_row(page, notices)
    expect(page.locator("#app-outbox-message")).to_contain_text("Recipient")
    expect(page.locator("#app-outbox-message")).to_contain_text("Sent at")
    shot(page, "outbox-en")
    assert not page.errors
