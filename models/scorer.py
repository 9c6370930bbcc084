"""Scoring with the forest's arrays: the same numbers as ``IsolationForest.score_samples``.

Two walks over one ``ForestModel``, both in ``models.walk`` (compiled, over native arrays):

- **per event** (``Scorer.score``): every tree, a few machine loads and one comparison per node,
  about a microsecond per row instead of the milliseconds scikit-learn spends validating and
  dispatching a single row.
- **the alert decision** (``Scorer.score_if_anomalous``): a walk that gives up as soon as the
  trees walked so far, plus the shortest path each remaining tree has, already make the row too
  ordinary to reach the threshold. Most sales are ordinary, so most walks stop part-way; a row
  that is not given up on is scored by ``score``, so its score is exactly ``score``'s.
- **batched** (``Scorer.score_batch``): a vectorised walk of every row through every tree at once,
  one NumPy step per tree level.

Scores follow the usual isolation-forest convention: ``anomaly = 2 ** (-mean_path / c(n))`` in
(0, 1], higher is more anomalous; ``score_samples`` returns its negative, like scikit-learn.
scikit-learn's isolation trees compare inputs rounded to float32; the walks compare unrounded
inputs with thresholds moved to where that rounding would put them (``float32_cuts``), which
decides the same. A gradient-boosted model's sum is its negated log-odds (``models.forest``), its
score the fraud probability ``1 / (1 + exp(sum))``, as ``predict_proba`` gives it; its trees
compare float64, as scikit-learn's do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from models.forest import ForestModel
from models.walk import NOT_REACHED, ForestWalk

_CAP_MARGIN = 1e-6
"""Path-length slack before giving up: far above the rounding of a sum of 100 path lengths
(~1e-13), far below anything a threshold can resolve, so giving up never flips a decision."""


def float32_cuts(threshold: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per threshold ``t``, the largest double ``c`` such that, for every double ``x``,
    ``x <= c`` exactly when ``float32(x) <= t`` (round to nearest, ties to even).

    Rounding is monotone, so the ``x`` that round to at most ``t`` are those up to the midpoint
    between ``f``, the largest float32 not above ``t``, and the next float32; the midpoint itself
    rounds to whichever of the two has an even significand. ``|t|`` must be below float32's
    largest value (the model file check ensures it).
    """
    t = np.asarray(threshold, dtype=np.float64)
    rounded = t.astype(np.float32)
    with np.errstate(over="ignore"):  # np.where computes both sides; the one used is finite
        stepped = np.nextafter(rounded, np.float32(-np.inf))
    below = np.where(rounded.astype(np.float64) > t, stepped, rounded)
    above = np.nextafter(below, np.float32(np.inf))
    middle = (below.astype(np.float64) + above.astype(np.float64)) / 2
    to_below = (below.view(np.uint32) & 1) == 0
    return np.where(to_below, middle, np.nextafter(middle, -np.inf))


def shortest_paths(model: ForestModel) -> list[float]:
    """Per tree, the smallest path length any row can get from it (its shallowest leaf)."""
    ends = [*(int(r) for r in model.roots[1:]), len(model.feature)]
    shortest = []
    for root, end in zip(model.roots, ends, strict=True):
        tree = slice(int(root), end)
        shortest.append(float(model.leaf_value[tree][model.feature[tree] < 0].min()))
    return shortest


def forest_walk(model: ForestModel, cap: float | None, typical: Sequence[float]) -> ForestWalk:
    """The model's walk. With ``cap`` (a summed path length), ``path_length_within`` gives up
    once the sum so far plus the shortest path of every tree still to walk exceeds it. Trees
    are walked in the order that gives up soonest on ``typical`` (the training medians): first
    the trees whose path for it is longest beyond their shortest."""
    internal = model.feature >= 0
    if model.boosted:
        cut = np.where(internal, model.threshold, 0.0)
    else:
        cut = np.where(internal, float32_cuts(np.where(internal, model.threshold, 0.0)), 0.0)
    walk = ForestWalk(
        model.feature.tolist(),
        cut.tolist(),
        model.left.tolist(),
        model.right.tolist(),
        model.leaf_value.tolist(),
        model.roots.tolist(),
        len(model.feature_names),
    )
    if cap is not None:
        shortest = shortest_paths(model)
        trees = range(len(shortest))
        excess = [walk.tree_path_length(typical, k) - shortest[k] for k in trees]
        order = sorted(trees, key=lambda k: (-excess[k], k))
        bounds = [
            cap + _CAP_MARGIN - math.fsum(shortest[j] for j in order[walked:])
            for walked in range(1, len(order) + 1)
        ]
        walk.set_cap(order, bounds)
    return walk


