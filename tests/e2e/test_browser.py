"""The web app in a real browser: Debian's chromium driven by Playwright against uvicorn over a small demo.

Set TOUCHLENS_SCREENSHOTS=1 to also write the screenshots in docs/img (CI leaves them as they are).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright  # noqa: E402

from touchlens.api import Workspace  # noqa: E402
from touchlens.demo_workspace import build_demo  # noqa: E402
from touchlens.store.users import add_user  # noqa: E402
from touchlens.web.app import create_app  # noqa: E402

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
ADMIN, VIEWER, PASSWORD = "admin", "reader", "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # fmt: skip


@dataclass
class Site:
    url: str
    ws: Workspace  # the server's own workspace (one shared DuckDB connection), for reference results


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` on uvicorn in a thread of this process until the block ends; its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def served(root: Path) -> Iterator[Site]:
    """The web app over the workspace at `root`, served until the block ends, with the server's own workspace."""
    app = create_app(root)
    with serving(app) as url:
        yield Site(url, app.state.web.ws)


def chromium() -> Iterator[Browser]:
    """Debian's chromium under Playwright, for a module's `browser` fixture."""
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield found
        found.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web") / "demo"
    demo = build_demo(root, customers=800)
    ws = demo.workspace
    ws.roadmap_suggest(samples=10)
    feedback = root / "hostile.csv"
    feedback.write_text(
        f'customer_id,ts,metric,score,touchpoint,comment\nc00001,2025-03-01T10:00:00Z,csat,1,refund_issued_email,"{XSS}"\n',
        encoding="utf-8",
    )
    ws.ingest_feedback([feedback])
    add_user(ws.meta_engine(), ADMIN, PASSWORD, "admin")
    add_user(ws.meta_engine(), VIEWER, PASSWORD, "viewer")
    with served(root) as site:
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def sign_in(page: Page, site: Site, name: str = ADMIN, then: str = "/") -> None:
    page.goto(site.url + then)
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


