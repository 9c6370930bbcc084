"""The ``posguard`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import msgspec
from tqdm import tqdm

from models.forest import ModelFileError, load_model, save_model
from models.scorer import Scorer
from streams.config import ConfigError
from streams.configfile import load_config
from streams.evaluate import evaluate_directory, format_evaluation
from streams.kafka_probe import BrokerSecurityError, BrokerUnavailableError
from streams.kafka_security import KafkaSecurity, add_security_flags, security_from
from streams.replay import JsonLinesWriter, format_report, input_size, replay
from streams.rules.docs import rules_markdown
from streams.rules.registry import describe_types
from streams.simulate import SimulationSettings, generate, input_rows, write_simulation
from streams.training import TrainingSettings, describe_model, train_from_history

EXIT_OK = 0
EXIT_BROKER = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument or an unreadable file: printed as one line, exit status 2."""


def _readable(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"cannot read {path}: no such file")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return p


def _open_for_writing(stack: ExitStack, path: str | None) -> IO[bytes] | None:
    if path is None or path == "-":
        return None
    try:
        return stack.enter_context(open(path, "wb"))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _load_scorer(path: str | None) -> Scorer | None:
    if path is None:
        return None
    try:
        return Scorer(load_model(Path(path)))
    except ModelFileError as exc:
        raise UsageError(str(exc)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    txns = _readable(args.transactions)
    lines = _readable(args.settlements)
    config = load_config(args.config)
    scorer = _load_scorer(args.model)
    with ExitStack() as stack:
        out = _open_for_writing(stack, args.out) or sys.stdout.buffer
        dead = _open_for_writing(stack, args.dead_letter)
        alerts = JsonLinesWriter(out)
        # Without --dead-letter, bad input still is not lost: it goes to stderr.
        dead_letters = JsonLinesWriter(dead or sys.stderr.buffer)
        progress = _progress_bar(stack, input_size([txns, lines]), args.progress)
        report = replay(
            txns,
            lines,
            config,
            alerts.alert,
            dead_letters.dead_letter,
            progress,
            scorer,
            sort_by_event_time=args.sort_by_event_time,
        )
        out.flush()
    sys.stderr.write(format_report(report) + "\n")
    if report.dead_letters and args.dead_letter is None:
        sys.stderr.write("(dead letters were written to stderr; use --dead-letter FILE)\n")
    return EXIT_OK


def _progress_bar(stack: ExitStack, total: int, mode: str) -> Callable[[int], None] | None:
    if mode == "never" or (mode == "auto" and (total < 16 << 20 or not sys.stderr.isatty())):
        return None
    bar = stack.enter_context(
        tqdm(total=total, unit="B", unit_scale=True, desc="replay", file=sys.stderr, leave=False)
    )
    return bar.update  # type: ignore[no-any-return]


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = SimulationSettings(
        seed=args.seed,
        days=args.days,
        merchants=args.merchants,
        sales_per_terminal_day=args.sales_per_terminal_day,
        start=args.start,
    )
    if args.out_dir is None and args.kafka is None:
        raise UsageError("give --out-dir DIR, --kafka BROKER, or both")
    try:
        world = generate(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.out_dir is not None:
        sys.stderr.write(write_simulation(Path(args.out_dir), settings, world) + "\n")
    if args.kafka is not None:
        txn_rows, line_rows = input_rows(world)
        warmup_us = int(args.warmup_hours * 3600_000_000)
        _produce_rows(
            "simulate", args.kafka, security_from(args=args), txn_rows, line_rows, args.speed,
            warmup_us,
        )  # fmt: skip
    return EXIT_OK


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.simulate.produce import rows_from_file
    from streams.worker.settings import settings_from_env

    txns = rows_from_file(_readable(args.transactions), "event_time")
    lines = rows_from_file(_readable(args.settlements), "settled_at")
    security = security_from(args=args)
    broker = args.kafka or settings_from_env(kafka=security).broker_url
    _produce_rows("produce", broker, security, txns, lines, args.speed, 0)
    return EXIT_OK


def _produce_rows(
    command: str,
    broker: str,
    security: KafkaSecurity,
    txn_rows: list[tuple[int, int, bytes]],
    line_rows: list[tuple[int, int, bytes]],
    speed: float | None,
    warmup_us: int,
) -> None:
    """Produce to the input topics (names from the environment) and report on stderr."""
    from streams.simulate.produce import produce
    from streams.worker.settings import bootstrap_servers, settings_from_env

    report = produce(
        bootstrap_servers(broker),
        settings_from_env(kafka=security).topics,
        txn_rows,
        line_rows,
        speed=speed,
        warmup_us=warmup_us,
        security=security,
    )
    sys.stderr.write(
        f"posguard {command}: produced {report.transactions:,} transactions and "
        f"{report.settlements:,} settlement lines to {broker} in {report.seconds:.1f} s\n"
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not (data / "transactions.jsonl").is_file() or not (data / "labels.jsonl").is_file():
        raise UsageError(f"{data} is not a simulated data directory (see posguard simulate)")
    config_path = args.config or (
        data / "config.toml" if (data / "config.toml").is_file() else None
    )
    result = evaluate_directory(data, load_config(config_path), _load_scorer(args.model))
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result)) + b"\n")
    else:
        sys.stdout.write(format_evaluation(result) + "\n")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    txns = _readable(args.transactions)
    lines = _readable(args.settlements) if args.settlements else None
    settings = TrainingSettings(
        target_alert_rate=args.target_alert_rate / 100,
        n_trees=args.trees,
        max_samples=args.max_samples,
        seed=args.seed,
    )
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: no directory {out.parent}")
    try:
        model = train_from_history(txns, lines, load_config(args.config), settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    save_model(model, out)
    sys.stderr.write(describe_model(model, out) + "\n")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.json:
        sys.stdout.write(json.dumps(describe_types(config), indent=2) + "\n")
    else:
        sys.stdout.write(rules_markdown(config))
    return EXIT_OK


def cmd_model_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        model = load_model(path)
    except ModelFileError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(json.dumps(model.metadata, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(describe_model(model, path) + "\n")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker.run import run_worker
    from streams.worker.settings import settings_from_env

    settings = settings_from_env(kafka=security_from(args=args)).with_overrides(
        broker_url=args.broker,
        web_port=args.web_port,
        web_host=args.web_host,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        partitions=args.partitions,
        group=args.group,
        config_file=Path(args.config) if args.config else None,
        model_file=Path(args.model) if args.model else None,
    )
    config_path = settings.config_file
    if config_path is not None:
        _readable(str(config_path))
    config = load_config(str(config_path) if config_path else None)
    return run_worker(settings, config, loglevel=args.loglevel)


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import DemoOptions, run_demo

    options = DemoOptions(
        seconds_per_day=args.seconds_per_day,
        days=args.days,
        merchants=args.merchants,
        seed=args.seed,
        duration_s=args.duration,
        model=not args.no_model,
        keep_files=args.keep_files,
        kafka=security_from(args=args),
    )
    return run_demo(options, lambda text: print(text, flush=True))


def _version() -> str:
    """The installed distribution's version (what ``pip`` knows, not a second copy of it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("posguard")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: the version and the build, worked out only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the version and the build, and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from streams.build_info import describe_build

        print(f"posguard {_version()} ({describe_build()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posguard",
        description="Anomaly detection for card-present POS payments.",
    )
    parser.add_argument("--version", action=_VersionAction)
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
    rp.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    rp.add_argument("--out", metavar="FILE", help="alert events (default: stdout)")
    rp.add_argument("--dead-letter", metavar="FILE", help="bad input lines (default: stderr)")
    rp.add_argument("--model", metavar="FILE", help="score approved sales (SUSPICIOUS_PATTERN)")
    rp.add_argument(
        "--sort-by-event-time",
        action="store_true",
        help="sort each file by event time in memory first (the stream never does: this shows "
        "what an ordered feed would have given, not what the stream decided)",
    )
    rp.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: for inputs over 16 MB on a terminal)",
    )
    rp.set_defaults(func=cmd_replay)

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
        help="fit the isolation-forest model from history files and write a model file",
        description="Replays the history (the replay input format) to compute each approved "
        "sale's features, fits an isolation forest, calibrates the alert threshold to the "
        "target alert rate and writes the model file (arrays + JSON metadata, no pickle).",
    )
    tr.add_argument("--transactions", required=True, metavar="FILE")
    tr.add_argument("--settlements", metavar="FILE", help="optional; features use transactions")
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
    tr.add_argument("--max-samples", type=int, default=256)
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
