"""Fitting the gradient-boosted model on outcomes, exported to the model file's arrays.

scikit-learn's ``HistGradientBoostingClassifier``: it is fast on the few hundred thousand rows a
fleet's history gives, copes with the imbalance of fraud (a fraction of a percent of sales) without
resampling, and its trees are plain threshold splits the compiled walk takes as they are. The
settings are deliberately conservative (a small learning rate, few leaves, leaves of at least 40
sales, L2 regularisation, early stopping on a held-out tenth): a fleet's confirmed frauds are few,
and a model that memorises them alerts on nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import __version__ as sklearn_version
from sklearn.ensemble import HistGradientBoostingClassifier

from models.forest import ForestModel, node_arrays, seal
from models.scorer import Scorer

MIN_FRAUDS = 20
"""Fewer confirmed frauds among the training sales than this, and there is nothing to learn from:
``posguard train`` keeps to the isolation forest."""


def export_boosted(model: Any) -> dict[str, npt.NDArray[Any]]:
    """A fitted binary ``HistGradientBoostingClassifier`` as the model file's arrays: first a
    single leaf holding the baseline log-odds, then every tree; leaf values negated."""
    if model.n_trees_per_iteration_ != 1:
        raise ValueError("only a two-class model can be exported")
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    lefts: list[Any] = [[-1]]
    rights: list[Any] = [[-1]]
    feats: list[Any] = [[-1]]
    thresholds: list[Any] = [[0.0]]
    leaf_values: list[Any] = [[-baseline]]
    roots = [0]
    offset = 1
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits cannot be exported")
        leaf = nodes["is_leaf"].astype(bool)
        lefts.append(np.where(leaf, -1, nodes["left"].astype(np.int64) + offset))
        rights.append(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset))
        feats.append(np.where(leaf, -1, nodes["feature_idx"]))
        thresholds.append(np.where(leaf, 0.0, nodes["num_threshold"]))
        leaf_values.append(np.where(leaf, -nodes["value"], 0.0))
        roots.append(offset)
        offset += len(nodes)
    return node_arrays(lefts, rights, feats, thresholds, leaf_values, roots)


def fit_boosted(
    rows: npt.ArrayLike,
    labels: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    target_alert_rate: float = 0.001,
    seed: int = 0,
    extra_metadata: dict[str, Any] | None = None,
) -> tuple[ForestModel, Any]:
    """Fit on ``rows`` with ``labels`` (1: the sale was fraud), calibrate the threshold so that
    the share of training rows scoring at or above it is ``target_alert_rate``, and seal the
    model. Returns the model and the fitted scikit-learn estimator (for parity checks)."""
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(feature_names) or y.shape != (x.shape[0],):
        raise ValueError(
            f"expected rows of {len(feature_names)} features and one label each, got "
            f"{x.shape} and {y.shape}"
        )
    frauds = int(y.sum())
    if frauds < MIN_FRAUDS or x.shape[0] - frauds < MIN_FRAUDS:
        raise ValueError(
            f"too few outcomes to learn from: {frauds} frauds among {x.shape[0]} sales "
            f"(need {MIN_FRAUDS} of each)"
        )
    if not 0 < target_alert_rate < 0.5:
        raise ValueError(f"target alert rate must be between 0 and 0.5, got {target_alert_rate}")
    settings = {
        "learning_rate": 0.05,
        "max_iter": 300,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
    }
    fitted = HistGradientBoostingClassifier(random_state=seed, **settings).fit(x, y)
    metadata: dict[str, Any] = {
        "feature_names": list(feature_names),
        "feature_medians": [float(v) for v in np.median(x, axis=0)],
        "n_trees": int(fitted.n_iter_) + 1,
        "seed": seed,
        "training_rows": int(x.shape[0]),
        "training_frauds": frauds,
        "boosting": settings,
        "target_alert_rate": target_alert_rate,
        "threshold": 0.5,  # set below, once the scores are known
        "sklearn_version": sklearn_version,
        **(extra_metadata or {}),
    }
    arrays = export_boosted(fitted)
    scores = Scorer(seal(arrays, metadata, boosted=True)).score_batch(x)
    threshold = float(np.quantile(scores, 1.0 - target_alert_rate, method="higher"))
    percentiles = [50, 90, 99, 99.9, 100]
    metadata["threshold"] = min(max(threshold, 1e-9), 1.0 - 1e-9)
    metadata["score_distribution"] = {
        f"p{p:g}": float(v)
        for p, v in zip(percentiles, np.percentile(scores, percentiles), strict=True)
    }
    metadata["training_alert_rate"] = float(np.mean(scores >= metadata["threshold"]))
    return seal(arrays, metadata, boosted=True), fitted
