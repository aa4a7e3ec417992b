"""Alerts (issue 21, part 3): a planted CSAT drop raises one alert per channel, a null twin none; sent once until
it clears; quiet hours hold alerts for one digest; delivered to a local webhook and a local SMTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import write
from touchlens.errors import BadOption
from touchlens.insights.alerting import CsatWindows, csat_drops, is_quiet
from touchlens.web.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
MAP = {
    "name": "Shop",
    "touchpoints": [
        {"key": "delivery", "name": "Delivery text", "stage": "receive", "owner": "Logistics"},
        {"key": "checkout", "name": "Checkout", "stage": "buy", "owner": "Web"},
    ],
}


# -- the judgment, over many seeds -------------------------------------------------------------------------


def simulate(rng: np.random.Generator, recent_share: float, touchpoints: int = 5) -> list[CsatWindows]:
    """Touchpoints at 85% CSAT over 400 baseline answers; the first's last 40 answers at `recent_share`."""
    out = []
    for i in range(touchpoints):
        share = recent_share if i == 0 else 0.85
        out.append(CsatWindows(f"t{i}", 40, int(rng.binomial(40, share)), 400, int(rng.binomial(400, 0.85))))
    return out


def test_a_csat_drop_is_found_and_a_null_twin_rarely_alarms() -> None:
    rng = np.random.default_rng(7)
    seeds = 400
    false_alarms = sum(bool(csat_drops(simulate(rng, 0.85), 0.05, 10, 20)) for _ in range(seeds))
    found = [csat_drops(simulate(rng, 0.45), 0.05, 10, 20) for _ in range(seeds)]
    assert false_alarms / seeds <= 0.05  # a family-wise rate: Holm over the five touchpoints
    assert sum(1 for f in found if [d.touchpoint for d in f] == ["t0"]) / seeds >= 0.95


def test_a_significant_but_small_drop_is_not_an_alert() -> None:
    small = CsatWindows("t", 20_000, 16_600, 200_000, 170_000)  # 83% against 85%: certain, but 2 points
    assert csat_drops([small], 0.05, 10, 20) == []
    assert [d.touchpoint for d in csat_drops([small], 0.05, 1, 20)] == ["t"]


def test_too_few_answers_are_not_judged() -> None:
    assert csat_drops([CsatWindows("t", 19, 0, 400, 380)], 0.05, 10, 20) == []


def test_quiet_hours_cross_midnight_in_their_time_zone() -> None:
    at = datetime(2026, 7, 1, 21, 30, tzinfo=UTC)  # 22:30 in London (summer time)
    assert is_quiet(at, "22:00-07:00", "Europe/London")
    assert not is_quiet(at, "22:00-07:00", "UTC")
    assert is_quiet(at.replace(hour=5), "22:00-07:00", "UTC")
    assert not is_quiet(at.replace(hour=7), "22:00-07:00", "UTC")
    assert is_quiet(at.replace(hour=13), "12:00-14:00", "UTC")
    assert not is_quiet(at, None, "UTC")


# -- delivery to a local webhook and a local SMTP server ----------------------------------------------------


