"""The gradient-boosted model: the same probabilities as scikit-learn's ``predict_proba`` from
the model file's arrays, the same decisions from the walk that gives up early, and training that
chooses it when outcomes confirm enough frauds (on the handbook's simulator, written elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.boosted import MIN_FRAUDS, fit_boosted
from models.forest import ModelFileError, load_model, model_bytes, model_from_bytes, save_model
from models.scorer import Scorer
from streams.simulate.handbook import (
    HandbookSettings,
    generate,
    write_feedback,
    write_transactions,
)

NAMES = ["a", "b", "c", "d", "e"]


def _data(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=n)) > 2.2
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_are_predict_proba_s_and_decisions_match(seed: int) -> None:
    x, y = _data(seed)
    model, fitted = fit_boosted(x, y, NAMES, target_alert_rate=0.02, seed=seed)
    scorer = Scorer(model)
    test = np.random.default_rng(seed + 100).normal(scale=1.5, size=(3000, len(NAMES)))
    expected = fitted.predict_proba(test)[:, 1]
    one_by_one = np.array([scorer.score(list(r)) for r in test])
    assert np.max(np.abs(one_by_one - expected)) <= 1e-15
    assert np.max(np.abs(scorer.score_batch(test) - expected)) <= 1e-12
    decided = [scorer.score_if_anomalous(list(r)) is not None for r in test]
    assert decided == list(one_by_one >= scorer.threshold)
    assert 0 < sum(decided) < len(test)
    assert model.version.startswith("gb-") and model.boosted


def test_the_model_file_round_trips_and_damage_is_refused(tmp_path: Path) -> None:
    x, y = _data(3)
    model, _ = fit_boosted(x, y, NAMES)
    path = tmp_path / "gb.npz"
    save_model(model, path)
    again = load_model(path)
    assert again.metadata == model.metadata and again.boosted
    rows = x[:200]
    assert np.array_equal(Scorer(again).score_batch(rows), Scorer(model).score_batch(rows))
    arrays = {k: v.copy() for k, v in model.arrays().items()}
    arrays["leaf_value"][5] += 0.25
    contents: dict[str, Any] = {
        "metadata": np.frombuffer(json.dumps(model.metadata).encode(), dtype=np.uint8),
        **arrays,
    }
    np.savez(tmp_path / "bad.npz", **contents)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "bad.npz")
    assert model_from_bytes(model_bytes(model), "memory").version == model.version


def test_too_few_confirmed_frauds_are_refused() -> None:
    x, _ = _data(4, 500)
    y = np.zeros(len(x), dtype=bool)
    y[: MIN_FRAUDS - 1] = True
    with pytest.raises(ValueError, match="too few outcomes"):
        fit_boosted(x, y, NAMES)


def _posguard(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "posguard"
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def handbook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("handbook")
    settings = HandbookSettings(customers=600, terminals=400, days=45, seed=5)
    data = generate(settings)
    txns, outcomes = root / "t.jsonl", root / "f.jsonl"
    write_transactions(data, settings, txns)
    write_feedback(data, settings, outcomes)
    return txns, outcomes


def test_train_chooses_boosting_with_outcomes_and_says_so(
    handbook: tuple[Path, Path], tmp_path: Path
) -> None:
    txns, outcomes = handbook
    model = tmp_path / "gb.npz"
    args = ["train", "--transactions", str(txns), "--out", str(model)]
    trained = _posguard(*args, "--feedback", str(outcomes), "--train-from", "2018-04-15T00:00:00Z")
    assert trained.returncode == 0, trained.stderr
    assert "gradient-boosted trees, supervised" in trained.stderr
    meta = load_model(model).metadata
    assert meta["training_window"]["from"] >= "2018-04-15" and meta["training_frauds"] >= 20
    info = _posguard("model", "info", str(model))
    assert "kind              gradient-boosted trees" in info.stdout
    forest = tmp_path / "if.npz"
    told = _posguard(*args[:-1], str(forest), "--feedback", str(outcomes), "--scorer",
                     "isolation-forest")  # fmt: skip
    assert told.returncode == 0, told.stderr
    assert "isolation forest, unsupervised" in _posguard("model", "info", str(forest)).stdout
    assert load_model(forest).metadata["chosen_because"] == "asked for"
    blind = _posguard(*args[:-1], str(forest))
    assert blind.returncode == 0 and not load_model(forest).boosted

    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    refused = _posguard(*args[:-1], str(forest), "--feedback", str(empty), "--scorer",
                        "gradient-boosting")  # fmt: skip
    assert refused.returncode == 2 and "too few outcomes" in refused.stderr

    lines = tmp_path / "s.jsonl"
    lines.write_text("")
    out = tmp_path / "alerts.jsonl"
    replayed = _posguard(
        "replay", "--transactions", str(txns), "--settlements", str(lines), "--feedback",
        str(outcomes), "--model", str(model), "--out", str(out),
        "--dead-letter", str(tmp_path / "dead.jsonl"),
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert "outcomes learnt:" in replayed.stderr
    found = [json.loads(x) for x in out.read_text().splitlines()]
    suspicious = [a for a in found if a["type"] == "SUSPICIOUS_PATTERN"]
    assert suspicious
    assert all("fraud probability" in a["summary"] for a in suspicious)
    assert {a["details"]["model_kind"] for a in suspicious} == {"gradient-boosted trees"}
    words = " ".join(a["summary"] for a in suspicious)
    assert "confirmed" in words  # outcome features, explained in words
