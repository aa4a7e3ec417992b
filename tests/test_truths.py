"""The demo's planted truths (`truths.json`) are each found by the analysis that should find them, and with the
effects switched off (`--no-planted`, the same world otherwise) none of them is: no false alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

import touchlens
from touchlens.demo_workspace import build_demo
from touchlens.model.map import ProactiveRule

pytestmark = pytest.mark.slow


def _world(tmp_path_factory: pytest.TempPathFactory, planted: bool) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("planted" if planted else "unplanted") / "ws"
    build_demo(root, customers=5000, seed=7, planted=planted)
    ws = touchlens.open(root)
    truths = {t["id"]: t for t in json.loads((root / "truths.json").read_text())["truths"]}
    return {
        "ws": ws,
        "truths": truths,
        "insights": ws.insights(samples=20),
        "conversion": ws.drivers("conversion", samples=20),
        "churn": ws.drivers("churn", samples=20),
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _world(tmp_path_factory, True)


@pytest.fixture(scope="module")
def unplanted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _world(tmp_path_factory, False)


def _found(world: dict[str, Any], section: str, kind: str, subject: str) -> list[Any]:
    return [i for i in world["insights"].sections[section] if i.kind == kind and i.subject == subject]


def _refund_subpar(world: dict[str, Any]) -> bool:
    return any(i.subject == "refund_issued_email" for i in world["insights"].sections["problems"])


def _refund_churn_rank(world: dict[str, Any]) -> int | None:
    raising = [d.touchpoint for d in world["churn"].raising() if d.kind == "seen"]
    return raising.index("refund_issued_email") if "refund_issued_email" in raising else None


def _tracking_loop(world: dict[str, Any]) -> list[Any]:
    return [
        i
        for i in world["insights"].sections["friction"]
        if i.kind == "loop" and set(i.evidence["cycle"]) == {"order_tracking_page", "phone_support"}
    ]


def _unmapped(world: dict[str, Any], event: str) -> list[Any]:
    return _found(world, "gaps", "unmapped_event", event)


def _silent(world: dict[str, Any]) -> list[Any]:
    return _found(world, "gaps", "silent_period", "purchase→deliver")


def _chat_lifts(world: dict[str, Any]) -> bool:
    d = world["conversion"].find("seen", "support_chat")
    return d is not None and d.significant and (d.lift or 0) > 1


def test_the_refund_email_is_sub_par_and_a_top_churn_driver(planted: dict[str, Any]) -> None:
    truth = planted["truths"]["refund_email_low_csat"]
    rank = _refund_churn_rank(planted)
    assert rank is not None
    assert rank < 3
    # Sub-par and costly: a moment of truth, with the customers it reached and what it costs a year.
    item = _found(planted, "problems", "moment_of_truth", truth["touchpoint"])[0]
    assert item.evidence["metric"] == truth["metric"]
    assert item.evidence["gap"] < -0.05
    assert item.evidence["p_value"] < 0.05
    assert item.reach > item.evidence["answers"]  # customers reached, not survey answers
    assert {e.outcome for e in item.effects} & {"churn", "conversion", "repeat"}
    assert item.at_stake is not None
    assert item.at_stake.low <= item.at_stake.value <= item.at_stake.high
    assert "Refund issued email" in item.summary
    assert "refund_issued_email" not in item.summary
    # A service-recovery follow-up, ready for the map while the email is fixed, measured by its holdout.
    rule = ProactiveRule.model_validate(item.evidence["proactive_rule"])
    assert (rule.after.touchpoint, rule.wait, rule.holdout) == (truth["touchpoint"], "1d", 0.1)


def test_live_chat_is_a_strength(planted: dict[str, Any]) -> None:
    strengths = planted["insights"].sections["strengths"]
    assert [i.subject for i in strengths if i.kind == "strength"] == ["support_chat"]
    assert strengths[0].at_stake is not None


def test_the_tracking_loop_is_friction(planted: dict[str, Any]) -> None:
    truth = planted["truths"]["tracking_loop"]
    loops = _tracking_loop(planted)
    assert loops
    # Every planted loop is a customer sent back; the count can only be at most the deliveries that looped.
    assert 0 < loops[0].evidence["customers"] <= truth["deliveries"]


def test_the_unmapped_return_label_is_a_gap_with_its_volume(planted: dict[str, Any]) -> None:
    truth = planted["truths"]["unmapped_return_label"]
    gap = _unmapped(planted, truth["event"])
    assert gap
    assert gap[0].evidence["events"] == truth["events"]


def test_the_silent_week_is_a_silent_period(planted: dict[str, Any]) -> None:
    truth = planted["truths"]["silent_week"]
    silent = _silent(planted)
    assert silent
    assert silent[0].evidence["median_seconds"] == pytest.approx(truth["median_seconds"], rel=0.15)


def test_live_chat_lifts_conversion(planted: dict[str, Any]) -> None:
    assert _chat_lifts(planted)


def test_the_roadmap_puts_the_refund_email_fix_in_now_with_its_evidence(planted: dict[str, Any]) -> None:
    ws = planted["ws"]
    suggested, kept = ws.roadmap_suggest(samples=20)
    # The example map already has a person's card on the refund e-mail: the suggestion is linked to it, with
    # its findings and what is at stake, not added beside it.
    refund = [o for o in suggested if "refund_issued_email" in o.touchpoints]
    assert [o.key for o in refund] == ["refund_timing"]
    assert "refund_timing" in kept
    assert suggested[0].key == "refund_timing"  # first
    assert ws.roadmap()[0].key == "refund_timing"
    assert refund[0].horizon.value == "now"
    assert refund[0].evidence["at_stake"]["value"] > 0
    assert {f["kind"] for f in refund[0].evidence["findings"]} == {"moment_of_truth"}
    assert refund[0].title == "Say when the refund lands" or refund[0].source.value == "person"
    # A person's move is kept when suggestions are made again.
    ws.roadmap_update("refund_timing", horizon="later")
    _, kept = ws.roadmap_suggest(samples=20)
    assert "refund_timing" in kept
    assert next(o for o in ws.roadmap() if o.key == "refund_timing").horizon.value == "later"
    # A done card leaves Now: open work comes first.
    ws.roadmap_update("refund_timing", horizon="now", status="done")
    order = [(o.key, o.status.value) for o in ws.roadmap()]
    done = order.index(("refund_timing", "done"))
    closed = {"done", "dropped"}
    assert all(status not in closed for _, status in order[:done])
    assert all(status in closed for _, status in order[done:])


def test_with_the_effects_switched_off_none_is_found(unplanted: dict[str, Any]) -> None:
    assert unplanted["truths"]["unmapped_return_label"]["events"] == 0
    assert not _refund_subpar(unplanted)
    assert _refund_churn_rank(unplanted) is None
    assert not _tracking_loop(unplanted)
    assert not _unmapped(unplanted, "return_label_created")
    assert not _silent(unplanted)
    assert not _chat_lifts(unplanted)
    assert unplanted["insights"].sections["strengths"] == []


def test_insights_through_the_command_line(cli, planted: dict[str, Any]) -> None:
    data = json.loads(cli("-w", planted["ws"].root, "analyze", "gaps", "--json").out)
    assert any(i["subject"] == "return_label_created" for i in data["gaps"])
    rows = cli("-w", planted["ws"].root, "analyze", "feedback", "--csv").out.splitlines()
    assert rows[0].startswith("key,responses,nps,nps_low,nps_high,nps_n,csat")
    feedback = json.loads(cli("-w", planted["ws"].root, "analyze", "feedback", "--json").out)
    refund = next(g for g in feedback["groups"] if g["key"] == "refund_issued_email")
    assert refund["csat"]["high"] < feedback["overall"]["csat"]["low"]
