"""Event time as integer microseconds since the epoch, and back to RFC 3339."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

US_PER_SECOND: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_US: Final = {
    "ms": 1_000,
    "s": US_PER_SECOND,
    "m": 60 * US_PER_SECOND,
    "h": 3600 * US_PER_SECOND,
    "d": 86400 * US_PER_SECOND,
    None: US_PER_SECOND,
}


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware datetime.

    ``timestamp()`` is a float, but its error at today's epoch is below 0.25 us, so rounding gives
    the exact microsecond.
    """
    return round(moment.timestamp() * US_PER_SECOND)


def format_us(ts: int, offset_seconds: int = 0) -> str:
    """RFC 3339 text of ``ts``, in UTC (``Z``) or in the given offset."""
    tz = UTC if offset_seconds == 0 else timezone(timedelta(seconds=offset_seconds))
    moment = (_EPOCH + timedelta(microseconds=ts)).astimezone(tz)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z") if offset_seconds == 0 else text


def offset_of(moment: datetime) -> int:
    """UTC offset of an aware datetime in seconds."""
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def parse_duration(value: int | float | str) -> int:
    """A configured duration in microseconds: ``120`` (seconds), ``"120s"``, ``"26h"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return round(value * US_PER_SECOND)
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"expected a duration like '120s', '10m', '26h' or '35d', got {value!r}")
    return round(float(m.group(1)) * _UNIT_US[m.group(2)])


def describe_duration(us: int) -> str:
    """Short human text for a duration: ``45 s``, ``12 min``, ``31.5 h``, ``3 d``."""
    seconds = us / US_PER_SECOND
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 4 * 86400:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours == int(hours) else f"{hours:.1f} h"
    return f"{seconds / 86400:.1f} d"