class Receiver:
    """A local webhook: every JSON body POSTed to it."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Mailbox:
    """aiosmtpd's handler: every message the local SMTP server took."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def _free_port() -> int:
    """A free port (aiosmtpd checks its server is up by connecting, so 0 will not do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def shop(tmp_path: Path, smtp_port: int, extra: str = "") -> touchlens.Workspace:
    root = tmp_path / "ws"
    touchlens.init(root)
    write(root / "touchlens.toml", f'[alerts]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n{extra}')
    ws = touchlens.open(root)
    ws.import_map(write(tmp_path / "map.json", json.dumps(MAP)))
    return ws


def answers(tmp_path: Path, name: str, recent: dict[str, float], seed: int = 1) -> Path:
    """Four weeks of CSAT answers at 90% on both touchpoints, then 30 answers each in the last day at `recent`."""
    rng = np.random.default_rng(seed)
    lines = ["customer_id,ts,metric,score,touchpoint"]
    for tp in ("delivery", "checkout"):
        for i in range(200):
            ts = NOW - timedelta(days=2 + 26 * i / 200)
            lines.append(f"b-{tp}-{i},{ts.isoformat()},csat,{5 if rng.random() < 0.9 else 2},{tp}")
        for i in range(30):
            ts = NOW - timedelta(hours=20 * i / 30 + 1)
            lines.append(f"r-{tp}-{i},{ts.isoformat()},csat,{5 if rng.random() < recent.get(tp, 0.9) else 2},{tp}")
    return write(tmp_path / name, "\n".join(lines) + "\n")


def test_a_planted_drop_raises_one_alert_per_channel_and_its_twin_none(
    tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    planted = shop(tmp_path / "planted", port)
    planted.alerts.add("CSAT drop", "csat_drop", webhook=hook.url, emails=["owner@example.com"])
    planted.ingest_feedback([answers(tmp_path, "drop.csv", {"delivery": 0.3})])  # checked after the ingest
    assert len(hook.bodies) == 1
    assert [a["subject"] for a in hook.bodies[0]["alerts"]] == ["delivery"]
    assert "CSAT of Delivery text fell to" in hook.bodies[0]["text"]
    assert len(box.messages) == 1
    assert box.messages[0]["To"] == "owner@example.com"
    assert "Delivery text" in box.messages[0].get_payload()
    assert planted.alerts.check().fired == []  # sent once: still standing, nothing new
    assert len(hook.bodies) == 1

    twin = shop(tmp_path / "twin", port)
    twin.alerts.add("CSAT drop", "csat_drop", webhook=hook.url, emails=["owner@example.com"])
    twin.ingest_feedback([answers(tmp_path, "same.csv", {})])
    assert twin.alerts.check().fired == []
    assert (len(hook.bodies), len(box.messages)) == (1, 1)


def test_an_alert_clears_and_can_fire_again(tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int]) -> None:
    ws = shop(tmp_path, mailbox[1])
    rule = ws.alerts.add("drop", "csat_drop", scope="touchpoint:delivery", webhook=hook.url)
    ws.ingest_feedback([answers(tmp_path, "drop.csv", {"delivery": 0.3})])
    later = NOW + timedelta(days=2)  # the bad day has left the window
    result = ws.alerts.check(later)
    assert result.cleared == ["drop: delivery"]
    assert ws.alerts.history()[0]["cleared_at"] is not None
    assert len(hook.bodies) == 1
    ws.alerts.remove(rule.id)
    assert ws.alerts.list() == []


def test_quiet_hours_hold_alerts_then_send_one_digest(
    tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int]
) -> None:
    ws = shop(tmp_path, mailbox[1])
    hour = NOW.hour
    quiet = f"{hour:02d}:00-{(hour + 2) % 24:02d}:00"  # now is quiet; three hours on is not
    ws.alerts.add("volume", "survey_volume", threshold=50, webhook=hook.url, quiet=quiet)
    ws.ingest_feedback([answers(tmp_path, "a.csv", {})])  # 30 answers a day each: both under 50
    assert hook.bodies == []
    assert ws.alerts.check().waiting == 2
    after = ws.alerts.check(NOW.replace(minute=0, second=0) + timedelta(hours=3))
    assert after.sent == 1
    [digest] = hook.bodies
    assert sorted(a["subject"] for a in digest["alerts"]) == ["checkout", "delivery"]
    assert digest["text"].startswith("touchlens alert 'volume': 2 alerts")


def test_case_age_alerts_name_the_touchpoint(tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int]) -> None:
    ws = shop(tmp_path, mailbox[1])
    ws.ingest_feedback(
        [write(tmp_path / "f.csv", f"customer_id,ts,metric,score,touchpoint\nc,{NOW.isoformat()},csat,1,delivery\n")]
    )
    ws.alerts.add("stale cases", "case_age", threshold=24, webhook=hook.url)
    assert ws.alerts.check().fired == []
    assert ws.alerts.check(NOW + timedelta(hours=30)).fired == ["stale cases: delivery"]
    assert "1 follow-up case on Delivery text open longer than 24 hours" in hook.bodies[0]["text"]


def test_a_failing_channel_is_recorded_and_retried(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    ws = shop(tmp_path, mailbox[1])
    ws.alerts.add("volume", "survey_volume", threshold=50, webhook="http://127.0.0.1:9/nothing-listens")
    ws.ingest_feedback([answers(tmp_path, "a.csv", {})])
    assert ws.alerts.check().waiting == 2  # not sent: still due at the next check
    assert ws.alerts.history()[0]["delivery"]["webhook"].startswith("failed:")
    assert ws.alerts.history()[0]["sent_at"] is None


def test_rules_are_checked_with_located_errors(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    ws = shop(tmp_path, mailbox[1])
    for kwargs, words in [
        ({"kind": "bogus"}, "--kind"),
        ({"kind": "health"}, "--webhook / --email"),
        ({"kind": "health", "webhook": "ftp://x"}, "--webhook"),
        ({"kind": "health", "emails": ["not an address"]}, "--email"),
        ({"kind": "health", "emails": ["a@b.c"], "scope": "touchpoint:nope"}, "touchpoints are: checkout, delivery"),
        ({"kind": "health", "emails": ["a@b.c"], "quiet": "late"}, "--quiet"),
        ({"kind": "health", "emails": ["a@b.c"], "timezone": "Mars/Olympus"}, "--timezone"),
    ]:
        with pytest.raises(BadOption, match=words):
            ws.alerts.add("r", **kwargs)


def test_alerts_commands(tmp_path: Path, cli: Any, hook: Receiver, mailbox: tuple[Mailbox, int]) -> None:
    ws = shop(tmp_path, mailbox[1])
    added = cli("-w", ws.root, "alerts", "add", "--name", "drop", "--kind", "csat_drop", "--webhook", hook.url,
                "--email", "a@example.com", "--scope", "stage:receive")  # fmt: skip
    assert added.code == 0
    rule_id = added.out.strip()
    tested = cli("-w", ws.root, "alerts", "test", rule_id)
    assert tested.code == 0
    assert "webhook: sent" in tested.out
    assert "email: sent" in tested.out
    assert "a test of the alert rule 'drop'" in hook.bodies[0]["text"]
    listed = json.loads(cli("-w", ws.root, "alerts", "list", "--json").out)
    assert (listed[0]["scope"], listed[0]["threshold"], listed[0]["window_hours"]) == ("stage:receive", 10.0, 24.0)
    assert cli("-w", ws.root, "alerts", "check").code == 0
    assert cli("-w", ws.root, "alerts", "remove", rule_id).code == 0
    assert cli("-w", ws.root, "alerts", "remove", rule_id).code == 1


# -- a live stream through the server ----------------------------------------------------------------------


def stream(client: TestClient, ws: touchlens.Workspace, recent_share: float, seed: int) -> None:
    """The last day's answers arrive one by one through survey links, as customers answer."""
    rng = np.random.default_rng(seed)
    ws = client.app.state.web.ws  # type: ignore[attr-defined]  # the server's: one process opens the store once
    for i in range(30):
        token = ws.surveys.link("delivery", f"live-{seed}-{i}").rsplit("/s/", 1)[1]
        score = 5 if rng.random() < recent_share else 1
        assert client.post(f"/s/{token}", data={"score": str(score)}).status_code == 200


