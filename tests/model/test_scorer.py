"""The scorer against scikit-learn, and the contract every scorer must keep."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import FEATURE_NAMES
from models.forest import ForestModel
from models.scorer import Scorer, float32_cuts
from models.train import fit_model
from tests.model.conftest import Trained

PARITY = 1e-9


def test_parity_on_real_feature_rows(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    rows = trained.rows[:: max(1, len(trained.rows) // 3000)]
    expected = trained.forest.score_samples(rows)
    one_by_one = np.asarray([-scorer.score(r) for r in rows.tolist()])
    assert np.max(np.abs(one_by_one - expected)) <= PARITY
    assert np.max(np.abs(scorer.score_samples(rows) - expected)) <= PARITY


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_on_random_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.01, 1000, size=6)
    train = rng.standard_normal((3000, 6)) * scales
    model, forest = fit_model(train, [f"f{i}" for i in range(6)], seed=seed, n_trees=60)
    scorer = Scorer(model)
    # Fresh rows, rows far outside the training range, and rows sitting exactly on thresholds
    # (where float32 rounding decides the branch).
    fresh = rng.standard_normal((500, 6)) * scales * 3
    on_thresholds = np.tile(np.median(train, axis=0), (200, 1))
    internal = model.feature >= 0
    for i in range(200):
        node = rng.choice(np.flatnonzero(internal))
        on_thresholds[i, model.feature[node]] = model.threshold[node]
    rows = np.vstack([fresh, on_thresholds, train[:300]])
    expected = forest.score_samples(rows)
    assert np.max(np.abs([-scorer.score(r) for r in rows.tolist()] - expected)) <= PARITY
    assert np.max(np.abs(scorer.score_samples(rows) - expected)) <= PARITY


def _with_threshold(model: ForestModel, threshold: float) -> Scorer:
    return Scorer(dataclasses.replace(model, metadata={**model.metadata, "threshold": threshold}))


def test_the_early_giving_up_walk_decides_exactly_like_the_full_score(trained: Trained) -> None:
    """``score_if_anomalous`` gives up on ordinary rows part-way: it must still flag exactly the
    rows ``score`` puts at or above the threshold, with the same score, including a row whose
    score is the threshold itself."""
    rows = trained.rows[:: max(1, len(trained.rows) // 2000)].tolist()
    full = Scorer(trained.model)
    scores = [full.score(r) for r in rows]
    ranked = sorted(range(len(rows)), key=scores.__getitem__)
    for at in (ranked[-1], ranked[-3], ranked[len(ranked) // 2], ranked[0]):
        scorer = _with_threshold(trained.model, scores[at])
        decided = [scorer.score_if_anomalous(r) for r in rows]
        assert decided == [s if s >= scores[at] else None for s in scores]
        assert decided[at] == scores[at]
    assert full.score_if_anomalous(rows[ranked[0]]) is None


def test_same_seed_same_model(trained: Trained) -> None:
    again, _ = fit_model(trained.rows, FEATURE_NAMES, seed=3)
    assert again.metadata["checksum"] == trained.model.metadata["checksum"]
    other, _ = fit_model(trained.rows, FEATURE_NAMES, seed=4)
    assert other.metadata["checksum"] != trained.model.metadata["checksum"]


def test_rows_are_not_mutated(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    row = trained.rows[0].tolist()
    kept = copy.deepcopy(row)
    scorer.score(row)
    scorer.contributions(row)
    scorer.score_mapping(dict(zip(FEATURE_NAMES, row, strict=True)))
    assert row == kept
    batch = trained.rows[:50].copy()
    scorer.score_batch(batch)
    assert np.array_equal(batch, trained.rows[:50])


def test_feature_order_is_taken_from_the_metadata(trained: Trained) -> None:
    order = list(reversed(FEATURE_NAMES))
    permuted_rows = trained.rows[:, ::-1]
    model, forest = fit_model(permuted_rows, order, seed=3, n_trees=30)
    scorer = Scorer(model)
    assert scorer.feature_names == order
    row = trained.rows[7].tolist()
    by_name = scorer.score_mapping(dict(zip(FEATURE_NAMES, row, strict=True)))
    assert by_name == pytest.approx(-forest.score_samples(permuted_rows[7:8])[0], abs=PARITY)


def test_missing_features_take_the_training_median(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    medians = trained.model.metadata["feature_medians"]
    assert scorer.row_from_mapping({}) == medians
    partial = {"amount_vs_merchant": 3.0, "entry_risk": float("nan")}
    row = scorer.row_from_mapping(partial)
    assert row[0] == 3.0
    assert row[FEATURE_NAMES.index("entry_risk")] == medians[FEATURE_NAMES.index("entry_risk")]
    assert scorer.score_mapping(partial) == scorer.score(row)
    with_nan = trained.rows[:3].copy()
    with_nan[0, 2] = np.nan
    filled = with_nan.copy()
    filled[0, 2] = medians[2]
    assert np.array_equal(scorer.score_batch(with_nan), scorer.score_batch(filled))


def test_contributions_rank_the_feature_that_was_changed(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    row = list(trained.model.metadata["feature_medians"])
    row[FEATURE_NAMES.index("amount_vs_merchant")] = 4.0  # 55x the merchant's typical sale
    row[FEATURE_NAMES.index("entry_risk")] = 2.0  # keyed
    top = [FEATURE_NAMES[i] for i, drop in scorer.contributions(row)[:2] if drop > 0]
    assert set(top) == {"amount_vs_merchant", "entry_risk"}
    assert scorer.score(row) > scorer.score(trained.model.metadata["feature_medians"])


def test_calibrated_threshold_gives_the_target_rate(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    rate = float(np.mean(scorer.score_batch(trained.rows) >= scorer.threshold))
    assert rate == pytest.approx(0.001, rel=0.3)
    meta = trained.model.metadata
    assert meta["training_rows"] == len(trained.rows)
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert set(meta["score_distribution"]) == {"p50", "p90", "p99", "p99.9", "p100"}


def test_fit_refuses_too_little_history() -> None:
    with pytest.raises(ValueError, match="too little history"):
        fit_model(np.zeros((10, 3)), ["a", "b", "c"])


def test_model_needing_unknown_features_is_refused(trained: Trained) -> None:
    from streams.config import Config
    from streams.engine import Engine

    model, _ = fit_model(trained.rows[:, :2], ["amount_vs_merchant", "mystery"], n_trees=5)
    with pytest.raises(ValueError, match="mystery"):
        Engine(Config(), Scorer(model))
    assert isinstance(model, ForestModel)


def _as_float32(x: float) -> float:
    with np.errstate(over="ignore"):  # beyond float32's range is inf, as scikit-learn casts
        return float(np.float32(x))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


@settings(max_examples=400, deadline=None)
@given(
    threshold=st.floats(min_value=-_FLOAT32_MAX, max_value=_FLOAT32_MAX, exclude_max=True),
    step=st.integers(min_value=-3, max_value=3),
    offset=st.floats(min_value=-2.0, max_value=2.0),
)
def test_a_cut_decides_like_float32_rounding_then_the_threshold(
    threshold: float, step: int, offset: float
) -> None:
    """The walk compares unrounded inputs with ``float32_cuts``; scikit-learn rounds to float32
    first. Probed where it matters: on the cut, its neighbouring doubles, the float32 values
    around the threshold and the midpoints between them (ties round to even)."""
    if threshold == -_FLOAT32_MAX:
        return  # excluded like the maximum: the model file refuses |t| >= float32's largest
    cut = float(float32_cuts(np.asarray([threshold]))[0])
    with np.errstate(over="ignore"):  # stepping past float32's largest value gives inf
        near = np.float32(threshold)
        for _ in range(abs(step)):
            near = np.nextafter(near, np.float32(np.inf if step > 0 else -np.inf))
        neighbour = np.nextafter(near, np.float32(np.inf))
    midpoint = (float(near) + float(neighbour)) / 2
    probes = [
        cut,
        float(np.nextafter(cut, np.inf)),
        float(np.nextafter(cut, -np.inf)),
        float(near),
        midpoint,
        float(np.nextafter(midpoint, np.inf)),
        float(np.nextafter(midpoint, -np.inf)),
        threshold,
        threshold + offset,
        threshold * (1 + offset / 1e6),
    ]
    for x in probes:
        assert (x <= cut) == (_as_float32(x) <= threshold), (x, threshold, cut)


def test_rows_of_the_wrong_length_are_refused(trained: Trained) -> None:
    scorer = Scorer(trained.model)
    row = trained.rows[0].tolist()
    for wrong in (row[:-1], [*row, 0.0]):
        with pytest.raises(ValueError, match=f"expected {len(row)} features"):
            scorer.score(wrong)
        with pytest.raises(ValueError, match=f"expected {len(row)} features"):
            scorer.score_if_anomalous(wrong)
