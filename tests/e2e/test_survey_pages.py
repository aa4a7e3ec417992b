"""The survey page a customer sees and the embeddable widget, in a real browser (issue 21): the page with and
without JavaScript, one-click then comment, and the widget on another site under a strict Content-Security-
Policy, with hostile strings in every text it shows."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

import touchlens
from tests.e2e.test_browser import PASSWORD, Site, chromium, served, sign_in
from tests.e2e.test_hostile_strings import INJECTED, attack
from tests.test_alerts import Receiver
from touchlens.store.users import add_user

pytestmark = pytest.mark.browser
EDITOR = "cx-lead"
ADMIN = "cx-admin"
TOUCHPOINT = attack("touchpoint.name")
QUESTION = attack("survey.question") + " {touchpoint}?"
COMPANY = attack("map.name")


def survey_map() -> dict[str, Any]:
    return {
        "name": COMPANY,
        "touchpoints": [
            {"key": "delivery", "name": TOUCHPOINT, "survey": {"metric": "csat", "question": QUESTION}},
            {"key": "call", "name": "Onboarding call", "survey": {"metric": "nps"}},
        ],
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("surveys") / "ws"
    ws = touchlens.init(root)
    (root / "map.json").write_text(json.dumps(survey_map()), encoding="utf-8")
    ws.import_map(root / "map.json")
    add_user(ws.meta_engine(), EDITOR, PASSWORD, "editor")
    add_user(ws.meta_engine(), ADMIN, PASSWORD, "admin")
    with served(root) as site:
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def link(site: Site, touchpoint: str, customer: str) -> str:
    """A link on the test server (the settings' base_url is the default 127.0.0.1:8000)."""
    url = site.ws.surveys.link(touchpoint, customer)
    return site.url + "/s/" + url.rsplit("/s/", 1)[1]


def answers(site: Site, customer: str) -> list[tuple[Any, ...]]:
    with site.ws.events() as con:
        return con.execute(
            "SELECT touchpoint, score, comment FROM feedback WHERE source = 'survey' AND customer_id = ?", [customer]
        ).fetchall()


def problems_of(page: Page) -> list[str]:
    found: list[str] = []
    page.on("dialog", lambda d: (found.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda exc: found.append(f"script error: {exc}"))
    page.on("console", lambda m: found.append(f"console: {m.text}") if m.type == "error" else None)
    return found


@pytest.mark.parametrize("javascript", [False, True], ids=["no-javascript", "javascript"])
def test_the_survey_page_is_answered_with_or_without_javascript(browser: Browser, site: Site, javascript: bool) -> None:
    customer = f"page-{javascript}"
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 844})
    page = context.new_page()
    problems = problems_of(page)
    page.goto(link(site, "call", customer))
    expect(page.get_by_role("heading")).to_contain_text("How likely are you to recommend")
    page.get_by_role("radio", name="9").check()  # the scores are a labelled radio group: reachable by name
    page.get_by_label("Anything you would like to tell us?").fill("Quick and friendly")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading")).to_have_text("Thank you for your answer.")
    assert answers(site, customer) == [("call", 9.0, "Quick and friendly")]
    page.go_back()
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("answered already")
    assert len(answers(site, customer)) == 1
    assert [p for p in problems if "409 (Conflict)" not in p] == []  # the browser logs the refusal's status
    context.close()


