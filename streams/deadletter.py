"""Dead letters: bad input kept with its reason, its source and its masked raw text."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from streams.cardmask import mask_text
from streams.decode import Reason
from streams.events import EventKind

MAX_RAW_CHARS: Final = 16_384
"""A dead letter keeps at most this much of its input's text: every message the worker writes
must stay below the broker's size limit, whatever arrived. ``source`` finds the whole input."""
MAX_RAW_BYTES: Final = 4 * MAX_RAW_CHARS + 4
"""What a journal keeps of a bad input: enough for ``MAX_RAW_CHARS`` characters of any UTF-8
text and to tell that there was more."""


class DeadLetter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rejected input. ``raw`` is the original text with every card number masked, its first
    ``MAX_RAW_CHARS`` characters only when ``raw_truncated``."""

    reason: Reason
    detail: str
    kind: EventKind
    source: dict[str, Any]
    raw: str
    raw_truncated: bool = False


def make_dead_letter(
    reason: Reason, detail: str, kind: EventKind, source: dict[str, Any], raw: bytes
) -> DeadLetter:
    # Masked before it is cut, so a card number across the cut is still masked.
    text = mask_text(raw.strip().decode("utf-8", errors="replace"))
    truncated = len(text) > MAX_RAW_CHARS
    return DeadLetter(
        reason=reason,
        detail=mask_text(detail),
        kind=kind,
        source=source,
        raw=text[:MAX_RAW_CHARS] if truncated else text,
        raw_truncated=truncated,
    )
