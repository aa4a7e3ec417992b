"""The subscription demo business carries what its truths say: checked on the generated files themselves.

Renewal, loops and CSAT shares are recomputed here from events.jsonl and feedback.csv with plain Python (not
through touchlens's analyses), and compared with truths.json, with the chances the generator was given, and in
the null twin with each other (scipy's chi-squared test of independence).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from tests.business import business
from tests.conftest import EXAMPLES, Result
from touchlens.demo_subscription import write_subscription_files
from touchlens.demo_workspace import build_demo
from touchlens.errors import BadOption

END = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
TEMPLATES = {"welcome": "welcome_email", "brew_tips": "brew_tips_email", "renewal_reminder": "renewal_reminder",
             "payment_failed": "payment_failed_email"}  # fmt: skip
EVENTS = {"ad_clicked": "social_ad", "subscription_started": "signup_checkout", "box_delivered": "box_delivered",
          "taste_profile_completed": "taste_profile", "webinar_attended": "brew_guide_webinar",
          "chat_started": "support_chat", "subscription_renewed": "renewal_payment"}  # fmt: skip
PAGES = {"plans": "plans_page", "coffees": "coffee_page", "help": "help_centre"}


def touchpoint(e: dict[str, Any]) -> str | None:
    """The map's rules, written out by hand: an independent reading of which touchpoint an event is."""
    props, name = e["properties"], e["event"]
    if name == "email_sent":
        template = props.get("template", "")
        return "winback_email" if template.startswith("winback_") else TEMPLATES.get(template)
    if name == "page_viewed":
        return PAGES.get(props.get("page_type"))
    if name == "sms_sent":
        return "box_shipped_sms" if props.get("template") == "box_shipped" else None
    if name == "call_completed":
        return "onboarding_call" if props.get("reason") == "onboarding" else None
    return EVENTS.get(name)


@dataclass
class Segment:
    """A customer's touches from one renewal (or the start of the data) to the next."""

    touches: list[tuple[datetime, str]] = field(default_factory=list)
    renewed: bool = False  # it ends in a renewal
    renewed_before: bool = False  # it follows a renewal in the data

    def has(self, key: str) -> bool:
        return any(t == key for _, t in self.touches)

    def counts(self) -> bool:
        """Starts inside the data and its reminder leaves ten days to see the outcome (as truths.json says)."""
        starts = self.renewed_before or self.has("signup_checkout")
        reminders = [ts for ts, t in self.touches if t == "renewal_reminder"]
        return starts and bool(reminders) and reminders[-1] <= END - 10 * DAY

    def looped(self) -> bool:
        """Help centre → chat → help centre, or chat → help → chat, in this cycle."""
        helps = [k for _, k in self.touches if k in ("help_centre", "support_chat")]
        return any(a == c != b for a, b, c in zip(helps, helps[1:], helps[2:], strict=False))


@dataclass
class Data:
    truths: dict[str, Any]
    journeys: dict[str, list[tuple[datetime, str]]]
    segments: list[Segment]
    feedback: list[dict[str, str]]
    customers: int

    def renewal(self, has: Callable[[Segment], bool]) -> tuple[int, int]:
        """(renewed, cycles) over the cycles that count and satisfy `has`."""
        chosen = [s for s in self.segments if s.counts() and has(s)]
        return sum(s.renewed for s in chosen), len(chosen)

    def csat(self, keys: set[str]) -> tuple[int, int]:
        """(answers of 4 or 5, answers) on the touchpoints `keys`."""
        scores = [int(r["score"]) for r in self.feedback if r["metric"] == "csat" and r["touchpoint"] in keys]
        return sum(s >= 4 for s in scores), len(scores)

    def reached(self, key: str) -> int:
        return sum(any(t == key for _, t in touches) for touches in self.journeys.values())

    def loopers(self) -> int:
        """Customers who went help centre → chat → help centre (or chat → help → chat) within a day."""
        found = 0
        for touches in self.journeys.values():
            helps = [(ts, t) for ts, t in touches if t in ("help_centre", "support_chat")]
            found += any(
                a[1] == c[1] != b[1] and c[0] - a[0] <= DAY
                for a, b, c in zip(helps, helps[1:], helps[2:], strict=False)
            )
        return found


