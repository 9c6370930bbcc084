"""The ``posguard`` command line: its parser and entry point (the commands are ``commands.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.commands import (
    EXIT_BROKER,
    EXIT_USAGE,
    UsageError,
    VersionAction,
    cmd_backtest,
    cmd_demo,
    cmd_evaluate,
    cmd_model_info,
    cmd_produce,
    cmd_replay,
    cmd_rules,
    cmd_simulate,
    cmd_train,
    cmd_worker,
)
from streams.config import ConfigError
from streams.config_command import add_config_commands
from streams.kafka_probe import BrokerSecurityError, BrokerUnavailableError
from streams.kafka_security import add_security_flags
from streams.statement_command import add_statement_command
from streams.training import SCORERS


def _progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: for inputs over 16 MB on a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posguard",
        description="Anomaly detection for card-present POS payments.",
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rp = sub.add_parser(
        "replay",
        help="run detection over JSON Lines files",
        description="Run the stream's detection over JSON Lines files and write every alert "
        "event as JSON Lines. Each file is taken in line order, as the stream takes a topic "
        "partition, and the two are merged as the stream merges its topics.",
    )
    rp.add_argument("--transactions", required=True, metavar="FILE")
    rp.add_argument("--settlements", required=True, metavar="FILE")
    rp.add_argument(
        "--feedback",
        metavar="FILE",
        help="outcomes (confirmed fraud, chargebacks, confirmed genuine), merged on known_at",
    )
    rp.add_argument(
        "--payouts",
        metavar="FILE",
        help="pay-outs (bank credits and debits, posguard import-statement), merged on value_date",
    )
    rp.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    rp.add_argument(
        "--config-log",
        metavar="FILE",
        help="live configuration versions (JSON Lines, as the configuration topic holds them): "
        "each applies from its effective_at, as in the stream",
    )
    rp.add_argument("--out", metavar="FILE", help="alert events (default: stdout)")
    rp.add_argument("--dead-letter", metavar="FILE", help="bad input lines (default: stderr)")
    rp.add_argument("--model", metavar="FILE", help="score approved sales (SUSPICIOUS_PATTERN)")
    rp.add_argument(
        "--sort-by-event-time",
        action="store_true",
        help="sort each file by event time in memory first (the stream never does: this shows "
        "what an ordered feed would have given, not what the stream decided)",
    )
    _progress_flag(rp)
    rp.set_defaults(func=cmd_replay)

    add_config_commands(sub)
    add_statement_command(sub)

    bt = sub.add_parser(
        "backtest",
        help="what a proposed configuration would change, on past input",
        description="Replay the same files under the current and a proposed configuration and "
        "print, per alert type, the alerts added, removed and changed, with the money at stake; "
        "--out writes each difference as JSON Lines.",
    )
    bt.add_argument("--config", required=True, metavar="PROPOSED", help="the proposed TOML file")
    bt.add_argument(
        "--current", metavar="FILE", help="the configuration in force (default: the defaults)"
    )
    bt.add_argument("--transactions", required=True, metavar="FILE")
    bt.add_argument("--settlements", required=True, metavar="FILE")
    bt.add_argument("--feedback", metavar="FILE", help="outcomes, merged on known_at")
    bt.add_argument("--payouts", metavar="FILE", help="pay-outs, merged on value_date")
    bt.add_argument("--model", metavar="FILE", help="score approved sales in both runs")
    bt.add_argument("--out", metavar="FILE", help="the differences as JSON Lines")
    _progress_flag(bt)
    bt.set_defaults(func=cmd_backtest)

    sp = sub.add_parser(
        "simulate",
        help="write realistic traffic with injected anomalies and labels",
        description="Write transactions.jsonl, settlements.jsonl and labels.jsonl (the ground "
        "truth) for a merchant fleet, deterministic per seed.",
    )
    sp.add_argument("--out-dir", metavar="DIR", help="write the files here")
    sp.add_argument(
        "--kafka", metavar="BROKER", help="also produce to the input topics (kafka://host:port)"
    )
    sp.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="with --kafka: event time runs X times faster than the wall clock "
        "(default: as fast as possible)",
    )
    sp.add_argument(
        "--warmup-hours",
        type=float,
        default=0.0,
        metavar="H",
        help="with --speed: send the first H hours of event time at once",
    )
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--days", type=int, default=4, help="days of traffic (at least 4)")
    sp.add_argument("--merchants", type=int, default=40)
    sp.add_argument(
        "--sales-per-terminal-day",
        type=int,
        default=60,
        metavar="N",
        help="average sales per terminal and day",
    )
    sp.add_argument("--start", default="2026-03-02", help="first day (UTC), YYYY-MM-DD")
    add_security_flags(sp)
    sp.set_defaults(func=cmd_simulate)

    wk = sub.add_parser(
        "worker",
        help="run the streaming worker (Faust) against Kafka",
        description="Consume the transaction and settlement topics, publish alerts and dead "
        "letters, serve /metrics, /api/alerts and /api/merchants. Flags override the "
        "POSGUARD_* environment variables.",
    )
    wk.add_argument("--broker", metavar="URL", help="default: $POSGUARD_BROKER_URL")
    wk.add_argument("--web-port", type=int, metavar="PORT", help="default: $POSGUARD_WEB_PORT")
    wk.add_argument("--web-host", metavar="HOST", help="default: $POSGUARD_WEB_HOST or 127.0.0.1")
    wk.add_argument("--data-dir", metavar="DIR", help="default: $POSGUARD_DATA_DIR or .posguard")
    wk.add_argument("--partitions", type=int, metavar="N", help="for topics it creates")
    wk.add_argument("--group", metavar="ID", help="consumer group / app id (default posguard)")
    wk.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    wk.add_argument(
        "--model",
        metavar="FILE",
        help="isolation-forest model (default: $POSGUARD_MODEL); reloaded when the file changes",
    )
    wk.add_argument(
        "--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"]
    )
    add_security_flags(wk)
    wk.set_defaults(func=cmd_worker)

    pp = sub.add_parser(
        "produce",
        help="produce JSON Lines files to the input topics, merged in event-time order",
    )
    pp.add_argument("--transactions", required=True, metavar="FILE")
    pp.add_argument("--settlements", required=True, metavar="FILE")
    pp.add_argument("--payouts", metavar="FILE", help="pay-outs, to the pay-out topic")
    pp.add_argument("--kafka", metavar="BROKER", help="default: $POSGUARD_BROKER_URL")
    pp.add_argument("--speed", type=float, metavar="X", help="pace: event seconds per second")
    add_security_flags(pp)
    pp.set_defaults(func=cmd_produce)

    dm = sub.add_parser(
        "demo",
        help="run everything on one machine: broker, topics, worker, live simulator",
        description="Start the embedded broker (unless POSGUARD_BROKER_URL is set), create the "
        "topics, run a worker and a simulator producing live traffic, and print the alerts as "
        "they are published. Ctrl-C stops everything.",
    )
    dm.add_argument("--seconds-per-day", type=float, default=120.0, metavar="S",
                    help="wall-clock seconds per simulated day (default 120)")  # fmt: skip
    dm.add_argument("--days", type=int, default=4)
    dm.add_argument("--merchants", type=int, default=40)
    dm.add_argument("--seed", type=int, default=7)
    dm.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    dm.add_argument("--no-model", action="store_true",
                    help="do not train a model in the background (rules only)")  # fmt: skip
    dm.add_argument("--keep-files", action="store_true",
                    help="keep the work directory (logs, data, model, worker state) after a "
                    "clean stop; it is always kept when something failed")  # fmt: skip
    add_security_flags(dm)
    dm.set_defaults(func=cmd_demo)

    ev = sub.add_parser(
        "evaluate",
        help="replay a simulated directory and score the alerts against its labels",
    )
    ev.add_argument("--data", required=True, metavar="DIR")
    ev.add_argument("--config", metavar="FILE", help="default: DIR/config.toml when present")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.add_argument(
        "--model", metavar="FILE", help="also score SUSPICIOUS_PATTERN (ROC-AUC per pattern)"
    )
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser(
        "train",
        help="fit the model from history files (and outcomes) and write a model file",
        description="Replays the history (the replay input format) to compute each approved "
        "sale's features, fits a model, calibrates the alert threshold to the target alert "
        "rate and writes the model file (arrays + JSON metadata, no pickle). With --feedback "
        "confirming enough frauds, a gradient-boosted model learns from the outcomes; "
        "otherwise an isolation forest learns what usual sales look like.",
    )
    tr.add_argument("--transactions", required=True, metavar="FILE")
    tr.add_argument("--settlements", metavar="FILE", help="optional; features use transactions")
    tr.add_argument(
        "--feedback", metavar="FILE", help="outcomes: the labels, and the features' fraud history"
    )
    tr.add_argument(
        "--scorer",
        choices=SCORERS,
        default="auto",
        help="auto (default): gradient boosting when the feedback confirms at least 20 frauds "
        "among the training sales, else the isolation forest",
    )
    tr.add_argument(
        "--train-from",
        metavar="TIME",
        help="RFC 3339 time: earlier sales only warm the features up (history before the "
        "training window)",
    )
    tr.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    tr.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    tr.add_argument(
        "--target-alert-rate",
        type=float,
        default=0.1,
        metavar="PCT",
        help="percent of approved sales to alert on (default 0.1)",
    )
    tr.add_argument("--trees", type=int, default=100)
    tr.add_argument(
        "--max-samples", type=int, default=1024, help="sales per isolation tree (default 1024)"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.set_defaults(func=cmd_train)

    ru = sub.add_parser(
        "rules",
        help="list the rules, their alert types and settings (with --config: as configured)",
    )
    ru.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    ru.add_argument("--json", action="store_true", help="the alert types as /api/types gives them")
    ru.set_defaults(func=cmd_rules)

    md = sub.add_parser("model", help="inspect a model file")
    md_sub = md.add_subparsers(dest="model_command", required=True)
    info = md_sub.add_parser("info", help="print a model file's metadata (verifies its checksum)")
    info.add_argument("file", metavar="FILE")
    info.add_argument("--json", action="store_true", help="the raw metadata as JSON")
    info.set_defaults(func=cmd_model_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, ConfigError) as exc:
        sys.stderr.write(f"posguard {args.command}: {exc}\n")
        return EXIT_USAGE
    except (BrokerSecurityError, BrokerUnavailableError) as exc:
        sys.stderr.write(f"posguard {args.command}: {exc}\n")
        return EXIT_BROKER
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
