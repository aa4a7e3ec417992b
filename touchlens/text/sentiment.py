"""Sentiment of feedback comments: VADER's compound score, and the label that goes with it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

# VADER's own thresholds (Hutto & Gilbert 2014, and the vaderSentiment README): compound ≥ 0.05 is positive,
# ≤ -0.05 negative, anything between neutral.
POSITIVE = 0.05
NEGATIVE = -0.05


@cache
def _analyzer() -> Any:
    # Built on first use: loading the lexicon takes ~0.1 s, which importing this module should not cost.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def scores(texts: Sequence[str]) -> list[float]:
    """VADER compound score of each text, in [-1, 1]; an empty or blank text scores 0.0."""
    analyzer = _analyzer()
    return [float(analyzer.polarity_scores(t)["compound"]) if t.strip() else 0.0 for t in texts]


def label(score: float) -> str:
    """ "positive" for a compound score ≥ 0.05, "negative" for ≤ -0.05, else "neutral" (VADER's convention)."""
    if score >= POSITIVE:
        return "positive"
    if score <= NEGATIVE:
        return "negative"
    return "neutral"