@pytest.mark.slow  # about 4 s each: a live stream through a running server
@pytest.mark.parametrize(("recent_share", "alerts"), [(0.3, 1), (0.9, 0)], ids=["planted", "null-twin"])
def test_a_drop_in_a_live_stream_alerts_within_a_minute(
    tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int], recent_share: float, alerts: int
) -> None:
    box, port = mailbox
    ws = shop(tmp_path, port, "check_seconds = 0.5\n")
    lines = ["customer_id,ts,metric,score,touchpoint"]
    rng = np.random.default_rng(3)
    lines += [f"b{i},{(NOW - timedelta(days=2 + i / 10)).isoformat()},csat,{5 if rng.random() < 0.9 else 2},delivery"
              for i in range(250)]  # fmt: skip
    ws.ingest_feedback([write(tmp_path / "history.csv", "\n".join(lines) + "\n")])
    ws.alerts.add("drop", "csat_drop", webhook=hook.url, emails=["owner@example.com"])
    with TestClient(create_app(ws.root)) as client:
        started = time.monotonic()
        stream(client, ws, recent_share, seed=5)
        while time.monotonic() - started < 60 and len(hook.bodies) < alerts:
            time.sleep(0.2)
        time.sleep(2)  # and nothing more after it: four more checks
    assert (len(hook.bodies), len(box.messages)) == (alerts, alerts)


# -- anomalies and what is at stake ----------------------------------------------------------------------


