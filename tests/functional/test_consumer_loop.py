"""The worker's consumer loop (``streams/worker/transport.py``), on a stand-in fetch (no broker).

A rewound partition is handed over below Faust's read offset too: Faust drops every message
below it, and each message handed over moves it, so a message fetched before a seek and handed
over after it would hide the very messages the seek was for. Offsets are never committed past a
message handed over and not yet acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from faust.types import TP, Message

from streams.config import Config
from streams.worker.app import build_app
from streams.worker.settings import WorkerSettings
from streams.worker.transport import rewind


def _message(tp: TP, offset: int) -> Message:
    return Message(
        topic=tp.topic, partition=tp.partition, offset=offset, timestamp=time.time(),
        timestamp_type=0, headers=None, key=b"k", value=b"{}", checksum=b"",
        serialized_key_size=1, serialized_value_size=2,
    )  # fmt: skip


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


def _app(tmp_path: Path) -> Any:
    settings = WorkerSettings(
        broker_url="kafka://127.0.0.1:9",  # never contacted
        data_dir=tmp_path,
        group="loop",
        store="memory",
    )
    app, _ = build_app(settings, Config())
    # As once the agents subscribed: the worker acknowledges what it reads itself.
    app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
    return app


def _serve(consumer: Any, *batches: list[tuple[TP, int]]) -> _Fetcher:
    """Make ``consumer``'s fetches return ``batches``; the returned fetcher stops after them."""
    fetcher = _Fetcher()
    queue = list(batches)

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, offset in queue.pop(0):
            yield tp, _message(tp, offset)
        if not queue:
            fetcher._stopped.set()

    consumer.getmany = getmany
    return fetcher


def _ack(consumer: Any, tp: TP, *offsets: int) -> None:
    """What ``Consumer.ack`` records for each message."""
    consumer._acked[tp].extend(offsets)
    consumer._acked_index[tp].update(offsets)


def test_a_rewound_partition_is_read_again_below_the_read_offset(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = _app(tmp_path)
        consumer: Any = app.consumer
        lines, sales = TP("settlements", 0), TP("transactions", 0)
        # The rest of the first batch, and 146 of the second (a fetch under way when the seek
        # was asked for), come from before the seek and move the read offset past it again.
        fetcher = _serve(
            consumer,
            [(lines, 144), (sales, 70), (lines, 145)],
            [(lines, 146), (lines, 3), (lines, 4), (sales, 71), (sales, 69)],
        )
        sought: list[Mapping[TP, int]] = []

        async def seek_wait(partitions: Mapping[TP, int]) -> None:  # what Faust's does
            sought.append(dict(partitions))
            consumer._read_offset.update(partitions)

        delivered: list[tuple[str, int]] = []

        async def callback(message: Message) -> None:
            delivered.append((message.topic, message.offset))
            if (message.topic, message.offset) == ("settlements", 144):
                await rewind(app, lines, 3)  # the offset guard found 3..143 unread

        consumer.seek_wait = seek_wait
        consumer.callback = callback
        await consumer._drain_messages(fetcher)
        assert sought == [{lines: 3}]
        # The offset guard drops 145 and 146. Transactions were not rewound: Faust's own rule
        # (nothing below the read offset) still holds for them.
        assert delivered == [
            ("settlements", 144),
            ("transactions", 70),
            ("settlements", 145),
            ("settlements", 146),
            ("settlements", 3),
            ("settlements", 4),
            ("transactions", 71),
        ]

    asyncio.run(scenario())


def test_offsets_are_not_committed_past_a_message_handed_over_and_not_acknowledged(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        app = _app(tmp_path)
        consumer: Any = app.consumer
        cards = TP(app.conf.id + "-cards", 0)  # acknowledged by the worker, out of order
        consumer._read_offset[cards] = 10
        consumer._committed_offset[cards] = 10
        fetcher = _serve(consumer, [(cards, 10), (cards, 11), (cards, 12)])

        async def callback(message: Message) -> None:
            return None

        consumer.callback = callback
        await consumer._drain_messages(fetcher)
        _ack(consumer, cards, 11, 12)  # 10 waits for its sales to be judged
        assert consumer._new_offset(cards) is None  # Faust alone would commit 13
        _ack(consumer, cards, 10)
        assert consumer._new_offset(cards) == 13

    asyncio.run(scenario())


def test_offsets_missing_from_the_log_do_not_hold_commits_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = _app(tmp_path)
        consumer: Any = app.consumer
        cards = TP(app.conf.id + "-cards", 0)
        consumer._read_offset[cards] = 100
        consumer._committed_offset[cards] = 100
        # 100..104 are not in the log (transaction markers): nothing was handed over there.
        fetcher = _serve(consumer, [(cards, 105), (cards, 106)])

        async def callback(message: Message) -> None:
            return None

        consumer.callback = callback
        await consumer._drain_messages(fetcher)
        _ack(consumer, cards, 105, 106)
        assert consumer._new_offset(cards) is not None  # Faust commits over the gap

    asyncio.run(scenario())
