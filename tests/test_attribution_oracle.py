"""Attribution against ChannelAttribution (a GPL, dev-only oracle) on its own example data.

Heuristics must match exactly; its Markov model is a simulation, so ours (exact) must lie within its noise.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pandas as pd
import pytest

from tests.test_attribution import DATA, _data
from touchlens.analytics.attribution import attribute

pytestmark = pytest.mark.oracle


def _quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a banner and progress
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def ca() -> Any:
    import ChannelAttribution  # dev-only oracle (GPL); touchlens never imports it

    return ChannelAttribution


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(DATA, sep=";")


def test_first_last_linear_equal_channelattribution_exactly(ca: Any, frame: pd.DataFrame) -> None:
    theirs = _quietly(ca.heuristic_models, frame, "path", "total_conversions", var_value="total_conversion_value")
    for model, column in (("first", "first_touch"), ("last", "last_touch"), ("linear", "linear_touch")):
        ours = {c.key: (c.conversions, c.value) for c in attribute(_data(), model).results}
        for row in theirs.itertuples(index=False):
            row = row._asdict()
            conversions, value = ours.get(row["channel_name"], (0.0, 0.0))
            assert conversions == pytest.approx(row[f"{column}_conversions"], abs=1e-9)
            assert value == pytest.approx(row[f"{column}_value"], rel=1e-9, abs=1e-9)


def test_exact_markov_lies_within_channelattributions_simulation_noise(ca: Any, frame: pd.DataFrame) -> None:
    runs = [
        _quietly(ca.markov_model, frame, "path", "total_conversions", var_null="total_null", order=1, seed=s, verbose=0)
        for s in range(5)
    ]
    ours = {c.key: c.conversions for c in attribute(_data(), "markov").results}
    for channel in runs[0]["channel_name"]:
        values = [float(r.loc[r["channel_name"] == channel, "total_conversions"].iloc[0]) for r in runs]
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        tolerance = max(0.03 * mean, 4 * spread, 20.0)  # "a few % per channel", and small channels are noisier
        assert abs(ours[channel] - mean) <= tolerance, (channel, ours[channel], mean, spread)
