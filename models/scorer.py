"""Scoring with the forest's arrays: the same numbers as ``IsolationForest.score_samples``.

Two paths over one ``ForestModel``:

- **per event** (``Scorer.score``): the trees are turned into one Python function made of nested
  comparisons (``x3 <= 0.25``) whose leaves are constants, compiled once per model. Walking 100
  trees then costs a few hundred bytecode comparisons, microseconds rather than the milliseconds
  scikit-learn spends validating and dispatching a single row. The generated source contains only
  numbers read from the verified model arrays (floats written with ``repr``, feature indices as
  integers), never text from the file, so compiling it runs nothing the file could inject.
- **the alert decision** (``Scorer.score_if_anomalous``): a walk that gives up as soon as the
  trees walked so far, plus the shortest path each remaining tree has, already make the row too
  ordinary to reach the threshold. Most sales are ordinary, so most walks stop part-way; a row
  that is not given up on is scored by ``score``, so its score is exactly ``score``'s.
- **batched** (``Scorer.score_batch``): a vectorised walk of every row through every tree at once,
  one NumPy step per tree level.

Scores follow the usual isolation-forest convention: ``anomaly = 2 ** (-mean_path / c(n))`` in
(0, 1], higher is more anomalous; ``score_samples`` returns its negative, like scikit-learn.
Inputs are rounded to float32 first, because scikit-learn's trees compare float32 inputs.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.forest import ForestModel

RowFunction = Callable[..., float]
CappedRowFunction = Callable[..., float | None]

_CHECK_EVERY = 4
"""Trees walked between two give-up checks in the capped walk (a check costs about an eighth of a
tree; checking every tree would give up at most three trees sooner)."""
_CAP_MARGIN = 1e-6
"""Path-length slack before giving up: far above the rounding of a sum of 100 path lengths
(~1e-13), far below anything a threshold can resolve, so giving up never flips a decision."""


def _tree_expression(model: ForestModel, root: int) -> str:
    feature, threshold = model.feature, model.threshold
    left, right, leaf = model.left, model.right, model.leaf_value

    def expr(node: int) -> str:
        f = int(feature[node])
        if f < 0:
            return repr(float(leaf[node]))
        return (
            f"({expr(int(left[node]))} if x{f} <= {float(threshold[node])!r} "
            f"else {expr(int(right[node]))})"
        )

    return expr(root)


def _compile(model: ForestModel, name: str, lines: list[str]) -> Any:
    namespace: dict[str, Any] = {}
    code = compile("\n".join(lines), f"<posguard forest {model.version}>", "exec")
    exec(code, {"__builtins__": {}}, namespace)
    return namespace[name]


def _parameters(model: ForestModel) -> str:
    return ", ".join(f"x{i}" for i in range(len(model.feature_names)))


def compile_forest(model: ForestModel) -> RowFunction:
    """A function of the features (positional, float32-rounded) returning the summed path
    length over all trees."""
    lines = [f"def forest_path_length({_parameters(model)}):", "    d = 0.0"]
    lines.extend(f"    d += {_tree_expression(model, int(r))}" for r in model.roots)
    lines.append("    return d")
    fn: RowFunction = _compile(model, "forest_path_length", lines)
    return fn


def shortest_paths(model: ForestModel) -> list[float]:
    """Per tree, the smallest path length any row can get from it (its shallowest leaf)."""
    ends = [*(int(r) for r in model.roots[1:]), len(model.feature)]
    shortest = []
    for root, end in zip(model.roots, ends, strict=True):
        tree = slice(int(root), end)
        shortest.append(float(model.leaf_value[tree][model.feature[tree] < 0].min()))
    return shortest


def _path_of(model: ForestModel, root: int, row: Sequence[float]) -> float:
    node = root
    while model.feature[node] >= 0:
        go_left = row[int(model.feature[node])] <= model.threshold[node]
        node = int(model.left[node] if go_left else model.right[node])
    return float(model.leaf_value[node])


def compile_capped_forest(
    model: ForestModel, cap: float, typical: Sequence[float]
) -> CappedRowFunction:
    """A function of the features (as ``compile_forest``'s) that returns ``None`` as soon as the
    summed path length is sure to exceed ``cap``, else a sum that may not (not the exact one:
    recompute it with ``compile_forest``'s function).

    Every few trees, the sum so far plus the shortest path of every tree still to walk is
    compared with ``cap``. Trees are walked in the order that gives up soonest on ``typical``
    (the training medians): most first, the trees whose path for it is longest beyond their
    shortest.
    """
    roots = [int(r) for r in model.roots]
    shortest = shortest_paths(model)
    row = array("f", typical)
    excess = [_path_of(model, root, row) - low for root, low in zip(roots, shortest, strict=True)]
    order = sorted(range(len(roots)), key=lambda k: (-excess[k], k))
    lines = [f"def forest_path_length_capped({_parameters(model)}):", "    d = 0.0"]
    for walked, k in enumerate(order, start=1):
        lines.append(f"    d += {_tree_expression(model, roots[k])}")
        if walked % _CHECK_EVERY == 0 and walked < len(order):
            bound = cap + _CAP_MARGIN - math.fsum(shortest[j] for j in order[walked:])
            lines.append(f"    if d > {bound!r}:")
            lines.append("        return None")
    lines.append("    return d")
    fn: CappedRowFunction = _compile(model, "forest_path_length_capped", lines)
    return fn


class Scorer:
    """Scores feature rows with one model. Rows are never modified."""

    def __init__(self, model: ForestModel) -> None:
        self.model = model
        self.feature_names = model.feature_names
        self.threshold = model.threshold_score
        self.version = model.version
        self._medians = [float(v) for v in model.metadata["feature_medians"]]
        self._normaliser = model.normaliser
        self._path_length = compile_forest(model)
        # score >= threshold  <=>  summed path length <= -normaliser * log2(threshold)
        cap = -self._normaliser * math.log2(self.threshold) if self.threshold > 0 else None
        self._capped = None if cap is None else compile_capped_forest(model, cap, self._medians)
        self._index = {name: i for i, name in enumerate(self.feature_names)}

    # -- one row --------------------------------------------------------------------------------

    def score(self, row: Sequence[float]) -> float:
        """Anomaly score in (0, 1] of one row in the model's feature order; higher is stranger."""
        return float(2.0 ** (-self._path_length(*array("f", row)) / self._normaliser))

    def score_if_anomalous(self, row: Sequence[float]) -> float | None:
        """``score(row)`` when it reaches the threshold, else ``None``; cheaper than ``score``
        for ordinary rows, which it gives up on part-way through the forest."""
        capped = self._capped
        if capped is not None and capped(*array("f", row)) is None:
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

    def is_anomalous(self, score: float) -> bool:
        return score >= self.threshold

    # -- batches --------------------------------------------------------------------------------

    def score_batch(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Anomaly scores of a 2-D batch (rows x features in the model's order)."""
        x = np.asarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected rows of {len(self.feature_names)} features, got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            x = np.where(np.isfinite(x), x, np.asarray(self._medians, dtype=np.float32))
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
            go_left = values <= m.threshold[nodes]
            step = np.where(go_left, m.left[nodes], m.right[nodes])
            nodes = np.where(internal, step, nodes)
        depths = np.zeros(n_rows)
        for column in m.leaf_value[nodes].T:  # tree by tree, as scikit-learn adds them
            depths += column
        return np.asarray(2.0 ** (-depths / self._normaliser), dtype=np.float64)

    def score_samples(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """scikit-learn's convention: the negated anomaly score (lower is stranger)."""
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
