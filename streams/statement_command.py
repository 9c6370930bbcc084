"""``posguard import-statement FILE``: a merchant's bank statement to pay-out events."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from streams.commands import EXIT_OK, UsageError
from streams.kafka_security import add_security_flags, security_from
from streams.money import format_amount
from streams.statements import Statement, StatementError, payouts, read_statements


def add_statement_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    st = sub.add_parser(
        "import-statement",
        help="turn a camt.053 or MT940 bank statement into pay-out events",
        description="Read an ISO 20022 camt.053 or SWIFT MT940 statement of a merchant's "
        "account and write one pay-out event per booked entry (debits negative), as JSON Lines "
        "or to the pay-out topic. The whole file is checked first (entries, references, "
        "balances): a bad statement is an error naming the entry, and nothing is written.",
    )
    st.add_argument("file", metavar="FILE", help="the statement (camt.053 XML or MT940)")
    st.add_argument("--merchant", metavar="MERCHANT_ID", help="the account's merchant")
    st.add_argument(
        "--accounts",
        metavar="FILE",
        help='JSON object of account (IBAN or number) to merchant_id, e.g. {"DE89...": "M0042"}',
    )
    st.add_argument("--out", metavar="FILE", help="JSON Lines (default: stdout)")
    st.add_argument(
        "--kafka",
        metavar="BROKER",
        nargs="?",
        const="",
        help="produce to the pay-out topic instead (default broker: $POSGUARD_BROKER_URL)",
    )
    st.add_argument(
        "--strict",
        action="store_true",
        help="refuse a statement whose entries do not reach its closing balance, or whose "
        "batched details do not add up (default: import it, with a warning)",
    )
    add_security_flags(st)
    st.set_defaults(func=cmd_import_statement)


def _accounts(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        found = msgspec.json.decode(Path(path).read_bytes(), type=dict[str, str])
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"{path}: expected a JSON object of account to merchant ({exc})") from None
    return found


def cmd_import_statement(args: argparse.Namespace) -> int:
    if args.merchant is None and args.accounts is None:
        raise UsageError("give --merchant MERCHANT_ID, or --accounts FILE mapping accounts")
    if args.out is not None and args.kafka is not None:
        raise UsageError("give --out FILE or --kafka, not both")
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        statements = read_statements(data)
        warnings = [w for s in statements for w in s.warnings]
        if warnings and args.strict:
            raise StatementError(warnings[0] + " (--strict)")
        events = payouts(statements, args.merchant, _accounts(args.accounts))
    except StatementError as exc:
        raise UsageError(f"{args.file}: {exc}; nothing was imported") from None
    encoded = [msgspec.json.encode(e) for e in events]
    if args.kafka is not None:
        where = _produce(args, events, encoded)
    elif args.out is not None:
        _write_whole(Path(args.out), encoded)
        where = args.out
    else:
        sys.stdout.buffer.write(b"".join(raw + b"\n" for raw in encoded))
        sys.stdout.flush()
        where = "stdout"
    sys.stderr.write(_summary(statements, events, where) + "\n")
    return EXIT_OK


def _write_whole(path: Path, lines: list[bytes]) -> None:
    """All lines or none: written beside the target, then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".import-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(raw + b"\n" for raw in lines))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _produce(args: argparse.Namespace, events: list[dict[str, Any]], lines: list[bytes]) -> str:
    from kafka import KafkaProducer  # noqa: PLC0415 (only this path talks to Kafka)

    from streams.kafka_probe import probe_broker  # noqa: PLC0415
    from streams.worker.settings import bootstrap_servers, settings_from_env  # noqa: PLC0415

    security = security_from(args=args)
    settings = settings_from_env(kafka=security)
    broker = args.kafka or settings.broker_url
    bootstrap = bootstrap_servers(broker)
    probe_broker(bootstrap, security)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        **security.kafka_python(),
        client_id="posguard-import-statement",
        acks="all",
    )
    topic = settings.topics.payouts
    try:
        for event, raw in zip(events, lines, strict=True):
            producer.send(topic, key=event["merchant_id"].encode(), value=raw)
        producer.flush()
    finally:
        producer.close()
    return f"{topic} on {broker}"


def _summary(statements: list[Statement], events: list[dict[str, Any]], where: str) -> str:
    out = [f"posguard import-statement: {len(events)} pay-outs to {where}"]
    for s in statements:
        totals: dict[tuple[str, bool], int] = {}
        for e in s.entries:
            key = (e.currency, e.amount_minor > 0)
            totals[key] = totals.get(key, 0) + e.amount_minor
        money = ", ".join(
            f"{'credits' if credit else 'debits'} {format_amount(v, c)}"
            for (c, credit), v in sorted(totals.items())
        )
        out.append(
            f"  statement {s.ident} (account {s.account}): {len(s.entries)} booked entries"
            + (f"; {money}" if money else "")
        )
        out.extend(f"  not imported (not booked): {why}" for why in s.skipped)
        out.extend(f"  warning: {why}" for why in s.warnings)
    return "\n".join(out)
