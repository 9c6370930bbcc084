"""``posguard train``: feature rows from history files, a model fitted on them.

History is read with the replay driver, so training sees exactly the feature rows that replay and
the worker compute for the same events, outcomes included: a sale's row knows only the outcomes
known before it. The labels are another matter: training happens after the fact, so a sale is
labelled fraud when the feedback file, read to its end, last says so (a confirmation or a
chargeback not taken back by a later ``LEGITIMATE``).

With enough confirmed frauds among the training sales (``models.boosted.MIN_FRAUDS``) a
gradient-boosted model is fitted on them; otherwise, or when asked, an isolation forest, which
needs no labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.boosted import MIN_FRAUDS, fit_boosted
from models.features import FEATURE_NAMES, FOREST_FEATURES
from models.forest import ForestModel
from models.train import fit_model
from streams.cardmask import IdCheck
from streams.config import Config
from streams.events import Feedback, Transaction
from streams.filereader import FileReader, ReplayReport
from streams.replay import replay
from streams.timefmt import format_us

SCORERS = ("auto", "isolation-forest", "gradient-boosting")


@dataclass(frozen=True)
class TrainingSettings:
    target_alert_rate: float = 0.001
    n_trees: int = 100
    max_samples: int = 1024
    """Sales each isolation tree is grown on. More than the usual 256: a stolen card spending five
    times its own usual is a subtle outlier among a fleet's big genuine sales, and trees grown on
    more sales isolate it sooner (handbook benchmark: card precision@100 0.023-0.026 with 256,
    0.034-0.044 with 1,024; posguard's own simulator: ROC-AUC 0.998 and 0.999)."""
    seed: int = 0
    scorer: str = "auto"
    """``auto``: gradient boosting when the feedback confirms enough frauds, else the forest."""
    train_from_us: int | None = None
    """Sales before this only warm the features up; the model learns from those after."""


def feature_rows(
    transactions: Path,
    settlements: Path | None,
    config: Config,
    feedback: Path | None = None,
) -> tuple[list[list[float]], list[Transaction]]:
    """Every approved sale's feature row, in event-time order, with its transaction."""
    rows: list[list[float]] = []
    sales: list[Transaction] = []

    def keep(t: Transaction, row: list[float], _score: float | None) -> None:
        rows.append(row)
        sales.append(t)

    replay(
        transactions,
        settlements,
        config,
        lambda _a: None,
        lambda _d: None,
        on_scored=keep,
        feedback=feedback,
    )
    return rows, sales


def fraud_labels(feedback: Path, id_check: IdCheck = "networks") -> set[tuple[str, str]]:
    """``(merchant_id, txn_id)`` of the sales the feedback file, read to its end, calls fraud:
    per sale the outcome known last decides (on a tie, the one later in the file). Bad lines are
    skipped here; replay dead-letters them."""
    reader = FileReader(feedback, "feedback", lambda _d: None, ReplayReport(), None, id_check)
    last: dict[tuple[str, str], tuple[int, bool]] = {}
    for f in reader.events():
        assert isinstance(f, Feedback)
        key = (f.merchant_id, f.txn_id)
        known = last.get(key)
        if known is None or f.ts >= known[0]:
            last[key] = (f.ts, f.fraud)
    return {key for key, (_, fraud) in last.items() if fraud}


def train_from_history(
    transactions: Path,
    settlements: Path | None,
    config: Config,
    settings: TrainingSettings,
    feedback: Path | None = None,
) -> ForestModel:
    rows, sales = feature_rows(transactions, settlements, config, feedback)
    if settings.train_from_us is not None:
        since = settings.train_from_us
        kept = [i for i, t in enumerate(sales) if t.ts >= since]
        rows, sales = [rows[i] for i in kept], [sales[i] for i in kept]
    if not rows:
        raise ValueError(f"{transactions} holds no approved sales to learn from")
    first, last = min(t.ts for t in sales), max(t.ts for t in sales)
    extra = {
        "training_window": {"from": format_us(first), "to": format_us(last)},
        "training_source": transactions.name,
    }
    labels: set[tuple[str, str]] = set()
    if feedback is not None:
        labels = fraud_labels(feedback, config.card_numbers_in_ids)
        extra["feedback_source"] = feedback.name
    y = np.array([(t.merchant_id, t.txn_id) in labels for t in sales], dtype=bool)
    boosted = settings.scorer == "gradient-boosting" or (
        settings.scorer == "auto" and int(y.sum()) >= MIN_FRAUDS
    )
    if boosted:
        model, _ = fit_boosted(
            np.asarray(rows),
            y,
            FEATURE_NAMES,
            target_alert_rate=settings.target_alert_rate,
            seed=settings.seed,
            extra_metadata=extra,
        )
        return model
    if feedback is not None:
        extra["chosen_because"] = (
            f"{int(y.sum())} confirmed frauds among the training sales (gradient boosting needs "
            f"{MIN_FRAUDS})"
            if settings.scorer == "auto"
            else "asked for"
        )
    columns = [FEATURE_NAMES.index(name) for name in FOREST_FEATURES]
    model, _ = fit_model(
        np.asarray(rows)[:, columns],
        FOREST_FEATURES,
        target_alert_rate=settings.target_alert_rate,
        n_trees=settings.n_trees,
        max_samples=settings.max_samples,
        seed=settings.seed,
        extra_metadata=extra,
    )
    return model


def describe_model(model: ForestModel, path: Path) -> str:
    meta = model.metadata
    window = meta.get("training_window", {})
    dist = meta.get("score_distribution", {})
    if model.boosted:
        kind = (
            f"gradient-boosted trees, supervised: learnt from {meta.get('training_frauds', 0):,} "
            "confirmed frauds"
        )
        trees = f"{meta['n_trees'] - 1} (and the baseline), seed {meta.get('seed')}"
        score = "fraud probability"
    else:
        kind = "isolation forest, unsupervised: learnt what usual sales look like, no outcomes"
        trees = f"{meta['n_trees']} (max_samples {meta['max_samples']}, seed {meta.get('seed')})"
        score = "anomaly score"
    lines = [
        f"model file        {path}",
        f"version           {model.version}",
        f"kind              {kind}",
        f"format            {meta['format']}",
        f"trees             {trees}",
        f"trained on        {meta.get('training_rows', '?'):,} approved sales from "
        f"{window.get('from', '?')} to {window.get('to', '?')}",
        f"threshold         {meta['threshold']:.6f} ({score}; target alert rate "
        f"{meta['target_alert_rate'] * 100:g}% of approved sales, "
        f"{meta.get('training_alert_rate', 0) * 100:.3f}% in training)",
        "score percentiles " + ", ".join(f"{k} {v:.4f}" for k, v in dist.items()),
        f"scikit-learn      {meta.get('sklearn_version', '?')}",
        *([f"outcomes from     {meta['feedback_source']}"] if "feedback_source" in meta else []),
        *([f"chosen because    {meta['chosen_because']}"] if "chosen_because" in meta else []),
        f"checksum          sha256:{meta['checksum']}",
        "features          " + ", ".join(model.feature_names),
    ]
    return "\n".join(lines)
