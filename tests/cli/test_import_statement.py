"""``posguard import-statement``: camt.053 and MT940 statements in, pay-out events out, checked
whole; and the pay-outs they give, replayed against the settlement batches they pay."""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.cli import main
from tests.builders import HOUR, line_doc, txn_doc
from tests.cli.test_cli import posguard, write_jsonl

STATEMENTS = Path(__file__).parent.parent / "data" / "statements"
EUR_CAMT = STATEMENTS / "camt053_eur.xml"
TWO_CURRENCIES = STATEMENTS / "camt053_two_currencies.xml"
MT940 = STATEMENTS / "mt940_two_statements.sta"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``posguard`` run in this process (the console script's start-up costs two seconds a
    run; the first test runs the real one)."""
    out, err = io.BytesIO(), io.BytesIO()
    text, errors = io.TextIOWrapper(out, encoding="utf-8"), io.TextIOWrapper(err, encoding="utf-8")
    with redirect_stdout(text), redirect_stderr(errors):
        code = main(list(args))
        text.flush()
        errors.flush()
    return subprocess.CompletedProcess(
        list(args), code, out.getvalue().decode(), err.getvalue().decode()
    )


def _import(path: Path, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    done = _cli("import-statement", str(path), *extra)
    rows = [msgspec.json.decode(x) for x in done.stdout.splitlines() if x.strip()]
    return done.returncode, rows, done.stderr


def test_camt053_booked_entries_become_payouts() -> None:
    done = posguard("import-statement", str(EUR_CAMT), "--merchant", "M0042")
    code, err = done.returncode, done.stderr
    rows = [msgspec.json.decode(x) for x in done.stdout.splitlines() if x.strip()]
    assert code == 0, err
    assert rows == [
        {
            "payout_id": "ACQ-20260304-0001",
            "merchant_id": "M0042",
            "amount_minor": 298_200,
            "currency": "EUR",
            "value_date": "2026-03-04T00:00:00Z",
            "batch_ids": ["B20260303-EUR"],
            "bank_reference": "N0001",
        },
        {
            "payout_id": "ACQ-20260305-0002",
            "merchant_id": "M0042",
            "amount_minor": 150_050,
            "currency": "EUR",
            "value_date": "2026-03-05T00:00:00Z",
            "batch_ids": ["B20260304-EUR", "B20260305-EUR"],
            "bank_reference": "N0002",
        },
        {
            "payout_id": "CHG-202603-01",
            "merchant_id": "M0042",
            "amount_minor": -1_250,
            "currency": "EUR",
            "value_date": "2026-03-05T00:00:00Z",
        },
        {
            "payout_id": "ACQ-20260305-0002-R",
            "merchant_id": "M0042",
            "amount_minor": -150_050,
            "currency": "EUR",
            "value_date": "2026-03-05T00:00:00Z",
            "batch_ids": ["B20260304-EUR", "B20260305-EUR"],
            "bank_reference": "N0002R",
        },
    ]
    assert "entry 5: PDNG" in err  # pending: counted, not imported


def test_statements_of_two_accounts_go_to_their_merchants(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text('{"FR7630006000011234567890189": "M-FR", "0012345678": "M-US"}')
    code, rows, err = _import(TWO_CURRENCIES, "--accounts", str(accounts))
    assert code == 0, err
    assert [(r["merchant_id"], r["amount_minor"], r["currency"]) for r in rows] == [
        ("M-FR", 74_531, "EUR"),
        ("M-US", 123_000, "USD"),
    ]
    assert rows[0]["value_date"] == "2026-03-04T00:00:00+01:00"  # a date-time keeps its offset
    accounts.write_text('{"FR7630006000011234567890189": "M-FR"}')
    code, rows, err = _import(TWO_CURRENCIES, "--accounts", str(accounts))
    assert code == 2 and rows == []
    assert "account 0012345678 is in no mapping" in err


def test_mt940_credits_debits_and_reversals() -> None:
    code, rows, err = _import(MT940, "--merchant", "M0042")
    assert code == 0, err
    assert [(r["payout_id"], r["amount_minor"], r.get("batch_ids")) for r in rows] == [
        ("ACQ-20260304-0001", 298_200, ["B20260303-EUR"]),
        ("CHG-202603-01", -1_250, None),  # NONREF: no batch
        ("ACQ-20260305-0002", 150_050, ["B20260304-EUR"]),
        ("ACQ-20260305-0002R", -150_050, ["B20260304-EUR"]),  # RC: a credit reversed
        ("ACQ-JP-0001", 125_000, ["B20260303-JPY"]),  # JPY has no minor digits
    ]
    assert "statement STMT0304JPY (account JP0001000200030004): 1 booked entries" in err


def test_out_writes_the_whole_file(tmp_path: Path) -> None:
    out = tmp_path / "payouts.jsonl"
    done = _cli("import-statement", str(MT940), "--merchant", "M1", "--out", str(out))
    assert done.returncode == 0 and done.stdout == ""
    assert len(out.read_bytes().splitlines()) == 5


def _edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("source", "old", "new", "message"),
    [
        (EUR_CAMT, "<CdtDbtInd>CRDT</CdtDbtInd>\n        <Sts><Cd>BOOK</Cd></Sts>\n        "
         "<BookgDt><Dt>2026-03-05", "<Sts><Cd>BOOK</Cd></Sts>\n        <BookgDt><Dt>2026-03-05",
         "statement 20260306-DE89-001, entry 2: CdtDbtInd is None"),
        (EUR_CAMT, '<Amt Ccy="EUR">12.50</Amt>', '<Amt Ccy="EUR">12,5O</Amt>',
         "entry 3: '12,5O' is not an amount"),
        (EUR_CAMT, "camt.053.001.08", "camt.052.001.08", "not a camt.053 statement"),
        (EUR_CAMT, '<?xml version="1.0" encoding="UTF-8"?>',
         '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>',
         "not readable XML"),
        (TWO_CURRENCIES, '<Amt Ccy="USD">1230.00</Amt>', '<Amt Ccy="USD">1230.001</Amt>',
         "1230.001 USD has more decimals than USD has (2)"),
        (MT940, ":61:2603040304D12,50NCHG", ":61:26030403XXD12,50NCHG",
         ":61: field '26030403XXD12,50NCHGNONREF//CHG-202603-01' is malformed"),
        (MT940, ":61:2603040304C125000,", ":61:2603040304C125000,5",
         "125000.5 JPY has more decimals than JPY has (0)"),
    ],
)  # fmt: skip
def test_a_bad_statement_is_refused_whole_naming_the_entry(
    tmp_path: Path, source: Path, old: str, new: str, message: str
) -> None:
    bad = _edited(tmp_path, source, old, new)
    out = tmp_path / "payouts.jsonl"
    out.write_text("kept\n")
    done = _cli("import-statement", str(bad), "--merchant", "M1", "--out", str(out))
    assert done.returncode == 2
    assert message in done.stderr
    assert "nothing was imported" in done.stderr
    assert out.read_text() == "kept\n"  # nothing half written


@pytest.mark.parametrize(
    ("source", "old", "new", "message"),
    [
        (EUR_CAMT, '<Amt Ccy="EUR">3969.50</Amt>', '<Amt Ccy="EUR">3969.60</Amt>',
         "the statement is incomplete or altered"),
        (EUR_CAMT, '<Amt Ccy="EUR">500.25</Amt>', '<Amt Ccy="EUR">500.20</Amt>',
         "entry 2: its 2 transaction details add up to 150045 minor units, the entry is 150050"),
        (MT940, ":62F:C260304JPY125000,", ":62F:C260304JPY125001,",
         "statement STMT0304JPY: the entries take the opening balance 0 to 125000"),
    ],
)  # fmt: skip
def test_what_does_not_add_up_is_a_warning_or_with_strict_an_error(
    tmp_path: Path, source: Path, old: str, new: str, message: str
) -> None:
    """Hand-made statements often do not balance: imported, with a warning naming what does
    not add up; ``--strict`` refuses them whole."""
    odd = _edited(tmp_path, source, old, new)
    code, rows, err = _import(odd, "--merchant", "M1")
    assert code == 0 and rows
    assert "warning: " in err and message in err
    code, rows, err = _import(odd, "--merchant", "M1", "--strict")
    assert code == 2 and rows == []
    assert message in err and "nothing was imported" in err


def test_an_entry_without_a_reference_is_named_by_its_statement_and_number(
    tmp_path: Path,
) -> None:
    bare = _edited(tmp_path, EUR_CAMT, "<AcctSvcrRef>CHG-202603-01</AcctSvcrRef>", "")
    code, rows, err = _import(bare, "--merchant", "M1")
    assert code == 0, err
    assert rows[2]["payout_id"] == "20260306-DE89-001/3"


def test_a_reference_the_bank_reused_is_made_unique(tmp_path: Path) -> None:
    reused = _edited(tmp_path, MT940, "//CHG-202603-01", "//ACQ-20260304-0001")
    code, rows, err = _import(reused, "--merchant", "M1")
    assert code == 0, err
    assert [r["payout_id"] for r in rows[:2]] == [
        "ACQ-20260304-0001/STMT0304EUR/1",
        "ACQ-20260304-0001/STMT0304EUR/2",
    ]


def test_not_a_statement_and_usage_errors(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    done = _cli("import-statement", str(other), "--merchant", "M1")
    assert done.returncode == 2 and "neither a camt.053" in done.stderr
    done = _cli("import-statement", str(MT940))
    assert done.returncode == 2 and "--merchant" in done.stderr
    done = _cli("import-statement", str(tmp_path / "missing.xml"), "--merchant", "M1")
    assert done.returncode == 2 and "cannot read" in done.stderr


# -- replayed against the batches ---------------------------------------------------------------

_BATCHES = {  # batch -> nets of its lines (EUR minor units): what the statement pays
    "B20260303-EUR": [99_400, 99_400, 99_400],
    "B20260304-EUR": [60_000, 40_025],
    "B20260305-EUR": [50_025],
}


def _settlements(tmp_path: Path, extra_line: bool = False) -> tuple[Path, Path]:
    txns: list[Any] = []
    lines: list[Any] = []
    for day, (batch, nets) in enumerate(_BATCHES.items()):
        settled = 15.5 * HOUR + day * 24 * HOUR  # 01:30 UTC the next day
        extra = [7_000] if extra_line and day == 0 else []
        for k, net in enumerate(nets + extra):
            tid = f"{batch}-T{k}"
            gross = round(net / 0.994)
            txns.append(
                txn_doc(tid, settled - 10 * HOUR + k, card=f"c{k}", amount=gross,
                        merchant="M0042", currency="EUR")
            )  # fmt: skip
            lines.append(
                line_doc(f"{batch}-S{k}", tid, settled, gross=gross, fee=gross - net, net=net,
                         batch=batch, merchant="M0042", currency="EUR")
            )  # fmt: skip
    txns.sort(key=lambda d: d["event_time"])
    return write_jsonl(tmp_path / "t.jsonl", txns), write_jsonl(tmp_path / "s.jsonl", lines)


def _replayed(tmp_path: Path, payouts: Path, extra_line: bool = False) -> tuple[list[Any], str]:
    txns, lines = _settlements(tmp_path, extra_line)
    out = tmp_path / "alerts.jsonl"
    done = _cli(
        "replay", "--transactions", str(txns), "--settlements", str(lines),
        "--payouts", str(payouts), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = [msgspec.json.decode(x) for x in out.read_bytes().splitlines()]
    kinds = ("PAYOUT_MISSING", "PAYOUT_MISMATCH", "UNEXPLAINED_CREDIT")
    return [a for a in alerts if a["type"] in kinds], done.stderr


def test_an_imported_statement_pays_its_batches(tmp_path: Path) -> None:
    payouts = tmp_path / "payouts.jsonl"
    done = _cli("import-statement", str(EUR_CAMT), "--merchant", "M0042", "--out", str(payouts))
    assert done.returncode == 0, done.stderr
    alerts, report = _replayed(tmp_path, payouts)
    assert alerts == []
    # The reversal took the second pay-out back: its two batches wait for money again.
    assert "settled, not paid out at the end of input: 1,500.50 EUR to 1 merchant" in report
    assert "(M0042 1,500.50 EUR)" in report


def test_a_line_the_payout_left_out_is_named(tmp_path: Path) -> None:
    payouts = tmp_path / "payouts.jsonl"
    _cli("import-statement", str(EUR_CAMT), "--merchant", "M0042", "--out", str(payouts))
    alerts, _ = _replayed(tmp_path, payouts, extra_line=True)
    (alert,) = alerts
    assert alert["type"] == "PAYOUT_MISMATCH"
    assert alert["details"]["payout_ids"] == ["ACQ-20260304-0001"]
    assert alert["settlement_ids"] == ["B20260303-EUR-S3"]
    assert alert["details"]["explanation"][0]["kind"] == "LINES_NOT_PAID"
