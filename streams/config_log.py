"""Live configuration: a log of versions, each a whole configuration with the event time from
which it applies.

A version is self-contained (the full TOML document as data, not a delta), numbered, signed by
who pushed it and when. It takes effect at a defined position of every partition's input: the
first event-time step at or after its ``effective_at`` (``ConfigSchedule``). So the stream, a
rebuild from the journal and ``posguard replay --config-log`` switch at the same place for the
same input, and every alert says which version raised it (``details.config_version``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from streams.alerts import Alert
from streams.config import Config, ConfigError
from streams.configfile import config_from_mapping
from streams.timefmt import to_us

VERSION_KEY: Final = "config_version"
"""The key in every alert's ``details`` naming the version in force when it was raised."""


class ConfigVersion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One message of the configuration topic (key: the version number)."""

    version: int
    effective_at: str
    """RFC 3339 event time from which it applies."""
    config: dict[str, Any]
    """The whole configuration, as the TOML file's document."""
    by: str
    at: str
    """Wall clock of the push (who changed what, when)."""
    comment: str = ""


@dataclass(frozen=True)
class LiveVersion:
    """A checked version: its message, its configuration and its effective time."""

    message: ConfigVersion
    config: Config
    effective_us: int

    @property
    def version(self) -> int:
        return self.message.version


_decoder = msgspec.json.Decoder(ConfigVersion)


def check_version(message: ConfigVersion, fixed: Config | None = None) -> LiveVersion:
    """``ConfigError`` (naming the version and the key) for a version that cannot be used. A
    version is a whole configuration (over the defaults); what a running engine cannot change,
    evidence retention and the id check, must equal ``fixed``'s (the one it started with)."""
    where = f"configuration version {message.version}"
    if isinstance(message.version, bool) or message.version < 1:
        raise ConfigError(f"{where}: the version must be a positive integer")
    try:
        when = datetime.fromisoformat(message.effective_at.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{where}: effective_at {message.effective_at!r} is not RFC 3339"
        ) from None
    if when.tzinfo is None:
        raise ConfigError(f"{where}: effective_at needs an offset (Z or +hh:mm)")
    try:
        config = config_from_mapping(message.config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if fixed is not None and (
        config.retention_us != fixed.retention_us
        or config.card_numbers_in_ids != fixed.card_numbers_in_ids
    ):
        raise ConfigError(
            f"{where}: [retention] and [input] change only with a restart (the journal and the "
            "decoders depend on them); keep them as the worker's configuration file has them"
        )
    return LiveVersion(message, config, to_us(when))


def decode_version(raw: bytes, fixed: Config | None = None) -> LiveVersion:
    try:
        message = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"not a configuration version ({exc})") from None
    return check_version(message, fixed)


def read_config_log(path: Path, fixed: Config | None = None) -> list[LiveVersion]:
    """A change log file (JSON Lines of versions, as the topic holds them)."""
    versions: list[LiveVersion] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        if line.strip():
            try:
                versions.append(decode_version(line, fixed))
            except ConfigError as exc:
                raise ConfigError(f"{path}:{number}: {exc}") from None
    return versions


def stamp(alerts: Iterable[Alert], version: int) -> None:
    """Name the version in force on alerts it raised (``details`` is the alert's own dict)."""
    for alert in alerts:
        alert.details[VERSION_KEY] = version


class ConfigSchedule:
    """The versions known, in the order they take effect (``effective_at``, then version), and
    which of them is in force."""

    def __init__(self, versions: Iterable[LiveVersion] = ()) -> None:
        self._pending: list[LiveVersion] = []
        self.known: dict[int, LiveVersion] = {}
        self.in_force: int = 0
        """0: the configuration the worker or replay started with."""
        for version in versions:
            self.add(version)

    def add(self, version: LiveVersion) -> bool:
        """Learn a version; False for one already known (the same number: the first wins)."""
        if version.version in self.known:
            return False
        self.known[version.version] = version
        if version.version > self.in_force:
            self._pending.append(version)
            self._pending.sort(key=lambda v: (v.effective_us, v.version))
        return True

    def due(self, at_us: int) -> Iterator[LiveVersion]:
        """The versions that take effect before a step at ``at_us``, in order (each is then in
        force)."""
        while self._pending and self._pending[0].effective_us <= at_us:
            version = self._pending.pop(0)
            if version.version > self.in_force:
                self.in_force = version.version
                yield version

    def set_in_force(self, version: int) -> None:
        """A rebuild switched to ``version`` (the journal says where): older ones are done."""
        self.in_force = max(self.in_force, version)
        self._pending = [v for v in self._pending if v.version > self.in_force]

    def next_effective_us(self) -> int | None:
        return self._pending[0].effective_us if self._pending else None

    def newest(self) -> int:
        return max(self.known, default=0)