def _probability(negated_log_odds: float) -> float:
    if negated_log_odds > 700.0:  # exp would overflow; the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(negated_log_odds))


class Scorer:
    """Scores feature rows with one model. Rows are never modified."""

    def __init__(self, model: ForestModel) -> None:
        self.model = model
        self.feature_names = model.feature_names
        self.threshold = model.threshold_score
        self.version = model.version
        self._medians = [float(v) for v in model.metadata["feature_medians"]]
        self._boosted = model.boosted
        self._normaliser = 1.0 if self._boosted else model.normaliser
        cap: float | None
        if self._boosted:
            # probability >= threshold  <=>  negated log-odds <= log((1 - t) / t)
            t = self.threshold
            cap = math.log((1.0 - t) / t) if 0.0 < t < 1.0 else None
        else:
            # score >= threshold  <=>  summed path length <= -normaliser * log2(threshold)
            cap = -self._normaliser * math.log2(self.threshold) if self.threshold > 0 else None
        self._walk = forest_walk(model, cap, self._medians)
        self._capped = cap is not None
        self._index = {name: i for i, name in enumerate(self.feature_names)}

    # -- one row --------------------------------------------------------------------------------

    def score(self, row: Sequence[float]) -> float:
        """Score of one row in the model's feature order, higher is likelier fraud: the anomaly
        score in (0, 1], or the boosted model's fraud probability."""
        total = self._walk.path_length(row)
        if self._boosted:
            return _probability(total)
        return float(2.0 ** (-total / self._normaliser))

    def score_if_anomalous(self, row: Sequence[float]) -> float | None:
        """``score(row)`` when it reaches the threshold, else ``None``; cheaper than ``score``
        for ordinary rows, which it gives up on part-way through the forest."""
        if self._capped and self._walk.path_length_within(row) == NOT_REACHED:
            return None
        score = self.score(row)
        return score if score >= self.threshold else None

    def score_mapping(self, values: Mapping[str, float]) -> float:
        """Score a row given by feature name; a missing or non-finite feature takes its training
        median (so a model trained with a feature the caller lacks still scores)."""
        return self.score(self.row_from_mapping(values))

    def row_from_mapping(self, values: Mapping[str, float]) -> list[float]:
        row = list(self._medians)
        for name, i in self._index.items():
            value = values.get(name)
            if value is not None and math.isfinite(value):
                row[i] = float(value)
        return row

    # -- batches --------------------------------------------------------------------------------

    def score_batch(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Anomaly scores of a 2-D batch (rows x features in the model's order)."""
        x = np.asarray(rows, dtype=np.float64 if self._boosted else np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected rows of {len(self.feature_names)} features, got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            x = np.where(np.isfinite(x), x, np.asarray(self._medians, dtype=x.dtype))
        m = self.model
        n_rows = x.shape[0]
        nodes = np.broadcast_to(m.roots, (n_rows, len(m.roots))).copy()
        row_index = np.arange(n_rows)[:, None]
        while True:
            feat = m.feature[nodes]
            internal = feat >= 0
            if not internal.any():
                break
            values = x[row_index, np.where(internal, feat, 0)]
            go_left = np.less_equal(values, m.threshold[nodes])
            step = np.where(go_left, m.left[nodes], m.right[nodes])
            nodes = np.where(internal, step, nodes)
        depths = np.zeros(n_rows)
        for column in m.leaf_value[nodes].T:  # tree by tree, as scikit-learn adds them
            depths += column
        if self._boosted:
            with np.errstate(over="ignore"):
                return np.asarray(1.0 / (1.0 + np.exp(depths)), dtype=np.float64)
        return np.asarray(2.0 ** (-depths / self._normaliser), dtype=np.float64)

    def score_samples(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """scikit-learn's isolation-forest convention: the negated score (lower is stranger)."""
        return -self.score_batch(rows)

    # -- explanations ---------------------------------------------------------------------------

    def contributions(self, row: Sequence[float]) -> list[tuple[int, float]]:
        """How much each feature drives this row's score: the drop in anomaly score when that
        feature alone is set to its training median. Largest first."""
        base = self.score(row)
        out: list[tuple[int, float]] = []
        for i, median in enumerate(self._medians):
            if row[i] == median:
                out.append((i, 0.0))
                continue
            changed = list(row)
            changed[i] = median
            out.append((i, base - self.score(changed)))
        out.sort(key=lambda item: (-item[1], item[0]))
        return out
