"""The file driver: JSON Lines in, the engine in the middle, alert events out.

A file is a topic partition's log: its events are taken in the order of its lines, whatever their
times say, and the two files are merged the way the stream worker merges its two topics (the
earlier head goes first, transactions on a tie). So replay decides what the stream decided for the
same arrival order, faults and all. Sorting each file by event time first is an option a user asks
for (``sort_by_event_time``), never a silent repair.
"""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import msgspec

from models.scorer import Scorer
from streams.alerts import Alert, encode_alert, now_rfc3339
from streams.config import Config
from streams.config_log import ConfigSchedule, LiveVersion, stamp
from streams.deadletter import DeadLetter, make_dead_letter
from streams.engine import Engine, Rejection
from streams.engine.reconfigure import reconfigured
from streams.engine.views import unpaid_totals
from streams.events import Event, Transaction, event_kind
from streams.filereader import DeadLetterSink, FileReader, ProgressHook, ReplayReport
from streams.money import format_amount
from streams.replay_sidecar import Sidecar, merge_alerts

AlertSink = Callable[[Alert], None]
ScoredHook = Callable[[Transaction, list[float], float | None], None]
"""Called with each approved sale, its feature row and its score (``None`` without a model)."""


_PARALLEL_FROM_BYTES = 4 << 20
"""From this size of transactions file (about 15,000 lines) the sidecar pays for its start-up."""


