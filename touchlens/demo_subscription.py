"""Demo data for a second business, Crate & Kettle (a monthly coffee subscription), with problems of known size.

`write_subscription_files` simulates two years of subscribers against `examples/subscription_box.yaml`: they
discover, sign up, get a box a month and renew (or let it lapse) every month. With `planted=True` four effects
are planted, each with its true size in `truths.json`; with `planted=False` the same world runs with every effect
off, so a judgment that reports anything there is wrong. Structural artefacts that a judgment must not report
(a reminder before every renewal, browsing between two pages, win-back e-mails, seasonal sign-ups) are in both.

**Renewal** is counted per renewal opportunity, a cycle: from the sign-up or a renewal to the next billing date;
it renews when `subscription_renewed` follows. `RENEWAL` says which cycles count.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchlens.demo import DAY, END, HOUR, START, DemoFiles, _Event, _iso, _write_csv, _write_events
from touchlens.errors import WorkspaceError

MAP_FILE = Path(__file__).resolve().parent.parent / "examples" / "subscription_box.yaml"
MONTH = 30 * DAY
DECIDED = END - 10 * DAY  # a cycle whose reminder is later than this has no known outcome yet
RENEW = 0.72  # the chance an ordinary cycle renews
FAIL = 0.08  # the chance a cycle's payment fails (both twins)
SUPPORT = 0.1  # the chance a cycle has a support need
LOOPY = 0.35  # support needs that bounce between help centre and chat when planted (a plain switch otherwise)
CHAT_AFTER_HELP = 0.3  # ordinary support needs that go on from the help centre to a chat
FANS, WEBINAR = 0.33, 0.25  # customers who opt in to live classes; the chance a fan joins one in a cycle
CALL, PROFILE = 0.4, 0.55  # new customers who get the welcome call; who fill in the taste profile
RENEWAL = (
    "Renewal is counted per renewal opportunity (a cycle: from the sign-up or a renewal to the next billing date; "
    "it renews when subscription_renewed follows). A cycle counts when it starts inside the data (its "
    "subscription_started or subscription_renewed is there) and its renewal reminder comes at least ten days "
    "before the data ends, so its outcome is known: the cut of touchlens's periods between conversions."
)
EXISTING = 0.12  # customers already subscribed when the data begins
SEASON = {11: 2.2, 12: 2.6}  # sign-ups by month, relative to the other months (Christmas gifting)
GOOD = (3, 5, 12, 35, 45)  # CSAT 1..5 weights everywhere unplanted: 80% answer 4 or 5
NPS = (2, 1, 2, 3, 3, 6, 8, 15, 20, 20, 20)
SURVEYS = {  # the chance each touch draws an answer, by metric (about 60-300 answers a touchpoint at 3,000)
    "welcome_email": {"csat": 0.04},
    "taste_profile": {"csat": 0.08},
    "onboarding_call": {"csat": 0.2},
    "box_delivered": {"csat": 0.02, "nps": 0.01},
    "brew_guide_webinar": {"csat": 0.25},
    "help_centre": {"csat": 0.08},
    "support_chat": {"csat": 0.2},
    "payment_failed_email": {"csat": 0.25},
}
WORDS = {
    "pos": ["{t} was great.", "Really happy with {t}.", "{t}: quick and clear."],
    "neu": ["{t} was fine.", "{t} did the job."],
    "neg": ["Disappointed with {t}.", "{t} wasted my time.", "{t} did not help."],
}
DETAILS = {
    ("payment_failed_email", "neg"): ["It doesn't say why the payment failed.", "The card update link is broken."],
    ("onboarding_call", "neg"): ["It felt like a sales pitch.", "Far too long; I just wanted my coffee."],
    ("support_chat", "neg"): ["Sent me back to the help centre again."],
    ("brew_guide_webinar", "pos"): ["Finally my pour-over tastes like the notes say."],
}
FEEDBACK_COLUMNS = ["response_id", "customer_id", "ts", "metric", "score", "touchpoint", "comment"]
CUSTOMER_COLUMNS = ["customer_id", "segment", "plan", "box_size", "country", "signup_ts", "acquisition_channel", "gift"]


@dataclass(frozen=True)
class BusinessFiles(DemoFiles):
    """The demo files plus the map they are written against (a copy of the example map, beside them)."""

    map: Path


@dataclass(frozen=True)
class _Effects:
    """How strongly each truth is planted; the null twin is the same world with each effect off."""

    failed_csat: tuple[int, ...]  # CSAT weights for the payment-failed e-mail
    call_csat: tuple[int, ...]  # CSAT weights for the welcome call
    renew_failed: float  # renewal chance of a cycle whose payment failed
    renew_loop: float  # ... of a cycle with a help-centre / chat loop
    renew_webinar: float  # ... of a cycle with a live brew class
    loops: bool  # whether loopy support needs bounce back and forth


EFFECTS = {
    True: _Effects((42, 30, 17, 7, 4), (6, 10, 19, 35, 30), 0.31, 0.55, 0.98, True),
    False: _Effects(GOOD, GOOD, RENEW, RENEW, RENEW, False),
}


@dataclass
class _Cycle:
    """One renewal opportunity as the simulation saw it: what happened in it and whether it renewed."""

    cid: str
    start: float  # the sign-up or renewal it follows
    reminder: float
    first: bool = False
    call: bool = False
    failed: bool = False
    loop: bool = False
    webinar: bool = False
    renewed: bool = False


def _signup(rng: random.Random) -> float:
    """A sign-up time: some customers predate the data; the rest cluster in November and December."""
    if rng.random() < EXISTING:
        return START - rng.uniform(1, 120) * DAY
    while True:  # rejection sampling against the seasonal weight
        t = rng.uniform(START, END)
        month = datetime.fromtimestamp(t, UTC).month
        if rng.random() * max(SEASON.values()) < SEASON.get(month, 1.0):
            return t


def _attrs(rng: random.Random, start: float) -> dict[str, str]:
    gift = rng.random() < (0.35 if datetime.fromtimestamp(start, UTC).month in SEASON else 0.1)
    segment = "gift_recipient" if gift else rng.choices(["home_brewer", "espresso_devotee"], [65, 35])[0]
    plan = "espresso" if segment == "espresso_devotee" else rng.choice(["filter", "filter", "mixed"])
    return {"segment": segment, "plan": plan, "box_size": rng.choice(["250g", "500g"]),
            "country": rng.choices(["GB", "IE"], [92, 8])[0], "signup_ts": _iso(start),
            "acquisition_channel": "gift" if gift else rng.choice(["instagram", "search", "referral"]),
            "gift": "yes" if gift else "no"}  # fmt: skip


def _daytime(rng: random.Random, t: float, lo: float, hi: float) -> float:
    """A moment between hours lo and hi on t's day, or the next day when that moment has passed."""
    at = t - t % DAY + rng.uniform(lo, hi) * HOUR
    return at if at >= t else at + DAY


