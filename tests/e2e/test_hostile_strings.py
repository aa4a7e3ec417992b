"""Hostile strings in every user-visible field render as inert text on every page, in a real browser.

Each field carries markup tagged with its own name (``map.name``, ``touchpoint.owner`` …), so an injection that
gets through names the field it came from: in the offending element's attributes, in `window.__pwned`, or in
the page's text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page

import touchlens
from tests.e2e.test_browser import PASSWORD, Site, chromium, serving, sign_in
from touchlens.api import Workspace
from touchlens.registry import ANALYSES
from touchlens.store.users import add_user
from touchlens.web.app import create_app, routes

pytestmark = pytest.mark.browser


def attack(field: str) -> str:
    """Every markup attack at once, tagged with the field it sits in."""
    return (
        f"{field}: <script>window.__pwned='{field}'</script>"
        f"<img src=x onerror=\"window.__pwned='{field}'\">"
        f"\"'><svg onload=\"window.__pwned='{field}'\">"
        f"<a href=\"javascript:window.__pwned='{field}'\">{field}</a>"
    )


JS_URL = "javascript:window.__pwned='url'"
SQL = "'; DROP TABLE events; DROP TABLE feedback; --"
TRAVERSAL = "../../etc/passwd"
ODD = "rtl\u202eevil\u202c zero\u200bwidth\u200d\ufeff ctl\x07\x08\x1b[31m"
LONG = attack("long") + "x" * 10_000
USER = "<img src=x onerror=\"window.__pwned='user.name'\">"  # user names stop at 120 characters
FILE = "\"><svg onload=alert('file')>.csv"
TOUCHPOINTS = ("browse", "buy", "help")
EVENT = attack("event.name")
CHANNEL = attack("event.channel")
PROPERTY = attack("event.property")


def hostile_map() -> dict[str, Any]:
    """A map whose every free-text field is hostile; keys stay keys (the map refuses anything else there)."""

    def stage(key: str) -> dict[str, Any]:
        return {
            "key": key,
            "name": attack(f"stage.name.{key}"),
            "goal": attack("stage.goal") + ODD,
            "tasks": [attack("stage.task"), JS_URL],
            "questions": [attack("stage.question"), SQL],
            "emotion": 1,
            "weaknesses": [attack("stage.weakness")],
            "opportunities": [attack("stage.opportunity")],
        }

    def touchpoint(key: str, stage_key: str, match: dict[str, Any]) -> dict[str, Any]:
        return {
            "key": key,
            "name": attack(f"touchpoint.name.{key}"),
            "description": attack("touchpoint.description"),
            "stage": stage_key,
            "channel": "web",
            "owner": attack("touchpoint.owner"),
            "expectations": JS_URL,
            "annoyances": SQL,
            "desired": {"think": attack("desired.think"), "do": TRAVERSAL, "feel": ODD},
            "script": LONG,
            "match": match,
            "targets": {"csat": 0.9},
        }

    return {
        "name": attack("map.name"),
        "description": SQL,
        "mission": LONG,
        "success": [attack("map.success"), TRAVERSAL],
        "channels": [{"key": "web", "name": attack("channel.name"), "description": ODD, "owner": JS_URL}],
        "personas": [
            {
                "key": "p1",
                "name": attack("persona.name"),
                "description": ODD,
                "goals": [attack("persona.goal")],
                "frustrations": [SQL],
                "segment": [{"property": "plan", "equals": PROPERTY}],
            }
        ],
        "journeys": [
            {
                "key": "j1",
                "name": attack("journey.name"),
                "persona": "p1",
                "description": attack("journey.description"),
                "stages": [stage("discover"), stage("purchase"), stage("support")],
            }
        ],
        "touchpoints": [
            touchpoint("browse", "discover", {"event": EVENT}),
            touchpoint("buy", "purchase", {"event": "order_placed", "where": {"plan": PROPERTY}}),
            touchpoint("help", "support", {"event": "ticket"}),
        ],
        "outcomes": {"conversion": {"event": "order_placed"}},
        "opportunities": [
            {
                "key": "o1",
                "title": attack("opportunity.title"),
                "description": attack("opportunity.description"),
                "owner": attack("opportunity.owner"),
                "touchpoints": ["buy"],
                "horizon": "now",
                "impact": 3,
                "effort": 1,
                "confidence": 0.5,
                "evidence": {"insight": {"subject_type": "touchpoint", "subject": JS_URL}},
            }
        ],
    }


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


def build(root: Path) -> Workspace:
    """The hostile workspace: the map, events (one row quarantined), feedback, suggestions and a user."""
    ws = touchlens.init(root)
    (root / "map.yaml").write_text(yaml.safe_dump(hostile_map(), allow_unicode=True), encoding="utf-8")
    ws.import_map(root / "map.yaml")
    rows: list[list[Any]] = []
    for i in range(40):
        customer = f"{attack('event.customer')}#{i}"
        day = f"2025-03-{1 + i % 20:02d}"
        rows.append([customer, f"{day}T09:00:00Z", EVENT, CHANNEL, PROPERTY])
        if i % 2:
            rows.append([customer, f"{day}T09:05:00Z", "order_placed", CHANNEL, PROPERTY])
        if i % 3 == 0:
            rows.append([customer, f"{day}T10:00:00Z", "ticket", CHANNEL, attack("event.other_property")])
    rows.append(["", "not a time", attack("quarantine.event"), CHANNEL, PROPERTY])  # lands in quarantine
    events = root / FILE
    events.write_text(csv_text(["customer_id", "ts", "event", "channel", "plan"], rows), encoding="utf-8")
    ws.ingest_events([events])
    feedback = root / "feedback.csv"
    answers = [
        [
            f"{attack('event.customer')}#{i}",
            f"2025-03-{1 + i % 20:02d}T09:10:00Z",
            "csat",
            1 + i % 5,
            tp,
            attack("feedback.comment"),
        ]
        for i in range(40)
        for tp in TOUCHPOINTS[i % 3 : i % 3 + 1]
    ]
    feedback.write_text(
        csv_text(["customer_id", "ts", "metric", "score", "touchpoint", "comment"], answers), encoding="utf-8"
    )
    ws.ingest_feedback([feedback])
    ws.roadmap_suggest(samples=10)
    _, link = ws.audits.start("j1", attack("audit.auditor"))  # a walkthrough whose answers are hostile too
    answer = {"met": "no", "annoyances": attack("audit.annoyances"), "think": attack("audit.think"), "emotion": "-1"}
    ws.audits.record(link.rsplit("/walk/", 1)[1], 1, answer)
    add_user(ws.meta_engine(), USER, PASSWORD, "admin")
    return ws


@dataclass
class HostileSite(Site):
    app: FastAPI  # to list its routes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSite]:
    root = tmp_path_factory.mktemp("hostile") / "ws"
    build(root)
    app = create_app(root)
    with serving(app) as url:
        yield HostileSite(url, app.state.web.ws, app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    # Without the CSP, which would block inline scripts: what is tested is that nothing is injected at all.
    context = browser.new_context(bypass_csp=True)
    sign_in(context.new_page(), site, name=USER, then="/data")
    yield context
    context.close()


# Query values each page takes: hostile where free text is allowed, real keys where a key is needed.
QUERIES: dict[str, list[str]] = {
    "/canvas": ["?journey=j1", "?journey=" + quote(attack("query.journey"))],
    "/feedback": ["?touchpoint=buy", "?q=" + quote(attack("query.q")), "?touchpoint=" + quote(attack("query.tp"))],
    "/funnel": ["?steps=browse%2Cbuy", "?steps=" + quote(attack("query.steps"))],
    "/attribution": ["?by=touchpoint", "?by=" + quote(attack("query.by"))],
    "/flows": ["?depth=3"],
    "/audits/compare": ["?journey=j1", "?journey=" + quote(attack("query.journey"))],
    # A bad option comes back on the form with the problem: both must stay text.
    "/analyses/{name}": ["?session_gap=" + quote(attack("query.session_gap")), "?touchpoint=" + quote(attack("q.tp"))],
}
# A key with a "/" (as in "</script>") matches no route; one without reaches the page, which must refuse it.
PATH_VALUES = {
    "key": [*TOUCHPOINTS, quote(attack("path.key"), safe=""), quote(USER.replace("user.name", "path"))],
    "name": [*ANALYSES, quote(USER.replace("user.name", "path"))],
    "audit_id": ["1", "999"],  # a walkthrough of the hostile journey (made in `build`), and none
    "case_id": ["1", "999"],  # none: the hostile answers are older than a case looks back
}
PLAIN = {"sql": SQL, "traversal": TRAVERSAL, "js_url": JS_URL, "odd": ODD, "user": USER, "file": FILE}
# The customers' survey page (/s/) takes a signed link, not a session: tests/e2e/test_survey_pages.py has its own.
NOT_PAGES = re.compile(r"^/(api|v1|vendor|static|s|walk)/|\.(csv|js)$|^/login$|^/logout$|/photo/")

# What is injected looks like this in the DOM: an event-handler attribute, a javascript: URL, a live script.
INJECTED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (/^on/i.test(a.name)) found.push(`<${el.tagName} ${a.name}="${a.value}">`);
      if (/^(href|src|action|formaction|xlink:href)$/i.test(a.name) && /^\\s*javascript:/i.test(a.value))
        found.push(`<${el.tagName} ${a.name}="${a.value}">`);
    }
    if (el.tagName === 'SCRIPT' && el.type !== 'application/json' && el.textContent.includes('__pwned'))
      found.push(`<script>${el.textContent}</script>`);
  }
  return found;
}"""