@pytest.fixture(scope="module")
def signed_in(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    sign_in(context.new_page(), site, then="/data")
    yield context
    context.close()


@pytest.fixture
def page(signed_in: BrowserContext) -> Iterator[Page]:
    found = signed_in.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    yield found
    found.close()
    assert not errors, f"script errors on the page: {errors}"


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("TOUCHLENS_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_sign_in_leads_to_the_overview(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site)
    expect(page.get_by_role("heading", level=1)).to_have_text(site.ws.map().name)
    expect(page.locator(".tile").first).to_contain_text("customers")
    context.close()


def test_viewer_sees_the_canvas_without_edit_controls(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, VIEWER, then="/canvas")
    expect(page.locator("[data-touchpoint]")).to_have_count(len(site.ws.map().touchpoints))
    assert page.locator("[draggable=true], .card-edit, .list-edit, form.tp-form").count() == 0
    context.close()


def test_canvas_shows_a_card_for_every_touchpoint_and_the_emotion_curve(page: Page, site: Site) -> None:
    page.goto(site.url + "/canvas")
    expect(page.locator("[data-touchpoint]")).to_have_count(len(site.ws.map().touchpoints))
    expect(page.locator("#emotion-chart .main-svg").first).to_be_visible()
    # Designed (one line per journey) and measured, drawn together.
    expect(page.locator("#emotion-chart .scatterlayer .trace")).to_have_count(len(site.ws.map().journeys) + 1)
    screenshot(page, "web-canvas.png")


def test_editing_expectations_on_the_canvas_is_saved(page: Page, site: Site) -> None:
    text = "Know the day the refund lands, with the order number."
    page.goto(site.url + "/canvas")
    page.locator('[data-touchpoint="refund_issued_email"] .card-edit').click()
    panel = page.locator("#tp-panel")
    panel.locator("[name=expectations]").fill(text)
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator(".status")).to_have_text("Saved")
    page.reload()
    page.locator('[data-touchpoint="refund_issued_email"] .card-edit').click()
    expect(page.locator("#tp-panel [name=expectations]")).to_have_value(text)
    tp = site.ws.map().touchpoint("refund_issued_email")
    assert tp is not None
    assert tp.expectations == text


def test_dragging_a_card_to_another_stage_moves_it_for_good(page: Page, site: Site) -> None:
    page.goto(site.url + "/canvas")
    card = page.locator('[data-touchpoint="social_ads"]')
    target = page.locator('td.cell[data-stage="consider"][data-channel="social"]')
    with page.expect_response(lambda r: "/api/touchpoints/social_ads" in r.url and r.request.method == "PATCH") as sent:
        card.drag_to(target)
    assert sent.value.ok
    page.reload()
    expect(target.locator('[data-touchpoint="social_ads"]')).to_be_visible()
    tp = site.ws.map().touchpoint("social_ads")
    assert tp is not None
    assert (tp.stage, tp.channel) == ("consider", "social")


def test_dragging_an_opportunity_from_now_to_next_persists(page: Page, site: Site) -> None:
    page.goto(site.url + "/roadmap")
    card = page.locator('[data-horizon="now"] .opp-card').first
    key = card.get_attribute("data-key")
    assert key
    with page.expect_response(lambda r: f"/api/roadmap/{key}" in r.url) as sent:
        # Onto the column's heading: dropping on a point that scrolls the page would start the drag elsewhere.
        card.drag_to(page.locator('[data-horizon="next"] h2'))
    assert sent.value.ok
    page.reload()
    expect(page.locator(f'[data-horizon="next"] .opp-card[data-key="{key}"]')).to_be_visible()
    assert next(o for o in site.ws.roadmap() if o.key == key).horizon == "next"
    screenshot(page, "web-roadmap.png")


def test_funnel_builder_shows_the_library_counts(page: Page, site: Site) -> None:
    steps = ["product_page", "checkout", "order_confirmation_email"]
    page.goto(site.url + "/funnel")
    page.get_by_role("button", name="+ Add step").click()
    for select, step in zip(page.locator("#funnel-steps select").all(), steps, strict=True):
        select.select_option(step)
    page.get_by_role("button", name="Run funnel").click()
    expect(page).to_have_url(re.compile(r"steps=product_page%2Ccheckout%2Corder_confirmation_email"))
    shown = [int(t.replace(",", "")) for t in page.locator("#funnel-table td.count").all_inner_texts()]
    expected = site.ws.run_funnel(site.ws.funnel(steps, "7d")).steps
    assert shown == [s.count for s in expected]
    expect(page.locator("[data-chart=funnel] .main-svg").first).to_be_visible()


def test_inventory_filters_and_sorts_in_the_page(page: Page, site: Site) -> None:
    page.goto(site.url + "/inventory")
    rows = page.locator("#inventory tbody tr")
    expect(rows).to_have_count(len(site.ws.map().touchpoints))
    page.get_by_label("Filter touchpoints").fill("sms")
    shown = page.locator("#inventory tbody tr:visible")
    assert 0 < shown.count() < rows.count()
    assert all("sms" in text.lower() for text in shown.all_inner_texts())
    page.get_by_label("Filter touchpoints").fill("")
    page.get_by_role("columnheader", name="Customers").click()
    page.get_by_role("columnheader", name="Customers").click()
    values = page.locator("#inventory tbody td:nth-child(11)").evaluate_all("cells => cells.map(c => c.dataset.value)")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True)


def test_flows_draws_the_sankey(page: Page, site: Site) -> None:
    page.goto(site.url + "/flows")
    expect(page.locator("#sankey-chart .sankey").first).to_be_visible()
    assert page.locator("table tbody tr").count() > 5
    screenshot(page, "web-flows.png")


