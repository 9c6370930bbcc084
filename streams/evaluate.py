"""``posguard evaluate``: replay a simulated directory and score the alerts against its labels.

An alert matches a label of the same type when they share a transaction, settlement or pay-out id
(``details.payout_ids``), or, for labels without ids (the feed gap), when the merchant matches.
Per type: expected labels, labels found with the right final status, false positives (alerts
matching no label), precision, recall, and noise: alerts that opened and then resolved although
no label asked for that.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from models.metrics import average_precision, roc_auc
from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import Config
from streams.deadletter import DeadLetter
from streams.events import Transaction
from streams.replay import replay
from streams.rules.registry import enabled_types


class TypeScore(msgspec.Struct):
    type: str
    expected: int
    found: int
    wrong_status: int
    alerts: int
    false_positives: int
    noise: int
    precision: float | None
    recall: float | None


class PatternScore(msgspec.Struct):
    """One injected suspicious-pattern kind against all unlabelled approved sales."""

    pattern: str
    sales: int
    alerted: int
    roc_auc: float | None
    average_precision: float | None


class ModelScore(msgspec.Struct):
    model_version: str
    threshold: float
    target_alert_rate: float
    approved_sales: int
    labelled_sales: int
    alerts: int
    alert_rate: float
    roc_auc: float | None
    average_precision: float | None
    precision_at_threshold: float | None
    recall_at_threshold: float | None
    patterns: list[PatternScore]


class Evaluation(msgspec.Struct):
    data: str
    events: int
    types: list[TypeScore]
    dead_letters_expected: dict[str, int]
    dead_letters_found: dict[str, int]
    false_positive_ids: list[str]
    missed_labels: list[dict[str, Any]]
    model: ModelScore | None = None

    @property
    def perfect(self) -> bool:
        return (
            all(
                t.found == t.expected and t.false_positives == 0 and t.noise == 0
                for t in self.types
            )
            and self.dead_letters_expected == self.dead_letters_found
        )


def _matches(alert: Alert, label: dict[str, Any]) -> bool:
    if alert.type != label["type"]:
        return False
    txn_ids, settlement_ids = label.get("txn_ids") or [], label.get("settlement_ids") or []
    payout_ids = label.get("payout_ids") or []
    if payout_ids and set(payout_ids) & set(alert.details.get("payout_ids") or []):
        return True
    if txn_ids or settlement_ids:
        return bool(set(txn_ids) & set(alert.txn_ids)) or bool(
            set(settlement_ids) & set(alert.settlement_ids)
        )
    if payout_ids:
        return False
    return label.get("merchant_id") in (None, alert.merchant_id)


def evaluate_directory(data: Path, config: Config, scorer: Scorer | None = None) -> Evaluation:
    labels = [
        msgspec.json.decode(line)
        for line in (data / "labels.jsonl").read_bytes().split(b"\n")
        if line.strip()
    ]
    alert_labels = [x for x in labels if x["type"] != "DEAD_LETTER"]
    history: dict[str, list[Alert]] = {}
    dead: Counter[str] = Counter()

    def on_alert(alert: Alert) -> None:
        history.setdefault(alert.alert_id, []).append(alert)

    def on_dead_letter(letter: DeadLetter) -> None:
        dead[letter.reason] += 1

    scores: dict[str, float] = {}

    def on_scored(t: Transaction, _row: list[float], score: float | None) -> None:
        if score is not None:
            scores[t.txn_id] = score

    report = replay(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        config,
        on_alert,
        on_dead_letter,
        scorer=scorer,
        on_scored=on_scored if scorer is not None else None,
        payouts=data / "payouts.jsonl" if (data / "payouts.jsonl").is_file() else None,
    )
    kinds = [k for k in enabled_types(config) if k != "SUSPICIOUS_PATTERN"]
    type_scores, false_positive_ids, missed = score_alerts(history, alert_labels, kinds)
    expected_dead = Counter(x["reason"] for x in labels if x["type"] == "DEAD_LETTER")
    return Evaluation(
        data=str(data),
        events=report.transactions + report.settlements,
        types=type_scores,
        dead_letters_expected=dict(sorted(expected_dead.items())),
        dead_letters_found=dict(sorted(dead.items())),
        false_positive_ids=false_positive_ids,
        missed_labels=missed,
        model=None if scorer is None else _score_model(scorer, scores, alert_labels),
    )


def score_alerts(
    history: dict[str, list[Alert]], alert_labels: list[dict[str, Any]], kinds: list[str]
) -> tuple[list[TypeScore], list[str], list[dict[str, Any]]]:
    """Per type of ``kinds``: alert events by id (``history``, in order) against the labels.
    Also the ids of false positives and the labels missed."""
    final = {aid: events[-1] for aid, events in history.items()}
    type_scores: list[TypeScore] = []
    false_positive_ids: list[str] = []
    missed: list[dict[str, Any]] = []
    for kind in kinds:
        expected = [x for x in alert_labels if x["type"] == kind]
        alerts = [a for a in final.values() if a.type == kind]
        found = wrong = 0
        for label in expected:
            hits = [a for a in alerts if _matches(a, label)]
            if any(a.status == label["final_status"] for a in hits):
                found += 1
            else:
                wrong += bool(hits)
                missed.append(label)
        unmatched = [a for a in alerts if not any(_matches(a, x) for x in expected)]
        false_positive_ids.extend(a.alert_id for a in unmatched)
        asked_resolved = [x for x in expected if x["final_status"] == "RESOLVED"]
        noise = sum(
            1
            for a in alerts
            if any(e.status == "RESOLVED" for e in history[a.alert_id])
            and not any(_matches(a, x) for x in asked_resolved)
        )
        matched_alerts = len(alerts) - len(unmatched)
        type_scores.append(
            TypeScore(
                type=kind,
                expected=len(expected),
                found=found,
                wrong_status=wrong,
                alerts=len(alerts),
                false_positives=len(unmatched),
                noise=noise,
                precision=matched_alerts / len(alerts) if alerts else None,
                recall=found / len(expected) if expected else None,
            )
        )
    return type_scores, false_positive_ids, missed


def _score_model(
    scorer: Scorer, scores: dict[str, float], labels: list[dict[str, Any]]
) -> ModelScore:
    """ROC-AUC and average precision of the anomaly score over every approved sale, overall and
    per injected pattern kind (each kind against the unlabelled sales)."""
    kind_of: dict[str, str] = {}
    for label in labels:
        if label["type"] == "SUSPICIOUS_PATTERN":
            for txn_id in label["txn_ids"]:
                kind_of[txn_id] = label.get("pattern") or label["scenario"]
    ids = list(scores)
    values = np.asarray([scores[i] for i in ids])
    positive = np.asarray([i in kind_of for i in ids])
    over = values >= scorer.threshold
    patterns = []
    for kind in sorted(set(kind_of.values())):
        mine = np.asarray([kind_of.get(i) == kind for i in ids])
        subset = mine | ~positive
        patterns.append(
            PatternScore(
                pattern=kind,
                sales=int(mine.sum()),
                alerted=int((mine & over).sum()),
                roc_auc=roc_auc(mine[subset], values[subset]),
                average_precision=average_precision(mine[subset], values[subset]),
            )
        )
    n_over = int(over.sum())
    return ModelScore(
        model_version=scorer.version,
        threshold=scorer.threshold,
        target_alert_rate=float(scorer.model.metadata["target_alert_rate"]),
        approved_sales=len(ids),
        labelled_sales=int(positive.sum()),
        alerts=n_over,
        alert_rate=n_over / len(ids) if ids else 0.0,
        roc_auc=roc_auc(positive, values),
        average_precision=average_precision(positive, values),
        precision_at_threshold=float((positive & over).sum()) / n_over if n_over else None,
        recall_at_threshold=(
            float((positive & over).sum()) / int(positive.sum()) if positive.any() else None
        ),
        patterns=patterns,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_evaluation(result: Evaluation) -> str:
    head = (
        f"{'type':<26}{'expected':>9}{'found':>7}{'FP':>5}{'noise':>7}"
        f"{'precision':>11}{'recall':>8}"
    )
    out = [f"posguard evaluate: {result.data} ({result.events:,} events)", head]
    for s in result.types:
        out.append(
            f"{s.type:<26}{s.expected:>9}{s.found:>7}{s.false_positives:>5}{s.noise:>7}"
            f"{_pct(s.precision):>11}{_pct(s.recall):>8}"
        )
    out.append(f"dead letters expected {result.dead_letters_expected}")
    out.append(f"dead letters found    {result.dead_letters_found}")
    for label in result.missed_labels:
        out.append(f"missed: {label['type']} {label['scenario']} {label.get('txn_ids')}")
    if result.false_positive_ids:
        out.append(f"false positives: {', '.join(result.false_positive_ids[:20])}")
    out.append("result: PERFECT" if result.perfect else "result: IMPERFECT")
    if result.model is not None:
        out.append(_format_model(result.model))
    return "\n".join(out)


def _format_model(m: ModelScore) -> str:
    out = [
        f"SUSPICIOUS_PATTERN (model {m.model_version}, threshold {m.threshold:.4f})",
        f"  approved sales {m.approved_sales:,}, labelled suspicious {m.labelled_sales}, "
        f"alerts {m.alerts} = {m.alert_rate * 100:.3f}% (target {m.target_alert_rate * 100:g}%)",
        f"  ROC-AUC {_pct(m.roc_auc)}  average precision {_pct(m.average_precision)}  "
        f"precision at threshold {_pct(m.precision_at_threshold)}  "
        f"recall at threshold {_pct(m.recall_at_threshold)}",
        f"  {'pattern':<22}{'sales':>7}{'alerted':>9}{'ROC-AUC':>9}{'AP':>7}",
    ]
    out.extend(
        f"  {p.pattern:<22}{p.sales:>7}{p.alerted:>9}{_pct(p.roc_auc):>9}"
        f"{_pct(p.average_precision):>7}"
        for p in m.patterns
    )
    return "\n".join(out)
