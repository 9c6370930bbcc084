"""The per-merchant unsettled totals the fleet view reads are kept as transactions arrive, are
cancelled, settle and expire; they must always equal a scan of the engine's transactions."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.configfile import config_from_mapping
from streams.engine.core import Engine
from streams.engine.state import expects_settlement
from streams.events import Event
from tests.builders import line, txn

_events = st.lists(
    st.one_of(
        st.builds(
            lambda i, t, kind, status, amount, orig, cur: txn(
                f"T{i}",
                t * 3600,
                type=kind,
                status=status,
                amount=amount,
                currency=cur,
                original=f"T{orig}" if kind in ("VOID", "REVERSAL", "REFUND") else None,
            ),
            st.integers(0, 12),
            st.integers(0, 200),
            st.sampled_from(["SALE", "SALE", "REFUND", "VOID", "REVERSAL"]),
            st.sampled_from(["APPROVED", "APPROVED", "DECLINED"]),
            st.sampled_from([100, 2500]),
            st.integers(0, 12),
            st.sampled_from(["CNY", "EUR"]),
        ),
        st.builds(
            lambda i, ref, t, status: line(f"S{i}", f"T{ref}", t * 3600, status=status),
            st.integers(0, 12),
            st.integers(0, 12),
            st.integers(0, 200),
            st.sampled_from(["SETTLED", "SETTLED", "REJECTED"]),
        ),
    ),
    max_size=60,
)


def _scanned(engine: Engine) -> dict[str, tuple[int, Counter[str]]]:
    out = {}
    for merchant_id, ms in engine.merchants.items():
        amounts: Counter[str] = Counter()
        count = 0
        for state in ms.txns.values():
            if not state.settled_ids and expects_settlement(state):
                count += 1
                amounts[state.txn.currency] += state.txn.amount_minor
        out[merchant_id] = (count, amounts)
    return out


def _kept(engine: Engine) -> dict[str, tuple[int, Counter[str]]]:
    return {
        m: (ms.unsettled_count, Counter({c: v for c, v in ms.unsettled_minor.items() if v}))
        for m, ms in engine.merchants.items()
    }


@settings(max_examples=300, deadline=None)
@given(_events)
def test_kept_totals_equal_a_scan_after_every_step(events: list[Event]) -> None:
    # A two-day retention, so expiry runs inside the generated span of about eight days.
    engine = Engine(config_from_mapping({"retention": {"evidence": "2d"}}))
    for event in sorted(events, key=lambda e: e.ts):
        engine.submit(event)
        assert _kept(engine) == _scanned(engine)
    engine.flush()
    assert _kept(engine) == _scanned(engine)
