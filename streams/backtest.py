"""``posguard backtest``: what a proposed configuration would have changed, on past input.

Both configurations run the same engine over the same files (``replay``); their alerts are
compared by id, on each alert's final content (its last event, ``detected_at`` aside). An id only
the proposal raises is *added*, one only the current configuration raises is *removed*, one both
raise with different final content is *changed* (with the fields that differ). Money at stake is
each alert's own (``streams/stake.py``), summed per currency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import Config
from streams.filereader import ReplayReport
from streams.money import format_amount
from streams.replay import replay
from streams.stake import money_at_stake

CHANGES: Final = ("added", "removed", "changed")


@dataclass
class TypeDiff:
    """One alert type's difference between the two runs."""

    current: int = 0
    proposed: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    """added / removed / changed."""
    at_stake: dict[str, Counter[str]] = field(default_factory=dict)
    """change -> currency -> minor units."""

    def add_stake(self, change: str, alert: Alert) -> dict[str, Any] | None:
        stake = money_at_stake(alert)
        if stake is None:
            return None
        self.at_stake.setdefault(change, Counter())[stake.currency] += stake.minor
        return {
            "minor": stake.minor,
            "currency": stake.currency,
            "amount": format_amount(stake.minor, stake.currency),
            "why": stake.why,
        }


@dataclass
class Backtest:
    by_type: dict[str, TypeDiff] = field(default_factory=dict)
    reports: tuple[ReplayReport, ReplayReport] | None = None
    differences: int = 0


def final_alerts(alerts: Iterable[Alert]) -> dict[str, dict[str, Any]]:
    """Each alert's last event, as plain data without ``detected_at``."""
    final: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        doc = msgspec.to_builtins(alert)
        doc.pop("detected_at", None)
        final[alert.alert_id] = doc
    return final


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level fields that differ; inside ``details``, its keys (``details.threshold``)."""
    out: list[str] = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key == "details" and isinstance(before.get(key), dict):
            inner_before, inner_after = before.get(key) or {}, after.get(key) or {}
            out.extend(
                f"details.{k}"
                for k in sorted(set(inner_before) | set(inner_after))
                if inner_before.get(k) != inner_after.get(k)
            )
        else:
            out.append(key)
    return out


def compare(
    current: list[Alert], proposed: list[Alert], write: Callable[[dict[str, Any]], None]
) -> Backtest:
    """The difference of two runs' alerts; each difference also goes to ``write``."""
    before, after = final_alerts(current), final_alerts(proposed)
    result = Backtest()
    last = {a.alert_id: a for a in current}
    last_after = {a.alert_id: a for a in proposed}
    for doc in before.values():
        result.by_type.setdefault(doc["type"], TypeDiff()).current += 1
    for doc in after.values():
        result.by_type.setdefault(doc["type"], TypeDiff()).proposed += 1
    for alert_id in sorted(set(before) | set(after)):
        old, new = before.get(alert_id), after.get(alert_id)
        if old == new:
            continue
        fields: list[str] = []
        if old is None:
            change, alert = "added", last_after[alert_id]
        elif new is None:
            change, alert = "removed", last[alert_id]
        else:
            change, fields, alert = "changed", changed_fields(old, new), last_after[alert_id]
        diff = result.by_type[alert.type]
        diff.counts[change] += 1
        result.differences += 1
        write(
            {
                "change": change,
                "alert_id": alert_id,
                "type": alert.type,
                "severity": alert.severity,
                "merchant_id": alert.merchant_id,
                "at_stake": diff.add_stake(change, alert),
                "fields": fields,
                "current": old,
                "proposed": new,
            }
        )
    return result


def run_backtest(
    inputs: tuple[Path, Path, Path | None, Path | None],
    current: Config,
    proposed: Config,
    write: Callable[[dict[str, Any]], None],
    progress: Callable[[int], None] | None = None,
    scorer: Scorer | None = None,
) -> Backtest:
    """Replay ``inputs`` (transactions, settlements, feedback, pay-outs) under both
    configurations."""
    transactions, settlements, feedback, payouts = inputs
    runs: list[list[Alert]] = []
    reports: list[ReplayReport] = []
    for config in (current, proposed):
        alerts: list[Alert] = []
        reports.append(
            replay(
                transactions,
                settlements,
                config,
                alerts.append,
                lambda _letter: None,
                progress,
                scorer,
                feedback=feedback,
                payouts=payouts,
            )
        )
        runs.append(alerts)
    result = compare(runs[0], runs[1], write)
    result.reports = (reports[0], reports[1])
    return result


def format_backtest(result: Backtest) -> str:
    """The per-type table an operator reads before pushing the change."""
    header = f"{'alert type':<26}{'current':>9}{'proposed':>10}{'added':>8}{'removed':>9}"
    header += f"{'changed':>9}  money at stake (added / removed)"
    lines = [header, "-" * len(header)]
    for kind in sorted(result.by_type):
        d = result.by_type[kind]
        stake = " / ".join(
            ", ".join(
                format_amount(minor, currency)
                for currency, minor in sorted(d.at_stake.get(change, Counter()).items())
            )
            or "-"
            for change in ("added", "removed")
        )
        lines.append(
            f"{kind:<26}{d.current:>9,}{d.proposed:>10,}{d.counts['added']:>8,}"
            f"{d.counts['removed']:>9,}{d.counts['changed']:>9,}  {stake}"
        )
    if result.reports is not None:
        dead = [sum(r.dead_letters.values()) for r in result.reports]
        lines.append(f"dead letters: {dead[0]:,} current, {dead[1]:,} proposed")
    lines.append(
        f"{result.differences:,} alerts differ"
        if result.differences
        else "no alert differs: the proposal changes nothing on this input"
    )
    return "\n".join(lines)


class DiffWriter:
    """The differences as JSON Lines."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._encode = msgspec.json.Encoder().encode

    def __call__(self, diff: dict[str, Any]) -> None:
        self._fh.write(self._encode(diff) + b"\n")
