"""The forest walk over native arrays (compiled by mypyc, see ``setup.py``).

Nodes live in ``librt.vecs`` vectors of unboxed ``i64`` and ``float``, so a step down a tree is a
few machine loads and one comparison: about five times cheaper than the same tree as generated
Python comparisons, and no compilation per model. Without the compiled build the same code runs
interpreted (slowly, with the same results).

Comparisons take ``cut`` thresholds (see ``models.scorer.float32_cuts``): ``x <= cut`` decides
exactly as scikit-learn's ``float32(x) <= threshold``, so rows are walked as they are given,
without rounding them first.
"""

from __future__ import annotations

from collections.abc import Sequence

from librt.vecs import vec
from mypy_extensions import i64

NOT_REACHED = -1.0
"""``ForestWalk.path_length_within``'s answer when the summed path length surely exceeds its cap."""


class ForestWalk:
    """One forest's nodes (all trees concatenated, child indices global, ``-1`` at leaves)."""

    def __init__(
        self,
        feature: list[int],
        cut: list[float],
        left: list[int],
        right: list[int],
        leaf_value: list[float],
        roots: list[int],
        n_features: int,
    ) -> None:
        self.feature = vec[i64](feature)
        self.cut = vec[float](cut)
        self.left = vec[i64](left)
        self.right = vec[i64](right)
        self.leaf_value = vec[float](leaf_value)
        self.roots = vec[i64](roots)
        self.n_features: i64 = n_features
        # The capped walk's tree order and, after each tree, the bound on the sum so far.
        self.capped_roots = vec[i64]()
        self.bounds = vec[float]()

    def set_cap(self, order: list[int], bounds: list[float]) -> None:
        """Walk trees in ``order`` (indices into ``roots``) for ``path_length_within``, giving up
        once the sum after the k-th tree walked exceeds ``bounds[k]``."""
        self.capped_roots = vec[i64]([self.roots[k] for k in order])
        self.bounds = vec[float](bounds)

    def _row(self, row: Sequence[float]) -> vec[float]:
        if len(row) != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {len(row)}")
        return vec[float](row)

    def _leaf(self, x: vec[float], root: i64) -> i64:
        feature, cut, left, right = self.feature, self.cut, self.left, self.right
        node = root
        f = feature[node]
        while f >= 0:
            node = left[node] if x[f] <= cut[node] else right[node]
            f = feature[node]
        return node

    def tree_path_length(self, row: Sequence[float], tree: i64) -> float:
        """The path length of ``row`` in one tree (``tree`` indexes ``roots``)."""
        return self.leaf_value[self._leaf(self._row(row), self.roots[tree])]

    def path_length(self, row: Sequence[float]) -> float:
        """The path lengths of ``row`` summed over every tree, in the forest's own tree order
        (scikit-learn's order of summation, so the same float)."""
        x = self._row(row)
        roots, leaf_value = self.roots, self.leaf_value
        total = 0.0
        i: i64 = 0
        n: i64 = len(roots)
        while i < n:
            total += leaf_value[self._leaf(x, roots[i])]
            i += 1
        return total

    def path_length_within(self, row: Sequence[float]) -> float:
        """``NOT_REACHED`` as soon as the sum is sure to exceed the cap (see ``set_cap``), else a
        sum that may not (in the capped order: recompute it with ``path_length``)."""
        x = self._row(row)
        roots, bounds, leaf_value = self.capped_roots, self.bounds, self.leaf_value
        total = 0.0
        i: i64 = 0
        n: i64 = len(roots)
        while i < n:
            total += leaf_value[self._leaf(x, roots[i])]
            if total > bounds[i]:
                return NOT_REACHED
            i += 1
        return total
