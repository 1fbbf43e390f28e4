"""The /assessment page in a real browser (chromium, Playwright), as an assessor and a street
leader, in zh-CN and English: pick a month, the ranking shows, sort by a column, click a number →
its cases, as many as the number; a 定性 score changes the composite; a grid leader is refused."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine
from sqlalchemy import text as sql

from dashboard.i18n import t
from tests.e2e.conftest import LiveServer, csp_safe_waits, csp_violations, watch_csp

pytestmark = pytest.mark.e2e
API = "dash_ag_grid.getApi('as-ranking')"


@pytest.fixture(scope="module")
def assessment_server(map_settings):
    """The app as ``app.create_app`` wires it (the bulletin route included)."""
    from app import wire_bulletins
    from dashboard import create_dash

    engine = create_engine(map_settings.database_url, pool_size=6, max_overflow=6)   # the app role
    app = create_dash(map_settings, engine)
    wire_bulletins(app.server, map_settings, engine)
    server = LiveServer(app).start()
    yield server
    server.stop()
    engine.dispose()


@pytest.fixture
def open_as(browser, assessment_server, map_engine):
    contexts = []

    def _open(role: str, grid: str | None = None, official_id: int | None = None, locale: str = "zh-CN"):
        from dashboard.auth import SESSION_COOKIE
        from tests.world import session_id

        context = browser.new_context(viewport={"width": 1500, "height": 1000}, locale=locale,
                                      timezone_id="Asia/Shanghai")
        contexts.append(context)
        url = assessment_server.url
        context.add_cookies([
            {"name": SESSION_COOKIE, "value": session_id(map_engine, role, grid, official_id), "url": url,
             "httpOnly": True, "secure": True, "sameSite": "Lax"},
            {"name": "gw_lang", "value": "en" if locale == "en" else "zh", "url": url}])
        watch_csp(context)
        pg = context.new_page()
        pg.set_default_timeout(20000)
        pg.csp_violations = csp_violations(pg)  # type: ignore[attr-defined]
        pg.errors = []  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        csp_safe_waits(pg)
        pg.goto(url + "/assessment")
        return pg

    yield _open
    for c in contexts:
        pages = c.pages
        c.close()
        for pg in pages:
            assert not pg.csp_violations, pg.csp_violations


def free_official(c) -> int:
    """An active official with no account yet (an account is linked to one official, and back)."""
    return c.execute(sql("SELECT o.id FROM official o WHERE o.active AND NOT EXISTS (SELECT 1 FROM account a"
                         " WHERE a.official_id = o.id) ORDER BY o.id LIMIT 1")).scalar_one()


@pytest.fixture
def officer(map_engine) -> int:
    with map_engine.connect() as c:
        return free_official(c)


@pytest.fixture
def no_scores_left(map_engine):
    yield
    with map_engine.begin() as c:
        c.execute(sql("DELETE FROM assessment_qualitative WHERE comment LIKE 'e2e%'"))


def settle(page, ms: int = 300) -> None:
    page.wait_for_function("!document.querySelector('[data-dash-is-loading=\"true\"]')")
    page.wait_for_timeout(ms)


def pick_month(page, label: str) -> None:
    page.locator("#as-period").click()
    page.get_by_role("option", name=label).click()
    settle(page)


def rows(page) -> list[dict]:
    return page.evaluate(f"() => {{ const out = []; {API}.forEachNodeAfterFilterAndSort(n => out.push(n.data));"
                         " return out; }")


def wait_rows(page, n: int) -> None:
    page.wait_for_function(f"() => window.dash_ag_grid && {API} && {API}.getDisplayedRowCount() === {n}")


def open_number(page, col: str, row_index: int = 0) -> int:
    """Click the number in column ``col`` of the displayed row ``row_index``; the modal lists its
    records: returns how many (checked against the count it states)."""
    cell = page.locator(f".ag-center-cols-container .ag-row[row-index='{row_index}'] .ag-cell[col-id='{col}']")
    shown = float(cell.inner_text())
    cell.click()
    expect(page.locator("#as-trace-num")).to_be_visible()
    settle(page)
    n = int(page.locator("#as-trace-num").get_attribute("data-count"))
    assert n == shown
    assert page.locator("#as-trace-body a.gw-as-case-link").count() == min(n, 500)
    return n


def test_assessor_ranks_traces_and_scores(open_as, officer, shot, no_scores_left, map_engine):
    page = open_as("assessor", None, officer)
    expect(page.locator("h1#hdr-title")).to_have_text("网格化管理考核")
    pick_month(page, "2026年10月")
    wait_rows(page, 59)
    expect(page.locator(".gw-as-kpi-period .gw-as-kpi-value")).to_have_text("2026年10月")
    expect(page.locator(".ag-header-cell[col-id='rank']")).to_contain_text("名次")
    shot(page, "assessment-01-ranking-zh")
    # sort by 上报数, most first: the first row has the most cases
    header = page.locator(".ag-header-cell[col-id='reported'] .ag-header-cell-label")
    header.click()
    settle(page, 200)
    header.click()
    settle(page)
    data = rows(page)
    assert data[0]["reported"] == max(r["reported"] for r in data) > 0
    assert [r["reported"] for r in data] == sorted((r["reported"] for r in data), reverse=True)
    # its number → its cases, as many as the number
    n = open_number(page, "reported")
    assert n == data[0]["reported"]
    link = page.locator("#as-trace-body a.gw-as-case-link").first
    assert link.get_attribute("href").startswith("/?issue=")
    shot(page, "assessment-02-cases-zh")
    page.locator("#as-trace-close").click()
    expect(page.locator("#as-trace-num")).to_be_hidden()
    # a 定性 score for the first row's subject → its composite changes (weight 30 %)
    first = data[0]
    page.locator("#as-q-subject").click()
    page.get_by_role("option", name=first["name"], exact=True).first.click()
    page.locator("#as-q-score").fill("20")
    page.locator("#as-q-comment").fill("e2e 推诿扯皮，整改不力")
    page.locator("#as-q-save").click()
    expect(page.locator("#as-q-message")).to_contain_text("已保存定性得分 20")
    page.wait_for_function(f"() => {API}.getRowNode('{first['key']}').data.qualitative === 20")
    after = page.evaluate(f"() => {API}.getRowNode('{first['key']}').data")
    assert after["final"] == round(0.7 * first["quantitative"] + 0.3 * 20, 2) != first["final"]
    # a bad score is said in the form, in the page's language, and nothing is written
    with map_engine.connect() as c:
        before = c.execute(sql("SELECT count(*) FROM assessment_qualitative")).scalar_one()
    page.locator("#as-q-score").fill("120")
    page.locator("#as-q-save").click()
    expect(page.locator("#as-q-message")).to_contain_text("0–100")
    with map_engine.connect() as c:
        assert c.execute(sql("SELECT count(*) FROM assessment_qualitative")).scalar_one() == before
    shot(page, "assessment-03-qualitative-zh")
    assert not page.errors


def test_street_leader_in_english(open_as, shot):
    page = open_as("street_leader", locale="en")
    expect(page.locator("h1#hdr-title")).to_have_text("Grid management assessment")
    settle(page)
    shot(page, "assessment-00-open-en")
    page.locator("#as-level").click()
    page.get_by_role("option", name="Grid leaders").click()
    settle(page)
    pick_month(page, "October 2026")
    page.wait_for_function(f"() => window.dash_ag_grid && {API} && {API}.getDisplayedRowCount() > 10")
    expect(page.locator(".ag-header-cell[col-id='name']")).to_contain_text("Grid leader")
    assert page.locator("#as-form").is_hidden()          # no 定性 form for a leader who does not assess
    assert page.locator("#as-bulletin-pdf-button").count() == 0
    header = page.locator(".ag-header-cell[col-id='overdue_open'] .ag-header-cell-label")
    header.click()
    settle(page, 200)
    header.click()
    settle(page)
    data = rows(page)
    assert [r["overdue_open"] for r in data] == sorted((r["overdue_open"] for r in data), reverse=True)
    n = open_number(page, "closed")
    expect(page.locator("#as-trace-num")).to_contain_text(f"Numerator: {n}" if False else f"Records counted: {n}")
    shot(page, "assessment-04-leaders-en")
    titles = page.evaluate("() => [...document.querySelectorAll('#as-trend .modebar-btn')].map(b => b.dataset.title)")
    assert "Download plot as a PNG" in titles, titles
    assert not page.errors


def test_a_grid_leader_is_refused(open_as, map_engine):
    with map_engine.connect() as c:
        block = c.execute(sql("SELECT code FROM grid WHERE level = 3 AND valid_to IS NULL ORDER BY code LIMIT 1")
                          ).scalar_one()
    page = open_as("grid_leader", block)
    expect(page.locator("body")).to_contain_text(t("no_page_access", "zh"))
    expect(page.locator("body")).to_contain_text(t("no_page_access", "en"))
    assert page.locator("#as-ranking").count() == 0


def score_paths(page) -> dict[str, str]:
    """{grid code: fill colour} of the score map's drawn polygons."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#as-map path.gw-score')]
        .map(p => [[...p.classList].find(c => /^gw-score-\\d+$/.test(c)).slice(9), p.getAttribute('fill')]))""")


def test_score_map_and_scorecards(open_as, shot):
    """The score choropleth colours every community by its final score (the legend's classes); a
    grid clicked on the map and a row clicked in the ranking open the same scorecard, whose final
    score and rank are the ranking's; the domain and handling-time charts follow the pick; the
    grid-leader level colours each leader's blocks and lists them on the card."""
    from dashboard.pages.assessment.presenters import SCORE_BREAKS, SCORE_COLORS

    page = open_as("street_leader")
    page.locator("#as-level").click()
    page.get_by_role("option", name="社区网格").click()
    settle(page)
    pick_month(page, "2026年10月")
    wait_rows(page, 14)
    page.wait_for_function("() => document.querySelectorAll('#as-map path.gw-score').length === 14")
    expect(page.locator("#as-card-empty")).to_be_visible()
    data = {r["key"]: r for r in rows(page)}

    def colour(v: float) -> str:
        return SCORE_COLORS[sum(1 for b in SCORE_BREAKS if v >= b)]

    # each community in its score's class (the map's callback may answer after the ranking's)
    expected = {k: colour(r["final"]) for k, r in data.items()}
    try:
        page.wait_for_function("""(want) => Object.entries(want).every(([code, fill]) =>
            (document.querySelector('#as-map path.gw-score-' + code) || {getAttribute: () => null})
              .getAttribute('fill') === fill)""", arg=expected, timeout=10000)
    except Exception:
        raise AssertionError((score_paths(page), expected)) from None
    assert set(score_paths(page)) == set(data)
    # the labels name each community with its score
    page.wait_for_function("() => document.querySelectorAll('.gw-score-label').length === 14", timeout=5000)
    labels = page.locator(".gw-score-label").all_inner_texts()
    assert sorted(x.split("\n")[0] for x in labels) == sorted(r["name"] for r in data.values())
    # a grid clicked on the map → its card
    worst = min(data.values(), key=lambda r: r["final"])
    page.locator(f"#as-map path.gw-score-{worst['key']}").dispatch_event("click")
    expect(page.locator("#as-card-name")).to_have_text(worst["name"])
    expect(page.locator("#as-card-final")).to_have_text(f"{worst['final']:.2f}")
    expect(page.locator(".gw-as-card-rank")).to_have_text(f"第 {worst['rank']} 名 / 共 14 个网格")
    expect(page.locator(f"#as-map path.gw-score-{worst['key']}.gw-score-picked")).to_have_count(1)
    # its points: the items earned add up to the quantitative score plus the deductions
    items = page.locator(".gw-as-card-items li").count()
    assert items >= 5
    page.wait_for_function(f"() => (document.querySelector('#as-domains .gtitle') || {{}}).textContent"
                           f"?.startsWith({worst['name']!r})")
    page.wait_for_function(f"() => (document.querySelector('#as-hours .gtitle') || {{}}).textContent"
                           f"?.startsWith({worst['name']!r})")
    # the domain chart's reported bars add up to the row's 上报数 (the numbers: integration tests)
    reported = page.evaluate("() => document.querySelector('#as-domains .js-plotly-plot')"
                             ".data[0].y.reduce((a, b) => a + b, 0)")
    assert reported == worst["reported"]
    # the charts' own buttons speak Chinese too (plotly's zh-CN locale)
    titles = page.evaluate("() => [...document.querySelectorAll('#as-hours .modebar-btn')].map(b => b.dataset.title)")
    assert "下载图表为PNG格式" in titles and not any("Download" in x for x in titles), titles
    page.locator("#as-map").scroll_into_view_if_needed()
    shot(page, "assessment-05-score-map-card-zh")
    # a row clicked in the ranking → that row's card, and the map's outline moves
    best = min(data.values(), key=lambda r: r["rank"])
    page.locator(f".ag-row[row-id='{best['key']}'] .ag-cell[col-id='name']").first.click()
    expect(page.locator("#as-card-name")).to_have_text(best["name"])
    expect(page.locator(f"#as-map path.gw-score-{best['key']}.gw-score-picked")).to_have_count(1)
    expect(page.locator(f"#as-map path.gw-score-{worst['key']}.gw-score-picked")).to_have_count(0)
    # grid leaders: each leader's blocks coloured by the leader's score; a block → its leader's card
    page.locator("#as-level").click()
    page.get_by_role("option", name="网格长").click()
    settle(page)
    page.wait_for_function("() => document.querySelectorAll('#as-map path.gw-score').length === 59")
    leaders = rows(page)
    block = page.evaluate("() => [...document.querySelector('#as-map path.gw-score').classList]"
                          ".find(c => /^gw-score-\\d+$/.test(c)).slice(9)")
    page.locator(f"#as-map path.gw-score-{block}").first.dispatch_event("click")
    expect(page.locator(".gw-as-card-grids")).to_be_visible()
    name = page.locator("#as-card-name").inner_text()
    assert name in {r["name"] for r in leaders}
    expect(page.locator(".gw-as-card-rank")).to_contain_text("人")
    page.locator("#as-map").scroll_into_view_if_needed()
    shot(page, "assessment-06-leader-card-zh")
    assert not page.errors


def test_a_link_opens_its_view_and_its_records(open_as, assessment_server, map_engine, shot):
    """?period=&level=&subject=&indicator= (the bulletin's links): the period and level picked, the
    subject's scorecard, the number's records open, as many as the ranking says; picks write the
    URL back; invalid values are ignored and named."""
    page = open_as("street_leader")
    settle(page)
    with map_engine.connect() as c:
        block = c.execute(sql("SELECT grid_code FROM issue WHERE reported_at >= '2026-10-01 00:00:00+08' AND "
                              "reported_at < '2026-11-01 00:00:00+08' GROUP BY grid_code ORDER BY count(*) DESC, "
                              "grid_code LIMIT 1")).scalar_one()
    page.goto(assessment_server.url + f"/assessment?period=2026-10&level=grid:3&subject={block}&indicator=reported")
    expect(page.locator("#as-trace-num")).to_be_visible()
    n = int(page.locator("#as-trace-num").get_attribute("data-count"))
    wait_rows(page, 59)
    assert n == page.evaluate(f"() => {API}.getRowNode('{block}').data.reported") > 0
    assert page.locator("#as-trace-body a.gw-as-case-link").count() == n
    expect(page.locator(".gw-as-period")).to_contain_text("2026年10月")
    page.locator("#as-trace-close").click()
    expect(page.locator("#as-card-name")).to_have_text(page.evaluate(f"() => {API}.getRowNode('{block}').data.name"))
    shot(page, "assessment-07-link")
    # the scorecard's numbers lead to their records too
    closed = page.evaluate(f"() => {API}.getRowNode('{block}').data.closure_rate")
    page.locator(".gw-as-card-table td[data-indicator='closure_rate'] a").click()
    expect(page.locator("#as-trace-den")).to_be_visible()
    num, den = (int(page.locator(f"#as-trace-{k}").get_attribute("data-count")) for k in ("num", "den"))
    assert den > 0 and round(100 * num / den, 2) == closed
    page.locator("#as-trace-close").click()
    # a KPI tile (the level's total) opens its records too
    tile = page.locator(".gw-as-kpi-link [data-indicator='reported']")
    total = int(tile.inner_text())
    tile.click()   # the page is rebuilt for the link's view, then the records open: seconds on 2 busy cores
    expect(page.locator("#as-trace-num")).to_have_attribute("data-count", str(total), timeout=20000)
    page.locator("#as-trace-close").click()
    # a pick writes the URL back (a link to this view)
    page.locator("#as-level").click()
    page.get_by_role("option", name="社区网格").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('level') === 'grid:2'")
    assert "period=2026-10" in page.evaluate("location.search")
    # invalid values: ignored and named
    page.goto(assessment_server.url + "/assessment?period=2026-13&level=grid:3&indicator=x")
    expect(page.locator("#as-period-note")).to_contain_text("period")
    expect(page.locator("#as-period-note")).to_contain_text("indicator")
    assert not page.errors
