"""Dead letters: bad input kept with its reason, its source and its masked raw text."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.cardmask import mask_text
from streams.decode import Reason
from streams.events import EventKind


class DeadLetter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rejected input. ``raw`` is the original text with every card number masked."""

    reason: Reason
    detail: str
    kind: EventKind
    source: dict[str, Any]
    raw: str


def make_dead_letter(
    reason: Reason, detail: str, kind: EventKind, source: dict[str, Any], raw: bytes
) -> DeadLetter:
    text = raw.strip().decode("utf-8", errors="replace")
    return DeadLetter(
        reason=reason, detail=mask_text(detail), kind=kind, source=source, raw=mask_text(text)
    )
