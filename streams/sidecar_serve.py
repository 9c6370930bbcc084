"""Replay's sidecar process: the transactions the engine's hand-over names, through the same
rule code as the engine would have run them (``streams/replay_sidecar.py`` says what it takes
and why)."""

from __future__ import annotations

import pickle
import sys
import threading
import traceback
from array import array
from collections.abc import Iterator
from pathlib import Path
from queue import SimpleQueue
from typing import IO

import msgspec

from models.forest import ForestModel, model_from_bytes
from models.scorer import Scorer
from streams.config import Config
from streams.engine.outbox import Outbox
from streams.engine.patterns import SuspiciousPatterns
from streams.engine.txn_rules import TransactionRules
from streams.events import Transaction
from streams.filereader import FileReader, ReplayReport
from streams.sidecar_wire import (
    CANCEL,
    CARD_SALE,
    FEATURE_SWEEP,
    PATTERNS,
    RETIME,
    SALE,
    SWEEP,
    Found,
    Setup,
    receive,
    send,
)


def _transactions_by_line(path: Path, config: Config) -> Iterator[tuple[int, Transaction]]:
    """The file's valid transactions with their line numbers, read by the file driver's own
    reader, so that the numbering is the driver's (invalid lines are the driver's to
    dead-letter)."""
    reader = FileReader(
        path,
        "transaction",
        lambda _letter: None,
        ReplayReport(),
        None,
        config.card_numbers_in_ids,
    )
    for event in reader.events():
        assert isinstance(event, Transaction) and event.origin is not None
        yield event.origin[1], event


class _Rules:
    """The sidecar's rules, called as the engine would have called them: the engine's own
    transaction-only rules, and with a model the patterns; each alert noted with the call that
    raised it."""

    def __init__(
        self, config: Config, model: ForestModel | None, terminals: bool, duplicates: bool
    ) -> None:
        self.out = Outbox()
        self.found: Found = []
        self.calls = 0
        self.run_terminals = terminals
        self.rules = TransactionRules(config, self.out, terminals, duplicates)
        self.patterns: SuspiciousPatterns | None = None
        if model is not None:
            self.patterns = SuspiciousPatterns(config.suspicious_pattern, self.out, track=True)
            self.patterns.set_scorer(Scorer(model))

    def _called(self) -> None:
        out = self.out
        if out.alerts:
            self.found.extend((self.calls, alert) for alert in out.alerts)
            out.alerts.clear()
        self.calls += 1

    def call(self, entry: int, t: Transaction) -> None:
        """One of the engine's calls (a marker) about transaction ``t``."""
        if entry == SALE:
            self.rules.sale(t)
        elif entry == CARD_SALE:
            self.rules.card_sale(t)
        elif entry == CANCEL:
            self.rules.cancel(t)
        elif entry == PATTERNS:
            assert self.patterns is not None
            self.patterns.on_transaction(t)
        else:
            raise ValueError(f"unknown hand-over entry {entry}")
        self._called()

    def attempt(self, t: Transaction) -> None:
        if self.run_terminals:
            self.rules.attempt(t)
            self._called()

    def sweep(self, tw: int) -> None:
        self.rules.sweep(tw)

    def feature_sweep(self, now: int) -> None:
        assert self.patterns is not None
        self.patterns.expire(now)


def _read_ahead(source: IO[bytes]) -> Iterator[bytes]:
    """The hand-over's messages up to the empty one that ends it, read by a thread as they come.

    The engine's side must never wait for the sidecar: a pipe holds 64 KiB (8 messages' worth of
    transactions), while the sidecar falls behind by far more during a stretch of transactions
    and catches up during the settlement batches in between. Unread messages wait here instead
    (8 bytes per transaction). A failed read is raised in the sidecar's own thread.
    """
    arrived: SimpleQueue[bytes | BaseException] = SimpleQueue()

    def read() -> None:
        try:
            while message := receive(source):
                arrived.put(message)
            arrived.put(b"")
        except BaseException as exc:  # handed to the reading thread
            arrived.put(exc)

    threading.Thread(target=read, name="hand-over reader", daemon=True).start()
    while True:
        item = arrived.get()
        if isinstance(item, BaseException):
            raise item
        if not item:
            return
        yield item


def _serve(source: IO[bytes]) -> Found:
    """The transactions named by the hand-over, through the sidecar's rules."""
    setup = msgspec.msgpack.decode(receive(source), type=Setup)
    config = pickle.loads(setup.config)  # the parent process's own object, over a pipe
    assert isinstance(config, Config)
    model = model_from_bytes(setup.model, "replay's model") if setup.model else None
    rules = _Rules(config, model, setup.terminals, setup.duplicates)
    events = _transactions_by_line(Path(setup.transactions), config)
    waiting: dict[int, Transaction] = {}  # decoded ahead of their turn (or never named)
    retimed: dict[int, int] = {}  # line number -> the time the engine's clock gave it
    current: Transaction | None = None  # the transaction the engine's calls are about
    for chunk in _read_ahead(source):
        entries = array("q")
        entries.frombytes(chunk)
        i, n = 0, len(entries)
        while i < n:
            line = entries[i]
            if line == SWEEP:
                rules.sweep(entries[i + 1])
                i += 2
                continue
            if line == FEATURE_SWEEP:
                rules.feature_sweep(entries[i + 1])
                i += 2
                continue
            if line == RETIME:
                retimed[entries[i + 1]] = entries[i + 2]
                i += 3
                continue
            i += 1
            if line < 0:
                assert current is not None, "a rule call before any transaction"
                rules.call(line, current)
                continue
            t = waiting.pop(line, None)
            while t is None:
                number, event = next(events)
                if number == line:
                    t = event
                else:
                    waiting[number] = event
            if retimed:
                t.ts = retimed.pop(line, t.ts)
            current = t
            rules.attempt(t)
    return rules.found


def main() -> None:
    """The sidecar's entry point: the hand-over on stdin, the alerts on stdout."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    try:
        payload = msgspec.msgpack.encode(_serve(source))
    except EOFError:
        return  # the engine's side abandoned the run (a file to sort first) or stopped
    except BaseException:  # any failure goes back to the engine's side
        status, payload = b"error", traceback.format_exc().encode()
    else:
        status = b"ok"
    try:
        send(sink, status)
        send(sink, payload)
        sink.flush()
    except BrokenPipeError:
        return