def page_urls(site: HostileSite) -> list[str]:
    """Every page the app serves (its HTML GET routes), path parameters filled, with and without query values."""
    urls: list[str] = []
    for method, path in sorted(routes(site.app)):
        if method != "GET" or NOT_PAGES.search(path):
            continue
        params = re.findall(r"{(\w+)}", path)
        unknown = [p for p in params if p not in PATH_VALUES]
        assert not unknown, f"{path}: no values for {unknown}; add them to PATH_VALUES"
        filled = [path]
        for name in params:
            filled = [f.replace("{" + name + "}", value) for f in filled for value in PATH_VALUES[name]]
        urls += [f + query for f in filled for query in ["", *QUERIES.get(path, [])]]
    return urls


def visit(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """The page at `url`, loaded, with what went wrong on the way: dialogs, script errors, CSP refusals."""
    page = context.new_page()
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and re.search(r"Content Security Policy|Refused to|script", m.text, re.I)
            else None
        ),
    )
    page.goto(url, wait_until="networkidle")
    return page, problems


# Fields each page shows as text (besides the map name and the user's name, on every page): the escaping must
# leave them readable, not only harmless. The names are those `attack` tags its text with, or `PLAIN`'s.
SHOWN: dict[str, set[str]] = {
    "/": {"map.success", "opportunity.title", "long", "traversal"},
    "/canvas": {"journey.name", "channel.name", "stage.name.discover", "stage.task", "stage.question", "stage.goal"}
    | {"stage.weakness", "stage.opportunity", "touchpoint.name.browse", "odd", "js_url", "sql"},
    "/inventory": {"touchpoint.name.buy", "touchpoint.owner"},
    "/matrix": {"channel.name"},
    "/funnel": {"touchpoint.name.browse", "touchpoint.name.help"},
    "/attribution": {"event.channel"},
    "/feedback": {"feedback.comment"},
    "/insights": {"event.channel", "event.property"},
    "/roadmap": {"opportunity.title", "opportunity.description"},
    "/audits": {"audit.auditor"},
    "/audits/1": {"audit.auditor", "audit.annoyances", "audit.think", "touchpoint.name.browse"},
    "/data": {"file"},
    "/touchpoints/browse": {"touchpoint.name.browse", "touchpoint.description", "event.name", "channel.name"}
    | {"feedback.comment", "long", "js_url", "sql"},
    "/touchpoints/buy": {"touchpoint.name.buy", "event.property", "opportunity.title"},
    # Query values a page repeats back (in a form, or a message) stay text too.
    "/canvas?journey=" + quote(attack("query.journey")): {"query.journey"},
    "/funnel?steps=" + quote(attack("query.steps")): {"query.steps"},
    "/attribution?by=" + quote(attack("query.by")): {"query.by"},
}
EVERY_PAGE = {"map.name", "user"}
NO_PAGE = "/touchpoints/" + PATH_VALUES["key"][len(TOUCHPOINTS)]  # matches no route: the server's plain 404


