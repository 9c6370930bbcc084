"""Every message the worker writes stays below the broker's size limit, whatever arrived: dead
letters keep a bounded part of their input, journal batches and sale batches are cut to size."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.cardmask import is_card_number
from streams.config import Config
from streams.deadletter import MAX_RAW_BYTES, MAX_RAW_CHARS, make_dead_letter
from streams.worker.journal import decode_entry, unpack_batch
from streams.worker.journal_table import JournalTable
from streams.worker.merge import TRANSACTIONS
from streams.worker.pipeline import PartitionPipeline
from streams.worker.settings import WorkerSettings

CARD = "4111111111111111"


def test_a_huge_bad_input_is_cut_after_masking_and_says_so() -> None:
    # A card number across the cut: masked before the text is cut, so no digits of it leak.
    raw = ("x" * (MAX_RAW_CHARS - 8) + CARD + "y" * 100_000).encode()
    letter = make_dead_letter("INVALID_JSON", "bad", "transaction", {"line": 1}, raw)
    assert letter.raw_truncated and len(letter.raw) == MAX_RAW_CHARS
    assert "41111111" not in letter.raw and not is_card_number(letter.raw[-8:])
    small = make_dead_letter("INVALID_JSON", "bad", "transaction", {"line": 1}, b"{oops")
    assert not small.raw_truncated and b"raw_truncated" not in msgspec.json.encode(small)


def test_a_restored_huge_bad_input_gives_the_same_dead_letter() -> None:
    raw = "é".join(["z" * 999] * 200).encode()  # 200 KB, multi-byte characters across the cut
    pipe = PartitionPipeline(0, Config(), ("tx", "st", "fb", "po"))
    pipe.offer(TRANSACTIONS, 0, raw)
    pipe.release(lambda side: True)
    out = pipe.take()
    assert all(len(data) <= MAX_RAW_BYTES + 512 for _, data in out.journal)
    rebuilt = PartitionPipeline(0, Config(), ("tx", "st", "fb", "po"))
    rebuilt.restore([(seq, decode_entry(data)) for seq, data in out.journal], published=0)
    again = rebuilt.take()
    assert [msgspec.to_builtins(d) for d in again.dead_letters] == [
        msgspec.to_builtins(d) for d in out.dead_letters
    ]
    assert out.dead_letters and out.dead_letters[0].raw_truncated


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent: list[bytes] = []

    def send_changelog(self, p: int, key: bytes, value: Any, **_: Any) -> None:
        self.sent.append(value)


def test_journal_batches_stay_below_the_budget() -> None:
    table = _Table()
    journal = JournalTable(table, "partition", max_bytes=10_000)
    entries = [(seq, b"e" * (100 + seq % 900)) for seq in range(2000)]
    journal.append(0, entries)
    batches = [unpack_batch(value) for value in table.sent]
    assert [e for batch in batches for e in batch] == [data for _, data in entries]
    assert all(len(value) <= 10_000 for value in table.sent)
    assert len(batches) > 100


def test_the_value_budget_leaves_room_for_key_and_record_batch() -> None:
    assert WorkerSettings().value_budget < WorkerSettings().max_message_bytes
    assert WorkerSettings(max_message_bytes=20_000).value_budget <= 20_000 - 1024


def test_producer_batches_fit_the_limit_too() -> None:
    # The broker's limit applies to a record batch: a batch of small messages must fit as well.
    assert WorkerSettings().producer_batch_bytes == 16_384
    assert WorkerSettings(max_message_bytes=12_000).producer_batch_bytes <= 12_000 - 512


def test_a_journal_loaded_after_a_snapshot_reads_only_batches_that_reach_past_it() -> None:
    table = _Table()
    journal = JournalTable(table, "partition", max_bytes=10_000)
    entries = [(seq, b"e%d" % seq + b"." * (seq % 700)) for seq in range(5000)]
    journal.append(0, entries)
    for skip in (0, 1, 1234, 4999, 5000):
        again = JournalTable(table, "partition")
        assert again.load(0, skip) == entries[skip:]
        assert again.span[0] == (0, 5000)
    # Trimming still knows every batch, those it did not read too.
    again = JournalTable(table, "partition")
    again.load(0, 4000)
    again.trim(0, 3000)
    kept = JournalTable(table, "partition").load(0)
    assert 2000 < kept[0][0] <= 3000 and kept[-1][0] == 4999
