"""SUSPICIOUS_PATTERN end to end: train on one simulated week, judge another run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.forest import load_model
from models.scorer import Scorer
from streams.alerts import Alert
from streams.configfile import load_config
from streams.evaluate import evaluate_directory
from streams.replay import replay
from streams.simulate.patterns import PATTERN_KINDS
from tests.model.conftest import Trained


def test_model_separates_every_injected_pattern(trained: Trained, judged: Path) -> None:
    scorer = Scorer(load_model(trained.path))
    result = evaluate_directory(judged, load_config(judged / "config.toml"), scorer)
    assert result.perfect, "a model must not change what the rules decide"
    m = result.model
    assert m is not None
    assert m.labelled_sales >= 20
    assert m.roc_auc is not None and m.roc_auc >= 0.95, m
    assert {p.pattern for p in m.patterns} == set(PATTERN_KINDS)
    for p in m.patterns:
        assert p.roc_auc is not None and p.roc_auc >= 0.85, p
    assert m.target_alert_rate / 2 <= m.alert_rate <= m.target_alert_rate * 2, m


def _replay(data: Path, scorer: Scorer) -> list[Alert]:
    alerts: list[Alert] = []
    replay(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        load_config(data / "config.toml"),
        alerts.append,
        lambda _d: None,
        scorer=scorer,
    )
    return alerts


def test_every_alert_explains_itself(trained: Trained, judged: Path) -> None:
    scorer = Scorer(load_model(trained.path))
    alerts = _replay(judged, scorer)
    suspicious = [a for a in alerts if a.type == "SUSPICIOUS_PATTERN"]
    assert suspicious
    for alert in suspicious:
        d = alert.details
        assert alert.status == "OPEN" and alert.severity == "MEDIUM"
        assert d["score"] >= d["threshold"] == pytest.approx(scorer.threshold, abs=1e-6)
        assert d["model_version"] == scorer.version
        assert len(d["top_features"]) == 3
        for driver in d["top_features"]:
            assert driver["feature"] in scorer.feature_names
            assert driver["explanation"] and "usual" in driver
            assert driver["explanation"] in alert.summary
        assert alert.txn_ids and alert.terminal_id
    amount_words = [
        f["explanation"]
        for a in suspicious
        for f in a.details["top_features"]
        if f["feature"] in ("amount_vs_merchant", "amount_vs_terminal", "amount_vs_card")
    ]
    assert any(
        re.search(r"x this (merchant|terminal|card)'s typical sale of", w) for w in amount_words
    ), amount_words


def test_same_input_same_alerts_with_a_model(trained: Trained, judged: Path) -> None:
    runs = [_replay(judged, Scorer(load_model(trained.path))) for _ in range(2)]
    assert runs[0] == runs[1]
