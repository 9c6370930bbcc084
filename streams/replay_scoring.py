"""Replay with a model: the model's work runs in a second process, beside the engine.

With a model loaded, replay's engine would spend about as long on the model (feature state for
every transaction, a forest walk for every approved sale) as on all the rules together. That work
depends only on the transactions the engine accepts, in the order it accepts them, and nothing it
decides feeds back into the rules. So the engine hands each accepted transaction over as its line
number in the transactions file (and each sweep of the feature state as its time), and a second
process decodes that file itself and runs the same ``SuspiciousPatterns`` on the same events in
the same order. Each SUSPICIOUS_PATTERN alert comes back with the place in the engine's alert
sequence that was current when its transaction was handed over, where inline scoring would have
emitted it: the output is the same, alert for alert, and the two halves use both cores.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import traceback
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import msgspec

from models.forest import ForestModel, model_bytes, model_from_bytes
from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import RuleConfig, Severity, SuspiciousPatternConfig
from streams.decode import BadInputError, EventDecoder
from streams.engine.outbox import Outbox
from streams.engine.patterns import SuspiciousPatterns
from streams.events import Transaction
from streams.lines import line_blocks

_CHUNK = 1 << 13
"""Hand-over entries per message: large enough that messages cost nothing per transaction,
small enough that the scoring process starts long before the engine finishes."""
_SWEEP = 0
"""Marks a sweep in the hand-over stream (line numbers start at 1); the next entry is its time."""

_Found = list[tuple[int, Alert]]
"""(index of the transaction in the hand-over sequence, the alert it raised)."""


class _Setup(msgspec.Struct, frozen=True):
    """What the scoring process is told first. Plain field types only: this module is compiled,
    and mypyc keeps no ``Literal`` in annotations for msgspec to read."""

    transactions: str
    rule_enabled: bool
    rule_severity: str
    model: bytes


class ScoringProcessError(Exception):
    """The scoring process failed; the message says how."""


def _send(fh: IO[bytes], payload: bytes) -> None:
    fh.write(len(payload).to_bytes(8, "little"))
    fh.write(payload)


def _receive(fh: IO[bytes]) -> bytes:
    size = fh.read(8)
    if len(size) < 8:
        raise EOFError
    payload = fh.read(int.from_bytes(size, "little"))
    if len(payload) < int.from_bytes(size, "little"):
        raise EOFError
    return payload


class ModelHandOff:
    """The engine's side: implements ``DeferredPatterns`` for ``SuspiciousPatterns.defer_to``.

    The scoring process is a plain ``python -c`` child talking over its stdin and stdout (not
    ``multiprocessing``, which would re-run an unguarded main script of the caller's)."""

    def __init__(self, transactions: Path, rule: RuleConfig, model: ForestModel) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from streams.replay_scoring import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to: IO[bytes] = self._process.stdin
        self._from: IO[bytes] = self._process.stdout
        setup = _Setup(str(transactions), rule.enabled, rule.severity, model_bytes(model))
        self._pending = array("q")
        self._positions = array("q")
        self._emitted: list[Alert] = []
        self._out: Outbox | None = None
        self._write(msgspec.msgpack.encode(setup))

    def attach(self, emitted: list[Alert], out: Outbox) -> None:
        """Where the engine's alerts accumulate: the alerts handed to the driver so far, and the
        engine's outbox (not yet drained). Their lengths place each hand-over in the sequence."""
        self._emitted = emitted
        self._out = out

    def on_transaction(self, t: Transaction) -> None:
        out = self._out
        assert out is not None and t.origin is not None, "attach() first; events from a file"
        self._positions.append(len(self._emitted) + len(out.alerts))
        pending = self._pending
        pending.append(t.origin[1])
        if len(pending) >= _CHUNK:
            self._flush()

    def expire(self, now: int) -> None:
        self._pending.extend((_SWEEP, now))

    def _flush(self) -> None:
        self._write(self._pending.tobytes())
        self._pending = array("q")

    def _write(self, payload: bytes) -> None:
        try:
            _send(self._to, payload)
        except BrokenPipeError:
            raise self._failed() from None

    def _failed(self) -> ScoringProcessError:
        """The error of a scoring process that stopped listening: its own report if it sent one."""
        try:
            if _receive(self._from) == b"error":
                return ScoringProcessError(_receive(self._from).decode("utf-8", "replace"))
        except (EOFError, OSError):
            pass
        code = self._process.wait()
        return ScoringProcessError(f"the replay's scoring process stopped (exit code {code})")

    def finish(self) -> list[tuple[int, Alert]]:
        """Wait for the scoring process; its alerts, each with the index in the engine's alert
        sequence it belongs before (non-decreasing)."""
        if self._pending:
            self._flush()
        self._write(b"")
        self._to.flush()
        try:
            status = _receive(self._from)
            payload = _receive(self._from)
        except EOFError:
            code = self._process.wait()
            raise ScoringProcessError(
                f"the replay's scoring process stopped without an answer (exit code {code})"
            ) from None
        finally:
            self.close()
        if status != b"ok":
            raise ScoringProcessError(payload.decode("utf-8", "replace"))
        found = msgspec.msgpack.decode(payload, type=_Found)
        positions = self._positions
        return [(positions[seq], alert) for seq, alert in found]

    def close(self) -> None:
        """Stop the scoring process (after ``finish``, or when a run is abandoned)."""
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


def _transactions_by_line(path: Path) -> Iterator[tuple[int, Transaction]]:
    """The file's valid transactions with their line numbers, numbered as the file driver does
    (every line counts, blank ones too; invalid ones are the driver's to dead-letter)."""
    decode = EventDecoder("transaction").decode
    number = 0
    for block in line_blocks(path):
        for raw in block:
            number += 1
            if not raw or raw.isspace():
                continue
            try:
                event = decode(raw)
            except BadInputError:
                continue
            assert isinstance(event, Transaction)
            yield number, event


def _score(source: IO[bytes]) -> _Found:
    """The transactions named by the hand-over, through the model."""
    setup = msgspec.msgpack.decode(_receive(source), type=_Setup)
    severity = cast(Severity, setup.rule_severity)  # the engine's side read it from a Config
    rule = SuspiciousPatternConfig(enabled=setup.rule_enabled, severity=severity)
    out = Outbox()
    patterns = SuspiciousPatterns(rule, out, track=True)
    patterns.set_scorer(Scorer(model_from_bytes(setup.model, "the replay's model")))
    events = _transactions_by_line(Path(setup.transactions))
    waiting: dict[int, Transaction] = {}  # decoded ahead of their turn (or never named)
    found: _Found = []
    seq = 0
    while chunk := _receive(source):
        entries = array("q")
        entries.frombytes(chunk)
        i, n = 0, len(entries)
        while i < n:
            line = entries[i]
            if line == _SWEEP:
                patterns.expire(entries[i + 1])
                i += 2
                continue
            t = waiting.pop(line, None)
            while t is None:
                number, event = next(events)
                if number == line:
                    t = event
                else:
                    waiting[number] = event
            patterns.on_transaction(t)
            if out.alerts:
                found.extend((seq, alert) for alert in out.alerts)
                out.alerts.clear()
            seq += 1
            i += 1
    return found


def main() -> None:
    """The scoring process's entry point: requests on stdin, the answer on stdout."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    try:
        payload = msgspec.msgpack.encode(_score(source))
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
