"""Demo data for the outdoor-retail example map: customer journeys with planted truths to find.

`write_demo_files` writes Segment events, feedback, customers and `truths.json`, which names the effects
planted in the data (a sub-par refund email that drives churn, a tracking loop, an unmapped event, a silent
week before delivery, chat lifting conversion), so analyses can be checked against known answers.
`benchmark_events` builds a large flat events table fast, for benchmarks.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400.0
HOUR = 3_600.0
START = datetime(2024, 11, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 1, tzinfo=UTC).timestamp() - 1.0  # the last second of 2026-10-31
ARCHETYPES = {"first_timer": 0.35, "enthusiast": 0.15, "gift_buyer": 0.15, "casual": 0.35}
FIRST_BUY = {"first_timer": 0.7, "enthusiast": 0.9, "gift_buyer": 0.85, "casual": 0.75}
RETURN_RATE = {"first_timer": 0.26, "enthusiast": 0.12, "gift_buyer": 0.3, "casual": 0.16}
STAY = 0.8  # chance a customer comes back after a visit
BUY_AGAIN = 0.35  # chance a later visit ends in an order
NOISE = "app_crashed"
CAMPAIGNS = ["", "", "brand_search", "spring_kitlist", "referral"]
ORDERLESS = {"page_viewed", "social_mention", "return_label_created", NOISE}  # events without an order_id
SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
WEIGHTS = {
    "csat": (2, 4, 8, 36, 50),
    "nps": (1, 1, 1, 2, 2, 3, 5, 12, 20, 25, 28),
    "ces": (30, 30, 18, 10, 6, 4, 2),
}
PATHS = {"home": "/", "search": "/search", "product": "/p/", "reviews": "/p/", "size_guide": "/size-guide",
         "cart": "/basket", "checkout": "/checkout", "help": "/help", "loyalty": "/account/club"}  # fmt: skip
FEEDBACK_COLUMNS = ["response_id", "customer_id", "ts", "metric", "score", "touchpoint", "comment"]
CUSTOMER_COLUMNS = ["customer_id", "segment", "country", "signup_ts", "tier", "lifecycle_segment",
                    "loyalty_tier", "orders_last_12m", "acquisition_campaign"]  # fmt: skip
OPENERS = {
    "pos": ["{t} was spot on.", "Really happy with {t}.", "Quick and clear - {t} did exactly what I needed.",
            "No complaints about {t}, thank you!", "Brilliant, {t} made it easy."],
    "neu": ["{t} was fine, nothing special.", "{t} did the job, mostly.", "Okay experience with {t}."],
    "neg": ["Disappointed with {t}.", "{t} left me with more questions than answers.",
            "Not good enough: {t} wasted my time.", "Frustrating experience with {t}."],
}  # fmt: skip
DETAILS = {
    ("refund_issued_email", "neg"): ["No date for when the money reaches my card.",
        "'3-10 working days' is not an answer.", "It doesn't even say which order the refund is for.",
        "Less money than I expected and no explanation of the deduction."],
    ("refund_issued_email", "pos"): ["Money was back on my card in two days."],
    ("support_chat", "pos"): ["Agent reserved the new size straight away.", "Sorted my exchange in one go."],
    ("support_chat", "neg"): ["Stuck with a bot before reaching a person.", "Sent me back to the portal."],
    ("phone_support", "neg"): ["Had to repeat my order number three times.", "Told to wait 48 hours."],
    ("phone_support", "pos"): ["They sent a replacement the same day."],
    ("return_portal", "neg"): ["Couldn't exchange for a different colour.", "Label only as a PDF."],
    ("shipped_sms", "neg"): ["Texted me at 2am!", "Link went to the carrier site, not yours."],
    ("in_store_fitting", "pos"): ["The fitter clearly hikes and knew her stuff."],
}  # fmt: skip
PII = ["Email me at {n}@example.com if you need more.", "Call me back on 07700 900{d:03d} please.",
       "My number is +44 7700 900{d:03d}."]  # fmt: skip
NAMES = ["jane.doe", "sam_hill", "a.patel", "tom.r", "morag.h", "lee.w"]
SURVEYS = {  # per surveyed touchpoint: how comments name it, and the chance of an answer by metric
    "order_confirmation_email": ("the order email", {"csat": 0.01}),
    "shipped_sms": ("the shipping text", {"csat": 0.01}),
    "store_pickup": ("click & collect", {"csat": 0.06}),
    "phone_support": ("the phone team", {"csat": 0.03, "ces": 0.02}),
    "support_chat": ("the chat agent", {"csat": 0.2, "ces": 0.1}),
    "return_portal": ("the returns portal", {"ces": 0.08}),
    "exchange_initiated_email": ("the exchange confirmation", {"csat": 0.1}),
    "in_store_return": ("the returns desk", {"csat": 0.15}),
    "refund_issued_email": ("the refund email", {"csat": 0.25}),
    "in_store_fitting": ("the boot fitting", {"csat": 0.2, "nps": 0.1}),
    "community_events": ("the Summit Club event", {"nps": 0.2}),
    "review_request_email": ("shopping with Trailhead", {"nps": 0.02}),
}


@dataclass(frozen=True)
class DemoFiles:
    """The four files `write_demo_files` writes."""

    events: Path  # Segment-style JSON Lines
    feedback: Path  # plain feedback CSV
    customers: Path  # customers CSV
    truths: Path  # truths.json


@dataclass(frozen=True)
class _Effects:
    """How strongly each truth is planted; the unplanted variant is the same world without the effects."""

    refund_csat: tuple[int, ...]  # weights of CSAT scores 1..5 for the refund email
    stay_after_refund: float
    loop_share: float  # deliveries where the customer bounces between tracking page and phone
    label_created: float  # postal returns that also log the unmapped return_label_created
    ship_days: tuple[float, float]  # days from the order to the shipped SMS
    buy_after_chat: float
    stay_after_chat: float


EFFECTS = {
    True: _Effects((40, 35, 13, 8, 4), 0.3, 0.25, 0.9, (6.0, 8.0), 0.9, 0.95),
    False: _Effects(WEIGHTS["csat"], STAY, 0.0, 0.0, (0.2, 0.9), BUY_AGAIN, STAY),
}


class _Event(NamedTuple):
    ts: float
    who: str
    anonymous: bool
    event: str
    channel: str
    props: dict[str, Any]
    campaign: dict[str, str] | None


class _Order(NamedTuple):
    order_id: str
    revenue: float
    collect: bool


class _Outcome(NamedTuple):
    refund: bool = False
    chat: bool = False


@dataclass
class _Profile:
    cid: str
    archetype: str
    start: float
    new: bool  # first seen in the data, so the first visit is anonymous
    attrs: dict[str, str]
    subscriber: bool


def _iso(ts: float) -> str:
    """ISO 8601 in UTC with milliseconds, spelled out by hand: datetime formatting dominated the run."""
    day, rest = divmod(round(ts * 1000), 86_400_000)
    seconds, ms = divmod(rest, 1000)
    return f"{_day(day)}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}Z"


@lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()


def _daytime(rng: random.Random, t: float, lo: float, hi: float) -> float:
    """A moment between hours lo and hi on t's day, or the next day when that moment has passed."""
    at = t - t % DAY + rng.uniform(lo, hi) * HOUR
    return at if at >= t else at + DAY