def _mood(metric: str, score: int) -> str:
    low, high = {"csat": (2, 4), "nps": (6, 9)}[metric]
    return "neg" if score <= low else "pos" if score >= high else "neu"


class _Sim:
    """Simulates one customer at a time (each with its own random stream), appending to shared lists."""

    def __init__(self, seed: int, fx: _Effects) -> None:
        self.seed, self.fx = seed, fx
        self.rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        self.events: list[_Event] = []
        self.feedback: list[list[str]] = []
        self.cycles: list[_Cycle] = []
        self.cid = ""
        self.cycle = _Cycle("", 0.0, 0.0)
        self.loops = self.customers = 0
        self.loopers: set[str] = set()  # customers with at least one help-centre / chat loop

    def u(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def emit(self, t: float, event: str, channel: str, **props: Any) -> float:
        """Record an event when it falls inside the data; returns its time either way."""
        if START <= t <= END:
            self.events.append(_Event(t, self.cid, False, event, channel, props, None))
        return t

    def email(self, t: float, template: str) -> float:
        return self.emit(t, "email_sent", "email", template=template)

    def page(self, t: float, page_type: str) -> float:
        return self.emit(t, "page_viewed", "website", page_type=page_type, path=f"/{page_type}")

    def survey(self, t: float, touchpoint: str) -> None:
        """Maybe answers to the post-interaction survey a little while after the touch at `t`."""
        for metric, chance in SURVEYS[touchpoint].items():
            if self.rng.random() >= chance or not START <= (ts := t + self.u(0.3, 30) * HOUR) <= END:
                continue
            score = self.score(metric, touchpoint)
            mood = _mood(metric, score)
            comment = self.comment(touchpoint, mood) if self.rng.random() < 0.5 else ""
            self.feedback.append(["", self.cid, _iso(ts), metric, str(score), touchpoint, comment])

    def score(self, metric: str, touchpoint: str) -> int:
        if metric == "nps":
            return self.rng.choices(range(11), NPS)[0]
        weights = {"payment_failed_email": self.fx.failed_csat, "onboarding_call": self.fx.call_csat}
        return self.rng.choices(range(1, 6), weights.get(touchpoint, GOOD))[0]

    def comment(self, touchpoint: str, mood: str) -> str:
        name = touchpoint.replace("_", " ")
        parts = [self.rng.choice(WORDS[mood]).format(t=f"the {name}")]
        details = DETAILS.get((touchpoint, mood), [])
        if details and self.rng.random() < 0.7:
            parts.append(self.rng.choice(details))
        text = " ".join(parts)
        return text[0].upper() + text[1:]

    def life(self, number: int) -> dict[str, str]:
        """One customer from first visit to lapse (or the end of the data); returns their attributes."""
        self.rng.seed(self.seed * 1_000_003 + number)  # each customer its own stream: twins stay alike
        self.cid, self.customers = f"s{number:05d}", self.customers + 1
        start = _signup(self.rng)
        attrs = {"customer_id": self.cid, **_attrs(self.rng, start)}
        fan = self.rng.random() < FANS
        t = self.join(start, attrs["segment"] == "gift_recipient")
        billing = start + MONTH
        while (renewed := self.month(t, billing, fan, first=t == start)) is not None:
            t, billing = renewed, billing + MONTH
        if billing <= END:  # it lapsed inside the data
            self.winback(billing)
        return attrs

    def join(self, start: float, gift: bool) -> float:
        """Discovery visits (browsing plans and coffees back and forth), the sign-up and getting started."""
        if not gift:
            t = start - self.u(0, 14) * DAY
            for _ in range(self.rng.randint(1, 3)):
                t = self.browse(_daytime(self.rng, t, 7, 23))
                t += self.u(0.5, 4) * DAY
        t = self.emit(start, "subscription_started", "website", plan="monthly")
        self.survey(self.email(t + self.u(60, 600), "welcome"), "welcome_email")
        if self.rng.random() < PROFILE:
            self.survey(self.emit(t + self.u(0.2, 48) * HOUR, "taste_profile_completed", "website"), "taste_profile")
        return t

    def browse(self, t: float) -> float:
        if self.rng.random() < 0.3:
            t = self.emit(t, "ad_clicked", "social", ad_id=f"ad{self.rng.randint(1, 30)}")
        page = self.rng.choice(["plans", "coffees"])
        for _ in range(self.rng.randint(2, 7)):
            t = self.page(t + self.u(20, 200), page)
            if self.rng.random() < 0.7:  # shoppers compare: back and forth between the two pages
                page = "coffees" if page == "plans" else "plans"
        return t

    def month(self, t: float, billing: float, fan: bool, first: bool) -> float | None:
        """One cycle: the box, brew tips, maybe a class or a support need, the reminder and the renewal."""
        cycle = self.cycle = _Cycle(self.cid, t, billing - 3 * DAY, first=first)
        if first and self.rng.random() < CALL:
            cycle.call = True
            call = self.emit(_daytime(self.rng, t + self.u(1, 4) * DAY, 9, 18), "call_completed", "phone",
                             reason="onboarding", duration_s=self.rng.randint(240, 1500))  # fmt: skip
            self.survey(call, "onboarding_call")
        self.box(t)
        self.email(_daytime(self.rng, billing - self.u(16, 20) * DAY, 7, 9), "brew_tips")
        if fan and self.rng.random() < WEBINAR:
            cycle.webinar = True
            self.survey(self.emit(_daytime(self.rng, billing - self.u(6, 21) * DAY, 19, 20), "webinar_attended",
                                  "webinar", topic="brewing this month's beans"), "brew_guide_webinar")  # fmt: skip
        if self.rng.random() < SUPPORT:
            self.support(_daytime(self.rng, billing - self.u(5, 21) * DAY, 8, 20))
        self.email(cycle.reminder, "renewal_reminder")
        return self.renew(billing, cycle)

    def box(self, t: float) -> None:
        shipped = _daytime(self.rng, t + self.u(0.5, 2) * DAY, 8, 11)
        self.emit(shipped, "sms_sent", "sms", template="box_shipped")
        delivered = self.emit(_daytime(self.rng, shipped + self.u(0.6, 3) * DAY, 9, 17), "box_delivered", "post")
        self.survey(delivered, "box_delivered")

    def support(self, t: float) -> None:
        """A support need: the help centre, maybe a chat; planted, some customers bounce back and forth."""
        loopy = self.rng.random() < LOOPY
        first = t = self.page(t + self.u(30, 300), "help")
        if self.rng.random() < 0.5:
            t = self.page(t + self.u(30, 300), "help")
        self.survey(t, "help_centre")
        if loopy or self.rng.random() < CHAT_AFTER_HELP:
            t = self.emit(t + self.u(5, 60) * 60, "chat_started", "chat", wait_s=self.rng.randint(10, 400))
            self.survey(t, "support_chat")
        if loopy and self.fx.loops:
            self.cycle.loop = True
            t = self.page(t + self.u(10, 90) * 60, "help")
            if first >= START and t <= END:  # counted where the data shows it
                self.loops += 1
                self.loopers.add(self.cid)
            t = self.emit(t + self.u(10, 120) * 60, "chat_started", "chat", wait_s=self.rng.randint(10, 400))
            if self.rng.random() < 0.5:
                self.page(t + self.u(10, 90) * 60, "help")

    def renew(self, billing: float, cycle: _Cycle) -> float | None:
        """The charge on the billing date: it may fail; the cycle renews by its chance (None: it lapses)."""
        charge = billing + self.u(6, 8) * HOUR
        cycle.failed = self.rng.random() < FAIL
        if cycle.failed:
            self.survey(self.email(charge + self.u(1, 30) * 60, "payment_failed"), "payment_failed_email")
        cycle.renewed = self.rng.random() < self.chance(cycle) or billing < START  # customers here at the start
        if cycle.start >= START and cycle.reminder <= DECIDED:
            self.cycles.append(cycle)
        if not cycle.renewed or billing > END:  # lapsed, or the data ends during this cycle
            return None
        at = charge + (self.u(0.5, 3) * DAY if cycle.failed else self.u(0, 14) * HOUR)
        return self.emit(at, "subscription_renewed", "website", plan="monthly", amount=14.0)

    def chance(self, cycle: _Cycle) -> float:
        """The renewal chance: a failed payment outweighs a loop, which outweighs a class."""
        if cycle.failed:
            return self.fx.renew_failed
        if cycle.loop:
            return self.fx.renew_loop
        return self.fx.renew_webinar if cycle.webinar else RENEW

    def winback(self, lapsed: float) -> None:
        """Win-back e-mails 30 and 45 days after the lapse: the company writes, the customer does nothing."""
        self.email(_daytime(self.rng, lapsed + 30 * DAY, 9, 11), "winback_offer")
        self.email(_daytime(self.rng, lapsed + 45 * DAY, 9, 11), "winback_last_call")


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _renewal(cycles: list[_Cycle], has: str, size: str | None = "renewals_lost") -> dict[str, Any]:
    """Renewal of the cycles with and without a flag, how many there were, and renewals lost (or gained) with
    it: the cycles with it times the difference in rates."""
    with_ = [c.renewed for c in cycles if getattr(c, has)]
    without = [c.renewed for c in cycles if not getattr(c, has)]
    rw, ro = _share(with_), _share(without)
    found = {"outcome": "conversion", "outcome_label": "renewal", "rate_with": rw, "rate_without": ro,
             "cycles_with": len(with_), "cycles_without": len(without)}  # fmt: skip
    if size is not None:
        gap = ro - rw if rw is not None and ro is not None else None
        found[size] = None if gap is None else round(len(with_) * (gap if size == "renewals_lost" else -gap))
    return found


def _csat(rows: list[list[str]], keys: set[str]) -> float | None:
    """The share of CSAT answers of 4 or 5 on the touchpoints `keys`."""
    return _share([int(r[4]) >= 4 for r in rows if r[3] == "csat" and r[5] in keys])


def _reached(events: list[_Event], event: str, **props: str) -> int:
    return len({e.who for e in events if e.event == event and all(e.props.get(k) == v for k, v in props.items())})


def _truths(sim: _Sim, planted: bool) -> list[dict[str, Any]]:
    """What was planted, with its size measured on the generated data (design chances alongside)."""
    fx, cycles, fb = EFFECTS[planted], sim.cycles, sim.feedback
    others = set(SURVEYS) - {"payment_failed_email", "onboarding_call"}
    firsts = [c for c in cycles if c.first]
    return [
        {"id": "billing_problem", "kind": "subpar", "kinds": ["subpar", "outcome_driver"],
         "touchpoints": ["payment_failed_email"], "stage": "billing", "metric": "csat",
         "csat_with": _csat(fb, {"payment_failed_email"}), "csat_elsewhere": _csat(fb, others),
         **_renewal(cycles, "failed"), "design": {"renewal_with": fx.renew_failed, "renewal_without": RENEW},
         "customers_reached": _reached(sim.events, "email_sent", template="payment_failed"),
         "description": "The payment-failed e-mail scores far below every other touchpoint, and cycles in which "
                        "a payment fails renew about half as often: the largest planted problem."},
        {"id": "support_loop", "kind": "loop", "touchpoints": ["help_centre", "support_chat"], "stage": "get_help",
         "cycle": ["help_centre", "support_chat", "help_centre"], **_renewal(cycles, "loop"),
         "design": {"renewal_with": fx.renew_loop, "renewal_without": RENEW}, "loops": sim.loops,
         "customers_reached": len(sim.loopers), "share_of_customers": round(len(sim.loopers) / sim.customers, 4),
         "description": "Customers with a problem bounce between the help centre and support chat within a "
                        "day, and those cycles renew less often."},
        {"id": "weak_onboarding_call", "kind": "subpar", "touchpoints": ["onboarding_call"], "stage": "onboard",
         "metric": "csat", "csat_with": _csat(fb, {"onboarding_call"}),
         "csat_elsewhere": _csat(fb, {"welcome_email", "taste_profile"}), **_renewal(firsts, "call", None),
         "outcome_effect": False, "customers_reached": _reached(sim.events, "call_completed", reason="onboarding"),
         "description": "The welcome call scores about 15 points below the rest of getting started; it does "
                        "not change renewal."},
        {"id": "helpful_touchpoint", "kind": "strength", "touchpoints": ["brew_guide_webinar"], "stage": "use",
         **_renewal(cycles, "webinar", "renewals_gained"),
         "design": {"renewal_with": fx.renew_webinar, "renewal_without": RENEW},
         "customers_reached": _reached(sim.events, "webinar_attended"),
         "description": "Cycles in which the subscriber joins a live brew class renew far more often."},
    ]  # fmt: skip


SIZES = ("csat_with", "csat_elsewhere", "rate_with", "rate_without", "renewals_lost", "renewals_gained", "design")
ARTEFACTS = [
    {"id": "renewal_reminder_last", "kind": "dead_end", "touchpoints": ["renewal_reminder"],
     "description": "Sent three days before every renewal, so it is the last thing a lapsing subscriber "
                    "receives (unless a payment then fails; only win-back e-mails come later): a dead end by "
                    "construction."},
    {"id": "browsing_plans_and_coffees", "kind": "loop", "touchpoints": ["plans_page", "coffee_page"],
     "description": "Shoppers compare the plans page and this month's coffees, back and forth, before signing "
                    "up: ordinary browsing within one stage, not a loop to fix."},
    {"id": "winback_company_sent", "kind": "company_sent", "touchpoints": ["winback_email"],
     "description": "Win-back e-mails go out 30 and 45 days after a lapse, to customers who do nothing: "
                    "company-sent, never customer activity, and no effect on churn."},
    {"id": "help_then_chat", "kind": "switch", "touchpoints": ["help_centre", "support_chat"],
     "description": "Some customers read the help centre and then chat, at the same rate in both twins and "
                    "with no effect on renewal: ordinary support, not a planted problem."},
    {"id": "monthly_cadence", "kind": "silent_period", "touchpoints": ["renewal_reminder", "renewal_payment",
     "box_delivered", "brew_tips_email"],
     "description": "The designed monthly rhythm leaves quiet days: the reminder comes three days before the "
                    "renewal, and brew tips about a week after the box. Waits by design, not silences to fix."},
    {"id": "welcome_call_timing", "kind": "switch", "touchpoints": ["onboarding_call"],
     "description": "The company makes the welcome call in the first days, so it often follows the dispatch "
                    "text or the taste profile within a day: a proactive call, not a customer turning to a person."},
    {"id": "seasonal_signups", "kind": "season", "touchpoints": ["signup_checkout", "welcome_email"],
     "description": "More sign-ups in November and December (Christmas gifting) in both years and both twins; "
                    "survey volume follows the subscriber count, with no true anomaly."},
]  # fmt: skip


def _unplanted(truth: dict[str, Any]) -> dict[str, Any]:
    """The null twin's entry: the same id and touchpoints, every size null."""
    named = ", ".join(truth["touchpoints"])
    sizes = {k: None for k in SIZES if k in truth}
    text = f"Not planted: {named} is reached as often, with ordinary CSAT and no effect on renewal."
    return {**truth, **sizes, "outcome_effect": False, "description": text}


def write_subscription_files(folder: Path, customers: int = 3000, seed: int = 7, planted: bool = True) -> BusinessFiles:
    """Write Crate & Kettle's events, feedback, customers, truths and map into `folder`."""
    if not MAP_FILE.is_file():
        raise WorkspaceError(f"the example map is missing: {MAP_FILE} (run from a source checkout)")
    folder.mkdir(parents=True, exist_ok=True)
    names = ("events.jsonl", "feedback.csv", "customers.csv", "truths.json", "subscription_box.yaml")
    files = BusinessFiles(*(folder / name for name in names))
    shutil.copyfile(MAP_FILE, files.map)
    sim = _Sim(seed, EFFECTS[planted])
    people = [sim.life(number) for number in range(1, customers + 1)]
    sim.rng.seed(seed)
    _write_events(files.events, sim.events, sim.rng)
    sim.feedback.sort(key=lambda row: (row[2], row[1]))
    for number, row in enumerate(sim.feedback, 1):
        row[0] = f"r{number:06d}"
    _write_csv(files.feedback, FEEDBACK_COLUMNS, sim.feedback)
    _write_csv(files.customers, CUSTOMER_COLUMNS, [list(p.values()) for p in people])
    truths = [{**t, "planted": True} if planted else {**_unplanted(t), "planted": False} for t in _truths(sim, planted)]
    doc = {"seed": seed, "customers": customers, "planted": planted, "business": "subscription",
           "renewal": RENEWAL,
           "truths": truths, "artefacts": ARTEFACTS, "unmapped_events": []}  # fmt: skip
    files.truths.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return files
