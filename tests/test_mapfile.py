"""The map file: every error at once, each located as FILE:LINE: path: message; small maps are valid."""

from __future__ import annotations

import json
import re

import pytest

from touchlens.errors import MapError
from touchlens.model.mapfile import dump_map, parse_map

BROKEN = """\
name: Broken Co
channels:
  - {key: email, kind: digital}
  - {key: phone, kind: human}
journeys:
  - key: main
    stages:
      - {key: discover, emotion: 1}
      - {key: buy}
touchpoints:
  - key: receipt
    stage: buy
    channel: sms
  - key: ad
    stage: nowhere
    channel: email
  - key: call
    channel: phone
    phase: afterwards
  - key: receipt
    channel: email
"""


def problems_of(text: str, name: str = "m.yaml") -> list[str]:
    with pytest.raises(MapError) as info:
        parse_map(text, name)
    return [str(p) for p in info.value.problems]


def test_every_error_is_reported_at_once_with_file_line_and_field() -> None:
    problems = problems_of(BROKEN)
    assert problems == [
        "m.yaml:13: touchpoints[0].channel: unknown channel 'sms'; channels are: email, phone",
        "m.yaml:15: touchpoints[1].stage: unknown stage 'nowhere'; stages are: buy, discover",
        "m.yaml:19: touchpoints[2].phase: 'afterwards' is not allowed; allowed values are: "
        "'pre-purchase', 'purchase' or 'post-purchase'",
        "m.yaml:20: touchpoints[3].key: duplicate key 'receipt' (first used by touchpoints[0])",
    ]


def test_json_errors_carry_lines_too() -> None:
    data = {"name": "J", "channels": [{"key": "email"}], "touchpoints": [{"key": "a", "channel": "fax"}]}
    problems = problems_of(json.dumps(data, indent=2), "m.json")
    assert len(problems) == 1
    assert re.match(r"m\.json:\d+: touchpoints\[0\]\.channel: unknown channel 'fax'", problems[0])
    line = int(problems[0].split(":")[1])
    assert '"fax"' in json.dumps(data, indent=2).splitlines()[line - 1]


def test_unknown_field_lists_the_fields_that_exist() -> None:
    [problem] = problems_of("name: X\ntouchpoints:\n  - key: a\n    chanel: email\n")
    assert problem.startswith("m.yaml:4: touchpoints[0].chanel: unknown field 'chanel'; fields are: key, name")
    assert "channel" in problem


def test_wrong_types_and_ranges_are_named() -> None:
    text = "name: X\njourneys:\n  - key: j\n    stages:\n      - {key: s, emotion: 5}\n      - {key: t, tasks: 3}\n"
    problems = problems_of(text)
    assert problems[0].startswith("m.yaml:5: journeys[0].stages[0].emotion: Input should be less than or equal to 2")
    assert problems[1].startswith("m.yaml:6: journeys[0].stages[1].tasks: Input should be a valid list")


def test_a_missing_name_and_a_duplicate_yaml_field_are_errors() -> None:
    problems = problems_of("mission: a\nmission: b\n")
    assert any("m.yaml:2: mission: duplicate field 'mission'" in p for p in problems)
    assert any("name: required field is missing" in p for p in problems)


def test_an_invalid_item_hides_no_reference_error_elsewhere() -> None:
    text = (
        "name: X\njourneys:\n  - {key: j, persona: 3, stages: [{key: buy}]}\ntouchpoints:\n  - {key: t, stage: bye}\n"
    )
    problems = problems_of(text)
    assert len(problems) == 2
    assert problems[0].startswith("m.yaml:3: journeys[0].persona:")
    assert problems[1].startswith("m.yaml:5: touchpoints[0].stage: unknown stage 'bye'; stages are: buy")


def test_opportunities_whose_titles_give_the_same_key_clash() -> None:
    [problem] = problems_of("name: X\nopportunities:\n  - {title: Say when}\n  - {title: Say when!}\n")
    assert problem == "m.yaml:4: opportunities[1].key: duplicate key 'say_when' (first used by opportunities[0])"


def test_keys_and_wrappers_are_explained_in_plain_words() -> None:
    problems = problems_of("name: X\ntouchpoints:\n  - {key: 'bad key'}\n  - {key: b, match: {}}\n")
    assert "'bad key' is not a valid key: use letters, digits" in problems[0]
    assert problems[1].endswith("touchpoints[1].match: a match rule needs at least one of event, channel or where")


def test_unparseable_yaml_says_where() -> None:
    [problem] = problems_of("name: X\ntouchpoints: [\n  {key: a\n")
    assert problem.startswith("m.yaml:")
    assert "not valid YAML" in problem


def test_unparseable_json_says_where() -> None:
    [problem] = problems_of('{"name": "X",\n "touchpoints": [}', "m.json")
    assert problem.startswith("m.json:2: not valid JSON")


@pytest.mark.parametrize(
    "text",
    [
        "name: Only outcomes\noutcomes: {conversion: {event: order_placed}, churn: {inactive_days: 90}}\n",
        "name: A few\ntouchpoints:\n  - {key: a, channel: email, stage: buy}\n  - {key: b}\n",
        "name: Bare\n",
    ],
)
def test_small_maps_are_valid(text: str) -> None:
    m = parse_map(text, "m.yaml")
    assert parse_map(dump_map(m), "again.yaml") == m


def test_overlapping_match_rules_are_a_map_error() -> None:
    text = (
        "name: X\ntouchpoints:\n"
        "  - {key: a, match: {event: email_sent}}\n"
        "  - {key: b, match: {event: email_sent, where: {template: refund}}}\n"
        "  - {key: c, match: {event: {prefix: sms_}}}\n"
        "  - {key: d, match: {event: {in: [call, sms_sent]}}}\n"
    )
    problems = problems_of(text)
    assert [p.split(":")[1] for p in problems] == ["4", "6"]
    assert "overlaps the rule of touchpoint 'a'" in problems[0]
    assert "overlaps the rule of touchpoint 'c'" in problems[1]


def test_dates_stay_text_so_a_round_trip_is_exact() -> None:
    m = parse_map("name: X\nopportunities:\n  - {title: T, evidence: {since: 2026-03-01}}\n")
    assert m.opportunities[0].evidence == {"since": "2026-03-01"}
    assert parse_map(dump_map(m)) == m


def test_shorthands_are_read_and_written_compactly() -> None:
    m = parse_map(
        "name: X\nsuccess: Everyone happy\npersonas:\n  - {key: p, segment: {property: plan, in: [a, b]}}\n"
        "touchpoints:\n  - key: t\n"
        "    match: {event: x, where: {tier: [gold, silver], coupon: {exists: true}}}\n"
        "opportunities:\n  - {title: Say when the refund lands}\n"
    )
    assert m.opportunities[0].key == "say_when_the_refund_lands"
    assert m.success == ["Everyone happy"]
    data = json.loads(dump_map(m, "json"))
    assert data["success"] == "Everyone happy"
    assert data["touchpoints"][0]["match"] == {
        "event": "x",
        "where": {"tier": {"in": ["gold", "silver"]}, "coupon": {"exists": True}},
    }
    assert data["personas"][0]["segment"] == [{"property": "plan", "in": ["a", "b"]}]
