"""``posguard config push FILE`` and ``posguard config list``: the live configuration versions
on the configuration topic."""

from __future__ import annotations

import argparse
import getpass
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from streams.commands import EXIT_OK, UsageError
from streams.config import ConfigError
from streams.config_topic import push_version, read_versions
from streams.kafka_security import add_security_flags, security_from
from streams.timefmt import parse_duration
from streams.worker.settings import bootstrap_servers, settings_from_env


def add_config_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cp = sub.add_parser(
        "config",
        help="live configuration: push a version, list the versions",
        description="Change thresholds, fee schedules and rules on or off without a restart. "
        "Each version is a whole configuration file, numbered, signed and applied by every "
        "partition before its first event at or after --effective-at (event time), so replay "
        "with the same versions (--config-log) decides what the stream decided.",
    )
    actions = cp.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    push = actions.add_parser("push", help="append a configuration file as the next version")
    push.add_argument("file", metavar="FILE", help="the whole configuration (TOML)")
    push.add_argument(
        "--effective-at",
        metavar="TIME",
        default="now",
        help="event time from which it applies: RFC 3339, 'now', or 'now+10m' (default now: "
        "the stream's event time follows the wall clock; use a time ahead of the stream)",
    )
    push.add_argument("--by", default=None, help="who changes it (default: the user name)")
    push.add_argument("--comment", default="", help="why")
    _kafka_flags(push)
    push.set_defaults(func=cmd_config_push)
    listing = actions.add_parser("list", help="every version, newest first")
    listing.add_argument("--json", action="store_true", help="as JSON Lines, whole")
    _kafka_flags(listing)
    listing.set_defaults(func=cmd_config_list)


def _kafka_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kafka", metavar="BROKER", help="default: $POSGUARD_BROKER_URL")
    add_security_flags(parser)


def _broker(args: argparse.Namespace) -> tuple[str, object, str]:
    security = security_from(args=args)
    settings = settings_from_env(kafka=security)
    broker = args.kafka or settings.broker_url
    return bootstrap_servers(broker), security, settings.topics.config


def effective_time(text: str, now: datetime | None = None) -> str:
    """RFC 3339 of ``text``: a time with an offset, ``now`` or ``now+DURATION``."""
    now = now or datetime.now(UTC)
    if text == "now" or text.startswith("now+"):
        ahead_us = parse_duration(text[4:]) if text.startswith("now+") else 0
        moment = now.timestamp() + ahead_us / 1e6
        stamp = datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
        return stamp.replace("+00:00", "Z")
    return text


def cmd_config_push(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        effective_at = effective_time(args.effective_at)
    except ValueError as exc:
        raise UsageError(f"--effective-at: {exc}") from None
    bootstrap, security, topic = _broker(args)
    version = push_version(
        bootstrap,
        security,  # type: ignore[arg-type]
        topic,
        document,
        effective_at,
        args.by or getpass.getuser(),
        args.comment,
    )
    sys.stdout.write(
        f"configuration version {version.version} pushed to {topic} by {version.by}: applies "
        f"from {version.effective_at} (event time)\n"
    )
    return EXIT_OK


def cmd_config_list(args: argparse.Namespace) -> int:
    bootstrap, security, topic = _broker(args)
    read = read_versions(bootstrap, security, topic, None)  # type: ignore[arg-type]
    for version in sorted(read.versions, key=lambda v: v.version, reverse=True):
        m = version.message
        if args.json:
            sys.stdout.write(msgspec.json.encode(m).decode() + "\n")
        else:
            comment = f": {m.comment}" if m.comment else ""
            sys.stdout.write(
                f"{m.version:>5}  from {m.effective_at}  by {m.by} at {m.at}{comment}\n"
            )
    for refused in read.refused:
        sys.stderr.write(f"{topic} {refused}\n")
    if not read.versions:
        sys.stderr.write(f"no configuration version on {topic} yet\n")
    return EXIT_OK
