"""Topics on a real broker: partition counts come from the existing input topics; a layout the
worker cannot run on is refused with one line that says how to fix it."""

from __future__ import annotations

import re
import uuid

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from streams.worker.settings import WorkerSettings, bootstrap_servers
from streams.worker.topics import TopicLayoutError, ensure_topics
from tests.support.stream import wait_until
from tests.support.worker import unique_topics

pytestmark = pytest.mark.integration


def _counts(broker_url: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    try:
        described = admin.describe_topics(names)
        return {t["name"]: len(t["partitions"]) for t in described if not t["error_code"]}
    finally:
        admin.close()


def _create(broker_url: str, partitions: dict[str, int]) -> None:
    """Create the topics and wait until the broker's metadata shows them (as an operator's
    topics that already exist would be)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    try:
        admin.create_topics([NewTopic(name, n, 1) for name, n in partitions.items()])
    finally:
        admin.close()
    assert wait_until(lambda: _counts(broker_url, list(partitions)) == partitions, timeout_s=20)


def _settings(broker_url: str) -> WorkerSettings:
    return WorkerSettings(
        broker_url=broker_url, topics=unique_topics(), group=f"g-{uuid.uuid4().hex[:8]}"
    )


def test_existing_inputs_decide_the_partition_count(broker_url: str) -> None:
    settings = _settings(broker_url)  # POSGUARD_PARTITIONS left at its default, 1
    t = settings.topics
    _create(broker_url, {t.transactions: 4, t.settlements: 4})
    layout = ensure_topics(settings)
    assert layout.partitions == 4
    # The feedback and pay-out topics, missing (an estate from before them), are created like
    # the inputs that exist: co-partitioned.
    assert set(layout.created) == {
        t.feedback, t.payouts, t.alerts, t.deadletter, settings.cards_topic
    }  # fmt: skip
    wanted = {settings.cards_topic: 4, t.alerts: 4, t.feedback: 4, t.payouts: 4}
    assert wait_until(lambda: _counts(broker_url, list(wanted)) == wanted, timeout_s=20)
    again = ensure_topics(settings)  # a second worker: nothing to do
    assert (again.partitions, again.created) == (4, [])


def test_inputs_created_here_get_the_configured_count(broker_url: str) -> None:
    settings = _settings(broker_url).with_overrides(partitions=3)
    layout = ensure_topics(settings)
    assert layout.partitions == 3
    name = settings.topics.transactions
    assert wait_until(lambda: _counts(broker_url, [name]) == {name: 3}, timeout_s=20)


def test_inputs_that_are_not_co_partitioned_are_refused(broker_url: str) -> None:
    settings = _settings(broker_url)
    t = settings.topics
    _create(broker_url, {t.transactions: 4, t.settlements: 2})
    expected = re.escape(f"{t.transactions} has 4 and {t.settlements} has 2")
    with pytest.raises(TopicLayoutError, match=expected):
        ensure_topics(settings)


def test_an_internal_topic_with_another_count_is_refused_with_the_fix(broker_url: str) -> None:
    settings = _settings(broker_url)
    t = settings.topics
    _create(broker_url, {t.transactions: 4, t.settlements: 4, settings.cards_topic: 1})
    with pytest.raises(TopicLayoutError, match=r"delete it .*--delete --topic"):
        ensure_topics(settings)
