"""False alarms, measured: on 100 small generated businesses with nothing planted (the null twin of Crate &
Kettle, a new seed each), at most 5% of the touchpoints judged are ever called poor, and at most 5% of the
businesses show any anomaly — the rate a 5% significance level promises, after multiplicity control.

Each business is built and judged through the library, as a user's script would; two worker processes share
the 100, so the file takes a couple of minutes.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BUSINESSES = 100
CUSTOMERS = 400
ROOT = Path(__file__).resolve().parent.parent


def _judge(seed: int) -> tuple[int, int, int]:
    """One null business: (touchpoints judged on their scores, of them poor, anomalies flagged)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.business import business

    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = business(Path(tmp), seed=1000 + seed, customers=CUSTOMERS, planted=False)
        health = [r for r in ws.health_report() if r["health"] is not None]
        poor = [r for r in health if r["health"] == "poor"]
        anomalies = sum(len(s["anomalies"]) for s in ws.trends("week")["series"])
        return len(health), len(poor), anomalies


def test_on_100_null_businesses_false_alarms_stay_under_five_percent() -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_judge, range(BUSINESSES))
    judged = sum(r[0] for r in results)
    poor = sum(r[1] for r in results)
    with_anomaly = sum(1 for r in results if r[2])
    assert judged >= 3 * BUSINESSES  # enough touchpoints judged for the rate to mean something
    assert poor / judged <= 0.05, f"{poor} of {judged} touchpoints called poor"
    assert with_anomaly / BUSINESSES <= 0.05, f"{with_anomaly} of {BUSINESSES} businesses show an anomaly"
