"""The Faust worker app without a broker: its agent driven through Faust's ``test_context``.

The app is the one ``posguard worker`` runs (``build_app``), with its memory store and tables. No
broker is contacted: messages go straight into the agent's channel, and the two things the worker
asks the broker (the end offsets, to know nothing more is stored) come from a stand-in that
knows what was sent. What the worker publishes is captured at its topics' ``send_soon``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from faust.types import TP, Message

from streams.configfile import load_config
from streams.simulate import SimulationSettings, write_simulation
from streams.worker.app import build_app
from streams.worker.cards import SaleBatch, encode_batch
from streams.worker.published import write_snapshots
from streams.worker.settings import WorkerSettings
from tests.builders import feedback_doc, line_doc, payout_doc, txn_doc
from tests.support.stream import expected_from_replay, final_states, merged_messages


class _Broker:
    """What a broker would say about end offsets: everything the test sent is stored."""

    def __init__(self) -> None:
        self.ends: dict[TP, int] = {}

    def highwater(self, tp: TP) -> int | None:
        # A topic nothing was sent to is empty (a consumer learns that from its first fetch).
        return self.ends.get(tp, 0)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends.get(tp, 0) for tp in tps}


class Harness:
    def __init__(self, tmp: Path, config_file: Path | None, **settings_: Any) -> None:
        settings = WorkerSettings(
            broker_url="kafka://127.0.0.1:9",  # never contacted
            data_dir=tmp / "state",
            group="functional",
            config_file=config_file,
            store="memory",
            **settings_,
        )
        self.app, self.worker = build_app(settings, load_config(config_file))
        self.broker = _Broker()
        consumer = self.app.consumer
        consumer.highwater = self.broker.highwater  # type: ignore[method-assign,assignment]
        consumer.highwaters = self.broker.highwaters  # type: ignore[method-assign]
        self.published: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []
        self.changelog: list[tuple[bytes, bytes | None]] = []
        self._capture(self.worker.alerts_topic, self.published)
        self._capture(self.worker.dead_topic, self.dead)
        # Sales on their way to the card stage: delivered to its agent once the inputs are fed.
        self.card_batches: list[tuple[int, bytes]] = []
        cards: Any = self.worker.cards_topic
        cards.send_soon = lambda key=None, value=b"", partition=0, **_: self.card_batches.append(
            (partition, value)
        )
        self.card_offsets: dict[int, int] = {}
        self.card_changelog: list[tuple[bytes, bytes | None]] = []
        journal: Any = self.worker.journal
        journal.send_changelog = lambda p, key, value, **kw: self.changelog.append((key, value))
        card_journal: Any = self.worker.card_journal
        card_journal.send_changelog = lambda p, key, value, **kw: self.card_changelog.append(
            (key, value)
        )
        self.snapshot_changelog: list[tuple[bytes, bytes | None]] = []
        snapshots: Any = self.worker.snapshots.table
        snapshots.send_changelog = lambda p, key, value, **kw: self.snapshot_changelog.append(
            (key, value)
        )
        self.offsets = {name: 0 for name in self.worker.names}

        async def flushed() -> None:  # everything "sent" was captured synchronously
            return None

        self.app.producer.flush = flushed  # type: ignore[method-assign]
        self.seeks: list[dict[TP, int]] = []

        async def seek_wait(partitions: dict[TP, int]) -> None:  # the worker rewinding
            self.seeks.append(dict(partitions))

        consumer.seek_wait = seek_wait  # type: ignore[method-assign,assignment]

    @staticmethod
    def _capture(topic: Any, into: list[dict[str, Any]]) -> None:
        def send_soon(key: Any = None, value: bytes = b"", **_: Any) -> None:
            into.append(msgspec.json.decode(value))

        topic.send_soon = send_soon

    def _agent(self, suffix: str) -> Any:
        return next(a for name, a in self.app.agents.items() if name.endswith(suffix))

    async def _put(self, ctx: Any, topic: str, partition: int, offset: int, raw: bytes) -> None:
        channel = ctx.stream().channel
        message = Message(
            topic=topic, partition=partition, offset=offset, timestamp=time.time(),
            timestamp_type=0, headers=None, key=b"k", value=raw, checksum=b"",
            serialized_key_size=1, serialized_value_size=len(raw),
            generation_id=self.app.consumer_generation_id,
        )  # fmt: skip
        event = await channel.decode(message)
        async with ctx.new_value_processed:
            await channel.put(event)
            await ctx.new_value_processed.wait()

    async def feed(self, messages: Iterable[tuple[str, bytes]]) -> None:
        async with self._agent("detect").test_context() as ctx:
            for topic, raw in messages:
                offset = self.offsets[topic]
                self.offsets[topic] += 1
                self.broker.ends[TP(topic, 0)] = offset + 1
                await self._put(ctx, topic, 0, offset, raw)
            # The merge's grace passes and the inputs go idle: what the timers would do.
            await asyncio.sleep(0.2)
            self.worker.tick()
            self.worker._last_input -= 60
            for part in self.worker.inputs.values():
                part.input_at -= 60
            await self.worker.flush_when_idle()
            await self.worker.mark_published()
            write_snapshots(self.worker, wait=True)  # the forked children's, once done
        pending, self.card_batches = self.card_batches, []
        await self.feed_cards(pending)

    async def feed_cards(self, batches: list[tuple[int, bytes]]) -> None:
        cards = self.worker.cards_topic.get_topic_name()
        async with self._agent("card_velocity").test_context() as ctx:
            for partition, raw in batches:
                offset = self.card_offsets.get(partition, 0)
                self.card_offsets[partition] = offset + 1
                await self._put(ctx, cards, partition, offset, raw)
            self.worker.tick()
            await self.worker.mark_published()

    async def deliver_ahead(self, topic: str, ahead: int, raw: bytes) -> None:
        """Deliver ``raw`` at ``ahead`` offsets past the next one, as a consumer that lost its
        place would; the offsets in between stay unread."""
        offset = self.offsets[topic] + ahead
        tp = TP(topic, 0)
        self.broker.ends[tp] = max(self.broker.ends.get(tp, 0), offset + 1)
        async with self._agent("detect").test_context() as ctx:
            await self._put(ctx, topic, 0, offset, raw)
            await asyncio.sleep(0.05)  # the seek it asks for runs

    def run(self, messages: Iterable[tuple[str, bytes]]) -> Harness:
        asyncio.run(self.feed(messages))
        return self


def _simulated(tmp: Path) -> tuple[Path, list[tuple[int, int, bytes]]]:
    data = tmp / "sim"
    write_simulation(data, SimulationSettings(seed=9, days=4, merchants=10))
    return data, merged_messages(data)


def _messages(harness: Harness, rows: list[tuple[int, int, bytes]]) -> list[tuple[str, bytes]]:
    return [(harness.worker.names[side], raw) for _, side, raw in rows]


def test_the_agent_publishes_what_replay_decides(tmp_path: Path) -> None:
    data, rows = _simulated(tmp_path)
    harness = Harness(tmp_path, data / "config.toml")
    harness.run(_messages(harness, rows))
    expected = expected_from_replay(data)
    assert final_states(harness.published) == expected.final
    reasons = {d["reason"] for d in harness.dead}
    assert reasons == set(expected.dead_reasons)
    assert harness.worker.store.get(next(iter(expected.final))) is not None  # the API's view


def test_bad_messages_become_dead_letters_with_their_source(tmp_path: Path) -> None:
    harness = Harness(tmp_path, None)
    transactions = harness.worker.names[0]
    pan = msgspec.json.encode(txn_doc("T1", card="4111 1111 1111 1111"))
    harness.run([(transactions, b"{not json"), (transactions, pan)])
    assert [d["reason"] for d in harness.dead] == ["INVALID_JSON", "CARD_NUMBER"]
    assert harness.dead[0]["source"] == {"topic": transactions, "partition": 0, "offset": 0}
    text = str(harness.dead)
    assert "411111******1111" in text  # the raw line is kept, its card number masked
    assert "4111 1111 1111 1111" not in text and "4111111111111111" not in text
    assert harness.published == []


def test_a_restarted_app_rebuilds_from_its_journal_and_publishes_nothing_twice(
    tmp_path: Path,
) -> None:
    data, rows = _simulated(tmp_path)
    first = Harness(tmp_path / "a", data / "config.toml")
    half = len(rows) // 2
    first.run(_messages(first, rows[:half]))
    second = _taking_over(first, tmp_path / "b", data / "config.toml")
    second.run(_messages(second, rows[half:]))
    expected = expected_from_replay(data)
    assert final_states(first.published + second.published) == expected.final
    assert first.published and second.published
    assert not _contents(first.published) & _contents(second.published)


@pytest.mark.parametrize("snapshot", ["current", "another format", "torn"])
def test_a_worker_taking_over_loads_the_snapshot_and_feeds_only_the_journal_after_it(
    tmp_path: Path, snapshot: str
) -> None:
    """The first worker snapshots its partition each time it marks what is published; the one
    taking over loads the newest and feeds its engine the rest of the journal. A snapshot it
    cannot use (written by another format, or its chunks not all there) is set aside for the
    whole journal. Either way: replay's alerts, nothing published twice."""
    data, rows = _simulated(tmp_path)
    first = Harness(tmp_path / "a", data / "config.toml", snapshot_every_entries=1)
    quarter = len(rows) // 4
    first.run(_messages(first, rows[:quarter]))
    first.run(_messages(first, rows[quarter : 2 * quarter]))
    heads = [(k, v) for k, v in first.snapshot_changelog if k.endswith(b"/head")]
    assert len(heads) == 2  # one per mark; the first one's chunks are deleted
    assert sum(1 for _, v in first.snapshot_changelog if v is None) >= 1
    if snapshot == "another format":
        first.snapshot_changelog = [
            (k, v if v is None or k.endswith(b"/head") else v.replace(b'"1.', b'"0.', 1))
            for k, v in first.snapshot_changelog
        ]
    elif snapshot == "torn":
        first.snapshot_changelog = [
            (k, v) for k, v in first.snapshot_changelog if not k.endswith(b"/000000")
        ]
    second = _taking_over(first, tmp_path / "b", data / "config.toml")
    second.run(_messages(second, rows[2 * quarter :]))
    takeover = second.worker.takeovers[0]
    journal = first.worker.inputs[0].pipeline.seq
    if snapshot == "current":
        assert takeover.snapshot_seq == journal and takeover.journal_entries == 0
    else:
        assert takeover.snapshot_seq is None and takeover.journal_entries == journal
    expected = expected_from_replay(data)
    assert final_states(first.published + second.published) == expected.final
    assert not _contents(first.published) & _contents(second.published)


