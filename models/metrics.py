"""Ranking metrics for the model's evaluation (pure NumPy; the tests check them against
scikit-learn's ``roc_auc_score`` and ``average_precision_score``, and the handbook's card
precision@k against its definition)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    n = len(values)
    while start < n:
        end = start
        while end + 1 < n and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Probability that a positive outranks a negative (ties count half); ``None`` when one
    class is absent."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Mean of the precision at each positive, scanning scores from the highest (tied scores
    are taken together, as scikit-learn does)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Thresholds at the last index of each run of equal scores.
    distinct = np.where(np.diff(s_sorted))[0]
    ends = np.r_[distinct, len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[ends]
    precision = tps / (ends + 1)
    recall_steps = np.diff(np.r_[0, tps]) / n_pos
    return float(np.sum(recall_steps * precision))


def card_precision_at_k(
    day: npt.ArrayLike,
    card: npt.ArrayLike,
    fraud: npt.ArrayLike,
    score: npt.ArrayLike,
    k: int = 100,
) -> float:
    """Card precision@k (the fraud-detection handbook's, ch. 4.2): per day, the share of
    frauded cards among the ``k`` cards scoring highest that day (a card's score: its highest
    that day; a frauded card found on an earlier day is left out, as investigators already have
    it), averaged over the days."""
    days, cards = np.asarray(day), np.asarray(card)
    frauds, scores = np.asarray(fraud, dtype=bool), np.asarray(score, dtype=np.float64)
    found: set[int] = set()
    precisions = []
    for d in np.unique(days):
        best: dict[int, tuple[float, bool]] = {}
        for i in np.flatnonzero(days == d):
            c = int(cards[i])
            if c in found:
                continue
            top_score, hit = best.get(c, (-np.inf, False))
            best[c] = (max(top_score, float(scores[i])), hit or bool(frauds[i]))
        top = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        detected = [c for c, (_, hit) in top if hit]
        precisions.append(len(detected) / k)
        found.update(detected)
    return float(np.mean(precisions))
