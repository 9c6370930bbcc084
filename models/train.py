"""Fitting the isolation forest and calibrating its alert threshold.

The only module that imports scikit-learn: the worker and replay score with ``models.scorer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import __version__ as sklearn_version
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from models.forest import ForestModel, node_arrays, seal
from models.scorer import Scorer


def export_forest(forest: Any) -> dict[str, npt.NDArray[Any]]:
    """A fitted ``IsolationForest`` as the model file's arrays (trees concatenated)."""
    n_features = forest.n_features_in_
    lefts, rights, feats, thresholds, leaf_values, roots = [], [], [], [], [], []
    offset = 0
    for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = tree.tree_
        internal = t.children_left >= 0
        # Map the tree's own feature indices back to the model's (max_features < 1.0).
        feature = np.where(internal, np.asarray(features)[np.maximum(t.feature, 0)], -1)
        lefts.append(np.where(internal, t.children_left + offset, -1))
        rights.append(np.where(internal, t.children_right + offset, -1))
        feats.append(feature)
        thresholds.append(np.where(internal, t.threshold, 0.0))
        # scikit-learn: decision path length (root = 1) + average path length of the leaf - 1.
        leaf_values.append(t.compute_node_depths() + _average_path_length(t.n_node_samples) - 1.0)
        roots.append(offset)
        offset += t.node_count
    if n_features < 1:
        raise ValueError("the forest has no features")
    return node_arrays(lefts, rights, feats, thresholds, leaf_values, roots)


def fit_model(
    rows: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    target_alert_rate: float = 0.001,
    n_trees: int = 100,
    max_samples: int = 256,
    seed: int = 0,
    extra_metadata: dict[str, Any] | None = None,
) -> tuple[ForestModel, Any]:
    """Fit on ``rows`` (one per approved sale), calibrate the threshold so that the share of
    training rows scoring at or above it is ``target_alert_rate``, and seal the model.

    Returns the model and the fitted scikit-learn estimator (for parity checks)."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"expected rows of {len(feature_names)} features, got shape {x.shape}")
    if x.shape[0] < 50:
        raise ValueError(f"too little history to train on: {x.shape[0]} approved sales (need 50)")
    if not 0 < target_alert_rate < 0.5:
        raise ValueError(f"target alert rate must be between 0 and 0.5, got {target_alert_rate}")
    forest = IsolationForest(
        n_estimators=n_trees, max_samples=min(max_samples, x.shape[0]), random_state=seed
    )
    forest.fit(x)
    metadata: dict[str, Any] = {
        "feature_names": list(feature_names),
        "feature_medians": [float(v) for v in np.median(x, axis=0)],
        "max_samples": int(forest.max_samples_),
        "n_trees": n_trees,
        "seed": seed,
        "training_rows": int(x.shape[0]),
        "target_alert_rate": target_alert_rate,
        "threshold": 0.0,  # set below, once the scores are known
        "sklearn_version": sklearn_version,
        **(extra_metadata or {}),
    }
    provisional = seal(export_forest(forest), metadata)
    scores = Scorer(provisional).score_batch(x)
    threshold = float(np.quantile(scores, 1.0 - target_alert_rate, method="higher"))
    percentiles = [50, 90, 99, 99.9, 100]
    metadata["threshold"] = threshold
    metadata["score_distribution"] = {
        f"p{p:g}": float(v)
        for p, v in zip(percentiles, np.percentile(scores, percentiles), strict=True)
    }
    metadata["training_alert_rate"] = float(np.mean(scores >= threshold))
    return seal(provisional.arrays(), metadata), forest
