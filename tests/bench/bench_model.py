"""Scorer benchmark (``make bench``); not a test.

In one run, on the same feature rows (from a simulated week's history) and the same fitted
forest: scikit-learn's ``IsolationForest.score_samples`` on one row at a time and on batches of
1,000, against posguard's scorer per event (``Scorer.score``) and batched (``Scorer.score_batch``).
The same for the gradient-boosted model, fitted on the history's labelled suspicious sales, against
``HistGradientBoostingClassifier.predict_proba`` on one row. Prints microseconds per row and the
ratios; writes ``model-results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.boosted import fit_boosted
from models.features import FEATURE_NAMES
from models.forest import save_model
from models.scorer import Scorer
from models.train import fit_model
from streams.config import Config
from streams.simulate import SimulationSettings, write_simulation
from streams.training import feature_rows

HISTORY = SimulationSettings(seed=8, days=7, merchants=80)


def history_rows(directory: Path) -> np.ndarray:
    return history(directory)[0]


def history(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The history's feature rows, and whether each sale is labelled suspicious."""
    data = directory / "model-history"
    if not (data / "transactions.jsonl").is_file():
        write_simulation(data, HISTORY)
    rows, sales = feature_rows(data / "transactions.jsonl", None, Config())
    suspicious = set()
    for line in (data / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        if label["type"] == "SUSPICIOUS_PATTERN":
            suspicious.update(label["txn_ids"])
    return np.asarray(rows), np.array([t.txn_id in suspicious for t in sales])


def trained_model(directory: Path) -> Path:
    """A model trained on the benchmark history (cached beside the data)."""
    path = directory / "bench-model.npz"
    if not path.is_file():
        model, _ = fit_model(history_rows(directory), FEATURE_NAMES, seed=0)
        save_model(model, path)
    return path


def _per_row(fn: Callable[[Any], object], rows: Sequence[Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for row in rows:
            fn(row)
        best = min(best, (time.perf_counter() - started) / len(rows))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=".bench", type=Path)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rows, labels = history(args.dir)
    model, forest = fit_model(rows, FEATURE_NAMES, seed=0)
    scorer = Scorer(model)
    rng = np.random.default_rng(0)
    sample = rows[rng.choice(len(rows), size=min(len(rows), 20_000), replace=False)]
    singles = [sample[i : i + 1] for i in range(300)]
    as_lists = sample.tolist()

    sk_row = _per_row(forest.score_samples, singles, repeat=2)
    ours_row = _per_row(scorer.score, as_lists, repeat=3)
    # The engine's per-sale cost: the alert decision, which gives up early on ordinary rows.
    decision_row = _per_row(scorer.score_if_anomalous, as_lists, repeat=3)
    flagged = sum(scorer.score_if_anomalous(r) is not None for r in as_lists)
    assert flagged == sum(scorer.score(r) >= scorer.threshold for r in as_lists)
    batches = [sample[i : i + 1000] for i in range(0, len(sample) - 999, 1000)][:10]
    started = time.perf_counter()
    for b in batches:
        forest.score_samples(b)
    sk_batch = (time.perf_counter() - started) / (len(batches) * 1000)
    started = time.perf_counter()
    for b in batches:
        scorer.score_batch(b)
    ours_batch = (time.perf_counter() - started) / (len(batches) * 1000)
    parity = float(np.max(np.abs(scorer.score_samples(sample) - forest.score_samples(sample))))
    result = {
        "rows": len(sample),
        "trees": model.metadata["n_trees"],
        "sklearn_one_row_us": sk_row * 1e6,
        "scorer_one_row_us": ours_row * 1e6,
        "per_event_speedup": sk_row / ours_row,
        "decision_one_row_us": decision_row * 1e6,
        "decision_speedup": sk_row / decision_row,
        "decision_flagged_rows": flagged,
        "sklearn_batch1000_us_per_row": sk_batch * 1e6,
        "scorer_batch1000_us_per_row": ours_batch * 1e6,
        "batch_ratio_scorer_to_sklearn": sk_batch / ours_batch,
        "max_abs_difference": parity,
    }
    boosted, fitted = fit_boosted(rows, labels, FEATURE_NAMES, target_alert_rate=0.002)
    gb = Scorer(boosted)
    gb_sklearn = _per_row(fitted.predict_proba, singles, repeat=2)
    gb_decision = _per_row(gb.score_if_anomalous, as_lists, repeat=3)
    gb_parity = float(np.max(np.abs(gb.score_batch(sample) - fitted.predict_proba(sample)[:, 1])))
    result.update(
        {
            "boosted_trees": boosted.metadata["n_trees"] - 1,
            "boosted_frauds_learnt": int(labels.sum()),
            "boosted_sklearn_one_row_us": gb_sklearn * 1e6,
            "boosted_decision_one_row_us": gb_decision * 1e6,
            "boosted_decision_speedup": gb_sklearn / gb_decision,
            "boosted_max_abs_difference": gb_parity,
        }
    )
    (args.dir / "model-results.json").write_text(json.dumps(result, indent=2))
    print(
        f"scorer: one row {result['scorer_one_row_us']:.1f} us vs score_samples one row "
        f"{result['sklearn_one_row_us']:,.0f} us -> {result['per_event_speedup']:,.0f}x faster; "
        f"the alert decision (score_if_anomalous) {result['decision_one_row_us']:.1f} us "
        f"-> {result['decision_speedup']:,.0f}x ({flagged} of {len(as_lists):,} rows flagged); "
        f"batches of 1,000: {result['scorer_batch1000_us_per_row']:.1f} us/row vs "
        f"{result['sklearn_batch1000_us_per_row']:.1f} us/row "
        f"({result['batch_ratio_scorer_to_sklearn']:.2f}x); max |difference| {parity:.1e}"
    )
    print(
        f"boosted ({result['boosted_trees']} trees, {result['boosted_frauds_learnt']} labelled "
        f"sales): the alert decision {result['boosted_decision_one_row_us']:.1f} us vs "
        f"predict_proba one row {result['boosted_sklearn_one_row_us']:,.0f} us -> "
        f"{result['boosted_decision_speedup']:,.0f}x; max |difference| {gb_parity:.1e}"
    )


if __name__ == "__main__":
    main()
