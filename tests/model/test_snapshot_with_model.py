"""With a model loaded, a partition taken over from a snapshot raises the same SUSPICIOUS_PATTERN
alerts as one that never stopped: the model's per-merchant, per-terminal and per-card history
goes through the snapshot whole."""

from __future__ import annotations

from models.forest import load_model
from models.scorer import Scorer
from streams.config import Config
from streams.simulate import SimulationSettings, generate, input_rows
from streams.worker.journal import decode_entry
from streams.worker.pipeline import Output, PartitionPipeline
from tests.model.conftest import Trained
from tests.unit.test_snapshot import _Run
from tests.unit.test_stream_pipeline import TOPICS, _collect, _contents


def test_the_model_judges_the_same_after_a_takeover_from_a_snapshot(trained: Trained) -> None:
    world = generate(SimulationSettings(seed=13, days=4, merchants=12))
    txn_rows, line_rows = input_rows(world)
    txns, lines = [r for _, _, r in txn_rows], [r for _, _, r in line_rows]
    scorer = Scorer(load_model(trained.path))

    whole = PartitionPipeline(0, Config(), TOPICS, scorer)
    expected, _, _ = _Run(txns, lines, 5).feed(whole)
    patterns = [a for a in expected.alerts if a.type == "SUSPICIOUS_PATTERN"]
    assert len(patterns) >= 3

    first = PartitionPipeline(0, Config(), TOPICS, scorer)
    half = (len(txns) + len(lines)) // 2
    before, taken, _ = _Run(txns, lines, 5).feed(first, half + 200, half)
    assert taken is not None
    second = PartitionPipeline(0, Config(), TOPICS, scorer)
    start = second.load_snapshot(taken)
    second.restore([(seq, decode_entry(v)) for seq, v in before.journal if seq >= start], first.seq)
    after = Output()
    _collect(after, second.take())
    rest, _, _ = _Run(txns, lines, 6).feed(second)
    _collect(after, rest)
    emitted = before.alerts + after.alerts
    assert {a.alert_id for a in emitted} == {a.alert_id for a in expected.alerts}
    assert _contents(emitted) <= _contents(expected.alerts)
