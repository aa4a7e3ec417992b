"""Map loading: touchlens' validated, line-located parse against a plain libyaml load / `json.loads`.

The peer does no validation, so its time is the floor; the ratio says what located errors and checks cost.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from benchmarks.common import measure, write_results
from touchlens.model.map import TouchpointMap
from touchlens.model.mapfile import dump_map, parse_map


def big_map(touchpoints: int) -> TouchpointMap:
    """A map of the given size with realistic fields and non-overlapping rules."""
    stages = [{"key": f"stage_{s}", "emotion": s % 5 - 2, "tasks": ["Compare", "Ask"]} for s in range(8)]
    data: dict[str, Any] = {
        "name": "Benchmark Co",
        "channels": [{"key": f"ch_{c}", "kind": "digital"} for c in range(10)],
        "personas": [{"key": f"p_{p}", "segment": {"property": "tier", "equals": p}} for p in range(4)],
        "journeys": [{"key": f"j_{p}", "persona": f"p_{p}", "stages": stages} for p in range(4)],
        "touchpoints": [
            {
                "key": f"tp_{i}",
                "name": f"Touchpoint {i}",
                "stage": f"stage_{i % 8}",
                "channel": f"ch_{i % 10}",
                "phase": "post-purchase",
                "owner": "Care",
                "expectations": "Quick and clear. " * 3,
                "desired": {"think": "Easy", "feel": "Calm"},
                "match": {"event": f"event_{i % 50}", "where": {"template": f"t{i}"}},
                "targets": {"csat": 0.8},
            }
            for i in range(touchpoints)
        ],
    }
    return TouchpointMap.model_validate(data)


def _c_yaml(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def run() -> list[dict[str, Any]]:
    rows = []
    for size in (200, 2000):
        m = big_map(size)
        peers = (("yaml", "yaml.load(CSafeLoader)", _c_yaml), ("json", "json.loads", json.loads))
        for fmt, peer_name, peer in peers:
            text = dump_map(m, fmt)  # type: ignore[arg-type]
            ours = measure(lambda text=text, fmt=fmt: parse_map(text, f"m.{fmt}"), repeat=3)
            floor = measure(lambda text=text, peer=peer: peer(text), repeat=3)
            rows.append(
                {
                    "task": f"parse {fmt} map, {size} touchpoints",
                    "touchlens_s": round(ours["seconds"], 4),
                    "peer": peer_name,
                    "peer_s": round(floor["seconds"], 4),
                    "ratio": round(ours["seconds"] / floor["seconds"], 2),
                    "touchlens_peak_mib": round(ours["peak_mib"], 1),
                }
            )
    write_results("mapfile", rows, "ratio = touchlens time / peer time (lower is better), same run and input")
    return rows
