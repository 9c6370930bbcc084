"""What a rule declares: its alert types, its configuration section, and its handlers.

The registry (``streams/rules/registry.py``) lists every rule's ``RuleSpec``; alert types, id
prefixes, money at stake, the configuration file's sections, the API's list of types (which the
dashboard reads) and ``posguard rules`` all derive from it.

Rules of two kinds share this declaration. The ledger's rules (reconciliation, duplicates,
refunds, the feed, terminals, velocity, the terminal clock, the model) are wired into the engine's
event-time steps and its offload (``streams/engine/core.py``); their spec has no ``make``. A rule
with ``make`` is built once per engine from its configuration and gets the engine's derived
stream through the ``Rule`` handlers below: written once, it runs wherever the engine runs
(replay, the worker's partitions, a rebuild from the journal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from streams.alerts import Alert
    from streams.engine.outbox import Outbox
    from streams.engine.state import MerchantState, TxnState
    from streams.events import Payout, Settlement


class Stake(NamedTuple):
    """The money an alert is about: what an operator stands to recover or refund if it is real
    (integers in minor units)."""

    currency: str
    minor: int
    why: str


def stake(currency: Any, minor: int, why: str) -> Stake | None:
    """A stake, or None when there is no money (no currency, or nothing above zero)."""
    if not isinstance(currency, str) or minor <= 0:
        return None
    return Stake(currency, minor, why)


def detail_int(value: Any) -> int:
    """An integer read from an alert's details; anything else counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class AlertKind:
    """One alert type: its name in the contract, the prefix of its ids (two letters, unique),
    a short title for people, and the money at stake read from an alert's details (None for
    alerts about behaviour rather than money)."""

    name: str
    prefix: str
    title: str
    stake: Callable[[Alert], Stake | None] | None = None
    severity_field: str = "severity"
    """The field of the rule's settings that holds this type's severity (a rule raising types
    of different severities has one field each)."""


@dataclass(frozen=True)
class Key:
    """One TOML key of a rule's section: the config field it sets, how its value is parsed and
    validated (raise ValueError with a sentence), and what it means."""

    field: str
    parse: Callable[[Any], Any]
    doc: str


class Rule:
    """Handlers of a rule built by its spec's ``make``; each does nothing unless overridden.

    Called by the engine, in event-time steps, with events the ledger accepted (redeliveries
    and conflicts never reach a rule). Times are microseconds of event time; ``ts`` is the time
    the rule should measure the event with (its own, unless its terminal's clock is judged
    wrong: ``streams/engine/clock.py``). Emit alerts through the ``Outbox`` given to ``make``;
    keep state bounded with ``expire``. A rule that keeps state hands it over for the engine's
    snapshots (``state``, ``state_type`` and ``load_state``): a worker taking over a partition
    loads it instead of feeding the rule a month of events again.
    """

    @classmethod
    def state_type(cls) -> Any:
        """The type ``state`` returns, one msgspec can encode and decode (plain values, tuples,
        lists, dicts, msgspec structs such as ``Alert``); None for a rule that keeps nothing."""
        return None

    def state(self) -> Any:
        """What the rule remembers, as a ``state_type``."""
        return None

    def load_state(self, state: Any) -> None:
        """Take over ``state``, as ``state`` gave it (this rule is fresh, built from the same
        configuration)."""

    def read_ledger(self, merchants: Mapping[str, MerchantState]) -> None:
        """The engine's ledgers by merchant, read only, given once when the engine is built: the
        evidence a rule names without keeping a copy of its own."""

    def on_transaction(self, ms: MerchantState, st: TxnState) -> None:
        """A transaction accepted into merchant ``ms``'s ledger (any type and status)."""

    def on_cancel(self, ms: MerchantState, cancelled: TxnState, ts: int) -> None:
        """An approved VOID/REVERSAL cancelled ``cancelled``, seen before (its ``cancelled_by``
        is set). One cancelled before it arrived reaches ``on_transaction`` cancelled."""

    def on_settlement(self, ms: MerchantState, line: Settlement) -> None:
        """A settlement line accepted into merchant ``ms``'s ledger."""

    def on_payout(self, ms: MerchantState, payout: Payout) -> None:
        """A pay-out accepted for merchant ``ms`` (redeliveries and conflicts never reach here)."""

    def on_watermark(self, tw: int) -> None:
        """The transaction watermark reached ``tw`` at the end of a step."""

    def on_step_end(self, ts: int) -> None:
        """The end of a step (engine time ``ts``) that accepted any event, after the ledger's
        own judgments: where a rule judges what the step's events together decide (a
        settlement batch's lines share one time and arrive in one step)."""

    def expire(self, tw: int) -> None:
        """The transaction watermark is ``tw``: forget what can no longer matter (called about
        hourly of event time)."""


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the registry knows it.

    ``section`` is its table in the configuration file and ``config`` the frozen dataclass of its
    settings (``RuleSettings``: defaults are the dataclass's; ``enabled`` and ``severity`` are
    every rule's keys);
    ``keys`` its own TOML keys. ``make`` builds its handlers (None: a ledger rule of the engine).
    """

    section: str
    summary: str
    config: type[Any]
    kinds: tuple[AlertKind, ...]
    keys: Mapping[str, Key]
    make: Callable[[Any, Outbox], Rule] | None = None
    """Builds the rule's handlers from its config; None for the ledger's rules, whose settings
    are ``Config`` fields of the section's name (other rules' are in ``Config.rules``)."""