def test_a_record_held_behind_an_active_topic_goes_once_the_broker_says_it_is_all_read(
    tmp_path: Path,
) -> None:
    """The long merge grace (a minute here) is cut short by the broker's end offset."""

    async def scenario() -> None:
        harness = Harness(tmp_path, None, merge_grace_ms=30, merge_active_grace_ms=60_000)
        worker = harness.worker
        transactions, settlements, _, _ = worker.names
        declined = msgspec.json.encode(txn_doc("D1", 0, status="DECLINED"))
        paid = msgspec.json.encode(line_doc("S1", "D1", 60))
        later = msgspec.json.encode(txn_doc("T2", 120))
        async with harness._agent("detect").test_context() as ctx:
            for offset, (topic, raw) in enumerate(
                [(transactions, declined), (settlements, paid), (transactions, later)]
            ):
                harness.broker.ends[TP(topic, 0)] = offset // 2 + 1
                await harness._put(ctx, topic, 0, offset // 2, raw)
            # The broker holds settlements nobody has read yet: the sale waits for them.
            harness.broker.ends[TP(settlements, 0)] = 5
            for _ in range(4):
                await asyncio.sleep(0.04)
                worker.tick()
            assert harness.published == []
            # Everything is read: the sale goes, and closes the step of the settlement.
            harness.broker.ends[TP(settlements, 0)] = 1
            for _ in range(4):
                await asyncio.sleep(0.04)
                worker.tick()
        assert [a["type"] for a in harness.published] == ["SETTLED_WITHOUT_APPROVAL"]

    asyncio.run(scenario())


def test_a_restarted_card_stage_rewinds_card_input_past_the_committed_offset(
    tmp_path: Path,
) -> None:
    """A rebuilt card stage's journal keeps sales, not offsets; the committed offset tells where
    its input goes on, so a first message past it is one past a hole."""
    data, rows = _simulated(tmp_path)
    first = Harness(tmp_path / "a", data / "config.toml")
    first.run(_messages(first, rows[: len(rows) // 2]))
    second = _taking_over(first, tmp_path / "b", data / "config.toml")
    cards = TP(second.worker.cards_topic.get_topic_name(), 0)
    committed = first.card_offsets[0]
    consumer: Any = second.app.consumer
    consumer._committed_offset[cards] = committed  # what Faust knows once assigned

    async def scenario() -> None:
        async with second._agent("card_velocity").test_context() as ctx:
            clock_only = encode_batch(SaleBatch(0, 0, []))
            await second._put(ctx, cards.topic, 0, committed + 3, clock_only)
            await asyncio.sleep(0.05)  # the seek it asks for runs

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert second.seeks == [{cards: committed}]
    assert _rewinds(second, cards.topic) == 1


def _taking_over(first: Harness, tmp: Path, config_file: Path | None, **settings: Any) -> Harness:
    """An app on another machine, with what Faust would recover there: the changelog the first
    app wrote; it reads on where the first one stopped."""
    second = Harness(tmp, config_file, **settings)
    for table, changelog in (
        (second.worker.journal, first.changelog),
        (second.worker.card_journal, first.card_changelog),
        (second.worker.snapshots.table, first.snapshot_changelog),
    ):
        for key, value in changelog:
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
    second.offsets = dict(first.offsets)
    second.card_offsets = dict(first.card_offsets)
    return second


def _contents(published: list[dict[str, Any]]) -> set[bytes]:
    """Each published alert as it reads apart from when the worker sent it."""
    return {
        msgspec.json.encode({k: v for k, v in a.items() if k != "detected_at"}, order="sorted")
        for a in published
    }


def test_a_message_on_the_card_topic_that_is_no_sale_batch_is_skipped(tmp_path: Path) -> None:
    data, rows = _simulated(tmp_path)
    harness = Harness(tmp_path, data / "config.toml")
    messages = _messages(harness, rows)

    async def scenario() -> None:
        await harness.feed(messages[: len(messages) // 2])
        # Someone else wrote to the internal topic: the card stage logs it and goes on.
        nonsense = encode_batch(SaleBatch(10**12, 0, []))
        await harness.feed_cards([(0, b"not msgpack \xc1"), (0, b"\x93\x01"), (0, nonsense)])
        await harness.feed(messages[len(messages) // 2 :])

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))  # a crashed agent would hang
    expected = expected_from_replay(data)
    assert final_states(harness.published) == expected.final


def _rewinds(harness: Harness, topic: str) -> float:
    value = harness.worker.registry.get_sample_value(
        "posguard_input_rewinds_total", {"topic": topic}
    )
    return value or 0.0


def test_a_message_past_a_hole_is_held_back_until_the_consumer_read_the_hole(
    tmp_path: Path,
) -> None:
    data, rows = _simulated(tmp_path)
    harness = Harness(tmp_path, data / "config.toml")
    messages = _messages(harness, rows)
    transactions = harness.worker.names[0]
    at = [i for i, (topic, _) in enumerate(messages) if topic == transactions][200]
    ahead = [raw for topic, raw in messages[at:] if topic == transactions][3]

    async def scenario() -> None:
        await harness.feed(messages[:at])
        published = len(harness.published)
        # The consumer skips three transactions, then is rewound by the worker and reads on.
        await harness.deliver_ahead(transactions, 3, ahead)
        assert harness.seeks == [{TP(transactions, 0): harness.offsets[transactions]}]
        assert len(harness.published) == published
        await harness.feed(messages[at:])

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    assert final_states(harness.published) == expected_from_replay(data).final
    assert _rewinds(harness, transactions) == 1


def test_a_restarted_app_rewinds_input_committed_past_what_its_journal_holds(
    tmp_path: Path,
) -> None:
    """The committed offset of a worker that acknowledged a gap can lie past input its journal
    never got: the next worker reads from the journal's end, not from there."""
    data, rows = _simulated(tmp_path)
    first = Harness(tmp_path / "a", data / "config.toml")
    half = len(rows) // 2
    first.run(_messages(first, rows[:half]))
    second = _taking_over(first, tmp_path / "b", data / "config.toml")
    rest = _messages(second, rows[half:])
    settlements = second.worker.names[1]
    ahead = [raw for topic, raw in rest if topic == settlements][5]

    async def scenario() -> None:
        await second.deliver_ahead(settlements, 5, ahead)
        assert second.seeks == [{TP(settlements, 0): first.offsets[settlements]}]
        await second.feed(rest)

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    expected = expected_from_replay(data)
    assert final_states(first.published + second.published) == expected.final


def test_outcomes_on_the_feedback_topic_are_journaled_and_learnt_and_bad_ones_dead_lettered(
    tmp_path: Path,
) -> None:
    first = Harness(tmp_path / "a", None)
    transactions, _, outcomes, _ = first.worker.names
    sale = msgspec.json.encode(txn_doc("S1", 0, terminal="T9"))
    confirmed = msgspec.json.encode(feedback_doc("F1", "S1", 600))
    bad = msgspec.json.encode({**feedback_doc("F2", "S1", 700), "kind": "PERHAPS"})
    first.run([(transactions, sale), (outcomes, confirmed), (outcomes, bad)])
    assert [(d["kind"], d["reason"]) for d in first.dead] == [("feedback", "SCHEMA_VIOLATION")]
    assert first.dead[0]["source"] == {"topic": outcomes, "partition": 0, "offset": 1}
    engine = first.worker.inputs[0].pipeline.engine
    assert engine.outcomes.accepted == 1
    assert engine.patterns.tracker.terminals["T9"].outcomes is not None
    # Taken over from the journal: the outcome is learnt again, not dead-lettered twice.
    second = _taking_over(first, tmp_path / "b", None)
    second.run([(transactions, msgspec.json.encode(txn_doc("S2", 900, terminal="T9")))])
    rebuilt = second.worker.inputs[0].pipeline.engine
    assert rebuilt.outcomes.accepted == 1 and "F1" in rebuilt.outcomes.known
    assert rebuilt.patterns.tracker.terminals["T9"].outcomes is not None
    assert second.dead == []


def test_payouts_on_their_topic_are_journaled_judged_and_bad_ones_dead_lettered(
    tmp_path: Path,
) -> None:
    first = Harness(tmp_path / "a", None)
    transactions, settlements, _, payouts = first.worker.names
    sale = msgspec.json.encode(txn_doc("S1", 0))
    line = msgspec.json.encode(line_doc("L1", "S1", 3600))
    short = msgspec.json.encode(payout_doc("P1", 9_000, 86_400, batches=["B1"]))
    bad = msgspec.json.encode({**payout_doc("P2", 1, 90_000), "amount_minor": "1.00"})
    first.run([(transactions, sale), (settlements, line), (payouts, short), (payouts, bad)])
    assert [(d["kind"], d["reason"]) for d in first.dead] == [("payout", "SCHEMA_VIOLATION")]
    assert first.dead[0]["source"] == {"topic": payouts, "partition": 0, "offset": 1}
    mismatch = [a for a in first.published if a["type"] == "PAYOUT_MISMATCH"]
    assert [a["details"]["payout_ids"] for a in mismatch] == [["P1"]]
    # Taken over from the journal: the pay-out is known again, not judged or refused twice.
    second = _taking_over(first, tmp_path / "b", None)
    second.run([(payouts, short)])  # Kafka delivers it again
    assert second.worker.inputs[0].pipeline.engine.stats.payouts == 1
    assert second.dead == []
    assert not [a for a in second.published if a["type"] == "PAYOUT_MISMATCH"]
