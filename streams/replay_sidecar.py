"""Replay on two cores: rules that read nothing but the transactions run in a second process.

Some of the work replay does per transaction depends only on the transactions the engine accepts,
in the order it accepts them (and on which sales were cancelled), and feeds nothing back into the
other rules: terminal health, card velocity, duplicate charges and, with a model loaded, the
model's feature state and forest walk. The engine hands each accepted transaction over as its line
number in the transactions file (8 bytes), each of its calls to those rules as a marker, and each
sweep of short-lived state as its time; the sidecar process decodes the file itself and runs the
same rule code on the same events in the same order. Every alert it raises comes back with the
place in the engine's alert sequence that was current when the engine made that call, where the
engine would have emitted it itself: the output is the same, alert for alert.

Without a model the sidecar takes terminal health, card velocity and duplicate charges; with one,
duplicate charges stay in the engine, which keeps the two processes about equally busy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import pickle
import subprocess
import sys
import threading
import traceback
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import SimpleQueue
from typing import IO, Any

import msgspec

from models.forest import ForestModel, model_bytes, model_from_bytes
from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import Config
from streams.engine.offload import Offload
from streams.engine.outbox import Outbox
from streams.engine.patterns import SuspiciousPatterns
from streams.engine.txn_rules import TransactionRules
from streams.events import Transaction
from streams.filereader import FileReader, ReplayReport

_PIPE_BYTES = 1 << 20
"""The hand-over pipe's size: 16 messages (by default a pipe holds one)."""
_CHUNK = 1 << 13
"""Hand-over entries per message: large enough that messages cost nothing per transaction,
small enough that the sidecar starts long before the engine finishes."""
# The hand-over is a sequence of 64-bit entries, one per rule call of the engine's, in its order:
# a positive entry is the line number of a transaction the engine accepted (terminal health for
# it, and it becomes the transaction the next calls are about); the markers below are the other
# calls (line numbers start at 1).
_SWEEP = 0
"""A sweep of short-lived state; its time follows."""
_FEATURE_SWEEP = -1
"""A sweep of the model's feature state; its time follows."""
_SALE = -2
"""Duplicate charges for the transaction (an approved sale nothing has cancelled)."""
_CARD_SALE = -3
"""Card velocity for the transaction (an approved sale)."""
_CANCEL = -4
"""Duplicate charges for the transaction's cancellation of its original."""
_PATTERNS = -5
"""The model for the transaction."""
_RETIME = -6
"""The partition's clock gave a transaction another time than its own; its line number and
that time follow (before the transaction is handed over)."""

_Found = list[tuple[int, Alert]]
"""(index of the rule call in the hand-over sequence, the alert it raised)."""


class _Setup(msgspec.Struct, frozen=True):
    """What the sidecar is told first. The configuration is pickled (it is this process's own
    object, sent down a pipe to a child); the model goes as its verified file content, empty for
    none. Plain field types only: this module is compiled, and mypyc keeps no unions or
    ``Literal`` in annotations for msgspec to read."""

    transactions: str
    config: bytes
    model: bytes
    terminals: bool
    duplicates: bool


class SidecarError(Exception):
    """The sidecar process failed; the message says how."""


def _send(fh: IO[bytes], payload: bytes) -> None:
    fh.write(len(payload).to_bytes(8, "little"))
    fh.write(payload)


def _receive(fh: IO[bytes]) -> bytes:
    header = fh.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    payload = fh.read(size)
    if len(payload) < size:
        raise EOFError
    return payload


def _rebuild(cls: Callable[..., Any], values: dict[str, Any]) -> Any:
    return cls(**values)


def _reduce_dataclass(obj: Any) -> tuple[Any, ...]:
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return (_rebuild, (type(obj), values))


