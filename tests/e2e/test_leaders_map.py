"""What a leader trips over on the map (issue 11), walked in a real browser at a laptop's 1366 × 768
and on a phone, with real mouse clicks and taps (not events dispatched on a polygon: a bubble or a
label on top must not swallow them). Screenshots go to the test results."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import csp_safe_waits, csp_violations, sign_in_context, watch_csp

pytestmark = pytest.mark.e2e

LAPTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.fixture
def open_page(browser, live_server, map_engine):
    contexts = []

    def _open(device: dict, locale: str = "zh-CN", query: str = ""):
        context = browser.new_context(locale=locale, timezone_id="Asia/Shanghai", **device)
        contexts.append(context)
        sign_in_context(context, live_server.url, map_engine)   # a leader sees what the centre sees
        watch_csp(context)
        pg = context.new_page()
        pg.set_default_timeout(15000)
        pg.csp_violations = csp_violations(pg)  # type: ignore[attr-defined]
        csp_safe_waits(pg)
        pg.goto(live_server.url + "/" + query)
        pg.wait_for_function("document.querySelectorAll('path.gw-grid-l2').length === 14")
        pg.wait_for_function("!document.querySelector('[data-dash-is-loading=\"true\"]')")
        pg.wait_for_timeout(900)   # the fly-to the street has ended
        return pg

    yield _open
    for c in contexts:
        pages = c.pages
        c.close()
        for pg in pages:
            assert not pg.csp_violations, pg.csp_violations


def settle(page) -> None:
    """Wait until no callback is pending and the map is not zooming or flying."""
    page.wait_for_function("!document.querySelector('[data-dash-is-loading=\"true\"]')"
                           " && !document.querySelector('.leaflet-zoom-anim')")
    page.wait_for_timeout(400)


def rect(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_laptop_shows_the_whole_street_clear_of_the_legends(open_page, shot):
    page = open_page(LAPTOP)
    shot(page, "leaders-laptop-street")
    m, street, legends = rect(page, "#map-leaflet"), rect(page, "path.gw-grid-l1"), rect(page, ".gw-legends")
    assert street["y"] >= m["y"] and street["x"] >= m["x"]
    assert street["x"] + street["width"] <= m["x"] + m["width"] + 1
    assert street["y"] + street["height"] <= m["y"] + m["height"] + 1      # the southern edge is on screen
    assert street["y"] + street["height"] <= legends["y"] + 2               # and above the legends' strip
    assert m["height"] >= 560                                                # the filters take one row
    assert page.evaluate("document.documentElement.scrollHeight") <= 768    # one screen, no page scroll
    # the window gets smaller (or the header reflows): the map stays fitted to the street
    page.set_viewport_size({"width": 1280, "height": 680})
    settle(page)
    m, street, legends = rect(page, "#map-leaflet"), rect(page, "path.gw-grid-l1"), rect(page, ".gw-legends")
    assert street["y"] >= m["y"] - 1 and street["y"] + street["height"] <= legends["y"] + 2
    assert street["x"] >= m["x"] - 1 and street["x"] + street["width"] <= m["x"] + m["width"] + 1


def _bubble_centre(page) -> tuple[float, float, str]:
    """A count bubble (the server's aggregate at street level) and the community below it."""
    page.wait_for_function("document.querySelectorAll('.leaflet-marker-icon.gw-bin').length > 0")
    found = page.evaluate("""() => {
        for (const b of document.querySelectorAll('.leaflet-marker-icon.gw-bin')) {
            const r = b.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
            b.style.pointerEvents = 'none';   // (it has none already; so that elementsFromPoint passes it)
            const under = document.elementsFromPoint(x, y).find(e => e.matches && e.matches('path.gw-grid-l2'));
            const code = under && [...under.classList].map(c => c.match(/^gw-grid-(\\d{14})$/)).find(Boolean);
            const map = document.querySelector('#map-leaflet').getBoundingClientRect();
            if (code && x > map.x + 60 && x < map.right - 200 && y > map.y + 60 && y < map.bottom - 80) {
                return [x, y, code[1]];
            }
        }
        return null;
    }""")
    assert found, "no count bubble over a community"
    return found[0], found[1], found[2]


def _until_url(page, act, pattern: str) -> None:
    """``act()`` (a real click or tap), again if a busy machine swallowed it mid-animation: with
    a bubble that takes the click, no number of clicks would drill down."""
    for attempt in range(3):
        settle(page)
        act()
        try:
            page.wait_for_url(re.compile(pattern), timeout=5000)
            return
        except Exception:
            if attempt == 2:
                raise


def test_a_click_on_a_count_bubble_drills_into_the_community_below(open_page, shot):
    page = open_page(LAPTOP)
    settle(page)
    x, y, code = _bubble_centre(page)
    assert page.evaluate(f"getComputedStyle(document.elementFromPoint({x}, {y})).pointerEvents") != "none"
    _until_url(page, lambda: page.mouse.click(x, y), rf"\?grid={code}$")
    shot(page, "leaders-laptop-bubble-click")


def test_a_phone_reaches_a_community_and_a_block_by_tapping(open_page, shot):
    page = open_page(PHONE)
    settle(page)
    x, y, code = _bubble_centre(page)
    _until_url(page, lambda: page.touchscreen.tap(x, y), rf"\?grid={code}$")
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l3').length > 0")
    page.wait_for_timeout(900)
    settle(page)
    # a spot of a block with nothing else within a fingertip (a tap's touch area is retargeted to
    # the nearest clickable thing in it: a bubble, a neighbour), searched over each block's box
    block = page.evaluate("""() => {
        const map = document.querySelector('#map-leaflet').getBoundingClientRect();
        const finger = [[0, 0], [-16, 0], [16, 0], [0, -16], [0, 16], [-11, -11], [11, 11], [-11, 11], [11, -11]];
        for (const p of document.querySelectorAll('path.gw-grid-l3')) {
            const r = p.getBoundingClientRect();
            for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++) {
                const x = r.x + r.width * i / 8, y = r.y + r.height * j / 8;
                if (y < map.y + 20 || y > map.bottom - 90 || x < map.x + 20 || x > map.right - 20) continue;
                if (finger.every(([dx, dy]) => document.elementFromPoint(x + dx, y + dy) === p)) {
                    return [x, y, [...p.classList].map(c => c.match(/^gw-grid-(\\d{14})$/)).find(Boolean)[1]];
                }
            }
        }
        return null;
    }""")
    assert block, "no block centre free to tap"
    _until_url(page, lambda: page.touchscreen.tap(block[0], block[1]), rf"\?grid={block[2]}$")
    shot(page, "leaders-phone-block")


def test_phone_search_results_open_above_the_map(open_page, shot):
    page = open_page(PHONE)
    page.locator("#map-search").click()
    page.get_by_role("searchbox").fill("社区")
    option = page.get_by_role("option").first
    expect(option).to_be_visible()
    shot(page, "leaders-phone-search")
    box = option.bounding_box()
    top = page.evaluate(f"document.elementFromPoint({box['x'] + box['width'] / 2}, {box['y'] + box['height'] / 2})"
                        ".closest('[role=option]') !== null")
    assert top, "a search result is covered"
    option.click()   # Playwright clicks only what is on top
    page.wait_for_url(re.compile(r"\?grid=\d{14}$"))


def test_numbers_explain_themselves_on_tap(open_page, shot):
    page = open_page(PHONE)
    label = page.locator(".gw-kpi-closure_rate .gw-explained")
    help_ = page.locator("#gw-help-kpi-closure_rate")
    expect(help_).to_be_hidden()
    label.tap()
    expect(help_).to_be_visible()
    expect(help_).to_contain_text("应结案数")
    shot(page, "leaders-phone-closure-rate-help")
    # the default colouring is the open overdue count, explained the same way
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("超期未办结数", use_inner_text=True)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_third_party_widgets_speak_the_pages_language(open_page, shot, lang):
    """An English browser on the Chinese page, and a Chinese one on the English page: the widgets
    follow the page's switch, not the browser."""
    page = open_page(LAPTOP, locale="en-US" if lang == "zh" else "zh-CN")
    if lang == "en":
        page.locator("#app-lang label").filter(has_text="English").click()
        expect(page.locator("#map-grid-name")).to_have_text(re.compile(r"[A-Za-z]"))
        page.wait_for_timeout(500)
    words = {"zh": ("全选", "Select all"), "en": ("Select all", "全选")}[lang]
    page.locator("#map-f-domains").click()
    expect(page.get_by_text(words[0], exact=True)).to_be_visible()
    expect(page.get_by_text(words[1], exact=True)).to_have_count(0)
    page.keyboard.press("Escape")
    # the date picker: month names and weekdays
    page.locator("#map-f-range").click()
    page.wait_for_timeout(400)
    shot(page, f"leaders-datepicker-{lang}")
    calendar = page.locator("#map-f-range").locator("xpath=..").inner_text() + page.locator("body").inner_text()
    if lang == "zh":
        assert re.search(r"(一|二|三|四|五|六|七|八|九|十|十一|十二)月", calendar) and "Mo" not in calendar.split()
    else:
        assert re.search(r"January|February|March|April|May|June|July|August|September|October|November|December",
                         calendar)
    page.keyboard.press("Escape")
    # the issue list's empty state (the grid's own overlay, in the page's language)
    page.evaluate("window.dash_clientside.set_props('map-issues', {rowData: []})")
    empty = page.locator("#map-issues .ag-overlay-no-rows-center")
    expect(empty).to_have_text("暂无数据" if lang == "zh" else "No rows")
    assert page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh" else "en")


def _free_point(page, code: str) -> tuple[float, float]:
    """A point of grid ``code`` on screen where the grid itself is on top (no label, bubble or marker)."""
    pt = page.evaluate("""(code) => {
        const p = document.querySelector('path.gw-grid-' + code), r = p.getBoundingClientRect();
        for (let i = 1; i < 12; i++) for (let j = 1; j < 12; j++) {
            const x = r.x + r.width * i / 12, y = r.y + r.height * j / 12;
            if (document.elementFromPoint(x, y) === p) return [x, y];
        }
        return null;
    }""", code)
    assert pt, f"no free point on {code}"
    return pt[0], pt[1]


def test_the_same_community_again_after_back_and_the_breadcrumb(open_page, live_server, shot):
    page = open_page(LAPTOP)
    code = page.evaluate("[...document.querySelector('path.gw-grid-l2').classList]"
                         ".map(c => c.match(/^gw-grid-(\\d{14})$/)).find(Boolean)[1]")
    street_url = page.url

    def click_community():
        # the map settles (no fly-to, no pending callback), then a real click; clicked again if a
        # busy machine swallowed it mid-animation — with the bug, no number of clicks would do
        for attempt in range(3):
            settle(page)
            page.mouse.click(*_free_point(page, code))
            try:
                page.wait_for_url(re.compile(rf"\?grid={code}$"), timeout=5000)
                return
            except Exception:
                if attempt == 2:
                    raise

    click_community()
    page.go_back()
    page.wait_for_url(street_url)
    click_community()                                   # after Back: the same click works again
    page.locator("#map-breadcrumb a").first.click()      # the street, by the breadcrumb
    page.wait_for_url(street_url)
    click_community()                                   # after the breadcrumb: again
    shot(page, "leaders-same-community-again")


def test_popup_says_when_a_closed_issue_closed_and_links_to_its_timeline(open_page, map_engine, shot):
    from sqlalchemy import text

    with map_engine.connect() as c:
        iid, block, number, closed = c.execute(text(
            "SELECT id, grid_code, number, (closed_at AT TIME ZONE 'Asia/Shanghai')::date FROM issue "
            "WHERE status IN ('closed', 'evaluated') ORDER BY id LIMIT 1")).one()
    page = open_page(LAPTOP, query=f"?grid={block}&issue={iid}")
    popup = page.locator(".leaflet-popup .gw-popup")
    expect(popup).to_contain_text("办结于", timeout=15000)          # not an age
    expect(popup).to_contain_text(closed.strftime("%Y/%m/%d"))
    expect(popup).not_to_contain_text("天前")
    shot(page, "leaders-popup-closed")
    popup.get_by_role("button", name=re.compile("办理过程")).click()
    expect(page.locator("#map-timeline-title")).to_contain_text(number)
    expect(page.locator("#map-timeline-issue")).to_be_visible()


def test_an_issue_opened_from_the_list_goes_into_the_url(open_page, shot):
    page = open_page(LAPTOP)
    row = page.locator("#map-issues .ag-row").first
    expect(row).to_be_visible()
    row_id = row.get_attribute("row-id")
    row.locator(".ag-cell").nth(1).click()
    page.wait_for_url(re.compile(rf"[?&]issue={row_id}$"))
    expect(page.locator("#map-timeline-issue")).to_be_visible()
    shot(page, "leaders-issue-from-list")
    page.locator("#map-timeline-close").click()
    settle(page)
    # the map flew to it (street level shows a 300 m scale bar; the issue's zoom a few dozen metres)
    scale = page.locator(".leaflet-control-scale-line").inner_text()
    value, unit = re.match(r"(\d+)\s*(k?m)", scale).groups()
    assert unit == "m" and int(value) <= 50, scale


def _legend_title(page) -> str:
    return page.locator("#map-legend-choro .gw-legend-title").inner_text()


def _heat_ticked(page) -> bool:
    return page.locator(".leaflet-control-layers label", has_text="热力图").locator("input").is_checked()


def test_filters_layers_and_metric_are_in_the_url_and_back_forward_restore_them(open_page, shot):
    page = open_page(LAPTOP)
    street_url = page.url
    _until_url(page, lambda: page.locator("#map-f-kind label", has_text="社情").click(), r"[?&]k=sentiment(&|$)")
    settle(page)
    page.locator("#map-f-date").click()
    page.get_by_role("option", name="本年").click()
    page.wait_for_url(re.compile(r"[?&]p=year(&|$)"))
    settle(page)
    page.locator("#map-metric").click()
    page.get_by_role("option", name="结案率").click()
    page.wait_for_url(re.compile(r"[?&]m=closure_rate(&|$)"))
    settle(page)
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.wait_for_url(re.compile(r"[?&]l=choro,heat,markers(&|$)"))
    settle(page)
    # a grid clicked now keeps the view in the URL
    code = page.evaluate("[...document.querySelector('path.gw-grid-l2').classList]"
                         ".map(c => c.match(/^gw-grid-(\\d{14})$/)).find(Boolean)[1]")
    _until_url(page, lambda: page.mouse.click(*_free_point(page, code)), rf"\?grid={code}&k=sentiment&p=year&")
    settle(page)
    shared = page.url
    assert "m=closure_rate" in shared and "l=choro,heat,markers" in shared
    shot(page, "leaders-view-in-url")

    # the copied URL reproduces the view in another browser
    other = open_page(LAPTOP, query="?" + shared.split("?", 1)[1])
    settle(other)
    expect(other.locator("#map-f-kind input[value=sentiment]")).to_be_checked(timeout=20000)
    expect(other.locator("#map-f-date")).to_contain_text("本年", timeout=20000)
    expect(other.locator("#map-legend-choro .gw-legend-title")).to_have_text("结案率", use_inner_text=True, timeout=20000)
    assert _heat_ticked(other)
    other.wait_for_function("[...document.querySelectorAll(\"img.leaflet-tile[src*='/tiles/heat/']\")]"
                            ".some(i => i.src.includes('k=sentiment') && i.src.includes('p=year'))")
    expect(other.locator("#map-grid-name")).not_to_be_empty()
    assert other.url == shared
    shot(other, "leaders-view-from-copied-url")

    # Back and Forward step through the view
    page.go_back()                                   # before the grid click
    page.wait_for_url(re.compile(r"\?k=sentiment&p=year&m=closure_rate&l=choro,heat,markers$"))
    page.go_back()                                   # before the heat layer
    page.wait_for_url(re.compile(r"\?k=sentiment&p=year&m=closure_rate$"))
    settle(page)
    assert not _heat_ticked(page)
    page.go_back()                                   # before the metric
    page.wait_for_url(re.compile(r"\?k=sentiment&p=year$"))
    settle(page)
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("超期未办结数", use_inner_text=True, timeout=20000)
    page.go_forward()
    page.wait_for_url(re.compile(r"m=closure_rate$"))
    settle(page)
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("结案率", use_inner_text=True, timeout=20000)
    for _ in range(3):
        page.go_back()
    page.wait_for_url(street_url)
    settle(page)
    expect(page.locator("#map-f-kind input[value='']")).to_be_checked(timeout=20000)
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("超期未办结数", use_inner_text=True, timeout=20000)
    shot(page, "leaders-view-back-to-start")


def test_invalid_view_values_in_the_url_are_ignored_with_a_notice(open_page, shot):
    page = open_page(LAPTOP, query="?k=problem&p=someday&m=nope&l=choro,sky&f=2026-13-40&d=nowhere")
    settle(page)
    notice = page.locator("#map-url-ignored")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("d, p, f, m, l")
    # the valid value applies, the rest are the defaults
    expect(page.locator("#map-f-kind input[value=problem]")).to_be_checked(timeout=20000)
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("超期未办结数", use_inner_text=True, timeout=20000)
    assert not _heat_ticked(page)
    shot(page, "leaders-url-invalid-values")
    assert not page.csp_violations


class HeldAnswers:
    """Holds back the Dash callback requests whose outputs start with ``output`` (answered when the
    test says so: ``release()``); the others go through."""

    def __init__(self, page, output: str):
        self.page, self.prefix, self.held = page, '{"output":"' + output, []
        page.route(self._dash, self._hold)

    @staticmethod
    def _dash(url: str) -> bool:
        return "/_dash-update-component" in url

    def _hold(self, route):
        if (route.request.post_data or "").startswith(self.prefix):
            self.held.append(route)
        else:
            route.continue_()

    def wait(self, tries: int = 100) -> bool:
        for _ in range(tries):
            if self.held:
                return True
            self.page.wait_for_timeout(100)
        return bool(self.held)

    def release(self) -> None:
        self.held[0].continue_()

    def stop(self) -> None:
        self.page.unroute(self._dash, self._hold)


def _a_community(page) -> str:
    return page.evaluate("[...document.querySelector('path.gw-grid-l2').classList]"
                         ".map(c => c.match(/^gw-grid-(\\d{14})$/)).find(Boolean)[1]")


def _both_kept(page, held: HeldAnswers, code: str) -> None:
    held.release()
    page.wait_for_url(re.compile(rf"\?grid={code}&l=choro,heat,markers$"))
    held.stop()
    settle(page)
    assert _heat_ticked(page)
    expect(page.locator("#map-grid-name")).not_to_be_empty()


def test_a_grid_clicked_while_a_ticked_layer_is_on_its_way_to_the_url_keeps_both(open_page):
    """The layer's URL is written from the URL as it was when the layer was ticked; a grid clicked
    before that answer arrives must stay in the URL (the later write used to win, dropping it)."""
    page = open_page(LAPTOP)
    settle(page)
    held = HeldAnswers(page, "map-url-view.")   # answered below, after the grid click
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    assert held.wait(), "the layer's URL request was never sent"
    code = _a_community(page)
    _until_url(page, lambda: page.mouse.click(*_free_point(page, code)), rf"\?grid={code}$")
    # the grid's own answers all in before the layer's: the URL's view is unchanged by the click,
    # so the tick stays and is not written again (it used to be unticked and its write dropped)
    settle(page)
    assert _heat_ticked(page) and len(held.held) == 1
    _both_kept(page, held, code)


def test_a_layer_ticked_while_a_grid_click_is_on_its_way_to_the_url_keeps_both(open_page):
    """The other way round: the grid's URL is computed from the URL as it was at the click; a layer
    ticked before that answer arrives must stay in the URL (the click's answer used to drop it)."""
    page = open_page(LAPTOP)
    settle(page)
    code = _a_community(page)
    held = HeldAnswers(page, "..map-url-nav.")   # answered below, after the layer is ticked
    x, y = _free_point(page, code)
    for _ in range(3):   # a busy machine may swallow a click mid-animation
        page.mouse.click(x, y)
        if held.wait(50):
            break
    assert held.held, "the grid click's request was never sent"
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.wait_for_url(re.compile(r"\?l=choro,heat,markers$"))
    _both_kept(page, held, code)
