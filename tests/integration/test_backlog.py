"""A worker started on topics that already hold a history works through it and gives replay's
alerts, every message it writes below the limits the broker and the topics declare."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from streams.simulate.produce import produce, rows_from_file
from streams.worker.cards import decode_batch
from streams.worker.settings import WorkerSettings, bootstrap_servers
from tests.support.stream import Expected, decode_all, final_states, wait_until
from tests.support.worker import WorkerProcess, read_topic, unique_topics

pytestmark = pytest.mark.integration

_LIMIT = 12_000
"""``max.message.bytes`` of the topics the worker writes: a tick of a backlog makes card batches
of tens of kilobytes, so they must be cut to fit."""


def test_backlog_on_topics_with_small_message_limits_equals_replay(
    broker_url: str,
    simulated: tuple[Path, Expected],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    data, expected = simulated
    topics = unique_topics()
    group = f"posguard-{uuid.uuid4().hex[:8]}"
    cards = WorkerSettings(group=group).cards_topic
    limited = {"max.message.bytes": str(_LIMIT)}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    try:
        admin.create_topics(
            [
                NewTopic(topics.transactions, 1, 1),
                NewTopic(topics.settlements, 1, 1),
                NewTopic(topics.payouts, 1, 1),
                *(NewTopic(name, 1, 1, topic_configs=limited) for name in (
                    topics.alerts, topics.deadletter, cards
                )),
            ]
        )  # fmt: skip
    finally:
        admin.close()
    # The whole history is there before the worker starts.
    produce(
        bootstrap_servers(broker_url),
        topics,
        rows_from_file(data / "transactions.jsonl", "event_time"),
        rows_from_file(data / "settlements.jsonl", "settled_at"),
        payout_rows=rows_from_file(data / "payouts.jsonl", "value_date"),
    )
    state = tmp_path / "state"
    state.mkdir()
    worker = WorkerProcess(
        broker_url, topics, state, group, config=data / "config.toml", model=data / "model.npz"
    ).start()
    try:

        def published() -> dict[str, tuple[str, str]]:
            return final_states(decode_all(read_topic(broker_url, topics.alerts)))

        assert wait_until(lambda: published() == expected.final, 120), "stream != replay"
        assert worker.events_in() == expected.events
    finally:
        worker.stop()
    assert worker.log is not None
    log = worker.log.read_text()
    if request.node.callspec.params["broker_url"] == "kafka":
        # Apache Kafka says its limits; Tansu does not answer DescribeConfigs (Kafka's default).
        assert f"messages of at most {_LIMIT:,} bytes (max.message.bytes of topic" in log
        card_batches = read_topic(broker_url, cards)
        assert max(len(value) for value in card_batches) <= _LIMIT - 1024
        # Some ticks' sales did not fit one message (a part without the clock went first).
        assert any(decode_batch(value).clock == -(2**63) for value in card_batches)
    assert "MessageSizeTooLarge" not in log