def _start(rng: random.Random, kind: str) -> float:
    """When the customer first shows up; gift buyers cluster before Christmas, regulars are there already."""
    if kind == "enthusiast" or (kind == "casual" and rng.random() < 0.5):
        return START + rng.uniform(0, 90) * DAY
    if kind == "gift_buyer" and rng.random() < 0.7:
        return rng.choice([START, START + 365 * DAY]) + rng.uniform(14, 47) * DAY
    return START + rng.uniform(0, 640) * DAY


def _attrs(rng: random.Random, kind: str, start: float, new: bool) -> dict[str, str]:
    """Customer attributes, including those the example map's persona segments test."""
    tier = {"enthusiast": ["gold", "gold", "summit"], "casual": ["none", "silver"]}.get(kind, ["none"])
    loyalty = rng.choice(tier)
    month, year = datetime.fromtimestamp(start, UTC).strftime("%m %y").split()
    gift = f"gift_xmas{year}" if month in ("11", "12") else "gift_birthday"
    lifecycles = {"first_timer": ["new"], "gift_buyer": ["occasional"], "enthusiast": ["returning"]}
    lifecycle = rng.choice(lifecycles.get(kind, ["returning", "lapsed"]))
    return {"segment": kind, "country": rng.choices(["GB", "IE", "NL", "DE", "FR"], [86, 6, 3, 3, 2])[0],
            "signup_ts": _iso(start + 600 if new else START - rng.uniform(30, 2500) * DAY), "tier": loyalty,
            "lifecycle_segment": lifecycle, "loyalty_tier": loyalty,
            "orders_last_12m": "" if loyalty == "none" else str(rng.randint(1, 12)),
            "acquisition_campaign": gift if kind == "gift_buyer" else rng.choice(CAMPAIGNS)}  # fmt: skip


