from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decode import BadInputError, EventDecoder
from streams.events import Settlement, Transaction
from streams.timefmt import to_us
from tests.builders import line_doc, txn_doc

enc = msgspec.json.encode
txns = EventDecoder("transaction")
lines = EventDecoder("settlement")


def reason(decoder: EventDecoder, raw: bytes) -> tuple[str, str]:
    with pytest.raises(BadInputError) as info:
        decoder.decode(raw)
    return info.value.reason, info.value.detail


def test_valid_transaction_gets_its_event_time_in_microseconds() -> None:
    event = txns.decode(enc(txn_doc("A", 0, offset_hours=8)))
    assert isinstance(event, Transaction)
    assert event.ts == 1_772_445_600_000_000  # 2026-03-02T10:00:00Z
    same = txns.decode(enc(txn_doc("A", 0)))
    assert same.ts == event.ts


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
@settings(max_examples=300, deadline=None)
def test_event_time_in_any_offset_is_the_same_instant_as_timestamp(
    moment: datetime, offset_minutes: int
) -> None:
    written = moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()
    decoder = EventDecoder("settlement")  # a fresh offset cache each time
    doc = {**line_doc("S", "A", 0), "settled_at": written}
    for _ in range(2):  # the first decode fills the cache, the second uses it
        assert decoder.decode(enc(doc)).ts == to_us(moment)


def test_unknown_fields_are_ignored() -> None:
    event = txns.decode(enc(txn_doc("A", note="hello", nested={"x": [1]})))
    assert isinstance(event, Transaction)
    assert "hello" not in repr(event)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"amount_minor": 12.5}, "$.amount_minor"),
        ({"amount_minor": 1200.0}, "$.amount_minor"),
        ({"amount_minor": "1200"}, "$.amount_minor"),
        ({"amount_minor": 0}, "$.amount_minor"),
        ({"amount_minor": -5}, "$.amount_minor"),
        ({"amount_minor": True}, "$.amount_minor"),
        ({"currency": "cny"}, "$.currency"),
        ({"currency": "CN"}, "$.currency"),
        ({"currency": "CNYX"}, "$.currency"),
        ({"currency": "CNY\n"}, "$.currency"),
        ({"currency": "C1Y"}, "$.currency"),
        ({"currency": "ÇNY"}, "$.currency"),
        ({"currency": "CnY"}, "$.currency"),
        ({"type": "PURCHASE"}, "$.type"),
        ({"status": "OK"}, "$.status"),
        ({"channel": "NFC"}, "$.channel"),
        ({"entry_mode": "MAGIC"}, "$.entry_mode"),
        ({"event_time": "2026-03-02T10:00:00"}, "$.event_time"),
        ({"event_time": "yesterday"}, "$.event_time"),
        ({"txn_id": ""}, "$.txn_id"),
        ({"txn_id": "x" * 65}, "$.txn_id"),
    ],
)
def test_schema_violations_name_the_field(change: dict[str, object], where: str) -> None:
    code, detail = reason(txns, enc({**txn_doc("A"), **change}))
    assert code == "SCHEMA_VIOLATION"
    assert where in detail


def test_a_currency_is_checked_every_time_not_only_the_first() -> None:
    """The decoder remembers codes it accepted; a bad one is refused however often it comes, and
    a good one keeps being accepted (settlement lines too)."""
    decoder = EventDecoder("settlement")
    for _ in range(2):
        assert decoder.decode(enc(line_doc("S", "A", 0))).currency == "CNY"
        code, detail = reason(decoder, enc({**line_doc("S", "A", 0), "currency": "cn1"}))
        assert code == "SCHEMA_VIOLATION" and "$.currency" in detail


def test_missing_required_field() -> None:
    doc = txn_doc("A")
    del doc["terminal_id"]
    code, detail = reason(txns, enc(doc))
    assert code == "SCHEMA_VIOLATION" and "terminal_id" in detail


@pytest.mark.parametrize("kind", ["REFUND", "VOID", "REVERSAL"])
def test_original_txn_id_is_required_for_refunds_and_cancels(kind: str) -> None:
    code, detail = reason(txns, enc(txn_doc("A", type=kind)))
    assert code == "SCHEMA_VIOLATION" and "original_txn_id" in detail


def test_not_json_and_not_an_object() -> None:
    assert reason(txns, b"{bad")[0] == "INVALID_JSON"
    assert reason(txns, b"[1, 2]")[0] == "SCHEMA_VIOLATION"
    assert reason(txns, b'"text"')[0] == "SCHEMA_VIOLATION"


def test_not_utf8() -> None:
    assert reason(txns, b'{"txn_id": "\xff"}')[0] == "NOT_UTF8"


@pytest.mark.parametrize("pan", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004"])
def test_card_number_as_card_token_is_rejected(pan: str) -> None:
    code, detail = reason(txns, enc(txn_doc("A", card=pan)))
    assert code == "CARD_NUMBER"
    assert pan not in detail


def test_digit_token_failing_luhn_is_a_token() -> None:
    assert isinstance(txns.decode(enc(txn_doc("A", card="4111111111111112"))), Transaction)


def test_settlement_schema() -> None:
    ok = lines.decode(enc(line_doc("S", "A", 0)))
    assert isinstance(ok, Settlement)
    assert reason(lines, enc({**line_doc("S", "A", 0), "gross_minor": -1}))[0] == "SCHEMA_VIOLATION"
    assert reason(lines, enc({**line_doc("S", "A", 0), "fee_minor": 1.5}))[0] == "SCHEMA_VIOLATION"
    assert reason(lines, enc({**line_doc("S", "A", 0), "status": "PAID"}))[0] == "SCHEMA_VIOLATION"
    negative_net = lines.decode(enc({**line_doc("S", "A", 0), "net_minor": -3}))
    assert isinstance(negative_net, Settlement) and negative_net.net_minor == -3
