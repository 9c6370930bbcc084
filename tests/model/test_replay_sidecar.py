"""Replay's model work in the sidecar process (``streams.replay_sidecar``): the same output as
scoring inline, alert for alert and in the same order, and a failure that says what happened."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from models.forest import load_model
from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import Config
from streams.configfile import load_config
from streams.deadletter import DeadLetter
from streams.engine.outbox import Outbox
from streams.filereader import ReplayReport
from streams.replay import replay
from streams.replay_sidecar import Sidecar, SidecarError
from tests.builders import txn
from tests.model.conftest import Trained


def _run(
    data: Path,
    scorer: Scorer,
    parallel: bool,
    transactions: str = "transactions.jsonl",
    by_event_time: bool = False,
) -> tuple[list[Alert], list[DeadLetter], ReplayReport]:
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    report = replay(
        data / transactions,
        data / "settlements.jsonl",
        load_config(data / "config.toml"),
        alerts.append,
        dead.append,
        scorer=scorer,
        parallel=parallel,
        sort_by_event_time=by_event_time,
    )
    return alerts, dead, report


def _same_report(a: ReplayReport, b: ReplayReport) -> None:
    assert (a.alert_events, a.final_status, a.dead_letters) == (
        b.alert_events,
        b.final_status,
        b.dead_letters,
    )
    assert (a.transactions, a.settlements, a.redeliveries) == (
        b.transactions,
        b.settlements,
        b.redeliveries,
    )


def test_scoring_in_a_second_process_writes_what_inline_scoring_writes(
    trained: Trained, judged: Path
) -> None:
    scorer = Scorer(load_model(trained.path))
    inline = _run(judged, scorer, parallel=False)
    parallel = _run(judged, scorer, parallel=True)
    suspicious = [a for a in inline[0] if a.type == "SUSPICIOUS_PATTERN"]
    assert suspicious, "the comparison needs model alerts"
    assert len(suspicious) < len(inline[0]), "and rule alerts to interleave with"
    assert parallel[0] == inline[0]
    assert parallel[1] == inline[1]
    _same_report(parallel[2], inline[2])


@pytest.mark.parametrize("by_event_time", [True, False])
def test_a_shuffled_file_is_scored_the_same(
    trained: Trained, judged: Path, by_event_time: bool
) -> None:
    """Shuffled, taken in file order (the clock holds back times it cannot corroborate and moves
    wrong ones) or sorted as asked (the line numbers handed over no longer rise): the sidecar
    gives the same output as one process."""
    lines = (judged / "transactions.jsonl").read_bytes().splitlines(keepends=True)
    random.Random(5).shuffle(lines)
    (judged / "shuffled.jsonl").write_bytes(b"".join(lines))
    scorer = Scorer(load_model(trained.path))
    inline = _run(judged, scorer, False, "shuffled.jsonl", by_event_time)
    parallel = _run(judged, scorer, True, "shuffled.jsonl", by_event_time)
    both = {str(judged / "shuffled.jsonl"), str(judged / "settlements.jsonl")}
    assert set(parallel[2].sorted_in_memory) == (both if by_event_time else set())
    assert parallel[2].out_of_order[str(judged / "shuffled.jsonl")] > 0
    assert any(a.type == "SUSPICIOUS_PATTERN" for a in parallel[0])
    assert parallel[0] == inline[0]
    assert parallel[1] == inline[1]


def test_a_failing_sidecar_is_reported_with_its_cause(trained: Trained, tmp_path: Path) -> None:
    sidecar = Sidecar(tmp_path / "gone.jsonl", Config(), load_model(trained.path))
    sidecar.attach([], Outbox())
    sale = txn("T1", 0)
    sale.origin = (str(tmp_path / "gone.jsonl"), 1, b"")
    sidecar.attempt(sale)  # type: ignore[arg-type]
    with pytest.raises(SidecarError, match="FileNotFoundError"):
        sidecar.finish()