def _profile(rng: random.Random, number: int) -> _Profile:
    kind = rng.choices(list(ARCHETYPES), list(ARCHETYPES.values()))[0]
    start = _start(rng, kind)
    new = kind == "first_timer" or (kind == "gift_buyer" and rng.random() < 0.5)
    subscriber = rng.random() < (0.6 if kind == "enthusiast" else 0.3)
    return _Profile(f"c{number:05d}", kind, start, new, _attrs(rng, kind, start, new), subscriber)


def _mood(metric: str, score: int) -> str:
    """Comment tone for a score; effort is better when lower, so CES is turned round first."""
    good = 8 - score if metric == "ces" else score
    low, high = {"csat": (2, 4), "nps": (6, 9), "ces": (3, 5)}[metric]
    return "neg" if good <= low else "pos" if good >= high else "neu"


def _comment(rng: random.Random, touchpoint: str, mood: str) -> str:
    parts = [rng.choice(OPENERS[mood]).format(t=SURVEYS[touchpoint][0])]
    details = DETAILS.get((touchpoint, mood), [])
    if details and rng.random() < 0.75:
        parts.append(rng.choice(details))
    if rng.random() < 0.08:  # real free text carries contact details; the scrubber needs some to find
        parts.append(rng.choice(PII).format(n=rng.choice(NAMES), d=rng.randint(0, 999)))
    text = " ".join(parts)
    return text[0].upper() + text[1:]