def test_uploading_events_on_the_data_page_changes_the_counts(page: Page, site: Site, tmp_path: Path) -> None:
    events = tmp_path / "more-events.csv"
    rows = [f"upload-{i},c00002,2026-01-0{i + 1}T10:00:00Z,page_viewed,website" for i in range(5)]
    events.write_text("event_id,customer_id,ts,event,channel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    page.goto(site.url + "/data")
    before = int(page.locator("#count-events").inner_text().replace(",", ""))
    form = page.locator('form.upload[data-endpoint="/api/ingest/events"]')
    form.locator("input[type=file]").set_input_files(events)
    with page.expect_navigation():
        form.get_by_role("button", name="Upload").click()
    expect(page.locator("#count-events")).to_have_text(f"{before + 5:,}")
    expect(form.locator(".status")).to_contain_text("5 accepted")


def test_the_data_page_maps_an_unmapped_event_and_clears_the_quarantine(page: Page, site: Site, tmp_path: Path) -> None:
    events = tmp_path / "app-events.csv"
    rows = [f"app-{i},c0000{i},2026-01-0{i + 1}T10:00:00Z,loyalty_app_opened,app" for i in range(3)]
    events.write_text("event_id,customer_id,ts,event,channel\n" + "\n".join([*rows, "bad,,x,y,z"]) + "\n")
    page.goto(site.url + "/data")
    form = page.locator('form.upload[data-endpoint="/api/ingest/events"]')
    form.locator("input[type=file]").set_input_files(events)
    with page.expect_navigation():
        form.get_by_role("button", name="Upload").click()
    expect(form.locator(".status")).to_contain_text("unmapped by event: loyalty_app_opened 3")
    mapper = page.locator('form.map-event[data-event="loyalty_app_opened"]')
    expect(mapper.locator('input[name="key"]')).to_have_value("loyalty_app_opened")  # prefilled from the event
    mapper.locator('select[name="stage"]').select_option(index=1)
    with page.expect_navigation():
        mapper.get_by_role("button", name="Create touchpoint").click()
    expect(page.locator('form.map-event[data-event="loyalty_app_opened"]')).to_have_count(0)
    created = site.ws.map().touchpoint("loyalty_app_opened")
    assert created is not None
    assert created.stage is not None
    assert int(page.locator("#count-quarantine").inner_text().replace(",", "")) > 0
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Clear quarantine").click()
    expect(page.locator("#count-quarantine")).to_have_text("0")


def test_a_comment_with_markup_shows_as_text_and_runs_nothing(page: Page, site: Site) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(site.url + "/feedback?touchpoint=refund_issued_email&q=onerror")
    expect(page.locator("#verbatims .comment")).to_have_text(XSS)
    page.goto(site.url + "/touchpoints/refund_issued_email")
    expect(page.get_by_text(XSS).first).to_be_visible()
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []


def test_monthly_bars_are_labelled_by_their_own_month_and_the_partial_one_is_marked(page: Page, site: Site) -> None:
    key = "product_page"

    def last_month_cut_short(route: Route) -> None:
        # Whether the demo's last month is whole depends on its dates: the page is served with the last point
        # marked partial, as the trend analysis marks a month the data covers only in part.
        body = route.fetch().text()
        found = re.search(r'(<script type="application/json" id="trend-data">)(.*?)(</script>)', body, re.S)
        assert found is not None
        data = json.loads(found.group(2))
        data["points"][-1]["complete"] = False
        route.fulfill(body=body.replace(found.group(2), json.dumps(data)), content_type="text/html")

    page.route(f"{site.url}/touchpoints/{key}", last_month_cut_short)
    page.goto(f"{site.url}/touchpoints/{key}")
    chart = page.locator('[data-chart="trend"]')
    expect(chart.locator(".xtick text").first).to_be_visible()
    series = json.loads(page.locator("#trend-data").inner_text())
    months = [date.fromisoformat(p["period"]) for p in series["points"]]
    labels = [t.strip() for t in chart.locator(".xtick text").evaluate_all("els => els.map(e => e.textContent)")]
    # Every tick names a month ("Jan 2025"), never the Monday before one ("Dec 28"), and every month of the data
    # has its label centred under its bar.
    assert labels
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{4}", label) for label in labels), labels
    ticks = {
        t["text"]: t["x"]
        for t in chart.locator(".xtick text").evaluate_all(
            "els => els.map(e => { const b = e.getBoundingClientRect(); "
            "return {text: e.textContent.trim(), x: b.x + b.width / 2}; })"
        )
    }
    bars = chart.locator(".barlayer .point path")
    assert bars.count() == len(months)
    for i, month in enumerate(months):
        box = bars.nth(i).bounding_box()
        assert box is not None
        assert abs(ticks[month.strftime("%b %Y")] - (box["x"] + box["width"] / 2)) < box["width"] / 2, month
    partial = [p.get("complete") is False for p in series["points"]]
    assert partial[-1]
    hatched = [bars.nth(i).evaluate("el => (el.style.fill || '').startsWith('url(')") for i in range(len(months))]
    assert hatched == partial
