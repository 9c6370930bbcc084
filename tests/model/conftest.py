"""A trained model shared by the model tests: simulate a week of history, train on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from models.features import FEATURE_NAMES
from models.forest import ForestModel, save_model
from models.train import fit_model
from streams.config import Config
from streams.simulate import SimulationSettings, write_simulation
from streams.training import feature_rows


@dataclass(frozen=True)
class Trained:
    history: Path
    rows: npt.NDArray[np.float64]
    model: ForestModel
    forest: Any  # the fitted scikit-learn estimator
    path: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("model")
    history = root / "history"
    write_simulation(history, SimulationSettings(seed=11, days=6, merchants=30))
    rows, _ = feature_rows(history / "transactions.jsonl", None, Config())
    x = np.asarray(rows)
    model, forest = fit_model(x, FEATURE_NAMES, seed=3)
    path = root / "model.npz"
    save_model(model, path)
    return Trained(history, x, model, forest, path)


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another simulated run (a different seed) for the trained model to judge."""
    data = tmp_path_factory.mktemp("judged")
    write_simulation(data, SimulationSettings(seed=12, days=5, merchants=30))
    return data