@contextmanager
def _paused_gc() -> Iterator[None]:
    """No cyclic-GC passes while millions of long-lived objects are built.

    The engine's state is acyclic (reference counting frees it), so each collection would only
    traverse the ever-growing heap to find nothing: on a million events that is a third of the run.
    Whatever cycles do appear are collected once at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def merge_by_time(first: Iterator[Event], second: Iterator[Event]) -> Iterator[Event]:
    """Merge two logs as the stream merges two topics of one partition (``TimeMerger`` with both
    inputs buffered): the earlier head goes first, ``first`` on a tie; each keeps its order."""
    a = next(first, None)
    b = next(second, None)
    while a is not None and b is not None:
        if b.at < a.at:
            yield b
            b = next(second, None)
        else:
            yield a
            a = next(first, None)
    if a is not None:
        yield a
        yield from first
    if b is not None:
        yield b
        yield from second


def replay(
    transactions: Path,
    settlements: Path | None,
    config: Config,
    on_alert: AlertSink,
    on_dead_letter: DeadLetterSink,
    progress: ProgressHook | None = None,
    scorer: Scorer | None = None,
    on_scored: ScoredHook | None = None,
    parallel: bool | None = None,
    sort_by_event_time: bool = False,
    feedback: Path | None = None,
    config_log: Sequence[LiveVersion] = (),
    payouts: Path | None = None,
) -> ReplayReport:
    """Run detection over two JSON Lines files; every alert event goes to ``on_alert``.

    Each file is read in file order, as the stream reads a topic partition, unless
    ``sort_by_event_time`` asks for each to be sorted in memory first. Outputs are handed over
    once the run has completed.

    With ``scorer``, approved sales are scored (SUSPICIOUS_PATTERN); with ``on_scored``, every
    approved sale's feature row (and score, when a model is loaded) is handed over as computed.
    Without settlements (``None``) only the transactions are replayed, e.g. to train a model.
    ``feedback`` (outcomes) is merged in on its ``known_at``, and ``payouts`` on their
    ``value_date``, as the stream merges its topics.
    ``config_log`` (live configuration versions) switches the configuration where the stream
    does: before the first event at or after each version's ``effective_at``.
    With ``parallel`` (by default, for a transactions file of at least 4 MiB) and no
    ``on_scored`` or ``feedback``, part of the work runs in a second process
    (``streams.replay_sidecar``): the same alerts, in the same order, on two cores.
    """
    started = time.perf_counter()
    if parallel is None:
        parallel = os.path.getsize(transactions) >= _PARALLEL_FROM_BYTES
    with _paused_gc():
        report, alerts, dead = _replay_once(
            (transactions, settlements, feedback, payouts),
            config,
            progress,
            sort_by_event_time,
            scorer,
            on_scored,
            parallel and not config_log,
            ConfigSchedule(config_log),
        )
    for alert in alerts:
        on_alert(alert)
    for letter in dead:
        on_dead_letter(letter)
    report.seconds = time.perf_counter() - started
    return report


def _replay_once(
    files: tuple[Path, Path | None, Path | None, Path | None],
    config: Config,
    progress: ProgressHook | None,
    by_event_time: bool,
    scorer: Scorer | None,
    on_scored: ScoredHook | None,
    parallel: bool,
    schedule: ConfigSchedule,
) -> tuple[ReplayReport, list[Alert], list[DeadLetter]]:
    report = ReplayReport()
    alerts: list[Alert] = []
    sidecar: Sidecar | None = None
    transactions = files[0]
    if parallel and on_scored is None and files[2] is None and files[3] is None:
        model = scorer.model if scorer is not None and config.suspicious_pattern.enabled else None
        sidecar = Sidecar(transactions, config, model)
        engine = Engine(config, rules=lambda _config, out: sidecar.attach(alerts, out))
    else:
        engine = Engine(config, scorer)
    try:
        return _run(
            engine,
            sidecar,
            alerts,
            report,
            files,
            progress,
            by_event_time,
            on_scored,
            schedule,
        )
    finally:
        if sidecar is not None:
            sidecar.close()


def _run(
    engine: Engine,
    sidecar: Sidecar | None,
    alerts: list[Alert],
    report: ReplayReport,
    files: tuple[Path, Path | None, Path | None, Path | None],
    progress: ProgressHook | None,
    by_event_time: bool,
    on_scored: ScoredHook | None,
    schedule: ConfigSchedule,
) -> tuple[ReplayReport, list[Alert], list[DeadLetter]]:
    transactions, settlements, feedback, payouts = files
    scored: list[tuple[Transaction, list[float], float | None]] = []
    if on_scored is not None:
        engine.patterns.observe(lambda t, row, score: scored.append((t, row, score)))
    dead: list[DeadLetter] = []
    id_check = engine.config.card_numbers_in_ids
    # Each transaction gets its time from the engine's clock as it is read, in file order and
    # before the merge compares it (a wrong clock cannot reorder the merge).
    txn_reader = FileReader(transactions, "transaction", dead.append, report, progress, id_check)
    final: dict[str, tuple[str, str]] = {}

    def drain() -> None:
        produced, rejections = engine.take()
        if schedule.in_force:
            stamp(produced, schedule.in_force)
        for alert in produced:
            report.alert_events[(alert.type, alert.status)] += 1
            final[alert.alert_id] = (alert.type, alert.status)
        alerts.extend(produced)
        for rejection in rejections:
            report.dead_letters[rejection.reason] += 1
            dead.append(_rejected(rejection))

    submit = engine.submit
    out = engine.out
    lines: Iterator[Event] = iter(())
    if settlements is not None:
        line_reader = FileReader(settlements, "settlement", dead.append, report, progress, id_check)
        lines = line_reader.ordered(by_event_time)

    def admit_in_force(t: Transaction) -> None:  # a configuration switch replaces the engine
        engine.admit(t)

    admit = admit_in_force if schedule.known else engine.admit
    merged = merge_by_time(txn_reader.ordered(by_event_time, admit), lines)
    if feedback is not None:
        outcomes = FileReader(feedback, "feedback", dead.append, report, progress, id_check)
        merged = merge_by_time(merged, outcomes.ordered(by_event_time))
    if payouts is not None:
        paid = FileReader(payouts, "payout", dead.append, report, progress, id_check)
        merged = merge_by_time(merged, paid.ordered(by_event_time))
    switch_at = schedule.next_effective_us()
    for event in merged:
        if switch_at is not None and event.at >= switch_at:
            engine.flush()
            drain()
            for version in schedule.due(event.at):
                engine = reconfigured(engine, version.config)
            submit, out, switch_at = engine.submit, engine.out, schedule.next_effective_us()
        submit(event, True)
        if out.alerts or out.rejections:
            drain()
    engine.flush()
    drain()
    placed = [] if sidecar is None else sidecar.finish()
    for _, alert in placed:
        report.alert_events[(alert.type, alert.status)] += 1
        final[alert.alert_id] = (alert.type, alert.status)
    report.transactions = engine.stats.transactions
    report.settlements = engine.stats.settlements
    report.redeliveries = engine.stats.redeliveries + engine.outcomes.redeliveries
    report.outcomes = engine.outcomes.accepted
    report.payouts = engine.stats.payouts
    report.unpaid_minor = unpaid_totals(engine)
    for ms in engine.merchants.values():
        report.unsettled_count += ms.unsettled_count
        report.unsettled_minor.update({c: v for c, v in ms.unsettled_minor.items() if v})
    report.final_status = Counter(final.values())
    if on_scored is not None:
        for t, row, score in scored:
            on_scored(t, row, score)
    return report, merge_alerts(alerts, placed), dead


def _rejected(rejection: Rejection) -> DeadLetter:
    event = rejection.event
    kind = event_kind(event)
    origin = rejection.origin
    if origin is None:  # not from a file: describe the validated content instead
        return make_dead_letter(rejection.reason, rejection.detail, kind, {}, _encode_event(event))
    name, number, raw = origin
    return make_dead_letter(
        rejection.reason, rejection.detail, kind, {"file": name, "line": number}, raw
    )


def _encode_event(event: Event) -> bytes:
    return msgspec.json.encode(msgspec.structs.replace(event, origin=None))


class JsonLinesWriter:
    """Writes alerts (stamped ``detected_at``) or dead letters as JSON Lines."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self._encoder = msgspec.json.Encoder()

    def alert(self, alert: Alert) -> None:
        self.fh.write(encode_alert(alert, now_rfc3339()) + b"\n")

    def dead_letter(self, letter: DeadLetter) -> None:
        self.fh.write(self._encoder.encode(letter) + b"\n")


