"""Our ROC-AUC and average precision agree with scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import average_precision, roc_auc


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(400) < 0.1
    scores = np.round(rng.random(400) + labels * 0.3, 1)  # rounding makes ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_one_class_has_no_auc() -> None:
    assert roc_auc([False, False], [0.1, 0.2]) is None
    assert average_precision([False, False], [0.1, 0.2]) is None
