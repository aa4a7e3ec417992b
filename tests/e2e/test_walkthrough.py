"""A full walkthrough by an outsider whose link opens that walkthrough and nothing else, in a real browser, with
and without JavaScript; then its comparison on the canvas (issue 22, part 4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

import touchlens
from tests.e2e.test_browser import PASSWORD, Site, chromium, served, sign_in
from tests.e2e.test_hostile_strings import INJECTED, attack
from touchlens.store.users import add_user

pytestmark = pytest.mark.browser
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EDITOR = "cx-lead"
MAP = {
    "name": "Shop",
    "personas": [{"key": "new"}],
    "journeys": [{"key": "first", "name": "First order", "persona": "new",
                  "stages": [{"key": "find", "name": "Find", "emotion": 1},
                             {"key": "buy", "name": "Buy", "emotion": 2}]}],
    "touchpoints": [
        {"key": "ad", "name": attack("touchpoint.name"), "stage": "find", "expectations": attack("expectations")},
        {"key": "checkout", "name": "Checkout", "stage": "buy", "expectations": "Three steps at most",
         "desired": {"think": "That was quick", "do": "Pay", "feel": "In control"}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("walk") / "ws"
    ws = touchlens.init(root)
    (root / "map.json").write_text(json.dumps(MAP), encoding="utf-8")
    ws.import_map(root / "map.json")
    add_user(ws.meta_engine(), EDITOR, PASSWORD, "editor")
    with served(root) as site:
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_an_outsider_walks_the_journey_and_the_canvas_compares_it(
    browser: Browser, site: Site, tmp_path: Path, javascript: bool
) -> None:
    # The team starts the walkthrough and hands the link over.
    team = browser.new_context()
    page = team.new_page()
    sign_in(page, site, name=EDITOR, then="/audits")
    page.get_by_label("Auditor").fill("Olga, outsider")
    page.get_by_role("button", name="Start and get the link").click()
    link = page.locator("#walk-link").input_value()
    walk = site.url + "/walk/" + link.rsplit("/walk/", 1)[1]

    # The outsider: no session, only the link.
    outsider = browser.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 844})
    step = outsider.new_page()
    step.goto(walk)
    expect(step.locator("#progress")).to_have_text("Step 1 of 2")
    expect(step.locator("#touchpoint")).to_have_text(attack("touchpoint.name"))  # hostile, shown as text
    expect(step.locator("#expectations")).to_have_text(attack("expectations"))
    step.get_by_label("No", exact=True).check()
    step.get_by_label("Annoyances you saw").fill("The price only shows after a click")
    step.get_by_label("What did you feel?").fill("Misled")
    step.get_by_label("-1 negative").check()
    shot = tmp_path / "shot.png"
    shot.write_bytes(PNG)
    step.get_by_label("A photo or screenshot").set_input_files(str(shot))
    step.get_by_role("button", name="Save and go on").click()
    expect(step.locator("#progress")).to_have_text("Step 2 of 2")
    expect(step.get_by_text("That was quick")).to_be_visible()  # what we want them to think
    step.get_by_label("Yes", exact=True).check()
    step.get_by_label("+2 very positive").check()
    step.get_by_role("button", name="Save and finish").click()
    expect(step.get_by_role("heading")).to_have_text("Thank you: the walkthrough is recorded.")
    assert step.evaluate("() => window.__pwned") is None if javascript else True
    # The link opens this walkthrough only: the team's pages still ask it to sign in.
    step.goto(site.url + "/audits")
    assert "/login" in step.url
    outsider.close()

    # The record, and the comparison on the canvas.
    audit_id = link.rsplit("/walk/", 1)[1].split(".")[0]
    page.goto(f"{site.url}/audits/{audit_id}")
    expect(page.locator("#audit-steps")).to_contain_text("The price only shows after a click")
    expect(page.locator("#audit-steps").get_by_role("link", name="photo")).to_be_visible()
    page.goto(site.url + "/canvas?journey=first")
    table = page.locator("#emotion-compare")
    expect(table.locator("tr", has_text="Find")).to_contain_text("-1.0")
    expect(table.locator("tr", has_text="Buy")).to_contain_text("+2.0")
    names = page.evaluate("() => document.getElementById('emotion-chart').data.map(t => t.name)")
    assert "audited: walkthroughs" in names
    assert page.evaluate(INJECTED) == []
    team.close()