def test_every_page_shows_hostile_strings_as_inert_text(site: HostileSite, signed_in: BrowserContext) -> None:
    failures: list[str] = []
    for path in page_urls(site):
        page, problems = visit(signed_in, site.url + path)
        problems += page.evaluate(INJECTED)
        pwned = page.evaluate("() => window.__pwned")
        if pwned is not None:
            problems.append(f"window.__pwned = {pwned!r}")
        text = page.evaluate("() => document.title + '\\n' + document.body.textContent")
        page.close()
        shown = set(re.findall(r"([a-z_.]+): <script>window.__pwned='\1'</script>", text))
        shown |= {name for name, value in PLAIN.items() if value in text}
        missing = set() if path == NO_PAGE else (EVERY_PAGE | SHOWN.get(path, set())) - shown
        if missing:
            problems.append(f"not shown as text: {sorted(missing)}")
        failures += [f"{path}: {p}" for p in problems]
    assert not failures, "\n".join(failures)


def test_the_sign_in_page_takes_a_hostile_next_as_inert_text(browser: Browser, site: Site) -> None:
    context = browser.new_context(bypass_csp=True)
    for path in ("/login?next=" + quote(attack("query.next")), "/login?failed=true&next=" + quote(JS_URL)):
        page, problems = visit(context, site.url + path)
        problems += page.evaluate(INJECTED)
        assert page.evaluate("() => window.__pwned") is None
        assert not problems, problems
        assert page.locator("input[name=next]").get_attribute("value") in ("/", path.split("next=")[1])
        page.close()
    context.close()


def test_sql_in_every_field_stayed_data(site: Site, signed_in: BrowserContext) -> None:
    page, problems = visit(signed_in, site.url + "/data")
    page.close()
    assert not problems
    with site.ws.events() as con:
        events = con.execute("SELECT count(*), count(*) FILTER (event = ?) FROM events", [EVENT]).fetchone()
        feedback = con.execute("SELECT count(*) FROM feedback").fetchone()
    assert events is not None
    assert events[0] > 40
    assert events[1] == 40
    assert feedback == (40,)
    assert site.ws.map().description == SQL