def test_one_click_rating_then_a_comment(browser: Browser, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(link(site, "delivery", "clicker") + "?score=2")
    expect(page.get_by_role("heading")).to_have_text("Thank you: your answer is saved.")
    assert answers(site, "clicker") == [("delivery", 2.0, None)]
    page.get_by_label("Would you like to tell us why?").fill("It came a day late")
    page.get_by_role("button", name="Send comment").click()
    expect(page.get_by_role("heading")).to_have_text("Thank you for your answer.")
    assert answers(site, "clicker") == [("delivery", 2.0, "It came a day late")]
    context.close()


def test_a_tampered_link_gets_a_clear_page(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(link(site, "delivery", "tamper")[:-4] + "AAAA")
    assert response is not None
    assert response.status == 400
    expect(page.get_by_role("heading")).to_have_text("This link does not work")
    context.close()


# -- the widget on another site, under a strict CSP ---------------------------------------------------------


Embed = Callable[[str], str]


@pytest.fixture
def host(site: Site) -> Iterator[Embed]:
    """Another origin (localhost, not 127.0.0.1) serving a page that embeds the widget, under a policy that
    allows only the touchlens server's scripts and requests, and no styles, images or inline code at all."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src {site.url}; connect-src {site.url}; style-src 'none'; "
                "img-src 'none'; base-uri 'none'; form-action 'none'",
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("localhost", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def embed(survey: str) -> str:
        """The URL of a new page on the other site embedding the survey link `survey`."""
        path = f"/page{len(pages)}"
        pages[path] = (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Your order</h1>"
            f'<div id="box" data-touchlens-survey="{survey}"></div>'
            f'<script src="{site.url}/static/survey-widget.js" defer></script></body></html>'
        )
        return f"http://localhost:{server.server_address[1]}{path}"

    yield embed
    server.shutdown()


WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_the_widget_works_under_a_strict_csp_and_shows_hostile_text_as_text(
    browser: Browser, site: Site, host: Embed
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(WATCH)
    problems = problems_of(page)
    page.goto(host(link(site, "delivery", "widget")), wait_until="networkidle")
    box = page.locator("#box")
    expect(box).to_contain_text(attack("survey.question"))  # the hostile question, shown as text
    expect(box).to_contain_text(TOUCHPOINT)
    box.get_by_role("radio", name="4").click()
    box.get_by_role("textbox").fill(attack("widget.comment"))
    box.get_by_role("button", name="Send").click()
    expect(box).to_have_text("Thank you for your answer.")
    assert answers(site, "widget") == [("delivery", 4.0, attack("widget.comment"))]
    assert page.evaluate("() => window.__violations") == []
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate(INJECTED) == []
    assert problems == []
    # The watch is live: an image, which the policy forbids, is reported.
    page.evaluate("() => document.body.appendChild(Object.assign(document.createElement('img'), {src: '/x.png'}))")
    page.wait_for_function("() => window.__violations.length > 0")
    assert page.evaluate("() => window.__violations")[0].startswith("img-src")
    context.close()


def test_the_widget_says_why_a_link_cannot_be_answered(browser: Browser, site: Site, host: Embed) -> None:
    survey = link(site, "delivery", "answered-before")
    site.ws.surveys.answer(survey.rsplit("/s/", 1)[1], 5)  # answered by e-mail first
    context = browser.new_context()
    page = context.new_page()
    page.goto(host(survey), wait_until="networkidle")
    expect(page.locator("#box")).to_have_text("This survey was answered already: thank you.")
    context.close()


def test_the_widget_script_is_one_static_file_with_no_other_origin(site: Site) -> None:
    script = (Path(touchlens.__file__).parent / "web" / "static" / "survey-widget.js").read_text()
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
        assert banned not in script
    assert "http://" not in script.split("*/", 1)[1]
    assert "https://" not in script.split("*/", 1)[1]


# -- the case list: an unhappy answer becomes a case an editor follows up ----------------------------------


def test_an_unhappy_answer_becomes_a_case_the_editor_closes(browser: Browser, site: Site) -> None:
    customer = browser.new_context(java_script_enabled=False).new_page()
    customer.goto(link(site, "delivery", "unhappy") + "?score=1")
    customer.get_by_label("Would you like to tell us why?").fill("Left on the doorstep in the rain")
    customer.get_by_role("button", name="Send comment").click()
    expect(customer.get_by_role("heading")).to_have_text("Thank you for your answer.")

    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, name=EDITOR, then="/cases")
    row = page.locator("#case-list tbody tr", has_text="unhappy")
    expect(row).to_contain_text("low score (1 of 5 CSAT)")
    expect(row).to_contain_text(TOUCHPOINT)  # the hostile name, as text
    row.get_by_role("link").click()
    expect(page.locator("#case-comment")).to_have_text("Left on the doorstep in the rain")
    page.get_by_label("What was done").fill("Called, refunded the delivery fee")
    page.get_by_role("button", name="Close the case").click()
    expect(page.locator("#case-status")).to_have_text("closed")
    expect(page.locator("#case-note")).to_have_text("Called, refunded the delivery fee")
    page.goto(site.url + "/cases?status=closed")
    expect(page.locator("#case-list tbody tr", has_text="unhappy")).to_contain_text("closed")
    assert page.evaluate("() => window.__pwned") is None
    context.close()


# -- the alerts page: an admin adds a rule and sends a test to a local webhook -----------------------------


def test_an_admin_adds_an_alert_rule_and_sends_a_test(browser: Browser, site: Site) -> None:
    receiver = Receiver()
    context = browser.new_context()
    page = context.new_page()
    problems = problems_of(page)
    sign_in(page, site, name=ADMIN, then="/alerts")
    form = page.locator("#new-rule")
    form.get_by_label("Name").fill("Delivery CSAT")
    form.get_by_label("Watches").select_option("csat_drop")
    form.get_by_label("Scope").fill("touchpoint:delivery")
    form.get_by_label("Webhook URL").fill(receiver.url)
    form.get_by_role("button", name="Add the rule").click()
    row = page.locator("#alert-rules tbody tr", has_text="Delivery CSAT")
    expect(row).to_contain_text("CSAT fell")
    expect(row).to_contain_text("touchpoint:delivery")
    row.get_by_role("button", name="Send a test").click()
    expect(page.locator("#tested")).to_contain_text("webhook sent")
    assert "a test of the alert rule 'Delivery CSAT'" in receiver.bodies[0]["text"]
    page.locator("#alert-rules tbody tr", has_text="Delivery CSAT").get_by_role("button", name="Remove").click()
    expect(page.locator("#alert-rules")).to_contain_text("No rules yet.")
    assert problems == []
    receiver.server.shutdown()
    context.close()


def test_a_viewer_sees_the_rules_but_no_form(browser: Browser, site: Site) -> None:
    add_user(site.ws.meta_engine(), "cx-viewer", PASSWORD, "viewer")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, name="cx-viewer", then="/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    assert page.locator("#new-rule").count() == 0
    context.close()
