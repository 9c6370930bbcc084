"""Reading an input file as the stream reads a topic partition: its lines in file order, each
decoded into an event or dead-lettered with its file and line. Used by replay and by its sidecar
process, which must number the lines the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streams.cardmask import IdCheck
from streams.deadletter import DeadLetter, make_dead_letter
from streams.decode import BadInputError, EventDecoder
from streams.events import Event, EventKind, Transaction

DeadLetterSink = Callable[[DeadLetter], None]
Admit = Callable[[Transaction], None]
"""The engine's clock, given each transaction as it is read (``Engine.admit``)."""
ProgressHook = Callable[[int], None]
"""Called now and then with the number of input bytes read since the last call."""


@dataclass(slots=True)
class ReplayReport:
    transactions: int = 0
    settlements: int = 0
    outcomes: int = 0
    payouts: int = 0
    lines: int = 0
    redeliveries: int = 0
    alert_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    final_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    sorted_in_memory: list[str] = field(default_factory=list)
    """Files sorted by event time before replay, as asked."""
    out_of_order: Counter[str] = field(default_factory=Counter)
    """Per file, events whose time is earlier than the one before them in the file."""
    unsettled_count: int = 0
    """Approved transactions still awaiting settlement at the end of input (within retention)."""
    unsettled_minor: Counter[str] = field(default_factory=Counter)
    """Their money, per currency."""
    unpaid_minor: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per merchant and currency, settlement batches not paid out at the end of input."""
    seconds: float = 0.0


_BOM = b"\xef\xbb\xbf"


def _line_blocks(path: Path, chunk: int = 1 << 22) -> Iterator[list[bytes]]:
    """The file's lines (without newlines) in blocks read 4 MiB at a time: several times cheaper
    per line than iterating the file object. JSON tolerates the ``\r`` of a CRLF file; a UTF-8
    byte-order mark (spreadsheet exports write one) is dropped."""
    tail = b""
    with path.open("rb") as fh:
        first = fh.read(len(_BOM))
        if first != _BOM:
            tail = first
        while block := fh.read(chunk):
            parts = (tail + block).split(b"\n")
            tail = parts.pop()
            yield parts
    if tail:
        yield [tail]


class FileReader:
    """Decodes one file's lines into events; bad lines go to the dead-letter sink."""

    def __init__(
        self,
        path: Path,
        kind: EventKind,
        dead_letter: DeadLetterSink,
        report: ReplayReport,
        progress: ProgressHook | None,
        id_check: IdCheck = "networks",
    ) -> None:
        self.id_check: IdCheck = id_check
        self.path = path
        self.kind: EventKind = kind
        self.dead_letter = dead_letter
        self.report = report
        self.progress = progress

    def events(self, admit: Admit | None = None) -> Iterator[Event]:
        """The file's events in file order (bad lines go to the dead letters as they are read),
        each handed to ``admit`` as it is read."""
        decode = EventDecoder(self.kind, self.id_check).decode
        name = str(self.path)
        report = self.report
        progress = self.progress
        consumed = 0
        last = -(2**63)
        late = 0
        lines = 0
        number = 0
        for block in _line_blocks(self.path):
            for raw in block:
                number += 1
                if not raw or raw.isspace():
                    continue
                lines += 1
                if progress is not None:
                    consumed += len(raw) + 1
                    if not number & 0x1FFF:
                        progress(consumed)
                        consumed = 0
                try:
                    event = decode(raw)
                except BadInputError as bad:
                    report.dead_letters[bad.reason] += 1
                    self.dead_letter(
                        make_dead_letter(
                            bad.reason,
                            bad.detail,
                            self.kind,
                            {"file": name, "line": number},
                            raw,
                        )
                    )
                    continue
                if event.ts < last:
                    late += 1
                else:
                    last = event.ts
                event.origin = (name, number, raw)
                if admit is not None:
                    admit(event)  # type: ignore[arg-type]
                yield event
        report.lines += lines
        if late:
            report.out_of_order[name] += late

    def ordered(self, by_event_time: bool, admit: Admit | None = None) -> Iterator[Event]:
        """File order, or (asked for) sorted by event time, ties in file order; each event is
        handed to ``admit`` in that order."""
        if not by_event_time:
            return self.events(admit)
        self.report.sorted_in_memory.append(str(self.path))
        ordered = sorted(self.events(), key=lambda e: e.ts)
        if admit is not None:  # in the order the engine will see them
            for event in ordered:
                admit(event)  # type: ignore[arg-type]
        return iter(ordered)