def _dataclass_types(value: object, found: set[type]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found.add(type(value))
        for f in dataclasses.fields(value):
            _dataclass_types(getattr(value, f.name), found)
    elif isinstance(value, dict):
        for item in value.values():
            _dataclass_types(item, found)


def config_bytes(config: Config) -> bytes:
    """``config`` pickled through its constructors: the compiled, frozen dataclasses cannot be
    restored attribute by attribute, which is how pickle restores them by default."""
    types: set[type] = set()
    _dataclass_types(config, types)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dispatch_table = {cls: _reduce_dataclass for cls in types}
    pickler.dump(config)
    return buffer.getvalue()


def _widen(pipe: IO[bytes]) -> None:
    """Let the pipe hold 1 MiB (Linux; elsewhere it keeps its size). The sidecar's reading thread
    needs its interpreter lock to take each message, which it may wait for while the sidecar
    works; a pipe that holds a single message (64 KiB) would make the engine wait with it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), set_size, _PIPE_BYTES)


class Sidecar(Offload):
    """The engine's side: the engine's offload, and with a model the patterns' too."""

    def __init__(self, transactions: Path, config: Config, model: ForestModel | None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from streams.replay_sidecar import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to: IO[bytes] = self._process.stdin
        _widen(self._to)
        self._from: IO[bytes] = self._process.stdout
        # Lists, not arrays, while the engine runs: a compiled list append costs far less than a
        # method call on an array. Line numbers go in the order the sidecar reads them.
        self._pending: list[int] = []
        self._positions: list[int] = []
        self._emitted: list[Alert] = []
        self._out = Outbox()
        self._config = config
        self._local = TransactionRules(config, self._out, terminals=False, duplicates=True)
        # The split that keeps both processes about equally busy: with a model the sidecar has
        # the model, so duplicate charges stay in the engine.
        self.terminals = True
        self.duplicates = model is None
        setup = _Setup(
            str(transactions),
            config_bytes(config),
            b"" if model is None else model_bytes(model),
            self.terminals,
            self.duplicates,
        )
        self._write(msgspec.msgpack.encode(setup))

    def attach(self, emitted: list[Alert], out: Outbox) -> None:
        """Where the engine's alerts accumulate: the alerts handed to the driver so far, and the
        engine's outbox (not yet drained). Their lengths place each rule call in the sequence."""
        self._emitted = emitted
        self._out = out
        # What stays in the engine's process (duplicate charges, with a model), into its outbox.
        self._local = TransactionRules(self._config, out, terminals=False, duplicates=True)

    def _place(self) -> None:
        self._positions.append(len(self._emitted) + len(self._out.alerts))

    def _call(self, entry: int) -> None:
        self._place()
        self._pending.append(entry)  # the next ``attempt`` checks the message size

    # -- the engine's calls ------------------------------------------------------------------------

    def attempt(self, t: Transaction) -> None:
        assert t.origin is not None, "replay's events come from a file"
        if self.terminals:
            self._place()
        pending = self._pending
        pending.append(t.origin[1])
        if len(pending) >= _CHUNK:
            self._flush()

    def retime(self, t: Transaction) -> None:
        assert t.origin is not None, "replay's events come from a file"
        self._pending.extend((_RETIME, t.origin[1], t.ts))

    def sale(self, t: Transaction) -> None:
        if self.duplicates:
            self._call(
                _SALE
            )  # the calls after ``attempt`` are about the transaction it handed over
        else:
            self._local.sale(t)

    def card_sale(self, t: Transaction) -> None:
        self._call(_CARD_SALE)

    def cancel(self, by: Transaction) -> None:
        if self.duplicates:
            self._call(_CANCEL)
        else:
            self._local.cancel(by)

    def sweep(self, tw: int) -> None:
        self._pending.extend((_SWEEP, tw))
        if not self.duplicates:
            self._local.sweep(tw)

    # -- the patterns' calls with a model ---------------------------------------------------------

    def on_transaction(self, t: Transaction) -> None:
        self._call(_PATTERNS)

    def expire(self, now: int) -> None:
        self._pending.extend((_FEATURE_SWEEP, now))

    # -- the end ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._write(array("q", self._pending).tobytes())
        self._pending = []

    def _write(self, payload: bytes) -> None:
        try:
            _send(self._to, payload)
        except BrokenPipeError:
            raise self._failed() from None

    def _failed(self) -> SidecarError:
        """The error of a sidecar that stopped listening: its own report if it sent one."""
        with contextlib.suppress(EOFError, OSError):
            if _receive(self._from) == b"error":
                return SidecarError(_receive(self._from).decode("utf-8", "replace"))
        code = self._process.wait()
        return SidecarError(f"replay's sidecar process stopped (exit code {code})")

    def finish(self) -> list[tuple[int, Alert]]:
        """Wait for the sidecar; its alerts, each with the index in the engine's alert sequence
        it belongs before (non-decreasing)."""
        if self._pending:
            self._flush()
        self._write(b"")
        self._to.flush()
        try:
            status = _receive(self._from)
            payload = _receive(self._from)
        except EOFError:
            code = self._process.wait()
            raise SidecarError(
                f"replay's sidecar process stopped without an answer (exit code {code})"
            ) from None
        finally:
            self.close()
        if status != b"ok":
            raise SidecarError(payload.decode("utf-8", "replace"))
        found = msgspec.msgpack.decode(payload, type=_Found)
        positions = self._positions
        return [(positions[call], alert) for call, alert in found]

    def close(self) -> None:
        """Stop the sidecar (after ``finish``, or when a run is abandoned)."""
        for fh in (self._to, self._from):
            with contextlib.suppress(BrokenPipeError):
                fh.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def merge_alerts(engine_alerts: list[Alert], placed: list[tuple[int, Alert]]) -> list[Alert]:
    """``engine_alerts`` with each of ``placed`` inserted before the engine alert at its index."""
    if not placed:
        return engine_alerts
    merged: list[Alert] = []
    taken = 0
    for position, alert in placed:
        merged.extend(engine_alerts[taken:position])
        taken = max(taken, position)
        merged.append(alert)
    merged.extend(engine_alerts[taken:])
    return merged


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
        self.found: _Found = []
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
        if entry == _SALE:
            self.rules.sale(t)
        elif entry == _CARD_SALE:
            self.rules.card_sale(t)
        elif entry == _CANCEL:
            self.rules.cancel(t)
        elif entry == _PATTERNS:
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
            while message := _receive(source):
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


def _serve(source: IO[bytes]) -> _Found:
    """The transactions named by the hand-over, through the sidecar's rules."""
    setup = msgspec.msgpack.decode(_receive(source), type=_Setup)
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
            if line == _SWEEP:
                rules.sweep(entries[i + 1])
                i += 2
                continue
            if line == _FEATURE_SWEEP:
                rules.feature_sweep(entries[i + 1])
                i += 2
                continue
            if line == _RETIME:
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
        _send(sink, status)
        _send(sink, payload)
        sink.flush()
    except BrokenPipeError:
        return
