"""Evidence is exact: accepted ids come out byte for byte; an id that is a card number is a dead
letter, never a masked echo; spreadsheet exports (byte-order mark, CRLF) are read as they are."""

from __future__ import annotations

from pathlib import Path

import msgspec

from streams.alerts import Alert, encode_alert
from streams.config import Config
from streams.configfile import config_from_mapping
from streams.deadletter import DeadLetter
from streams.decode import contract_bytes
from streams.replay import replay
from tests.builders import HOUR, line_doc, txn, txn_doc

# Ids acquirers really issue: a prefix glued to digits whose run passes Luhn, a numeric id too
# long for a card number, ids with separators and non-ASCII text.
TRICKY_IDS = ("TX2304730006206", "20260302100000000001", "TRM/0042-A", "店铺-7", "T 1")


def _replay(
    tmp_path: Path, txns: bytes, lines: bytes, config: Config | None = None
) -> tuple[list[Alert], list[DeadLetter]]:
    (tmp_path / "t.jsonl").write_bytes(txns)
    (tmp_path / "s.jsonl").write_bytes(lines)
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    replay(
        tmp_path / "t.jsonl",
        tmp_path / "s.jsonl",
        config or Config(),
        alerts.append,
        dead.append,
    )
    return alerts, dead


def _jsonl(docs: list[dict[str, object]], end: bytes = b"\n") -> bytes:
    return b"".join(msgspec.json.encode(d) + end for d in docs)


def test_accepted_ids_are_echoed_byte_for_byte(tmp_path: Path) -> None:
    txn_id, merchant, terminal = "TX2304730006206", "店铺-7", "TRM/0042-A"
    docs = [
        txn_doc(txn_id, 0, merchant=merchant, terminal=terminal),
        txn_doc("20260302100000000001", 30, merchant=merchant, terminal=terminal),
    ]
    alerts, dead = _replay(tmp_path, _jsonl(docs), b"")
    assert dead == []
    dup = next(a for a in alerts if a.type == "DUPLICATE_CHARGE")
    assert dup.txn_ids == [txn_id, "20260302100000000001"]
    assert (dup.merchant_id, dup.terminal_id) == (merchant, terminal)
    out = encode_alert(dup, "2026-03-02T10:00:00Z")
    assert txn_id.encode() in out and b"20260302100000000001" in out
    assert merchant.encode() in out  # UTF-8 as it arrived, no escaping that alters it
    assert b"*" not in out


def test_an_id_that_is_a_card_number_is_a_dead_letter_not_a_masked_echo(tmp_path: Path) -> None:
    docs = [
        txn_doc("4111111111111111", 0),
        txn_doc("ORD-5555555555554444", 10),
        txn_doc("A1", 20, terminal="4111 1111 1111 1111"),
        txn_doc("A2", 30),
    ]
    lines = [line_doc("378282246310005", "A2", HOUR)]
    alerts, dead = _replay(tmp_path, _jsonl(docs), _jsonl(lines))
    assert [(d.reason, d.source["line"]) for d in dead] == [
        ("CARD_NUMBER", 1),
        ("CARD_NUMBER", 2),
        ("CARD_NUMBER", 3),
        ("CARD_NUMBER", 1),
    ]
    assert "txn_id" in dead[0].detail and "terminal_id" in dead[2].detail
    assert all("4111111111111111" not in d.raw for d in dead)
    assert "411111******1111" in dead[0].raw
    assert alerts == []


def test_the_id_check_is_configuration(tmp_path: Path) -> None:
    docs = [txn_doc("4111111111111111", 0), txn_doc("4012888888881881", 30)]
    alerts, dead = _replay(
        tmp_path, _jsonl(docs), b"", config_from_mapping({"input": {"card_numbers_in_ids": "off"}})
    )
    assert dead == []
    assert alerts[0].txn_ids == ["4111111111111111", "4012888888881881"]
    strict = config_from_mapping({"input": {"card_numbers_in_ids": "luhn"}})
    _, dead = _replay(tmp_path, _jsonl([txn_doc("1000000000000008", 0)]), b"", strict)
    assert [d.reason for d in dead] == ["CARD_NUMBER"]


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    docs = [txn_doc("A", 0), txn_doc("B", 30)]
    lines = [line_doc("S1", "A", HOUR)]
    bom = b"\xef\xbb\xbf"
    alerts, dead = _replay(tmp_path, bom + _jsonl(docs, b"\r\n"), bom + _jsonl(lines, b"\r\n"))
    assert dead == []
    assert [a.type for a in alerts] == ["DUPLICATE_CHARGE"]
    # A byte-order mark anywhere but at the start of the file is not one: that line is bad.
    _, dead = _replay(tmp_path, _jsonl(docs[:1]) + bom + _jsonl(docs[1:]), b"")
    assert [(d.reason, d.source["line"]) for d in dead] == [("INVALID_JSON", 2)]


def test_the_journal_keeps_contract_fields_exactly() -> None:
    event = txn("TX2304730006206", 0, merchant="店铺-7", note="card 4111111111111111")
    raw = contract_bytes(event)
    assert b"TX2304730006206" in raw and "店铺-7".encode() in raw
    assert b"4111111111111111" not in raw and b"note" not in raw
    again = msgspec.json.decode(raw)
    assert again["txn_id"] == "TX2304730006206"
