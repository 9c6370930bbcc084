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
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgspec

from models.forest import ForestModel, model_bytes
from streams import sidecar_wire as wire
from streams.alerts import Alert
from streams.config import Config
from streams.engine.offload import Offload
from streams.engine.outbox import Outbox
from streams.engine.txn_rules import TransactionRules
from streams.events import Transaction
from streams.sidecar_wire import Found, Setup, receive, send

_PIPE_BYTES = 1 << 20
"""The hand-over pipe's size: 16 messages (by default a pipe holds one)."""
_CHUNK = 1 << 13
"""Hand-over entries per message: large enough that messages cost nothing per transaction,
small enough that the sidecar starts long before the engine finishes."""


class SidecarError(Exception):
    """The sidecar process failed; the message says how."""


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
            [sys.executable, "-c", "from streams.sidecar_serve import main; main()"],
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
        self.patterns = None  # the model, if any, runs in the sidecar
        self._model = model is not None
        # The split that keeps both processes about equally busy: with a model the sidecar has
        # the model, so duplicate charges stay in the engine.
        self.terminals = True
        self.duplicates = model is None
        setup = Setup(
            str(transactions),
            config_bytes(config),
            b"" if model is None else model_bytes(model),
            self.terminals,
            self.duplicates,
        )
        self._write(msgspec.msgpack.encode(setup))

    def attach(self, emitted: list[Alert], out: Outbox) -> Sidecar:
        """Where the engine's alerts accumulate: the alerts handed to the driver so far, and the
        engine's outbox (not yet drained). Their lengths place each rule call in the sequence.
        Returns itself: the engine's ``rules``."""
        self._emitted = emitted
        self._out = out
        # What stays in the engine's process (duplicate charges, with a model), into its outbox.
        self._local = TransactionRules(self._config, out, terminals=False, duplicates=True)
        return self

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
        self._pending.extend((wire.RETIME, t.origin[1], t.ts))

    def sale(self, t: Transaction) -> None:
        if self.duplicates:
            # The calls after ``attempt`` are about the transaction it handed over.
            self._call(wire.SALE)
        else:
            self._local.sale(t)

    def card_sale(self, t: Transaction) -> None:
        self._call(wire.CARD_SALE)

    def cancel(self, by: Transaction) -> None:
        if self.duplicates:
            self._call(wire.CANCEL)
        else:
            self._local.cancel(by)

    def sweep(self, tw: int) -> None:
        self._pending.extend((wire.SWEEP, tw))
        if not self.duplicates:
            self._local.sweep(tw)

    # -- the model's calls -------------------------------------------------------------------------

    def on_transaction(self, t: Transaction) -> None:
        if self._model:
            self._call(wire.PATTERNS)

    def expire(self, now: int) -> None:
        if self._model:
            self._pending.extend((wire.FEATURE_SWEEP, now))

    # -- the end ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._write(array("q", self._pending).tobytes())
        self._pending = []

    def _write(self, payload: bytes) -> None:
        try:
            send(self._to, payload)
        except BrokenPipeError:
            raise self._failed() from None

    def _failed(self) -> SidecarError:
        """The error of a sidecar that stopped listening: its own report if it sent one."""
        with contextlib.suppress(EOFError, OSError):
            if receive(self._from) == b"error":
                return SidecarError(receive(self._from).decode("utf-8", "replace"))
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
            status = receive(self._from)
            payload = receive(self._from)
        except EOFError:
            code = self._process.wait()
            raise SidecarError(
                f"replay's sidecar process stopped without an answer (exit code {code})"
            ) from None
        finally:
            self.close()
        if status != b"ok":
            raise SidecarError(payload.decode("utf-8", "replace"))
        found = msgspec.msgpack.decode(payload, type=Found)
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