class _Sim:
    """Simulates one customer at a time, appending events and survey answers to shared lists."""

    def __init__(self, rng: random.Random, fx: _Effects) -> None:
        self.rng, self.fx = rng, fx
        self.events: list[_Event] = []
        self.feedback: list[list[str]] = []
        self.cid = self.anon = ""
        self.order: _Order | None = None  # the order the current events belong to
        self.orders = self.loops = 0

    def u(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def emit(self, t: float, event: str, channel: str, anon: bool = False, **props: Any) -> float:
        """Record an event unless it falls after the data ends; events of an order carry its id."""
        campaign = props.pop("campaign", None)
        if self.order and event not in ORDERLESS:
            props["order_id"] = self.order.order_id
        if t <= END:
            self.events.append(_Event(t, self.anon if anon else self.cid, anon, event, channel, props, campaign))
        return t

    def email(self, t: float, template: str, **props: Any) -> float:
        return self.emit(t, "email_sent", "email", template=template, **props)

    def sms(self, t: float, template: str) -> float:
        return self.emit(t, "sms_sent", "sms", template=template)

    def page(self, t: float, page_type: str, anon: bool = False) -> float:
        sku = str(self.rng.randint(1000, 9999)) if page_type in ("product", "reviews") else ""
        return self.emit(t, "page_viewed", "website", anon, page_type=page_type, path=PATHS[page_type] + sku)

    def survey(self, t: float, touchpoint: str) -> float:
        """Maybe post-interaction survey answers, a little while after the interaction at `t`."""
        for metric, chance in SURVEYS[touchpoint][1].items():
            if self.rng.random() >= chance or (ts := t + self.u(0.3, 30) * HOUR) > END:
                continue
            lo, hi = SCALES[metric]
            refund = touchpoint == "refund_issued_email" and metric == "csat"
            score = self.rng.choices(range(lo, hi + 1), self.fx.refund_csat if refund else WEIGHTS[metric])[0]
            comment = _comment(self.rng, touchpoint, _mood(metric, score)) if self.rng.random() < 0.6 else ""
            self.feedback.append(["", self.cid, _iso(ts), metric, str(score), touchpoint, comment])
        return t

    def life(self, p: _Profile) -> None:
        """Visits, some ending in orders, until the customer stops coming back or the data ends."""
        self.cid, self.anon = p.cid, f"anon-{self.rng.getrandbits(48):012x}"
        t, buys, first, last_order = p.start, self.rng.random() < FIRST_BUY[p.archetype], p.new, None
        while t < END:
            end, outcome = self.visit(p, t, buys, first)
            last_order = t if buys else last_order
            if self.rng.random() >= self.stay(outcome):
                return  # churned: nothing more from this customer
            later = end + min(20 + self.rng.expovariate(1 / 150), 340) * DAY
            self.between(p, end, min(later, END), last_order)
            t, first = later, False
            buys = self.rng.random() < (self.fx.buy_after_chat if outcome.chat else BUY_AGAIN)

    def stay(self, outcome: _Outcome) -> float:
        """The chance of another visit; a refund email (when planted) outweighs a good chat."""
        if outcome.refund:
            return self.fx.stay_after_refund
        return self.fx.stay_after_chat if outcome.chat else STAY

    def visit(self, p: _Profile, t: float, buys: bool, first: bool) -> tuple[float, _Outcome]:
        """Browsing, maybe a fitting and an order, its delivery, and keeping or returning it."""
        self.order = None
        t = self.browse(p, t, first)
        if not buys:
            return t, _Outcome()
        if p.archetype == "enthusiast" and self.rng.random() < 0.35:
            t = self.emit(_daytime(self.rng, t + self.u(1, 5) * DAY, 10, 17), "fitting_attended", "store")
            self.survey(t, "in_store_fitting")
            t = _daytime(self.rng, t + self.u(2, 30) * HOUR, 18, 23)
        delivered = self.deliver(p, self.buy(p, t))
        if self.rng.random() < RETURN_RATE[p.archetype]:
            return self.returns(delivered)
        return self.use(p, delivered), _Outcome()

    def browse(self, p: _Profile, t: float, anon: bool) -> float:
        """A discovery visit: an ad or a review site, then home, search, product and review pages."""
        t = _daytime(self.rng, t, 7, 23)
        if self.rng.random() < (0.6 if p.archetype == "gift_buyer" else 0.2):
            name = p.attrs["acquisition_campaign"] or "trail_kit_lists"
            utm = {"name": name, "source": self.rng.choice(["instagram", "tiktok"]), "medium": "paid_social"}
            t = self.emit(t, "ad_clicked", "social", anon, campaign=utm, ad_id=f"ad{self.rng.randint(1, 40)}")
        elif self.rng.random() < 0.1:
            sources = ["trustpilot", "google_reviews", "ukclimbing", "reddit"]
            t = self.emit(t, "review_site_referral", "review_sites", anon, source=self.rng.choice(sources))
        for page in self.pages(p):
            t = self.page(t + self.u(15, 240), page, anon)
        if self.rng.random() < 0.02:
            self.emit(t + self.u(1, 20), NOISE, "website", anon, screen=page, error="TypeError")
        return t

    def pages(self, p: _Profile) -> list[str]:
        sizing = 0.4 if p.archetype == "first_timer" else 0.1
        pages = ["home"] if self.rng.random() < 0.6 else []
        pages += ["search"] * self.rng.randint(0, 2)
        for _ in range(self.rng.randint(1, 3)):
            pages.append("product")
            pages += ["reviews"] if self.rng.random() < 0.3 else []
            pages += ["size_guide"] if self.rng.random() < sizing else []
        return pages

    def buy(self, p: _Profile, t: float) -> float:
        """Basket, checkout, the order and its confirmation emails."""
        t = self.page(self.page(t + self.u(20, 120), "cart") + self.u(30, 300), "checkout")
        self.orders += 1
        spend = 4.3 if p.archetype in ("gift_buyer", "casual") else 5.0  # full kits cost more than gifts
        revenue, collect = round(self.rng.lognormvariate(spend, 0.5), 2), self.rng.random() < 0.15
        self.order = _Order(f"TH{100000 + self.orders}", revenue, collect)
        fulfilment = "click_collect" if collect else "delivery"
        t = self.emit(t + self.u(60, 400), "order_placed", "website", revenue=revenue, currency="GBP",
                      items=self.rng.randint(1, 5), fulfilment=fulfilment)  # fmt: skip
        t = self.email(t + self.u(20, 90), "order_confirmation")
        self.survey(t, "order_confirmation_email")
        if p.archetype == "gift_buyer":
            t = self.email(t + self.u(30, 120), "gift_receipt")
        return t

    def deliver(self, p: _Profile, t: float) -> float:
        """The wait, then shipping texts and tracking, or collection in store; returns the delivery time."""
        shipped = t + self.u(*self.fx.ship_days) * DAY
        if p.archetype == "first_timer" and self.rng.random() < 0.8:
            self.email(shipped + self.u(12, 30) * HOUR, "product_care")
        if self.order and self.order.collect:
            return self.collect(shipped)
        self.survey(self.sms(shipped, "shipped"), "shipped_sms")
        carrier = self.rng.choice(["dpd", "evri"])
        t = self.emit(shipped + self.u(1, 4) * HOUR, f"carrier_{carrier}_update", "sms", status="in_transit")
        for _ in range(self.rng.choice([0, 0, 1, 2])):
            t = self.emit(t + self.u(0.5, 6) * HOUR, "order_tracking_viewed", "website")
        out = self.sms(_daytime(self.rng, max(t, shipped + self.u(0.3, 1.2) * DAY), 7, 9), "out_for_delivery")
        return self.missing_parcel(self.sms(out + self.u(2, 6) * HOUR, "delivered"))

    def collect(self, arrived: float) -> float:
        ready = self.email(arrived + self.u(2, 8) * HOUR, "pickup_ready")
        done = self.emit(_daytime(self.rng, ready + self.u(0.1, 3) * DAY, 9, 18), "order_collected", "store")
        return self.survey(done, "store_pickup")

    def missing_parcel(self, t: float) -> float:
        """'Delivered' but not found: a tracking check and a call; planted, customers bounce between them."""
        chance = self.rng.random()
        if chance >= 0.05 + self.fx.loop_share:
            return t
        t = self.emit(t + self.u(10, 90) * 60, "order_tracking_viewed", "website")
        t = self.call(t + self.u(5, 40) * 60)
        if chance >= self.fx.loop_share:
            return t
        self.loops += 1
        t = self.emit(t + self.u(15, 90) * 60, "order_tracking_viewed", "website")
        if self.rng.random() < 0.6:
            t = self.call(t + self.u(20, 120) * 60)
            t = self.emit(t + self.u(15, 90) * 60, "order_tracking_viewed", "website")
        return t

    def call(self, t: float) -> float:
        duration = self.rng.randint(120, 1500)
        t = self.emit(t, "call_received", "phone", reason="delivered_not_received", duration_s=duration)
        return self.survey(t, "phone_support")

    def use(self, p: _Profile, t: float) -> float:
        """Kept kit: help pages, the review request two weeks on, now and then a warranty claim."""
        if self.rng.random() < 0.15:
            self.page(_daytime(self.rng, t + self.u(0.5, 5) * DAY, 7, 23), "help")
        if self.rng.random() < 0.85:
            t = self.email(t + 14 * DAY + self.u(0, 2) * HOUR, "review_request")
            self.survey(t, "review_request_email")
        if self.rng.random() < 0.03:
            t = self.emit(t + self.u(10, 60) * DAY, "warranty_claim_submitted", "website")
        if p.archetype == "enthusiast" and self.rng.random() < 0.1:
            t = self.emit(t + self.u(1, 10) * DAY, "social_mention", "social", network="instagram")
        return t

    def returns(self, t: float) -> tuple[float, _Outcome]:
        """A return or exchange by post or at a store desk, sometimes with a chat, ending in an email."""
        refund = self.rng.random() < 0.45
        t = _daytime(self.rng, t + self.u(1, 12) * DAY, 8, 22)
        by_post = self.rng.random() < 0.8
        t = self.postal_return(t, refund) if by_post else self.store_return(t, refund)
        chat = self.rng.random() < (0.15 if refund else 0.4)
        if chat:
            self.chat(_daytime(self.rng, t + self.u(1, 3) * DAY, 8, 22), "refund" if refund else "exchange")
        if by_post:
            t = self.email(t + self.u(4, 8) * DAY, "return_received")
        if refund:
            amount = self.order.revenue if self.order else 0.0
            t = self.email(t + self.u(1, 3) * DAY, "refund_issued", amount=amount)
            self.survey(t, "refund_issued_email")
        return t, _Outcome(refund, chat)

    def postal_return(self, t: float, refund: bool) -> float:
        for _ in range(self.rng.choice([1, 1, 2])):
            t = self.emit(t + self.u(10, 300), "return_portal_viewed", "website")
        self.survey(t, "return_portal")
        label = self.rng.choice(["qr", "pdf"])
        t = self.emit(t + self.u(30, 240), "return_label_requested", "website", label=label)
        if self.rng.random() < self.fx.label_created:  # the carrier integration's own log line
            t = self.emit(t + self.u(1, 30), "return_label_created", "website", carrier="inpost", label=label)
        if not refund:
            t = self.email(t + self.u(60, 600), "exchange_initiated")
            self.survey(t, "exchange_initiated_email")
        return t

    def store_return(self, t: float, refund: bool) -> float:
        outcome = "refund" if refund else "exchange"
        t = self.emit(_daytime(self.rng, t, 10, 17), "store_return_processed", "store", outcome=outcome)
        return self.survey(t, "in_store_return")

    def chat(self, t: float, reason: str) -> None:
        self.emit(t, "chat_started", "chat", reason=reason, wait_s=self.rng.randint(10, 400))
        self.survey(t, "support_chat")

    def between(self, p: _Profile, t0: float, t1: float, last_order: float | None) -> None:
        """Quiet months between visits: newsletters, member mail and pages, club events, win-back emails."""
        self.order = None
        if p.subscriber:
            self.every(t0, t1, 28, "newsletter")
        if p.attrs["loyalty_tier"] != "none":
            self.every(t0, t1, 61, "points_statement")
            if self.rng.random() < 0.3:
                self.page(self.sometime(t0, t1, 7, 23), "loyalty")
        if p.archetype == "enthusiast" and self.rng.random() < 0.2:
            t = self.emit(self.sometime(t0, t1, 18, 19), "event_attended", "store")
            self.survey(t, "community_events")
        for days, template in ((270, "winback_9m"), (330, "winback_11m")):
            if last_order is not None and t0 < last_order + days * DAY < t1:
                self.email(last_order + days * DAY, template)

    def sometime(self, t0: float, t1: float, lo: float, hi: float) -> float:
        """A moment between hours lo and hi on a day in [t0, t1), kept clear of the visit at t1."""
        return _daytime(self.rng, self.u(t0, max(t0, t1 - DAY)), lo, hi)

    def every(self, t0: float, t1: float, days: float, template: str) -> None:
        t = t0 + self.u(1, days) * DAY
        while t < t1:
            self.email(t, template)
            t += days * DAY * self.u(0.9, 1.1)


def _write_events(path: Path, events: list[_Event], rng: random.Random) -> None:
    """One Segment track message a line, in time order as an export would have them."""
    events.sort(key=lambda e: (e.ts, e.who))
    ids = rng.randbytes(16 * len(events)).hex()
    encode = json.JSONEncoder(separators=(",", ":")).encode
    with path.open("w", encoding="utf-8") as out:
        for i, e in enumerate(events):
            context: dict[str, Any] = {"channel": e.channel}
            if e.campaign:
                context["campaign"] = e.campaign
            message = {"type": "track", "messageId": f"ajs-{ids[32 * i : 32 * i + 32]}",
                       "anonymousId" if e.anonymous else "userId": e.who, "event": e.event,
                       "timestamp": _iso(e.ts), "properties": e.props, "context": context}  # fmt: skip
            out.write(encode(message) + "\n")


def _write_csv(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)


def _mean(weights: tuple[int, ...]) -> float:
    return round(sum((1 + i) * w for i, w in enumerate(weights)) / sum(weights), 2)


def _truths(fx: _Effects, sim: _Sim) -> list[dict[str, Any]]:
    """What was planted, with the numbers an analysis should recover."""
    labels = sum(e.event == "return_label_created" for e in sim.events)
    return [
        {"id": "refund_email_low_csat", "kind": "subpar", "kinds": ["subpar", "churn_driver"],
         "touchpoint": "refund_issued_email", "metric": "csat", "mean_score": _mean(fx.refund_csat),
         "others_mean_score": _mean(WEIGHTS["csat"]), "outcome": "churn", "inactive_days": 365,
         "churn_chance_after": round(1 - fx.stay_after_refund, 2),
         "churn_chance_otherwise": round(1 - STAY, 2),
         "description": "Refund emails score far below other post-purchase touchpoints, and customers who "
                        "get one often never come back."},
        {"id": "tracking_loop", "kind": "loop", "touchpoint": "order_tracking_page",
         "touchpoints": ["order_tracking_page", "phone_support"],
         "cycle": ["order_tracking_page", "phone_support", "order_tracking_page"],
         "share_of_deliveries": fx.loop_share, "deliveries": sim.loops,
         "description": "Parcels marked delivered but missing send customers back and forth between the "
                        "tracking page and the phone line within a day."},
        {"id": "unmapped_return_label", "kind": "unmapped_event", "touchpoint": None,
         "event": "return_label_created", "events": labels,
         "description": "The carrier integration logs return_label_created for most postal returns; no "
                        "touchpoint claims it."},
        {"id": "silent_week", "kind": "silent_period", "touchpoint": None, "from_stage": "purchase",
         "to_stage": "deliver", "median_seconds": round(sum(fx.ship_days) / 2 * DAY),
         "description": "After the order and its confirmation nothing happens for about a week until the "
                        "shipped SMS."},
        {"id": "chat_lifts_conversion", "kind": "driver", "touchpoint": "support_chat",
         "outcome": "conversion", "order_chance_after": fx.buy_after_chat,
         "order_chance_otherwise": BUY_AGAIN,
         "description": "Customers who chat with an agent place a further order far more often."},
    ]  # fmt: skip


def write_demo_files(folder: Path, customers: int = 5000, seed: int = 7, planted: bool = True) -> DemoFiles:
    """Write demo events, feedback, customers and truths for the retail example map into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    sim = _Sim(rng, EFFECTS[planted])
    profiles = [_profile(rng, number) for number in range(1, customers + 1)]
    for profile in profiles:
        sim.life(profile)
    names = ("events.jsonl", "feedback.csv", "customers.csv", "truths.json")
    files = DemoFiles(*(folder / name for name in names))
    _write_events(files.events, sim.events, rng)
    sim.feedback.sort(key=lambda row: (row[2], row[1]))
    for number, row in enumerate(sim.feedback, 1):
        row[0] = f"r{number:06d}"
    _write_csv(files.feedback, FEEDBACK_COLUMNS, sim.feedback)
    _write_csv(files.customers, CUSTOMER_COLUMNS, [[p.cid, *p.attrs.values()] for p in profiles])
    truths = [{**truth, "planted": planted} for truth in _truths(EFFECTS[planted], sim)]
    noise = [{"event": NOISE, "events": sum(e.event == NOISE for e in sim.events)}]
    doc = {"seed": seed, "customers": customers, "planted": planted, "truths": truths, "noise": noise}
    files.truths.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return files


# The benchmark vocabulary, in journey order: (event, channel, page_type, template, weight).
BENCH_VOCAB: list[tuple[str, str, str | None, str | None, float]] = [
    ("ad_clicked", "social", None, None, 3), ("review_site_referral", "review_sites", None, None, 1),
    ("page_viewed", "website", "home", None, 10), ("page_viewed", "website", "search", None, 10),
    ("page_viewed", "website", "product", None, 18), ("page_viewed", "website", "reviews", None, 4),
    ("page_viewed", "website", "size_guide", None, 3), ("page_viewed", "website", "cart", None, 5),
    ("page_viewed", "website", "checkout", None, 4), ("order_placed", "website", None, None, 3.5),
    ("email_sent", "email", None, "order_confirmation", 3.5), ("sms_sent", "sms", None, "shipped", 3),
    ("carrier_dpd_update", "sms", None, None, 2), ("order_tracking_viewed", "website", None, None, 3),
    ("sms_sent", "sms", None, "out_for_delivery", 3), ("sms_sent", "sms", None, "delivered", 3),
    ("call_received", "phone", None, None, 0.6), ("email_sent", "email", None, "review_request", 2.5),
    ("page_viewed", "website", "help", None, 1), ("return_portal_viewed", "website", None, None, 0.9),
    ("return_label_requested", "website", None, None, 0.7),
    ("return_label_created", "website", None, None, 0.6),
    ("chat_started", "chat", None, None, 0.5), ("email_sent", "email", None, "refund_issued", 0.3),
    ("email_sent", "email", None, "exchange_initiated", 0.4), ("email_sent", "email", None, "newsletter", 6),
    ("page_viewed", "website", "loyalty", None, 1), (NOISE, "website", None, None, 0.1),
]  # fmt: skip
ORDER_KIND = [v[0] for v in BENCH_VOCAB].index("order_placed")


def _bench_times(rng: np.random.Generator, customer: np.ndarray[Any, Any], customers: int) -> np.ndarray[Any, Any]:
    """Microsecond timestamps rising within each customer: a start per customer plus running gaps."""
    gaps = rng.exponential(2 * DAY * 1e6, customer.size).astype(np.int64) + 1_000_000
    running = np.cumsum(gaps)
    firsts = np.flatnonzero(np.diff(customer, prepend=-1))  # each customer's first row
    offsets = np.repeat(running[firsts] - gaps[firsts], np.diff(np.r_[firsts, customer.size]))
    starts = rng.integers(int(START * 1e6), int((END - 90 * DAY) * 1e6), customers)
    times: np.ndarray[Any, Any] = np.minimum(starts[customer] + running - offsets, int(END * 1e6))
    return times


def _bench_text(values: list[str | None], kinds: np.ndarray[Any, Any]) -> pa.Array:
    return pc.take(pa.array(values, type=pa.string()), pa.array(kinds))


def benchmark_events(n_events: int, seed: int = 7) -> pa.Table:
    """A flat events table of `n_events` rows, about 20 a customer, built in numpy and Arrow, no row loops."""
    rng = np.random.default_rng(seed)
    customers = max(1, n_events // 20)
    customer = np.sort(rng.integers(0, customers, n_events))
    weights = np.array([v[4] for v in BENCH_VOCAB])
    kinds = rng.choice(len(BENCH_VOCAB), size=n_events, p=weights / weights.sum()).astype(np.int32)
    # Journey order within each customer, as real paths run: one sort of a combined (customer, kind) key.
    kinds = (np.sort(customer * len(BENCH_VOCAB) + kinds) % len(BENCH_VOCAB)).astype(np.int32)
    numbers = pc.utf8_lpad(pc.cast(pa.array(customer + 1), pa.string()), len(str(customers)), "0")
    columns = {
        "event_id": pc.binary_join_element_wise("e", pc.cast(pa.array(np.arange(n_events)), pa.string()), ""),
        "customer_id": pc.binary_join_element_wise("c", numbers, ""),
        "ts": pa.array(_bench_times(rng, customer, customers), type=pa.timestamp("us", tz="UTC")),
    }
    texts = zip(*(v[:4] for v in BENCH_VOCAB), strict=True)
    for name, values in zip(("event", "channel", "page_type", "template"), texts, strict=True):
        columns[name] = _bench_text(list(values), kinds)
    revenue = np.round(rng.lognormal(4.5, 0.6, n_events), 2)
    columns["revenue"] = pa.array(revenue, mask=kinds != ORDER_KIND, type=pa.float64())
    return pa.table(columns)