def format_report(report: ReplayReport) -> str:
    """The human summary printed on stderr after a replay."""
    events = report.transactions + report.settlements
    rate = events / report.seconds if report.seconds > 0 else 0.0
    out = [
        f"posguard replay: {report.lines:,} lines, {report.transactions:,} transactions and "
        f"{report.settlements:,} settlement lines processed in {report.seconds:.1f} s "
        f"({rate:,.0f} events/s); {report.redeliveries:,} exact redeliveries ignored",
    ]
    if report.outcomes:
        out.append(f"outcomes learnt: {report.outcomes:,}")
    if report.payouts:
        out.append(f"pay-outs: {report.payouts:,}")
    if report.unpaid_minor:
        out.append(_unpaid_line(report.unpaid_minor))
    for path in report.sorted_in_memory:
        out.append(f"note: {path} was sorted by event time before replay, as asked")
    for path, late in sorted(report.out_of_order.items()):
        if path in report.sorted_in_memory:
            continue
        out.append(
            f"note: {late:,} events of {path} are earlier than an event before them; "
            "taken in file order, as the stream takes a topic (--sort-by-event-time to sort)"
        )
    types = sorted({t for t, _ in report.final_status} | {t for t, _ in report.alert_events})
    if types:
        out.append(f"{'alerts by type':<28}{'open':>8}{'resolved':>10}{'events':>9}")
        for kind in types:
            opened = report.final_status[(kind, "OPEN")]
            resolved = report.final_status[(kind, "RESOLVED")]
            emitted = sum(n for (t, _), n in report.alert_events.items() if t == kind)
            out.append(f"  {kind:<26}{opened:>8,}{resolved:>10,}{emitted:>9,}")
    else:
        out.append("no alerts")
    if report.unsettled_count:
        money = ", ".join(format_amount(v, c) for c, v in sorted(report.unsettled_minor.items()))
        out.append(
            f"awaiting settlement at the end of input: {report.unsettled_count:,} "
            f"transactions ({money})"
        )
    total_bad = sum(report.dead_letters.values())
    out.append(f"dead letters: {total_bad:,}")
    for reason, count in sorted(report.dead_letters.items()):
        out.append(f"  {reason:<26}{count:>8,}")
    return "\n".join(out)


def _unpaid_line(unpaid: dict[str, dict[str, int]], named: int = 5) -> str:
    """Money settled and not paid out at the end of input: the total per currency, and the
    merchants owed the most (by their largest amount)."""
    total: Counter[str] = Counter()
    for amounts in unpaid.values():
        total.update(amounts)
    money = ", ".join(format_amount(v, c) for c, v in sorted(total.items()))
    most = sorted(unpaid, key=lambda m: (-max(unpaid[m].values()), m))[:named]
    shown = "; ".join(
        f"{m} " + ", ".join(format_amount(v, c) for c, v in sorted(unpaid[m].items())) for m in most
    )
    more = f"; {len(unpaid) - named} more" if len(unpaid) > named else ""
    return (
        f"settled, not paid out at the end of input: {money} to {len(unpaid)} "
        f"merchant{'s' if len(unpaid) != 1 else ''} "
        f"({shown}{more})"
    )


def input_size(paths: Iterable[Path]) -> int:
    return sum(os.path.getsize(p) for p in paths)
