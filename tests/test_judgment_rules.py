"""The judgment's rules one at a time, on hand-made inputs with known answers: effects compared like with like,
the alternative to a harmful touchpoint is no strength, the roadmap's scale is set by problems, a suggestion
linked to a person's card leaves no duplicate, behaviour targets are judged with a test, and untrusted words
never become terminal markup."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.console_insights import roadmap_table
from touchlens.insights import effects, prioritise
from touchlens.insights.health import behaviour_judgements, below_target
from touchlens.insights.items import Insight, Stake
from touchlens.insights.subpar import Thresholds
from touchlens.insights.words import Names
from touchlens.model.map import OpportunitySource
from touchlens.model.mapfile import parse_map

MAP = """
name: Broadband
channels: [{key: web, kind: digital}, {key: field, kind: human}]
journeys: [{key: main, stages: [{key: install}, {key: use}]}]
touchpoints:
  - {key: engineer, name: Engineer visit, stage: install, channel: field, initiative: reactive}
  - {key: kit, name: Self-install kit, stage: install, channel: web, initiative: reactive}
  - {key: class, name: Setup class, stage: install, channel: web, initiative: reactive}
  - {key: app, name: App, stage: use, channel: web, initiative: reactive,
     targets: {conversion: 0.5}}
outcomes:
  conversion: {event: renewed, label: renewal}
"""


def _map():
    return parse_map(MAP)


def _periods(rng: np.random.Generator, n: int = 4000) -> effects.Periods:
    """Every period installs by engineer or kit (half each); the engineer visit cuts renewal 70% → 40%; a fifth
    take the setup class, which lifts renewal by 20 points; the kit does nothing of its own."""
    engineer = rng.random(n) < 0.5
    kit = ~engineer
    klass = rng.random(n) < 0.2
    chance = np.where(engineer, 0.4, 0.7) + np.where(klass, 0.2, 0.0)
    renewed = rng.random(n) < chance
    seen = np.column_stack([engineer, kit, klass, np.ones(n, dtype=bool)])
    return effects.Periods(["engineer", "kit", "class", "app"], seen, {"conversion": (renewed, np.ones(n, bool))}, 365)


def test_the_alternative_to_a_harmful_touchpoint_is_no_strength_but_a_real_help_is() -> None:
    m, names = _map(), Names.of(_map())
    fx = effects.effects(_periods(np.random.default_rng(3)), m)
    assert [e.difference < 0 for e in fx.by_touchpoint["engineer"]] == [True]
    found = effects.strengths(fx, m, names, 3.0)
    assert [i.subject for i in found] == ["class"]  # the kit looked helpful only for not being the engineer
    effect = found[0].effects[0]
    assert effect.low <= 0.2 <= effect.high  # compared with ordinary installs, the class adds what was planted
    assert found[0].at_stake is not None
    assert found[0].at_stake.unit == "renewals won"


def test_a_touchpoint_every_period_of_its_stage_meets_gets_no_effect() -> None:
    fx = effects.effects(_periods(np.random.default_rng(4)), _map())
    assert "app" not in fx.by_touchpoint  # alone in its stage: nothing like it to compare with


def _finding(kind: str, key: str, stake: float) -> Insight:
    section = "strengths" if kind == "strength" else "problems"
    return Insight(
        kind, key, key, confidence=1.0, section=section, at_stake=Stake(stake, stake * 0.8, stake * 1.2, "x")
    )


def test_problems_set_the_roadmaps_scale_so_a_big_strength_cannot_push_the_top_problem_out_of_now() -> None:
    cards = prioritise.suggest(
        [_finding("moment_of_truth", "engineer", 250), _finding("strength", "class", 600)], _map()
    )
    by = {o.key: o for o in cards}
    problem, strength = by["fix_subpar_engineer"], by["keep_strength_class"]
    assert (problem.horizon.value, problem.evidence["score"]) == ("now", 100.0)
    assert strength.horizon.value == "next"  # a strength is kept and extended, never in Now


def test_a_suggestion_linked_to_a_persons_card_leaves_no_duplicate() -> None:
    m = _map()
    first = prioritise.suggest([_finding("moment_of_truth", "engineer", 250)], m)
    m, _, _ = prioritise.merge(m, first)
    person = first[0].model_copy(update={"key": "better_visits", "source": OpportunitySource.person})
    m = m.model_copy(update={"opportunities": [*m.opportunities, person]})
    again = prioritise.suggest([_finding("moment_of_truth", "engineer", 250)], m)
    m, changed, kept = prioritise.merge(m, again)
    assert [o.key for o in m.opportunities] == ["better_visits"]
    assert (changed, kept) == ([], ["better_visits"])


def _card(customers: int, conversion: float) -> Scorecard:
    score = Score("app", customers, customers, 1.0, conversion, None, None, None, None, 0.0, None, None)
    return Scorecard(0.5, customers, [score])


@pytest.mark.parametrize(
    ("customers", "conversion", "health"),
    [(2000, 0.30, "poor"), (12, 0.30, "watch"), (2000, 0.48, "watch"), (2000, 0.55, "good")],
    ids=["sure and large", "large on 12 customers", "sure but small", "meets it"],
)
def test_behaviour_targets_are_judged_with_a_test_and_a_size(customers: int, conversion: float, health: str) -> None:
    found = behaviour_judgements(_map(), _card(customers, conversion), set(), Thresholds())
    assert found["app"][0] == health
    problems = below_target(_map(), _card(customers, conversion), set(), Thresholds())
    assert [i.subject for i in problems] == (["app"] if health == "poor" else [])


def test_words_from_the_map_never_become_terminal_markup() -> None:
    card = {"key": "k", "title": "[bold red]Fix[/]", "description": "[/]", "horizon": "now", "score": 100.0,
            "effort": 2.0, "status": "idea", "source": "suggested", "findings": [],
            "at_stake": {"value": 5, "low": 1, "high": 9, "unit": "renewal[/] lost", "per": "year"}}  # fmt: skip
    console = Console(width=200, record=True, color_system=None)
    console.print(roadmap_table("Roadmap", [card]))
    text = console.export_text()
    assert "[bold red]Fix[/]" in text
    assert "5 renewal[/] lost a year (1–9)" in text