def read(folder: Path, planted: bool) -> Data:
    files = write_subscription_files(folder, customers=3000, seed=7, planted=planted)
    journeys: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for line in files.events.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        key = touchpoint(e)
        assert key is not None, f"unmapped event {e}"
        journeys[e["userId"]].append((datetime.fromisoformat(e["timestamp"]), key))
    segments = [s for touches in journeys.values() for s in cut(touches)]
    with files.feedback.open(encoding="utf-8") as f:
        feedback = list(csv.DictReader(f))
    truths = json.loads(files.truths.read_text(encoding="utf-8"))
    return Data(truths, journeys, segments, feedback, truths["customers"])


def cut(touches: list[tuple[datetime, str]]) -> list[Segment]:
    """Segments ending at each renewal, as touchlens cuts periods between conversions."""
    out, current = [], Segment()
    for ts, key in sorted(touches):
        if key == "renewal_payment":
            current.renewed = True
            out.append(current)
            current = Segment(renewed_before=True)
        else:
            current.touches.append((ts, key))
    return [*out, current] if current.touches else out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return read(tmp_path_factory.mktemp("planted"), True)


@pytest.fixture(scope="module")
def null(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return read(tmp_path_factory.mktemp("null"), False)


def truth(data: Data, key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in data.truths["truths"] if t["id"] == key)
    return found


def near(hits: int, n: int, p: float, sds: float = 4.0) -> bool:
    """The observed share lies within `sds` binomial standard errors of `p`."""
    return abs(hits / n - p) <= sds * math.sqrt(p * (1 - p) / n)


def independent(a: tuple[int, int], b: tuple[int, int]) -> float:
    """The p-value of scipy's chi-squared test that two shares (hits, n) are the same."""
    table = [[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]]
    return float(stats.chi2_contingency(table).pvalue)


def ordinary(s: Segment) -> bool:
    """A cycle with none of the planted experiences: no failed payment, no loop, no live class."""
    return not (s.has("payment_failed_email") or s.looped() or s.has("brew_guide_webinar"))


def test_the_map_passes_map_check_with_no_errors(cli: Callable[..., Result]) -> None:
    result = cli("map", "check", EXAMPLES / "subscription_box.yaml")
    assert result.code == 0, result.err
    assert "valid: 17 touchpoints" in result.out


def test_every_generated_event_maps_to_a_touchpoint_when_ingested(tmp_path: Path) -> None:
    ws, truths = business(tmp_path, customers=300)
    assert truths["unmapped_events"] == []
    with ws.events(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE touchpoint IS NULL").fetchone() == (0,)
        mapped = {r[0] for r in con.execute("SELECT DISTINCT touchpoint FROM events").fetchall()}
        assert con.execute("SELECT count(*) FROM customers WHERE persona IS NULL").fetchone() == (0,)
    assert len(mapped) == 17  # every touchpoint of the map is met
    assert truths["planted"] is True
    assert truths["customers"] == 300


@pytest.mark.slow
def test_billing_problem_halves_renewal_and_scores_eleven_percent(planted: Data) -> None:
    t = truth(planted, "billing_problem")
    hits, n = planted.renewal(lambda s: s.has("payment_failed_email"))
    rest = planted.renewal(lambda s: not s.has("payment_failed_email"))
    assert (round(hits / n, 4), round(rest[0] / rest[1], 4)) == (t["rate_with"], t["rate_without"])
    assert near(hits, n, 0.31)
    assert near(*planted.renewal(ordinary), 0.72)
    assert 0.4 < (hits / n) / (rest[0] / rest[1]) < 0.55  # roughly halves
    assert near(*planted.csat({"payment_failed_email"}), 0.11)
    assert (
        round(planted.csat({"payment_failed_email"})[0] / planted.csat({"payment_failed_email"})[1], 4)
        == (t["csat_with"])
    )
    reached = planted.reached("payment_failed_email")
    assert reached == t["customers_reached"]
    assert 0.2 <= reached / planted.customers <= 0.25


def test_other_touchpoints_score_eighty_percent_and_the_welcome_call_fifteen_points_less(planted: Data) -> None:
    others = {"welcome_email", "taste_profile", "box_delivered", "brew_guide_webinar", "help_centre", "support_chat"}
    assert near(*planted.csat(others), 0.80)
    call, stage = planted.csat({"onboarding_call"}), planted.csat({"welcome_email", "taste_profile"})
    assert near(*call, 0.65)
    assert 0.08 < stage[0] / stage[1] - call[0] / call[1] < 0.25
    t = truth(planted, "weak_onboarding_call")
    assert round(call[0] / call[1], 4) == t["csat_with"]
    assert round(stage[0] / stage[1], 4) == t["csat_elsewhere"]
    for key in others | {"onboarding_call", "payment_failed_email"}:
        assert 60 <= planted.csat({key})[1] <= 320, key


def test_the_welcome_call_has_no_effect_on_renewal(planted: Data) -> None:
    firsts = [s for s in planted.segments if s.counts() and s.has("signup_checkout")]
    called = [s.renewed for s in firsts if s.has("onboarding_call")]
    not_called = [s.renewed for s in firsts if not s.has("onboarding_call")]
    p = independent((sum(called), len(called)), (sum(not_called), len(not_called)))
    assert p > 0.001


def test_support_loop_is_planted_for_a_known_share_with_lower_renewal(planted: Data) -> None:
    t = truth(planted, "support_loop")
    assert planted.loopers() == t["customers_reached"]
    assert 0.05 < t["customers_reached"] / planted.customers < 0.2
    looped = planted.renewal(lambda s: s.looped() and not s.has("payment_failed_email"))
    assert near(*looped, 0.55)
    assert t["rate_with"] < t["rate_without"] - 0.1


def test_live_classes_raise_renewal_about_one_and_a_third_times(planted: Data) -> None:
    t = truth(planted, "helpful_touchpoint")
    hits, n = planted.renewal(lambda s: s.has("brew_guide_webinar"))
    rest = planted.renewal(lambda s: not s.has("brew_guide_webinar"))
    assert (round(hits / n, 4), round(rest[0] / rest[1], 4)) == (t["rate_with"], t["rate_without"])
    pure = planted.renewal(lambda s: s.has("brew_guide_webinar") and not (s.has("payment_failed_email") or s.looped()))
    assert near(*pure, 0.98, sds=5)
    assert 1.2 < (hits / n) / (rest[0] / rest[1]) < 1.5
    assert 0.15 <= planted.reached("brew_guide_webinar") / planted.customers <= 0.25


def test_billing_problem_loses_the_most_renewals(planted: Data) -> None:
    lost = {t["id"]: t.get("renewals_lost") or 0 for t in planted.truths["truths"]}
    assert max(lost, key=lambda k: lost[k]) == "billing_problem"


@pytest.mark.slow
@pytest.mark.parametrize("key", ["payment_failed_email", "brew_guide_webinar", "support_chat"])
def test_in_the_null_twin_renewal_is_the_same_with_and_without_each_touchpoint(null: Data, key: str) -> None:
    with_ = null.renewal(lambda s: s.has(key))
    without = null.renewal(lambda s: not s.has(key))
    assert independent(with_, without) > 0.001
    assert truth(null, "billing_problem")["rate_with"] is None


def test_in_the_null_twin_every_csat_answer_comes_from_one_distribution(null: Data) -> None:
    keys = sorted({r["touchpoint"] for r in null.feedback if r["metric"] == "csat"})
    table = [[null.csat({k})[0], null.csat({k})[1] - null.csat({k})[0]] for k in keys]
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert near(*null.csat(set(keys)), 0.80)


def test_the_null_twin_has_no_loop_and_the_same_reach(planted: Data, null: Data) -> None:
    assert null.loopers() == 0
    assert truth(null, "support_loop")["customers_reached"] == 0
    for key in ("payment_failed_email", "support_chat", "onboarding_call", "brew_guide_webinar"):
        assert abs(null.reached(key) / planted.reached(key) - 1) < 0.15, key
    assert [t["id"] for t in null.truths["truths"]] == [t["id"] for t in planted.truths["truths"]]
    assert all(t["planted"] is False for t in null.truths["truths"])


@pytest.mark.parametrize("twin", ["planted", "null"])
def test_both_twins_have_a_christmas_season_and_steady_survey_volume(twin: str, request: pytest.FixtureRequest) -> None:
    data: Data = request.getfixturevalue(twin)
    signups = Counter(ts.month for touches in data.journeys.values() for ts, k in touches if k == "signup_checkout")
    usual = sum(signups[m] for m in range(1, 11)) / 10
    assert signups[11] > 1.6 * usual
    assert signups[12] > 1.8 * usual
    months = Counter(r["ts"][:7] for r in data.feedback)
    for month in range(1, 13):  # each month answers about as often as the same month a year before or after
        one, two = (months[f"{year}-{month:02d}"] for year in ((2025, 2026) if month < 11 else (2024, 2025)))
        assert abs(one - two) <= 4 * math.sqrt(one + two), month


def test_both_twins_carry_the_structural_artefacts(planted: Data, null: Data) -> None:
    for data in (planted, null):
        assert {a["id"] for a in data.truths["artefacts"]} >= {"renewal_reminder_last", "browsing_plans_and_coffees"}
        lapsed = [s for s in data.segments if s.counts() and not s.renewed]
        before = [[k for ts, k in s.touches if k != "winback_email"][-1] for s in lapsed]
        assert Counter(before).most_common(1)[0][0] in ("renewal_reminder", "payment_failed_email")
        assert all(k in ("renewal_reminder", "payment_failed_email") for k in before)
        browsing = sum(_bounces(t, "plans_page", "coffee_page") for t in data.journeys.values())
        assert browsing > data.customers  # many back-and-forths a customer, on average


def _bounces(touches: list[tuple[datetime, str]], a: str, b: str) -> int:
    """How often the customer went a → b → a or b → a → b."""
    keys = [k for _, k in touches]
    return sum(
        ({x, z} == {a} and y == b) or ({x, z} == {b} and y == a)
        for x, y, z in zip(keys, keys[1:], keys[2:], strict=False)
    )


def test_the_same_seed_writes_identical_files(tmp_path: Path) -> None:
    one = write_subscription_files(tmp_path / "one", customers=300, seed=11)
    two = write_subscription_files(tmp_path / "two", customers=300, seed=11)
    other = write_subscription_files(tmp_path / "three", customers=300, seed=12)
    for name in ("events", "feedback", "customers", "truths", "map"):
        assert getattr(one, name).read_bytes() == getattr(two, name).read_bytes(), name
    assert one.events.read_bytes() != other.events.read_bytes()


def test_demo_command_builds_the_subscription_business(cli: Callable[..., Result], tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    args = ("-w", ws, "demo", "--no-serve", "--business", "subscription", "--customers", "300", "--json")
    result = cli(*args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    lines = Path(report["files"]["events"]).read_text(encoding="utf-8").splitlines()
    assert report["events"]["accepted"] == len(lines)
    assert report["events"]["unmapped"] == 0
    truths = json.loads((ws / "truths.json").read_text(encoding="utf-8"))
    assert truths["business"] == "subscription"
    assert truths["customers"] == 300
    assert json.loads(cli("-w", ws, "map", "export", "--format", "json").out)["name"] == "Crate & Kettle"
    assert cli("-w", ws, "demo", "--no-serve", "--business", "bakery").code == 2


def test_build_demo_names_the_businesses_it_knows(tmp_path: Path) -> None:
    with pytest.raises(BadOption, match="businesses are: retail, subscription"):
        build_demo(tmp_path / "x", customers=10, business="bakery")
