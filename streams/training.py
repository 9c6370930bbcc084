"""``posguard train``: feature rows from history files, an isolation forest fitted on them.

History is read with the replay driver, so training sees exactly the feature rows that replay and
the worker compute for the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.features import FEATURE_NAMES
from models.forest import ForestModel
from models.train import fit_model
from streams.config import Config
from streams.events import Transaction
from streams.replay import replay
from streams.timefmt import format_us


@dataclass(frozen=True)
class TrainingSettings:
    target_alert_rate: float = 0.001
    n_trees: int = 100
    max_samples: int = 256
    seed: int = 0


def feature_rows(
    transactions: Path, settlements: Path | None, config: Config
) -> tuple[list[list[float]], list[Transaction]]:
    """Every approved sale's feature row, in event-time order, with its transaction."""
    rows: list[list[float]] = []
    sales: list[Transaction] = []

    def keep(t: Transaction, row: list[float], _score: float | None) -> None:
        rows.append(row)
        sales.append(t)

    replay(transactions, settlements, config, lambda _a: None, lambda _d: None, on_scored=keep)
    return rows, sales


def train_from_history(
    transactions: Path, settlements: Path | None, config: Config, settings: TrainingSettings
) -> ForestModel:
    rows, sales = feature_rows(transactions, settlements, config)
    if not rows:
        raise ValueError(f"{transactions} holds no approved sales to learn from")
    first, last = min(t.ts for t in sales), max(t.ts for t in sales)
    model, _ = fit_model(
        np.asarray(rows),
        FEATURE_NAMES,
        target_alert_rate=settings.target_alert_rate,
        n_trees=settings.n_trees,
        max_samples=settings.max_samples,
        seed=settings.seed,
        extra_metadata={
            "training_window": {"from": format_us(first), "to": format_us(last)},
            "training_source": transactions.name,
        },
    )
    return model


def describe_model(model: ForestModel, path: Path) -> str:
    meta = model.metadata
    window = meta.get("training_window", {})
    dist = meta.get("score_distribution", {})
    lines = [
        f"model file        {path}",
        f"version           {model.version}",
        f"format            {meta['format']}",
        f"trees             {meta['n_trees']} (max_samples {meta['max_samples']}, "
        f"seed {meta.get('seed')})",
        f"trained on        {meta.get('training_rows', '?'):,} approved sales from "
        f"{window.get('from', '?')} to {window.get('to', '?')}",
        f"threshold         {meta['threshold']:.6f} (anomaly score; target alert rate "
        f"{meta['target_alert_rate'] * 100:g}% of approved sales, "
        f"{meta.get('training_alert_rate', 0) * 100:.3f}% in training)",
        "score percentiles " + ", ".join(f"{k} {v:.4f}" for k, v in dist.items()),
        f"scikit-learn      {meta.get('sklearn_version', '?')}",
        f"checksum          sha256:{meta['checksum']}",
        "features          " + ", ".join(model.feature_names),
    ]
    return "\n".join(lines)