def events_workspace(tmp_path: Path, spike: int) -> touchlens.Workspace:
    """Eight weeks of 12 delivery texts a day; 12 April has `spike` more."""
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "map.json", json.dumps({**MAP, "touchpoints": [
        {**MAP["touchpoints"][0], "match": {"event": "sms"}}]})))  # fmt: skip
    start = datetime(2025, 3, 3, 8, tzinfo=UTC)
    rows = ["customer_id,ts,event"]
    for day in range(56):
        for k in range(12 + (spike if day == 40 else 0)):
            rows.append(f"c{day}-{k},{(start + timedelta(days=day, minutes=10 * k)).isoformat()},sms")
    ws.ingest_events([write(tmp_path / "e.csv", "\n".join(rows) + "\n")])
    return ws


@pytest.mark.parametrize(("spike", "fired"), [(40, 1), (0, 0)], ids=["planted", "null-twin"])
def test_an_anomaly_rule_fires_on_what_trends_finds_in_its_window(
    tmp_path: Path, hook: Receiver, spike: int, fired: int
) -> None:
    ws = events_workspace(tmp_path, spike)
    found = [a for s in ws.trends("day")["series"] for a in s["anomalies"] if a["period"] >= "2025-04-11"]
    assert len(found) == fired
    ws.alerts.add("odd days", "anomaly", webhook=hook.url)
    result = ws.alerts.check(datetime(2025, 4, 13, 8, tzinfo=UTC))  # the spike is in the last 48 hours
    assert len(result.fired) == fired
    assert [a["message"] for b in hook.bodies for a in b["alerts"]] == [a["summary"] for a in found]


def test_an_at_stake_rule_fires_on_problems_worth_the_threshold(
    tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from touchlens.experience import Insights
    from touchlens.insights.items import Insight, Stake

    ws = shop(tmp_path, 25)
    big = Insight(kind="subpar", subject_type="touchpoint", subject="delivery", title="Delivery texts are poor",
                  at_stake=Stake(120, 80, 160, "renewals"))  # fmt: skip
    small = Insight(kind="subpar", subject_type="touchpoint", subject="checkout", title="Checkout is slow",
                    at_stake=Stake(5, 1, 9, "renewals"))  # fmt: skip
    monkeypatch.setattr(ws, "insights", lambda sections=(), samples=0: Insights({"problems": [big, small]}))
    ws.alerts.add("worth it", "at_stake", threshold=50, webhook=hook.url)
    assert ws.alerts.check().fired == ["worth it: Delivery texts are poor"]
    assert hook.bodies[0]["alerts"][0]["message"] == "Delivery texts are poor: 120 renewals a year at stake."


def test_a_channel_that_failed_is_retried_while_the_one_that_worked_is_not(
    tmp_path: Path, hook: Receiver, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    ws = shop(tmp_path, port)
    ws.alerts.add("volume", "survey_volume", threshold=50, webhook=hook.url, emails=["owner@example.com"])
    down = Controller(Mailbox(), hostname="127.0.0.1", port=_free_port())  # nothing listens on ws's port...
    ws.settings.alerts.smtp_port = down.port  # ...until it starts below
    ws.ingest_feedback([answers(tmp_path, "a.csv", {})])
    assert len(hook.bodies) == 1
    assert ws.alerts.history()[0]["delivery"]["email"].startswith("failed:")
    assert ws.alerts.check().waiting == 2  # still owed to the e-mail channel
    down.start()
    try:
        ws.alerts.check()
        assert len(down.handler.messages) == 1  # the e-mail came
        assert len(hook.bodies) == 1  # and the webhook was not sent twice
        assert {h["delivery"]["email"] for h in ws.alerts.history()} == {"sent"}
        assert ws.alerts.check().sent == 0
    finally:
        down.stop()
    assert box.messages == []


def test_viewers_see_where_a_webhook_goes_but_not_its_secret_path(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    from touchlens.store import users as user_store

    ws = shop(tmp_path, mailbox[1])
    ws.alerts.add("r", "health", webhook="https://hooks.example.com/services/T000/B000/secret")
    engine = ws.meta_engine()
    user_store.add_user(engine, "vi", "a-long-password-1", "viewer")
    user_store.add_user(engine, "ad", "a-long-password-1", "admin")
    viewer = user_store.add_token(engine, "vi", ("read",))
    admin = user_store.add_token(engine, "ad", ("read", "write"))
    with TestClient(create_app(ws.root)) as client:
        seen = client.get("/api/alerts/rules", headers={"Authorization": f"Bearer {viewer}"}).json()
        assert seen[0]["webhook"] == "https://hooks.example.com/…"
        full = client.get("/api/alerts/rules", headers={"Authorization": f"Bearer {admin}"}).json()
        assert full[0]["webhook"].endswith("/secret")
