"""What each ``posguard`` command does, given its parsed arguments (the parser is ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec
from tqdm import tqdm

from models.forest import ModelFileError, load_model, save_model
from models.scorer import Scorer
from streams.backtest import DiffWriter, format_backtest, run_backtest
from streams.config_log import read_config_log
from streams.configfile import load_config
from streams.evaluate import evaluate_directory, format_evaluation
from streams.kafka_security import KafkaSecurity, security_from
from streams.replay import JsonLinesWriter, format_report, input_size, replay
from streams.rules.docs import rules_markdown
from streams.rules.registry import describe_types
from streams.simulate import (
    SimulationSettings,
    generate,
    input_rows,
    payout_rows,
    write_simulation,
)
from streams.timefmt import to_us
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
    outcomes = _readable(args.feedback) if args.feedback else None
    payouts = _readable(args.payouts) if args.payouts else None
    config = load_config(args.config)
    versions = read_config_log(_readable(args.config_log), config) if args.config_log else []
    scorer = _load_scorer(args.model)
    with ExitStack() as stack:
        out = _open_for_writing(stack, args.out) or sys.stdout.buffer
        dead = _open_for_writing(stack, args.dead_letter)
        alerts = JsonLinesWriter(out)
        # Without --dead-letter, bad input still is not lost: it goes to stderr.
        dead_letters = JsonLinesWriter(dead or sys.stderr.buffer)
        inputs = [p for p in (txns, lines, outcomes, payouts) if p is not None]
        progress = _progress_bar(stack, input_size(inputs), args.progress)
        report = replay(
            txns,
            lines,
            config,
            alerts.alert,
            dead_letters.dead_letter,
            progress,
            scorer,
            sort_by_event_time=args.sort_by_event_time,
            feedback=outcomes,
            config_log=versions,
            payouts=payouts,
        )
        out.flush()
    sys.stderr.write(format_report(report) + "\n")
    if report.dead_letters and args.dead_letter is None:
        sys.stderr.write("(dead letters were written to stderr; use --dead-letter FILE)\n")
    return EXIT_OK


def _progress_bar(
    stack: ExitStack, total: int, mode: str, desc: str = "replay"
) -> Callable[[int], None] | None:
    if mode == "never" or (mode == "auto" and (total < 16 << 20 or not sys.stderr.isatty())):
        return None
    bar = stack.enter_context(
        tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)
    )
    return bar.update  # type: ignore[no-any-return]


def cmd_backtest(args: argparse.Namespace) -> int:
    txns = _readable(args.transactions)
    lines = _readable(args.settlements)
    outcomes = _readable(args.feedback) if args.feedback else None
    payouts = _readable(args.payouts) if args.payouts else None
    current = load_config(args.current)
    proposed = load_config(args.config)
    scorer = _load_scorer(args.model)
    inputs = [p for p in (txns, lines, outcomes, payouts) if p is not None]
    with ExitStack() as stack:
        out = _open_for_writing(stack, args.out)
        write = DiffWriter(out) if out is not None else (lambda _diff: None)
        # Both runs read every input: the bar covers twice its size.
        progress = _progress_bar(stack, 2 * input_size(inputs), args.progress, "backtest")
        result = run_backtest(
            (txns, lines, outcomes, payouts), current, proposed, write, progress, scorer
        )
    sys.stdout.write(format_backtest(result) + "\n")
    if args.out is not None:
        sys.stderr.write(f"{result.differences:,} differences written to {args.out}\n")
    return EXIT_OK


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
            warmup_us, payout_rows(world),
        )  # fmt: skip
    return EXIT_OK


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.simulate.produce import rows_from_file
    from streams.worker.settings import settings_from_env

    txns = rows_from_file(_readable(args.transactions), "event_time")
    lines = rows_from_file(_readable(args.settlements), "settled_at")
    paid = rows_from_file(_readable(args.payouts), "value_date") if args.payouts else []
    security = security_from(args=args)
    broker = args.kafka or settings_from_env(kafka=security).broker_url
    _produce_rows("produce", broker, security, txns, lines, args.speed, 0, paid)
    return EXIT_OK


def _produce_rows(
    command: str,
    broker: str,
    security: KafkaSecurity,
    txn_rows: list[tuple[int, int, bytes]],
    line_rows: list[tuple[int, int, bytes]],
    speed: float | None,
    warmup_us: int,
    payout_rows: list[tuple[int, int, bytes]] | None = None,
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
        payout_rows=payout_rows or [],
    )
    sys.stderr.write(
        f"posguard {command}: produced {report.transactions:,} transactions, "
        f"{report.settlements:,} settlement lines and {report.payouts:,} pay-outs to {broker} "
        f"in {report.seconds:.1f} s\n"
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
    outcomes = _readable(args.feedback) if args.feedback else None
    settings = TrainingSettings(
        target_alert_rate=args.target_alert_rate / 100,
        n_trees=args.trees,
        max_samples=args.max_samples,
        seed=args.seed,
        scorer=args.scorer,
        train_from_us=_time_us(args.train_from) if args.train_from else None,
    )
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: no directory {out.parent}")
    try:
        model = train_from_history(txns, lines, load_config(args.config), settings, outcomes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    save_model(model, out)
    sys.stderr.write(describe_model(model, out) + "\n")
    return EXIT_OK


def _time_us(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise UsageError(f"{text!r} needs an offset (Z or +hh:mm)")
    return to_us(moment)


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


class VersionAction(argparse.Action):
    """``--version``: the version and the build, worked out only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the version and the build, and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from streams.build_info import describe_build

        print(f"posguard {_version()} ({describe_build()})")
        parser.exit()
