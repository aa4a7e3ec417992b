"""The judgment pages in a real browser (Debian's chromium driven by Playwright against uvicorn over a small demo):
findings and roadmap cards in words with what is at stake, the Suggest button for editors, the feedback explorer
sorted by score.

Set TOUCHLENS_SCREENSHOTS=1 to also write screenshots of the insights page and the roadmap in docs/img.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.test_browser import CHROMIUM, PASSWORD, Site, chromium, screenshot, served, sign_in

if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, expect

from touchlens.demo_workspace import build_demo
from touchlens.store.users import add_user

pytestmark = pytest.mark.browser

EDITOR, VIEWER = "editor", "reader"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A small demo with no suggested cards yet: the roadmap holds only the cards people wrote."""
    root = tmp_path_factory.mktemp("judgment") / "demo"
    ws = build_demo(root, customers=1500).workspace
    add_user(ws.meta_engine(), EDITOR, PASSWORD, "editor")
    add_user(ws.meta_engine(), VIEWER, PASSWORD, "viewer")
    with served(root) as site:
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def editor(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    sign_in(context.new_page(), site, EDITOR, then="/data")
    yield context
    context.close()


@pytest.fixture
def page(editor: BrowserContext) -> Iterator[Page]:
    found = editor.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    yield found
    found.close()
    assert not errors, f"script errors on the page: {errors}"


def assert_readable(text: str) -> None:
    assert '{"' not in text, "raw JSON on the page"
    assert not re.search(r"\de[+-]0", text, re.IGNORECASE), "scientific notation on the page"


def test_insights_show_summaries_with_at_stake_and_no_json(page: Page, site: Site) -> None:
    problems = site.ws.insights(("problems",)).sections["problems"]
    staked = [p for p in problems if p.at_stake is not None]
    assert staked, "the demo plants a moment of truth with something at stake"
    page.goto(site.url + "/insights")
    expect(page.locator("#problems article.insight").first).to_be_visible()
    for item in staked:
        article = page.locator("article.insight", has_text=item.summary)
        expect(article).to_have_count(1)
        expect(article.locator(".stake")).to_have_text(f"At stake: about {item.at_stake.text()}")  # type: ignore[union-attr]
    page.locator("details", has_text="Evidence").first.locator("summary").click()
    assert_readable(page.locator("main").inner_text())
    screenshot(page, "web-insights.png")


def test_suggest_adds_cards_with_at_stake_to_the_board(page: Page, site: Site) -> None:
    page.goto(site.url + "/roadmap")
    before = page.locator(".opp-card").count()
    assert page.locator(".opp-card .stake").count() == 0, "only the cards people wrote, none suggested yet"
    page.get_by_role("button", name="Suggest").click()
    expect(page.locator("#suggest-status")).to_contain_text(re.compile(r"\d+ cards? added"))
    assert page.locator(".opp-card").count() > before
    best = site.ws.roadmap()[0]
    stake = best.evidence.get("at_stake")
    assert isinstance(stake, dict)
    card = page.locator(f'.opp-card[data-key="{best.key}"]')
    expect(card.locator(".stake")).to_contain_text(f"{stake['value']:,}")
    expect(card.locator(".stake")).to_contain_text(str(stake["unit"]))
    assert_readable(page.locator("main").inner_text())
    screenshot(page, "web-roadmap-suggested.png")


def test_viewers_get_no_suggest_button(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, VIEWER, then="/roadmap")
    expect(page.locator(".lane-col").first).to_be_visible()
    assert page.get_by_role("button", name="Suggest").count() == 0
    context.close()


def test_the_feedback_explorer_sorts_by_score(page: Page, site: Site) -> None:
    page.goto(site.url + "/feedback")
    page.get_by_label("Metric").select_option("csat")
    page.get_by_label("Verbatims").select_option("lowest")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"sort=lowest"))
    shown = page.locator("blockquote.verbatim").evaluate_all("els => els.map(e => e.dataset.score)")
    scores = [float(s) for s in shown]
    assert scores
    assert scores == sorted(scores)
    assert scores[0] == min(c["score"] for c in site.ws.comments(metric="csat", limit=100_000))
    expect(page.locator("figure.bars")).to_have_count(1)
    expect(page.locator("figure.bars figcaption")).to_contain_text("CSAT")
